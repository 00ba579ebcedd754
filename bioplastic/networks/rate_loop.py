r"""The training loop of weight and node perturbation inside one simulation.

One run of this network trains a feed-forward rate network for a *block* of trials: trial n
occupies steps ``n*steps .. (n+1)*steps - 1``, and at every trial boundary generated code, not
Python, does what the trainer does between trials:

1. *read out*: every layer's rate ``rT``, and each output's squared error ``sqerr`` against
   the trial's target;
2. *score*: every copy's loss ``L`` (mean of ``sqerr`` over its outputs) and, per perturbation
   direction, the loss change ``dL`` against the clean copy (or between the ± pair), as summed
   variables into two small groups;
3. *update*: every synapse keeps the master weight ``wm`` (each copy the same value) and steps
   it by ``-lr/(K sigma^2)`` times the rule's estimate, which it computes itself: WP
   ``sum_k xi_k dL_k`` (the directions' noise from the block's table, their ``dL`` copied to the
   postsynaptic neurons), NP ``sum_b g_b rT_b`` (the node gradient ``g_b = sum_k zeta_kb dL_kb``
   of each example on the postsynaptic side, the clean copies' read-out rates on the
   presynaptic side);
4. *next trial*: the copy's weight ``w = wm`` (plus its perturbation, WP), the node
   perturbations (NP), the inputs, and ``r = 0``.

Brian2 gives a synapse its pre- and postsynaptic neurons' own variables but not their linked
ones, so what a synapse needs from elsewhere is copied into plain neuron variables first.
Inputs, targets and the perturbations of the block are drawn in NumPy by the trainer, from the
same random streams and in the same order as the trial loop, and given as ``TimedArray``\s
with a row per trial, so the block loop reproduces the trial loop's learning curve to rounding.
All of it is scheduled in the ``groups`` slot by ``order``, once per trial (the small groups and
every ``run_regularly`` on a clock of one trial), before the rates' summed input (order -1) and
state update (order 0):

=====  ==============================================================
order  at every trial boundary
=====  ==============================================================
-100   read out ``rT = r``; outputs ``sqerr = (r - target)^2``
 -95   NP: copy the clean copies' ``rT`` to every copy's neurons
 -90   summed ``L`` (group ``losses``), recorded at -85
 -80   summed ``dL`` (group ``directions``)
 -75   copy each neuron's ``dL`` (WP: all directions; NP: its own)
 -70   NP: summed node gradient (groups ``nodegrad<l>``); -65: copy it
 -55   every synapse: ``wm -= lrk * estimate * active``
 -50   next trial: weights, perturbations, inputs, ``r = 0``
=====  ==============================================================
"""

import hashlib
import json

import numpy as np
from brian2 import Network, NeuronGroup, StateMonitor, Synapses, TimedArray, linked_var

from .clocks import NamedClock
from .rate import _BRIAN_ACTIVATION

LOOP_RULES = ("weight_perturbation", "node_perturbation")


