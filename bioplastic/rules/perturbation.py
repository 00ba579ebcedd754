r"""Weight perturbation and node perturbation: zeroth-order estimates of the gradient.

Both draw K Gaussian directions :math:`\xi_k \sim N(0, \sigma^2 I)`, measure the change in loss
they cause against the clean copy (or, antithetically, between :math:`+\xi_k` and
:math:`-\xi_k`), and reinforce what lowered the loss:

.. math:: \hat g = \frac{1}{K\sigma^2} \sum_k \xi_k\, \Delta L_k, \qquad
          \Delta L_k = L(+\xi_k) - L(0) \ \ \text{or}\ \ \tfrac12\,[L(+\xi_k) - L(-\xi_k)] .

Weight perturbation (WP) perturbs every weight, shared by the batch; its dimension is the
number of weights P. Node perturbation (NP) perturbs every neuron's input current with a
constant ``pert`` per example and credits each synapse with its presynaptic rate at the
read-out, :math:`\Delta W^l = -\eta \sum_b \hat g_b^l \otimes r_b^{l-1}(T)`. NP is exact when the
presynaptic rates are stationary over the last few :math:`\tau` of the trial (the bias is of order
:math:`e^{-T/\tau}`), and its dimension is the number of perturbed neurons, weighted by how much
each layer's presynaptic activity enters (see :meth:`NodePerturbation.theory`).

References
----------
Jabri & Flower (1992), Weight perturbation. IEEE Trans. Neural Netw. 3(1).
Werfel, Xie & Seung (2005), Learning curves for stochastic gradient descent in linear feedforward
networks. Neural Comput. 17(12).
Fiete & Seung (2006), Gradient learning in spiking neural networks by dynamic perturbation of
conductances. Phys. Rev. Lett. 97.
"""

from dataclasses import dataclass

import numpy as np
from brian2 import Quantity

from ..analysis.alignment import layer_subsets
from ..analysis.theory import expected_cosine, isotropic_equivalent, sq
from ..errors import SpecError
from ..networks.rate_math import flatten, unflatten
from ..spec import at_least, param, positive, validate
from ..networks.rate import BOUNDARY, every_trial, update_master_weight
from ..networks.block import ACTIVE as BLOCK_ACTIVE, at_trial_end, copy_losses, unit_name
from .base import Perturbation, Rule, register_rule
from .builders import register_block_builder


@dataclass(frozen=True)
class PerturbationSpec:
    """Parameters shared by WP and NP.

    Parameters
    ----------
    lr : float
        Learning rate η (dimensionless).
    sigma : float
        Standard deviation of the perturbation (a weight for WP, an input current for NP;
        both dimensionless in a rate network).
    samples : int
        K, perturbation directions per update.
    antithetic : bool
        Evaluate each direction at +ξ and -ξ (2K perturbed copies) instead of against the clean copy.
    """

    lr: float = param(0.05, "learning rate", check=positive)
    sigma: float = param(1e-3, "perturbation standard deviation", check=positive)
    samples: int = param(4, "K, perturbation directions per update", kind=int, check=at_least(1))
    antithetic: bool = param(False, "evaluate +xi and -xi instead of against the clean copy", kind=bool)

    def __post_init__(self):
        validate(self)


@dataclass(frozen=True)
class WeightPerturbationSpec(PerturbationSpec):
    __doc__ = PerturbationSpec.__doc__


@dataclass(frozen=True)
class NodePerturbationSpec(PerturbationSpec):
    __doc__ = PerturbationSpec.__doc__ + """    credit : str
        ``"example"``: each example of a batch is reinforced by its own loss change (a reward per
        example). ``"trial"``: every example by the change of the whole trial's loss, the one
        reward a temporally extended task gives (Züge et al. 2023), so the perturbations of all
        examples (time steps) add noise to each other's credit.
"""

    credit: str = param("example", "reinforce each example by its own loss change, or by the trial's",
                        kind=str, choices=("example", "trial"))


def signed_variants(noise, antithetic):
    """Offsets per variant: a zero row (clean), then +ξ_1..+ξ_K, then -ξ_1..-ξ_K if antithetic."""
    rows = [np.zeros_like(noise[:1]), noise] + ([-noise] if antithetic else [])
    return np.concatenate(rows)


