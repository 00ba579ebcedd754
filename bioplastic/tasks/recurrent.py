r"""Tasks for recurrent rate networks: a target for the read-out over time.

Both tasks give, per example, an input stimulus (steps, n_inputs) and a target for the read-out
at every step, NaN where the step is not scored. The loss of one example is the mean, over its
scored steps and outputs, of the error :math:`|z - y|` (``dnms``, as Miconi; ``error =
"squared"`` for the smooth alternative) or :math:`(z - y)^2` (``pattern_generation``); the reward
is minus the loss. (The absolute error's kinks matter: where the batch's per-example gradients
nearly cancel, a perturbation rule's expected update can point away from the BPTT gradient of
the absolute error, while with the squared error it follows it.)

* ``dnms``, delayed non-match-to-sample (Miconi 2017). Two stimuli, each A or B (input channel 0
  or 1 at 1.0 for ``stimulus``), the second ``delay`` after the first ends; the read-out must give
  +``target`` when they differ and -``target`` when they match, scored in the last ``response``
  of the trial. Channel 2 is a constant bias. The four trial types AA, AB, BA, BB (conditions
  0..3) come in turn, as in Miconi's code. A trial counts as correct when its error is below
  ``criterion_error``; the task is learned at the first trial where at least
  ``criterion_fraction`` of the last ``criterion_trials`` trials were correct (Miconi's
  ``ploterr_single.py``: 95 of the last 100 below 1.0).
* ``pattern_generation``: a periodic target, a sum of sines, for the read-out of an autonomous
  network (Sussillo & Abbott 2009; Hoerzer, Legenstein & Maass 2014), scored after a washout;
  channel 0 is a constant bias.

References
----------
Miconi (2017), Biologically plausible learning in recurrent neural networks reproduces neural
dynamics observed during cognitive tasks. eLife 6:e20899 (code: ThomasMiconi/
BiologicallyPlausibleLearningRNN, ``dnms/net.cpp``). Hoerzer, Legenstein & Maass (2014),
Emergence of complex computational structures from chaotic neural networks through
reward-modulated Hebbian learning. Cereb. Cortex 24(3).
"""

from dataclasses import dataclass

import numpy as np
from brian2 import Hz, ms

from .. import rng as rng_streams
from ..errors import SpecError
from ..networks.recipe import Readout, Regular
from ..networks.recurrent_rate import STEP
from ..spec import at_least, param, positive, validate
from .base import Batch, Task

TRIAL_TYPES = ("AA", "AB", "BA", "BB")


def _steps(duration, dt):
    return int(round(float(duration / dt)))


TARGET, SCORED, ERROR_WEIGHT = "readout_target", "readout_scored", "readout_error_weight"


