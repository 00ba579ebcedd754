r"""Spiking networks in Brian2: LIF and Izhikevich neurons, feed-forward or recurrent E/I.

Two structures, each replicated into ``copies`` independent networks inside one set of Brian2
groups (copy ``c`` owns neurons ``c*n .. (c+1)*n - 1`` of every group; synapses never cross
copies), so that K perturbed trials, or many noise samples, cost one run:

* **feed-forward** (``recurrent = false``): input spike sources → spiking layer(s). The sizes
  are ``[n_in, n_1, ..., n_L]``; every weight layer is dense and plastic. The input group holds
  ``blocks`` independent input patterns, and copy ``c`` reads block ``c % blocks``, so perturbed
  copies of one example see the very same input spikes (common random numbers).
* **recurrent E/I** (``recurrent = true``): ``n_exc`` excitatory and ``n_inh`` inhibitory
  neurons. Every neuron makes ``out_degree`` synapses onto random targets (excitatory onto any
  neuron, inhibitory onto excitatory ones), with one conduction delay. Excitatory synapses are
  the plastic weights; inhibitory ones are fixed. Every neuron receives its own background
  noise, drawn inside the simulation from the run's seed.

Neuron models (``model.kind``):

* ``lif``: current-based leaky integrate-and-fire with refractoriness,

  .. math:: \tau_m \dot v = v_\mathrm{rest} - v + I_\mathrm{syn} + p, \qquad
            \tau_s \dot I_\mathrm{syn} = -I_\mathrm{syn},

  a presynaptic spike adds :math:`w` to :math:`I_\mathrm{syn}` (currents are written as the
  voltage they would hold the membrane at, so weights are in mV); spike at
  :math:`v > v_\mathrm{th}`, then :math:`v = v_\mathrm{reset}` for ``t_ref``. Integrated exactly
  (linear equations).
* ``izhikevich``: the simple model of Izhikevich (2003),

  .. math:: \dot v = 0.04 v^2 + 5 v + 140 - u + I, \qquad \dot u = a (b v - u)

  (v, u, I in mV, time in ms), spike at :math:`v \ge 30` mV, then :math:`v = c`,
  :math:`u \mathrel{+}= d`. Stepped as in Izhikevich's own code: two half steps of v, then one
  step of u with the new v. A presynaptic spike adds its weight :math:`w` (mV) to the next
  step's input, :math:`I = (\sum w) \cdot 1\,\mathrm{ms}/dt + p + \text{noise}`, so one spike
  moves v by about w whatever dt. Presets ``RS`` (regular spiking), ``FS`` (fast spiking),
  ``IB``, ``CH`` and ``LTS`` with the parameters of Izhikevich (2003), Fig. 2.

Node perturbation writes the constant current ``pert`` (mV) of every neuron.

A neuron model is its spec class (a subclass of :class:`SpikingModelSpec`, registered with
:func:`bioplastic.networks.register_model_kind`): its parameters, and the methods the network
builds it with: :meth:`~SpikingModelSpec.neurons` (equations, threshold, reset, what a
presynaptic spike does), :meth:`~SpikingModelSpec.credit_trace` and
:meth:`~SpikingModelSpec.drive` (the time-averaged input per unit weight that node perturbation
credits), and :meth:`~SpikingModelSpec.numpy_step`, the same dynamics in NumPy that a test holds
the Brian2 equations against.

Weights are exchanged with the engine as plain arrays in mV (:data:`WEIGHT_UNIT`); the Brian2
variable ``w`` has the unit volt.

References
----------
Izhikevich (2003), Simple model of spiking neurons. IEEE Trans. Neural Netw. 14(6).
Izhikevich (2007), Solving the distal reward problem through linkage of STDP and dopamine
signaling. Cereb. Cortex 17(10).
"""

from dataclasses import dataclass

import numpy as np
from brian2 import mV, ms, second

from .. import rng as rng_streams
from ..errors import SpecError
from ..spec import at_least, layer_sizes, non_negative, param, positive, validate
from .recipe import Regular

