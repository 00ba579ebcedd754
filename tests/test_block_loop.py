"""Training in blocks of trials per simulation (training.loop = "block") against the trial loop."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bioplastic.cli import main
from bioplastic.engine.block_loop import block_length, uses_block_loop
from bioplastic.engine.trainer import Trainer
from bioplastic.errors import DivergenceError, RunawayError, SpecError
from conftest import rule_protocol

RUNTIME = 'training.backend="runtime"'


def only(kind):
    return f'sweep.grid={{ "rule.kind" = ["{kind}"] }}'


def both_loops(name, kind, *overrides):
    """The metrics of the trial loop and of the block loop on the same protocol and seed."""
    tables = []
    for loop in ("trial", "block"):
        p = rule_protocol(name, kind, only(kind) if name == "quickstart.toml" else "seed=0", *overrides,
                          f'training.loop="{loop}"')
        assert uses_block_loop(p) == (loop == "block")
        tables.append(Trainer(p).train())
    return tables


def assert_same_curves(trial, block, rtol=1e-10):
    # The same rows (trials, metrics, layers) and the same values up to floating-point rounding:
    # both loops draw the same inputs and perturbations; only the order of additions differs.
    assert list(trial.columns) == list(block.columns)
    assert trial[["trial", "layer", "metric"]].equals(block[["trial", "layer", "metric"]])
    np.testing.assert_allclose(block.value.to_numpy(), trial.value.to_numpy(), rtol=rtol, atol=1e-14)


@pytest.mark.parametrize("kind", ["weight_perturbation", "node_perturbation"])
@pytest.mark.parametrize("antithetic", [False, True])
def test_the_block_loop_gives_the_trial_loops_learning_curve(kind, antithetic):
    # 25 trials with the analysis every 10: blocks of 9, 9 and 4 trials (the last padded), the
    # analysis trials 0, 10, 20 through the trial loop; K = 8 and a batch of 8 (quickstart).
    trial, block = both_loops("quickstart.toml", kind, RUNTIME, "training.trials=25", "analysis.every=10",
                              f"rule.antithetic={str(antithetic).lower()}")
    assert set(block.metric) >= {"loss", "cosine"} and (block.metric == "loss").sum() == 25
    assert_same_curves(trial, block)


@pytest.mark.parametrize("credit", ["trial", "example"])
def test_node_perturbation_credit_and_a_fixed_sequence(credit):
    # The temporally extended task: 16 steps as the batch, one reward per trial or per step.
    trial, block = both_loops("zuege2023.toml", "node_perturbation", RUNTIME, "training.trials=30",
                              f'rule.credit="{credit}"', 'sweep.grid={ "task.input_dim" = [4] }',
                              "training.eval_every=4")
    assert sorted(block[block.metric == "loss"].trial) == [*range(0, 30, 4), 29]
    assert_same_curves(trial, block)


def test_the_compiled_block_loop_gives_the_same_curve():
    # The C++ standalone build: the same equivalence, 60 trials in one block, no analysis.
    trial, block = both_loops("quickstart.toml", "weight_perturbation", "training.trials=60", "analysis.every=0")
    assert_same_curves(trial, block, rtol=1e-9)


def test_divergence_inside_a_block_stops_at_the_same_trial_with_the_metrics_kept():
    errors = []
    for loop in ("trial", "block"):
        p = rule_protocol("quickstart.toml", "weight_perturbation", only("weight_perturbation"), RUNTIME,
                          "training.trials=40", "analysis.every=0", "rule.lr=30.0", "training.max_loss=5.0", 'model.activation="linear"',
                          f'training.loop="{loop}"')
        with pytest.raises(DivergenceError) as error:
            Trainer(p).train()
        errors.append(error.value)
    trial, block = errors
    assert block.trial == trial.trial < 39 and f"at trial {trial.trial}" in str(block)
    kept = [pd.DataFrame(e.metrics, columns=["trial", "layer", "metric", "value"]) for e in errors]
    assert_same_curves(*kept)


def test_a_diverged_block_run_is_kept_as_failed(tmp_path, capsys):
    protocol = tmp_path / "diverges.toml"
    protocol.write_text('[model]\nsizes = [10, 20, 2]\nactivation = "linear"\n[task]\nbatch = 4\n'
                        '[rule]\nkind = "weight_perturbation"\nlr = 3.0\nsamples = 2\n'
                        '[training]\ntrials = 40\nbackend = "runtime"\nloop = "block"\nmax_loss = 5.0\n'
                        '[analysis]\nevery = 0\n')
    out = tmp_path / "run"
    assert main(["run", str(protocol), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "training diverged at trial" in err
    failed = list(tmp_path.glob("run*.failed"))
    assert len(failed) == 1 and not out.exists()
    summary = json.loads((failed[0] / "summary.json").read_text())
    metrics = pd.read_csv(failed[0] / "metrics.csv")
    assert summary["status"] == "failed" and summary["failed_at_trial"] == metrics.trial.max() > 0
    assert (metrics.metric == "loss").sum() == summary["failed_at_trial"] + 1  # every trial up to it


@pytest.mark.parametrize("protocol, fragment", [
    ("quickstart.toml", "'backprop' has no block form on feedforward rate models (it applies the reference gradient"),  # a variant
    ("florian2007_fig1.toml", "is not one its block form scores (a reward computed at each trial's end"),
    ("recurrent_rules_dnms.toml", "has no block form on recurrent rate models"),
    ("izhikevich2007_distal_reward.toml", "recurrent E/I spiking networks have no block network yet"),
])
def test_a_rule_or_model_without_a_block_form_is_refused(protocol, fragment, capsys):
    assert main(["validate", f"protocols/{protocol}", "--set", 'training.loop="block"']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "training.loop" in err[0] and fragment in err[0], err


def test_auto_picks_the_block_loop_where_it_applies():
    wp = rule_protocol("quickstart.toml", "weight_perturbation")
    bp = rule_protocol("quickstart.toml", "backprop")
    assert uses_block_loop(wp) and not uses_block_loop(bp)
    assert not uses_block_loop(rule_protocol("quickstart.toml", "weight_perturbation", RUNTIME))
    assert not uses_block_loop(rule_protocol("quickstart.toml", "weight_perturbation", "analysis.every=1"))
    assert block_length(wp, 8 * 240) == 9  # the trials between two analysis trials
    every0 = rule_protocol("quickstart.toml", "weight_perturbation", "analysis.every=0", "training.trials=5000")
    assert block_length(every0, 8 * 240) == 2000  # at most MAX_BLOCK per simulation
    with pytest.raises(SpecError, match="training.loop"):
        rule_protocol("quickstart.toml", "weight_perturbation", 'training.loop="blocks"')


def test_list_rules_says_which_rules_run_in_blocks(capsys):
    assert main(["list", "rules"]) == 0
    out = capsys.readouterr().out
    wp = out[out.index("weight_perturbation"):]
    assert "block loop" in wp[:600]


def test_weights_that_overflow_inside_a_block_name_the_rule():
    # The losses stayed finite but the block's last update did not: the run stops at that trial,
    # blaming the rule, as the trial loop's check of every update does. (A stand-in backend hands
    # back infinite weights; the block's own runs are checked above.)
    from bioplastic.engine import block_loop
    p = rule_protocol("quickstart.toml", "weight_perturbation", only("weight_perturbation"), RUNTIME,
                      'training.loop="block"', "training.trials=3", "analysis.every=0")
    trainer = Trainer(p)

    class Overflowing:
        blueprint = SimpleNamespace(layout=None)

        def run(self, **values):
            return [np.full_like(w, np.inf) for w in values["weights"]], np.zeros((3, 72))

    with pytest.raises(DivergenceError, match="non-finite update at trial 2 .in a block."):
        block_loop._run_block(trainer, Overflowing(), SimpleNamespace(values=lambda rule, layout, noise: {}), 0, 3, 3,
                              [])


# -- R-STDP on spiking networks: the trial's change at its end, the critic in the network -----------
def rstdp_protocol(loop, *overrides):
    """reward_learning's R-STDP case (LIF 20-2, spike_count) in the given loop, on the runtime backend."""
    cases = (f'sweep.cases=[{{label="rstdp", "rule.kind"="rstdp", "training.loop"="{loop}"}}, '
             '{label="wp", "rule.kind"="weight_perturbation", "rule.lr"=200.0}]')
    return rule_protocol("reward_learning.toml", "rstdp", cases, RUNTIME, *overrides)


