r"""Reward-modulated STDP: pair-based STDP into an eligibility trace, gated by a third factor.

One rule covers the published variants: plain STDP, Florian's MSTDP and MSTDPET, and
Izhikevich's dopamine-modulated STDP, with an optional reward baseline (the reward-prediction
error form of Frémaux et al.).

The maths
---------
Pair-based (all-to-all) traces, one per neuron, jump by 1 at every presynaptic *arrival* (after
the synaptic delay) and every postsynaptic spike:

.. math:: a_\mathrm{pre}(t) = \sum_{k} e^{-(t - t^\mathrm{pre}_k)/\tau_+}, \qquad
          a_\mathrm{post}(t) = \sum_{k} e^{-(t - t^\mathrm{post}_k)/\tau_-} .

The STDP term is a train of impulses,

.. math:: \zeta(t) = A_+\, a_\mathrm{pre}(t)\, \sum_k \delta(t - t^\mathrm{post}_k)
          \;-\; A_-\, a_\mathrm{post}(t)\, \sum_k \delta(t - t^\mathrm{pre}_k),

so that a pre→post pair at distance :math:`\Delta t \ge 0` contributes
:math:`A_+ e^{-\Delta t/\tau_+}` and a post→pre pair :math:`-A_- e^{-\Delta t/\tau_-}`
(``a_minus`` is a positive magnitude). The eligibility low-passes it with a kernel of unit area,

.. math:: \tau_e\, \dot e = -e + \zeta \quad\Longrightarrow\quad
          e(t) = \sum_k \frac{J_k}{\tau_e}\, e^{-(t - t_k)/\tau_e}

(:math:`J_k` the jumps of :math:`\zeta`); ``tau_e = 0`` makes :math:`e = \zeta` itself (Florian's
MSTDP). The weight follows the product with the third factor :math:`m(t)`, within bounds,

.. math:: \dot w = \eta\, e(t)\, m(t), \qquad w \in [w_\mathrm{min}, w_\mathrm{max}],

with the learning rate :math:`\eta` in units of weight (mV). Because the kernel has unit area, a
pairing under a constant third factor m changes the weight by :math:`\eta J m` whatever
:math:`\tau_e`: the eligibility only sets how long the synapse waits for the third factor.

The third factor (``third_factor``):

* ``"none"``: :math:`m \equiv 1`: plain STDP (with ``tau_e = 0``: :math:`\Delta w = \eta J` at
  each spike).
* ``"reward"``: :math:`m(t) = r(t)`, the task's reward signal, held between its changes
  (Florian's MSTDP / MSTDPET). A trial's reward :math:`R` read at the end of a trial becomes the
  level :math:`r = R - \bar R` from then on.
* ``"dopamine"``: :math:`m(t) = d(t) = d_0 + r(t) + \sum_k A_k e^{-(t - t_k)/\tau_d}`: every reward
  event :math:`R_k` is a pulse :math:`A_k = R_k - \bar R` of dopamine on top of the tonic level
  :math:`d_0` (``tonic``) (Izhikevich 2007).

With ``baseline = true`` the reward baseline :math:`\bar R` is a running average of the rewards
(per task condition in the training loop), :math:`\bar R \leftarrow (1 - \beta) \bar R + \beta R`
after each reward (``baseline_rate`` β, :mod:`bioplastic.rules.baseline`), so the third factor is the reward prediction error.
Without it :math:`\bar R = 0`.

How it is simulated (exactly, and event-driven)
-----------------------------------------------
Between two events of a synapse (its pre arrivals, its post spikes, and changes of its copy's
third factor), :math:`e` and the phasic dopamine :math:`x = \sum_k A_k e^{-(t - t_k)/\tau_d}` decay
exponentially and the level :math:`L = d_0 + r` is constant, so the weight change over
:math:`[t_0, t_1]`, :math:`\Delta = t_1 - t_0`, is the closed form

.. math:: \Delta w = \eta\, e(t_0) \Big[ L\, \tau_e (1 - e^{-\Delta/\tau_e})
          + x(t_0)\, \tau_s (1 - e^{-\Delta/\tau_s}) \Big], \qquad
          \tau_s = \frac{\tau_e \tau_d}{\tau_e + \tau_d}.

Each synapse therefore only does work at its own events: it keeps :math:`e`, :math:`x` and the
time of its last update, and brings :math:`w` up to date before anything reads or changes them.
That is exact, and it is what makes an hour of a 1000-neuron network fast. The weight bounds are
applied at events; that is exact whenever the integrand keeps one sign between events (always,
unless a negative reward-prediction error on a positive tonic level crosses zero in between).
Per-neuron traces are integrated exactly on every step (one exponential per neuron, not per
synapse).

Ordering within one time step (dt), which fixes every tie:

1. The neuromodulator takes this step's reward: ``level``, and for dopamine ``x`` decays by one
   step and jumps by the pulse. The traces decay by one step.
2. A change of the third factor is an event for every synapse of the copy: each integrates up to
   now with the *old* level and its own ``x``, then takes the new values.
3. Presynaptic arrivals: integrate, then :math:`e \mathrel{-}= A_- a_\mathrm{post}/\tau_e` (the
   post trace *before* this step's post spikes), then the spike is transmitted with the
   up-to-date weight. Then :math:`a_\mathrm{pre} \mathrel{+}= 1`.
4. Postsynaptic spikes: integrate, then :math:`e \mathrel{+}= A_+ a_\mathrm{pre}/\tau_e` (the pre
   trace *including* this step's arrivals). Then :math:`a_\mathrm{post} \mathrel{+}= 1`.

So an arrival and a post spike in the same step are a pre→post pair at :math:`\Delta t = 0`
(potentiation), as in Brian2's classic STDP example. With ``tau_e = 0`` steps 3 and 4 change
:math:`w` by :math:`\eta\, m(t)\, J` directly, with the third factor of the current step.

At the end of a trial of the training loop the trial's reward (if the task gives one) arrives at
the end of the last step, and the rest of the eligibility is integrated in closed form to
infinity, :math:`\eta\, e(T) [L \tau_e + x(T) \tau_s]` (trials are independent episodes). In one
long run (an experiment) the weights are simply read at its end.

Closed form for one pairing and one pulse
-----------------------------------------
A presynaptic arrival at :math:`t_1`, a postsynaptic spike at :math:`t_2 = t_1 + \Delta t`
(:math:`\Delta t \ge 0`), and one dopamine pulse :math:`A` at :math:`t_3 \ge t_2`, no tonic level:
at :math:`t_1` the post trace is 0, so :math:`e` first jumps at :math:`t_2` by
:math:`J/\tau_e`, :math:`J = A_+ e^{-\Delta t/\tau_+}`, and decays to :math:`e(t_3) = (J/\tau_e)
e^{-(t_3 - t_2)/\tau_e}`; before :math:`t_3` the third factor is 0. Afterwards both decay, so by
time :math:`T \ge t_3`

.. math:: \Delta w(T) = \eta\, \frac{J}{\tau_e}\, e^{-(t_3 - t_2)/\tau_e}\, A\, \tau_s
          \big(1 - e^{-(T - t_3)/\tau_s}\big) \;\xrightarrow{T\to\infty}\;
          \eta\, J A\, \frac{\tau_d}{\tau_e + \tau_d}\, e^{-(t_3 - t_2)/\tau_e} .

For a post→pre pair (:math:`t_2 < t_1`) replace :math:`J` by :math:`-A_- e^{-(t_1 - t_2)/\tau_-}`
and :math:`t_2` by :math:`t_1`. :func:`pairing_closed_form` evaluates this; the tests hold the
simulation and :func:`rstdp_step` against it.

References
----------
Izhikevich (2007), Solving the distal reward problem through linkage of STDP and dopamine
signaling. Cereb. Cortex 17(10).
Florian (2007), Reinforcement learning through modulation of spike-timing-dependent synaptic
plasticity. Neural Comput. 19(6).
Frémaux, Sprekeler & Gerstner (2010), Functional requirements for reward-modulated
spike-timing-dependent plasticity. J. Neurosci. 30(40).
"""