WEIGHT_UNIT = mV

IZHIKEVICH_PRESETS = {  # a, b, c (mV), d (mV): Izhikevich (2003), Fig. 2
    "RS": (0.02, 0.2, -65.0, 8.0),
    "FS": (0.1, 0.2, -65.0, 2.0),
    "IB": (0.02, 0.2, -55.0, 4.0),
    "CH": (0.02, 0.2, -50.0, 2.0),
    "LTS": (0.02, 0.25, -65.0, 2.0),
}


@dataclass(frozen=True)
class SpikingModelSpec:
    """Parameters shared by every spiking model: the structure, the weights and the step."""

    sizes: list = param([20, 2], "feed-forward layer sizes, input spike sources first", kind=list,
                        check=layer_sizes)
    recurrent: bool = param(False, "recurrent E/I network instead of feed-forward layers", kind=bool)
    dt: object = param(0.5 * ms, "integration step", unit=ms, check=positive)
    init_mean: object = param(2.0 * mV, "feed-forward weights ~ N(init_mean, init_std^2)", unit=mV)
    init_std: object = param(1.0 * mV, "feed-forward weights ~ N(init_mean, init_std^2)", unit=mV, check=non_negative)
    n_exc: int = param(800, "recurrent: excitatory neurons", kind=int, check=at_least(1))
    n_inh: int = param(200, "recurrent: inhibitory neurons", kind=int, check=non_negative)
    out_degree: int = param(100, "recurrent: synapses made by every neuron", kind=int, check=at_least(1))
    delay: object = param(1.0 * ms, "recurrent: conduction delay of every synapse", unit=ms, check=non_negative)
    w_exc: object = param(1.0 * mV, "recurrent: initial excitatory weight", unit=mV, check=non_negative)
    w_inh: object = param(-1.0 * mV, "recurrent: inhibitory weight (fixed, <= 0)", unit=mV,
                          check=lambda v: None if v <= 0 else "must be <= 0 mV")
    noise: object = param(0.0 * mV, "background input: uniform in [-noise/2, noise/2] every step", unit=mV,
                          check=non_negative)

    family = "spiking"
    kind = None

    def __post_init__(self):
        validate(self)
        cls = type(self).__name__
        if self.recurrent and self.delay > 0 * ms:
            steps = float(self.delay / self.dt)
            if self.dt > self.delay:
                raise SpecError(f"{cls}.dt", f"must be <= the shortest synaptic delay ({self.delay}), or a spike "
                                "would arrive before it was sent", str(self.dt))
            if abs(steps - round(steps)) > 1e-9:
                raise SpecError(f"{cls}.delay", f"must be a whole number of dt steps (dt = {self.dt})", str(self.delay))
        bound, reason = self.max_dt()
        if self.dt > bound:
            raise SpecError(f"{cls}.dt", f"too coarse: must be <= {bound} ({reason})", str(self.dt))
        if self.recurrent and self.out_degree > self.n_exc + self.n_inh:
            raise SpecError(f"{cls}.out_degree", f"must be <= the number of neurons ({self.n_exc + self.n_inh})",
                            self.out_degree)

    @property
    def weight_unit(self):
        return WEIGHT_UNIT

    @property
    def shapes(self):
        """(n_out, n_in) of every plastic weight matrix (feed-forward); see ``Connectivity`` for recurrent."""
        return [(n_out, n_in) for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:])]

    @property
    def output_size(self):
        return self.n_exc + self.n_inh if self.recurrent else self.sizes[-1]

    # -- the neuron model: what a plugin's spiking model implements --------------------------------
    def neurons(self, group, roles, noise):
        """Add the neurons' equations, threshold, reset, namespace and initial values to ``group`` (a
        :class:`~bioplastic.networks.recipe.GroupRecipe`); return the code a presynaptic spike runs on
        its synapse (``w`` in volt). The equations must declare ``pert : volt`` (node perturbation's
        current). ``roles`` names every neuron's place (``"layer"``, ``"exc"``, ``"inh"``); ``noise``:
        whether to add the background input (``self.noise``)."""
        raise NotImplementedError(f"{type(self).__name__}.neurons: a spiking model must build its neurons")

    def credit_trace(self, group):
        """Add what :meth:`drive` reads to a presynaptic ``group`` (which counts its spikes, ``n_spikes``)."""

    drive_variables = ()  # the presynaptic variables :meth:`drive` reads besides ``n_spikes``
    # The same drive as code in the presynaptic group (``trial_duration``: T), for node
    # perturbation's block form; None: node perturbation trains this model in the trial loop only.
    drive_code = None

    def drive(self, n_spikes, traces, duration):
        """The time average over a run of ``duration`` of the input one unit of weight gives, per
        presynaptic neuron (``traces``: :attr:`drive_variables` at the run's end)."""
        raise NotImplementedError(f"{type(self).__name__}.drive: a spiking model must say what a weight delivers")

    def numpy_step(self, state, drive, dt):
        """One step of the neurons in NumPy: ``state`` (dict of arrays, SI units without units),
        ``drive`` the input that step (volt); returns ``(state, spiked)``."""
        raise NotImplementedError(f"{type(self).__name__}.numpy_step")

    def init_weights(self, rng, seed):
        """Initial plastic weights in mV: N(init_mean, init_std^2) per feed-forward layer, or the
        excitatory weight ``w_exc`` on every recurrent excitatory synapse of the run's connectivity."""
        if self.recurrent:
            return [np.full(connectivity(self, seed).n_exc_synapses, float(self.w_exc / mV))]
        mean, std = float(self.init_mean / mV), float(self.init_std / mV)
        return [rng.normal(mean, std, shape) for shape in self.shapes]


