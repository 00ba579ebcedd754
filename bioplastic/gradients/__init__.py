"""Reference gradients of the same objective the rules follow (see also engine.reference)."""

from .bptt import Gradient, bptt

__all__ = ["Gradient", "bptt"]
