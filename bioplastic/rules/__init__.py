"""Learning rules, each defined once: spec, maths, realisation and theory.

Add a rule by subclassing :class:`Rule` and decorating it with :func:`register_rule`.
"""

from . import backprop, perturbation  # noqa: F401  (registers the built-in rules)
from .base import RULES, Perturbation, Rule, TrialData, register_rule

__all__ = ["RULES", "Perturbation", "Rule", "TrialData", "register_rule"]