from dataclasses import dataclass

import numpy as np
from brian2 import mV, ms

from ..errors import SpecError
from ..networks.neuromodulator import MODULATOR, final_flag, final_step_clock, neuromodulator
from ..networks.recipe import Regular
from ..networks.block import ACTIVE as BLOCK_ACTIVE, at_trial_end, condition_critic, critic_values, in_condition, take_critic
from ..spec import non_negative, param, positive, validate
from .base import InNetworkRule, register_rule
from .baseline import baseline_rate_param, critic_update, observe_reward, running_average
from .builders import one_example_per_trial, register_block_builder, register_builder

THIRD_FACTORS = ("dopamine", "reward", "none")
# The shared constants of every plastic synapse (written before every run) and their units.
SYNAPSE_CONSTANTS = (("lr", "volt"), ("a_plus", "1"), ("a_minus", "1"), ("tau_e", "second"), ("tau_d", "second"),
                     ("tau_s", "second"), ("w_min", "volt"), ("w_max", "volt"), ("online", "1"), ("tail", "1"))
LINKED = ("level", "level_prev", "pulse", "x", "final")  # the modulator's variables that synapses read
APPLY = ("trial_end", "online")


@dataclass(frozen=True)
class RSTDPSpec:
    """Parameters of reward-modulated STDP (see the module docstring for the equations).

    Parameters
    ----------
    lr : Quantity (voltage)
        η: the weight change of a pairing of unit STDP amplitude under a unit third factor.
    a_plus, a_minus : float
        STDP amplitudes A+ and A- (both positive; A- depresses).
    tau_plus, tau_minus : Quantity (time)
        Time constants of the pre and post traces.
    tau_e : Quantity (time)
        Eligibility time constant; 0 makes the STDP term the eligibility itself (MSTDP).
    third_factor : str
        ``dopamine`` (a trace with ``tau_d`` driven by reward pulses), ``reward`` (the reward signal
        itself) or ``none`` (plain STDP).
    tau_d : Quantity (time)
        Dopamine time constant (third_factor = dopamine).
    tonic : float
        Tonic dopamine level d0 (third_factor = dopamine).
    baseline : bool
        Subtract a running average of the reward (per task condition): reward prediction error.
    baseline_rate : float
        β of the running average.
    w_min, w_max : Quantity (voltage)
        Weight bounds.
    apply : str
        ``trial_end``: the change accumulates during a trial and is applied at its end;
        ``online``: the weights change during the run as well.
    """

    lr: object = param(1.0 * mV, "weight change of a unit pairing under a unit third factor", unit=mV)
    a_plus: float = param(1.0, "STDP potentiation amplitude A+", check=non_negative)
    a_minus: float = param(1.0, "STDP depression amplitude A- (a positive magnitude)", check=non_negative)
    tau_plus: object = param(20 * ms, "presynaptic trace time constant", unit=ms, check=positive)
    tau_minus: object = param(20 * ms, "postsynaptic trace time constant", unit=ms, check=positive)
    tau_e: object = param(500 * ms, "eligibility time constant (0: MSTDP, no eligibility trace)", unit=ms,
                          check=non_negative)
    third_factor: str = param("dopamine", "what gates the eligibility", kind=str, choices=THIRD_FACTORS)
    tau_d: object = param(200 * ms, "dopamine time constant", unit=ms, check=positive)
    tonic: float = param(0.0, "tonic dopamine level d0")
    baseline: bool = param(False, "subtract a running average of the reward (reward prediction error)", kind=bool)
    baseline_rate: float = baseline_rate_param(0.1)
    w_min: object = param(0.0 * mV, "lower weight bound", unit=mV)
    w_max: object = param(10.0 * mV, "upper weight bound", unit=mV)
    apply: str = param("trial_end", "apply the change at the trial's end or online during the run", kind=str,
                       choices=APPLY)

    def __post_init__(self):
        validate(self)
        if not self.w_min < self.w_max:
            raise SpecError("RSTDPSpec.w_max", f"must be above w_min ({self.w_min})", str(self.w_max))

    def time_constants(self):
        """The rule's time constants that the step ``dt`` must resolve."""
        taus = [("tau_plus", self.tau_plus), ("tau_minus", self.tau_minus)]
        if self.tau_e > 0 * ms:
            taus.append(("tau_e", self.tau_e))
        if self.third_factor == "dopamine":
            taus.append(("tau_d", self.tau_d))
        return taus


