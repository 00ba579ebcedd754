r"""Student-teacher regression.

A fixed random *teacher* network of the student's shape and dynamics maps Gaussian inputs
:math:`x \sim N(0, s^2 I)` to targets :math:`y = r_L^{\mathrm{teacher}}(T)`. The student's loss
is the mean squared error of its output at the end of the trial,

.. math:: L = \frac{1}{B\, n_L} \sum_{b=1}^{B} \sum_{o=1}^{n_L} \big(r_{L,o}^{(b)}(T) - y_o^{(b)}\big)^2 ,

averaged over the B examples of a trial's batch. Every trial draws a fresh batch, so the
training loss is also an unbiased estimate of the generalisation loss.

References
----------
Gardner & Derrida (1989), Three unfinished works on the optimal storage capacity of networks.
J. Phys. A 22. Saad & Solla (1995), On-line learning in soft committee machines. Phys. Rev. E 52.
"""

import dataclasses
from dataclasses import dataclass

import numpy as np
from brian2 import ms

from .. import rng as rng_streams
from ..networks.rate import init_weights
from ..networks.rate_math import forward
from ..spec import at_least, param, positive, validate
from .base import Batch, Task


@dataclass(frozen=True)
class TeacherRegressionSpec:
    """Parameters of student-teacher regression.

    Parameters
    ----------
    batch : int
        Examples per trial, B.
    duration : Quantity (time)
        Trial length T; the loss is read at its end.
    input_std : float
        Standard deviation s of the input rates.
    teacher_gain : float
        Teacher weights ~ N(0, teacher_gain^2 / n_in).
    """

    batch: int = param(8, "examples per trial", kind=int, check=at_least(1))
    duration: object = param(100 * ms, "trial length; the output is read at its end", unit=ms, check=positive)
    input_std: float = param(1.0, "standard deviation of the Gaussian inputs", check=positive)
    teacher_gain: float = param(1.0, "teacher weights ~ N(0, teacher_gain^2 / n_in)", check=positive)

    def __post_init__(self):
        validate(self)


class TeacherRegression(Task):
    """Targets from a fixed teacher; per-example squared error at the end of the trial.

    The teacher is a rate network of the student's shape and dynamics with its own weights
    (stream ``teacher`` of the run's seed), simulated with the NumPy Euler maths.
    """

    kind = "teacher_regression"
    spec_class = TeacherRegressionSpec
    description = "regress the output of a fixed random teacher network of the same shape"
    families = ("feedforward_rate",)
    squared_error_readout = True  # the loss is the read-out's squared error: the block loop computes it in the run

    block = 64  # batches drawn and labelled at once: one teacher simulation serves 64 trials

    def __init__(self, spec, model, seed):
        super().__init__(spec, model, seed)
        self.n_inputs = model.sizes[0]
        steps = int(round(float(spec.duration / model.dt)))
        weights = init_weights(dataclasses.replace(model, init_gain=spec.teacher_gain),
                               rng_streams.stream(seed, "teacher"))
        self.teacher = lambda x: forward(weights, x, model.activation, model.a, steps)[-1]
        self._ready = []

    def sample(self, rng, batch=None):
        """A fresh batch: inputs (batch, n_0) and targets (batch, n_L); one condition.

        Batches are drawn ``block`` at a time from ``rng``, which gives the same numbers as
        drawing them one by one.
        """
        if not self._ready:
            inputs = rng.normal(0.0, self.spec.input_std, (self.block * self.spec.batch, self.n_inputs))
            targets = self.teacher(inputs)
            self._ready = list(zip(np.split(inputs, self.block), np.split(targets, self.block)))[::-1]
        inputs, targets = self._ready.pop()
        return Batch(inputs, targets, np.zeros(len(inputs), int))

    def training_summary(self, metrics, window=10):
        """``learning_time``: the first trial at which the mean loss of the last ``window`` logged
        trials is a tenth of that of the first ``window`` (None if never), a learning speed
        (Werfel et al. 2005 compare rules by it)."""
        loss = metrics[metrics.metric == "loss"].set_index("trial").value
        if len(loss) < 2 * window:
            return {}
        rolling = loss.rolling(window).mean()
        below = rolling.index[rolling <= 0.1 * loss.iloc[:window].mean()]
        return dict(learning_time=int(below[0]) if len(below) else None)

    @staticmethod
    def losses(outputs, targets):
        """Per-example loss, mean over output units: shape ``outputs.shape[:-1]``."""
        return np.mean((outputs - targets) ** 2, axis=-1)

    @staticmethod
    def output_gradient(outputs, targets):
        """dL/d(outputs) of the batch loss (the mean of :meth:`losses` over examples)."""
        return 2.0 * (outputs - targets) / outputs.size
