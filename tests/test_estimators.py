"""Estimator statistics at fixed weights: their values and intervals against an isotropic estimator
whose answers are known (K Gaussian directions in D dimensions: unbiased, SNR = K / (D + 1))."""

import numpy as np
import pandas as pd
import pytest

from bioplastic.analysis.estimators import EstimatorAccumulator
from bioplastic.cli import main


def isotropic_table(seed, n=200, dims=(64, 32), k=4):
    rng = np.random.default_rng(seed)
    g = [rng.normal(size=d) for d in dims]
    flat = np.concatenate(g)
    accumulator, cosines = EstimatorAccumulator(n), []
    for _ in range(n):
        xi = rng.normal(size=(k, flat.size))
        u = -(xi.T @ (xi @ flat)) / k
        accumulator.add(np.split(u, np.cumsum(dims)[:-1]))
        cosines.append(-u @ flat / np.linalg.norm(u) / np.linalg.norm(flat))
    return accumulator.table(g, {"all": np.array(cosines)}).set_index("layer")


def test_intervals_cover_the_known_values():
    """Over 120 random instances the 95% intervals of the SNR cover K / (D + 1) (measured: 95%
    over 200 instances of 400 samples) and those of the expected update's cosine cover 1 (99%);
    we accept 88-100%. The SNR estimate is unbiased: its mean is within 3% of the theory (measured
    0.3%), where the plain |mean|^2 / V would be 1/n too high."""
    theory = 4 / 97
    tables = [isotropic_table(seed).loc["all"] for seed in range(120)]
    snr_cover = np.mean([t.snr_low <= theory <= t.snr_high for t in tables])
    cosine_cover = np.mean([t.expected_update_cosine_low <= 1 <= t.expected_update_cosine_high for t in tables])
    assert 0.88 <= snr_cover <= 1.0, snr_cover
    assert 0.88 <= cosine_cover <= 1.0, cosine_cover
    assert abs(np.mean([t.snr for t in tables]) / theory - 1) < 0.03
    single = np.mean([t.single_cosine for t in tables])
    assert abs(single - 0.1895) < 0.005  # E[cos] for D = 96, K = 4 (analysis.theory.expected_cosine)


def test_per_layer_rows_and_an_exact_rule():
    table = isotropic_table(0)
    assert list(table.index) == ["W1", "W2", "all"]
    accumulator = EstimatorAccumulator(50)
    g = [np.arange(1.0, 5.0)]
    for _ in range(50):
        accumulator.add([-0.1 * g[0]])
    exact = accumulator.table(g, {"W1": np.ones(50), "all": np.ones(50)}).set_index("layer").loc["all"]
    assert abs(exact.mean_update_cosine - 1) < 1e-12 and exact.bias_angle_deg < 1e-5 and exact.snr == np.inf


def test_align_writes_the_estimator_table(tmp_path, capsys):
    out = tmp_path / "a"
    assert main(["align", "protocols/wp_vs_np.toml", "--samples", "40", "--out", str(out), "--set",
                 'training.backend="runtime"']) == 0
    table = pd.read_csv(out / "estimator.csv")
    assert {"variant", "rule", "reference", "layer", "samples", "mean_update_cosine", "mean_update_cosine_low",
            "expected_update_cosine", "bias_angle_deg", "bias_angle_deg_high", "variance", "variance_low", "snr",
            "snr_high", "single_cosine", "single_cosine_low", "cosine_theory"} <= set(table.columns)
    assert len(table) == 9 and (table.samples == 40).all()
    wp = table[(table.rule == "weight_perturbation") & (table.layer == "all")].iloc[0]
    assert wp.snr_low < 4 / 97 < wp.snr_high  # K / (D + 1): exact for WP on the whole network
    assert wp.snr_theory == pytest.approx(4 / 97, rel=1e-12)
    assert table.snr_theory.notna().all() or table[table.snr_theory.isna()].rule.eq("backprop").all()
    assert "expected-update cosine" in capsys.readouterr().out
