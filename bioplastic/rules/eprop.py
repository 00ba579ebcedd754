r"""e-prop (Bellec et al. 2020): eligibility traces inside the run, a learning signal from the read-out error.

For recurrent LIF/ALIF networks (:mod:`bioplastic.networks.alif`). The gradient of the loss
factorises into a learning signal :math:`L_j[t]` per neuron and step and an eligibility trace
:math:`e_{ji}[t]` per synapse, which the synapse computes forward in time from what it sees:

.. math::
    \bar x_i[t+1] &= \alpha\, \bar x_i[t] + \mathrm{pre}_i[t], \\
    \epsilon^a_{ji}[t+1] &= \psi_j[t]\, \bar x_i[t] + (\rho - \psi_j[t] \beta_j)\, \epsilon^a_{ji}[t], \\
    e_{ji}[t] &= \psi_j[t]\, \big(\bar x_i[t] - \beta_j\, \epsilon^a_{ji}[t]\big), \qquad
    g_{ji} = \sum_t L_j[t]\, e_{ji}[t],

with ψ the model's pseudo-derivative, ``pre`` the input x[t+1] (input weights) or the spikes z[t]
(recurrent weights); :math:`\bar x` (the membrane's filter of the presynaptic activity) is one
trace per presynaptic neuron, :math:`\epsilon^a` (the adaptation's) one per synapse of an ALIF
neuron. The learning signal is the read-out error of the same step sent back through feedback
weights B, :math:`L_j[t] = \sum_k B_{jk}\, \partial L/\partial y_k[t]`, with ``feedback =
"symmetric"`` (:math:`B = W_\mathrm{out}^\top`: the read-out synapses send the error back
through their own weights, those of the trial's start) or ``"random"`` (fixed, from the model's
seed, on synapses of their own). The read-out weights learn from
:math:`\sum_t \partial L/\partial y_k[t]\, \hat z_j[t]`, :math:`\hat z = \kappa \hat z + z`, which
is their exact gradient. The loss's derivative at each step comes from the task inside the run
(``error_weight`` (y − y*)·2: the squared error).

At the end of a trial the update is :math:`\Delta W = -\eta\, \langle g \rangle` (the mean over
the trial's examples); a dry run returns it without applying it. In the block loop the network
applies it itself at every trial's end (:func:`build_eprop_block`, one example per trial). On LIF
neurons the accumulation of g is a matrix loop once a step (:mod:`bioplastic.networks.dense`).

With the *true* learning signal (the total derivative dL/dz_j[t] through the read-out and the
recurrent synapses, which needs the future and so is not online) the factorisation is exact: g
is the surrogate-gradient BPTT gradient. ``bioplastic gradcheck`` checks that identity on the
Brian2 run itself, by feeding the true signal (computed by NumPy from a first run) into a second
run of the same network (:func:`true_signal_gradient`).

References
----------
Bellec, Scherr, Subramoney, Hajek, Salaj, Legenstein & Maass (2020), A solution to the learning
dilemma for recurrent networks of spiking neurons. Nat. Commun. 11:3625.
"""

import copy
from dataclasses import dataclass

import numpy as np

from ..errors import SpecError
from ..networks.alif import CONNECTIONS, STEP
from ..networks.block import ACTIVE as BLOCK_ACTIVE, at_trial_end
from ..networks.dense import dense_accumulate
from ..networks.recipe import Regular
from ..networks.recurrent_rate import synapse_order
from ..spec import param, positive, validate
from .base import InNetworkRule, register_rule
from .builders import one_example_per_trial, register_block_builder, register_builder

FEEDBACK, GIVEN_SIGNAL = "eprop_feedback", "eprop_given_signal"


@dataclass(frozen=True)
class EpropSpec:
    """Parameters of e-prop."""

    lr: float = param(0.05, "learning rate η: ΔW = -η <g> at the end of every trial", check=positive)
    feedback: str = param("symmetric", "feedback weights of the learning signal: symmetric (W_out transposed) or "
                          "random (fixed)", kind=str, choices=("symmetric", "random"))

    def __post_init__(self):
        validate(self)


@register_rule
class Eprop(InNetworkRule):
    """e-prop; see the module docstring."""

    kind = "eprop"
    spec_class = EpropSpec
    description = "e-prop (Bellec 2020): eligibility traces x read-out error through symmetric or random feedback"
    model_families = ("alif",)
    given_signal = False  # True: the learning signal is read from a TimedArray (the gradcheck's true signal)

    def check(self, model, task_class):
        if not getattr(task_class, "target_in_network", False) or getattr(task_class, "error", None) != "squared":
            raise SpecError("task.kind", "e-prop's learning signal is the read-out error y - y*: it needs a task "
                            "scored by the squared error of a read-out target (pattern_generation)", task_class.kind)

    def feedback_weights(self, layout):
        """B (N, n_out) of random feedback, fixed by the model's seed. (Symmetric feedback has none
        of its own: the read-out synapses send the error back through their weights.)"""
        return layout.spec.all_weights(layout.seed)["feedback"]

    def run_values(self, context):
        if self.given_signal or self.spec.feedback == "symmetric":
            return {}
        return {(FEEDBACK, "w"): np.tile(synapse_order(self.feedback_weights(context.layout)), context.copies)}

    @staticmethod
    def update_gradient(deltas):
        """The gradient estimate of the batch loss: the mean over copies (examples) of what each accumulated."""
        return [np.asarray(g).mean(axis=0) for g in deltas]

    def update(self, trial, perturbation):
        if trial.deltas is None:
            raise ValueError("Eprop: the run reported no accumulated gradient (was the rule built in?)")
        return [-self.spec.lr * g for g in self.update_gradient(trial.deltas)]

    def with_given_signal(self):
        """A copy whose network reads its learning signal from the run value ``eprop_given_signal``."""
        out = copy.copy(self)
        out.given_signal = True
        return out


