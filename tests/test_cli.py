"""The command line, run in-process: every shipped protocol with --quick, and every command."""

import json
from pathlib import Path

import pandas as pd
import pytest

from bioplastic.cli import main

PROTOCOLS = sorted(Path(__file__).resolve().parents[1].joinpath("protocols").glob("*.toml"))
RUNTIME = ["--set", 'training.backend="runtime"']


@pytest.mark.parametrize("path", PROTOCOLS, ids=lambda p: p.stem)
def test_every_protocol_runs_quick(path, tmp_path, capsys):
    import tomllib
    from bioplastic.networks.recurrent_rate import PLASTIC
    out = tmp_path / "run"
    assert main(["run", str(path), "--quick", "--out", str(out)] + RUNTIME) == 0
    assert f"results: {out}" in capsys.readouterr().out
    runs = pd.read_csv(out / "runs.csv") if (out / "runs.csv").exists() else None
    if runs is not None and "status" in runs:  # an lr scan may have runs that diverge: recorded, not run
        runs = runs[runs.status == "done"]
    folders = [out / p for p in runs.path] if runs is not None else [out]
    for folder in folders:
        resolved = tomllib.loads((folder / "protocol.toml").read_text())
        metrics = pd.read_csv(folder / "metrics.csv")
        summary = json.loads((folder / "summary.json").read_text())
        assert {"wall_time_s", "seed", "versions"} <= set(summary)
        if "t_s" in metrics:  # an experiment: one continuous run
            assert list(metrics.columns) == ["trial", "t_s", "layer", "metric", "value"]
            assert len(metrics) and metrics.value.notna().all()
        else:
            assert list(metrics.columns) == ["trial", "layer", "metric", "value"]
            assert "loss" in set(metrics.metric)
            if resolved["analysis"]["every"] > 0:  # a protocol may switch the analysis off (werfel2005)
                assert {"cosine", "angle_deg", "norm_ratio"} <= set(metrics.metric)
                model = resolved["model"]
                layers = len(model["sizes"]) - 1 if "sizes" in model else len(PLASTIC[model["plastic"]])
                assert set(metrics[metrics.metric == "cosine"].layer) == \
                    {f"W{l}" for l in range(1, layers + 1)} | {"all"}
            assert "final_loss" in summary
        assert any((folder / "figures").glob("*.png"))
        assert main(["validate", str(folder / "protocol.toml")]) == 0  # resolved: runs again as it is
    if runs is not None:
        assert any((out / "figures").glob("*.png"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_run_refuses_to_overwrite(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    assert main(["run", "protocols/quickstart.toml", "--quick", "--out", str(tmp_path / "taken")] + RUNTIME) == 2
    assert "exists already" in capsys.readouterr().err


def test_align_writes_the_contract_table(tmp_path, capsys):
    out = tmp_path / "align"
    assert main(["align", "protocols/wp_vs_np.toml", "--samples", "5", "--out", str(out)] + RUNTIME) == 0
    printed = capsys.readouterr().out
    assert "theory" in printed and "mean" in printed and "sem" in printed
    table = pd.read_csv(out / "alignment.csv")
    assert {"rule", "layer", "sample", "cosine", "norm_ratio", "cosine_theory"} <= set(table.columns)
    assert set(table.rule) == {"backprop", "weight_perturbation", "node_perturbation"}
    assert set(table.layer) == {"W1", "W2", "all"} and set(table["sample"]) == set(range(5))
    backprop = table[table.rule == "backprop"]
    assert backprop.cosine.min() > 1 - 1e-12 and (backprop.norm_ratio - 1).abs().max() < 1e-12
    assert (out / "figures" / "align_cosines.png").exists()
    (out / "figures" / "align_cosines.png").unlink()
    assert main(["figures", str(out)]) == 0 and (out / "figures" / "align_cosines.png").exists()


def test_same_seed_same_table_and_resolved_protocol_reruns(tmp_path):
    # Runs 1 and 2: the same protocol and seed. Run 3: the protocol.toml that run 1 wrote.
    args = ["--quick", "--set", 'training.backend="runtime"', "--set", 'rule.kind="node_perturbation"']
    assert main(["run", "protocols/wp_vs_np.toml", "--out", str(tmp_path / "a")] + args) == 0
    assert main(["run", "protocols/wp_vs_np.toml", "--out", str(tmp_path / "b")] + args) == 0
    first = tmp_path / "a" / "node_perturbation" / "seed7"
    assert main(["run", str(first / "protocol.toml"), "--out", str(tmp_path / "c")]) == 0
    table = (first / "metrics.csv").read_text()
    assert table == (tmp_path / "b" / "node_perturbation" / "seed7" / "metrics.csv").read_text()
    assert table == (tmp_path / "c" / "metrics.csv").read_text()


def test_gradcheck_fails_above_tolerance_and_rejects_bad_steps(capsys):
    base = ["gradcheck", "protocols/quickstart.toml", "--set", 'training.backend="runtime"',
            "--set", "model.sizes=[3,4,2]", "--set", "task.batch=2"]
    assert main(base + ["--tolerance", "0"]) == 1  # rounding error is never exactly zero
    assert "FAILED" in capsys.readouterr().err
    assert main(base + ["--eps", "0"]) == 2
    assert "--eps: must be a finite number > 0" in capsys.readouterr().err


def test_figures_redraws_from_tables(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "protocols/quickstart.toml", "--quick", "--out", str(out)] + RUNTIME) == 0
    for png in out.rglob("*.png"):
        png.unlink()
    assert main(["figures", str(out)]) == 0
    assert (out / "figures" / "learning_curves.png").exists()
    assert main(["figures", str(tmp_path / "nothing")]) == 2


def test_list_shows_parameters_with_defaults(capsys):
    assert main(["list"]) == 0
    printed = capsys.readouterr().out
    for expected in ["weight_perturbation", "node_perturbation", "backprop", "teacher_regression",
                     "sigma = 0.001", 'tau = "10.0 ms"', "recurrent = false", 'activation = "tanh"', "rate_mlp",
                     "quickstart.toml", "[training]", "backend = ", "[sweep]", 'name = "']:
        assert expected in printed
    assert main(["list", "rules"]) == 0


PLUGIN = '''
from dataclasses import dataclass
import numpy as np
from bioplastic.rules import Rule, register_rule
from bioplastic.spec import param, positive, validate

@dataclass(frozen=True)
class SignSGDSpec:
    lr: float = param(0.01, "learning rate", check=positive)
    def __post_init__(self):
        validate(self)

@register_rule
class SignSGD(Rule):
    kind = "sign_sgd"
    spec_class = SignSGDSpec
    description = "step along the sign of the exact gradient"
    needs_gradient = True
    def update(self, trial, perturbation):
        return [-self.spec.lr * np.sign(g) for g in trial.gradient.weights]
'''


def test_a_rule_of_ones_own_runs_from_a_plugin_file(tmp_path, capsys):
    (tmp_path / "my_rule.py").write_text(PLUGIN)
    protocol = tmp_path / "p.toml"
    protocol.write_text('plugins = ["my_rule.py"]\n[model]\nfile = "rate_mlp.toml"\n[task]\nduration = "20 ms"\n'
                        '[rule]\nkind = "sign_sgd"\nlr = 0.01\n[training]\ntrials = 30\nbackend = "runtime"\n')
    out = tmp_path / "out"
    assert main(["run", str(protocol), "--out", str(out)]) == 0
    assert f"loading plugin code: {tmp_path / 'my_rule.py'}" in capsys.readouterr().err.splitlines()
    loss = pd.read_csv(out / "metrics.csv").query("metric == 'loss'").value.to_numpy()
    assert loss[-5:].mean() < loss[:5].mean()
    # The result's protocol names the plugin by its absolute path, outside the result's folder: it
    # runs again only if the user says so.
    assert main(["validate", str(out / "protocol.toml")]) == 2
    assert f"give --plugin {tmp_path / 'my_rule.py'}" in capsys.readouterr().err
    assert main(["validate", str(out / "protocol.toml"), "--plugin", str(tmp_path / "my_rule.py")]) == 0
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    protocol.write_text('plugins = ["broken.py"]\n[rule]\nkind = "backprop"\n')
    assert main(["validate", str(protocol)]) == 2
    assert "plugins: cannot load 'broken.py': RuntimeError: boom" in capsys.readouterr().err
