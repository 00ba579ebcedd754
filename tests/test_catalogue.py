"""The bad-input catalogue: every way a user can get it wrong, and every fault, is one line and
leaves nothing behind.

Each row is a command line (run in this process), the exit status it must give, and a fragment of
its one ``error:`` line. For every row the test also checks that stderr holds one line and no
traceback, and that the temporary folder it ran in holds nothing new. The faults that need a real
process (SIGTERM, Ctrl-C, kill -9) run the command in a subprocess below. New keys, models and
tasks add their rows here (and their protocol-level rows in ``test_config.py``).
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bioplastic.cli import main
from bioplastic.scratch import SCRATCH, SHM

from conftest import REPO

RUNTIME = ["--set", 'training.backend="runtime"']
ADEX_PLUGIN = str(REPO / "examples" / "adex_plugin.py")
QS = "protocols/quickstart.toml"
RL = "protocols/reward_learning.toml"
AX = "examples/adex_count.toml"
DR = "protocols/izhikevich2007_distal_reward.toml"
ZG = "protocols/zuege2023.toml"
WP_ONLY = ["--set", 'sweep.grid={ "rule.kind" = ["weight_perturbation"] }']

PLUGIN = '''
from dataclasses import dataclass
import numpy as np
from bioplastic.rules import Rule, register_rule
from bioplastic.spec import param, positive, validate

@dataclass(frozen=True)
class FaultySpec:
    lr: float = param(0.01, "learning rate", check=positive)
    def __post_init__(self):
        validate(self)

@register_rule
class Faulty(Rule):
    kind = "faulty_{name}"
    spec_class = FaultySpec
    description = "a rule that goes wrong"
    def update(self, trial, perturbation):
        {body}
'''
FAULTS = {
    "raises": ("raise RuntimeError('my rule broke')", "failed in update: RuntimeError: my rule broke"),
    "none": ("return None", "it returned NoneType"),
    "shape": ("return [np.zeros((2, 2)) for w in trial.weights]", "has the shape (2, 2)"),
    "count": ("return [np.zeros_like(trial.weights[0])]", "it returned 1"),
    "nan": ("return [np.full_like(w, np.nan) for w in trial.weights]", "returned a non-finite update"),
    "exit": ("raise SystemExit(0)", "plugin code called sys.exit(0)"),
}


def plugin_protocol(tmp, name):
    body, _ = FAULTS[name]
    (tmp / f"faulty_{name}.py").write_text(PLUGIN.format(name=name, body=body))
    path = tmp / f"faulty_{name}.toml"
    path.write_text(f'plugins = ["faulty_{name}.py"]\n[model]\nfile = "rate_mlp.toml"\n[task]\nduration = "20 ms"\n'
                    f'[rule]\nkind = "faulty_{name}"\n[training]\ntrials = 3\nbackend = "runtime"\n')
    return str(path)


def broken_adex(tmp):
    """The AdEx example with a unit error in its plugin's equations; returns the protocol."""
    source = (REPO / "examples" / "adex_plugin.py").read_text()
    protocol = (REPO / AX).read_text()
    assert "dv/dt = (e_l - v + delta_t" in source
    source = source.replace("dv/dt = (e_l - v + delta_t", "dv/dt = (e_l - v * second + delta_t")
    for name in ('"adex"', '"count_regression"'):  # kinds of their own: the example may be loaded already
        assert name in source and name in protocol
        source, protocol = (text.replace(name, name[:-1] + '_broken"') for text in (source, protocol))
    write(tmp, "adex_plugin.py", source)
    return write(tmp, "adex_count.toml", protocol)


def write(tmp, name, text, binary=False):
    path = tmp / name
    path.write_bytes(text) if binary else path.write_text(text)
    return str(path)


