"""What every rule is: a validated spec, what it needs from the network, and how it updates.

A between-trials rule is realised by three methods the trainer calls for each trial:

1. :meth:`Rule.perturb` draws the trial's perturbations. Variant 0 is always the clean network;
   the trainer runs ``rule.variants * batch`` copies, copy ``v * batch + b`` being variant ``v``
   on example ``b``.
2. The backend runs every copy in one simulation and the task scores each copy.
3. :meth:`Rule.update` turns the observations into the implied update ΔW, *without applying it*
   (that is what makes dry runs and alignment analysis possible).
"""

from dataclasses import dataclass, field

RULES = {}


def register_rule(rule_class):
    """Class decorator: make a rule available to protocols under ``rule_class.kind``."""
    if not getattr(rule_class, "kind", None):
        raise ValueError(f"{rule_class.__name__}.kind: must name the rule (got {rule_class.kind!r})")
    RULES[rule_class.kind] = rule_class
    return rule_class


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

    weights : list of ndarray (n_out, n_in)
        The weights the trial ran with.
    losses : ndarray (variants, batch)
        Each copy's loss contribution (the batch loss is the mean over examples).
    final : list of ndarray (variants, batch, n_l)
        Rates of every layer, input first, at the end of the trial.
    gradient : Gradient or None
        The BPTT reference on the clean copies, when the rule or the analysis asked for it.
    """

    weights: list
    losses: object
    final: list
    gradient: object = None


class Rule:
    """Base class. Subclasses set ``kind``, ``spec_class`` and a one-line ``description``."""

    kind = None
    spec_class = None
    description = ""
    needs_gradient = False  # True for rules that apply the reference gradient (backprop)

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
        """``{layer: (effective dimension, expected cosine)}`` where a theory exists, else {}."""
        return {}