@dataclass(frozen=True)
class LifModelSpec(SpikingModelSpec):
    """Current-based leaky integrate-and-fire neurons.

    Parameters
    ----------
    tau_m, tau_syn : Quantity (time)
        Membrane and synaptic-current time constants.
    v_rest, v_reset, v_th : Quantity (voltage)
        Resting potential, reset potential, threshold.
    t_ref : Quantity (time)
        Refractory period (v is clamped at v_reset).
    """

    tau_m: object = param(20 * ms, "membrane time constant", unit=ms, check=positive)
    tau_syn: object = param(5 * ms, "synaptic current time constant", unit=ms, check=positive)
    v_rest: object = param(-70 * mV, "resting potential", unit=mV)
    v_reset: object = param(-70 * mV, "reset potential", unit=mV)
    v_th: object = param(-54 * mV, "spike threshold", unit=mV)
    t_ref: object = param(2 * ms, "refractory period", unit=ms, check=non_negative)

    kind = "lif"

    def __post_init__(self):
        super().__post_init__()
        if not self.v_reset < self.v_th:
            raise SpecError("LifModelSpec.v_reset", f"must be below v_th ({self.v_th})", str(self.v_reset))

    def max_dt(self):
        tau, name = min((self.tau_m, "tau_m"), (self.tau_syn, "tau_syn"), key=lambda x: x[0])
        return tau / 4, f"a quarter of the fastest time constant, {name} = {tau}"

    def neurons(self, group, roles, noise):
        group.add("dv/dt = (v_rest - v + I_syn + pert + I_noise) / tau_m : volt (unless refractory)",
                  "dI_syn/dt = -I_syn / tau_syn : volt", "pert : volt", "I_noise : volt")
        group.namespace.update(v_rest=self.v_rest, v_reset=self.v_reset, v_th=self.v_th, tau_m=self.tau_m,
                               tau_syn=self.tau_syn)
        group.threshold.append("v > v_th")
        group.reset.append("v = v_reset")
        group.refractory = self.t_ref
        group.initial["v"] = self.v_rest
        if noise:  # a fresh uniform current every step, from the run's seed
            group.regular["noise"] = Regular(["I_noise = noise_amplitude * (rand() - 0.5)"], when="start")
            group.namespace["noise_amplitude"] = self.noise
        return "I_syn_post += w"

    def credit_trace(self, group):
        group.add("dpsp/dt = -psp / tau_syn : 1")
        group.namespace["tau_syn"] = self.tau_syn
        group.reset.append("psp += 1")

    drive_variables = ("psp",)
    drive_code = "tau_syn / trial_duration * (n_spikes - psp)"

    def drive(self, n_spikes, traces, duration):
        r"""A spike adds :math:`e^{-(t - t_k)/\tau_s}` to the current, so the time average is
        :math:`\frac1T \sum_k \tau_s (1 - e^{-(T - t_k)/\tau_s}) = \frac{\tau_s}{T}(n - \mathrm{psp}(T))`."""
        return float(self.tau_syn / duration) * (n_spikes - traces["psp"])

    def numpy_step(self, state, drive, dt):
        r"""The exact step of the linear equations over ``dt`` (v held at the reset while refractory),
        then threshold and reset. ``state``: ``v``, ``I_syn`` (volt) and ``refractory`` (steps left in
        which v stays at the reset); ``drive``: the constant input (``pert``, volt).

        With :math:`u = v - v_\mathrm{rest} - p`:
        :math:`u(\Delta) = u e^{-\Delta/\tau_m} + I \frac{\tau_s}{\tau_s - \tau_m}(e^{-\Delta/\tau_s} - e^{-\Delta/\tau_m})`.
        """
        tau_m, tau_s = float(self.tau_m), float(self.tau_syn)
        v, i_syn, left = (np.asarray(state[k], float) for k in ("v", "I_syn", "refractory"))
        em, es = np.exp(-dt / tau_m), np.exp(-dt / tau_s)
        kernel = tau_s / (tau_s - tau_m) * (es - em) if tau_s != tau_m else dt / tau_m * em
        u = v - float(self.v_rest) - drive
        stepped = float(self.v_rest) + drive + u * em + i_syn * kernel
        free = left <= 0
        v = np.where(free, stepped, v)
        spiked = free & (v > float(self.v_th))
        held = max(int(round(float(self.t_ref / (dt * second)))) - 1, 0)  # Brian2: refractory for t_ref after the spike
        return dict(v=np.where(spiked, float(self.v_reset), v), I_syn=i_syn * es,
                    refractory=np.where(spiked, held, np.maximum(left - 1, 0))), spiked


