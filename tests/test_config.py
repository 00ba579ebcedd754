"""Bad input: one line naming the file and the key path, exit status 2, nothing left behind."""

import json
import math

import pandas as pd
import pytest
from brian2 import ms
from hypothesis import given, settings
from hypothesis import strategies as st

from bioplastic.cli import main
from bioplastic.errors import SpecError
from bioplastic.networks import RateModelSpec
from bioplastic.rules.perturbation import NodePerturbationSpec

from conftest import protocol

QUICKSTART = "protocols/quickstart.toml"


@pytest.mark.parametrize("override,key,fragment", [
    ("rule.sigmaa=0.1", "rule.sigmaa", "unknown key"),
    ('rule.kind="hebbian_magic"', "rule.kind", "must be one of"),
    ('model.activation="softplus"', "model.activation", "must be one of linear, tanh, sigmoid, relu"),
    ('model.tau="10 mV"', "model.tau", "dimensions"),
    ("model.sizes=[10,0,2]", "model.sizes", "> 0"),
    ("model.sizes=[10,-3,2]", "model.sizes", "> 0"),
    ("rule.sigma=nan", "rule.sigma", "finite"),
    ("rule.lr=-0.1", "rule.lr", "> 0"),
    ('task.duration="10.5 ms"', "task.duration", "whole number"),
    ('training.backend="gpu"', "training.backend", "must be one of standalone, runtime"),
    ('model.kind="lif"', "model.activation", "unknown key"),  # a rate model's keys on a LIF model
    ("banana=1", "banana", "unknown key"),
    ('task.duration="1 ms"', "task.duration", "at least 2 steps"),
    ("model.file=3", "model.file", "must be the name of a model file"),
    ('rule.kind=["backprop"]', "rule.kind", "must be one of"),
    ('sweep.grid={"rule.lr"=[0.1,0.1]}', "sweep.grid.rule.lr", "lists a value twice"),
    ('sweep.grid={"rule.samples"=[4,4.0]}', "sweep.grid.rule.samples", "lists a value twice"),  # one run twice
    ("sweep.seeds=0", "sweep.seeds", ">= 1"),
    ("training=3", "training", "must be a table"),
    ("training.threads=0", "training.threads", ">= 1"),
    ("training.threads=1.5", "training.threads", "must be an integer"),
])
def test_bad_input_is_one_line_with_file_and_key_path(override, key, fragment, capsys, tmp_path):
    out = tmp_path / "never"
    code = main(["run", QUICKSTART, "--set", override, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert err.startswith(f"error: {QUICKSTART}: {key}: ") and fragment in err, err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_validate_accepts_every_shipped_protocol(capsys):
    from pathlib import Path
    for path in sorted(Path("protocols").glob("*.toml")):
        assert main(["validate", str(path)]) == 0


def test_bad_toml_and_missing_file(tmp_path, capsys):
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    assert main(["validate", str(broken)]) == 2
    assert f"{broken}: invalid TOML" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "absent.toml")]) == 2


def test_spec_errors_name_owner_and_attribute():
    with pytest.raises(SpecError, match=r"NodePerturbationSpec.sigma: must be > 0 \(got -0.1\)"):
        NodePerturbationSpec(sigma=-0.1)
    with pytest.raises(SpecError, match="RateModelSpec.tau: must have the dimensions of"):
        RateModelSpec(tau="5 mV")
    assert RateModelSpec(tau="5 ms").tau == 5 * ms


def test_set_parses_toml_values_and_quantities():
    p = protocol("quickstart.toml", "rule.sigma=0.05", "model.sizes=[3,4,2]", "model.tau=20 ms")
    assert p.variants()[1][2].rule.sigma == 0.05
    assert p.model.sizes == [3, 4, 2] and p.model.tau == 20 * ms


