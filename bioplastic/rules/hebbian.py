r"""Reward-modulated Hebbian rules for recurrent rate networks: EH, Miconi, node perturbation in time.

All three accumulate, inside the Brian2 run, a per-synapse eligibility of a postsynaptic
*exploration signal* times the presynaptic rate, and at the end of the trial turn it into a
weight change with the reward prediction error:

.. math::
    e_{ij} = \sum_n S\big(s_i[n]\, \rho_j[n]\big), \qquad
    \Delta w_{ij} = \eta\, c\, (R - \bar R_\kappa)\, e_{ij},

with :math:`R = -L` the trial's reward, :math:`\bar R_\kappa` a running average of past rewards
(one per trial type :math:`\kappa` with ``baseline = "per_condition"``, one for all with
``"running"``), updated *after* the change as :math:`\bar R \leftarrow (1-\beta) \bar R + \beta R`
(``baseline_rate`` β, :mod:`bioplastic.rules.baseline`; it starts at the first reward of its
type, which gives no change), and
:math:`c = |\bar R_\kappa|` with ``scale_by_error`` (Miconi's code multiplies by the error trace),
else 1. Each element of Δw is clipped to ``max_change`` when that is > 0, and nothing changes in
the first ``warmup`` trials while the baselines settle.

The exploration signal and the presynaptic factor (``signal``):

* ``"fluctuation"``: :math:`s_i[n] = a_i[n] - \bar a_i`, the postsynaptic activation (a neuron's
  state x, or a read-out z) minus its trace :math:`\bar a \leftarrow \alpha \bar a + (1-\alpha) a`
  (``trace_decay`` α), paired with the presynaptic rate that produced it: :math:`\rho_j[n] =
  r_j[n-1]` onto neurons, :math:`r_j[n]` onto the instantaneous read-out.
* ``"perturbation"``: :math:`s_i[n] = k_i[n]`, the perturbation the rule itself injected,
  paired with :math:`\rho_j[n] = r_j[n]`, the rate it entered the step with.

Perturbations :math:`k_i[n]`: in every step, every postsynaptic unit receives, with probability
``perturbation_rate`` · dt, an input current drawn from U(-A, A) (``perturbation_amplitude`` A),
for that step.

:math:`S` is the identity or, with ``nonlinearity = "cube"``, :math:`S(y) = y^3` (Miconi's
supralinear amplification: large, rare fluctuations caused by a perturbation dominate).

The registered rules differ only in their defaults:

* ``exploratory_hebbian`` (Legenstein, Chase, Schwartz & Maass 2010): the exploration is the
  neurons' own private noise (``model.noise``), no perturbations, S = identity, a running average
  of the reward as baseline (one per trial type: with one condition that is Legenstein's;
  with several, one average for all lets the types' different rewards bias the update, measured
  on DNMS as a cosine of -0.07 of the mean update with -∇L against +0.26 per type):
  :math:`\Delta w_{ij} = \eta (R - \bar R)(a_i - \bar a_i) x_j`. The trace must be slower than
  the units: with a fast one, :math:`a - \bar a` is mostly the leak's decay of earlier
  fluctuations, which enters with the opposite sign. Measured (NumPy, τ = 5 ms, dt = 1 ms, 4000
  samples): cosine of the mean update with -∇L of -0.95 at α = 0.5, +0.48 at α = 0.9, +0.63 at
  α = 0.95; hence the default α = 0.95 (a trace of ~20 steps).
* ``miconi`` (Miconi 2017, constants of ``dnms/net.cpp``): perturbations at 3 Hz with A = 16,
  α = 0.05, S = cube, a baseline per trial type with β = 0.25 (Miconi's decay 0.75), the error-trace factor, η = 0.1,
  |Δw| <= 3e-4 per trial, 100 warm-up trials. Here the fast trace works because the cube lets
  the rare large jumps that a kick causes dominate the small leak terms: without the cube the
  same estimator's mean update is uncorrelated with or opposed to -∇L (measured cosines 0.07,
  -0.33, -0.89), with it 0.93-0.97 (NumPy, four settings of τ and kick rate).
* ``node_perturbation_time`` (Fiete & Seung 2006): perturbations every step,
  S = identity, a baseline per trial type. To first order in the perturbation,
  :math:`E[(R - \bar R)\, k_i[n]] = -\mathrm{Var}(k)\, \partial L/\partial k_i[n]`, and
  :math:`\partial L/\partial J_{ij} = \sum_n \partial L/\partial k_i[n]\, r_j[n]`, so with the
  baseline at the expected reward the mean update is :math:`-\eta \mathrm{Var}(k) \nabla L`: an
  unbiased gradient estimate (the tests measure it against BPTT).

What the run accumulates (the dry run's observable) is the eligibility ``e_<kind>``; the
update above is one number per example times it, computed when the trial ends.

References
----------
Legenstein, Chase, Schwartz & Maass (2010), A reward-modulated Hebbian learning rule can explain
experimentally observed network reorganization in a brain control task. J. Neurosci. 30(25).
Miconi (2017), eLife 6:e20899. Fiete & Seung (2006), Phys. Rev. Lett. 97, 048104.
"""

