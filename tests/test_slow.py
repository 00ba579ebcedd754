"""Full reproductions (``make test-slow``); their results are recorded in README.md, section Results."""

import json

import numpy as np

import pandas as pd
import pytest

from bioplastic.cli import main


@pytest.mark.slow
def test_wp_vs_np_full(tmp_path):
    # Werfel et al. (2005): on a linear network NP aligns better with the gradient than WP
    # (D = perturbed neurons vs weights); at this small learning rate every rule learns the teacher.
    out = tmp_path / "wp_vs_np"
    assert main(["run", "protocols/wp_vs_np.toml", "--out", str(out)]) == 0
    summary = {v["variant"]: v for v in json.loads((out / "summary.json").read_text())["variants"]}
    runs = pd.read_csv(out / "runs.csv")
    for run in runs.itertuples():
        metrics = pd.read_csv(out / run.path / "metrics.csv")
        loss = metrics[metrics.metric == "loss"].value
        assert loss.tail(40).mean() < 0.2 * loss.head(10).mean()
        whole = metrics[metrics.layer == "all"]
        cos, theory = whole[whole.metric == "cosine"].value, whole[whole.metric == "cosine_theory"].value
        if len(theory):  # measured along training against the theory at the same weights
            assert abs(cos.mean() - theory.mean()) < 4 * cos.sem() + 0.01
    assert summary["node_perturbation"]["mean_cosine"] > summary["weight_perturbation"]["mean_cosine"]


@pytest.mark.slow
def test_izhikevich2007_distal_reward_full(tmp_path):
    # Izhikevich (2007), Fig. 1: over one hour the rewarded synapse climbs to the cap (4 mV) and
    # stays there while the other excitatory synapses stay low. Three seeds (each its own network).
    out = tmp_path / "distal"
    assert main(["run", "protocols/izhikevich2007_distal_reward.toml", "--out", str(out), "--set",
                 'sweep={ cases = [{ label = "dopamine" }], seeds = 3 }']) == 0
    runs = pd.read_csv(out / "runs.csv")
    for run in runs.itertuples():
        summary = json.loads((out / run.path / "summary.json").read_text())
        assert summary["time_to_cap_s"] is not None and summary["time_to_cap_s"] < 3600
        assert summary["fraction_at_cap_after"] > 0.5
        assert summary["final_rewarded_weight_mv"] > 0.75 * summary["cap_mv"]
        assert summary["final_mean_weight_mv"] < 0.35 * summary["cap_mv"]
        assert 0.5 < summary["mean_rate_hz"] < 5


@pytest.mark.slow
def test_reward_learning_full(tmp_path):
    # The two-choice task: R-STDP with eligibility and a per-pattern baseline learns from the reward
    # at the end of each trial, MSTDP (no eligibility) cannot, NP learns fastest, WP in between.
    out = tmp_path / "reward"
    assert main(["run", "protocols/reward_learning.toml", "--out", str(out)]) == 0
    runs = pd.read_csv(out / "runs.csv")
    first, last = {}, {}
    for run in runs.itertuples():
        loss = pd.read_csv(out / run.path / "metrics.csv").query("metric == 'loss'").value.to_numpy()
        first.setdefault(run.variant, []).append(loss[:100].mean())
        last.setdefault(run.variant, []).append(loss[-200:].mean())
    mean = {k: (float(np.mean(first[k])), float(np.mean(last[k]))) for k in first}
    assert mean["rstdp"][1] < 0.75 * mean["rstdp"][0]
    assert mean["node_perturbation"][1] < 0.5 * mean["node_perturbation"][0]
    assert mean["weight_perturbation"][1] < mean["weight_perturbation"][0]
    assert mean["mstdp"][1] > 0.9 * mean["mstdp"][0]  # no learning without eligibility


@pytest.mark.slow
def test_miconi2017_dnms_full(tmp_path):
    # Miconi (2017): DNMS learned by the reward-modulated Hebbian rule (paper: median 843 trials to
    # criterion, IQR 692-1125, 20 runs). Ten seeds of 3000 trials in blocks (about 20 min): measured
    # 2026-12-03, 10 of 10 reached the criterion (95 of the last 100 trials with error < 1) at
    # 388-2324 trials, median 828 (IQR 506-1187). In the trial loop, with another random stream
    # for the kicks, 8 of 10 had reached it (median 705) and two plateaued at 75% and 82% correct.
    # We ask for at least 7 of 10 and a median below 1200.
    reached = []
    for seed in range(10):
        out = tmp_path / f"seed{seed}"
        assert main(["run", "protocols/miconi2017_dnms.toml", "--out", str(out), "--set", f"seed={seed}"]) == 0
        trials = json.loads((out / "summary.json").read_text())["trials_to_criterion"]
        if trials is not None:
            reached.append(trials)
    assert len(reached) >= 7 and np.median(reached) < 1200


@pytest.mark.slow
def test_oua_single_parameter_full(tmp_path):
    # García Fernández et al. (2024), the one-parameter example, 15 seeds of 1000 s: the mean μ
    # settles near θ* = 1 (an independent NumPy run of the reference equations: 1.068 ± 0.019), and
    # the cumulative reward is a small fraction of the untrained parameter's loss.
    out = tmp_path / "oua"
    assert main(["run", "protocols/oua_single_parameter.toml", "--out", str(out)]) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 15
    assert abs(runs.mean_mu_last_10pct.mean() - 1.068) < 0.05
    assert runs.mean_mu_last_10pct.std() < 0.06
    assert (runs.cumulative_reward > 0.1 * runs.cumulative_reward_untrained).all()