def test_divergence_exits_2_and_leaves_only_its_records(tmp_path, capsys):
    # A sweep whose every run diverged is a failed run: one line, exit 2, and its records (each
    # run's .failed folder, runs.csv) in <out>.failed/, as a single run's.
    out = tmp_path / "run"
    code = main(["run", "protocols/wp_vs_np.toml", "--quick", "--out", str(out), "--set", "rule.lr=1e6",
                 "--set", 'training.backend="runtime"', "--set", 'task.duration="20 ms"'])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "rule.lr: training diverged" in err and err.startswith("error: protocols/wp_vs_np.toml")
    assert len(err.splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["run.failed"]
    runs = pd.read_csv(tmp_path / "run.failed" / "runs.csv")
    assert len(runs) and (runs.status == "failed").all()
    assert json.loads((tmp_path / "run.failed" / "summary.json").read_text())["done"] == 0


def test_quick_shrinks_but_keeps_the_structure():
    full, quick = protocol("wp_vs_np.toml"), protocol("wp_vs_np.toml", quick=True)
    assert quick.training.trials <= 12 < full.training.trials
    assert quick.sweep["seeds"] == 1 and quick.model == full.model
    assert math.isclose(float(quick.task.duration / ms), float(full.task.duration / ms))


def test_quick_reports_bad_types_instead_of_crashing(capsys):
    assert main(["run", QUICKSTART, "--quick", "--set", 'analysis.every="x"']) == 2
    assert "analysis.every: must be an integer" in capsys.readouterr().err


def test_model_file_mistakes_name_the_model_file(tmp_path, capsys):
    model = tmp_path / "m.toml"
    model.write_text('kind = "rate"\nsizes = [3, 2]\nbogus = 1\n')
    assert main(["validate", QUICKSTART, "--set", f'model.file="{model}"']) == 2
    assert capsys.readouterr().err.strip().startswith(f"error: {model}: bogus: unknown key")


def test_unwritable_out_is_one_line(capsys):
    assert main(["run", QUICKSTART, "--quick", "--out", "README.md/x", "--set", 'training.backend="runtime"']) == 2
    assert capsys.readouterr().err.strip() == ("error: --out: cannot create the result folder: 'README.md' is not a "
                                               "folder you may write into (got 'README.md/x')")


@given(st.floats(min_value=1e-6, max_value=1e6, allow_nan=False))
@settings(max_examples=50, deadline=None)
def test_quantities_round_trip_through_their_text(value):
    from bioplastic.units import format_quantity, parse_quantity
    quantity = value * ms
    assert float(parse_quantity(format_quantity(quantity), ms) / ms) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("file,override,key,fragment", [
    ("reward_learning.toml", 'model.tau_m="10 mV"', "model.tau_m", "dimensions"),
    ("reward_learning.toml", 'model.v_th="-50 ms"', "model.v_th", "dimensions"),
    ("reward_learning.toml", 'model.dt="2 ms"', "model.dt", "too coarse"),
    ("reward_learning.toml", 'rule.tau_plus="1 ms"', "rule.tau_plus", "at least 5 dt"),
    ("reward_learning.toml", 'training.max_rate="10 ms"', "training.max_rate", "dimensions"),
    ("reward_learning.toml", 'task.rate_high="40 mV"', "task.rate_high", "dimensions"),
    ("reward_learning.toml", 'sweep.cases=[{"rule.kind"="rstdp"}]', "sweep.cases[0].label", "must name"),
    ("reward_learning.toml", 'sweep.cases=[{label="a"}, {label="a"}]', "sweep.cases", "share a label"),
    ("reward_learning.toml", 'model.w_inh="1 mV"', "model.w_inh", "<= 0"),
    ("reward_learning.toml", "analysis.fd_samples=1", "analysis.fd_samples", ">= 2"),
    ("reward_learning.toml", "analysis.fd_eps=-1.0", "analysis.fd_eps", "> 0"),
    ("reward_learning.toml", "rule.baseline_rate=2.0", "rule.baseline_rate", "(0, 1]"),
    ("reward_learning.toml", 'rule.w_max="-1 mV"', "rule.w_max", "above w_min"),
    ("reward_learning.toml", 'rule.apply="sometimes"', "rule.apply", "must be one of trial_end, online"),
    ("reward_learning.toml", 'rule.third_factor="serotonin"', "rule.third_factor", "must be one of"),
    ("reward_learning.toml", "task.patterns=0", "task.patterns", ">= 1"),
    ("miconi2017_dnms.toml", 'model.tau="30 mV"', "model.tau", "dimensions"),
    ("miconi2017_dnms.toml", "model.g=-1.0", "model.g", ">= 0"),
    ("miconi2017_dnms.toml", 'model.plastic="everything"', "model.plastic", "must be one of"),
    ("miconi2017_dnms.toml", 'model.plastic="readout"', "model.plastic", "no read-out weights to train"),
    ("miconi2017_dnms.toml", 'rule.perturbation_rate="3 ms"', "rule.perturbation_rate", "dimensions"),
    ("miconi2017_dnms.toml", 'rule.perturbation_rate="5 kHz"', "rule.perturbation_rate", "at most one kick"),
    ("miconi2017_dnms.toml", "rule.trace_decay=1.0", "rule.trace_decay", "[0, 1)"),
    ("miconi2017_dnms.toml", 'rule.nonlinearity="square"', "rule.nonlinearity", "must be one of none, cube"),
    ("miconi2017_dnms.toml", 'task.delay="900 ms"', "task.duration", "must hold both stimuli"),
    ("miconi2017_dnms.toml", 'task.error="huber"', "task.error", "must be one of absolute, squared"),
    ("miconi2017_dnms.toml", "model.n_inputs=2", "model.n_inputs", "drives 3 input channels"),
    ("miconi2017_dnms.toml", 'model.readout="neuron0"', "model.readout", "must be one of linear, first_neuron"),
    ("oua_single_parameter.toml", 'rule.sigma="0.3 Hz"', "rule.sigma", "dimensions"),
    ("oua_single_parameter.toml", 'model.tau="100 ms"', "model.tau", "needs tau = dt"),
    ("oua_single_parameter.toml", 'task.record_every="75 ms"', "task.record_every", "whole number"),
    ("hoerzer2014_pattern.toml", 'model.plastic="recurrent"', "model.plastic", "trains the read-out only"),
    ("hoerzer2014_pattern.toml", "task.amplitudes=[1.0]", "task.amplitudes", "one amplitude per frequency"),
    ("hoerzer2014_pattern.toml", 'task.washout="3 s"', "task.washout", "must lie in [0, duration)"),
    ("hoerzer2014_pattern.toml", 'rule.lr_decay_time="20 mV"', "rule.lr_decay_time", "dimensions"),
    ("oua_single_parameter.toml", 'task.omega="0.1 ms"', "task.omega", "dimensions"),
    ("reward_learning.toml", "task.active_fraction=0.0", "task.active_fraction", "(0, 1]"),
    ("reward_learning.toml", 'model.noise="-1 mV"', "model.noise", ">= 0"),
    ("reward_learning.toml", "sweep.cases=[]", "sweep.cases", "must be a list of tables"),
    ("izhikevich2007_distal_reward.toml", 'model.exc_neuron="XX"', "model.exc_neuron", "must be one of RS, FS"),
    ("izhikevich2007_distal_reward.toml", 'task.record_every="0.7 s"', "task.record_every", "divide the duration"),
    ("stdp_window.toml", "task.pairings=0", "task.pairings", ">= 1"),
    ("stdp_window.toml", 'task.duration="1 s"', "task.duration", "must hold the pairing and the reward"),
    ("izhikevich2007_distal_reward.toml", 'model.dt="2 ms"', "model.dt", "shortest synaptic delay"),
    ("izhikevich2007_distal_reward.toml", 'model.delay="1.5 ms"', "model.delay", "whole number"),
    ("izhikevich2007_distal_reward.toml", 'rule.third_factor="reward"', "rule.third_factor", "pulses"),
    ("izhikevich2007_distal_reward.toml", 'task.delay_max="0.5 s"', "task.delay_max", "above delay_min"),
    ("izhikevich2007_distal_reward.toml", "model.recurrent=false", "model.recurrent", "recurrent network"),
    ("izhikevich2007_distal_reward.toml", "task.rewarded_synapse=1000000", "task.rewarded_synapse", "below"),
    ("florian2007_fig1.toml", 'task.pre=["10 mV"]', "task.pre[0]", "dimensions"),
    ("florian2007_fig1.toml", "task.reward_values=[1.0]", "task.reward_values", "one value per reward time"),
    ("florian2007_fig1.toml", "model.sizes=[2, 1]", "model.sizes", "sizes = [1, 1]"),
    ("florian2007_fig1.toml", 'task.post=["250 ms"]', "task.post", "[0, duration)"),
    ("eprop_pattern.toml", 'model.tau_m="20 mV"', "model.tau_m", "dimensions"),
    ("eprop_pattern.toml", 'model.tau_adapt="-5 ms"', "model.tau_adapt", "> 0"),
    ("eprop_pattern.toml", "model.n_adaptive=500", "model.n_adaptive", "<= n_neurons"),
    ("eprop_pattern.toml", 'model.surrogate="relu"', "model.surrogate", "must be one of triangle, fast_sigmoid"),
    ("eprop_pattern.toml", "model.gamma=0.0", "model.gamma", "> 0"),
    ("eprop_pattern.toml", "model.beta=-1.0", "model.beta", ">= 0"),
    ("eprop_pattern.toml", 'rule.feedback="transpose"', "rule.feedback", "must be one of symmetric, random"),
    ("eprop_pattern.toml", 'task.input_rate="2 kHz"', "task.input_rate", "at most one spike"),
    ("eprop_pattern.toml", 'task.input_rate="50 ms"', "task.input_rate", "dimensions"),
    ("eprop_pattern.toml", 'task.input="noise"', "task.input", "must be one of bias, frozen_poisson"),
    ("eprop_pattern.toml", 'analysis.reference="bptt"', "analysis.reference", "always the model family's own"),
    ("miconi2017_dnms.toml", 'analysis.reference="auto"', "analysis.reference", "was removed"),
])
def test_spiking_bad_input_is_one_line(file, override, key, fragment, capsys, tmp_path):
    out = tmp_path / "never"
    code = main(["run", f"protocols/{file}", "--set", override, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: protocols/{file}: {key}: ") and fragment in err, err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("body,key,fragment", [
    ('[model]\nfile = "lif_two_choice.toml"\n[task]\nkind = "teacher_regression"\n[rule]\nkind = "node_perturbation"',
     "task.kind", "works on feedforward_rate models"),
    ('[model]\nfile = "lif_two_choice.toml"\n[task]\nkind = "spike_count"\n[rule]\nkind = "backprop"',
     "rule.kind", "trains feedforward_rate or recurrent_rate or alif models"),
    ('[model]\nfile = "rate_mlp.toml"\n[task]\nkind = "spike_count"\n[rule]\nkind = "node_perturbation"',
     "task.kind", "works on spiking models"),
    ('[model]\nfile = "izhikevich2007_network.toml"\n[task]\nkind = "distal_reward"\n[rule]\nkind = "node_perturbation"',
     "rule.kind", "continuous run"),
    ('[model]\nfile = "lif_two_choice.toml"\n[task]\nkind = "spike_count"\n[rule]\nkind = "rstdp"\n'
     '[analysis]\nreference = "bptt"', "analysis.reference", "always the model family's own"),
    ('[model]\nkind = "alif"\nn_inputs = 3\n[task]\nkind = "dnms"\n[rule]\nkind = "eprop"',
     "task.kind", "squared error"),
    ('[model]\nfile = "miconi2017_network.toml"\n[task]\nkind = "dnms"\n[rule]\nkind = "eprop"',
     "rule.kind", "trains alif models"),
    ('[model]\nkind = "alif"\nn_inputs = 3\n[task]\nkind = "dnms"\n[rule]\nkind = "miconi"',
     "rule.kind", "trains recurrent_rate models"),
    ('[model]\nkind = "alif"\n[task]\nkind = "spike_count"\n[rule]\nkind = "eprop"',
     "task.kind", "works on spiking models"),
])
def test_models_tasks_and_rules_that_do_not_fit_together(body, key, fragment, tmp_path, capsys):
    path = tmp_path / "p.toml"
    path.write_text(body + "\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}: {key}: ") and fragment in err, err


def test_a_swept_key_a_variants_rule_ignores_neither_multiplies_nor_names_it(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[model]\nfile = "rate_mlp.toml"\n[rule]\nkind = "weight_perturbation"\n[sweep]\n'
                    'grid = { "rule.kind" = ["weight_perturbation", "backprop"], "rule.sigma" = [0.01, 0.1] }\n')
    from bioplastic.config import load_protocol
    variants = load_protocol(path).variants()
    assert [label for label, _, _ in variants] == ["kind-weight_perturbation__sigma-0.01",
                                                   "kind-weight_perturbation__sigma-0.1", "kind-backprop"]
    assert variants[2][1] == {"rule.kind": "backprop"}  # runs.csv gets no sigma column value for it
