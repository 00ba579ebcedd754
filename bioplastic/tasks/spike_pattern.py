r"""Hand-placed spikes on single synapses: Florian's Fig. 1 and the STDP window with its traces.

Both run a feed-forward network of one input and one output neuron (``sizes = [1, 1]``) whose
spikes are all given: the input spikes at the listed times, and the output neuron is forced to
spike at its listed times (its own dynamics add nothing, the weight being far too small to make
it fire). The plastic synapse between them shows exactly what the rule does with a spike pattern.

* ``spike_pattern`` (Florian 2007, Fig. 1): one pre/post pattern under a reward signal r(t)
  that is piecewise constant (``reward_times``, ``reward_values``: +1, then -1 from 100 ms).
  The metric ``weight`` (mV) is recorded at every step, with the eligibility, the traces and the
  reward; a ``rule`` sweep shows plain STDP, MSTDP and MSTDPET side by side.
* ``stdp_pairing``: ``pairings`` copies, each with one pre and one post spike at its own
  distance :math:`\Delta t` = t_post - t_pre from ``delta_t_min`` to ``delta_t_max``, and one
  reward pulse ``reward_delay`` after the later spike. The table ``window.csv`` gives the weight
  change against :math:`\Delta t` beside the closed form of :func:`~bioplastic.rules.rstdp.pairing_closed_form`;
  the eligibility, dopamine and weight of the pairing at ``trace_delta_t`` are recorded at every step.

References
----------
Florian (2007), Reinforcement learning through modulation of spike-timing-dependent synaptic
plasticity. Neural Comput. 19(6). The spike times default to those read off its Fig. 1 by a
public reproduction (inferno's ``florian-stdp`` example); the paper's own numbers were not
available to us.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from brian2 import mV, ms, second

from ..errors import SpecError
from ..networks.neuromodulator import schedule, schedule_values
from ..networks.spiking_network import clamp
from ..spec import at_least, param, positive, validate
from .base import CONTINUOUS_COLUMNS, ContinuousTask, record_rows


def _steps(times, dt, steps, key):
    """Step indices of a list of times; each must fall inside the run."""
    index = np.round(np.array([float(t / dt) for t in times])).astype(int)
    if len(index) and (index.min() < 0 or index.max() >= steps):
        raise SpecError(key, "every time must lie in [0, duration)", [str(t) for t in times])
    return index


UNITS = {"weight": 1e-3}  # raw SI -> table units (weights in mV); the rest is dimensionless or 1/s


class _HandPlaced(ContinuousTask):
    """One plastic synapse per copy, input -> output, with every spike given and the rule's
    quantities ``recorded`` every step (of the copies ``record``)."""

    recorded = ()
    record = True

    def __init__(self, spec, model, seed):
        super().__init__(spec, model, seed)
        if model.recurrent or list(model.sizes) != [1, 1]:
            raise SpecError("model.sizes", f"the {self.kind} task drives one synapse: needs a feed-forward model "
                            "with sizes = [1, 1]", model.sizes if not model.recurrent else "recurrent")
        self.steps = int(round(float(spec.duration / model.dt)))

    def initial_weights(self, weights, layout):
        return [np.full_like(w, float(self.spec.initial_weight / mV)) for w in weights]

    def contribute_after_rule(self, recipe, layout):
        """Monitor the rule's quantities (its ``rule_variables``) that this task plots."""
        self.rule = recipe.rule
        found = recipe.rule_variables
        self.monitored = {name: found[name] for name in self.recorded if name in found}
        for name, (owner, variable) in self.monitored.items():
            recipe.monitor(f"record_{name}", owner, variables=(variable,), record=self.record, dt=layout.dt,
                           when="end", order=20)

    def metrics(self, observation, layout):
        rows = []
        for name, (_, variable) in self.monitored.items():
            monitor = observation.monitors[f"record_{name}"]
            rows += record_rows(monitor["t"], name, monitor[variable][:, 0] / UNITS.get(name, 1.0))
        return pd.DataFrame(rows, columns=CONTINUOUS_COLUMNS).sort_values(["trial", "metric"], kind="stable")


