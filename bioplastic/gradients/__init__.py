"""Reference gradients of the same objective the rules follow."""

from .bptt import Gradient, bptt

REFERENCES = ("bptt", "finite_difference")

__all__ = ["Gradient", "bptt", "REFERENCES"]
