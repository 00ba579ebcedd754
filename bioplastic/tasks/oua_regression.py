r"""The one-parameter example of Ornstein–Uhlenbeck adaptation (García Fernández et al. 2024).

A single weight θ maps a sinusoidal input :math:`u(t) = \sin(\omega t)` to the output
:math:`y = \tanh(\theta u)`; the target is :math:`y^* = \tanh(\theta^* u)` with θ* = 1, and the
reward, delivered at every step, is :math:`r = -(y - y^*)^2`. The run is one continuous
experiment: the ``oua`` rule learns inside it.

The network is the recurrent rate model reduced to that map: one input channel, one unit, no
recurrence (``g = 0``), ``tau = dt`` (so the unit's state is its input of the previous step,
:math:`x[n+1] = \theta\, u[n]`) and the read-out ``first_neuron`` (z = tanh(x)); the plastic
weight is the input weight (``plastic = "input"``). The target of step n is therefore
:math:`\tanh(\theta^* u[n-1])`, aligned with the output's one-step delay.

Metrics, every ``record_every``: ``theta``, ``mu``, ``reward``, ``reward_average`` (r̄) and
``cumulative_reward`` (G); beside them ``cumulative_reward_untrained``, the cumulative reward the
untrained parameter θ0 would have collected (the baseline of the paper's comparison).

Reference values (paper's figure settings: λ = η = ε = 1, σ = 0.3, dt = 0.05 s, T = 1000 s,
ω = 0.1 rad/s, θ0 = μ0 = 0, r̄0 = 1): the paper reports no final μ; an independent NumPy
Euler–Maruyama run of the reference equations gives μ(T) = 1.068 ± 0.019 over 15 seeds (μ settles
slightly above θ* because tanh saturates: overshooting θ costs less reward than undershooting).
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from brian2 import Hz, second

from ..errors import SpecError
from ..networks.neuromodulator import MODULATOR, neuromodulator
from ..networks.recurrent_rate import STEP
from ..spec import param, positive, validate
from .base import CONTINUOUS_COLUMNS, ContinuousTask, record_rows

TARGET = "oua_target"


@dataclass(frozen=True)
class OuaRegressionSpec:
    """Parameters of the one-parameter OUA example."""

    duration: object = param(1000 * second, "length of the run", unit=second, check=positive)
    omega: object = param(0.1 * Hz, "angular frequency ω of the input u = sin(ω t) (rad/s)", unit=Hz, check=positive)
    theta_target: float = param(1.0, "θ*: the target is tanh(θ* u)")
    theta_initial: float = param(0.0, "θ0 = μ0 at the start")
    record_every: object = param(1 * second, "interval of the recorded metrics", unit=second, check=positive)

    def __post_init__(self):
        validate(self)


class OuaRegression(ContinuousTask):
    """tanh(θ u) regression toward θ*, learned inside one run; see the module docstring."""

    kind = "oua_regression"
    spec_class = OuaRegressionSpec
    description = "one-parameter tanh(theta u) regression learned online by OUA (Garcia Fernandez et al. 2024)"
    families = ("recurrent_rate",)

    @classmethod
    def quick(cls, table):
        table["duration"] = "50 s"

    def __init__(self, spec, model, seed):
        super().__init__(spec, model, seed)
        wanted = dict(n_inputs=1, n_neurons=1, n_outputs=1, readout="first_neuron", plastic="input")
        for key, value in wanted.items():
            if getattr(model, key) != value:
                raise SpecError(f"model.{key}", f"the oua_regression task is y = tanh(theta u): needs {key} = {value!r}",
                                getattr(model, key))
        if model.g != 0 or model.noise != 0 or model.x_init != 0:
            raise SpecError("model.g", "the oua_regression task has no recurrence and no noise of its own: needs g, "
                            "noise and x_init = 0", model.g)
        if abs(model.a - 1) > 1e-12:
            raise SpecError("model.tau", "the oua_regression task maps the input without dynamics: needs tau = dt",
                            str(model.tau))
        self.steps = int(round(float(spec.duration / model.dt)))
        every = float(spec.record_every / model.dt)
        if abs(every - round(every)) > 1e-9:
            raise SpecError("task.record_every", f"must be a whole number of model.dt steps (dt = {model.dt})",
                            str(spec.record_every))
        self.t = np.arange(self.steps) * float(model.dt)
        self.u = np.sin(float(spec.omega) * self.t)

    def contribute(self, recipe, layout):
        recipe.timed_array(TARGET, layout.steps, layout.copies)
        recipe.run_value(TARGET, "values", 0.0)
        readout = recipe.group("readout")
        readout.add(f"y_target = {TARGET}(t, i) : 1")
        neuromodulator(recipe, layout)
        syn = recipe.connect("reward", "readout", MODULATOR, np.arange(layout.copies), np.arange(layout.copies))
        syn.add("reward_level_post = -(z_pre - y_target_pre)**2 : 1 (summed)")
        syn.summed_order["reward_level_post"] = STEP["feedback"]

    def contribute_after_rule(self, recipe, layout):
        every = self.spec.record_every
        recipe.monitor("record_weight", "input_weights", variables=("w", "mu"), record=True, dt=every, when="end")
        recipe.monitor("record_reward", MODULATOR, variables=("reward_level", "rbar", "cumulative_reward"),
                       record=True, dt=every, when="end")

    def initial_weights(self, weights, layout):
        return [np.full((1, 1), self.spec.theta_initial)]

    def experiment_values(self, layout, rng):
        inputs = np.broadcast_to(self.u[None, :, None], (layout.copies, self.steps, 1))
        delayed = np.concatenate([[0.0], self.u[:-1]])
        target = np.tanh(self.spec.theta_target * delayed)
        return inputs, {(TARGET, "values"): np.repeat(target[:, None], layout.copies, axis=1)}

    def metrics(self, observation, layout):
        weight, reward = observation.monitors["record_weight"], observation.monitors["record_reward"]
        t = weight["t"]
        rows = record_rows(t, "theta", weight["w"][:, 0]) + record_rows(t, "mu", weight["mu"][:, 0])
        for metric, variable in (("reward", "reward_level"), ("reward_average", "rbar"),
                                 ("cumulative_reward", "cumulative_reward")):
            rows += record_rows(reward["t"], metric, reward[variable][:, 0])
        rows += record_rows(t, "cumulative_reward_untrained", self._untrained_cumulative(t))
        return pd.DataFrame(rows, columns=CONTINUOUS_COLUMNS)

    def _untrained_cumulative(self, times):
        """G(t) of the parameter left at θ0, at the recorded times (same discretisation as the run:
        the reward of step n is collected over dt; a monitor at the end of step n sees n + 1 steps)."""
        delayed = np.concatenate([[0.0], self.u[:-1]])
        dt = self.t[1] - self.t[0] if len(self.t) > 1 else float(self.spec.duration)
        rewards = -(np.tanh(self.spec.theta_initial * delayed) - np.tanh(self.spec.theta_target * delayed)) ** 2
        cumulative = np.cumsum(rewards) * dt
        index = np.clip(np.round(np.asarray(times) / dt).astype(int), 0, len(cumulative) - 1)
        return cumulative[index]

    def summary(self, metrics, observation, layout, recipe=None):
        def last(name):
            return float(metrics[metrics.metric == name].value.iloc[-1])

        mu = metrics[metrics.metric == "mu"].value.to_numpy()
        tail = mu[int(0.9 * len(mu)):]
        return dict(final_mu=last("mu"), final_theta=last("theta"), mean_mu_last_10pct=float(tail.mean()),
                    cumulative_reward=last("cumulative_reward"),
                    cumulative_reward_untrained=last("cumulative_reward_untrained"),
                    theta_target=self.spec.theta_target)
