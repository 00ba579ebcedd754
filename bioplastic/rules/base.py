"""What every rule is: a validated spec, what it needs from the network, and how it updates.

A rule is realised in one of two ways (``Rule.realisation``):

* **between trials** (``"between_trials"``: WP, NP, backprop). The trainer calls, per trial,

  1. :meth:`Rule.perturb`: the trial's perturbations. Variant 0 is always the clean network;
     the trainer runs ``rule.variants * batch`` copies, copy ``v * batch + b`` being variant
     ``v`` on example ``b``;
  2. the backend runs every copy in one simulation and the task scores each copy;
  3. :meth:`Rule.update` turns the observations into the implied update ΔW, *without applying it*.

* **in the network** (``"in_network"``: R-STDP, ...). A *builder* registered for the rule and
  the model kind (:func:`~bioplastic.rules.builders.register_builder`) adds the rule's equations
  to the network's recipe before it is built: traces, an eligibility, a neuromodulator, and the
  rule's own accumulated variable ``acc_<kind>`` on every plastic synapse, into which it accumulates the
  change it makes. The run value ``online`` says whether that change also moves the weights
  during the run (1) or only accumulates (0: the engine applies it at the trial's end, or a dry
  run just reads it). :meth:`Rule.update` then returns the accumulated change, so dry runs,
  ``align`` and the cosine with the gradient work exactly as for WP and NP.

Either way, :meth:`Rule.constrain` maps weights after an update back into their allowed range.
"""

import contextlib
import sys
from dataclasses import dataclass, field

import numpy as np

from ..errors import DivergenceError, SpecError

RULES = {}


def register_rule(rule_class=None, *, override=False):
    """Class decorator: make a rule available to protocols under ``rule_class.kind``.

    A kind that is registered already is refused unless ``override=True`` (a plugin that means
    to replace a built-in rule says so).
    """
    def register(cls):
        if not getattr(cls, "kind", None):
            raise ValueError(f"{cls.__name__}.kind: must name the rule (got {getattr(cls, 'kind', None)!r})")
        if cls.kind in RULES and RULES[cls.kind] is not cls and not override:
            raise ValueError(f"{cls.__name__}.kind: the rule kind {cls.kind!r} is registered already (by "
                             f"{RULES[cls.kind].__module__}.{RULES[cls.kind].__name__}); choose another kind, or "
                             f"register with override=True to replace it")
        if cls.realisation not in REALISATIONS:
            raise ValueError(f"{cls.__name__}.realisation: must be one of {', '.join(REALISATIONS)} "
                             f"(got {cls.realisation!r})")
        RULES[cls.kind] = cls
        return cls

    return register(rule_class) if rule_class is not None else register


REALISATIONS = ("between_trials", "in_network")


@dataclass
class Perturbation:
    """One trial's perturbations, as offsets per variant (row 0, the clean copy, is zero).

    weights : list of ndarray (variants, n_out, n_in), or None
        Added to the weights of every example's copy of that variant.
    nodes : list of ndarray (variants, batch, n_l), or None
        The ``pert`` input of each layer's neurons, per variant and example.
    noise : list of ndarray
        The K drawn directions, kept for the update.
    """

    weights: list | None = None
    nodes: list | None = None
    noise: list = field(default_factory=list)


@dataclass
class TrialData:
    """What a rule may read when it computes its update.

    weights : list of ndarray
        The weights the trial ran with (rate: (n_out, n_in); spiking: in mV).
    losses : ndarray (variants, batch)
        Each copy's loss contribution (the batch loss is the mean over examples).
    final : list of ndarray (variants, batch, n)
        Per layer, input first, the activity a rule credits: for rate networks every layer's rate
        at the end of the trial; for spiking networks every weight layer's presynaptic ``drive``
        (the time-averaged input per unit weight), then the task's read-out of the output.
    gradient : Gradient or None
        The reference gradient at these weights, when the rule or the analysis asked for it.
    deltas : list of ndarray (batch, *shape) or None
        An in-network rule's accumulated change per copy, one array per plastic projection.
    rewards : ndarray (batch,) or None
        The reward each copy's neuromodulator received at the end of the trial.
    conditions : ndarray (batch,) or None
        The task condition (e.g. input pattern) of every example.
    """

    weights: list
    losses: object
    final: list
    gradient: object = None
    deltas: list | None = None
    rewards: object = None
    conditions: object = None


@dataclass
class RunContext:
    """What a rule needs to choose its run values (see :meth:`Rule.run_values`).

    copies : int
        Network copies in the run.
    conditions : ndarray (copies,)
        The task condition of every copy's example.
    dry_run : bool
        True when the weights must stay fixed (``align``, analysis).
    continuous : bool
        True for one long run (an experiment), False for a trial of the training loop.
    layout : object
        The network's layout (:class:`~bioplastic.networks.layout.Layout`): its groups
        and plastic projections.
    weights : list of ndarray or None
        The plastic weights the trial starts from (layer order), for rules whose run values
        depend on them (e-prop's symmetric feedback); None in a continuous run.
    """

    copies: int
    conditions: object
    dry_run: bool = False
    continuous: bool = False
    layout: object = None
    weights: list | None = None


