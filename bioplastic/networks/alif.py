r"""Recurrent networks of LIF and adaptive LIF (ALIF) neurons with a leaky read-out (``model.kind = "alif"``).

The discrete-time model of Bellec et al. (2020), stepped in Brian2 exactly as written (every
update is generated code that runs once per step; :mod:`bioplastic.gradients.surrogate` restates
it in NumPy, and a test holds the two to rounding). Per neuron j and step t, with input x:

.. math::
    A_j[t] &= v_\mathrm{th} + \beta_j a_j[t], \qquad z_j[t] = H(v_j[t] - A_j[t]), \\
    v_j[t+1] &= \alpha v_j[t] + \sum_i W^\mathrm{rec}_{ji} z_i[t] + \sum_i W^\mathrm{in}_{ji} x_i[t+1]
               + p_j - v_\mathrm{th} z_j[t], \\
    a_j[t+1] &= \rho a_j[t] + z_j[t], \\
    y_k[t] &= \kappa y_k[t-1] + \sum_j W^\mathrm{out}_{kj} z_j[t] + p_k,

from zero states, with :math:`\alpha = e^{-dt/\tau_m}`, :math:`\rho = e^{-dt/\tau_a}`,
:math:`\kappa = e^{-dt/\tau_\mathrm{out}}`; the reset subtracts the threshold; there is no
refractory period. The last ``n_adaptive`` neurons are ALIF (:math:`\beta_j` = ``beta``), the
others LIF (:math:`\beta_j = 0`). ``p`` is node perturbation's constant current. The read-out y
of every step is what the task scores.

The pseudo-derivative (the surrogate of :math:`dz/dv`) is part of the model:
``triangle`` (Bellec et al.) :math:`\psi = \frac{\gamma}{v_\mathrm{th}}\max(0, 1 - |v - A|/v_\mathrm{th})`,
or ``fast_sigmoid`` (Zenke & Ganguli 2018) :math:`\psi = \frac{\gamma}{v_\mathrm{th}}(1 + |v - A|/v_\mathrm{th})^{-2}`.
Every neuron computes ψ every step, for the rules that use it (e-prop's eligibility).

Initialisation (stream ``init``): :math:`W^\mathrm{in} \sim N(0, \mathrm{input\_gain}^2/n_\mathrm{in})`,
:math:`W^\mathrm{rec} \sim N(0, g^2/N)` without self-connections,
:math:`W^\mathrm{out} \sim N(0, \mathrm{readout\_gain}^2/N)`, and random feedback weights for
e-prop, :math:`B \sim N(0, \mathrm{readout\_gain}^2/N)` (the distribution of :math:`W^{\mathrm{out}\top}`).

References
----------
Bellec, Scherr, Subramoney, Hajek, Salaj, Legenstein & Maass (2020), A solution to the learning
dilemma for recurrent networks of spiking neurons. Nat. Commun. 11:3625.
Zenke & Ganguli (2018), SuperSpike: supervised learning in multilayer spiking neural networks.
Neural Comput. 30(6).
"""

from dataclasses import dataclass

import numpy as np
from brian2 import ms

from .. import rng as rng_streams
from ..errors import SpecError
from ..spec import at_least, non_negative, param, positive, validate
from .recipe import Recipe, Regular
from .recurrent_rate import (CONNECTIONS as _RATE_CONNECTIONS, PLASTIC, STIMULUS, ReadoutNetworkSpec,
                             RecurrentRateBlueprint, RecurrentRateNetwork, declare_readout, synapse_order)
from .recurrent_rate_block import RecurrentRateBlockBlueprint, RecurrentRateBlockNetwork

# Step order within Brian2's 'groups' slot (the task sets the read-out's target at -7): spikes and
# pseudo-derivatives from the state at the step's start; the read-out's synaptic sum; the read-out;
# a rule's error, then its learning signal through the feedback synapses; what it accumulates per
# synapse; the presynaptic traces. Then the 'synapses' slot delivers this step's spikes and
# nonzero inputs to I_rec and I_in (event-driven: at 50 Hz input and 25 Hz firing, about 4% of
# the synapses per step instead of all of them), and the neurons' state update runs at 'end'.
STEP = dict(spike=-9, summed=-8, readout=-6, error=-5, signal=-4, eligibility=-3, trace=-2,
            state=-1)  # slot -> order
CONNECTIONS = {name: (syn, pre, post, {"I_in": "I_in", "I_rec": "I_rec", "z_syn": "y_syn"}[target])
               for name, (syn, pre, post, target) in _RATE_CONNECTIONS.items() if name != "feedback"}
SURROGATES = {
    "triangle": ("clip(1 - abs(v - A) / v_th, 0, 1)", lambda u: np.maximum(0.0, 1.0 - np.abs(u))),
    "fast_sigmoid": ("1 / (1 + abs(v - A) / v_th)**2", lambda u: 1.0 / (1.0 + np.abs(u)) ** 2),
}