from dataclasses import dataclass

import numpy as np
from brian2 import Hz

from ..errors import SpecError
from ..networks.block import (ACTIVE as BLOCK_ACTIVE, at_trial_end, condition_critic, copy_losses, critic_values,
                              in_condition, take_critic)
from ..networks.dense import dense_accumulate
from ..networks.recipe import Regular
from ..networks.recurrent_rate import STEP, draw_kicks
from ..spec import fraction, non_negative, param, positive, validate
from .base import InNetworkRule, register_rule
from .baseline import baseline_rate_param, critic_update, observe_reward
from .builders import one_example_per_trial, register_block_builder, register_builder

ACTIVATION_OF = {"neurons": "x", "readout": "z"}  # the activation whose fluctuation is the signal
CRITIC = "losses"  # a block's group of one neuron per copy: its loss, and the critic's baselines (block form)


def _spec(defaults):
    """A spec class of the reward-modulated Hebbian family with the given defaults."""
    d = defaults

    @dataclass(frozen=True)
    class Spec:
        lr: float = param(d["lr"], "learning rate η", check=positive)
        signal: str = param(d["signal"], "exploration signal: fluctuation (activation minus its trace) or "
                            "perturbation (the injected kicks)", kind=str, choices=("fluctuation", "perturbation"))
        nonlinearity: str = param(d["nonlinearity"], "S applied to signal x presynaptic rate every step", kind=str,
                                  choices=("none", "cube"))
        trace_decay: float = param(d["trace_decay"], "α of the activation trace ā <- α ā + (1 - α) a, per step",
                                   check=fraction)
        perturbation_rate: object = param(d["perturbation_rate"], "rate of the perturbation kicks per unit",
                                          unit=Hz, check=non_negative)
        perturbation_amplitude: float = param(d["perturbation_amplitude"], "kicks ~ U(-A, A), an input current",
                                              check=non_negative)
        baseline: str = param(d["baseline"], "reward baseline: one per trial type, or one running average", kind=str,
                              choices=("per_condition", "running"))
        baseline_rate: float = baseline_rate_param(d["baseline_rate"])
        scale_by_error: bool = param(d["scale_by_error"], "multiply the change by |R̄| (Miconi's code)", kind=bool)
        max_change: float = param(d["max_change"], "clip every weight's change per trial to ±this (0: no clip)",
                                  check=non_negative)
        warmup: int = param(d["warmup"], "trials without change while the baselines settle", kind=int,
                            check=non_negative)

        def __post_init__(self):
            validate(self)

    return Spec


EH_DEFAULTS = dict(lr=1e-3, signal="fluctuation", nonlinearity="none", trace_decay=0.95, perturbation_rate=0 * Hz,
                   perturbation_amplitude=0.0, baseline="per_condition", baseline_rate=0.25, scale_by_error=False,
                   max_change=0.0, warmup=0)
MICONI_DEFAULTS = dict(lr=0.1, signal="fluctuation", nonlinearity="cube", trace_decay=0.05, perturbation_rate=3 * Hz,
                       perturbation_amplitude=16.0, baseline="per_condition", baseline_rate=0.25,
                       scale_by_error=True, max_change=3e-4, warmup=100)
NPT_DEFAULTS = dict(lr=1.0, signal="perturbation", nonlinearity="none", trace_decay=0.5, perturbation_rate=1000 * Hz,
                    perturbation_amplitude=0.1, baseline="per_condition", baseline_rate=0.25, scale_by_error=False,
                    max_change=0.0, warmup=0)

