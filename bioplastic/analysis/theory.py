r"""Theoretical alignment of zeroth-order gradient estimators.

For an estimator built from K isotropic Gaussian directions :math:`\xi_k \sim N(0, \sigma^2 I_D)`
and exact directional derivatives,

.. math:: \hat g = \frac{1}{K\sigma^2} \sum_{k=1}^{K} \xi_k \xi_k^\top g ,

write each :math:`\xi_k` as a component :math:`z_k` along :math:`g` plus an orthogonal part.
Then :math:`\cos^2(\hat g, g) = S / (S + Q)` with :math:`S = \sum_k z_k^2 \sim \chi^2_K`
independent of :math:`Q \sim \chi^2_{D-1}`, so :math:`\cos^2 \sim \mathrm{Beta}(K/2, (D-1)/2)` and

.. math:: E[\cos] = \frac{\Gamma(\frac{K+1}{2})\,\Gamma(\frac{D+K-1}{2})}
                         {\Gamma(\frac{K}{2})\,\Gamma(\frac{D+K}{2})} .

For K = 1 this is :math:`\Gamma(D/2) / (\sqrt\pi\, \Gamma((D+1)/2))`, and for large D and K it
approaches :math:`\sqrt{K/(D+K-1)} \approx \sqrt{K/(D+K+1)}`.

When the estimator is not isotropic in weight space (node perturbation maps node noise to weights
through the presynaptic rates; a single layer's cosine sees noise from every layer), an
*effective* dimension is defined by matching second moments: if one sample's estimate has
:math:`E\|\hat g_1\|^2 = m_2` and mean :math:`G`, the isotropic case has
:math:`m_2 = (D+2)\|G\|^2`, so :math:`D_\mathrm{eff} = m_2/\|G\|^2 - 2`.
"""

import math

import numpy as np


def expected_cosine(dimension, samples=1):
    """E[cos] between a K-sample Gaussian zeroth-order estimate and the gradient in D dimensions.

    Parameters
    ----------
    dimension : float
        D (may be an effective, non-integer dimension; must be >= 1).
    samples : int
        K, the number of perturbation directions averaged.
    """
    if dimension < 1 or samples < 1:
        raise ValueError(f"expected_cosine: needs dimension >= 1 and samples >= 1 (got {dimension}, {samples})")
    d, k = float(dimension), float(samples)
    return math.exp(math.lgamma((k + 1) / 2) + math.lgamma((d + k - 1) / 2)
                    - math.lgamma(k / 2) - math.lgamma((d + k) / 2))


def approximate_cosine(dimension, samples=1):
    """The large-D approximation sqrt(K / (D + K + 1))."""
    return math.sqrt(samples / (dimension + samples + 1))


def effective_dimension(second_moment, mean_norm2):
    """D_eff = m2 / |G|^2 - 2 (see the module docstring); NaN when the mean is zero."""
    if mean_norm2 <= 0:
        return float("nan")
    return max(float(second_moment / mean_norm2 - 2.0), 1.0)


def sq(x):
    """Squared Euclidean norm of an array."""
    return float(np.sum(np.square(x)))
