r"""A plugin: a neuron model (AdEx) and a task of one's own, with no edit to bioplastic.

Name it in a protocol (``plugins = ["adex_plugin.py"]``), then ``model.kind = "adex"`` and
``task.kind = "count_regression"``. Every rule that trains spiking networks (R-STDP, WP, NP)
trains it, because what they need from a neuron model is the contract of
:class:`~bioplastic.networks.spiking.SpikingModelSpec`: equations with ``pert : volt``, what a
presynaptic spike does, and the drive a unit of weight delivers.

The adaptive exponential integrate-and-fire neuron (Brette & Gerstner 2005), with currents
written as the voltage they would hold the membrane at (as bioplastic's LIF does):

.. math:: \tau_m \dot v = E_L - v + \Delta_T e^{(v - V_T)/\Delta_T} - w + I_\mathrm{syn} + p, \qquad
          \tau_w \dot w = a (v - E_L) - w, \qquad \tau_s \dot I_\mathrm{syn} = -I_\mathrm{syn},

spike at :math:`v > V_\mathrm{peak}`, then :math:`v = V_r`, :math:`w \mathrel{+}= b`. Stepped with
forward Euler (the exponential is not linear in v); :meth:`AdexModelSpec.numpy_step` is the same
step in NumPy.

References
----------
Brette & Gerstner (2005), Adaptive exponential integrate-and-fire model as an effective
description of neuronal activity. J. Neurophysiol. 94(5).
"""

from dataclasses import dataclass

import numpy as np
from brian2 import mV, ms

from bioplastic.errors import SpecError
from bioplastic.networks import register_model_kind
from bioplastic.networks.recipe import Regular
from bioplastic.networks.spiking import SpikingModelSpec
from bioplastic.spec import param, positive
from bioplastic.tasks import register_task
from bioplastic.tasks.spike_count import SpikeCount


@register_model_kind
@dataclass(frozen=True)
class AdexModelSpec(SpikingModelSpec):
    """Adaptive exponential integrate-and-fire neurons (Brette & Gerstner 2005)."""

    dt: object = param(0.1 * ms, "Euler step", unit=ms, check=positive)
    tau_m: object = param(20 * ms, "membrane time constant", unit=ms, check=positive)
    tau_syn: object = param(5 * ms, "synaptic current time constant", unit=ms, check=positive)
    tau_w: object = param(100 * ms, "adaptation time constant", unit=ms, check=positive)
    e_l: object = param(-70 * mV, "leak reversal", unit=mV)
    v_t: object = param(-50 * mV, "threshold of the exponential upswing", unit=mV)
    delta_t: object = param(2 * mV, "slope factor of the upswing", unit=mV, check=positive)
    v_peak: object = param(0 * mV, "a spike is counted when v crosses this", unit=mV)
    v_r: object = param(-58 * mV, "reset potential", unit=mV)
    a: float = param(0.5, "subthreshold adaptation (dimensionless: currents are in volt)")
    b: object = param(2 * mV, "spike-triggered adaptation", unit=mV)

    kind = "adex"

    def __post_init__(self):
        super().__post_init__()
        if not self.v_r < self.v_peak:
            raise SpecError("AdexModelSpec.v_r", f"must be below v_peak ({self.v_peak})", str(self.v_r))

    def max_dt(self):
        tau = min(self.tau_m, self.tau_syn, self.tau_w)
        return tau / 10, f"forward Euler: a tenth of the fastest time constant ({tau})"

    def neurons(self, group, roles, noise):
        group.method = "euler"
        group.add("dv/dt = (e_l - v + delta_t * exp((v - v_t) / delta_t) - w_ad + I_syn + pert + I_noise) / tau_m "
                  ": volt", "dw_ad/dt = (a * (v - e_l) - w_ad) / tau_w : volt", "dI_syn/dt = -I_syn / tau_syn : volt",
                  "pert : volt", "I_noise : volt")
        group.namespace.update(e_l=self.e_l, v_t=self.v_t, delta_t=self.delta_t, v_peak=self.v_peak, v_r=self.v_r,
                               a=self.a, b=self.b, tau_m=self.tau_m, tau_w=self.tau_w, tau_syn=self.tau_syn)
        group.threshold.append("v > v_peak")
        group.reset.append("v = v_r\nw_ad += b")
        group.initial["v"] = self.e_l
        if noise:
            group.regular["noise"] = Regular(["I_noise = noise_amplitude * (rand() - 0.5)"], when="start")
            group.namespace["noise_amplitude"] = self.noise
        return "I_syn_post += w"  # a spike adds its weight (volt) to the synaptic current

    def credit_trace(self, group):
        group.add("dpsp/dt = -psp / tau_syn : 1")  # the synaptic kernel, stepped as the current is
        group.namespace["tau_syn"] = self.tau_syn
        group.reset.append("psp += 1")

    drive_variables = ("psp",)

    def drive(self, n_spikes, traces, duration):
        """Each spike adds a decaying kernel to the current: its time average is tau_s (n - psp(T)) / T."""
        return float(self.tau_syn / duration) * (n_spikes - traces["psp"])

    def numpy_step(self, state, drive, dt):
        """One forward-Euler step (every derivative from the old state, as Brian2's ``euler``),
        then threshold and reset. ``state``: v, w_ad, I_syn in volt; ``drive``: the constant input."""
        v, w, i_syn = state["v"], state["w_ad"], state["I_syn"]
        e_l, v_t, delta_t = float(self.e_l), float(self.v_t), float(self.delta_t)
        dv = (e_l - v + delta_t * np.exp((v - v_t) / delta_t) - w + i_syn + drive) / float(self.tau_m)
        dw = (self.a * (v - e_l) - w) / float(self.tau_w)
        di = -i_syn / float(self.tau_syn)
        v, w, i_syn = v + dt * dv, w + dt * dw, i_syn + dt * di
        spiked = v > float(self.v_peak)
        return dict(v=np.where(spiked, float(self.v_r), v), w_ad=np.where(spiked, w + float(self.b), w),
                    I_syn=i_syn), spiked


@register_task
class CountRegression(SpikeCount):
    """Pattern p asks the first output neuron for a spike count that grows with p: from
    ``target_low`` (p = 0) to ``target_high`` (p = P - 1); the other outputs for ``target_low``.
    Loss, read-out and reward are the spike_count task's."""

    kind = "count_regression"
    description = "each of P input patterns asks the first output for its own spike count (a plugin's task)"

    def __init__(self, spec, model, seed):
        super().__init__(spec, model, seed)
        levels = np.linspace(spec.target_low, spec.target_high, spec.patterns) if spec.patterns > 1 \
            else np.array([spec.target_high])
        self.targets = np.full((spec.patterns, self.n_out), spec.target_low)
        self.targets[:, 0] = levels