@register_builder(Eprop, "alif")
def build_eprop(rule, recipe, layout):
    """Traces, the learning signal and the accumulated gradient ``acc_eprop`` (module docstring)."""
    spec = layout.spec
    adaptive = spec.n_adaptive > 0
    neurons, readout = recipe.group("neurons"), recipe.group("readout")
    readout.add("err : 1")
    readout.regular["eprop_error"] = Regular(["err = error_weight * 2 * (y - y_target)"], when="groups",
                                             order=STEP["error"])
    neurons.add("L : 1")  # the learning signal
    if rule.given_signal:
        recipe.timed_array(GIVEN_SIGNAL, layout.steps, layout.size("neurons"))
        recipe.run_value(GIVEN_SIGNAL, "values", 0.0)
        neurons.regular["eprop_signal"] = Regular([f"L = {GIVEN_SIGNAL}(t, i)"], when="groups", order=STEP["spike"])
    elif rule.spec.feedback == "symmetric":  # B = W_out^T: the read-out synapses send the error back
        readout_synapses = recipe.synapses[CONNECTIONS["readout"][0]]
        readout_synapses.add("L_pre = w * err_post : 1 (summed)")
        readout_synapses.summed_order["L_pre"] = STEP["signal"]
    else:  # random B: synapses of their own
        n_out, n = spec.n_outputs, spec.n_neurons
        c, k, o = np.meshgrid(np.arange(layout.copies), np.arange(n_out), np.arange(n), indexing="ij")
        feedback = recipe.connect(FEEDBACK, "readout", "neurons", (c * n_out + k).ravel(), (c * n + o).ravel())
        feedback.add("w : 1", "L_post = w * err_pre : 1 (summed)")
        feedback.summed_order["L_post"] = STEP["signal"]
        recipe.run_value(FEEDBACK, "w", np.nan)
    # Presynaptic traces: the membrane's filter (after this step's eligibility, it reads the old
    # value) and, for the read-out, the read-out's filter including this step's spikes.
    for group_name, activity in (("input", "r"), ("neurons", "z")):
        group = recipe.group(group_name)
        group.add("x_bar : 1")
        group.namespace["alpha"] = spec.alpha
        group.regular["eprop_trace"] = Regular([f"x_bar = alpha * x_bar + {activity}"], when="groups",
                                               order=STEP["trace"])
    neurons.add("z_hat : 1")
    neurons.namespace["kappa"] = spec.kappa
    neurons.regular["eprop_readout_trace"] = Regular(["z_hat = kappa * z_hat + z"], when="groups", order=STEP["readout"])
    variable = rule.delta_variable
    for projection in layout.projections:
        syn = recipe.synapses[projection.synapses]
        syn.add(f"{variable} : 1")
        if projection.post == "readout":
            code = [f"{variable} += err_post * z_hat_pre"]
        elif adaptive:
            syn.add("eps_a : 1")
            syn.namespace["rho"] = spec.rho
            code = [f"{variable} += L_post * psi_post * (x_bar_pre - beta_post * eps_a)",
                    "eps_a = psi_post * x_bar_pre + (rho - psi_post * beta_post) * eps_a"]
        elif not recipe.matrix_code:
            code = [f"{variable} += L_post * psi_post * x_bar_pre"]
        else:  # a matrix loop (networks/dense.py): 4x faster than Brian2's loop over synapse indices
            dense_accumulate(recipe, projection.synapses, variable, "x_bar", ("L", "psi"), copies=layout.copies,
                             shape=projection.shape, order=STEP["eligibility"])
            continue
        syn.regular["eprop"] = Regular(code, when="groups", order=STEP["eligibility"])
    recipe.declare_delta(rule.kind, variable)


# -- the block form: many trials in one run (the block loop) ----------------------------------------
def build_eprop_block(rule, recipe, layout):
    """e-prop's update at the end of every trial of a block (:mod:`bioplastic.networks.block`), as
    :meth:`Eprop.update` does after a run: every plastic weight steps by -η g, g what it
    accumulated over the trial (one example per trial: the mean over examples is g itself), then
    the trial boundary resets g and the traces. Symmetric feedback reads the read-out weights
    themselves, so the learning signal of each trial uses that trial's W_out."""
    variable = rule.delta_variable
    for projection in layout.projections:
        syn = recipe.synapses[projection.synapses]
        syn.add("lr_eprop : 1 (shared, constant)")
        recipe.run_value(projection.synapses, "lr_eprop", 0.0)
        at_trial_end(syn, "update", f"w = w + {BLOCK_ACTIVE}(t) * (-lr_eprop * {variable})", layout=layout)


def eprop_block_values(rule, layout, noise):
    """The learning rate, the block form's one constant."""
    return {(projection.synapses, "lr_eprop"): rule.spec.lr for projection in layout.projections}


def eprop_block_requires(spec, model, task_class, task_spec):
    """Why e-prop's block form cannot run a protocol (completing "its block form ..."), or None."""
    return one_example_per_trial(task_spec)


register_block_builder(Eprop, "alif", values=eprop_block_values, requires=eprop_block_requires,
                       mirrors=("run_values", "feedback_weights", "update_gradient"))(build_eprop_block)
