r"""Two-choice (or P-choice) learning from reward on the output spike count.

Each of P input *patterns* sets a rate for every input: a random ``active_fraction`` of the
inputs fire at ``rate_high``, the rest at ``rate_low`` (drawn once per seed). Every trial shows
one pattern per example as fresh Poisson spike trains for ``duration``. Pattern p asks output
neuron ``p % n_out`` for ``target_high`` spikes and the others for ``target_low``.

The loss is a differentiable surrogate of the spike-count error. Each output neuron is read out
as its *filtered* count,

.. math:: y_o = \sum_{k} \big(1 - e^{-(T - t_k)/\tau_r}\big),

which counts early spikes fully and lets a spike entering or leaving at the end of the trial
change the count continuously (``readout_tau`` :math:`\tau_r`). Then

.. math:: L = \frac{1}{n_\mathrm{out}} \sum_o \Big(\frac{y_o - y^*_o}{y^*_\mathrm{high}}\Big)^2,
          \qquad R = -L .

Its expectation over the Poisson input is a smooth function of the weights, whose gradient the
finite-difference reference estimates with common random numbers.

The reward arrives at the end of the trial: an in-network rule's neuromodulator receives R as
``final_reward`` in the last step (the network computes it from its own read-out, the same
number :meth:`SpikeCount.losses` gives).
"""

from dataclasses import dataclass

import numpy as np
from brian2 import Hz, ms

from .. import rng as rng_streams
from ..errors import SpecError
from ..networks.neuromodulator import MODULATOR, final_flag, final_step_clock
from ..networks.recipe import Readout, Regular
from ..spec import at_least, non_negative, param, positive, validate
from .base import Batch, Task, poisson_raster


@dataclass(frozen=True)
class SpikeCountSpec:
    """Parameters of the spike-count task.

    Parameters
    ----------
    patterns : int
        Number of input patterns P (conditions).
    active_fraction : float
        Fraction of inputs at ``rate_high`` in a pattern.
    rate_high, rate_low : Quantity (rate)
        Poisson rates of active and inactive inputs.
    duration : Quantity (time)
        Trial length T; the read-out is taken at its end.
    target_high, target_low : float
        Target filtered spike counts of the chosen output and of the others.
    readout_tau : Quantity (time)
        τ_r of the filtered count.
    batch : int
        Examples per trial.
    """

    patterns: int = param(2, "number of input patterns", kind=int, check=at_least(1))
    active_fraction: float = param(0.5, "fraction of inputs at rate_high in a pattern",
                                   check=lambda v: None if 0 < v <= 1 else "must be in (0, 1]")
    rate_high: object = param(40 * Hz, "rate of the active inputs", unit=Hz, check=non_negative)
    rate_low: object = param(5 * Hz, "rate of the other inputs", unit=Hz, check=non_negative)
    duration: object = param(200 * ms, "trial length; the read-out is taken at its end", unit=ms, check=positive)
    target_high: float = param(8.0, "target filtered spike count of the chosen output", check=positive)
    target_low: float = param(0.0, "target filtered spike count of the other outputs", check=non_negative)
    readout_tau: object = param(20 * ms, "time constant of the filtered spike count", unit=ms, check=positive)
    batch: int = param(1, "examples per trial", kind=int, check=at_least(1))

    def __post_init__(self):
        validate(self)


class SpikeCount(Task):
    """Reward on the output spike count: each input pattern asks one output neuron to fire."""

    kind = "spike_count"
    spec_class = SpikeCountSpec
    description = "each of P Poisson input patterns asks one output neuron for a spike count (reward = -loss)"
    families = ("spiking",)
    final_reward = True
    error_in_network = True

    @classmethod
    def n_conditions(cls, spec):
        return spec.patterns

    def __init__(self, spec, model, seed):
        super().__init__(spec, model, seed)
        if model.recurrent:
            raise SpecError("model.recurrent", "the spike_count task needs a feed-forward network (input spike "
                            "sources and an output layer)", True)
        n_in, self.n_out = model.sizes[0], model.sizes[-1]
        rng = rng_streams.stream(seed, "patterns")
        active = max(1, int(round(spec.active_fraction * n_in)))
        self.rates = np.full((spec.patterns, n_in), float(spec.rate_low / Hz))
        for p in range(spec.patterns):
            self.rates[p, rng.choice(n_in, active, replace=False)] = float(spec.rate_high / Hz)
        self.targets = np.full((spec.patterns, self.n_out), spec.target_low)
        self.targets[np.arange(spec.patterns), np.arange(spec.patterns) % self.n_out] = spec.target_high
        self.steps = int(round(float(spec.duration / model.dt)))

    def sample(self, rng, batch=None, conditions=None):
        """``batch`` examples (default ``spec.batch``): random patterns, fresh Poisson spikes."""
        batch = batch or self.spec.batch
        if conditions is None:
            conditions = rng.integers(self.spec.patterns, size=batch)
        conditions = np.asarray(conditions, int)
        inputs = poisson_raster(self.rates[conditions], self.steps, float(self.model.dt), rng)
        return Batch(inputs, self.targets[conditions], conditions)

    def losses(self, outputs, targets):
        """Per example: mean over outputs of ((y - y*) / target_high)^2; shape ``outputs.shape[:-1]``."""
        return np.mean(((outputs - targets) / self.spec.target_high) ** 2, axis=-1)

    def contribute(self, recipe, layout):
        out = recipe.group(layout.output)
        out.add("count : 1", "dftrace/dt = -ftrace / readout_tau : 1", "target : 1")
        out.namespace.update(readout_tau=self.spec.readout_tau, target_scale=self.spec.target_high)
        out.reset += ["count += 1", "ftrace += 1"]
        recipe.run_value(layout.output, "target", 0.0)
        recipe.readout = Readout(layout.output, ("count",), ("ftrace",),  # the filtered spike count
                                 error="((count - ftrace - target) / target_scale)**2")
        recipe.final_reward = True

    def contribute_after_rule(self, recipe, layout):
        """R = -L, computed by the network from its own read-out in the last step."""
        if MODULATOR not in recipe.groups:
            return
        n = layout.groups[layout.output]
        reward = recipe.connect("reward", layout.output, MODULATOR, np.arange(layout.size(layout.output)),
                                layout.copy_index(layout.output))
        reward.namespace.update(target_scale=self.spec.target_high, n_out=n)
        reward.regular["final"] = Regular(
            [f"final_reward_post += -((count_pre - ftrace_pre - target_pre) / target_scale)**2 / n_out * "
             f"{final_flag(layout)}"], dt=final_step_clock(layout), when="end", order=5)

    def run_values(self, batch, layout):
        targets = np.asarray(batch.targets)[layout.input_block]
        return {(layout.output, "target"): targets.ravel()}
