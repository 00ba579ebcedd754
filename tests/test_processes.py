"""Faults that need real processes: ``kill -9`` and SIGTERM of a command with standalone binaries
and sweep workers under it. Nothing may run on after its command is killed, and nothing may be
left on disk once the command (or, after a ``kill -9``, the next one) has ended."""

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bioplastic.cli import main
from bioplastic.scratch import SHM
from conftest import REPO
from memory_probe import descendants

# A feed-forward rate network whose every trial is a run of the standalone binary.
LONG = '''name = "long"
[model]
file = "rate_mlp.toml"
[task]
duration = "20 s"
[rule]
kind = "weight_perturbation"
[training]
trials = 100000
backend = "standalone"
loop = "trial"
[analysis]
every = 0
'''
SWEEP = LONG + '[sweep]\ngrid = { "rule.sigma" = [0.01, 0.02, 0.03] }\n'
COMMANDS = {
    "run": (LONG, ["run", "{protocol}", "--out", "{out}"]),
    "sweep": (SWEEP, ["sweep", "{protocol}", "--workers", "2", "--out", "{out}"]),
    "align": (LONG, ["align", "{protocol}", "--samples", "100000", "--out", "{out}"]),
}


def start(tmp_path, command):
    text, argv = COMMANDS[command]
    protocol = tmp_path / "long.toml"
    protocol.write_text(text)
    argv = [a.format(protocol=protocol, out=tmp_path / "out") for a in argv]
    return subprocess.Popen([sys.executable, "-m", "bioplastic.cli", *argv], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def command(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return b""


def running(pids):
    """Which of ``pids`` still run (not ended, not a zombie)."""
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def gone_within(pids, seconds):
    """Whether every one of ``pids`` has ended within ``seconds``."""
    deadline = time.time() + seconds
    while running(pids) and time.time() < deadline:
        time.sleep(0.02)
    return not running(pids)


def cpu_ticks(pid):
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait_for_binary(process, seconds=300):
    """Wait until a standalone binary runs under ``process`` (after its build), past its start-up
    (a CPU tick used: it has asked to die with its parent by then); return it."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.communicate())
        binaries = [p for p in descendants(process.pid) if command(p) == b"./main" and cpu_ticks(p) > 0]
        if binaries:
            return binaries
        time.sleep(0.02)
    raise AssertionError("no standalone binary seen running")


def leftovers(pid, tmp_path):
    """What the command ``pid`` left: scratch in memory, its temporary folder, unfinished results."""
    found = list(SHM.glob(f"bioplastic-{pid}-*")) + list(Path(tempfile.gettempdir()).glob(f"bioplastic-{pid}-*"))
    return found + [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]


@pytest.mark.parametrize("command", ["run", "sweep", "align"])
def test_kill_9_leaves_no_process_running(tmp_path, command):
    process = start(tmp_path, command)
    try:
        for pid in wait_for_binary(process):  # frozen, so that it cannot end on its own meanwhile
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        tree = descendants(process.pid)  # binaries, sweep workers, multiprocessing's resource tracker
        process.kill()
        process.wait(timeout=30)
        assert gone_within(tree, 1.0), f"{command}: {len(running(tree))} of {len(tree)} processes ran on"
    finally:  # nothing left running, whatever happened
        for pid in running(descendants(process.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    # The next command, whatever it is, removes what the killed one could not.
    assert main(["validate", "protocols/quickstart.toml"]) == 0
    assert not [p for p in leftovers(process.pid, tmp_path) if ".tmp-" not in p.name]
    if command != "align":  # a result folder's leftovers go with the next run beside it
        assert main(["run", "protocols/quickstart.toml", "--quick", "--set", 'training.backend="runtime"',
                     "--out", str(tmp_path / "next")]) == 0
        if command == "run":
            assert not leftovers(process.pid, tmp_path)


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_a_sweeps_workers_at_once(tmp_path, signum, code):
    process = start(tmp_path, "sweep")
    try:
        wait_for_binary(process)
        tree = descendants(process.pid)
        sent = time.time()
        os.killpg(process.pid, signum) if signum == signal.SIGINT else process.send_signal(signum)
        _, err = process.communicate(timeout=60)
        took = time.time() - sent
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == code, err
    assert err.strip().splitlines() == ["interrupted"], err  # one line: no traceback, no warning
    assert took < 20, f"the sweep took {took:.1f} s to stop"
    assert gone_within(tree, 1.0)  # multiprocessing's resource tracker ends once its last writer has
    assert not leftovers(process.pid, tmp_path)
    workers = [p for p in tree if p != process.pid]
    assert not [p for pid in workers for p in SHM.glob(f"bioplastic-{pid}-*")]
    assert not (tmp_path / "out").exists()  # it finished no run: it leaves no folder


def test_a_damaged_cached_binary_is_rebuilt_once(tmp_path, monkeypatch):
    import shutil

    from bioplastic.engine import backends
    protocol = tmp_path / "short.toml"
    protocol.write_text(LONG.replace("trials = 100000", "trials = 3"))  # the build of the kill tests
    backends.close_all()
    assert main(["run", str(protocol), "--out", str(tmp_path / "first")]) == 0
    (slot,) = [b.directory for b in backends._open.values()]
    backends.close_all()  # as a new command would: the backend reads the cache again
    # A cache of its own, holding a copy of that build, whose binary is damaged below (the shared
    # one may be in use by a test beside this one).
    monkeypatch.setenv("BIOPLASTIC_CACHE", str(tmp_path / "cache"))
    copy = tmp_path / "cache" / "standalone" / slot.name
    shutil.copytree(slot, copy, symlinks=True, ignore=shutil.ignore_patterns(".lock", "results", "static_arrays"))
    (copy / "main").write_bytes(b"not a binary")  # as a full disk or a crash mid-copy would leave it
    assert main(["run", str(protocol), "--out", str(tmp_path / "second")]) == 0
    assert (copy / "main").read_bytes()[:4] == b"\x7fELF"  # built again
    assert (tmp_path / "second" / "summary.json").exists()
    backends.close_all()


def test_a_killed_simulation_is_one_line_naming_the_signal(tmp_path):
    process = start(tmp_path, "run")
    try:
        binary = wait_for_binary(process)[0]
        os.kill(binary, signal.SIGKILL)  # as the kernel's OOM killer would
        _, err = process.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 1
    assert err.strip().splitlines() == ["error: the standalone simulation was killed by SIGKILL (out of memory?)"], err
    assert not leftovers(process.pid, tmp_path)


def test_cleanup_removes_only_marked_folders_of_dead_processes(tmp_path):
    from bioplastic.scratch import SCRATCH, mark, remove_stale
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has ended
    ours, users, live = (tmp_path / f"bioplastic-{pid}-a", tmp_path / f"bioplastic-{pid}-b",
                         tmp_path / f"bioplastic-{os.getpid()}-c")
    for folder in (ours, users, live):
        folder.mkdir()
    mark(ours)
    mark(live)
    assert remove_stale(tmp_path, SCRATCH) == [ours]
    assert users.exists() and live.exists()  # a user's folder that merely looks temporary stays


def test_too_little_dev_shm_sends_the_run_files_to_disk(tmp_path, monkeypatch, capsys):
    from bioplastic import resources, scratch
    from bioplastic.engine import backends
    monkeypatch.setattr(scratch, "_on_disk", [])  # this process's decision, undone after the test
    monkeypatch.setattr(resources, "shm_free", lambda: 1024)
    backends.close_all()
    protocol = tmp_path / "short.toml"
    protocol.write_text(LONG.replace("trials = 100000", "trials = 3"))  # the build of the kill tests
    assert main(["run", str(protocol), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "note: /dev/shm has 1 KiB free and a run needs about" in err and "the run files go to disk" in err, err
    assert [b._scratch for b in backends._open.values()] == [None]  # its files went to the build folder
    backends.close_all()