@dataclass(frozen=True)
class IzhikevichModelSpec(SpikingModelSpec):
    """Izhikevich (2003) neurons; feed-forward layers use ``neuron``, recurrent networks
    ``exc_neuron`` and ``inh_neuron``."""

    dt: object = param(1.0 * ms, "integration step (two half steps of v, as in Izhikevich's code)", unit=ms,
                       check=positive)
    neuron: str = param("RS", "preset of the feed-forward layers", kind=str, choices=tuple(IZHIKEVICH_PRESETS))
    exc_neuron: str = param("RS", "recurrent: preset of the excitatory neurons", kind=str,
                            choices=tuple(IZHIKEVICH_PRESETS))
    inh_neuron: str = param("FS", "recurrent: preset of the inhibitory neurons", kind=str,
                            choices=tuple(IZHIKEVICH_PRESETS))

    kind = "izhikevich"

    def max_dt(self):
        # The quadratic upstroke of v, not a time constant, limits the step: Izhikevich's scheme
        # (two half steps per ms) is the coarsest that stays accurate.
        return 1 * ms, "Izhikevich's scheme of two half steps per ms resolves the spike upstroke"

    def neurons(self, group, roles, noise):
        presets = {"layer": self.neuron, "exc": self.exc_neuron, "inh": self.inh_neuron}
        group.add("v : volt", "u : volt", "I_in : volt", "pert : volt",
                  "a : 1 (constant)", "b : 1 (constant)", "c : volt (constant)", "d : volt (constant)")
        total = "I_in * (1 * ms / dt) + pert" + (" + noise_amplitude * (rand() - 0.5)" if noise else "")
        # Izhikevich's own scheme: two half steps of v with the same input, then u with the new v.
        group.regular["izhikevich"] = Regular([
            f"I_step = {total}",
            "v = v + 0.5 * (dt / ms) * (0.04 * v**2 / mV + 5 * v + 140 * mV - u + I_step)",
            "v = v + 0.5 * (dt / ms) * (0.04 * v**2 / mV + 5 * v + 140 * mV - u + I_step)",
            "u = u + (dt / ms) * a * (b * v - u)",
            "I_in = 0 * mV"], when="groups")
        if noise:
            group.namespace["noise_amplitude"] = self.noise
        group.threshold.append("v >= 30 * mV")
        group.reset.append("v = c\nu = u + d")
        params = np.array([IZHIKEVICH_PRESETS[presets[role]] for role in roles])
        group.initial.update(a=params[:, 0], b=params[:, 1], c=params[:, 2] * mV, d=params[:, 3] * mV,
                             v=params[:, 2] * mV, u=params[:, 1] * params[:, 2] * mV)
        return "I_in_post += w"

    drive_code = "n_spikes * (1 * ms / trial_duration)"

    def drive(self, n_spikes, traces, duration):
        """A spike is one step's pulse that moves v by w: the time average is ``n * 1 ms / T``."""
        return n_spikes * float(ms / duration)

    def numpy_step(self, state, drive, dt):
        """Izhikevich's scheme in volts, for neurons of the preset ``neuron``: two half steps of v
        with the same input, then u with the new v; spike at 30 mV, then v = c, u += d. ``state``:
        ``v``, ``u`` (volt); ``drive``: the step's input (volt, as ``pert``)."""
        a, b, c, d = IZHIKEVICH_PRESETS[self.neuron]
        v, u = np.asarray(state["v"], float), np.asarray(state["u"], float)
        h, mv = dt / 1e-3, 1e-3
        for _ in range(2):
            v = v + 0.5 * h * (0.04 * v ** 2 / mv + 5 * v + 140 * mv - u + drive)
        u = u + h * a * (b * v - u)
        spiked = v >= 30 * mv
        return dict(v=np.where(spiked, c * mv, v), u=np.where(spiked, u + d * mv, u)), spiked