@register_rule
class RSTDP(InNetworkRule):
    """Reward-modulated STDP, realised inside the Brian2 network."""

    kind = "rstdp"
    spec_class = RSTDPSpec
    description = ("reward-modulated STDP: pair-based STDP into an eligibility trace, gated by dopamine or a "
                   "reward signal (MSTDP, MSTDPET, DA-STDP)")
    calibration = "chunk"  # align: the baseline per condition at its converged value for the fixed weights

    def __init__(self, spec):
        super().__init__(spec)
        self._baselines = {}  # task condition -> running average of the reward

    def pairing_closed_form(self, delta_t, t_reward, amplitude, until):
        """Δw (mV) of one pairing and one dopamine pulse (module docstring), or None where the
        closed form does not apply (another third factor, a tonic level, no eligibility, online
        bounds that bind)."""
        s = self.spec
        if s.third_factor != "dopamine" or s.tonic != 0 or s.tau_e <= 0 * ms:
            return None
        return pairing_closed_form(delta_t, t_reward, amplitude, self.constants(), until) / float(mV)

    def check(self, model, task_class):
        check_step(self.spec, model.dt)
        check_third_factor(self.spec, getattr(task_class, "reward_pulses", False), f"the task {task_class.kind!r}")

    def constrain(self, weights):
        lo, hi = float(self.spec.w_min / mV), float(self.spec.w_max / mV)
        return [np.clip(w, lo, hi) for w in weights]

    def constants(self):
        """The rule's constants in SI units, as the network's shared variables hold them."""
        s = self.spec
        tau_e, tau_d = float(s.tau_e), float(s.tau_d)
        tau_s = tau_e * tau_d / (tau_e + tau_d) if tau_e > 0 else 0.0
        return dict(lr=float(s.lr), a_plus=s.a_plus, a_minus=s.a_minus, tau_plus=float(s.tau_plus),
                    tau_minus=float(s.tau_minus), tau_e=tau_e, tau_d=tau_d, tau_s=tau_s, tonic=s.tonic,
                    w_min=float(s.w_min), w_max=float(s.w_max), baseline_rate=s.baseline_rate)

    def run_values(self, context):
        k, c = self.kind, self.constants()
        layout = context.layout
        values = {}
        for projection in layout.projections:
            syn = projection.synapses
            for name, _ in SYNAPSE_CONSTANTS[:-2]:
                values[(syn, f"{name}_{k}")] = c[name]
            # one long run (an experiment) always learns online
            online = self.spec.apply == "online" or context.continuous
            values[(syn, f"online_{k}")] = float(online and not context.dry_run)
            values[(syn, f"tail_{k}")] = float(not context.continuous)
        for group in {p.pre for p in layout.projections}:
            values[(group, f"tau_plus_{k}")] = c["tau_plus"]
        for group in {p.post for p in layout.projections}:
            values[(group, f"tau_minus_{k}")] = c["tau_minus"]
        if self.spec.third_factor != "none":
            values[(MODULATOR, f"tonic_{k}")] = c["tonic"] if self.spec.third_factor == "dopamine" else 0.0
            values[(MODULATOR, f"tau_d_{k}")] = c["tau_d"]
            values[(MODULATOR, f"baseline_rate_{k}")] = c["baseline_rate"] if self.spec.baseline else 0.0
            values[(MODULATOR, f"baseline_{k}")] = np.array(
                [self._baselines.get(int(cond), 0.0) if self.spec.baseline else 0.0 for cond in context.conditions])
            values[(MODULATOR, f"condition_{k}")] = np.asarray(context.conditions, float)
        return values

    def calibrate(self, trials):
        """Set the baseline to the mean reward per condition over ``trials`` (dry runs at fixed
        weights): the value a running average converges to, so that ``align`` measures the rule
        with the critic it would have at these weights."""
        if not self.spec.baseline:
            return
        rewards = {}
        for trial in trials:
            for condition, reward in zip(trial.conditions, np.asarray(trial.rewards).ravel()):
                rewards.setdefault(int(condition), []).append(reward)
        self._baselines.update({c: float(np.mean(r)) for c, r in rewards.items()})

    def observe(self, trial):
        """Update the running reward average per condition from the rewards of a trial (the first
        reward of a condition starts its average)."""
        if not self.spec.baseline or trial.rewards is None:
            return
        for condition, reward in zip(trial.conditions, np.asarray(trial.rewards).ravel()):
            observe_reward(self._baselines, int(condition), reward, self.spec.baseline_rate)