# (id, argv builder (tmp -> argv), exit status, fragment of the error line)
CASES = [
    # the command line itself
    ("no-command", lambda t: [], 2, "required: COMMAND"),
    ("unknown-command", lambda t: ["train", QS], 2, "invalid choice: 'train'"),
    ("missing-protocol", lambda t: ["run"], 2, "required: protocol"),
    ("unknown-option", lambda t: ["run", QS, "--fast"], 2, "unrecognized arguments: --fast"),
    ("samples-zero", lambda t: ["align", QS, "--samples", "0"], 2, "--samples: must be >= 1"),
    ("samples-text", lambda t: ["align", QS, "--samples", "many"], 2, "invalid int value"),
    ("eps-zero", lambda t: ["gradcheck", QS, "--eps", "0"], 2, "--eps: must be a finite number > 0"),
    ("eps-inf", lambda t: ["gradcheck", QS, "--eps", "inf"], 2, "--eps: must be a finite number > 0"),
    ("eps-nan", lambda t: ["gradcheck", QS, "--eps", "nan"], 2, "--eps: must be a finite number > 0"),
    ("out-empty", lambda t: ["run", QS, "--out", ""], 2, "--out: must name a folder"),
    ("set-no-equals", lambda t: ["validate", QS, "--set", "rule.lr"], 2, "--set: must be KEY=VALUE"),
    ("set-unknown-section", lambda t: ["validate", QS, "--set", "rules.lr=1"], 2, "rules.lr: unknown key"),
    # files
    ("missing-file", lambda t: ["validate", str(t / "absent.toml")], 2, "no such file"),
    ("directory-as-protocol", lambda t: ["validate", str(t)], 2, "is not a regular file"),
    ("binary-protocol", lambda t: ["validate", write(t, "b.toml", b"\x00\xff\xfe", binary=True)], 2,
     "cannot read the file"),
    ("invalid-toml", lambda t: ["validate", write(t, "i.toml", "name = \n")], 2, "invalid TOML"),
    ("missing-model-file", lambda t: ["validate", QS, "--set", 'model.file="nope.toml"'], 2, "no such model file"),
    ("figures-not-a-result", lambda t: ["figures", str(t)], 2, "not a result folder"),
    ("figures-missing", lambda t: ["figures", str(t / "absent")], 2, "not a result folder"),
    # names and paths
    ("name-slash", lambda t: ["validate", QS, "--set", 'name="../../x"'], 2, "name: must be a plain folder name"),
    ("name-nul", lambda t: ["validate", QS, "--set", 'name="a\\u0000b"'], 2, "name: must be a plain folder name"),
    ("name-dotdot", lambda t: ["validate", QS, "--set", 'name=".."'], 2, "name: must be a plain folder name"),
    ("name-empty", lambda t: ["validate", QS, "--set", 'name=""'], 2, "name: must be a non-empty string"),
    ("out-under-a-file", lambda t: ["run", QS, "--quick", "--out", "README.md/x"] + RUNTIME, 2,
     "cannot create the result folder"),
    # resources, refused before anything is built
    ("huge-sizes", lambda t: ["validate", QS, "--set", "model.sizes=[100000, 100000]"], 2, "model.sizes: needs about"),
    ("huge-batch", lambda t: ["validate", QS, "--set", "task.batch=1000000000"], 2, "task.batch: needs about"),
    ("huge-samples", lambda t: ["validate", QS, "--set", "rule.samples=1000000"], 2, "rule.samples: needs about"),
    ("float-batch", lambda t: ["validate", QS, "--set", "task.batch=1e9"], 2, "task.batch: must be an integer"),
    ("huge-recurrent", lambda t: ["validate", DR, "--set", "model.n_exc=50000000"], 2, "model.n_exc: needs about"),
    # the temporally extended task, NP's credit, the training loop
    ("steps-zero", lambda t: ["validate", ZG, "--set", "task.steps=0"], 2, "task.steps: must be >= 1"),
    ("steps-float", lambda t: ["validate", ZG, "--set", "task.steps=2.5"], 2, "task.steps: must be an integer"),
    ("input-dim-over-steps", lambda t: ["validate", ZG, "--set", 'sweep.grid={ "task.input_dim" = [17] }'], 2,
     "task.input_dim: the inputs of 16 steps into 32 input units span at most 16"),
    ("input-dim-zero", lambda t: ["validate", ZG, "--set", 'sweep.grid={ "task.input_dim" = [0] }'], 2,
     "task.input_dim: must be >= 1"),
    ("input-norm-negative", lambda t: ["validate", ZG, "--set", "task.input_norm=-1.0"], 2,
     "task.input_norm: must be > 0"),
    ("credit-unknown", lambda t: ["validate", ZG, "--set",
                                  'sweep.cases=[{ label = "NP", "rule.kind" = "node_perturbation", "rule.credit" = "step" }]'],
     2, "rule.credit: must be one of"),
    ("loop-unknown", lambda t: ["validate", QS, "--set", 'training.loop="binary"'], 2, "training.loop: must be one of"),
    ("loop-block-backprop", lambda t: ["validate", QS, "--set", 'training.loop="block"'], 2,
     "training.loop: \"block\" is not available here: 'backprop' has no block form on feedforward rate models"),
    ("loop-block-spiking", lambda t: ["validate", "protocols/stdp_window.toml", "--set", 'training.loop="block"'], 2,
     "training.loop: \"block\" is not available here: the task 'stdp_pairing' is not one its block form scores"),
    ("loop-block-rstdp-batch", lambda t: ["validate", RL, "--set", 'training.loop="block"', "--set",
                                          'sweep.cases=[{label="r", "rule.kind"="rstdp"}, {label="w", "rule.kind"="weight_perturbation", "rule.lr"=200.0, "training.loop"="trial"}]',
                                          "--set", "task.batch=2"], 2,
     "the block form of 'rstdp' trains one example per trial (task.batch = 1)"),
    ("loop-block-miconi-batch", lambda t: ["validate", "protocols/miconi2017_dnms.toml", "--set", 'training.loop="block"',
                                           "--set", "task.batch=2"], 2,
     "the block form of 'miconi' trains one example per trial (task.batch = 1)"),
    ("loop-block-eprop-batch", lambda t: ["validate", "protocols/eprop_pattern.toml", "--set", 'training.loop="block"',
                                          "--set", 'sweep.cases=[{label="e", "rule.kind"="eprop"}]',
                                          "--set", "task.batch=2"], 2,
     "the block form of 'eprop' trains one example per trial (task.batch = 1)"),
    # the wrong command for the protocol
    ("gradcheck-spiking", lambda t: ["gradcheck", RL], 2, "gradcheck holds BPTT"),
    ("align-experiment", lambda t: ["align", DR], 2, "align draws dry-run updates of a trial task"),
    # plugins
    ("plugin-missing", lambda t: ["validate", write(t, "p.toml", 'plugins = ["gone.py"]\n')], 2, "cannot load 'gone.py'"),
    ("plugin-import-error", lambda t: ["validate", write(t, "q.toml", 'plugins = ["bad.py"]\n'),
                                       write(t, "bad.py", "import not_a_module_anywhere\n")][:2], 2,
     "ModuleNotFoundError"),
    ("plugin-exits-on-load", lambda t: ["validate", write(t, "x.toml", 'plugins = ["x.py"]\n')]
     if write(t, "x.py", "import sys\nsys.exit(0)\n") else None, 2, "plugins: cannot load 'x.py': SystemExit"),
    ("sweep-label-dotdot", lambda t: ["validate", QS, "--set", 'sweep={ cases = [{ label = ".." }] }', "--set", 'rule.kind="weight_perturbation"'], 2,
     "would leave or hide"),
    ("plugin-not-a-list", lambda t: ["validate", write(t, "r.toml", 'plugins = "x.py"\n')], 2, "plugins: must be a list"),
    ("list-plugin-missing", lambda t: ["list", "--plugins", str(t / "gone.py")], 2, "plugins: cannot load"),
    # a plugin's model and task (examples/adex_plugin.py)
    ("adex-delta-t", lambda t: ["validate", AX, "--set", 'model.delta_t="-1 mV"'], 2, "model.delta_t: must be > 0"),
    ("adex-reset-above-peak", lambda t: ["validate", AX, "--set", 'model.v_r="5 mV"'], 2,
     "model.v_r: must be below v_peak"),
    ("adex-dt-too-coarse", lambda t: ["validate", AX, "--set", 'model.dt="1 ms"'], 2, "model.dt: too coarse"),
    ("adex-task-on-rate", lambda t: ["validate", write(t, "cr.toml", f'plugins = ["{ADEX_PLUGIN}"]'
                                                      '\n[task]\nkind = "count_regression"\n[rule]\nkind = "backprop"\n'),
                                     "--plugin", ADEX_PLUGIN], 2,
     "task.kind: 'count_regression' works on spiking models, not on feedforward_rate models"),
    # plugins are code: only files in the protocol's folder run unless the user names them
    ("plugin-outside-folder", lambda t: ["validate", write(t, "o.toml", f'plugins = ["{ADEX_PLUGIN}"]\n')], 2,
     "lies outside the protocol's folder"),
    ("plugin-parent-folder", lambda t: ["validate", write(t, "o.toml", 'plugins = ["../adex_plugin.py"]\n')], 2,
     "lies outside the protocol's folder"),
    ("workers-beyond-memory", lambda t: ["sweep", QS, "--workers", "100000", "--out", str(t / "s")], 2,
     "--workers: 100000 workers need about"),
    ("retry-failed-without-sweep", lambda t: ["run", write(t, "n.toml", '[model]\nfile = "rate_mlp.toml"\n[rule]\n'
                                                             'kind = "backprop"\n'), "--retry-failed"], 2,
     "--retry-failed: resumes a sweep"),
    ("gradcheck-experiment", lambda t: ["gradcheck", "protocols/oua_single_parameter.toml"], 2,
     "task.kind: gradcheck checks the gradient of a trial task's loss; this task is one continuous experiment"),
    ("plugin-unit-error", lambda t: ["run", broken_adex(t), "--quick", "--out", str(t / "out")] + RUNTIME, 2,
     "Brian2 rejected the network's code: DimensionMismatchError: Expression 'e_l - v * second' uses inconsistent "
     "units"),
    ("plugin-module-unnamed", lambda t: ["validate", write(t, "m.toml", 'plugins = ["json"]\n')], 2,
     "is a module, not a file beside the protocol; plugins are code: to run it, give --plugin json"),
] + [(f"plugin-update-{name}", (lambda t, n=name: ["run", plugin_protocol(t, n), "--out", str(t / "out")]), 2,
      fragment) for name, (_, fragment) in FAULTS.items()] + [
    # result paths that could not be written at the end: refused before any work
    ("out-dangling-symlink", lambda t: (os.symlink(t / "nowhere", t / "link"),
                                        ["run", QS, "--quick", "--out", str(t / "link")] + RUNTIME)[1], 2,
     "--out: is a symbolic link"),
    ("out-name-too-long", lambda t: ["run", QS, "--quick", "--out", str(t / ("x" * 240))] + RUNTIME, 2,
     "--out: the folder name is too long"),
    # protocol paths that are no protocol file
    ("protocol-fifo", lambda t: (os.mkfifo(t / "p.toml"), ["validate", str(t / "p.toml")])[1], 2,
     "is not a regular file"),
    ("protocol-device", lambda t: ["run", "/dev/zero", "--out", str(t / "o")], 2, "is not a regular file"),
    ("protocol-huge", lambda t: ["validate", write(t, "big.toml", "# " + "x" * (5 * 2**20) + "\n")], 2,
     "larger than 4 MB"),
    # numbers that mean what they say
    ("divergence", lambda t: ["run", "protocols/wp_vs_np.toml", "--quick", "--out", str(t / "o"), "--set", "rule.lr=1e6",
                              "--set", 'task.duration="20 ms"'] + RUNTIME, 2, "rule.lr: training diverged"),
    ("divergence-in-a-block", lambda t: ["run", QS, "--out", str(t / "o"), "--set", 'training.loop="block"',
                                         "--set", "rule.lr=1e6", "--set", "analysis.every=0", "--set",
                                         "training.trials=20", "--set", 'model.activation="linear"'] + WP_ONLY + RUNTIME,
     2, "rule.lr: training diverged"),
    ("runaway", lambda t: ["run", DR, "--out", str(t / "o"), "--set", "model.n_exc=80", "--set", "model.n_inh=20",
                           "--set", "model.out_degree=10", "--set", 'task.duration="2 s"', "--set",
                           'task.snapshot_every="1 s"', "--set", 'training.max_rate="0.5 Hz"'] + RUNTIME, 2,
     "training.max_rate: runaway activity"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_catalogue(case, tmp_path, capsys):
    name, argv, code, fragment = case
    argv = argv(tmp_path)
    before = set(tmp_path.iterdir())
    brian_files = set(brian_leftovers())
    assert main(argv) == code
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if not line.startswith("loading plugin code: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and fragment in lines[0], lines[0]
    # A run stopped for runaway activity or divergence keeps what it logged in <out>.failed/.
    debris = [p for p in set(tmp_path.iterdir()) - before if p.name not in ("o.failed", "out.failed")]
    assert not debris, debris
    assert not set(brian_leftovers()) - brian_files  # the command wrote no Brian2 debug log or script copy


def brian_leftovers():
    folder = Path(tempfile.gettempdir())  # this test process's own (tests/conftest.py)
    return list(folder.glob("brian_debug_*.log")) + list(folder.glob("brian_script_*.py"))


def test_the_catalogue_is_large():
    assert len(CASES) >= 40


# -- faults that need a process of their own ----------------------------------------------------
LONG = 'name = "long"\n[model]\nfile = "rate_mlp.toml"\n[task]\nduration = "20 ms"\n[rule]\nkind = "weight_perturbation"\n' \
       '[training]\ntrials = 100000\nbackend = "{backend}"\nloop = "trial"\n[analysis]\nevery = 0\n'


def start(tmp_path, backend, out="out", extra=()):
    """``bioplastic run`` of a long protocol in a process (and session) of its own."""
    protocol = tmp_path / "long.toml"
    protocol.write_text(LONG.format(backend=backend))
    return subprocess.Popen([sys.executable, "-m", "bioplastic.cli", "run", str(protocol), "--out", str(tmp_path / out),
                             *extra], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_for_trials(process, folder, seconds=90):
    """Wait until the run is training: its temporary result folder exists and its network has run
    (the standalone scratch or a few seconds of runtime trials)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.communicate())
        started = any(p.name.startswith(".out.tmp-") for p in folder.iterdir())
        in_memory = list(SHM.glob(f"bioplastic-{process.pid}-*")) or not os.access(SHM, os.W_OK)
        if started and (in_memory or "runtime" in folder.joinpath("long.toml").read_text()):
            time.sleep(4)
            return
        time.sleep(0.2)
    raise AssertionError("the run did not start")


@pytest.mark.parametrize("backend,signum,code", [("standalone", signal.SIGTERM, 143), ("runtime", signal.SIGTERM, 143),
                                                  ("standalone", signal.SIGINT, 130), ("standalone", signal.SIGHUP, 129)])
def test_a_signal_stops_the_run_and_leaves_nothing(tmp_path, backend, signum, code):
    process = start(tmp_path, backend)
    wait_for_trials(process, tmp_path)
    os.killpg(process.pid, signum) if signum == signal.SIGINT else process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.toml"]  # no result, no .tmp folder
    assert not list(SHM.glob(f"bioplastic-{process.pid}-*"))


def test_what_kill_9_leaves_is_removed_by_the_next_command(tmp_path, capsys):
    process = start(tmp_path, "standalone")
    wait_for_trials(process, tmp_path)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")]
    scratch = list(SHM.glob(f"bioplastic-{process.pid}-*"))
    assert left and (scratch or not os.access(SHM, os.W_OK))  # what no process can clean up after itself
    live = tmp_path / f".keep.tmp-{os.getpid()}-abcdef01"  # a live process's folder is never touched
    live.mkdir()
    assert main(["run", "protocols/quickstart.toml", "--quick", "--out", str(tmp_path / "out")] + RUNTIME) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")]
    assert not list(SHM.glob(f"bioplastic-{process.pid}-*"))
    assert live.exists()
    assert all(SCRATCH.match(p.name) for p in scratch)


def test_an_interrupted_sweep_keeps_its_finished_variants(tmp_path):
    protocol = tmp_path / "sweep.toml"
    protocol.write_text(LONG.format(backend="runtime").replace("trials = 100000", "trials = 5")
                        + '[sweep]\ncases = [{ label = "short" }, { label = "long", "training.trials" = 100000 }]\n')
    process = subprocess.Popen([sys.executable, "-m", "bioplastic.cli", "run", str(protocol), "--out",
                                str(tmp_path / "out")], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 90
    while not (tmp_path / "out" / "short" / "seed0" / "summary.json").exists():
        assert time.time() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.2)
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143 and err.strip().splitlines()[-1] == "interrupted"
    import json

    import pandas as pd
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["finished"] == 1 and summary["total"] == 2
    assert list(pd.read_csv(tmp_path / "out" / "runs.csv").variant) == ["short"]
    assert not (tmp_path / "out" / "long").exists()
    assert not [p for p in (tmp_path / "out").rglob(".*tmp*")]


def test_the_help_says_what_bioplastic_is_and_lists_every_command(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "biologically plausible learning rules" in text
    for command in ("run", "validate", "gradcheck", "align", "list", "figures"):
        assert f"    {command}" in text
    assert main(["--version"]) == 0 and capsys.readouterr().out.startswith("bioplastic ")
    for command in ("run", "align", "gradcheck"):
        assert main([command, "--help"]) == 0
        assert "(default" in capsys.readouterr().out  # every option says what it does


def test_list_into_a_closed_pipe_exits_quietly():
    done = subprocess.run(f"{sys.executable} -m bioplastic.cli list | head -1", shell=True, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "" and len(done.stdout.splitlines()) == 1


def test_a_loss_that_ends_far_above_its_start_is_flagged():
    import pandas as pd

    from bioplastic.results import loss_warning
    rising = pd.DataFrame(dict(trial=range(20), layer="", metric="loss", value=[0.2] * 10 + [1.0] * 10))
    assert loss_warning(rising) == "final loss 1 is 5.0x the initial 0.2"
    falling = rising.assign(value=rising.value[::-1].to_numpy())
    assert loss_warning(falling) is None


def test_a_failed_compilation_is_one_line_pointing_at_the_log(tmp_path):
    env = dict(os.environ, CXX="/bin/false", BIOPLASTIC_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-m", "bioplastic.cli", "run", "protocols/quickstart.toml", "--quick",
                           "--out", str(tmp_path / "out")], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "the C++ build of the standalone network failed; see" in lines[0], done.stderr
    assert "make.log" in lines[0] and not (tmp_path / "out").exists()