class RateLoopNetwork:
    """The Brian2 objects of a block of ``trials`` trials of WP or NP training."""

    def __init__(self, spec, rule_kind, samples, antithetic, credit, batch, steps, trials):
        self.spec, self.rule_kind, self.batch, self.steps, self.trials = spec, rule_kind, batch, steps, trials
        self.samples, self.antithetic, self.credit = samples, antithetic, credit
        k, b = samples, batch
        wp = rule_kind == "weight_perturbation"
        self.variants = 1 + k * (2 if antithetic else 1)
        copies = self.copies = self.variants * b
        sizes, shapes = spec.sizes, spec.shapes
        period = steps * spec.dt
        self.duration = trials * period + spec.dt  # one more step: the last trial's update
        self.clock = NamedClock(spec.dt, name="loop_clock")
        trial_clock = NamedClock(period, name="loop_trial_clock")
        copy = np.arange(copies)
        variant, example = copy // b, copy % b
        sign = np.where(variant == 0, 0.0, np.where(variant <= k, 1.0, -1.0))
        direction = np.where(variant <= k, variant - 1, variant - 1 - k).clip(0)  # k of a ± copy
        per_example = not wp and credit == "example"
        self.objects = {}

        def keep(obj):
            self.objects[obj.name] = obj
            return obj

        def every_trial(group, code, order):
            group.run_regularly(code, clock=trial_clock, when="groups", order=order, name=f"{group.name}_at_{-order}")

        # The block's values, a row per trial. Targets, `active` and the noise are shifted by one
        # row: at the boundary after trial n, row n + 1 is trial n's; the next trial's noise is
        # read at t + period.
        self.inputs_ta = TimedArray(np.zeros((trials, b * sizes[0])), dt=period, name="loop_inputs")
        self.targets_ta = TimedArray(np.zeros((trials + 1, b * sizes[-1])), dt=period, name="loop_targets")
        self.active_ta = TimedArray(np.zeros(trials + 1), dt=period, name="loop_active")
        width = [k * n_out * n_in if wp else k * b * n_out for n_out, n_in in shapes]
        self.noise_ta = [TimedArray(np.zeros((trials + 2, w)), dt=period, name=f"loop_noise{l}")
                         for l, w in enumerate(width, start=1)]
        tables = {ta.name: ta for ta in (self.inputs_ta, self.targets_ta, self.active_ta, *self.noise_ta)}
        tables["loop_period"] = period

        # Layers, input first; each keeps its read-out rate rT.
        f = _BRIAN_ACTIVATION[spec.activation].format(u="I + pert")
        self.groups = []
        for l, n in enumerate(sizes):
            first, last = l == 0, l == len(sizes) - 1
            eqs = ["r : 1", "rT : 1"] if first else [f"dr/dt = (-r + {f}) / tau : 1", "I : 1", "pert : 1", "rT : 1"]
            if first:
                eqs.append("idx : integer (constant)")
            if last:
                eqs += ["sqerr : 1", "tidx : integer (constant)"]
            if wp and not first:  # every direction's loss change, for the synapses onto it
                eqs += [f"dL{kk} : 1\ndLlink{kk} : 1 (linked)" for kk in range(k)]
            if not wp and not first:  # its copy's node noise, the loss change that credits it, and
                # every example's node gradient at this neuron
                eqs += ["psign : 1 (constant)", "pidx : integer (constant)", "dLn : 1 (linked)", "dLp : 1"]
                eqs += [f"g{bb} : 1\nglink{bb} : 1 (linked)" for bb in range(b)]
            if not wp and not last:  # every clean copy's read-out rate of this neuron
                eqs += [f"rc{bb} : 1\nrclink{bb} : 1 (linked)" for bb in range(b)]
            group = keep(NeuronGroup(copies * n, "\n".join(eqs), method="euler", clock=self.clock, name=f"layer{l}",
                                     namespace={"tau": spec.tau, **tables}, order=0))
            unit = np.tile(np.arange(n), copies)
            readout = ["rT = r"]
            if last:
                group.tidx = np.repeat(example, n) * n + unit
                readout.append("sqerr = (r - loop_targets(t, tidx))**2")
            every_trial(group, "\n".join(readout), -100)
            if not wp and not last:
                for bb in range(b):
                    setattr(group, f"rclink{bb}", linked_var(group, "rT", index=bb * n + unit))
                every_trial(group, "\n".join(f"rc{bb} = rclink{bb}" for bb in range(b)), -95)
            if first:
                group.idx = np.repeat(example, n) * n + unit
                every_trial(group, "r = loop_inputs(t, idx)", -50)
            elif wp:
                every_trial(group, "r = 0", -50)
            else:
                group.psign = np.repeat(sign, n)
                group.pidx = np.repeat(direction * b + example, n) * n + unit
                every_trial(group, f"pert = psign * loop_noise{l}(t + loop_period, pidx)\nr = 0", -50)
            self.groups.append(group)
        self.input, self.layers = self.groups[0], self.groups[1:]
        output = self.layers[-1]

        # Scores: every copy's loss, then the loss change of every direction (and example, NP
        # with a reward per example).
        self.losses = keep(NeuronGroup(copies, "L : 1", clock=trial_clock, name="losses", order=-89))
        score = keep(Synapses(output, self.losses, f"L_post = sqerr_pre / {sizes[-1]} : 1 (summed)",
                              clock=trial_clock, name="score"))
        score.connect(i=np.arange(copies * sizes[-1]), j=np.repeat(copy, sizes[-1]))
        keep(StateMonitor(self.losses, "L", record=True, clock=trial_clock, when="groups", order=-85,
                          name="loss_monitor"))
        directions = keep(NeuronGroup(k * b if per_example else k, "dL : 1", clock=trial_clock, name="directions",
                                      order=-79))
        pre, post, coef = [], [], []
        for kk in range(k):
            for bb in range(b):
                target = kk * b + bb if per_example else kk
                pairs = ([((1 + kk) * b + bb, 0.5 / b), ((1 + k + kk) * b + bb, -0.5 / b)] if antithetic
                         else [((1 + kk) * b + bb, 1.0 / b), (bb, -1.0 / b)])
                for source, c in pairs:
                    pre.append(source), post.append(target), coef.append(c)
        change = keep(Synapses(self.losses, directions, "coef : 1 (constant)\ndL_post = coef * L_pre : 1 (summed)",
                               clock=trial_clock, name="change"))
        change.connect(i=np.array(pre), j=np.array(post))
        change.coef = np.array(coef)

        # What the synapses read of the scores, copied to plain variables of their neurons.
        for l, group in enumerate(self.layers, start=1):
            n = sizes[l]
            if wp:
                for kk in range(k):
                    setattr(group, f"dLlink{kk}", linked_var(directions, "dL", index=np.full(copies * n, kk)))
                every_trial(group, "\n".join(f"dL{kk} = dLlink{kk}" for kk in range(k)), -75)
                continue
            credit_of = direction * b + example if per_example else direction
            group.dLn = linked_var(directions, "dL", index=np.repeat(credit_of, n))
            every_trial(group, "dLp = dLn", -75)
            nodegrad = keep(NeuronGroup(b * n, "g : 1", clock=trial_clock, name=f"nodegrad{l}", order=-69))
            nodes = keep(Synapses(group, nodegrad, "g_post = pert_pre * dLp_pre : 1 (summed)", clock=trial_clock,
                                  name=f"nodes{l}"))
            perturbed = np.flatnonzero((variant >= 1) & (variant <= k))
            nodes.connect(i=(perturbed[:, None] * n + np.arange(n)).ravel(),
                          j=(example[perturbed][:, None] * n + np.arange(n)).ravel())
            unit = np.tile(np.arange(n), copies)
            for bb in range(b):
                setattr(group, f"glink{bb}", linked_var(nodegrad, "g", index=bb * n + unit))
            every_trial(group, "\n".join(f"g{bb} = glink{bb}" for bb in range(b)), -65)

        # The weights: every copy's synapses keep the master weight and update it alike.
        self.synapses = []
        for l, ((n_out, n_in), pre_group, group) in enumerate(zip(shapes, self.groups[:-1], self.layers), start=1):
            p = n_out * n_in
            if wp:  # sum_k xi_k dL_k, each xi_k from the table (this synapse's entry of direction k)
                estimate = " + ".join(f"loop_noise{l}(t, widx0 + {kk * p}) * dL{kk}_post" for kk in range(k))
            else:  # sum_b g_b rT_b: node gradient (post) times the clean copy's read-out rate (pre)
                estimate = " + ".join(f"g{bb}_post * rc{bb}_pre" for bb in range(b))
            syn = keep(Synapses(pre_group, group, "w : 1\nwm : 1\nlrk : 1 (shared)\nwsign : 1 (constant)\n"
                                "widx0 : integer (constant)\nwidx : integer (constant)\n"
                                "I_post = w * r_pre : 1 (summed)", clock=self.clock, name=f"weights{l}",
                                namespace=tables))
            c, o, i = (a.ravel() for a in np.meshgrid(copy, np.arange(n_out), np.arange(n_in), indexing="ij"))
            syn.connect(i=c * n_in + i, j=c * n_out + o)
            syn.widx0 = o * n_in + i
            syn.widx = direction[c] * p + o * n_in + i
            syn.wsign = sign[c] if wp else 0.0
            every_trial(syn, f"wm = wm - lrk * loop_active(t) * ({estimate})", -55)
            every_trial(syn, f"w = wm + wsign * loop_noise{l}(t + loop_period, widx)" if wp else "w = wm", -50)
            self.synapses.append(syn)
        self.network = Network(*self.objects.values(), name="rate_loop_network")

    def assignments(self, weights, inputs, targets, noise, active, lrk):
        """The block's values as ``{variable or TimedArray: flat array}``.

        ``weights``: per layer (n_out, n_in), the master weights at the block's start; ``inputs``
        (trials, batch, n_0) and ``targets`` (trials, batch, n_L); ``noise``: per layer the
        rule's directions of every trial, WP (trials, K, n_out, n_in), NP (trials, K, batch, n_l);
        ``active`` (trials,): 0 for padding trials, whose update is not applied; ``lrk``:
        lr / (K sigma^2).
        """
        trials, b = self.trials, self.batch

        def rows(array, shape, lead=0):
            array = np.asarray(array, float)
            if array.shape != shape:
                raise ValueError(f"rate loop: an array of shape {shape} was expected (got {array.shape})")
            flat = array.reshape(shape[0], -1)
            return np.concatenate([np.zeros((lead, flat.shape[1])), flat]) if lead else flat

        values = {self.inputs_ta: rows(inputs, (trials, b, self.spec.sizes[0])),
                  self.targets_ta: rows(targets, (trials, b, self.spec.sizes[-1]), lead=1),
                  self.active_ta: np.concatenate([[0.0], np.asarray(active, float).reshape(trials)])}
        for l, ((n_out, n_in), ta, syn) in enumerate(zip(self.spec.shapes, self.noise_ta, self.synapses)):
            shape = (trials, self.samples, n_out, n_in) if self.rule_kind == "weight_perturbation" \
                else (trials, self.samples, b, n_out)
            table = rows(noise[l], shape, lead=1)
            values[ta] = np.concatenate([table, np.zeros((1, table.shape[1]))])
            values[syn.wm] = np.tile(rows(weights[l], (n_out, n_in)).ravel(), self.copies)
            values[syn.lrk] = np.array([lrk])
        return values

    def read(self, get):
        """``(weights, losses)``: the master weights after the block, per layer (n_out, n_in), and every
        copy's loss in every trial (trials, copies)."""
        weights = [get(syn.name, "wm")[:n_out * n_in].reshape(n_out, n_in)
                   for syn, (n_out, n_in) in zip(self.synapses, self.spec.shapes)]
        losses = get("loss_monitor", "L").reshape(-1, self.copies)[1:self.trials + 1]
        return weights, losses