@register_builder(RSTDP, "spiking")
def build_rstdp(rule, recipe, layout):
    """Add R-STDP to every plastic projection of a spiking network (see the module docstring)."""
    spec, k = rule.spec, rule.kind
    check_step(spec, layout.dt)
    check_third_factor(spec, recipe.reward_pulses, "this task")
    third = spec.third_factor
    eligible = spec.tau_e > 0 * ms
    constants = rule.constants()
    if third != "none":
        _modulator_kinetics(rule, recipe, layout)
    for projection in layout.projections:
        pre, post = recipe.group(projection.pre), recipe.group(projection.post)
        pre.add(f"dapre_{k}/dt = -apre_{k} / tau_plus_{k} : 1", f"tau_plus_{k} : second (shared, constant)")
        post.add(f"dapost_{k}/dt = -apost_{k} / tau_minus_{k} : 1", f"tau_minus_{k} : second (shared, constant)")
        if f"apost_{k} += 1" not in post.reset:
            post.reset.append(f"apost_{k} += 1")
        recipe.run_value(projection.pre, f"tau_plus_{k}", constants["tau_plus"])
        recipe.run_value(projection.post, f"tau_minus_{k}", constants["tau_minus"])
        syn = recipe.synapses[projection.synapses]
        syn.add(f"acc_{k} : volt", *(f"{c}_{k} : {u} (shared, constant)" for c, u in SYNAPSE_CONSTANTS))
        for c, _ in SYNAPSE_CONSTANTS:
            recipe.run_value(projection.synapses, f"{c}_{k}", constants.get(c, 0.0))
        # Arrivals raise the presynaptic trace after the "pre" pathway and before the "post" one.
        arrivals = recipe.connect(f"arrivals_{projection.synapses}_{k}", projection.pre, projection.pre,
                                  np.arange(layout.size(projection.pre)), np.arange(layout.size(projection.pre)),
                                  delay=syn.delay)
        arrivals.on_pre["pre"] = [f"apre_{k}_post += 1"]
        arrivals.pathway_order["pre"] = 0
        syn.pathway_order.update(pre=-1, post=1)
        now = {"dopamine": f"(mod_level_{k} + mod_x_{k})", "reward": f"mod_level_{k}", "none": "1"}[third]
        if not eligible:  # MSTDP: the STDP term meets the third factor of this very step
            syn.on_pre.setdefault("pre", []).extend(
                [f"rs_m = lr_{k} * {now} * (-a_minus_{k} * apost_{k}_post)"] + _apply(k, "rs_m"))
            syn.on_post.setdefault("post", []).extend(
                [f"rs_m = lr_{k} * {now} * a_plus_{k} * apre_{k}_pre"] + _apply(k, "rs_m"))
            syn.add(f"w_now_{k} = w : volt", f"e_now_{k} = 0 / second : 1/second")
            continue
        level = "1" if third == "none" else f"mod_level_{k}"
        syn.add(f"e_{k} : 1/second", f"tl_{k} : second")
        if third != "none":
            syn.add(f"lvl_{k} : 1")
        if third == "dopamine":
            syn.add(f"x_{k} : 1")
        syn.on_pre.setdefault("pre", []).extend(
            _integrate(k, third, level) + [f"e_{k} -= a_minus_{k} * apost_{k}_post / tau_e_{k}"])
        syn.on_post.setdefault("post", []).extend(
            _integrate(k, third, level) + [f"e_{k} += a_plus_{k} * apre_{k}_pre / tau_e_{k}"])
        if third != "none":  # a change of the third factor: integrate with the old one, then take the new
            syn.on_post["modulation"] = _integrate(k, third, f"mod_level_prev_{k}") + (
                [f"x_{k} += mod_pulse_{k}"] if third == "dopamine" else [])
            syn.on_event["modulation"] = "modulation"
            syn.pathway_order["modulation"] = -2
        # The end of the run: the trial's reward arrives, then (trial mode) the rest of the
        # eligibility is integrated in closed form.
        end = final_flag(layout)
        code = _integrate(k, third, level, until="t + dt")
        if third == "dopamine":
            code += [f"x_{k} += mod_final_{k} * {end}",
                     f"rs_m = {end} * tail_{k} * lr_{k} * e_{k} * ({level} * tau_e_{k} + x_{k} * tau_s_{k})"]
        elif third == "reward":
            code += [f"rs_m = {end} * tail_{k} * lr_{k} * e_{k} * ({level} + mod_final_{k}) * tau_e_{k}"]
        else:
            code += [f"rs_m = {end} * tail_{k} * lr_{k} * e_{k} * tau_e_{k}"]
        syn.regular[f"end_{k}"] = Regular(code + _apply(k, "rs_m"), dt=final_step_clock(layout), when="end", order=10)
        if recipe.record_every is not None:  # bring every weight up to date before it is recorded
            syn.regular[f"flush_{k}"] = Regular(_integrate(k, third, level), dt=recipe.record_every,
                                                when="start", order=-10)
        # The weight and eligibility at any time, for monitors (the stored ones are as of the
        # synapse's last event).
        gap = f"clip(t - tl_{k}, 0 * second, 1e9 * second)"  # after the end-of-run flush tl is t + dt
        held = "1" if third == "none" else f"lvl_{k}"  # the level since the last event (monitors cannot read
        # linked variables)
        gained = _gained(k, third, held, f"exp(-{gap} / tau_e_{k})", f"exp(-{gap} / tau_d_{k})")
        syn.add(f"e_now_{k} = e_{k} * exp(-{gap} / tau_e_{k}) : 1/second",
                f"w_now_{k} = w + online_{k} * (clip(w + {gained}, w_min_{k}, w_max_{k}) - w) : volt")
    recipe.declare_delta(rule.kind, f"acc_{k}")
    recipe.weight_cap = float(spec.w_max / mV)
    recipe.rule = rule
    # What a task may record: (object, variable) of the rule's quantities, by meaning.
    first = layout.projections[0]
    recipe.rule_variables = dict(
        weight=(first.synapses, f"w_now_{k}"), eligibility=(first.synapses, f"e_now_{k}"),
        pre_trace=(first.pre, f"apre_{k}"), post_trace=(first.post, f"apost_{k}"),
        **({"third_factor": (MODULATOR, f"level_{k}"), "dopamine": (MODULATOR, f"x_{k}")} if third != "none" else {}))