def rstdp_both_loops(*overrides):
    trainers = [Trainer(rstdp_protocol(loop, *overrides)) for loop in ("trial", "block")]
    assert [uses_block_loop(t.protocol) for t in trainers] == [False, True]
    return trainers, [t.train() for t in trainers]


@pytest.mark.parametrize("overrides", [
    # dopamine, eligibility 500 ms, a reward baseline per pattern; 16 trials with the analysis every
    # 6: blocks of 5, 5 and 3 trials (the last padded)
    ("training.trials=16", "analysis.every=6", "analysis.fd_samples=2"),
    # MSTDP: no eligibility, pairings meet the tonic dopamine; one block of 20
    ('rule.tau_e="0 ms"', "rule.tonic=0.5", "training.trials=20", "analysis.every=0"),
    ('rule.third_factor="reward"', "rule.baseline=false", "training.trials=20", "analysis.every=0"),
])
def test_rstdp_in_blocks_gives_the_trial_loops_learning_curve(overrides):
    # Every trial inside a block starts from the state a run starts from. The input spikes are
    # drawn in advance and the LIF network has no noise: the same numbers to rounding.
    trainers, (trial, block) = rstdp_both_loops(*overrides)
    trials = trainers[0].protocol.training.trials
    assert (block.metric == "loss").sum() == trials and (block.metric == "reward").sum() == trials
    assert_same_curves(trial, block)
    np.testing.assert_allclose(trainers[1].weights[0], trainers[0].weights[0], rtol=1e-10)
    initial = Trainer(trainers[0].protocol).weights[0]
    assert np.abs(trainers[0].weights[0] - initial).max() > 0.1  # it learnt something
    assert trainers[1].rule._baselines.keys() == trainers[0].rule._baselines.keys()
    for c, b in trainers[0].rule._baselines.items():
        assert trainers[1].rule._baselines[c] == pytest.approx(b, rel=1e-12)


