"""One engine: family adapters, registries of tasks, model kinds, figures and block forms, and a
plugin (examples/adex_plugin.py) that adds a neuron model and a task without editing bioplastic."""

import re
import subprocess
import sys

import numpy as np
import pytest
from brian2 import mV

from bioplastic.cli import main
from bioplastic.config import load_protocol
from bioplastic.engine.backends import get_backend
from bioplastic.engine.trainer import Trainer
from bioplastic.networks import MODEL_KINDS, register_model_kind
from bioplastic.networks.spiking_network import SpikingBlueprint
from bioplastic.registry import BACKENDS, FAMILIES, Registry
from bioplastic.rules import RULES, register_rule
from bioplastic.rules.builders import block_families, block_unsupported, find_block_builder
from bioplastic.rules.perturbation import WeightPerturbation
from bioplastic.tasks import TASKS, register_task

from conftest import REPO, rule_protocol

EXAMPLE = REPO / "examples" / "adex_count.toml"
PACKAGE = REPO / "bioplastic"


def adex_protocol(kind, *overrides):
    """The example's variant that trains with ``kind``, on the runtime backend (numpy target)."""
    swept = load_protocol(EXAMPLE, ('training.backend="runtime"', *overrides))
    return next(v for _, _, v in swept.variants() if v.rule_kind == kind)


# -- the engine names no family -------------------------------------------------------------------
def test_engine_and_cli_branch_on_no_model_family():
    sources = [*sorted((PACKAGE / "engine").glob("*.py")), PACKAGE / "cli.py"]
    pattern = re.compile(r"family\s*(==|!=|\bin\b)|RECURRENT_FAMILIES|\"alif\"|\"recurrent_rate\"")
    found = [f"{path.name}:{n}: {line.strip()}" for path in sources if path.name != "families.py"
             for n, line in enumerate(path.read_text().splitlines(), start=1) if pattern.search(line)]
    assert found == []


@pytest.mark.parametrize("module, forbidden", [
    ("bioplastic.config", ("bioplastic.engine",)),
    ("bioplastic.plotting", ("bioplastic.engine", "bioplastic.networks")),
])
def test_layering(module, forbidden):
    # A module's own imports (not those of the package's __init__, which registers the engine):
    # its source names none of the forbidden modules.
    source = (REPO / (module.replace(".", "/") + ".py")).read_text()
    relative = {"bioplastic.engine": r"from \.engine|from \.\.engine|import bioplastic\.engine",
                "bioplastic.networks": r"from \.networks|from \.\.networks|import bioplastic\.networks"}
    for name in forbidden:
        assert not re.search(relative[name], source), f"{module} imports {name}"


def test_no_import_cycle_between_the_block_loop_and_the_trainer():
    # Each imports on its own in a fresh interpreter (a cycle shows as a partially initialised module).
    for module in ("bioplastic.engine.block_loop", "bioplastic.engine.trainer", "bioplastic.config"):
        done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_every_model_kind_has_a_registered_family_adapter():
    for kind, spec_class in MODEL_KINDS.items():
        assert spec_class.family in FAMILIES, kind
    assert set(BACKENDS) == {"standalone", "runtime"}


# -- registries refuse what they should ---------------------------------------------------------
def test_a_registry_refuses_a_second_entry_unless_told_to_override():
    registry = Registry("widget")
    registry.register("a", 1)
    with pytest.raises(ValueError, match="widget 'a' is registered already"):
        registry.register("a", 2)
    registry.register("a", 2, override=True)
    assert registry["a"] == 2
    with pytest.raises(ValueError, match="widget: must be one of a .got 'b'."):
        registry.get_entry("b")


def test_register_task_and_model_kind_check_what_they_register():
    from bioplastic.tasks.teacher import TeacherRegression

    class NoKind(TeacherRegression):
        kind = ""

    with pytest.raises(ValueError, match="NoKind.kind: must name the task"):
        register_task(NoKind)
    with pytest.raises(TypeError, match="subclass of bioplastic.tasks.Task"):
        register_task(object)
    with pytest.raises(ValueError, match="task 'teacher_regression' is registered already"):
        class Again(TeacherRegression):
            pass
        register_task(Again)

    class NoFamily:
        kind = "nofamily"

    with pytest.raises(ValueError, match="NoFamily.family: must be a string"):
        register_model_kind(NoFamily)