def check_step(spec, dt):
    """Every time constant of the rule must span at least 5 steps of ``dt``."""
    for name, tau in spec.time_constants():
        if dt > tau / 5:
            raise SpecError(f"rule.{name}", f"too short for the step model.dt = {dt}: must be at least 5 dt "
                            f"({5 * dt})", str(tau))


def check_third_factor(spec, pulses, task):
    """A reward signal cannot be read from a task that delivers its reward as pulses."""
    if spec.third_factor == "reward" and pulses:
        raise SpecError("rule.third_factor", f"'reward' reads the task's reward signal r(t), but {task} delivers its "
                        "reward as pulses; use 'dopamine' (pulses drive a trace with tau_d)", "reward")


def _apply(k, delta):
    # online = 0 leaves w untouched (not even clipped): a dry run must not change the network.
    return [f"acc_{k} += {delta}", f"w = w + online_{k} * (clip(w + {delta}, w_min_{k}, w_max_{k}) - w)"]


def _gained(k, third, level, decay_e, decay_d):
    """The weight change since a synapse's last update (the closed form of the module docstring),
    given the decays of the eligibility and of the phasic dopamine over the gap."""
    phasic = f" + x_{k} * tau_s_{k} * (1 - {decay_e} * {decay_d})" if third == "dopamine" else ""
    return f"lr_{k} * e_{k} * ({level} * tau_e_{k} * (1 - {decay_e}){phasic})"