@dataclass(frozen=True)
class AlifModelSpec(ReadoutNetworkSpec):
    """A recurrent network of LIF and ALIF neurons with a leaky linear read-out (module docstring)."""

    n_inputs: int = param(20, "input channels (the task's stimulus)", kind=int, check=at_least(1))
    n_neurons: int = param(100, "recurrent neurons N", kind=int, check=at_least(1))
    n_adaptive: int = param(50, "how many of them are ALIF (the last ones); the others are LIF", kind=int,
                            check=non_negative)
    n_outputs: int = param(1, "read-out units", kind=int, check=at_least(1))
    dt: object = param(1 * ms, "time step", unit=ms, check=positive)
    tau_m: object = param(20 * ms, "membrane time constant (α = exp(-dt/τ_m))", unit=ms, check=positive)
    tau_adapt: object = param(200 * ms, "threshold adaptation time constant (ρ = exp(-dt/τ_a))", unit=ms,
                              check=positive)
    tau_out: object = param(20 * ms, "read-out time constant (κ = exp(-dt/τ_out))", unit=ms, check=positive)
    v_th: float = param(0.6, "threshold (dimensionless membrane potential)", check=positive)
    beta: float = param(1.8, "threshold adaptation strength of the ALIF neurons", check=non_negative)
    surrogate: str = param("triangle", "pseudo-derivative dz/dv: triangle (Bellec 2020) or fast_sigmoid (Zenke 2018)",
                           kind=str, choices=tuple(SURROGATES))
    gamma: float = param(0.3, "the pseudo-derivative's dampening γ (its peak is γ / v_th)", check=positive)
    input_gain: float = param(1.0, "input weights ~ N(0, input_gain^2 / n_inputs)", check=non_negative)
    g: float = param(1.0, "recurrent weights ~ N(0, g^2 / N), no self-connections", check=non_negative)
    readout_gain: float = param(1.0, "read-out (and random feedback) weights ~ N(0, readout_gain^2 / N)",
                                check=non_negative)
    plastic: str = param("all", "which weights the rule trains", kind=str, choices=tuple(PLASTIC))

    family = "alif"
    kind = "alif"

    def __post_init__(self):
        validate(self)
        if self.n_adaptive > self.n_neurons:
            raise SpecError("AlifModelSpec.n_adaptive", f"must be <= n_neurons ({self.n_neurons})", self.n_adaptive)

    def decay(self, tau):
        return float(np.exp(-float(self.dt / tau)))

    @property
    def alpha(self):
        return self.decay(self.tau_m)

    @property
    def rho(self):
        return self.decay(self.tau_adapt)

    @property
    def kappa(self):
        return self.decay(self.tau_out)

    @property
    def betas(self):
        """β per neuron: 0 for the LIF neurons, ``beta`` for the last ``n_adaptive``."""
        out = np.zeros(self.n_neurons)
        out[self.n_neurons - self.n_adaptive:] = self.beta
        return out

    def all_weights(self, seed):
        """Every weight matrix by name, ``feedback`` being e-prop's random feedback B (stream ``init``)."""
        rng = rng_streams.stream(seed, "init")
        n, n_in, n_out = self.n_neurons, self.n_inputs, self.n_outputs
        recurrent = rng.normal(0.0, self.g / np.sqrt(n), (n, n))
        np.fill_diagonal(recurrent, 0.0)
        return {"input": rng.normal(0.0, self.input_gain / np.sqrt(n_in), (n, n_in)), "recurrent": recurrent,
                "readout": rng.normal(0.0, self.readout_gain / np.sqrt(n), (n_out, n)),
                "feedback": rng.normal(0.0, self.readout_gain / np.sqrt(n), (n, n_out))}

    def surrogate_params(self):
        """The constants of :mod:`bioplastic.gradients.surrogate`."""
        from ..gradients.surrogate import AlifParams
        return AlifParams(self.alpha, self.rho, self.kappa, self.v_th, self.betas, self.gamma, self.surrogate)


