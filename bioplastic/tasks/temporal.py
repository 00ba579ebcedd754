r"""A temporally extended regression task with a controllable effective input dimension.

Züge, Klos & Memmesheimer (2023) compare weight and node perturbation on tasks that extend over
T time steps, where one reward follows the whole trial. Their linear setting: a network
:math:`y_t = W x_t` must reproduce a teacher's :math:`y^*_t = W^* x_t` at every step of a fixed
input sequence, and the loss is summed over the steps. The inputs span only
:math:`N_\mathrm{eff} \le \min(N, T)` dimensions, which sets how many weight directions matter.

Here the T time steps are the T examples of one trial's batch: a feed-forward rate network read
at its read-out time computes every step's output in parallel, with each step's own node
perturbation. The inputs are the same every trial,

.. math:: X = s\, F E^\top, \qquad s^2 = T\, \|x\|^2_\mathrm{rms} / N_\mathrm{eff},

with F (T × N_eff) and E (N × N_eff) random orthonormal columns: the N_eff directions carry equal
power, and the mean squared norm of one step's input is ``input_norm``². The loss is the mean over
steps and outputs of the squared error (the sum over steps, divided by T and M).

Node perturbation gets the trial's loss only with ``credit = "trial"``; WP's perturbation is one
per trial anyway. :mod:`bioplastic.analysis.learning_curves` gives both rules' expected learning
curves in closed form.

References
----------
Züge, Klos & Memmesheimer (2023), Weight versus node perturbation learning in temporally extended
tasks: weight perturbation often performs similarly or better. Phys. Rev. X 13, 021006.
"""

from dataclasses import dataclass

import numpy as np
from brian2 import ms

from .. import rng as rng_streams
from ..errors import SpecError
from ..spec import at_least, param, positive, validate
from .base import Batch
from .teacher import TeacherRegression


@dataclass(frozen=True)
class TemporalRegressionSpec:
    """Parameters of the temporally extended regression.

    Parameters
    ----------
    steps : int
        T, the time steps of a trial (the examples of its batch).
    input_dim : int
        N_eff, the dimension the inputs span (at most T and the number of inputs N).
    input_norm : float
        Root mean square norm of one step's input vector.
    teacher_gain : float
        Teacher weights ~ N(0, teacher_gain^2 / n_in).
    duration : Quantity (time)
        How long the rate network runs before its output is read.
    """

    steps: int = param(16, "T, time steps of a trial (the examples of its batch)", kind=int, check=at_least(1))
    input_dim: int = param(4, "N_eff, the dimension the inputs span (<= steps and the number of inputs)",
                           kind=int, check=at_least(1))
    input_norm: float = param(1.0, "root mean square norm of one step's input", check=positive)
    teacher_gain: float = param(1.0, "teacher weights ~ N(0, teacher_gain^2 / n_in)", check=positive)
    duration: object = param(40 * ms, "how long the network runs before its output is read", unit=ms,
                             check=positive)

    def __post_init__(self):
        validate(self)

    @property
    def batch(self):
        """The trainer runs the T steps as one batch."""
        return self.steps


def low_rank_inputs(steps, n_inputs, dim, norm, rng):
    """``steps`` input vectors of ``n_inputs`` spanning ``dim`` directions with equal power.

    Their singular values are all :math:`s = \\mathrm{norm}\\sqrt{T/N_\\mathrm{eff}}`, so the
    mean squared norm of a row is ``norm``².
    """
    time_modes = np.linalg.qr(rng.normal(size=(steps, dim)))[0]
    input_modes = np.linalg.qr(rng.normal(size=(n_inputs, dim)))[0]
    return norm * np.sqrt(steps / dim) * time_modes @ input_modes.T


class TemporalRegression(TeacherRegression):
    """The same T-step input sequence every trial; one loss summed over its steps.

    The input sequence comes from stream ``inputs_fixed`` of the run's seed, the teacher from
    stream ``teacher``.
    """

    kind = "temporal_regression"
    spec_class = TemporalRegressionSpec
    description = ("a fixed T-step input sequence of effective dimension N_eff; regress a teacher at every step "
                   "(Züge et al. 2023)")
    families = ("feedforward_rate",)

    def __init__(self, spec, model, seed):
        super().__init__(spec, model, seed)
        if spec.input_dim > min(spec.steps, self.n_inputs):
            raise SpecError("task.input_dim", f"the inputs of {spec.steps} steps into {self.n_inputs} input units "
                            f"span at most {min(spec.steps, self.n_inputs)} dimensions", spec.input_dim)
        inputs = low_rank_inputs(spec.steps, self.n_inputs, spec.input_dim, spec.input_norm,
                                 rng_streams.stream(seed, "inputs_fixed"))
        self.sequence = Batch(inputs, self.teacher(inputs), np.zeros(spec.steps, int))

    def sample(self, rng, batch=None):
        """The fixed sequence (inputs (T, N), targets (T, M)); asked for ``batch`` examples, the
        sequence repeated to that length (the trainers ask for the spec's ``batch`` = T)."""
        repeats = 1 if batch is None else -(-batch // self.spec.steps)
        if repeats == 1:
            return self.sequence
        return Batch(*(np.tile(part, (repeats,) + (1,) * (part.ndim - 1))[:batch] for part in self.sequence))

    def training_summary(self, metrics, window=10):
        """``final_loss_window``: the mean loss of the last ``window`` logged trials, beside the
        teacher task's ``learning_time``."""
        summary = super().training_summary(metrics, window)
        loss = metrics[metrics.metric == "loss"].value
        if len(loss) >= window:
            summary["final_loss_window"] = float(loss.iloc[-window:].mean())
        return summary
