"""Expected cosines: the formula against Monte Carlo, and measured Brian2 updates against theory."""

import math

import numpy as np
import pytest

from bioplastic.analysis import approximate_cosine, expected_cosine
from bioplastic.engine.trainer import Trainer

from conftest import rule_protocol


def test_k1_formula_is_the_classic_gamma_ratio():
    for d in (2, 10, 96):
        classic = math.gamma(d / 2) / (math.sqrt(math.pi) * math.gamma((d + 1) / 2))
        assert expected_cosine(d, 1) == pytest.approx(classic, rel=1e-12)


def test_large_d_limit():
    # E[chi_K] / sqrt(K) = 1 - 1/(4K) + ...: the square-root formula is the large-K, large-D limit.
    assert expected_cosine(100_000, 1000) == pytest.approx(approximate_cosine(100_000, 1000), rel=1e-3)


@pytest.mark.parametrize("dimension,samples", [(10, 1), (50, 4), (12, 16)])
def test_formula_against_monte_carlo(dimension, samples):
    # 20000 draws: sem of the mean cosine < 0.002; allow 4 sem.
    rng = np.random.default_rng(dimension * 100 + samples)
    g = rng.normal(size=dimension)
    xi = rng.normal(size=(20000, samples, dimension))
    estimate = np.einsum("skd,sk->sd", xi, xi @ g)
    cos = estimate @ g / (np.linalg.norm(estimate, axis=1) * np.linalg.norm(g))
    assert abs(cos.mean() - expected_cosine(dimension, samples)) < 4 * cos.std() / np.sqrt(len(cos))


@pytest.mark.parametrize("kind", ["weight_perturbation", "node_perturbation"])
def test_measured_cosine_on_a_linear_network_matches_theory(kind):
    # Dry-run updates at fixed weights through the Brian2 standalone simulation of a linear network
    # (antithetic pairs make the difference quotient exact up to O(sigma^2)). 300 samples: the sem
    # is ~0.004-0.006; allow 4 sem.
    p = rule_protocol("wp_vs_np.toml", kind)
    table = Trainer(p).align(300)
    whole = table[table.layer == "all"]
    sem = whole.cosine.sem()
    theory = whole.cosine_theory.mean()
    assert abs(whole.cosine.mean() - theory) < 4 * sem, (whole.cosine.mean(), theory, sem)
    assert whole.cosine_theory.std() < 1e-9  # fixed weights and batch: one theoretical value