class _ReadoutTarget(Task):
    """A target for the read-out at every scored step (NaN elsewhere); ``error`` is ``absolute``
    or ``squared``. The target also reaches the network: the read-out units hold ``y_target``,
    ``scored`` (1 on scored steps) and ``error_weight`` at every step, for rules that learn from
    the error online. ``error_weight`` makes the loss's derivative local in time: an example's
    dL/dy[t] is ``error_weight * 2 (y - y_target)`` for the squared error,
    ``error_weight * sign(y - y_target)`` for the absolute one (1 / the number of scored values,
    0 on unscored steps)."""

    families = ("recurrent_rate", "alif")
    error = "absolute"
    target_in_network = True
    error_in_network = True

    def contribute(self, recipe, layout):
        columns = layout.size("readout")
        for name in (TARGET, SCORED, ERROR_WEIGHT):
            recipe.timed_array(name, layout.steps, columns)
            recipe.run_value(name, "values", 0.0)
        readout = recipe.group("readout")
        readout.add("y_target : 1", "scored : 1", "error_weight : 1")
        readout.regular["target"] = Regular([f"y_target = {TARGET}(t, i)", f"scored = {SCORED}(t, i)",
                                             f"error_weight = {ERROR_WEIGHT}(t, i)"], when="groups", order=STEP["rate"])
        if layout.block:  # the loss inside the network, for a block form: every step's error, weighted
            output = recipe.readout.plus[0]  # the read-out's variable: z (rate networks), y (LIF/ALIF)
            error = f"abs({output} - y_target)" if self.error == "absolute" else f"({output} - y_target)**2"
            readout.add("error_sum : 1")
            readout.regular["error_sum"] = Regular([f"error_sum += error_weight * {error}"], when="end", order=-1)
            # error_weight is 1 / (scored steps x outputs): the outputs' mean of n_out x their sums is the loss
            n = layout.groups["readout"]
            recipe.readout = Readout("readout", (output,), error=f"{n} * error_sum" if n > 1 else "error_sum")

    def run_values(self, batch, layout):
        targets = np.asarray(batch.targets, float)
        targets = np.tile(targets, (layout.copies // len(targets), 1))  # (copies, steps * n_out)
        count = np.isfinite(targets).sum(axis=1)  # scored values per example
        per_step = targets.reshape(layout.copies, layout.steps, -1).transpose(1, 0, 2).reshape(layout.steps, -1)
        scored = np.isfinite(per_step)
        per_column = np.repeat(1.0 / np.maximum(count, 1), per_step.shape[1] // layout.copies)
        return {(TARGET, "values"): np.where(scored, per_step, 0.0), (SCORED, "values"): scored.astype(float),
                (ERROR_WEIGHT, "values"): scored * per_column[None, :]}

    def losses(self, outputs, targets):
        """Per-example loss: the mean error over scored steps and outputs, shape ``outputs.shape[:-1]``."""
        difference = np.asarray(outputs) - targets
        scored = np.isfinite(targets)
        error = np.abs(difference) if self.error == "absolute" else difference ** 2
        return np.where(scored, error, 0.0).sum(axis=-1) / scored.sum(axis=-1)

    def output_gradient(self, outputs, targets):
        """dL/d(outputs) of the batch loss (the mean of :meth:`losses` over the batch's examples)."""
        difference = np.asarray(outputs) - targets
        scored = np.isfinite(targets)
        slope = np.sign(difference) if self.error == "absolute" else 2.0 * difference
        per_example = np.where(scored, slope, 0.0) / scored.sum(axis=-1, keepdims=True)
        return per_example / outputs.shape[0]

    def _check_inputs(self, model, needed):
        if model.n_inputs != needed:
            raise SpecError("model.n_inputs", f"the {self.kind} task drives {needed} input channels", model.n_inputs)


@dataclass(frozen=True)
class DnmsSpec:
    """Parameters of delayed non-match-to-sample (defaults: Miconi 2017)."""

    batch: int = param(1, "trials run side by side per update (the types come in turn)", kind=int, check=at_least(1))
    duration: object = param(1000 * ms, "trial length", unit=ms, check=positive)
    stimulus: object = param(200 * ms, "length of each stimulus", unit=ms, check=positive)
    delay: object = param(200 * ms, "gap between the end of the first stimulus and the second", unit=ms,
                          check=positive)
    response: object = param(200 * ms, "the scored window at the end of the trial", unit=ms, check=positive)
    target: float = param(0.98, "the read-out should give +target for non-match, -target for match", check=positive)
    bias: float = param(1.0, "value of the constant input channel 2")
    error: str = param("absolute", "per-step error: absolute (Miconi) or squared", kind=str,
                       choices=("absolute", "squared"))
    criterion_error: float = param(1.0, "a trial is correct when its error is below this", check=positive)
    criterion_trials: int = param(100, "trials in the window of the learning criterion", kind=int, check=at_least(1))
    criterion_fraction: float = param(0.95, "fraction of correct trials in the window that counts as learned",
                                      check=positive)

    def __post_init__(self):
        validate(self)
        if 2 * self.stimulus + self.delay + self.response > self.duration:
            raise SpecError("DnmsSpec.duration", "must hold both stimuli, the delay and the response window "
                            "(2 stimulus + delay + response)", str(self.duration))


class DelayedNonMatch(_ReadoutTarget):
    """Delayed non-match-to-sample; see the module docstring."""

    kind = "dnms"
    spec_class = DnmsSpec
    description = "delayed non-match-to-sample (Miconi 2017): respond +1 when two stimuli differ, -1 when they match"

    def __init__(self, spec, model, seed):
        super().__init__(spec, model, seed)
        self._check_inputs(model, 3)
        self.steps, dt = _steps(spec.duration, model.dt), model.dt
        stim, delay, response = (_steps(x, dt) for x in (spec.stimulus, spec.delay, spec.response))
        self.windows = (slice(0, stim), slice(stim + delay, 2 * stim + delay))
        self.scored = slice(self.steps - response, self.steps)
        self.n_outputs = model.n_outputs
        self.error = spec.error
        self._next = 0

    @classmethod
    def n_conditions(cls, spec):
        return len(TRIAL_TYPES)

    @classmethod
    def quick(cls, table):
        """A 200 ms trial with the same structure (stimulus, delay, stimulus, response)."""
        table.update(duration="200 ms", stimulus="40 ms", delay="40 ms", response="40 ms")
        if isinstance(table.get("criterion_trials", 100), int):
            table["criterion_trials"] = min(table.get("criterion_trials", 100), 4)

    def example(self, condition):
        """Input (steps, 3) and target (steps * n_out) of one trial type (0..3: AA, AB, BA, BB)."""
        first, second = divmod(condition, 2)
        inputs = np.zeros((self.steps, 3))
        inputs[self.windows[0], first] = 1.0
        inputs[self.windows[1], second] = 1.0
        inputs[:, 2] = self.spec.bias
        targets = np.full((self.steps, self.n_outputs), np.nan)
        targets[self.scored] = self.spec.target if first != second else -self.spec.target
        return inputs, targets.ravel()

    def sample(self, rng, batch=None):
        size = batch or self.spec.batch
        conditions = (self._next + np.arange(size)) % 4
        self._next = (self._next + size) % 4
        inputs, targets = zip(*(self.example(c) for c in conditions))
        return Batch(np.stack(inputs), np.stack(targets), conditions)

    def trial_metrics(self, trial):
        errors = np.asarray(trial.losses)[0]
        rows = [("correct", float(np.mean(errors < self.spec.criterion_error)))]
        for c, name in enumerate(TRIAL_TYPES):
            chosen = np.asarray(trial.conditions) == c
            if chosen.any():
                rows.append((f"error_{name}", float(errors[chosen].mean())))
        return rows

    def training_summary(self, metrics):
        """``trials_to_criterion``: the first trial whose window of the last ``criterion_trials``
        logged trials holds at least ``criterion_fraction`` correct (None if never)."""
        correct = metrics[metrics.metric == "correct"].set_index("trial").value
        window = self.spec.criterion_trials
        rolling = correct.rolling(window, min_periods=window).mean()
        reached = rolling.index[rolling >= self.spec.criterion_fraction - 1e-12]
        return dict(trials_to_criterion=int(reached[0]) + 1 if len(reached) else None,
                    final_correct=float(correct.tail(window).mean()) if len(correct) else None)


@dataclass(frozen=True)
class PatternGenerationSpec:
    """Parameters of periodic pattern generation (a sum of sines)."""

    batch: int = param(1, "trials run side by side per update", kind=int, check=at_least(1))
    input: str = param("bias", "the network's input: bias (one constant channel of 1) or frozen_poisson (every "
                       "channel a Poisson spike train at input_rate, drawn once per seed and repeated every trial, as "
                       "in Bellec et al. 2020)", kind=str, choices=("bias", "frozen_poisson"))
    input_rate: object = param(50 * Hz, "frozen_poisson: rate of every input channel", unit=Hz, check=positive)
    duration: object = param(1000 * ms, "trial length", unit=ms, check=positive)
    washout: object = param(200 * ms, "unscored start of the trial", unit=ms)
    frequencies: list = param([1 * Hz, 2 * Hz, 3 * Hz, 4 * Hz], "frequencies of the target's sines", kind=list,
                              unit=Hz)
    amplitudes: list = param([0.87, 0.43, 0.14, 0.29], "amplitudes of the target's sines", kind=list, element=float)

    def __post_init__(self):
        validate(self)
        if len(self.frequencies) != len(self.amplitudes) or not self.frequencies:
            raise SpecError("PatternGenerationSpec.amplitudes", "must give one amplitude per frequency",
                            self.amplitudes)
        if not 0 * ms <= self.washout < self.duration:
            raise SpecError("PatternGenerationSpec.washout", "must lie in [0, duration)", str(self.washout))


class PatternGeneration(_ReadoutTarget):
    """A periodic target for the read-out, scored after a washout; see the module docstring."""

    kind = "pattern_generation"
    spec_class = PatternGenerationSpec
    description = "generate a periodic pattern (a sum of sines) at the read-out of an autonomous network"
    error = "squared"

    @classmethod
    def n_conditions(cls, spec):
        return 1  # every trial is the same

    @classmethod
    def quick(cls, table):
        table.update(duration="300 ms", washout="50 ms")

    def __init__(self, spec, model, seed):
        super().__init__(spec, model, seed)
        steps = _steps(spec.duration, model.dt)
        if spec.input == "bias":
            self._check_inputs(model, 1)
            self.inputs = np.ones((steps, 1))
        else:
            p = float(spec.input_rate * model.dt)
            if p > 1:
                raise SpecError("task.input_rate", f"must be <= 1 / model.dt ({float(1 / model.dt):g} Hz): at most one "
                                "spike per channel and step", str(spec.input_rate))
            self.inputs = (rng_streams.stream(seed, "frozen_input").random((steps, model.n_inputs)) < p).astype(float)
        t = np.arange(steps) * float(model.dt)
        wave = sum(a * np.sin(2 * np.pi * float(f) * t) for f, a in zip(spec.frequencies, spec.amplitudes))
        target = np.repeat(wave[:, None], model.n_outputs, axis=1)
        target[:_steps(spec.washout, model.dt)] = np.nan
        self.target = target.ravel()

    def sample(self, rng, batch=None):
        size = batch or self.spec.batch
        return Batch(np.repeat(self.inputs[None], size, axis=0), np.repeat(self.target[None], size, axis=0),
                     np.zeros(size, int))
