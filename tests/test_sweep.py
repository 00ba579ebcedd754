"""`bioplastic sweep`: parallel runs, failures recorded, resuming after kill -9, a Dask cluster on loopback."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from bioplastic.cli import main
from conftest import REPO

QS = "protocols/quickstart.toml"
SMALL = ["--set", 'training.backend="runtime"', "--set", "training.trials=6", "--set", "analysis.every=0"]


def sweep(out, *extra):
    return ["sweep", QS, "--out", str(out), *SMALL, *extra]


def leftovers(folder):
    """Temporary folders or files a killed writer left anywhere below ``folder``."""
    return [p for p in Path(folder).rglob(".*") if ".tmp" in p.name]


def finished(out):
    return {p.parent.relative_to(out) for p in Path(out).glob("*/seed*/summary.json")}


def brian_leftovers():
    """Brian2's debug logs and script copies in this test process's temporary folder (which the
    workers inherit, tests/conftest.py)."""
    folder = Path(tempfile.gettempdir())
    return set(folder.glob("brian_debug_*.log")) | set(folder.glob("brian_script_*.py"))


def test_a_sweep_runs_every_variant_and_seed_in_parallel(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(sweep(out, "--seeds", "2", "--workers", "2")) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 6 and set(runs.status) == {"done"} and runs.path.is_unique
    assert set(runs.variant) == {"backprop", "weight_perturbation", "node_perturbation"}
    assert {"rule.kind", "seed", "final_loss", "status", "error", "path"} <= set(runs.columns)
    assert finished(out) == {Path(p) for p in runs.path}
    assert (out / "figures" / "learning_curves.png").exists()
    assert json.loads((out / "summary.json").read_text())["done"] == 6
    # the same command again runs nothing: every folder stays as it was
    stamps = {p: (out / p / "summary.json").stat().st_mtime_ns for p in runs.path}
    assert main(sweep(out, "--seeds", "2", "--workers", "2")) == 0
    assert stamps == {p: (out / p / "summary.json").stat().st_mtime_ns for p in runs.path}
    assert "6 of 6 runs done" in capsys.readouterr().out


def test_the_same_runs_as_bioplastic_run(tmp_path):
    """A worker runs exactly what `bioplastic run` runs: the same metrics for the same seed."""
    assert main(sweep(tmp_path / "s", "--workers", "2")) == 0
    assert main(["run", QS, "--out", str(tmp_path / "r"), *SMALL]) == 0
    for variant in ("backprop", "weight_perturbation", "node_perturbation"):
        parallel = pd.read_csv(tmp_path / "s" / variant / "seed1" / "metrics.csv")
        sequential = pd.read_csv(tmp_path / "r" / variant / "seed1" / "metrics.csv")
        pd.testing.assert_frame_equal(parallel, sequential)


def test_a_failed_variant_is_recorded_and_the_others_go_on(tmp_path):
    out = tmp_path / "s"
    # a loss limit that every trial exceeds: those variants stop as diverged at their first trial
    assert main(sweep(out, "--grid", "training.max_loss=1e6,1e-9", "--seeds", "1", "--workers", "2")) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 6
    failed = runs[runs.status == "failed"]
    assert set(failed["training.max_loss"]) == {1e-9} and len(failed) == 3
    assert failed.error.str.contains("diverged at trial 0").all()
    assert (runs[runs["training.max_loss"] == 1e6].status == "done").all()
    for path in failed.path:
        assert json.loads((out / path / "summary.json").read_text())["status"] == "failed"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed"] == len(failed) and summary["status"] == "complete with failures"


def _start(out, *extra):
    """The sweep as a command in a process group of its own."""
    return subprocess.Popen([sys.executable, "-m", "bioplastic.cli", *sweep(out, *extra)], cwd=Path(QS).resolve().parents[1],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _kill_when_some_are_done(process, out, total, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(finished(out)) >= 1:
            break
        if process.poll() is not None:
            pytest.fail("the sweep ended before it could be killed")
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done = finished(out)
    assert 1 <= len(done) < total, "the kill should land mid-way"
    return {p: (out / p / "summary.json").stat().st_mtime_ns for p in done}


def _check_resumed(out, before, total):
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == total and runs.path.is_unique and set(runs.status) == {"done"}
    assert len(finished(out)) == total
    assert all((out / p / "summary.json").stat().st_mtime_ns == stamp for p, stamp in before.items())  # not rerun
    assert not leftovers(out)


def test_kill_9_of_the_whole_process_group_then_resume(tmp_path):
    out = tmp_path / "s"
    debris = brian_leftovers()
    process = _start(out, "--seeds", "3", "--workers", "2")  # 9 runs: the kill lands well before the end
    before = _kill_when_some_are_done(process, out, total=9)
    assert not brian_leftovers() - debris  # the killed workers, as the command, had removed their Brian2 files
    assert main(sweep(out, "--seeds", "3", "--workers", "2")) == 0
    _check_resumed(out, before, total=9)


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as local:
        yield local.scheduler_address


def test_a_sweep_on_a_loopback_dask_cluster(tmp_path, cluster):
    out = tmp_path / "s"
    assert main(sweep(out, "--seeds", "2", "--scheduler", cluster)) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 6 and set(runs.status) == {"done"}


def test_a_killed_dask_sweep_resumes(tmp_path, cluster):
    out = tmp_path / "s"
    process = _start(out, "--seeds", "4", "--scheduler", cluster)
    before = _kill_when_some_are_done(process, out, total=12)
    assert main(sweep(out, "--seeds", "4", "--scheduler", cluster)) == 0
    time.sleep(1)  # runs the killed client had started may still finish on the workers meanwhile
    _check_resumed(out, before, total=12)


@pytest.mark.parametrize("extra,key,fragment", [
    (["--grid", "rule.sigmaa=0.1,0.2"], "rule.sigmaa", "unknown key"),
    (["--grid", "model.tau=10 mV,20 mV"], "model.tau", "dimensions"),
    (["--grid", "rule.sigma="], "--grid", "needs at least one value"),
    (["--grid", "sigma=0.1"], "--grid", "dotted key"),
    (["--seeds", "0"], "--seeds", ">= 1"),
    (["--workers", "0"], "--workers", ">= 1"),
    (["--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "1"], "--scheduler", "cannot reach"),
    (["--scheduler", "foo"], "--scheduler", "missing port"),
    (["--scheduler", "udp://1.2.3.4:1"], "--scheduler", "unknown address scheme"),
    (["--scheduler", "tcp://localhost:99999"], "--scheduler", "out of range"),
    (["--connect-timeout", "0"], "--connect-timeout", "positive"),
    (["--connect-timeout", "nan"], "--connect-timeout", "positive"),
    (["--connect-timeout", "inf"], "--connect-timeout", "positive"),
])
def test_bad_sweep_input_is_one_line_and_writes_nothing(extra, key, fragment, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(sweep(out, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{key}: " in err and fragment in err, err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_out_holding_another_sweep_is_refused_untouched(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(sweep(out, "--workers", "2")) == 0
    before = sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*"))
    assert main(sweep(out, "--workers", "2", "--set", "rule.lr=0.2")) == 2
    err = capsys.readouterr().err.strip()
    assert "--out: holds the results of a different sweep" in err and len(err.splitlines()) == 1
    assert sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*")) == before
    (tmp_path / "other").mkdir()
    assert main(sweep(tmp_path / "other")) == 2
    assert "no readable sweep.json" in capsys.readouterr().err


def test_model_file_can_be_swept(tmp_path):
    out = tmp_path / "s"
    assert main(sweep(out, "--grid", "model.file=rate_mlp.toml,rate_linear.toml", "--seeds", "1")) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["model.file"]) == {"rate_mlp.toml", "rate_linear.toml"} and set(runs.status) == {"done"}
    import tomllib
    sizes = {row["model.file"]: tomllib.loads((out / row.path / "protocol.toml").read_text())["model"]["sizes"]
             for _, row in runs.iterrows()}
    assert len(runs) == 6
    assert sizes == {"rate_mlp.toml": [10, 20, 2], "rate_linear.toml": [8, 8, 4]}


def test_bioplastic_run_records_a_failed_variant_and_goes_on(tmp_path, capsys):
    """The sequential sweep of `bioplastic run` too: a variant that diverges is recorded with its
    error (and its `.failed` folder), the others finish; only a sweep where all fail exits 2."""
    out = tmp_path / "r"
    assert main(["run", QS, "--out", str(out), *SMALL, "--set", 'rule.kind="weight_perturbation"', "--set",
                 'sweep={ cases = [{ label = "ok" }, { label = "bad", "training.max_loss" = 1e-9 }], seeds = 1 }']) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs.status) == ["done", "failed"] and "diverged at trial 0" in runs.error.iloc[1]
    assert (out / runs.path.iloc[1] / "summary.json").exists()
    assert json.loads((out / "summary.json").read_text())["status"] == "complete with failures"
    assert "1 run(s) failed" in capsys.readouterr().out


def test_a_structure_built_by_one_process_is_copied_not_compiled_by_another(tmp_path):
    # Workers that need the same network take different build slots. The second copies the first
    # slot's finished build and make compiles nothing: a binary is built once per structure.
    import fcntl
    env = dict(os.environ, BIOPLASTIC_CACHE=str(tmp_path / "cache"))
    train = [sys.executable, "-c", "import sys; sys.path.insert(0, 'tests'); from conftest import rule_protocol; "
             "from bioplastic.engine.trainer import Trainer; Trainer(rule_protocol('quickstart.toml', "
             "'weight_perturbation', 'training.trials=2', 'analysis.every=0', 'training.loop=\"trial\"')).train()"]
    subprocess.run(train, env=env, check=True, cwd=REPO)
    slots = sorted((tmp_path / "cache" / "standalone").glob("*-0"))
    assert slots and all((slot / ".built").exists() for slot in slots)
    held = [open(slot / ".lock", "w") for slot in slots]  # as if another worker were using them
    for lock in held:
        fcntl.flock(lock, fcntl.LOCK_EX)
    subprocess.run(train, env=env, check=True, cwd=REPO)
    for slot in slots:
        copy = slot.with_name(slot.name[:-2] + "-1")
        assert "Nothing to be done" in (copy / "make.log").read_text(), copy
        assert (copy / ".built").exists()
    for lock in held:
        lock.close()


def test_a_resume_heals_damaged_runs_and_retries_what_the_machine_failed(tmp_path, capsys):
    out = tmp_path / "h"
    argv = ["run", QS, "--out", str(out), *SMALL, "--set", 'rule.kind="weight_perturbation"', "--set",
            'sweep={ cases = [{ label = "a" }, { label = "b" }, { label = "c" }, { label = "bad", '
            '"training.max_loss" = 1e-9 }], seeds = 1 }']
    assert main(argv) == 0
    capsys.readouterr()
    (out / "a" / "seed1" / "summary.json").unlink()  # a run folder that lost its summary
    (out / "b" / "seed1" / "metrics.csv").write_text("trial,layer\n1,2,3,4\n\"")  # a damaged table
    c = out / "c" / "seed1"  # a run that failed for the machine's sake (a full disk): record it so
    c.rename(c.with_name("seed1.failed"))
    record = c.with_name("seed1.failed") / "summary.json"
    record.write_text(json.dumps(dict(status="failed", failure="machine", error="[Errno 28] No space left on device")))
    (out / "runs.csv").write_text("\0garbage")  # rebuilt from the folders, never read
    stamp = (out / "bad" / "seed1.failed" / "summary.json").stat().st_mtime_ns
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert sum("set aside in" in line for line in err.splitlines()) == 3, err
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs.status) == ["done", "done", "done", "failed"]
    assert sorted(p.relative_to(out / ".set_aside").as_posix() for p in (out / ".set_aside").glob("*/*")) == \
        ["a/seed1", "b/seed1", "c/seed1.failed"]  # moved, never deleted
    # a failure of the science stays failed ...
    assert (out / "bad" / "seed1.failed" / "summary.json").stat().st_mtime_ns == stamp
    # ... unless asked: --retry-failed runs it again (and it fails again, the same way)
    assert main(argv + ["--retry-failed"]) == 0
    assert (out / ".set_aside" / "bad" / "seed1.failed").exists()
    assert "diverged at trial 0" in pd.read_csv(out / "runs.csv").error.iloc[3]


def test_a_damaged_sweep_record_is_repaired_from_the_sweeps_protocol(tmp_path, capsys):
    out = tmp_path / "r"
    argv = ["run", QS, "--out", str(out), *SMALL, "--set", 'sweep={ cases = [{ label = "a" }], seeds = 1 }',
            "--set", 'rule.kind="weight_perturbation"']
    assert main(argv) == 0
    (out / "sweep.json").write_text("{ damaged")
    assert main(argv) == 0
    assert "sweep.json was damaged; written again" in capsys.readouterr().err
    assert "protocol" in json.loads((out / "sweep.json").read_text())