class RateLoopBlueprint:
    """A block of ``trials`` trials of WP or NP training of ``spec`` (see :class:`RateLoopNetwork`)."""

    def __init__(self, spec, rule_kind, rule_spec, batch, steps, trials):
        if rule_kind not in LOOP_RULES:
            raise ValueError(f"rate loop: no in-simulation form of {rule_kind!r} (only {', '.join(LOOP_RULES)})")
        self.spec, self.rule_kind, self.batch, self.steps, self.trials = spec, rule_kind, batch, steps, trials
        self.samples, self.antithetic = rule_spec.samples, rule_spec.antithetic
        self.credit = getattr(rule_spec, "credit", "example")
        self.copies = (1 + self.samples * (2 if self.antithetic else 1)) * batch
        fields = dict(kind="rate_loop", sizes=spec.sizes, activation=spec.activation, tau=repr(spec.tau),
                      dt=repr(spec.dt), rule=rule_kind, samples=self.samples, antithetic=self.antithetic,
                      credit=self.credit, batch=batch, steps=steps, trials=trials)
        import brian2
        fields["brian2"] = brian2.__version__
        self.key = hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

    def build(self):
        return RateLoopNetwork(self.spec, self.rule_kind, self.samples, self.antithetic, self.credit, self.batch,
                               self.steps, self.trials)
