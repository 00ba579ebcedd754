"""Rule maths on hand-computed values, unbiasedness over many seeded samples, and real updates."""

from types import SimpleNamespace

import numpy as np
import pytest

from bioplastic.networks.rate import Observation
from bioplastic.engine.trainer import Trainer
from bioplastic.gradients import Gradient
from bioplastic.networks.rate_math import forward
from bioplastic.rules import RULES, Perturbation, TrialData
from bioplastic.rules.perturbation import loss_differences, signed_variants, zeroth_order_estimate

from conftest import rule_protocol


def _spec(kind, **values):
    return RULES[kind].spec_class(**values)


def test_signed_variants_and_loss_differences_known_values():
    noise = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(signed_variants(noise, False), [[0, 0], [1, 2], [3, 4]])
    np.testing.assert_array_equal(signed_variants(noise, True), [[0, 0], [1, 2], [3, 4], [-1, -2], [-3, -4]])
    np.testing.assert_allclose(loss_differences(np.array([1.0, 1.5, 0.5]), 2, False), [0.5, -0.5])
    np.testing.assert_allclose(loss_differences(np.array([9.0, 2.0, 3.0, 1.0, 4.0]), 2, True), [0.5, -0.5])


def test_zeroth_order_estimate_known_value():
    # (1 / (K sigma^2)) sum_k xi_k dL_k = 2 * (0.1 [1, 2] - 0.2 [3, 4]) = [-1.0, -1.2]
    got = zeroth_order_estimate(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.1, -0.2]), 0.5)
    np.testing.assert_allclose(got, [-1.0, -1.2])


def test_weight_perturbation_update_known_value():
    rule = RULES["weight_perturbation"](_spec("weight_perturbation", lr=0.5, sigma=1.0, samples=1))
    trial = TrialData(weights=[np.zeros((1, 2))], losses=np.array([[1.0], [1.5]]), final=[])
    update = rule.update(trial, Perturbation(noise=[np.array([[[1.0, 0.0]]])]))
    np.testing.assert_allclose(update[0], [[-0.25, 0.0]])  # -lr * xi * dL / sigma^2


def test_node_perturbation_update_known_value():
    rule = RULES["node_perturbation"](_spec("node_perturbation", lr=1.0, sigma=1.0, samples=1))
    noise = [np.array([[[2.0], [1.0]]])]  # (K=1, batch=2, n_out=1)
    losses = np.array([[1.0, 1.0], [1.4, 0.8]])  # dL per example / batch = [0.2, -0.1]
    pre = np.array([[[1.0, 0.0], [0.0, 2.0]]] * 2)  # (variants, batch, n_in); clean copy used
    trial = TrialData(weights=[np.zeros((1, 2))], losses=losses, final=[pre, np.zeros((2, 2, 1))])
    update = rule.update(trial, Perturbation(noise=noise))
    # node gradients [0.4, -0.1]; dW = -(0.4 [1, 0] - 0.1 [0, 2]) = [-0.4, 0.2]
    np.testing.assert_allclose(update[0], [[-0.4, 0.2]])


def test_backprop_update_is_minus_lr_times_gradient():
    rule = RULES["backprop"](_spec("backprop", lr=0.1))
    g = [np.array([[1.0, -2.0]])]
    trial = TrialData(weights=[np.zeros((1, 2))], losses=None, final=[], gradient=Gradient(g, []))
    np.testing.assert_allclose(rule.update(trial, Perturbation())[0], [[-0.1, 0.2]])


class NumpyBackend:
    """Runs the copies with the NumPy Euler maths, which a test shows equal to Brian2's."""

    def __init__(self, model, steps, copies):
        self.model, self.steps, self.copies = model, steps, copies
        self.blueprint = SimpleNamespace(layout=None, with_rule=False, copies=copies)

    def run(self, weights, inputs, perts=None, values=None, seed=0):
        assert not values
        final = forward(weights, inputs, self.model.activation, self.model.a, self.steps, perts)
        return Observation(final, None)


