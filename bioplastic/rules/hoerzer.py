r"""Reward-modulated read-out learning with a binary modulatory signal (Hoerzer, Legenstein & Maass 2014).

The read-out explores with its own noise, :math:`z(t) = w^\top r(t) + \xi(t)` with
:math:`\xi \sim U(-A, A)` drawn every step (``exploration``), and learns online, at every step of
the trial, from how its performance compares with its recent past:

.. math::
    P(t) = -\big(z(t) - f(t)\big)^2, \qquad M(t) = [P(t) > \bar P(t)], \\
    \Delta w(t) = \eta(t)\, \big(z(t) - \bar z(t)\big)\, M(t)\, r(t),

with :math:`\bar P` and :math:`\bar z` low-pass filtered (per step,
:math:`\bar P \leftarrow \alpha \bar P + (1 - \alpha) P`, ``trace_decay`` α = 0.8 for τ = 5 ms at
dt = 1 ms, as in the public reimplementations), the target f(t) the task's (scored steps only),
and :math:`\eta(t) = \eta_0 / (1 + t / \tau_\eta)` over the whole training time (``lr``,
``lr_decay_time``; 0 keeps η constant). The comparison uses the values *before* this step's
update of the traces.

Realisation: the task writes its target into the read-out group every step; the read-out's
noise, P, M and the traces are per read-out unit, and every read-out synapse accumulates its
change into ``acc_hoerzer``. With ``apply = "online"`` (the default, as in the paper) the weights
also move at every step during training; a dry run (``align``) keeps them fixed and returns the
accumulated change at these weights. The network's own exploration noise is ``model.noise``.

Parameters (Hoerzer et al. 2014 as reimplemented publicly; the paper's methods were not
available to us): N = 1000, τ = 50 ms, g = 1.5, feedback ~ U(-1, 1), A = 0.5, η0 = 5e-4,
τ_η = 20 s.

References
----------
Hoerzer, Legenstein & Maass (2014), Emergence of complex computational structures from chaotic
neural networks through reward-modulated Hebbian learning. Cereb. Cortex 24(3):677-690.
"""

from dataclasses import dataclass

from brian2 import second

from ..errors import SpecError
from ..networks.recipe import Regular
from ..networks.recurrent_rate import STEP, draw_kicks
from ..spec import fraction, non_negative, param, positive, validate
from .base import InNetworkRule, register_rule
from .builders import register_builder


@dataclass(frozen=True)
class HoerzerSpec:
    """Parameters of the Hoerzer read-out rule (see the module docstring)."""

    lr: float = param(5e-4, "η0, the learning rate per step", check=positive)
    lr_decay_time: object = param(20 * second, "τ_η: η(t) = η0 / (1 + t / τ_η) over training time (0: constant)",
                                  unit=second, check=non_negative)
    exploration: float = param(0.5, "A: read-out noise ~ U(-A, A) every step", check=non_negative)
    trace_decay: float = param(0.8, "α of the traces of P and z, per step", check=fraction)
    apply: str = param("online", "online: the weights move at every step of training; trial_end: once per trial",
                       kind=str, choices=("online", "trial_end"))

    def __post_init__(self):
        validate(self)


@register_rule
class Hoerzer(InNetworkRule):
    """Hoerzer et al.'s (2014) reward-modulated read-out learning."""

    kind = "hoerzer"
    spec_class = HoerzerSpec
    description = "Hoerzer 2014: read-out noise, Hebbian update gated by performance beating its running average"
    model_families = ("recurrent_rate",)
    duration = 0.0  # seconds per trial; the builder records it from the network's layout

    def __init__(self, spec):
        super().__init__(spec)
        self.trained_time = 0.0  # seconds of training so far (for η(t))

    def check(self, model, task_class):
        if model.plastic != "readout":
            raise SpecError("model.plastic", "the hoerzer rule trains the read-out only: needs plastic = \"readout\"",
                            model.plastic)
        if task_class.mode != "trials" or not getattr(task_class, "target_in_network", False):
            raise SpecError("task.kind", "the hoerzer rule needs a task that gives the read-out a target over time "
                            "(dnms, pattern_generation)", task_class.kind)

    def learning_rate(self):
        decay = float(self.spec.lr_decay_time)
        return self.spec.lr / (1 + self.trained_time / decay) if decay > 0 else self.spec.lr

    def run_values(self, context):
        online = float(self.spec.apply == "online" and not context.dry_run)
        return {("readout", "hoerzer_lr"): self.learning_rate(), ("readout", "hoerzer_online"): online,
                ("readout", "kick_amplitude"): self.spec.exploration, ("readout", "kick_probability"): 1.0}

    def observe(self, trial):
        self.trained_time += self.duration


@register_builder(Hoerzer, "recurrent_rate")
def build_hoerzer(rule, recipe, layout):
    rule.duration = float(layout.duration)
    draw_kicks(recipe, "readout")  # the read-out's exploration noise
    readout = recipe.group("readout")
    readout.add("P : 1", "P_bar : 1", "z_bar : 1", "hoerzer_factor : 1", "hoerzer_lr : 1 (shared, constant)",
                "hoerzer_online : 1 (shared, constant)")
    readout.namespace["hoerzer_decay"] = rule.spec.trace_decay
    readout.regular["hoerzer_factor"] = Regular([
        "P = -(z - y_target)**2",
        "hoerzer_factor = hoerzer_lr * (z - z_bar) * int(P > P_bar) * scored"], when="groups", order=STEP["factor"])
    readout.regular["hoerzer_trace"] = Regular([
        "P_bar = hoerzer_decay * P_bar + (1 - hoerzer_decay) * P",
        "z_bar = hoerzer_decay * z_bar + (1 - hoerzer_decay) * z"], when="groups", order=STEP["trace"])
    for variable in ("hoerzer_lr", "hoerzer_online"):
        recipe.run_value("readout", variable, 0.0)
    variable = rule.delta_variable
    for projection in layout.projections:
        syn = recipe.synapses[projection.synapses]
        syn.add(f"{variable} : 1")
        syn.regular[rule.kind] = Regular([f"{variable} += hoerzer_factor_post * r_pre",
                                          "w += hoerzer_online_post * hoerzer_factor_post * r_pre"],
                                         when="groups", order=STEP["eligibility"])
    recipe.declare_delta(rule.kind, variable)
