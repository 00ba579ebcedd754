r"""Ornstein–Uhlenbeck adaptation (OUA; García Fernández, Ahmad & van Gerven 2024).

Every plastic weight θ is an Ornstein–Uhlenbeck process around its own mean μ, and the mean
drifts towards the fluctuations that came with more reward than usual:

.. math::
    d\theta = \lambda (\mu - \theta)\, dt + \sigma\, dW, \qquad
    d\mu = \eta\, (r - \bar r)(\theta - \mu)\, dt, \qquad
    d\bar r = \epsilon\, (r - \bar r)\, dt,

with r(t) the instantaneous reward the task delivers (the neuromodulator's ``reward_level``) and
:math:`\bar r` its running average, one per network copy. The cumulative reward
:math:`G = \int r\, dt` is kept beside it.

Realisation: θ is the synapse's weight ``w`` itself, a stochastic synapse equation integrated by
Brian2's ``euler`` method, which for this additive noise is Euler–Maruyama (the reference code
uses diffrax's Euler–Heun, which for a constant diffusion coefficient is the same scheme);
:math:`\bar r` and G live in the neuromodulator group, and each synapse reads its copy's r and
:math:`\bar r` through linked variables. Learning happens continuously inside one run, so this
rule trains continuous tasks (``oua_regression``) and needs no trial loop.

Units: λ, η and ε are rates (1/s), σ is in 1/sqrt(s). Defaults: the paper's figure of the
one-parameter example (λ = η = ε = 1, σ = 0.3; reference code ``jesusgf96/OUA``).

References
----------
García Fernández, Ahmad & van Gerven (2024), Ornstein-Uhlenbeck adaptation as a mechanism for
learning in brains and machines. Entropy 26(12):1125. arXiv:2410.13563.
"""

from dataclasses import dataclass

import numpy as np
from brian2 import Hz

from ..errors import SpecError
from ..networks.neuromodulator import MODULATOR, neuromodulator
from ..networks.recipe import Regular
from ..spec import non_negative, param, validate
from .base import InNetworkRule, register_rule
from .builders import register_builder


@dataclass(frozen=True)
class OuaSpec:
    """Parameters of OUA (see the module docstring)."""

    lam: object = param(1 * Hz, "λ: rate at which θ returns to its mean μ", unit=Hz, check=non_negative)
    sigma: object = param(0.3 * Hz ** 0.5, "σ: noise amplitude of θ (1/sqrt(s))", unit=Hz ** 0.5, check=non_negative)
    eta: object = param(1 * Hz, "η: learning rate of the mean μ", unit=Hz, check=non_negative)
    eps: object = param(1 * Hz, "ε: rate of the reward average r̄", unit=Hz, check=non_negative)
    initial_reward_average: float = param(1.0, "r̄ at the start of the run (the reference code's r̄0 = 1)")

    def __post_init__(self):
        validate(self)


@register_rule
class OrnsteinUhlenbeckAdaptation(InNetworkRule):
    """OUA: weights as OU processes whose means follow the reward prediction error."""

    kind = "oua"
    spec_class = OuaSpec
    description = "Ornstein-Uhlenbeck adaptation: OU weights around means that drift with the reward error"
    model_families = ("recurrent_rate",)

    def check(self, model, task_class):
        if task_class.mode != "continuous":
            raise SpecError("task.kind", "oua learns continuously inside one run: it needs a continuous task (such as "
                            "oua_regression), not a trial task", task_class.kind)

    def run_values(self, context):
        return {(MODULATOR, "rbar"): self.spec.initial_reward_average}

    def update(self, trial, perturbation):
        raise NotImplementedError("oua learns continuously inside one run; it has no per-trial update")


@register_builder(OrnsteinUhlenbeckAdaptation, "recurrent_rate")
def build_oua(rule, recipe, layout):
    spec = rule.spec
    modulator = neuromodulator(recipe, layout)
    modulator.add("drbar/dt = oua_eps * (reward_level - rbar) : 1", "dcumulative_reward/dt = reward_level / second : 1")
    modulator.namespace["oua_eps"] = spec.eps
    modulator.method = "euler"
    recipe.run_value(MODULATOR, "rbar", spec.initial_reward_average)
    for projection in layout.projections:
        syn = recipe.synapses[projection.synapses]
        syn.model.remove("w : 1")
        syn.add("dw/dt = oua_lam * (mu - w) + oua_sigma * xi : 1 (clock-driven)",
                "dmu/dt = oua_eta * (mod_reward - mod_rbar) * (w - mu) : 1 (clock-driven)",
                "copy_oua : integer (constant)", "mod_reward : 1 (linked)", "mod_rbar : 1 (linked)")
        syn.method = "euler"
        syn.namespace.update(oua_lam=spec.lam, oua_sigma=spec.sigma, oua_eta=spec.eta)
        syn.initial["copy_oua"] = np.repeat(np.arange(layout.copies), projection.size)
        syn.linked["mod_reward"] = (MODULATOR, "reward_level", "copy_oua")
        syn.linked["mod_rbar"] = (MODULATOR, "rbar", "copy_oua")
        # The means start at the run's initial weights.
        syn.regular["oua_start"] = Regular(["mu = w"], dt=layout.duration, when="start", order=-10)