def loss_differences(losses, samples, antithetic):
    r"""ΔL_k per direction from per-variant losses (rows as in :func:`signed_variants`).

    ``losses`` has shape (1 + K[ + K], ...); the result has shape (K, ...).
    """
    plus = losses[1:1 + samples]
    if antithetic:
        return 0.5 * (plus - losses[1 + samples:1 + 2 * samples])
    return plus - losses[0]


def zeroth_order_estimate(noise, differences, sigma):
    r""":math:`\hat g = \frac{1}{K\sigma^2}\sum_k \xi_k \Delta L_k`.

    ``noise`` has shape (K, ..., n) and ``differences`` (K, ...); the result has shape (..., n).
    """
    return np.einsum("k...n,k...->...n", noise, differences) / (noise.shape[0] * sigma ** 2)


class _PerturbationRule(Rule):
    @property
    def variants(self):
        return 1 + self.spec.samples * (2 if self.spec.antithetic else 1)

    def _differences(self, losses):
        return loss_differences(losses, self.spec.samples, self.spec.antithetic)


@register_rule
class WeightPerturbation(_PerturbationRule):
    """Weight perturbation: perturb every weight, reinforce along what lowered the loss."""

    kind = "weight_perturbation"
    spec_class = WeightPerturbationSpec
    description = "perturb all weights by Gaussian noise; step along noise that lowered the loss"

    def perturb(self, weights, batch, rng):
        k, sigma = self.spec.samples, self.spec.sigma
        noise = [rng.normal(0.0, sigma, (k,) + w.shape) for w in weights]
        return Perturbation(weights=[signed_variants(n, self.spec.antithetic) for n in noise], noise=noise)

    def update(self, trial, perturbation):
        batch_loss = trial.losses.mean(axis=1)  # the weights are shared by the whole batch
        g = zeroth_order_estimate(flatten(perturbation.noise, lead=1), self._differences(batch_loss),
                                  self.spec.sigma)
        return [-self.spec.lr * part for part in unflatten(g, [w.shape for w in trial.weights])]

    def theory(self, trial):
        r"""WP is isotropic over all P weights: :math:`D = P` exactly for the whole network.

        For layer l alone the noise of every other layer still enters through
        :math:`\xi^\top g`: one sample's second moment is :math:`\|g\|^2 P_l + 2\|g_l\|^2`, so
        :math:`D_\mathrm{eff} = P_l \|g\|^2 / \|g_l\|^2`.
        """
        g = trial.gradient.weights
        total = sum(sq(x) for x in g)
        out = {}
        for name, layers in layer_subsets(len(g)):
            mean2 = sum(sq(g[l]) for l in layers)
            m2 = total * sum(g[l].size for l in layers) + 2 * mean2
            d, k = isotropic_equivalent(mean2, m2, self.spec.samples)
            if np.isfinite(d):
                out[name] = (d, expected_cosine(d, k), k)
        return out


