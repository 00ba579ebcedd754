"""Many trials of a feed-forward spiking network in one run: the block loop's network.

The block is the trial network (:func:`~bioplastic.networks.spiking_network.base_recipe` with the
task's and the in-network rule's contributions) with the trial boundary of
:mod:`bioplastic.networks.block`. In its ``record`` slot the read-out and the reward of every
trial are recorded at the trial's end; the runaway guard is carried from trial to trial.
"""

import numpy as np
from brian2 import second

from .block import BlockBlueprint, BlockObservation, SLOTS, block_run_values, weight_variable
from .neuromodulator import MODULATOR
from .spiking import WEIGHT_UNIT
from .spiking_network import INPUT_RASTER, SpikingNetwork, base_recipe, make_layout, raster_rows

READOUT, REWARD = "trial_readout", "trial_reward"


class SpikingBlockNetwork(SpikingNetwork):
    """The Brian2 objects of a block: per-trial inputs and run values in, per-trial read-outs out."""

    def __init__(self, layout, recipe, objects, network, tables):
        super().__init__(layout, recipe, objects, network)
        self.tables = tables
        self.duration = layout.run_steps * layout.dt

    def assignments(self, weights, inputs, trial_values, active, values=None):
        """``weights``: per projection (copies, *shape) in mV, at the block's start; ``inputs``: per
        trial the (blocks, steps, n_in) raster; ``trial_values``: per trial the run values the trial
        loop would write (``{(owner, variable): value}``); ``active``: (trials,), 0 on padding
        trials; ``values``: the block form's own run values."""
        layout = self.layout
        raster = np.zeros((layout.run_steps, layout.blocks * layout.spec.sizes[0]))  # row 0: the lead-in step
        for n, x in enumerate(inputs):
            raster[1 + n * layout.steps:1 + (n + 1) * layout.steps] = raster_rows(x, layout, f"inputs[{n}]")
        given = block_run_values(self, trial_values, active, values)
        given[(INPUT_RASTER, "values")] = raster
        for projection, w in zip(layout.projections, weights):
            if weight_variable(self.recipe, projection) == "wm":  # a master weight, kept by the block form
                given[(projection.synapses, "wm")] = np.asarray(w, float).ravel() * float(WEIGHT_UNIT)
        return super().assignments(weights=weights, values=given)

    def read(self, get):
        layout, recipe = self.layout, self.recipe
        trials = slice(1, layout.trials + 1)  # the ticks at the end of each trial (the first is the lead-in's)
        values = recipe.readout.value(lambda owner, variable: get(READOUT, variable)[trials])
        rewards = np.asarray(get(REWARD, "final_reward"), float)[trials] if REWARD in recipe.monitors else None
        stopped = float(get("guard", "stopped_at")[0])
        return BlockObservation(
            readouts=values.reshape(layout.trials, layout.copies, -1), rewards=rewards,
            weights=[get(p.synapses, weight_variable(recipe, p)).reshape((layout.copies,) + p.shape) / float(WEIGHT_UNIT)
                     for p in layout.projections],
            state={key: get(*key) for key in recipe.block_state},
            stopped_at=stopped * second if stopped >= 0 else None)


class SpikingBlockBlueprint(BlockBlueprint):
    """A block of ``trials`` trials of ``copies`` feed-forward spiking networks (``batch`` examples
    per variant; copy c reads input block c % batch); see :class:`~bioplastic.networks.block.BlockBlueprint`."""

    network_class = SpikingBlockNetwork

    def make_layout(self, spec, copies, batch, steps, seed):
        return make_layout(spec, copies, steps, blocks=batch, seed=seed, input_block=np.arange(copies) % batch)

    def base_recipe(self, layout):
        return base_recipe(layout)

    def record_trials(self, recipe, layout):
        """The read-out and the reward at every trial's end; the runaway guard runs on across trials."""
        readout = recipe.readout
        if readout is None:
            raise ValueError("a block of trials needs the task's read-out (recipe.readout)")
        recipe.monitor(READOUT, readout.owner, variables=tuple(readout.plus) + tuple(readout.minus), record=True,
                       dt=layout.period, when="end", order=SLOTS["record"])
        if recipe.final_reward and MODULATOR in recipe.groups:
            recipe.monitor(REWARD, MODULATOR, variables=("final_reward",), record=True, dt=layout.period, when="end",
                           order=SLOTS["record"])
        recipe.carried.add(("guard", None))


__all__ = ["SpikingBlockBlueprint", "SpikingBlockNetwork"]
