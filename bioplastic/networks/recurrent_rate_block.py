"""Many trials of a recurrent rate network in one run: the block loop's network.

The block is the trial network (:func:`~bioplastic.networks.recurrent_rate.base_recipe` with the
task's and the in-network rule's contributions) with the trial boundary of
:mod:`bioplastic.networks.block`: every trial starts from a fresh initial state (x drawn from
U(-x_init, x_init) at the boundary before it), and its stimulus and targets are its own rows of
the block's time tables. The read-out is recorded at every step, as in a trial.
"""

import numpy as np

from .block import BlockBlueprint, BlockObservation, block_run_values, weight_variable
from .recurrent_rate import (STIMULUS, RecurrentRateNetwork, base_recipe, make_layout, matrix_order, stimulus_rows,
                             synapse_order)


class RecurrentRateBlockNetwork(RecurrentRateNetwork):
    """The Brian2 objects of a block: per-trial inputs and run values in, per-trial read-outs out."""

    def __init__(self, layout, recipe, objects, network, tables):
        super().__init__(layout, recipe, objects, network, record=0)
        self.tables = tables
        self.duration = layout.run_steps * layout.dt

    def assignments(self, weights, inputs, trial_values, active, values=None):
        """``weights``: per plastic projection (copies, n_post, n_pre), at the block's start;
        ``inputs``: per trial the copies' stimulus (copies, steps, n_inputs); ``trial_values``: per
        trial the run values the trial loop would write; ``active``: (trials,), 0 on padding
        trials; ``values``: the block form's own run values."""
        trial_values = [{**given, (STIMULUS, "values"): stimulus_rows(self.stimulus_inputs(x), self.layout,
                                                                      f"inputs[{n}]")}
                        for n, (given, x) in enumerate(zip(trial_values, inputs))]
        given = block_run_values(self, trial_values, active, values)
        for projection, w in zip(self.layout.projections, weights):
            if weight_variable(self.recipe, projection) == "wm":  # a master weight, kept by the block form
                given[(projection.synapses, "wm")] = synapse_order(np.asarray(w, float))
        return super().assignments(weights=weights, values=given)

    def read(self, get):
        layout, recipe = self.layout, self.recipe
        trials, steps, copies = layout.trials, layout.steps, layout.copies
        z = np.asarray(get(*self.output))[1:]  # every step after the lead-in: (trials * steps, copies * n_out)
        readouts = z.reshape(trials, steps, copies, -1).transpose(0, 2, 1, 3).reshape(trials, copies, -1)
        return BlockObservation(
            readouts=readouts, rewards=None,
            weights=[matrix_order(get(p.synapses, weight_variable(recipe, p)), copies, p.shape)
                     for p in layout.projections],
            state={key: get(*key) for key in recipe.block_state})


class RecurrentRateBlockBlueprint(BlockBlueprint):
    """A block of ``trials`` trials of ``copies`` recurrent rate networks; see
    :class:`~bioplastic.networks.block.BlockBlueprint`."""

    network_class = RecurrentRateBlockNetwork

    def make_layout(self, spec, copies, batch, steps, seed):
        return make_layout(spec, copies, steps, seed)

    def base_recipe(self, layout):
        return base_recipe(layout, record=0)


__all__ = ["RecurrentRateBlockBlueprint", "RecurrentRateBlockNetwork"]