def test_rstdp_on_a_plugin_neuron_model_in_blocks():
    # The AdEx model and count task of examples/adex_plugin.py: the block resets the model's own
    # state variables (found in its equations) at every trial's end.
    from conftest import REPO
    from bioplastic.config import load_protocol
    tables = []
    for loop in ("trial", "block"):
        p = load_protocol(REPO / "examples" / "adex_count.toml",
                          [RUNTIME, "training.trials=12", "analysis.every=0",
                           f'sweep.cases=[{{label="r", "rule.kind"="rstdp", "training.loop"="{loop}"}}, '
                           '{label="n", "rule.kind"="node_perturbation", "rule.lr"=200.0}]'])
        p = next(v for _, _, v in p.variants() if v.rule_kind == "rstdp")
        tables.append(Trainer(p).train())
    assert_same_curves(*tables)


def test_runaway_activity_inside_a_block_stops_at_the_trial_loops_trial():
    errors = []
    for loop in ("trial", "block"):
        trainer = Trainer(rstdp_protocol(loop, "training.trials=6", "analysis.every=0", 'training.max_rate="4 Hz"',
                                         'rule.lr="40 mV"', 'rule.w_max="60 mV"'))
        with pytest.raises(RunawayError) as error:
            trainer.train()
        errors.append(error.value)
    trial, block = errors
    # The guard counts spikes in windows of 100 ms from the run's start: in a block they start one
    # step (the lead-in) before the trial, so the stop can come one step earlier.
    assert block.trial == trial.trial
    assert 0 <= float(trial.simulated - block.simulated) <= float(trainer.protocol.model.dt) + 1e-12
    assert len(block.metrics) == len(trial.metrics)