def _integrate(k, third, level, until="t"):
    """Code that brings ``w`` (and ``e``, ``x``) of a synapse from its last update to ``until``."""
    code = [f"rs_gap = {until} - tl_{k}", f"rs_E = exp(-rs_gap / tau_e_{k})"]
    if third == "dopamine":
        code += [f"rs_X = exp(-rs_gap / tau_d_{k})"]
    code += [f"rs_m = {_gained(k, third, level, 'rs_E', 'rs_X')}"]
    if third == "dopamine":
        code += [f"x_{k} = x_{k} * rs_X"]
    code += [f"e_{k} = e_{k} * rs_E", f"tl_{k} = {until}"] + _apply(k, "rs_m")
    return code + ([f"lvl_{k} = mod_level_{k}"] if third != "none" else [])


def _modulator_kinetics(rule, recipe, layout):
    """The third factor in the neuromodulator, and the copies' view of it in the postsynaptic groups."""
    spec, k = rule.spec, rule.kind
    group = neuromodulator(recipe, layout)
    group.add(f"level_{k} : 1", f"level_prev_{k} : 1", f"pulse_{k} : 1", f"x_{k} : 1", f"final_{k} : 1",
              f"event_{k} : 1",
              f"baseline_{k} : 1", f"condition_{k} : 1", f"tonic_{k} : 1 (shared, constant)",
              f"tau_d_{k} : second (shared, constant)", f"baseline_rate_{k} : 1 (shared, constant)")
    recipe.run_value(MODULATOR, f"baseline_{k}", 0.0)
    recipe.run_value(MODULATOR, f"condition_{k}", 0.0)  # the copy's task condition (a block's critic reads it)
    for name in ("tonic", "tau_d", "baseline_rate"):
        recipe.run_value(MODULATOR, f"{name}_{k}", 0.0)
    group.regular[f"third_factor_{k}"] = Regular([
        f"level_prev_{k} = level_{k}",
        f"level_{k} = reward_level + tonic_{k}",
        "rs_event = int(reward_pulse != 0)",
        f"pulse_{k} = rs_event * (reward_pulse - baseline_{k})",
        f"baseline_{k} = " + running_average(f"baseline_{k}", "reward_pulse", f"rs_event * baseline_rate_{k}"),
        f"x_{k} = x_{k} * exp(-dt / tau_d_{k}) + pulse_{k}" if spec.third_factor == "dopamine" else f"x_{k} = 0",
        f"event_{k} = int(pulse_{k} != 0 or level_{k} != level_prev_{k})",
        "n_rewards += rs_event",
        "reward_pulse = 0"], when="before_thresholds", order=1)
    if recipe.final_reward:
        group.regular[f"final_{k}"] = Regular(
            [f"final_{k} = (final_reward - baseline_{k}) * {final_flag(layout)}"], dt=final_step_clock(layout),
            when="end", order=6)
    # Synapses read their copy's third factor through linked variables indexed by copy (nothing is
    # integrated per synapse); the postsynaptic neurons turn a change into the event "modulation".
    for projection in layout.projections:
        post = recipe.group(projection.post)
        post.add(f"mod_event_{k} : 1 (linked)")
        post.linked[f"mod_event_{k}"] = (MODULATOR, f"event_{k}", layout.copy_index(projection.post))
        post.events["modulation"] = f"mod_event_{k} > 0"
        syn = recipe.synapses[projection.synapses]
        syn.add(f"copy_{k} : integer (constant)", *(f"mod_{v}_{k} : 1 (linked)" for v in LINKED))
        syn.initial[f"copy_{k}"] = np.repeat(np.arange(layout.copies), projection.size)
        for v in LINKED:
            syn.linked[f"mod_{v}_{k}"] = (MODULATOR, f"{v}_{k}", f"copy_{k}")


