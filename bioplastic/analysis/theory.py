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
through the presynaptic rates; a single layer's cosine sees noise from every layer; a batch adds
one independent estimator per example), it is matched to the isotropic one with the same first two
moments. If one sample's estimate has :math:`E\|\hat g_1\|^2 = m_2` and mean :math:`G`, the
K-sample average has :math:`E\|\hat g\|^2 = \|G\|^2 (1 - 1/K) + m_2/K`. When the estimate is a sum of
independent blocks b (examples) whose mean parts :math:`G_b` enter the signal with weights
:math:`c_b = G_b \cdot G`, the signal :math:`\hat g \cdot G` fluctuates like a
:math:`\chi^2` with :math:`K_\mathrm{eff} = K (\sum_b c_b)^2 / \sum_b c_b^2` degrees of freedom
(K B for B identical examples, K for one). The isotropic estimator with :math:`K_\mathrm{eff}` samples has
:math:`E\|\hat g\|^2 = \|G\|^2 (D + K_\mathrm{eff} + 1)/K_\mathrm{eff}`, which fixes
:math:`D_\mathrm{eff}`. For one block this is :math:`D_\mathrm{eff} = m_2/\|G\|^2 - 2`, exact for WP
(D = number of weights) and for NP on a single layer (D = number of output neurons); elsewhere it is
an approximation, checked against Monte Carlo in the tests.
"""

import math

import numpy as np


def expected_cosine(dimension, samples=1):
    """E[cos] between a K-sample Gaussian zeroth-order estimate and the gradient in D dimensions.

    Parameters
    ----------
    dimension : float
        D (may be an effective, non-integer dimension; must be >= 1).
    samples : float
        K, the number of perturbation directions averaged (an effective, non-integer K is allowed).
    """
    if dimension < 1 or samples <= 0:
        raise ValueError(f"expected_cosine: needs dimension >= 1 and samples >= 1 (got {dimension}, {samples})")
    d, k = float(dimension), float(samples)
    return math.exp(math.lgamma((k + 1) / 2) + math.lgamma((d + k - 1) / 2)
                    - math.lgamma(k / 2) - math.lgamma((d + k) / 2))


def forward_difference_dimension(dimension, sigma, gradient_norm2, hessian_trace, hessian_frobenius2):
    r"""The effective dimension of WP with a clean copy (forward differences) on a loss with
    Hessian H at perturbation size σ.

    The difference quotient carries :math:`\tfrac12 \xi^\top H \xi / \sigma^2` beside
    :math:`\xi^\top g / \sigma^2`; its mean over ξ vanishes against ξ (an odd moment), but it adds
    :math:`\sigma^2 (D + 4)((\mathrm{tr} H)^2 + 2\|H\|_F^2)/4` to one sample's second moment
    :math:`\|g\|^2 (D + 2)`. Matched to the isotropic estimator (one block: D = m2/|g|^2 - 2):

    .. math:: D_\mathrm{eff} = D + \frac{\sigma^2 (D + 4)\,\big((\mathrm{tr} H)^2 + 2\|H\|_F^2\big)}{4\|g\|^2}.

    Antithetic pairs cancel the term exactly; their D is D.
    """
    return float(dimension + sigma ** 2 * (dimension + 4) * (hessian_trace ** 2 + 2 * hessian_frobenius2)
                 / (4 * gradient_norm2))


def approximate_cosine(dimension, samples=1):
    """The large-D approximation sqrt(K / (D + K + 1))."""
    return math.sqrt(samples / (dimension + samples + 1))


def isotropic_equivalent(mean_norm2, single_second_moment, samples, block_signal=None):
    """(D_eff, K_eff) of the isotropic estimator with the same first two moments.

    Parameters
    ----------
    mean_norm2 : float
        :math:`\\|G\\|^2`, the squared norm of the estimator's mean.
    single_second_moment : float
        :math:`m_2 = E\\|\\hat g_1\\|^2` of one sample.
    samples : int
        K.
    block_signal : array, optional
        :math:`c_b = G_b \\cdot G` of independent blocks (examples); one block if omitted.

    Returns NaNs when the mean is zero.
    """
    if mean_norm2 <= 0:
        return float("nan"), float("nan")
    k_eff = float(samples)
    if block_signal is not None:
        c = np.asarray(block_signal, float)
        k_eff = samples * c.sum() ** 2 / np.sum(c ** 2)
    total = mean_norm2 * (1 - 1 / samples) + single_second_moment / samples
    d_eff = k_eff * total / mean_norm2 - k_eff - 1
    return max(float(d_eff), 1.0), k_eff


def sq(x):
    """Squared Euclidean norm of an array."""
    return float(np.sum(np.square(x)))