@register_rule
class NodePerturbation(_PerturbationRule):
    """Node perturbation: perturb every neuron's input, credit synapses by presynaptic rate."""

    kind = "node_perturbation"
    spec_class = NodePerturbationSpec
    description = "perturb neuron inputs by Gaussian noise; credit each synapse by its presynaptic rate"

    def check(self, model, task_class):
        if model.family in ("recurrent_rate", "alif") and {"input", "recurrent"} <= set(model.plastic_layers):
            raise SpecError("model.plastic", "node perturbation perturbs each plastic projection's target units once: "
                            "the input and recurrent weights share theirs; train one of them, or use "
                            "node_perturbation_time", model.plastic)

    def perturb(self, weights, batch, rng):
        k, sigma = self.spec.samples, self.spec.sigma
        noise = [rng.normal(0.0, sigma, (k, batch, w.shape[0])) for w in weights]
        return Perturbation(nodes=[signed_variants(n, self.spec.antithetic) for n in noise], noise=noise)

    def node_gradients(self, trial, perturbation):
        """Per-example estimates of dL/dpert, one (batch, n_l) array per layer."""
        if self.spec.credit == "trial":  # the batch loss's change credits every example
            differences = np.repeat(self._differences(trial.losses.mean(axis=1))[:, None], trial.losses.shape[1], axis=1)
        else:
            differences = self._differences(trial.losses) / trial.losses.shape[1]  # (K, batch)
        return [zeroth_order_estimate(n, differences, self.spec.sigma) for n in perturbation.noise]

    def update(self, trial, perturbation):
        clean = [r[0] for r in trial.final]  # presynaptic rates of the clean copies at the read-out
        return [-self.spec.lr * np.einsum("bo,bi->oi", g, pre)
                for g, pre in zip(self.node_gradients(trial, perturbation), clean)]

    def theory(self, trial):
        r"""Effective dimension from second moments (see :mod:`bioplastic.analysis.theory`).

        With per-example node gradients :math:`g_b` (all layers), presynaptic rates
        :math:`r_b^{l-1}`, :math:`G_b^l = g_b^l \otimes r_b^{l-1}` and :math:`G = \sum_b G_b`,
        one sample's second moment restricted to layers S is

        .. math:: m_2 = \|G_S\|^2 + \sum_b \Big( \|g_b\|^2 \sum_{l \in S} n_l \|r_b^{l-1}\|^2
                  + \|G_{b,S}\|^2 \Big).

        Each example is an independent block whose signal weight is :math:`G_b \cdot G`, which sets
        the effective number of samples (see :func:`~bioplastic.analysis.theory.isotropic_equivalent`).
        With ``credit = "trial"`` the trial's one loss change multiplies every example's noise, so
        the estimate is one block with :math:`m_2 = \sum_b \|g_b\|^2 \sum_{l \in S} n_l \sum_b
        \|r_b^{l-1}\|^2 + 2\|G_S\|^2`.
        With one example and equal presynaptic norms in every layer this gives D = the number of
        perturbed neurons; for a single layer of weights and one example, D = n_out exactly,
        whatever the input.
        """
        g = trial.gradient.nodes  # per layer (batch, n_l)
        pre = [r[0] for r in trial.final[:-1]]  # per layer (batch, n_in)
        node_norm2 = sum(np.sum(gl ** 2, axis=1) for gl in g)  # (batch,)
        pre_norm2 = [np.sum(p ** 2, axis=1) for p in pre]  # (batch,)
        per_example_mean = [np.einsum("bo,bi->boi", gl, p) for gl, p in zip(g, pre)]  # G_b^l
        mean = [m.sum(axis=0) for m in per_example_mean]
        per_example = [np.sum(gl ** 2, axis=1) * pn for gl, pn in zip(g, pre_norm2)]  # |G_b^l|^2
        out = {}
        for name, layers in layer_subsets(len(g)):
            mean2 = sum(sq(mean[l]) for l in layers)
            trace = sum(g[l].shape[1] * pre_norm2[l] for l in layers)
            if self.spec.credit == "trial":  # one block: every example's noise enters every credit
                m2 = float(np.sum(node_norm2) * np.sum(trace)) + 2 * mean2
                d, k = isotropic_equivalent(mean2, m2, self.spec.samples)
            else:
                m2 = mean2 + float(np.sum(node_norm2 * trace + sum(per_example[l] for l in layers)))
                signal = sum(np.einsum("boi,oi->b", per_example_mean[l], mean[l]) for l in layers)  # G_b . G
                d, k = isotropic_equivalent(mean2, m2, self.spec.samples, signal)
            if np.isfinite(d):
                out[name] = (d, expected_cosine(d, k), k)
        return out


# -- the block form: WP's and NP's update at every trial boundary, in generated code ---------------
def _copies(rule, layout):
    """Per copy: its example, the sign of its perturbation (0 clean, +1, -1) and its direction k."""
    k, copy = rule.spec.samples, np.arange(layout.copies)
    variant, example = copy // layout.batch, copy % layout.batch
    sign = np.where(variant == 0, 0.0, np.where(variant <= k, 1.0, -1.0))
    direction = np.where(variant <= k, variant - 1, variant - 1 - k).clip(0)  # the k of a ± copy
    return example, sign, direction