# -- the block form: many trials in one run (the block loop) ----------------------------------------
def build_rstdp_block(rule, recipe, layout):
    """R-STDP at the end of every trial of a block (:mod:`bioplastic.networks.spiking_block`), as
    the trial loop does after each run: the trial's change ``dw`` is applied within the bounds.
    With a baseline, the modulator keeps the running reward average of every task condition (the
    critic, which the trial loop keeps in Python, :meth:`RSTDP.observe`) and starts each trial with
    the average of the copy's condition. The critic's averages go back to the rule after the block
    (:func:`finish_rstdp_block`)."""
    k, spec = rule.kind, rule.spec
    for projection in layout.projections:
        syn = recipe.synapses[projection.synapses]
        at_trial_end(syn, "update", f"w = clip(w + {BLOCK_ACTIVE}(t) * acc_{k}, w_min_{k}, w_max_{k})", layout=layout)
        if spec.tau_e > 0 * ms:  # the time of the synapse's last update: the next trial's start
            at_trial_end(syn, "trial_start", f"tl_{k} = t + dt", layout=layout)
    if not spec.baseline or spec.third_factor == "none":
        return
    group = recipe.group(MODULATOR)
    recipe.carried.add((MODULATOR, f"baseline_{k}"))  # set at every trial's start, from the critic
    update, start = [], []
    for c, (mean, seen) in condition_critic(recipe, MODULATOR, k, range(layout.conditions)).items():
        here = in_condition(f"condition_{k}", c)
        update += [f"rs_here = {BLOCK_ACTIVE}(t) * {here}",
                   *critic_update(mean, seen, "rs_here", f"baseline_rate_{k}", "final_reward")]
        start.append(f"{here} * {mean}")
    at_trial_end(group, "update", *update, layout=layout)
    at_trial_end(group, "trial_start", f"baseline_{k} = " + " + ".join(start), layout=layout)


def rstdp_block_values(rule, layout, noise):
    """The critic's averages at the block's start, per copy (the rule's, for every copy's condition)."""
    if not rule.spec.baseline or rule.spec.third_factor == "none":
        return {}
    return critic_values(MODULATOR, rule.kind, range(layout.conditions), rule._baselines)


def finish_rstdp_block(rule, state):
    """Take the critic's averages back."""
    take_critic(state, rule._baselines)


def rstdp_block_requires(spec, model, task_class, task_spec):
    """Why R-STDP's block form cannot run a protocol (completing "its block form ..."), or None."""
    if spec.apply != "trial_end":
        return "applies each trial's change at the trial's end (rule.apply = \"trial_end\")"
    if reason := one_example_per_trial(task_spec):
        return reason
    if spec.baseline and spec.third_factor != "none" and task_spec is not None \
            and task_class.n_conditions(task_spec) is None:
        return f"keeps a baseline per task condition, and the task {task_class.kind!r} does not say how many it has"
    return None


register_block_builder(RSTDP, "spiking", values=rstdp_block_values, finish=finish_rstdp_block,
                       requires=rstdp_block_requires, mirrors=("run_values", "constants"),
                       supports_task=lambda task_class: task_class.final_reward and not task_class.reward_pulses,
                       task_requirement="a reward computed at each trial's end, as spike_count's")(build_rstdp_block)