@pytest.mark.slow
def test_recurrent_rules_dnms_full(tmp_path):
    # EH, Miconi, node perturbation through time and BPTT on one 50-unit network, 2000 trials.
    # Measured (seed 0): BPTT reaches the criterion at trial 29 (loss 1.8 -> 6e-5), NP in time at
    # 1322 (1.8 -> 0.30); Miconi's rule lowers the loss (2.1 -> 0.96) without reaching it, EH
    # barely (1.8 -> 1.4). Single updates of the three reward-modulated rules have cosines with
    # -∇L near 0.01 (the signal is in their mean over many trials).
    out = tmp_path / "compare"
    assert main(["run", "protocols/recurrent_rules_dnms.toml", "--out", str(out)]) == 0
    runs = pd.read_csv(out / "runs.csv").set_index("variant")
    assert runs.loc["BPTT", "trials_to_criterion"] < 200
    assert runs.loc["BPTT", "final_loss"] < 1e-3 * runs.loc["BPTT", "initial_loss"]
    assert runs.loc["NP_time", "trials_to_criterion"] < 2000
    assert runs.loc["Miconi", "final_loss"] < 0.7 * runs.loc["Miconi", "initial_loss"]
    assert runs.loc["EH", "final_loss"] < runs.loc["EH", "initial_loss"]


@pytest.mark.slow
def test_eprop_pattern_full(tmp_path):
    # Bellec et al. (2020)'s pattern generation, 500 trials, seeds 0-2 (about 10 min). Measured
    # (mean loss of the last 50 trials; the first trial's loss 3.05, 1.56, 1.19): e-prop random
    # 0.098, 0.072, 0.067; symmetric 0.051, 0.036, 0.085; surrogate BPTT 0.063, 0.045, 0.052; NP
    # 0.90, 0.68, 1.42. Mean cosine of the recurrent update with the surrogate gradient: symmetric
    # 0.50-0.55, random 0.00-0.10. With the read-out fixed: e-prop symmetric 0.38, 0.21, 0.19;
    # BPTT 0.53, 0.079, 1.01 (its lowest 0.31, 0.057, 0.24: unstable at this rate); e-prop random
    # 0.59, then runaway on seeds 1 and 2 (59, 255). We ask each e-prop and BPTT run on both
    # weights for a tenth of its first loss and below 0.15, symmetric feedback for a better
    # recurrent cosine than random on every seed, and with the read-out fixed, e-prop symmetric
    # for 0.7 of its first loss and BPTT for a lowest loss under 0.3 of its first.
    out = tmp_path / "eprop"
    assert main(["run", "protocols/eprop_pattern.toml", "--out", str(out), "--set", "sweep.seeds=3"]) == 0
    runs = pd.read_csv(out / "runs.csv")
    cosine = {}
    for run in runs.itertuples():
        metrics = pd.read_csv(out / run.path / "metrics.csv")
        loss = metrics.query("metric == 'loss'").value.to_numpy()
        if run.variant in ("eprop_random", "eprop_symmetric", "surrogate_BPTT"):
            assert loss[-50:].mean() < min(0.1 * loss[0], 0.15), (run.variant, run.seed)
        if run.variant == "eprop_symmetric_rec_only":
            assert loss[-50:].mean() < 0.7 * loss[0], (run.variant, run.seed)
        if run.variant == "surrogate_BPTT_rec_only":
            assert loss.min() < 0.3 * loss[0], (run.variant, run.seed)
        recurrent = metrics.query("metric == 'cosine' and layer == 'W1'").value
        cosine[(run.variant, run.seed)] = recurrent.mean()
    for seed in runs.seed.unique():
        assert cosine[("eprop_symmetric", seed)] > cosine[("eprop_random", seed)] + 0.2


@pytest.mark.slow
def test_zuege2023_full(tmp_path):
    # Züge, Klos & Memmesheimer (2023) on the linear temporally extended task (T = 16, M = 2, 20
    # seeds, 300 trials; about 3.5 min on 2 workers). Measured (mean loss of trials 200-299 over
    # the closed form's mean, N_eff = 1, 2, 4, 8, 16): WP 1.09, 1.04, 0.96, 0.96, 0.97; NP with one
    # reward per trial 1.01, 1.06, 1.03, 1.04, 1.07. The loss's spread over seeds is skewed (a few
    # seeds far above), so the check is 4 sem or 25%, whichever is larger. NP's floor over WP's:
    # measured 2.95 at N_eff = 1 (theory 3.19) and 1.11 at N_eff = 16 (theory 1).
    from bioplastic.analysis.learning_curves import sweep_learning_curves
    out = tmp_path / "zuege"
    assert main(["sweep", "protocols/zuege2023.toml", "--out", str(out)]) == 0
    _, late = sweep_learning_curves(out)
    theory = late[late.theory.notna()]
    assert len(theory) == 10
    for row in theory.itertuples():
        assert abs(row.mean - row.theory) < max(4 * row.sem, 0.25 * row.theory), row
    floor = late.set_index(["line", "input_dim"])["mean"]
    assert floor["NP, one reward per trial", 1] > 2 * floor["WP", 1]
    assert 0.8 < floor["NP, one reward per trial", 16] / floor["WP", 16] < 1.25