def _loss_changes(rule, recipe, layout, per_example):
    """Group ``directions``: every direction's loss change ΔL_k (per example, or of the batch mean),
    summed from the copies' losses once per trial."""
    k, b, antithetic = rule.spec.samples, layout.batch, rule.spec.antithetic
    recipe.group("directions", k * b if per_example else k, dt=layout.period,
                 order=BOUNDARY["loss_change"] + 1).add("dL : 1")
    pre, post, coef = [], [], []
    for kk in range(k):
        for bb in range(b):
            target = kk * b + bb if per_example else kk
            pairs = ([((1 + kk) * b + bb, 0.5 / b), ((1 + k + kk) * b + bb, -0.5 / b)] if antithetic
                     else [((1 + kk) * b + bb, 1.0 / b), (bb, -1.0 / b)])
            for source, c in pairs:
                pre.append(source), post.append(target), coef.append(c)
    change = recipe.connect("change", "losses", "directions", pre, post, dt=layout.period)
    change.add("coef : 1 (constant)", "dL_post = coef * L_pre : 1 (summed)")
    change.initial["coef"] = np.array(coef)


def _noise_tables(recipe, layout, widths):
    """One table per layer of the trials' noise (``widths`` numbers a row), shifted by one row: the
    boundary after trial n reads trial n's at t and trial n + 1's at t + loop_period."""
    for l, width in enumerate(widths, start=1):
        recipe.timed_array(f"loop_noise{l}", layout.trials + 2, width, dt=layout.period)
        recipe.run_value(f"loop_noise{l}", "values", 0.0)


def build_wp_block(rule, recipe, layout):
    """WP at the boundary: every synapse steps its master weight by Σ_k ξ_k ΔL_k (its own entry of
    every direction from the noise table, the directions' ΔL copied to its postsynaptic neuron), then
    sets its copy's weight to the master weight plus its perturbation for the next trial."""
    k = rule.spec.samples
    _, sign, direction = _copies(rule, layout)
    _loss_changes(rule, recipe, layout, per_example=False)
    _noise_tables(recipe, layout, [k * p.size for p in layout.projections])
    for l, projection in enumerate(layout.projections, start=1):
        group, n = recipe.group(projection.post), layout.size(projection.post)
        _read_across(group, {f"dL{kk}": ("directions", "dL", np.full(n, kk)) for kk in range(k)},
                     _slot(group, "credit", layout, every_trial))
        (n_out, n_in), size = projection.shape, projection.size
        syn = recipe.synapses[projection.synapses]
        c, o, i = syn.j // n_out, syn.j % n_out, syn.i % n_in  # every synapse's copy, output and input
        syn.add("wsign : 1 (constant)", "widx0 : integer (constant)", "widx : integer (constant)")
        syn.initial.update(widx0=o * n_in + i, widx=direction[c] * size + o * n_in + i, wsign=sign[c])
        syn.namespace["loop_period"] = layout.period
        estimate = " + ".join(f"loop_noise{l}(t, widx0 + {kk * size}) * dL{kk}_post" for kk in range(k))
        update_master_weight(syn, estimate, layout)
        every_trial(syn, "next_trial", f"w = wm + wsign * loop_noise{l}(t + loop_period, widx)", layout=layout)