ExploratoryHebbianSpec = _spec(EH_DEFAULTS)
ExploratoryHebbianSpec.__name__ = ExploratoryHebbianSpec.__qualname__ = "ExploratoryHebbianSpec"
MiconiSpec = _spec(MICONI_DEFAULTS)
MiconiSpec.__name__ = MiconiSpec.__qualname__ = "MiconiSpec"
NodePerturbationTimeSpec = _spec(NPT_DEFAULTS)
NodePerturbationTimeSpec.__name__ = NodePerturbationTimeSpec.__qualname__ = "NodePerturbationTimeSpec"


class RewardModulatedHebbian(InNetworkRule):
    """The family's rule; see the module docstring. Registered kinds set their own defaults."""

    model_families = ("recurrent_rate",)
    calibration = "samples"  # align: the baseline is the mean reward of the very samples (see Trainer.align)

    def __init__(self, spec):
        super().__init__(spec)
        self.baselines = {}  # trial type (0 for a running baseline) -> R̄
        self.trials_seen = 0

    def check(self, model, task_class):
        if task_class.mode == "continuous":
            raise SpecError("task.kind", f"the rule {self.kind!r} changes the weights at the end of each trial: it needs "
                            "a trial task, not a continuous one", task_class.kind)
        p = float(self.spec.perturbation_rate * model.dt)
        if p > 1:
            raise SpecError("rule.perturbation_rate", f"must be <= 1 / model.dt ({float(1 / model.dt):g} Hz): at most "
                            "one kick per unit and step", str(self.spec.perturbation_rate))
        if self.spec.signal == "perturbation" and (p == 0 or self.spec.perturbation_amplitude == 0):
            raise SpecError("rule.perturbation_amplitude", "signal = \"perturbation\" needs kicks: a "
                            "perturbation_rate and a perturbation_amplitude > 0", self.spec.perturbation_amplitude)
        if self.spec.signal == "fluctuation" and p == 0 and model.noise == 0:
            raise SpecError("model.noise", f"the rule {self.kind!r} explores with the neurons' fluctuations: give the "
                            "neurons private noise (model.noise > 0) or the rule perturbations", model.noise)

    def run_values(self, context):
        layout = context.layout
        p = float(self.spec.perturbation_rate * layout.dt)
        values = {}
        for group in layout.layers:
            values[(group, "kick_probability")] = p
            values[(group, "kick_amplitude")] = self.spec.perturbation_amplitude
            values[(group, "trace_decay")] = self.spec.trace_decay
        if layout.block:  # the block form's critic reads each copy's trial type
            values[(CRITIC, f"condition_{self.kind}")] = np.asarray(context.conditions, float)
        return values

    def _key(self, condition):
        return int(condition) if self.spec.baseline == "per_condition" else 0

    def modulation(self, trial):
        """Per example, what multiplies its eligibility: c (R - R̄), 0 where the type has no baseline yet."""
        rewards = -np.asarray(trial.losses)[0]
        out = np.zeros(len(rewards))
        if self.trials_seen < self.spec.warmup:
            return out
        for b, (reward, condition) in enumerate(zip(rewards, trial.conditions)):
            baseline = self.baselines.get(self._key(condition))
            if baseline is not None:
                scale = abs(baseline) if self.spec.scale_by_error else 1.0
                out[b] = scale * (reward - baseline)
        return out

    def update(self, trial, perturbation):
        if trial.deltas is None:
            raise ValueError(f"{type(self).__name__}: the run reported no eligibility (was the rule built in?)")
        m = self.modulation(trial)
        change = [self.spec.lr * np.tensordot(m, np.asarray(e), axes=1) for e in trial.deltas]
        if self.spec.max_change > 0:
            change = [np.clip(c, -self.spec.max_change, self.spec.max_change) for c in change]
        return change

    def observe(self, trial):
        rewards = -np.asarray(trial.losses)[0]
        for reward, condition in zip(rewards, trial.conditions):
            observe_reward(self.baselines, self._key(condition), reward, self.spec.baseline_rate)
        self.trials_seen += 1

    def calibrate(self, trials):
        """Dry runs at fixed weights: baselines at the mean reward of each type over ``trials``."""
        sums = {}
        for trial in trials:
            for reward, condition in zip(-np.asarray(trial.losses)[0], trial.conditions):
                sums.setdefault(self._key(condition), []).append(reward)
        self.baselines = {key: float(np.mean(values)) for key, values in sums.items()}
        self.trials_seen = max(self.trials_seen, self.spec.warmup)


@register_rule
class ExploratoryHebbian(RewardModulatedHebbian):
    """The exploratory Hebbian rule (Legenstein et al. 2010)."""

    kind = "exploratory_hebbian"
    spec_class = ExploratoryHebbianSpec
    description = "EH: reward prediction error x (activation - its trace) x presynaptic rate (Legenstein 2010)"