# -- the NumPy reference ---------------------------------------------------------------------
def rstdp_step(pre, post, state, params, dt, level=0.0, pulse=0.0):
    """Advance R-STDP by one step of ``dt`` seconds for an array of synapses, in NumPy.

    A second, independent realisation of the maths in the module docstring: every step the
    state is propagated exactly over the step (not lazily at events, as the Brian2 code does),
    then the step's events are applied in the documented order. The tests hold the Brian2
    network against it.

    Parameters
    ----------
    pre, post : bool array (n_synapses,)
        A presynaptic arrival / a postsynaptic spike in this step.
    state : dict
        ``apre``, ``apost``, ``e``, ``x``, ``level``, ``w`` (arrays or scalars, SI units); from
        :func:`initial_state`.
    params : dict
        :meth:`RSTDP.constants` plus ``third_factor`` (str) and ``online`` (0 or 1).
    level, pulse : float
        The task's reward level of this step and its reward pulse (0: none); after the baseline.

    Returns
    -------
    dw : ndarray
        The change accumulated over the step (SI units, before bounds).
    state : dict
    """
    s, p = dict(state), params
    third, tau_e = p["third_factor"], p["tau_e"]
    dw = np.zeros(np.shape(s["w"]))
    # the interval since the previous step's events, with the third factor as it was
    if tau_e > 0:
        E = np.exp(-dt / tau_e)
        m_level = 1.0 if third == "none" else s["level"]
        part = m_level * tau_e * (1 - E)
        if third == "dopamine":
            X = np.exp(-dt / p["tau_d"])
            part = part + s["x"] * p["tau_s"] * (1 - E * X)
            s["x"] = s["x"] * X
        dw = dw + p["lr"] * s["e"] * part
        s["e"] = s["e"] * E
    elif third == "dopamine":
        s["x"] = s["x"] * np.exp(-dt / p["tau_d"])
    s["apre"] = s["apre"] * np.exp(-dt / p["tau_plus"])
    s["apost"] = s["apost"] * np.exp(-dt / p["tau_minus"])
    # 1. the third factor of this step
    s["level"] = level + (p["tonic"] if third == "dopamine" else 0.0)
    if third == "dopamine":
        s["x"] = s["x"] + pulse
    now = 1.0 if third == "none" else s["level"] + (s["x"] if third == "dopamine" else 0.0)
    # 3. arrivals: depression from the post trace before this step's post spikes
    ltd = -p["a_minus"] * s["apost"] * pre
    s["apre"] = s["apre"] + pre
    # 4. post spikes: potentiation from the pre trace including this step's arrivals
    ltp = p["a_plus"] * s["apre"] * post
    s["apost"] = s["apost"] + post
    if tau_e > 0:
        s["e"] = s["e"] + (ltd + ltp) / tau_e
    else:
        dw = dw + p["lr"] * now * (ltd + ltp)
    s["w"] = np.clip(s["w"] + p["online"] * dw, p["w_min"], p["w_max"])
    return dw, s


def initial_state(n, w=0.0):
    z = np.zeros(n)
    return dict(apre=z.copy(), apost=z.copy(), e=z.copy(), x=z.copy(), level=np.zeros(n), w=np.full(n, float(w)))


def tail(state, params):
    """The rest of the eligibility integrated to infinity (the end of a trial), SI units."""
    p = params
    if p["tau_e"] <= 0:
        return np.zeros(np.shape(state["w"]))
    level = 1.0 if p["third_factor"] == "none" else state["level"]
    x = state["x"] if p["third_factor"] == "dopamine" else 0.0
    return p["lr"] * state["e"] * (level * p["tau_e"] + x * p["tau_s"])


def pairing_closed_form(delta_t, t_reward, amplitude, params, until=np.inf):
    r"""Δw of one pre/post pairing followed by one dopamine pulse (module docstring), SI units.

    ``delta_t`` = t_post - t_pre (negative: post before pre); ``t_reward`` counts from the later
    spike of the pair; ``until`` from the reward.
    """
    p = params
    delta_t = np.asarray(delta_t, float)
    jump = np.where(delta_t >= 0, p["a_plus"] * np.exp(-np.abs(delta_t) / p["tau_plus"]),
                    -p["a_minus"] * np.exp(-np.abs(delta_t) / p["tau_minus"]))
    tau_s = p["tau_e"] * p["tau_d"] / (p["tau_e"] + p["tau_d"])
    return (p["lr"] * jump / p["tau_e"] * np.exp(-t_reward / p["tau_e"]) * amplitude * tau_s
            * (1 - np.exp(-until / tau_s)))


__all__ = ["RSTDP", "RSTDPSpec", "rstdp_step", "initial_state", "tail", "pairing_closed_form", "THIRD_FACTORS"]
