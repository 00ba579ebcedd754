"""Compare implied updates with reference gradients, with theory beside measurement.

Works on plain arrays and tables only, so figures can be redrawn without simulating.
"""

from .alignment import compare, layer_names, summarise
from .theory import approximate_cosine, expected_cosine, isotropic_equivalent

__all__ = ["compare", "layer_names", "summarise", "expected_cosine", "approximate_cosine",
           "isotropic_equivalent"]