def build_np_block(rule, recipe, layout):
    """NP at the boundary: every neuron's node gradient g_b = Σ_k ζ_kb ΔL_kb per example (summed on
    the postsynaptic side), every synapse steps its master weight by Σ_b g_b r_b (the clean copies'
    read-out rates on the presynaptic side), and every neuron takes its next trial's perturbation."""
    k, b, copies = rule.spec.samples, layout.batch, layout.copies
    example, sign, direction = _copies(rule, layout)
    per_example = rule.spec.credit == "example"
    _loss_changes(rule, recipe, layout, per_example)
    _noise_tables(recipe, layout, [k * b * p.shape[0] for p in layout.projections])
    variant = np.arange(copies) // b
    perturbed = np.flatnonzero((variant >= 1) & (variant <= k))
    credit_of = direction * b + example if per_example else direction
    for projection in layout.projections:  # every clean copy's read-out rate of the presynaptic neurons
        group, n = recipe.group(projection.pre), layout.groups[projection.pre]
        unit = np.tile(np.arange(n), copies)
        _read_across(group, {f"rc{bb}": (projection.pre, "rT", bb * n + unit) for bb in range(b)},
                     _slot(group, "share_read_out", layout, every_trial))
    for l, projection in enumerate(layout.projections, start=1):
        name, n = projection.post, layout.groups[projection.post]
        group, unit = recipe.group(name), np.tile(np.arange(n), copies)
        group.add("psign : 1 (constant)", "pidx : integer (constant)", "dLn : 1 (linked)", "dLp : 1")
        group.initial.update(psign=np.repeat(sign, n), pidx=np.repeat(direction * b + example, n) * n + unit)
        group.linked["dLn"] = ("directions", "dL", np.repeat(credit_of, n))
        group.namespace["loop_period"] = layout.period
        every_trial(group, "credit", "dLp = dLn", layout=layout)
        recipe.group(f"nodegrad{l}", b * n, dt=layout.period, order=BOUNDARY["node_gradient"] + 1).add("g : 1")
        nodes = recipe.connect(f"nodes{l}", name, f"nodegrad{l}", (perturbed[:, None] * n + np.arange(n)).ravel(),
                               (example[perturbed][:, None] * n + np.arange(n)).ravel(), dt=layout.period)
        nodes.add("g_post = pert_pre * dLp_pre : 1 (summed)")
        _read_across(group, {f"g{bb}": (f"nodegrad{l}", "g", bb * n + unit) for bb in range(b)},
                     _slot(group, "share_node_gradient", layout, every_trial))
        every_trial(group, "next_trial", f"pert = psign * loop_noise{l}(t + loop_period, pidx)", layout=layout)
        syn = recipe.synapses[projection.synapses]
        update_master_weight(syn, " + ".join(f"g{bb}_post * rc{bb}_pre" for bb in range(b)), layout)
        every_trial(syn, "next_trial", "w = wm", layout=layout)


def block_values(rule, layout, noise):
    """The run values of a block: every layer's noise table (``noise``: per layer, the trials' draws
    (trials, ...)) and the master weight's step per unit of the estimate, lr / (K σ²)."""
    values = {}
    for l, (projection, table) in enumerate(zip(layout.projections, noise), start=1):
        flat = np.asarray(table, float).reshape(layout.trials, -1)
        values[(f"loop_noise{l}", "values")] = np.concatenate([np.zeros((1, flat.shape[1])), flat,
                                                               np.zeros((1, flat.shape[1]))])
        values[(projection.synapses, "lrk")] = rule.spec.lr / (rule.spec.samples * rule.spec.sigma ** 2)
    return values


def _direction_changes(rule, recipe, layout, per_example):
    """Group ``directions``: each direction's loss change at each trial's end, from the copies'
    losses (:func:`~bioplastic.networks.spiking_block.copy_losses`), as the trial loop forms it:
    per example and divided by the batch (``per_example``), or of the batch's mean loss."""
    k, b, antithetic = rule.spec.samples, layout.batch, rule.spec.antithetic
    copy_losses(recipe, layout)
    kk = np.repeat(np.arange(k), b) if per_example else np.arange(k)
    examples = [np.tile(np.arange(b), k)] if per_example else [np.full(k, bb) for bb in range(b)]
    directions = recipe.group("directions", len(kk))
    for side in ("plus", "minus"):
        for e, example in enumerate(examples):  # the loss of direction k's + copy and of its - (or clean) copy
            copy = (1 + kk) * b + example if side == "plus" else (
                (1 + k + kk) * b + example if antithetic else example)
            directions.add(f"{side}{e} : 1 (linked)")
            directions.linked[f"{side}{e}"] = ("losses", "L", copy)
    mean = {side: f"({' + '.join(f'{side}{e}' for e in range(len(examples)))}) / {len(examples)}"
            for side in ("plus", "minus")}
    if per_example:
        mean = {"plus": "plus0", "minus": "minus0"}
    change = f"0.5 * ({mean['plus']} - {mean['minus']})" if antithetic else f"({mean['plus']} - {mean['minus']})"
    directions.add("dL : 1")
    at_trial_end(directions, "loss_change", f"dL = {change}" + (f" / {b}" if per_example else ""), layout=layout)