def base_recipe(layout, record=0, dense=True):
    """The network as a recipe; ``record`` copies have v and a recorded at the start of every step.
    ``dense``: a rule may run its dense per-synapse loops as matrix code (``Recipe.matrix_code``)."""
    spec, copies = layout.spec, layout.copies
    recipe = Recipe(spec.dt)
    recipe.matrix_code = dense
    recipe.timed_array(STIMULUS, layout.steps, copies * spec.n_inputs)  # row t holds x[t + 1]
    recipe.run_value(STIMULUS, "values", 0.0)
    source = recipe.group("input", layout.size("input"), method="exact")
    source.add("r : 1")  # 'r' as in the rate networks: what the input synapses carry
    source.regular["rate"] = Regular([f"r = {STIMULUS}(t, i)"], when="groups", order=STEP["spike"])
    source.events["active"] = "r != 0"
    neurons = recipe.group("neurons", layout.size("neurons"), method="exact")
    neurons.add("v : 1", "a : 1", "A : 1", "z : 1", "psi : 1", "I_rec : 1", "I_in : 1", "pert : 1",
                "beta : 1 (constant)")
    neurons.namespace.update(alpha=spec.alpha, rho=spec.rho, v_th=spec.v_th, gamma=spec.gamma)
    neurons.initial["beta"] = np.tile(spec.betas, copies)
    psi = SURROGATES[spec.surrogate][0]
    neurons.regular["spike"] = Regular(["A = v_th + beta * a", "z = int(v >= A)", f"psi = gamma / v_th * {psi}"],
                                       when="groups", order=STEP["spike"])
    neurons.events["active"] = "z != 0"
    # After the 'synapses' slot, where this step's spikes and inputs delivered I_rec and I_in.
    neurons.regular["state"] = Regular(["v = alpha * v + I_rec + I_in + pert - v_th * z", "a = rho * a + z",
                                        "I_rec = 0", "I_in = 0"], when="end", order=STEP["state"])
    readout = recipe.group("readout", layout.size("readout"), method="exact")
    readout.add("y : 1", "y_syn : 1", "pert : 1")
    readout.namespace["kappa"] = spec.kappa
    readout.regular["readout"] = Regular(["y = kappa * y + y_syn + pert"], when="groups", order=STEP["readout"])
    for name, (synapses, pre, post, target) in CONNECTIONS.items():
        n_post, n_pre = spec.shape(name)
        c, k, o = np.meshgrid(np.arange(copies), np.arange(n_pre), np.arange(n_post), indexing="ij")
        syn = recipe.connect(synapses, pre, post, (c * n_pre + k).ravel(), (c * n_post + o).ravel())
        activity = "r" if name == "input" else "z"
        if name == "readout":  # needed within the step (by a rule's error): a sum over every synapse
            syn.add("w : 1", f"{target}_post = w * {activity}_pre : 1 (summed)")
            syn.summed_order[f"{target}_post"] = STEP["summed"]
        else:  # event-driven: only the active inputs and the neurons that spiked this step
            syn.add("w : 1")
            syn.on_pre["pre"] = [f"{target}_post += w * {activity}_pre"]
            syn.on_event["pre"] = "active"
        if name not in spec.plastic_layers:  # fixed weights: written every run (model_values)
            recipe.run_value(synapses, "w", np.nan)
    if record:
        recipe.monitor("trace_v", "neurons", variables=("v", "a"), record=np.arange(record * spec.n_neurons),
                       when="start", order=1)
    declare_readout(recipe, "y")
    # The presynaptic activity averaged over the trial (what constant-current node perturbation credits).
    for projection in layout.projections:
        group = recipe.group(projection.pre)
        variable = "r" if projection.pre == "input" else "z"
        group.add("r_sum : 1")
        group.regular["r_sum"] = Regular([f"r_sum += {variable}"], when="groups", order=STEP["trace"])
    return recipe


class AlifNetwork(RecurrentRateNetwork):
    """Built Brian2 objects of an ALIF recipe. Inputs are given as x[t] per step; the stimulus
    TimedArray holds them one step ahead (x[t + 1] at row t), as the membrane update reads them."""

    states = ("trace_v", ("v", "a"))

    @staticmethod
    def stimulus_inputs(inputs):
        inputs = np.asarray(inputs, float)
        return np.concatenate([inputs[:, 1:], np.zeros_like(inputs[:, :1])], axis=1)


def model_values(spec, seed, copies):
    """The fixed (non-plastic) weights, written every run (one build serves every seed)."""
    weights = spec.all_weights(seed)
    return {(synapses, "w"): np.tile(synapse_order(weights[name]), copies)
            for name, (synapses, *_) in CONNECTIONS.items() if name not in spec.plastic_layers}


class AlifBlueprint(RecurrentRateBlueprint):
    """``copies`` ALIF networks for trials of ``steps`` steps, with the task's and the rule's
    contributions folded in (the layout is the recurrent rate network's: same groups and synapses)."""

    network_class = AlifNetwork

    def base_recipe(self, layout, record):
        return base_recipe(layout, record, dense=self.dense)


class AlifBlockNetwork(RecurrentRateBlockNetwork, AlifNetwork):
    """A block of trials of ALIF networks: the recurrent rate block network with the ALIF
    network's read-out and stimulus (x[t + 1] at row t of each trial)."""


class AlifBlockBlueprint(RecurrentRateBlockBlueprint):
    """A block of ``trials`` trials of ``copies`` ALIF networks (every state starts at zero in
    each trial: the trial boundary resets v, a, the currents and a rule's traces)."""

    network_class = AlifBlockNetwork

    def base_recipe(self, layout):
        return base_recipe(layout, record=0)