@pytest.mark.parametrize("override, fragment", [
    ("task.batch=2", "task.batch = 1"),
    ('rule.apply="online"', 'rule.apply = "trial_end"'),
])
def test_rstdp_blocks_refuse_what_they_cannot_run(override, fragment):
    with pytest.raises(SpecError, match="training.loop") as error:
        rstdp_protocol("block", override)
    assert fragment in str(error.value)
    assert not uses_block_loop(rstdp_protocol("auto", override, 'training.backend="standalone"'))


# -- WP and NP on spiking networks: the copies' losses and the update in the network ---------------
def perturbation_protocol(kind, loop, *overrides):
    """reward_learning's WP or NP case (LIF 20-2, spike_count, K = 4 antithetic) in the given loop."""
    cases = ('sweep.cases=[{label="r", "rule.kind"="rstdp"}, '
             f'{{label="p", "rule.kind"="{kind}", "rule.lr"=200.0, "training.loop"="{loop}"}}]')
    return rule_protocol("reward_learning.toml", kind, cases, RUNTIME, *overrides)


@pytest.mark.parametrize("kind, overrides", [
    # blocks of 5, 5 and 3 (the last padded) around the analysis trials 0, 6, 12
    ("weight_perturbation", ("training.trials=16", "analysis.every=6", "analysis.fd_samples=2")),
    ("weight_perturbation", ("rule.antithetic=false", "task.batch=2", "training.trials=15", "analysis.every=0")),
    ("node_perturbation", ("training.trials=15", "analysis.every=0")),
    ("node_perturbation", ("rule.antithetic=false", "task.batch=2", "training.trials=15", "analysis.every=0")),
    ("node_perturbation", ('rule.credit="trial"', "task.batch=2", "training.trials=15", "analysis.every=0")),
])
def test_perturbation_rules_in_spiking_blocks_give_the_trial_loops_curve(kind, overrides):
    # The trial loop's perturbations and input spikes, drawn in advance: the same spikes, the same
    # losses, the same update.
    trainers = [Trainer(perturbation_protocol(kind, loop, *overrides)) for loop in ("trial", "block")]
    assert [uses_block_loop(t.protocol) for t in trainers] == [False, True]
    trial, block = (t.train() for t in trainers)
    assert_same_curves(trial, block)
    np.testing.assert_allclose(trainers[1].weights[0], trainers[0].weights[0], rtol=1e-10)
    assert np.abs(trainers[0].weights[0] - Trainer(trainers[0].protocol).weights[0]).max() > 0.1


IZHIKEVICH = """name = "izhikevich_count"
seed = 0
[model]
kind = "izhikevich"
sizes = [20, 5, 2]
dt = "1 ms"
init_mean = "6 mV"
init_std = "2 mV"
[task]
kind = "spike_count"
duration = "100 ms"
target_high = 4.0
[rule]
kind = "{kind}"
lr = 50.0
sigma = 1.0
samples = 2
[training]
trials = 10
backend = "runtime"
loop = "{loop}"
[analysis]
every = 0
"""


@pytest.mark.parametrize("kind", ["weight_perturbation", "node_perturbation"])
def test_perturbation_blocks_on_two_layers_of_izhikevich_neurons(kind, tmp_path):
    # Two weight layers (the hidden layer's drive is a group of copies, the input's of blocks) and
    # Izhikevich's own step and drive.
    from bioplastic.config import load_protocol
    tables, weights = [], []
    for loop in ("trial", "block"):
        (tmp_path / f"{loop}.toml").write_text(IZHIKEVICH.format(kind=kind, loop=loop))
        trainer = Trainer(load_protocol(tmp_path / f"{loop}.toml"))
        tables.append(trainer.train())
        weights.append(trainer.weights)
    assert_same_curves(*tables)
    for w_trial, w_block in zip(*weights):
        np.testing.assert_allclose(w_block, w_trial, rtol=1e-10)