def _weight_unit(owner, layout):
    """Put the model's weight unit (``spec.weight_unit``: mV in spiking networks, which is also
    the unit of node perturbation's currents there; 1 in the recurrent families) in ``owner``'s
    namespace as ``weight_unit``; returns its name in an equation (``volt`` or ``1``)."""
    unit = layout.spec.weight_unit
    owner.namespace["weight_unit"] = unit
    return unit_name(unit.dim) if isinstance(unit, Quantity) else "1"


def _master_weights(recipe, projection, estimate, next_weight, layout):
    """The synapses of ``projection`` keep a master weight ``wm``: at each trial's end it steps by
    ``-lrk * estimate`` (in the model's weight unit; not on padding trials), then each copy's
    weight becomes ``next_weight`` for the next trial."""
    syn = recipe.synapses[projection.synapses]
    syn.add(f"wm : {_weight_unit(syn, layout)}", "lrk : 1")
    for name in ("wm", "lrk"):
        recipe.run_value(projection.synapses, name, 0.0)
    at_trial_end(syn, "update", f"wm = wm - lrk * {BLOCK_ACTIVE}(t) * ({estimate}) * weight_unit", layout=layout)
    at_trial_end(syn, "next_trial", f"w = {next_weight}", layout=layout)
    return syn


def _read_across(group, copies, at):
    """At each trial boundary, ``group``'s variables ``name`` take ``source.variable`` at ``index``
    (``copies``: ``{name: (source, variable, index per neuron)}``) through linked variables, since
    synapses read a neuron's plain variables, not its linked ones; ``at(*lines)`` puts the copying
    lines in the block network's slot."""
    for name, link in copies.items():
        group.add(f"{name} : 1", f"{name}_link : 1 (linked)")
        group.linked[f"{name}_link"] = link
    at(*(f"{name} = {name}_link" for name in copies))


def _slot(group, name, layout, place):
    """``at(*lines)`` for :func:`_read_across`: ``place`` (``every_trial`` or ``at_trial_end``) in slot ``name``."""
    return lambda *lines: place(group, name, *lines, layout=layout)


def build_wp_trial_block(rule, recipe, layout):
    """WP at the end of every trial of a block that is the trial network run for many trials
    (:mod:`bioplastic.networks.block`: spiking, recurrent rate and LIF/ALIF networks): every
    copy's loss from the task's error, each direction's change of the batch's mean loss, then every
    synapse steps its master weight ``wm`` by ``-lrk Σ_k ξ_k ΔL_k`` (ξ in the model's weight unit,
    from the noise table) and sets its copy's weight to the master weight plus its perturbation
    for the next trial."""
    k = rule.spec.samples
    _, sign, direction = _copies(rule, layout)
    _direction_changes(rule, recipe, layout, per_example=False)
    _noise_tables(recipe, layout, [k * p.size for p in layout.projections])
    for l, projection in enumerate(layout.projections, start=1):
        group, n = recipe.group(projection.post), layout.size(projection.post)
        _read_across(group, {f"dL{d}": ("directions", "dL", np.full(n, d)) for d in range(k)},
                     _slot(group, "credit", layout, at_trial_end))
        (n_out, n_in), size = projection.shape, projection.size
        syn = recipe.synapses[projection.synapses]
        # every synapse's copy and its entry (output, input) of the weight matrix, whatever the
        # order the family stores its synapses in
        c, within = syn.j // n_out, (syn.j % n_out) * n_in + syn.i % n_in
        syn.add("wsign : 1 (constant)", "widx0 : integer (constant)", "widx : integer (constant)")
        syn.initial.update(widx0=within, widx=direction[c] * size + within, wsign=sign[c])
        syn.namespace["loop_period"] = layout.period
        estimate = " + ".join(f"loop_noise{l}(t, widx0 + {d * size}) * dL{d}_post" for d in range(k))
        _master_weights(recipe, projection, estimate,
                        f"wm + wsign * loop_noise{l}(t + loop_period, widx) * weight_unit", layout)