@dataclass(frozen=True)
class SpikePatternSpec:
    """A fixed pre/post spike pattern under a piecewise-constant reward signal."""

    duration: object = param(200 * ms, "length of the run", unit=ms, check=positive)
    pre: list = param([10 * ms, 85 * ms, 115 * ms, 135 * ms], "presynaptic spike times", kind=list, unit=ms)
    post: list = param([15 * ms, 75 * ms, 110 * ms, 140 * ms], "postsynaptic spike times (forced)", kind=list, unit=ms)
    reward_times: list = param([0 * ms, 100 * ms], "times at which the reward signal takes its next value", kind=list,
                               unit=ms)
    reward_values: list = param([1.0, -1.0], "values of the reward signal r(t) from each of reward_times on",
                                kind=list, element=float)
    initial_weight: object = param(1 * mV, "initial weight of the synapse", unit=mV)

    def __post_init__(self):
        validate(self)
        if len(self.reward_times) != len(self.reward_values):
            raise SpecError("SpikePatternSpec.reward_values", f"must give one value per reward time "
                            f"({len(self.reward_times)})", self.reward_values)
        if list(self.reward_times) != sorted(self.reward_times):
            raise SpecError("SpikePatternSpec.reward_times", "must be in increasing order",
                            [str(t) for t in self.reward_times])


class SpikePattern(_HandPlaced):
    """Florian (2007), Fig. 1: one synapse, a fixed spike pattern, a reward signal +1 then -1."""

    kind = "spike_pattern"
    spec_class = SpikePatternSpec
    description = "Florian (2007) Fig. 1: one synapse under a fixed pre/post pattern and a reward signal r(t)"
    recorded = ("weight", "eligibility", "pre_trace", "post_trace", "third_factor")

    def __init__(self, spec, model, seed):
        super().__init__(spec, model, seed)
        self.pre = _steps(spec.pre, model.dt, self.steps, "task.pre")
        self.post = _steps(spec.post, model.dt, self.steps, "task.post")
        self.changes = _steps(spec.reward_times, model.dt, self.steps, "task.reward_times")

    def contribute(self, recipe, layout):
        clamp(recipe, layout, layout.output)
        schedule(recipe, layout, levels=True)

    def experiment_values(self, layout, rng):
        raster = np.zeros((1, self.steps, 1))
        raster[0, self.pre, 0] = 1
        forced = np.zeros((self.steps, 1))
        forced[self.post, 0] = 1
        levels = np.zeros((self.steps, 1))
        for start, value in zip(self.changes, self.spec.reward_values):
            levels[start:, 0] = value
        return raster, {(f"clamp_{layout.output}", "values"): forced, **schedule_values(levels=levels)}

    def tables(self, observation, layout):
        dt = float(layout.dt)
        return {"spikes.csv": pd.DataFrame({"t_s": np.concatenate([self.pre, self.post]) * dt,
                                            "neuron": ["pre"] * len(self.pre) + ["post"] * len(self.post)})}

    def summary(self, metrics, observation, layout, recipe=None):
        weight = metrics[metrics.metric == "weight"].value
        return dict(initial_weight_mv=float(self.spec.initial_weight / mV), final_weight_mv=float(weight.iloc[-1]),
                    weight_change_mv=float(weight.iloc[-1] - self.spec.initial_weight / mV))


@dataclass(frozen=True)
class StdpPairingSpec:
    """One pre/post pairing per copy, followed by one reward pulse."""

    delta_t_min: object = param(-50 * ms, "most negative t_post - t_pre", unit=ms)
    delta_t_max: object = param(50 * ms, "most positive t_post - t_pre", unit=ms)
    pairings: int = param(101, "number of pairings (copies), evenly spaced in delta t", kind=int, check=at_least(1))
    first_spike: object = param(100 * ms, "time of the earlier spike of each pair", unit=ms, check=positive)
    reward_delay: object = param(1 * second, "reward pulse this long after the later spike", unit=ms, check=positive)
    pulse: float = param(1.0, "size of the reward pulse")
    duration: object = param(3 * second, "length of the run", unit=ms, check=positive)
    trace_delta_t: object = param(10 * ms, "record the traces of the pairing nearest this delta t", unit=ms)
    initial_weight: object = param(1 * mV, "initial weight of every synapse", unit=mV)

    def __post_init__(self):
        validate(self)
        if not self.delta_t_max >= self.delta_t_min:
            raise SpecError("StdpPairingSpec.delta_t_max", f"must be >= delta_t_min ({self.delta_t_min})",
                            str(self.delta_t_max))
        span = max(abs(self.delta_t_min), abs(self.delta_t_max))
        if not self.first_spike + span + self.reward_delay < self.duration:
            raise SpecError("StdpPairingSpec.duration", "must hold the pairing and the reward (first_spike + "
                            "max |delta t| + reward_delay)", str(self.duration))