def test_node_perturbation_refuses_blocks_on_a_model_without_its_drive_as_code(capsys):
    # examples/adex_plugin.py's AdEx model gives its drive in NumPy only: NP trains it in the trial loop.
    assert main(["validate", "examples/adex_count.toml", "--set", 'training.loop="block"']) == 2
    err = capsys.readouterr().err
    assert "the block form of 'node_perturbation' needs the presynaptic drive as code" in err, err
    p = next(v for _, _, v in protocol_file("examples/adex_count.toml").variants() if v.rule_kind == "node_perturbation")
    assert not uses_block_loop(p) and p.training.backend == "standalone"


def protocol_file(path, *overrides):
    from conftest import REPO
    from bioplastic.config import load_protocol
    return load_protocol(REPO / path, overrides)


@pytest.mark.slow
def test_rstdp_in_compiled_blocks_gives_the_same_curve():
    # The C++ standalone build of the same equivalence: 200 trials in one block (two builds, about a minute).
    tables = [Trainer(rule_protocol("reward_learning.toml", "rstdp", "training.trials=200", "analysis.every=0",
                                    f'sweep.cases=[{{label="r", "rule.kind"="rstdp", "training.loop"="{loop}"}}, '
                                    '{label="w", "rule.kind"="weight_perturbation", "rule.lr"=200.0}]')).train()
              for loop in ("trial", "block")]
    assert_same_curves(*tables, rtol=1e-9)


# -- the reward-modulated Hebbian family on recurrent rate networks --------------------------------
def hebbian_protocol(kind, loop, *overrides):
    """Quick DNMS on 20 units with no randomness inside the run (no private noise, no initial
    spread, kicks of amplitude 0): the trial loop and the block loop then see the same trials."""
    from conftest import protocol
    return protocol("miconi2017_dnms.toml", RUNTIME, "training.trials=12", "analysis.every=0",
                    "training.eval_every=1", "model.n_neurons=20", "model.x_init=0.0", "model.noise=0.0",
                    f'rule.kind="{kind}"', "rule.perturbation_rate=\"100 Hz\"", "rule.perturbation_amplitude=0.0",
                    f'training.loop="{loop}"', *overrides, quick=True)


@pytest.mark.parametrize("kind,overrides", [
    ("miconi", ('rule.baseline="running"', "rule.warmup=3", "rule.lr=10.0", "rule.max_change=0.001")),
    ("miconi", ("rule.warmup=2", "rule.lr=10.0", "rule.max_change=0.0005")),  # a baseline per trial type
    # no warm-up, no clip, no error-trace factor, no cube (the protocol file sets Miconi's)
    ("exploratory_hebbian", ("rule.lr=0.05", "rule.trace_decay=0.9", "rule.warmup=0", "rule.max_change=0.0",
                             "rule.scale_by_error=false", 'rule.nonlinearity="none"')),
])
def test_hebbian_rules_in_blocks_give_the_trial_loops_curve(kind, overrides):
    # 12 trials in one block: each trial starts from the state of a run, reads its own rows of the
    # stimulus and target tables, and the update, the clip, the warm-up and the critic of every
    # trial type are computed in the network as RewardModulatedHebbian.update and observe do.
    trainers, tables = [], []
    for loop in ("trial", "block"):
        trainer = Trainer(hebbian_protocol(kind, loop, *overrides))
        assert uses_block_loop(trainer.protocol) == (loop == "block")
        if "per_condition" == trainer.rule.spec.baseline:  # baselines that the first trials do not meet
            trainer.rule.baselines = {0: -0.5, 1: -1.0, 3: -0.2}
        tables.append(trainer.train())
        trainers.append(trainer)
    trial, block = tables
    assert (block.metric == "loss").sum() == 12 and (block.metric == "error_AB").sum() > 0
    assert_same_curves(trial, block)
    initial = Trainer(trainers[0].protocol).weights[0]
    assert np.abs(trainers[0].weights[0] - initial).max() > 1e-4  # it learnt something
    np.testing.assert_allclose(trainers[1].weights[0], trainers[0].weights[0], rtol=1e-10, atol=1e-14)
    a, b = (t.rule for t in trainers)
    assert a.trials_seen == b.trials_seen == 12 and a.baselines.keys() == b.baselines.keys()
    for key, value in a.baselines.items():
        assert b.baselines[key] == pytest.approx(value, rel=1e-12)
    if a.spec.max_change > 0:  # no weight moved more than the clip allows after the warm-up
        assert np.abs(trainers[1].weights[0] - initial).max() <= (12 - a.spec.warmup) * a.spec.max_change + 1e-15


