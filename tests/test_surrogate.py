"""The e-prop factorisation against surrogate-gradient BPTT, in NumPy (Bellec et al. 2020)."""

import numpy as np
import pytest

from bioplastic.gradients.surrogate import (AlifParams, bptt, eprop, forward, local_learning_signal,
                                            true_learning_signal)


def network(seed, n=12, n_in=4, n_out=2, steps=80, adaptive=6):
    """A random recurrent network driven hard enough to spike, with ``adaptive`` ALIF neurons."""
    rng = np.random.default_rng(seed)
    beta = np.zeros(n)
    beta[:adaptive] = 1.7
    params = AlifParams(alpha=np.exp(-1 / 20), rho=np.exp(-1 / 200), kappa=np.exp(-1 / 20), v_th=0.6, beta=beta)
    w_in = rng.normal(0, 1.0, (n, n_in))
    w_rec = rng.normal(0, 0.3, (n, n))
    np.fill_diagonal(w_rec, 0.0)
    w_out = rng.normal(0, 0.5, (n_out, n))
    x = (rng.random((steps, n_in)) < 0.2).astype(float)
    target = rng.normal(size=(steps, n_out))
    return params, w_in, w_rec, w_out, x, target


@pytest.mark.parametrize("adaptive", [0, 6, 12])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eprop_with_the_true_learning_signal_is_bptt(seed, adaptive):
    """The identity that checks both: LIF-only (0), mixed (6 of 12) and ALIF-only (12) networks."""
    params, w_in, w_rec, w_out, x, target = network(seed, adaptive=adaptive)
    tr = forward(params, w_in, w_rec, w_out, x)
    assert tr.z.sum() > 20  # the network spikes, so the pseudo-derivative is exercised
    g_in, g_rec, *_ = bptt(params, w_in, w_rec, w_out, x, tr.y - target, tr)
    e_in, e_rec = eprop(params, x, tr, true_learning_signal(params, w_rec, w_out, tr.y - target, tr))
    scale = max(np.abs(g_rec).max(), np.abs(g_in).max())
    assert scale > 0
    np.testing.assert_allclose(e_in, g_in, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(e_rec, g_rec, rtol=0, atol=1e-10 * scale)


def test_bptt_read_out_gradient_matches_finite_differences():
    """The read-out weights do not change any spike (there is no feedback), so the loss is a smooth
    quadratic in W_out and BPTT's dE/dW_out must equal central differences of the simulated loss."""
    params, w_in, w_rec, w_out, x, target = network(3, adaptive=6)
    tr = forward(params, w_in, w_rec, w_out, x)
    _, _, g_out, *_ = bptt(params, w_in, w_rec, w_out, x, tr.y - target, tr)

    def loss(w):
        y = forward(params, w_in, w_rec, w, x).y
        return 0.5 * np.sum((y - target) ** 2)

    numeric = np.zeros_like(w_out)
    for index in np.ndindex(w_out.shape):
        up, down = w_out.copy(), w_out.copy()
        up[index] += 1e-6
        down[index] -= 1e-6
        numeric[index] = (loss(up) - loss(down)) / 2e-6
    np.testing.assert_allclose(g_out, numeric, rtol=1e-6, atol=1e-9)


def test_symmetric_local_signal_is_an_approximation_whose_deviation_is_measured():
    """Bellec et al.'s online signal (the read-out error of the same step through B = W_outᵀ) drops
    the future: it is not BPTT. Its gradient's cosine with BPTT's (recurrent weights, mixed network)
    measured 0.918, 0.996, 0.579, 0.972, 0.867, 0.784, 0.972, 0.962, 0.497, 0.965 over seeds 0-9
    (random feedback B ~ N(0, 0.25): -0.72 to 0.98, median 0.13). We assert > 0.4 on seeds 0-4 and
    that it is not the identity."""
    cosines = []
    for seed in range(5):
        params, w_in, w_rec, w_out, x, target = network(seed, adaptive=6)
        tr = forward(params, w_in, w_rec, w_out, x)
        _, g_rec, *_ = bptt(params, w_in, w_rec, w_out, x, tr.y - target, tr)
        _, e_rec = eprop(params, x, tr, local_learning_signal(w_out.T, tr.y - target))
        cosines.append(float(np.sum(e_rec * g_rec) / (np.linalg.norm(e_rec) * np.linalg.norm(g_rec))))
    assert min(cosines) > 0.4, cosines
    assert max(cosines) < 1 - 1e-6  # not the identity