@register_rule
class Miconi(RewardModulatedHebbian):
    """Miconi's (2017) rule for recurrent networks."""

    kind = "miconi"
    spec_class = MiconiSpec
    description = "Miconi 2017: sparse perturbations, cubed Hebbian eligibility, per-type reward baseline"


@register_rule
class NodePerturbationTime(RewardModulatedHebbian):
    """Node perturbation through time (Fiete & Seung 2006)."""

    kind = "node_perturbation_time"
    spec_class = NodePerturbationTimeSpec
    description = "node perturbation through time: injected kicks x presynaptic rate, times the reward error"


@register_builder(RewardModulatedHebbian, "recurrent_rate")
def build_reward_modulated_hebbian(rule, recipe, layout):
    """Kicks and traces on the target groups, the eligibility on every plastic projection.

    S(s ρ) is computed as S(s) S(ρ) for S = identity or the cube, so each unit computes its factor
    once per step and each synapse only multiplies two numbers."""
    spec = rule.spec
    cube = spec.nonlinearity == "cube"
    for group_name in layout.layers:
        draw_kicks(recipe, group_name)
        group = recipe.group(group_name)
        group.add("trace_decay : 1 (shared, constant)", "abar : 1", "post_factor : 1")
        activation = ACTIVATION_OF[group_name]
        signal = "kick" if spec.signal == "perturbation" else f"({activation} - abar)"
        group.regular["post_factor"] = Regular([f"post_factor = {signal}**3" if cube else f"post_factor = {signal}"],
                                               when="groups", order=STEP["factor"])
        group.regular["trace"] = Regular([f"abar = trace_decay * abar + (1 - trace_decay) * {activation}"],
                                         when="groups", order=STEP["trace"])
        recipe.run_value(group_name, "trace_decay", 0.0)
    variable = rule.delta_variable
    for projection in layout.projections:
        # A fluctuation of a neuron's state was caused by the rates of the step before; the
        # read-out's, and a kick's, go with the rates of the same step.
        previous = spec.signal == "fluctuation" and projection.post == "neurons"
        source = recipe.group(projection.pre)
        name = "pre_factor_previous" if previous else "pre_factor"
        source.add(f"{name} : 1")
        rate = "r_prev" if previous else "r"
        source.regular[name] = Regular([f"{name} = {rate}**3" if cube else f"{name} = {rate}"], when="groups",
                                       order=STEP["factor"])
        if previous:
            source.add("r_prev : 1")
            source.regular["r_prev"] = Regular(["r_prev = r"], when="groups", order=STEP["trace"])
        syn = recipe.synapses[projection.synapses]
        syn.add(f"{variable} : 1")
        if projection.synapses in recipe.dense:  # the same update as a matrix loop (networks/dense.py)
            dense_accumulate(recipe, projection.synapses, variable, name, "post_factor", copies=layout.copies,
                             shape=projection.shape, order=STEP["eligibility"])
        else:
            syn.regular[rule.kind] = Regular([f"{variable} += {name}_pre * post_factor_post"], when="groups",
                                             order=STEP["eligibility"])
    recipe.declare_delta(rule.kind, variable)


# -- the block form: many trials in one run (the block loop) ----------------------------------------
def _critic_keys(rule, layout):
    """The critic's baselines: one per trial type, or one for all."""
    return range(layout.conditions) if rule.spec.baseline == "per_condition" else range(1)