def test_each_trial_of_a_recurrent_block_draws_its_own_initial_state():
    # With x_init > 0 the trials of a block start from fresh draws: the same trial type gives
    # different losses, as in the trial loop (where every run draws its own).
    trainer = Trainer(hebbian_protocol("miconi", "block", "model.x_init=0.5", "rule.warmup=100"))
    losses = trainer.train().query("metric == 'loss'").value.to_numpy()
    same_type = losses[0::4]  # the types come in turn
    assert len(set(np.round(same_type, 12))) == len(same_type)


@pytest.mark.parametrize("overrides,message", [
    (("task.batch=2",), "the block form of 'miconi' trains one example per trial (task.batch = 1)"),
])
def test_hebbian_blocks_refuse_what_they_do_not_compute(overrides, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        hebbian_protocol("miconi", "block", *overrides)


def assert_block_loop_repeats_the_trial_loop(make_protocol, learnt=1e-4):
    """Train ``make_protocol(loop)`` in the trial loop and in blocks: the same metrics and final
    weights to 1e-10, and some weight moved by more than ``learnt``. Returns the block's metrics."""
    tables, weights = [], []
    for loop in ("trial", "block"):
        p = make_protocol(loop)
        assert uses_block_loop(p) == (loop == "block")
        trainer = Trainer(p)
        tables.append(trainer.train())
        weights.append(trainer.weights)
    assert_same_curves(*tables)
    initial = Trainer(p).weights
    assert max(np.abs(w - w0).max() for w, w0 in zip(weights[0], initial)) > learnt  # it learnt
    for a, b in zip(*weights):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-14)
    return tables[1]


def eprop_protocol(loop, *overrides, backend="runtime"):
    """e-prop on a small eprop_pattern: 24 LIF neurons, 16 frozen Poisson inputs, 150 ms trials."""
    from conftest import protocol
    p = protocol("eprop_pattern.toml", f'training.backend="{backend}"', "training.trials=10", "analysis.every=0",
                 'sweep.cases=[{ label = "eprop", "rule.kind" = "eprop" }]', "model.n_neurons=24",
                 "model.n_inputs=16", 'task.duration="150 ms"', f'training.loop="{loop}"', *overrides)
    return next(v for _, _, v in p.variants())


@pytest.mark.parametrize("overrides", [
    (),  # symmetric feedback (the read-out weights themselves), recurrent and read-out weights
    ('rule.feedback="random"', 'model.plastic="all"'),
    ("model.n_adaptive=8", 'model.plastic="recurrent"', "rule.lr=0.05"),  # ALIF neurons, a fixed read-out
])
def test_eprop_in_blocks_gives_the_trial_loops_curve(overrides):
    # 10 trials in one block: every trial starts from zero states and traces, reads its own rows
    # of the stimulus and target tables, and the weights step by -lr g at each trial's end. With no
    # randomness inside the run the two loops see the same trials: the same numbers to rounding.
    block = assert_block_loop_repeats_the_trial_loop(lambda loop: eprop_protocol(loop, *overrides), learnt=1e-3)
    assert (block.metric == "loss").sum() == 10


def test_compiled_eprop_blocks_give_the_numpy_curve():
    # The C++ code of the dense eligibility (networks/dense.py) and of the block form against
    # the numpy target's; spikes make a rounding difference grow, so only a few trials.
    tables = [Trainer(eprop_protocol("block", "training.trials=4", backend=backend)).train()
              for backend in ("standalone", "runtime")]
    assert_same_curves(*tables, rtol=1e-9)


