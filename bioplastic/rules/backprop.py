r"""Backprop (BPTT): the exact-gradient reference learner.

.. math:: \Delta W = -\eta\, \nabla_W L

with :math:`\nabla_W L` from BPTT through the recorded Brian2 trajectory
(:mod:`bioplastic.gradients.bptt`; for recurrent LIF/ALIF networks the surrogate gradient,
:mod:`bioplastic.gradients.surrogate`). Not biologically plausible: it is the yardstick.

References
----------
Werbos (1990), Backpropagation through time: what it does and how to do it. Proc. IEEE 78(10).
"""

from dataclasses import dataclass

from ..spec import param, positive, validate
from .base import Rule, register_rule


@dataclass(frozen=True)
class BackpropSpec:
    """Parameters of backprop.

    Parameters
    ----------
    lr : float
        Learning rate η (dimensionless).
    """

    lr: float = param(0.05, "learning rate", check=positive)

    def __post_init__(self):
        validate(self)


@register_rule
class Backprop(Rule):
    """Gradient descent with the exact BPTT gradient."""

    kind = "backprop"
    spec_class = BackpropSpec
    description = "exact gradient descent through BPTT (the reference learner)"
    needs_gradient = True
    # recurrent LIF/ALIF networks: the surrogate gradient; feed-forward spiking ones have no per-trial gradient
    model_families = ("feedforward_rate", "recurrent_rate", "alif")

    def update(self, trial, perturbation):
        return [-self.spec.lr * g for g in trial.gradient.weights]