class StdpPairing(_HandPlaced):
    """The STDP window of a rule, Δw against Δt, from one pairing and one reward per copy."""

    kind = "stdp_pairing"
    spec_class = StdpPairingSpec
    description = "the STDP window: one pre/post pairing per copy at delta t, then a reward pulse; traces of one"
    reward_pulses = True
    recorded = ("weight", "eligibility", "dopamine")

    def __init__(self, spec, model, seed):
        super().__init__(spec, model, seed)
        dt = model.dt
        lo, hi = (int(round(float(x / dt))) for x in (spec.delta_t_min, spec.delta_t_max))
        self.delta = np.unique(np.round(np.linspace(lo, hi, spec.pairings)).astype(int))  # in steps
        self.copies = self.blocks = len(self.delta)
        first = int(round(float(spec.first_spike / dt)))
        self.pre = first + np.maximum(-self.delta, 0)
        self.post = first + np.maximum(self.delta, 0)
        self.reward = np.maximum(self.pre, self.post) + int(round(float(spec.reward_delay / dt)))
        self.traced = int(np.argmin(np.abs(self.delta * float(dt) - float(spec.trace_delta_t))))
        self.record = [self.traced]

    @classmethod
    def copies_for(cls, spec):
        return spec.pairings

    @classmethod
    def quick(cls, table):
        """Eleven pairings instead of 101."""
        if isinstance(table.get("pairings", 101), int):
            table["pairings"] = min(table.get("pairings", 101), 11)

    def contribute(self, recipe, layout):
        clamp(recipe, layout, layout.output)
        schedule(recipe, layout, pulses=True)

    def experiment_values(self, layout, rng):
        copies = np.arange(self.copies)
        raster = np.zeros((self.copies, self.steps, 1))
        raster[copies, self.pre, 0] = 1
        forced = np.zeros((self.steps, self.copies))
        forced[self.post, copies] = 1
        pulses = np.zeros((self.steps, self.copies))
        pulses[self.reward, copies] = self.spec.pulse
        return raster, {(f"clamp_{layout.output}", "values"): forced, **schedule_values(pulses=pulses)}

    def tables(self, observation, layout):
        dt = float(layout.dt)
        measured = observation.deltas[next(iter(observation.deltas))][0].ravel() if observation.deltas else \
            observation.weights[0].ravel() - float(self.spec.initial_weight / mV)
        after = (self.reward - np.maximum(self.pre, self.post)) * dt
        table = pd.DataFrame({"delta_t_ms": self.delta * dt * 1e3, "dw_mv": measured, "reward_after_s": after})
        theory = getattr(self.rule, "pairing_closed_form", None)
        if theory is not None:  # the rule's closed form for one pairing and one pulse, where it has one
            expected = theory(self.delta * dt, after, self.spec.pulse, (self.steps - self.reward) * dt)
            if expected is not None:
                table["closed_form_mv"] = expected
        return {"window.csv": table}

    def summary(self, metrics, observation, layout, recipe=None):
        window = self.tables(observation, layout)["window.csv"]
        best = window.iloc[int(np.argmax(window.dw_mv.to_numpy()))]
        out = dict(pairings=len(window), max_dw_mv=float(window.dw_mv.max()), min_dw_mv=float(window.dw_mv.min()),
                   delta_t_of_max_ms=float(best.delta_t_ms))
        if "closed_form_mv" in window:
            scale = float(np.abs(window.closed_form_mv).max())
            out["max_error_vs_closed_form"] = float(np.abs(window.dw_mv - window.closed_form_mv).max() / scale) \
                if scale > 0 else None
        return out