@dataclass(frozen=True)
class Connectivity:
    """Recurrent connections of one copy: ``exc_i -> exc_j`` (plastic) and ``inh_i -> inh_j``."""

    exc_i: np.ndarray
    exc_j: np.ndarray
    inh_i: np.ndarray
    inh_j: np.ndarray

    @property
    def n_exc_synapses(self):
        return len(self.exc_i)


_CONNECTIVITY = {}


def connectivity(spec, seed):
    """The recurrent connectivity of ``spec`` for ``seed`` (drawn once, then cached).

    Every neuron makes ``out_degree`` synapses to distinct targets drawn uniformly without
    replacement and without self-connections: excitatory neurons onto any neuron, inhibitory
    neurons onto excitatory ones only.
    """
    key = (spec.n_exc, spec.n_inh, spec.out_degree, seed)
    if key in _CONNECTIVITY:
        return _CONNECTIVITY[key]
    rng = rng_streams.stream(seed, "connectivity")
    n = spec.n_exc + spec.n_inh

    def targets(source, pool):
        choices = np.delete(np.arange(pool), source) if source < pool else np.arange(pool)
        return np.sort(rng.choice(choices, size=min(spec.out_degree, len(choices)), replace=False))

    exc = [(s, t) for s in range(spec.n_exc) for t in targets(s, n)]
    inh = [(s, t) for s in range(spec.n_exc, n) for t in targets(s, spec.n_exc)]
    result = Connectivity(*(np.array([p[k] for p in pairs], np.int32) for pairs in (exc, inh) for k in (0, 1)))
    _CONNECTIVITY[key] = result
    return result


__all__ = ["SpikingModelSpec", "LifModelSpec", "IzhikevichModelSpec", "IZHIKEVICH_PRESETS",
           "connectivity", "WEIGHT_UNIT"]