def build_np_trial_block(rule, recipe, layout):
    """NP at the end of every trial of a block that is the trial network run for many trials:
    each direction's loss change (per example, or of the batch); every neuron's node gradient per
    example, g_b = Σ_k ζ_kb ΔL_kb (group ``nodegrad<l>``, ζ from the noise table); every synapse
    steps its master weight by ``-lrk Σ_b g_b drive_b`` (the clean copies' presynaptic drive, the
    model's ``drive_code``: a spiking neuron's filtered spike count, a recurrent unit's mean rate
    over the trial); and every neuron takes its next trial's current ``pert``."""
    k, b, copies = rule.spec.samples, layout.batch, layout.copies
    example, sign, direction = _copies(rule, layout)
    per_example = rule.spec.credit == "example"
    _direction_changes(rule, recipe, layout, per_example)
    _noise_tables(recipe, layout, [k * b * p.shape[0] for p in layout.projections])
    for projection in layout.projections:  # the clean copies' drive of every presynaptic neuron
        group, n = recipe.group(projection.pre), layout.groups[projection.pre]
        if "np_drive : 1" in group.equations:
            continue
        group.add("np_drive : 1")
        group.namespace.update(trial_duration=layout.period, trial_steps=layout.steps)
        at_trial_end(group, "score", f"np_drive = {layout.spec.drive_code}", layout=layout)
        unit = np.tile(np.arange(n), layout.size(projection.pre) // n)
        # example bb's clean copy is copy bb (its input block is block bb)
        _read_across(group, {f"rc{bb}": (projection.pre, "np_drive", bb * n + unit) for bb in range(b)},
                     _slot(group, "share", layout, at_trial_end))
    for l, projection in enumerate(layout.projections, start=1):
        name, n = projection.post, layout.groups[projection.post]
        nodes = recipe.group(f"nodegrad{l}", b * n)
        nodes.add("g : 1", *(f"dLk{d} : 1 (linked)" for d in range(k)))
        neuron = np.arange(b * n)
        for d in range(k):
            nodes.linked[f"dLk{d}"] = ("directions", "dL", d * b + neuron // n if per_example else np.full(b * n, d))
        at_trial_end(nodes, "credit", "g = " + " + ".join(f"loop_noise{l}(t, i + {d * b * n}) * dLk{d}"
                                                           for d in range(k)), layout=layout)
        group, unit = recipe.group(name), np.tile(np.arange(n), copies)
        group.add("psign : 1 (constant)", "pidx : integer (constant)")
        group.initial.update(psign=np.repeat(sign, n), pidx=np.repeat(direction * b + example, n) * n + unit)
        group.namespace["loop_period"] = layout.period
        _weight_unit(group, layout)
        _read_across(group, {f"g{bb}": (f"nodegrad{l}", "g", bb * n + unit) for bb in range(b)},
                     _slot(group, "share", layout, at_trial_end))
        at_trial_end(group, "next_trial", f"pert = psign * loop_noise{l}(t + loop_period, pidx) * weight_unit",
                     layout=layout)
        _master_weights(recipe, projection, " + ".join(f"g{bb}_post * rc{bb}_pre" for bb in range(b)), "wm", layout)


def np_trial_block_requires(spec, model, task_class, task_spec):
    """Why NP's block form cannot run on a model (completing "its block form ..."), or None."""
    if getattr(model, "drive_code", None) is None:
        return (f"needs the presynaptic drive as code, and the model {model.kind!r} gives none "
                "(SpikingModelSpec.drive_code)")
    return None


_SQUARED_ERROR = "the read-out's squared error: teacher_regression, temporal_regression"
for _rule, _build in ((WeightPerturbation, build_wp_block), (NodePerturbation, build_np_block)):
    register_block_builder(_rule, "feedforward_rate", values=block_values,
                           supports_task=lambda task_class: task_class.squared_error_readout,
                           task_requirement=_SQUARED_ERROR)(_build)
_ERROR_IN_NETWORK = "a read-out whose error the network computes: spike_count, dnms, pattern_generation"
for _family in ("spiking", "recurrent_rate", "alif"):  # their blocks are the trial network
    register_block_builder(WeightPerturbation, _family, values=block_values,
                           supports_task=lambda task_class: task_class.error_in_network,
                           task_requirement=_ERROR_IN_NETWORK)(build_wp_trial_block)
    register_block_builder(NodePerturbation, _family, values=block_values, requires=np_trial_block_requires,
                           supports_task=lambda task_class: task_class.error_in_network,
                           task_requirement=_ERROR_IN_NETWORK)(build_np_trial_block)