def build_hebbian_block(rule, recipe, layout):
    """The family's update at the end of every trial of a block (:mod:`bioplastic.networks.block`),
    as the trial loop does after each run (:meth:`RewardModulatedHebbian.update` then ``observe``):
    the copy's loss L from the task's error in the network, the modulation c (R - R̄) of its trial
    type (0 before the type's first reward and during the warm-up), each weight's change
    η (m e) clipped to ±``max_change``, then the baseline of the type moved to R. The critic's
    baselines and the trials seen stay in the network from trial to trial and go back to the
    rule after the block (:func:`finish_hebbian_block`)."""
    spec, k = rule.spec, rule.kind
    critic = copy_losses(recipe, layout)
    critic.add(f"condition_{k} : 1", f"modulation_{k} : 1", f"trials_seen_{k} : 1",
               f"warmup_{k} : 1 (shared, constant)", f"baseline_rate_{k} : 1 (shared, constant)")
    recipe.run_value(CRITIC, f"condition_{k}", 0.0)
    for name in (f"warmup_{k}", f"baseline_rate_{k}"):
        recipe.run_value(CRITIC, name, 0.0)
    counter = f"trials_seen_{k}"
    recipe.run_value(CRITIC, counter, 0.0)
    recipe.carried.add((CRITIC, counter))
    recipe.block_state.append((CRITIC, counter))
    names = condition_critic(recipe, CRITIC, k, _critic_keys(rule, layout))
    here = {c: in_condition(f"condition_{k}", c) if spec.baseline == "per_condition" else "1" for c in names}
    # Written so that the arithmetic is the NumPy update's, bit for bit: a factor that is 1 or 0
    # selects a term, and R = -L.
    baseline = " + ".join(f"{here[c]} * {mean}" for c, (mean, _) in names.items())
    has = " + ".join(f"{here[c]} * {seen}" for c, (_, seen) in names.items())
    scale = "abs(hb_baseline) * " if spec.scale_by_error else ""
    at_trial_end(critic, "credit", f"hb_baseline = {baseline}", f"hb_has = {has}",
                 f"modulation_{k} = {BLOCK_ACTIVE}(t) * int(trials_seen_{k} >= warmup_{k} - 0.5) * hb_has * "
                 f"{scale}(-L - hb_baseline)", layout=layout)
    update = []
    for c, (mean, seen) in names.items():
        update += [f"hb_here = {BLOCK_ACTIVE}(t) * {here[c]}",
                   *critic_update(mean, seen, "hb_here", f"baseline_rate_{k}", "(-L)")]
    at_trial_end(critic, "update", *update, f"trials_seen_{k} = trials_seen_{k} + {BLOCK_ACTIVE}(t)", layout=layout)
    change = f"lr_{k} * (modulation_{k} * {rule.delta_variable})"
    if spec.max_change > 0:
        change = f"clip({change}, -max_change_{k}, max_change_{k})"
    for projection in layout.projections:
        syn = recipe.synapses[projection.synapses]
        syn.add(f"hebbian_copy_{k} : integer (constant)", f"modulation_{k} : 1 (linked)",
                f"lr_{k} : 1 (shared, constant)", f"max_change_{k} : 1 (shared, constant)")
        syn.initial[f"hebbian_copy_{k}"] = np.repeat(np.arange(layout.copies), projection.size)
        syn.linked[f"modulation_{k}"] = (CRITIC, f"modulation_{k}", f"hebbian_copy_{k}")
        for name in (f"lr_{k}", f"max_change_{k}"):
            recipe.run_value(projection.synapses, name, 0.0)
        at_trial_end(syn, "update", f"w = w + {change}", layout=layout)


def hebbian_block_values(rule, layout, noise):
    """The rule's constants, and its critic at the block's start (its baselines and trials seen)."""
    spec, k = rule.spec, rule.kind
    values = {(CRITIC, f"warmup_{k}"): float(spec.warmup), (CRITIC, f"baseline_rate_{k}"): spec.baseline_rate,
              (CRITIC, f"trials_seen_{k}"): float(rule.trials_seen)}
    for projection in layout.projections:
        values[(projection.synapses, f"lr_{k}")] = spec.lr
        values[(projection.synapses, f"max_change_{k}")] = spec.max_change
    values.update(critic_values(CRITIC, k, _critic_keys(rule, layout), rule.baselines))
    return values


def finish_hebbian_block(rule, state):
    """Take the critic back (copy 0's: with one example per trial every copy has the same)."""
    rule.trials_seen = int(round(float(state[(CRITIC, f"trials_seen_{rule.kind}")][0])))
    take_critic(state, rule.baselines)


def hebbian_block_requires(spec, model, task_class, task_spec):
    """Why the family's block form cannot run a protocol (completing "its block form ..."), or None."""
    if reason := one_example_per_trial(task_spec):
        return reason
    if spec.baseline == "per_condition" and task_spec is not None and task_class.n_conditions(task_spec) is None:
        return f"keeps a baseline per trial type, and the task {task_class.kind!r} does not say how many it has"
    return None


register_block_builder(RewardModulatedHebbian, "recurrent_rate", values=hebbian_block_values,
                       finish=finish_hebbian_block, requires=hebbian_block_requires,
                       mirrors=("run_values", "modulation"),
                       supports_task=lambda task_class: task_class.error_in_network,
                       task_requirement="a loss the network computes itself, as dnms's and pattern_generation's"
                       )(build_hebbian_block)
