"""Continuous experiments: the distal-reward logic, Florian's Fig. 1 by hand, the STDP window
against its closed form, reproducibility, and what a runaway run leaves behind."""

import json

import numpy as np
import pandas as pd
import pytest

from bioplastic.cli import main
from bioplastic.engine.experiment import Experiment
from bioplastic.errors import RunawayError

from conftest import protocol

RUNTIME = 'training.backend="runtime"'
SMALL = ["model.n_exc=80", "model.n_inh=20", "model.out_degree=10", 'task.duration="4 s"',
         'task.snapshot_every="2 s"', RUNTIME]


def test_every_reward_follows_a_pairing_after_the_delay():
    # A wide window and short delays make rewards frequent in 8 s. Every reward must come
    # (delay_min, delay_max] after a post spike that followed a pre spike by less than the window,
    # and every such pairing must be rewarded (none is dropped; none falls after the end).
    p = protocol("izhikevich2007_distal_reward.toml", *SMALL, 'task.duration="8 s"', 'task.window="500 ms"',
                 'task.delay_min="0.1 s"', 'task.delay_max="0.3 s"', 'task.record_every="1 ms"', 'task.raster="4 s"',
                 'task.initial_weight="4 mV"')
    experiment = Experiment(p)
    metrics, tables, summary = experiment.run()
    pre, post = experiment.task.pre, experiment.task.post
    raster = tables["raster.csv"]
    t_pre = np.sort(raster[raster.neuron == pre].t_s.to_numpy())
    t_post = np.sort(raster[raster.neuron == post].t_s.to_numpy())
    pairings = [t for t in t_post if len(t_pre[t_pre < t - 1e-9]) and t - t_pre[t_pre < t - 1e-9].max() < 0.5 - 1e-9]
    count = metrics[metrics.metric == "reward"].sort_values("t_s")
    rewarded = count.t_s.to_numpy()[1:][np.diff(count.value.to_numpy()) > 0] - 0.001  # recorded a step later
    due = [t for t in pairings if t + 0.3 < 8.0 - 0.01]
    assert len(due) >= 3 and summary["rewards_dropped"] == 0
    assert len(rewarded) >= len(due)
    for t in rewarded:
        delays = t - np.asarray(pairings)
        assert np.any((delays > 0.1 - 1e-6) & (delays <= 0.3 + 1e-6)), t


def test_the_distal_reward_run_is_reproducible_and_seeds_agree_within_spread():
    runs = [Experiment(protocol("izhikevich2007_distal_reward.toml", *SMALL, f"seed={s}")).run() for s in (1, 1, 2, 3)]
    pd.testing.assert_frame_equal(runs[0][0], runs[1][0])
    rates = [r[2]["mean_rate_hz"] for r in runs[1:]]
    assert not runs[0][0].equals(runs[2][0])
    # three seeds of the same network statistics: rates within 30% of their mean (measured: 1-3%)
    assert np.ptp(rates) < 0.3 * np.mean(rates) and min(rates) > 0.2


def test_florian_fig1_weights_match_the_hand_computed_sums(tmp_path):
    # lr 0.1 mV; the pair sums of the pattern (tests/test_rstdp.py): STDP 0.34518, MSTDP 0.01651.
    out = tmp_path / "fig1"
    assert main(["run", "protocols/florian2007_fig1.toml", "--out", str(out), "--set", RUNTIME]) == 0
    runs = pd.read_csv(out / "runs.csv").set_index("variant")
    assert runs.loc["STDP", "weight_change_mv"] == pytest.approx(0.1 * 0.345182, abs=1e-6)
    assert runs.loc["MSTDP", "weight_change_mv"] == pytest.approx(0.1 * 0.016512, abs=1e-6)
    weight = pd.read_csv(out / "MSTDPET" / "seed1" / "metrics.csv").query("metric == 'weight'")
    assert len(weight) == 200  # every step of 1 ms
    assert (out / "figures" / "spike_pattern.png").exists()


def test_the_stdp_window_is_the_closed_form(tmp_path):
    out = tmp_path / "window"
    assert main(["run", "protocols/stdp_window.toml", "--quick", "--out", str(out), "--set", RUNTIME]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["max_error_vs_closed_form"] < 1e-9
    window = pd.read_csv(out / "window.csv")
    assert (window[window.delta_t_ms > 0].dw_mv > 0).all() and (window[window.delta_t_ms < 0].dw_mv < 0).all()


def test_a_runaway_run_stops_and_keeps_its_metrics_in_a_failed_folder(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "protocols/izhikevich2007_distal_reward.toml", "--out", str(out), *sum(
        (["--set", s] for s in SMALL + ['training.max_rate="0.5 Hz"']), [])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "training.max_rate: runaway activity" in err and "simulated time" in err
    assert not out.exists()
    failed = tmp_path / "run.failed"
    summary = json.loads((failed / "summary.json").read_text())
    assert summary["status"] == "failed" and 0 < summary["stopped_at_s"] < 4
    metrics = pd.read_csv(failed / "metrics.csv")
    assert len(metrics) and metrics.t_s.max() <= summary["stopped_at_s"] + 1e-9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.failed"]


def test_a_runaway_trial_names_the_trial(tmp_path):
    p = protocol("reward_learning.toml", RUNTIME, 'training.max_rate="1 Hz"', quick=True)
    from bioplastic.engine.trainer import Trainer
    with pytest.raises(RunawayError, match="in trial 0"):
        Trainer(p.variants()[0][2]).train()