@pytest.mark.parametrize("kind", ["weight_perturbation", "node_perturbation"])
@pytest.mark.parametrize("antithetic", [True, False])
def test_expected_update_points_along_the_gradient(kind, antithetic):
    # The mean of K single-direction estimates is the K-sample estimate: draw K = 40000 at once.
    # Its error has sd ~ |g| sqrt((D_eff + 1) / K) (about 0.03 |g| here); allow 5 sd, plus the
    # O(sigma) bias of the one-sided estimate.
    samples = 40000
    overrides = [f"rule.samples={samples}", f"rule.antithetic={str(antithetic).lower()}", "model.sizes=[3,4,2]",
                 "task.batch=2", 'task.duration="40 ms"', 'training.backend="runtime"']
    # The reference gradient from BPTT through a Brian2 run of the clean network ...
    reference = Trainer(rule_protocol("wp_vs_np.toml", "backprop", *overrides))
    trainer = Trainer(rule_protocol("wp_vs_np.toml", kind, *overrides))
    batch = trainer.task.sample(trainer.input_rng)
    trial, _ = reference.step(batch, with_gradient=True)
    # ... and the rule's estimate from 2K + 1 copies, run with the NumPy maths for speed.
    trainer.backend = NumpyBackend(trainer.protocol.model, trainer.steps, trainer.backend.copies)
    _, update = trainer.step(batch, with_gradient=False)
    estimate = np.concatenate([-u.ravel() / trainer.rule.spec.lr for u in update])
    gradient = np.concatenate([g.ravel() for g in trial.gradient.weights])
    error = np.linalg.norm(estimate - gradient) / np.linalg.norm(gradient)
    assert error < 0.15, error
    assert estimate @ gradient / np.linalg.norm(estimate) / np.linalg.norm(gradient) > 0.98


@pytest.mark.parametrize("kind", ["weight_perturbation", "node_perturbation", "backprop"])
def test_every_rule_changes_the_weights_and_lowers_the_loss(kind):
    trainer = Trainer(rule_protocol("quickstart.toml", kind, "model.sizes=[4,6,2]", "task.batch=4", "rule.lr=0.2",
                                    'training.backend="runtime"', "training.trials=40", "analysis.every=0",
                                    'task.duration="20 ms"'))
    before = [w.copy() for w in trainer.weights]
    metrics = trainer.train()
    assert all(np.abs(a - b).max() > 1e-4 for a, b in zip(trainer.weights, before))
    loss = metrics[metrics.metric == "loss"].value.to_numpy()
    assert loss[-10:].mean() < loss[:10].mean()


def test_standalone_and_runtime_trainers_write_the_same_table():
    # Same seed, same protocol, two backends: the tables agree to rounding (C++ vs NumPy sums).
    overrides = ["model.sizes=[4,6,2]", "task.batch=3", 'task.duration="20 ms"', "training.trials=6",
                 "analysis.every=2"]
    tables = [Trainer(rule_protocol("quickstart.toml", "node_perturbation", *overrides,
                                    f'training.backend="{backend}"')).train()
              for backend in ("standalone", "runtime")]
    assert tables[0][["trial", "layer", "metric"]].equals(tables[1][["trial", "layer", "metric"]])
    np.testing.assert_allclose(tables[0].value, tables[1].value, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("loop", ["trial", "block"])
def test_trials_of_another_length_do_not_reuse_a_network_built_for_this_one(loop):
    # The run's duration is built into the network: a protocol that differs only in its trials'
    # length must get a network of its own, not the open one of the same structure (which ran the
    # 20 ms trials where 60 ms were asked: a different loss from the first trial on).
    from bioplastic.engine import backends

    def losses(duration):
        trainer = Trainer(rule_protocol("quickstart.toml", "weight_perturbation", 'training.backend="runtime"',
                                        "training.trials=2", "analysis.every=0", f'training.loop="{loop}"',
                                        f'task.duration="{duration}"', 'sweep.grid={"rule.kind"=["weight_perturbation"]}'))
        return trainer.train().query("metric == 'loss'").value.to_numpy()

    for backend in list(backends._open.values()):
        backend.close()
    alone = losses("60 ms")
    for backend in list(backends._open.values()):
        backend.close()
    short = losses("20 ms")
    np.testing.assert_array_equal(losses("60 ms"), alone)
    assert not np.allclose(short, alone)