class Rule:
    """Base class. Subclasses set ``kind``, ``spec_class`` and a one-line ``description``."""

    kind = None
    spec_class = None
    description = ""
    realisation = "between_trials"
    needs_gradient = False  # True for rules that apply the reference gradient (backprop)
    # How ``align`` sets the rule's state (a reward baseline) for the weights it holds fixed, with
    # :meth:`calibrate`: None (not at all), "chunk" (from one simulation of samples drawn first),
    # "samples" (from the very samples drawn: a first pass, then the same random streams again).
    calibration = None
    model_families = ("feedforward_rate", "recurrent_rate", "spiking", "alif")  # which model families it can train

    def __init__(self, spec):
        if not isinstance(spec, self.spec_class):
            raise TypeError(f"{type(self).__name__}: needs a {self.spec_class.__name__} (got {type(spec).__name__})")
        self.spec = spec

    @property
    def variants(self):
        """Network copies per example: the clean one plus the perturbed ones."""
        return 1

    def perturb(self, weights, batch, rng):
        """Draw this trial's perturbations (none by default)."""
        return Perturbation()

    def update(self, trial, perturbation):
        """The implied update ΔW, one array per layer, not applied."""
        raise NotImplementedError

    def theory(self, trial):
        """``{layer: (effective dimension, expected cosine)}`` where a theory exists, else {}; a
        third element, the effective number of samples K, adds the SNR theory K/(D + 1)."""
        return {}

    def check(self, model, task_class):
        """Cross-checks against the model and the task; raise SpecError naming the protocol key."""

    def constrain(self, weights):
        """Weights after an update, mapped into the rule's allowed range (unbounded by default)."""
        return weights

    def run_values(self, context):
        """``{(object, variable): value}`` the rule writes before every run (in-network rules)."""
        return {}

    def observe(self, trial):
        """Learn from a trial whose update was applied (e.g. a running reward baseline)."""

    def calibrate(self, trials):
        """Set the rule's state for fixed weights from dry-run ``trials`` (see ``calibration``)."""


class InNetworkRule(Rule):
    """A rule that learns inside the simulation; see the module docstring.

    Its builder accumulates the change into ``acc_<kind>`` (:attr:`delta_variable`); :meth:`update` sums it over the
    examples of the trial (each copy is one example's episode).
    """

    realisation = "in_network"
    model_families = ("spiking",)

    @property
    def delta_variable(self):
        return f"acc_{self.kind}"

    def update(self, trial, perturbation):
        if trial.deltas is None:
            raise ValueError(f"{type(self).__name__}: the run reported no accumulated change (was the rule built "
                             f"into the network?)")
        return [np.asarray(d).sum(axis=0) for d in trial.deltas]


def is_plugin(rule):
    """Whether ``rule`` comes from a plugin (code outside the bioplastic package)."""
    return not type(rule).__module__.startswith("bioplastic.")


@contextlib.contextmanager
def rule_code(rule, method):
    """Run a rule's ``method``: an error inside a plugin's rule is the protocol's problem (one
    line naming the rule and its file, exit 2), inside a built-in rule a bug (raised as it is)."""
    try:
        yield
    except SpecError:
        raise
    except Exception as exc:
        if not is_plugin(rule):
            raise
        module = sys.modules.get(type(rule).__module__)
        where = getattr(module, "__file__", None) or type(rule).__module__
        raise SpecError("rule.kind", f"the rule {rule.kind!r} (from {where}) failed in {method}: "
                        f"{type(exc).__name__}: {exc}", rule.kind) from None


def checked_update(rule, update, weights):
    """A rule's ΔW as float arrays, after checking it is one array per weight layer of that
    layer's shape."""
    def refuse(what):
        message = f"{type(rule).__name__}.update must return one array per weight layer ({len(weights)}, shaped " \
                  f"{', '.join(str(tuple(w.shape)) for w in weights)}); {what}"
        if is_plugin(rule):
            raise SpecError("rule.kind", message, rule.kind)
        raise TypeError(message)

    if not isinstance(update, (list, tuple)):
        refuse(f"it returned {type(update).__name__}")
    if len(update) != len(weights):
        refuse(f"it returned {len(update)}")
    out = []
    for layer, (u, w) in enumerate(zip(update, weights)):
        try:
            array = np.asarray(u, dtype=float)
        except (TypeError, ValueError):
            refuse(f"layer {layer} is not numeric")
        if array.shape != w.shape:
            refuse(f"layer {layer} has the shape {array.shape}")
        out.append(array)
    return out


def check_update_finite(rule, update, where, file):
    """A non-finite update at a finite loss is the rule's doing: name it."""
    if not all(np.all(np.isfinite(u)) for u in update):
        raise DivergenceError("rule.kind", f"the rule {rule.kind!r} returned a non-finite update {where}", rule.kind,
                              file=file)