def test_a_model_kind_of_an_unknown_family_is_refused_by_key(tmp_path, capsys):
    import dataclasses
    from bioplastic.networks.spiking import LifModelSpec

    @dataclasses.dataclass(frozen=True)
    class Orphan(LifModelSpec):
        kind = "orphan"
        family = "no_such_family"

    register_model_kind(Orphan)
    try:
        path = tmp_path / "o.toml"
        path.write_text('[model]\nkind = "orphan"\n[task]\nkind = "spike_count"\n[rule]\nkind = "rstdp"\n')
        assert main(["validate", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "model.kind: 'orphan' is a model of the family 'no_such_family'" in err[0], err
    finally:
        MODEL_KINDS.pop("orphan", None)


# -- block forms are builders registered for (rule, family) ------------------------------------
def test_a_subclass_inherits_a_block_form_only_while_it_keeps_the_update():
    class Keeps(WeightPerturbation):
        kind = "keeps_wp"

    class Overrides(WeightPerturbation):
        kind = "overrides_wp"

        def update(self, trial, perturbation):
            return [2 * u for u in super().update(trial, perturbation)]

    assert find_block_builder(Keeps, "feedforward_rate") is find_block_builder(WeightPerturbation, "feedforward_rate") is not None
    assert find_block_builder(Overrides, "feedforward_rate") is None
    assert block_families(Keeps) == ["alif", "feedforward_rate", "recurrent_rate", "spiking"] and block_families(Overrides) == []
    model = rule_protocol("quickstart.toml", "weight_perturbation").model
    from bioplastic.tasks.teacher import TeacherRegression
    assert block_unsupported(Keeps, model, TeacherRegression) is None
    assert "it overrides update of 'weight_perturbation', whose block form computes them" in block_unsupported(
        Overrides, model, TeacherRegression)


def test_a_subclass_of_rstdp_with_its_own_critic_does_not_inherit_the_block_form():
    # R-STDP's block form keeps the baseline (observe) and the rule's run values in the network.
    from bioplastic.rules.rstdp import RSTDP

    class OwnCritic(RSTDP):
        kind = "own_critic"

        def observe(self, trial):
            pass

    class Renamed(RSTDP):
        kind = "renamed_rstdp"

    assert find_block_builder(Renamed, "spiking") is find_block_builder(RSTDP, "spiking") is not None
    assert find_block_builder(OwnCritic, "spiking") is None
    model = rule_protocol("reward_learning.toml", "rstdp").model
    from bioplastic.tasks.spike_count import SpikeCount
    assert "it overrides observe of 'rstdp'" in block_unsupported(OwnCritic, model, SpikeCount)


def test_a_plugin_subclass_of_wp_trains_in_blocks_like_the_built_in_rule():
    # The same trials, to rounding: the inherited block form computes the update the subclass keeps.
    class Subclassed(WeightPerturbation):
        kind = "subclassed_wp"
        description = "WP under another name"

    register_rule(Subclassed, override=True)
    try:
        def trainer(kind):
            return Trainer(rule_protocol("quickstart.toml", kind, f'sweep.grid={{ "rule.kind" = ["{kind}"] }}',
                                         'training.backend="runtime"', 'training.loop="block"', "training.trials=6",
                                         "analysis.every=0"))

        built_in, plugin = trainer("weight_perturbation"), trainer("subclassed_wp")
        assert type(plugin.rule) is Subclassed
        a, b = built_in.train(), plugin.train()
        assert len(a) and np.allclose(a.value, b.value, rtol=1e-10, atol=1e-12)
        for wa, wb in zip(built_in.weights, plugin.weights):
            assert np.allclose(wa, wb, rtol=1e-10, atol=1e-12)
    finally:
        RULES.pop("subclassed_wp", None)


# -- the plugin: a neuron model and a task of one's own -----------------------------------------
def test_the_plugin_registers_its_model_and_task_and_list_shows_them():
    # In a fresh process: `list --plugins` loads the plugin, and its model and task are listed.
    plugin = str(REPO / "examples" / "adex_plugin.py")
    done = subprocess.run([sys.executable, "-m", "bioplastic.cli", "list", "--plugins", plugin], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert 'kind = "adex"' in done.stdout and 'kind = "count_regression"' in done.stdout
    assert "delta_t = " in done.stdout  # the model's own keys, with their defaults
    load_protocol(EXAMPLE)  # a protocol naming the plugin registers them in this process too
    assert "adex" in MODEL_KINDS and "count_regression" in TASKS


def test_adex_dynamics_in_brian2_equal_its_numpy_step():
    # Three neurons driven by constant currents below, near and above rheobase (2000 Euler steps,
    # several spikes with resets and adaptation). The same step in both: equal to rounding (1e-12 V).
    spec = adex_protocol("rstdp").model
    spec = type(spec)(sizes=[1, 3], dt=spec.dt, init_mean=0 * mV, init_std=0 * mV)
    steps, drive = 2000, np.array([15.0, 30.0, 60.0])

    def monitor(recipe, layout):
        recipe.monitor("membrane", "layer1", variables=("v", "w_ad"))

    backend = get_backend("runtime", SpikingBlueprint(spec, 1, steps, contributors=[monitor]))
    observed = backend.run(weights=[np.zeros((1, 3, 1))], inputs=np.zeros((1, steps, 1)), perts=[drive[None]],
                           values={("guard", "max_rate"): 1e9})
    state = dict(v=np.full(3, float(spec.e_l)), w_ad=np.zeros(3), I_syn=np.zeros(3))
    v, w, spikes = [], [], 0
    for _ in range(steps):  # the monitor records at the end of every step
        state, spiked = spec.numpy_step(state, drive * 1e-3, float(spec.dt))
        v.append(state["v"])
        w.append(state["w_ad"])
        spikes += spiked
    assert spikes[0] == 0 and 3 <= spikes[1] < spikes[2]  # silent, firing, firing faster (0, 6, 31)
    assert np.abs(np.array(v) - observed.monitors["membrane"]["v"]).max() < 1e-12
    assert np.abs(np.array(w) - observed.monitors["membrane"]["w_ad"]).max() < 1e-12


@pytest.mark.parametrize("kind", ["rstdp", "node_perturbation"])
def test_a_plugin_neuron_model_trains_on_a_plugin_task(kind):
    # Ten trials: every one scored, and the rule's updates reach the AdEx network's weights (its
    # learning is measured below, in the slow test).
    trainer = Trainer(adex_protocol(kind, "training.trials=10"))
    before = [w.copy() for w in trainer.weights]
    metrics = trainer.train()
    loss = metrics[metrics.metric == "loss"].value.to_numpy()
    assert len(loss) == 10 and np.all(np.isfinite(loss)) and loss.max() > 0
    assert not all(np.allclose(a, b) for a, b in zip(before, trainer.weights))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["rstdp", "node_perturbation"])
def test_a_plugin_neuron_model_learns_a_plugin_task(kind):
    # 120 trials of the example (seed 1). The mean loss of the last 30 trials over that of the first
    # 30, measured on seeds 1-6 (`bioplastic sweep examples/adex_count.toml --seeds 6 --set
    # training.trials=120`): R-STDP 0.45-0.88 (seed 1: 0.77), NP 0.21-0.67 on five seeds and 1.12
    # on the one that had learned within its first 30 trials (seed 1: 0.21). Single-trial losses
    # are noisy (two patterns, spike counts), so the test asks for a fall of 10% on seed 1.
    trainer = Trainer(adex_protocol(kind, "training.trials=120"))
    metrics = trainer.train()
    loss = metrics[metrics.metric == "loss"].value.to_numpy()
    assert len(loss) == 120 and np.all(np.isfinite(loss))
    assert loss[-30:].mean() < 0.9 * loss[:30].mean(), (loss[:30].mean(), loss[-30:].mean())


def test_the_example_protocol_runs_quick(tmp_path):
    assert main(["run", str(EXAMPLE), "--quick", "--out", str(tmp_path / "out"), "--set",
                 'training.backend="runtime"']) == 0
    assert (tmp_path / "out" / "runs.csv").exists()