@pytest.mark.parametrize("overrides,message", [
    (("task.batch=2",), "the block form of 'eprop' trains one example per trial (task.batch = 1)"),
    (('sweep.cases=[{ label = "bp", "rule.kind" = "backprop" }]',),
     "'backprop' has no block form on alif models"),
])
def test_alif_blocks_refuse_what_they_do_not_compute(overrides, message):
    from conftest import protocol
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        protocol("eprop_pattern.toml", "analysis.every=0", 'training.loop="block"', *overrides)


def test_compiled_hebbian_blocks_give_the_numpy_curve():
    # The C++ code of the dense recurrent current and eligibility (networks/dense.py) and of the
    # block form against the numpy target's: the same table to rounding (C++ sums in another order).
    overrides = ('rule.baseline="running"', "rule.warmup=3", "rule.lr=10.0", "rule.max_change=0.001")
    tables = [Trainer(hebbian_protocol("miconi", "block", *overrides, f'training.backend="{backend}"')).train()
              for backend in ("standalone", "runtime")]
    assert_same_curves(*tables, rtol=1e-9)


def small_dnms_protocol(kind, rule, backend, loop, *overrides):
    """``kind`` with the sweep-case keys ``rule`` on DNMS with 20 rate units, 300-ms trials and no
    randomness inside the run (no initial spread); a gain below 1: in a chaotic network the two
    loops' different rounding of the update grows to 1e-8 within 8 trials."""
    from conftest import protocol
    p = protocol("recurrent_rules_dnms.toml", f'training.backend="{backend}"', "training.trials=8", "analysis.every=0",
                 "model.n_neurons=20", "model.g=0.8", "model.x_init=0.0", 'task.duration="300 ms"',
                 'task.stimulus="60 ms"', 'task.delay="60 ms"', 'task.response="60 ms"', f'rule.kind="{kind}"',
                 f'sweep.cases=[{{ label = "p", "rule.kind" = "{kind}", "rule.lr" = 0.02, {rule} }}]',
                 f'training.loop="{loop}"', *overrides)
    return next(v for _, _, v in p.variants())


@pytest.mark.parametrize("kind, rule, overrides", [
    ("weight_perturbation", '"rule.sigma" = 0.05, "rule.samples" = 2, "rule.antithetic" = true', ()),
    ("node_perturbation", '"rule.sigma" = 0.05, "rule.samples" = 2, "rule.credit" = "example"', ()),
    ("node_perturbation", '"rule.sigma" = 0.05, "rule.samples" = 3', ('model.readout="linear"', 'model.plastic="readout"')),
])
def test_perturbation_rules_in_recurrent_rate_blocks_give_the_trial_loops_curve(kind, rule, overrides):
    # Two examples a trial: WP's and NP's block forms on the recurrent rate block network give the
    # trial loop's curve and weights, their noise drawn in advance.
    assert_block_loop_repeats_the_trial_loop(
        lambda loop: small_dnms_protocol(kind, rule, "runtime", loop, "task.batch=2", *overrides))


@pytest.mark.parametrize("kind, rule", [
    ("weight_perturbation", '"rule.lr" = 1e-5, "rule.sigma" = 0.02, "rule.samples" = 2'),
    ("node_perturbation", '"rule.lr" = 1e-3, "rule.sigma" = 0.05, "rule.samples" = 2, "rule.antithetic" = true'),
])
def test_perturbation_rules_in_alif_blocks_give_the_trial_loops_curve(kind, rule):
    # The same on the LIF network of eprop_pattern (recurrent and read-out weights plastic).
    assert_block_loop_repeats_the_trial_loop(lambda loop: eprop_protocol(
        loop, "training.trials=6", f'sweep.cases=[{{ label = "p", "rule.kind" = "{kind}", {rule} }}]'))


def test_compiled_perturbation_blocks_on_a_recurrent_rate_network_give_the_numpy_curve():
    tables = [Trainer(small_dnms_protocol("node_perturbation", '"rule.sigma" = 0.05', backend, "block",
                                          "training.trials=4")).train()
              for backend in ("standalone", "runtime")]
    assert_same_curves(*tables, rtol=1e-9)
