"""Learning rules, each defined once: spec, maths, realisation and theory.

Add a rule by subclassing :class:`Rule` (between trials) or :class:`InNetworkRule` (inside the
network, with a builder registered by :func:`register_builder`) and decorating it with
:func:`register_rule`.
"""

from . import backprop, eprop, hebbian, hoerzer, oua, perturbation, rstdp  # noqa: F401  (registers the built-in rules)
from .base import (RULES, InNetworkRule, Perturbation, Rule, RunContext, TrialData, checked_update, register_rule,
                   rule_code)
from .builders import BUILDERS, find_builder, register_builder

__all__ = ["RULES", "BUILDERS", "InNetworkRule", "Perturbation", "Rule", "RunContext", "TrialData", "checked_update",
           "find_builder", "register_builder", "register_rule", "rule_code"]
