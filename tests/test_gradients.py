"""The BPTT reference against finite differences: of the NumPy maths, and of the Brian2 simulation."""

import numpy as np
import pytest

from bioplastic.cli import main
from bioplastic.gradients import bptt
from bioplastic.networks import RateModelSpec, init_weights
from bioplastic.networks.rate_math import forward
from bioplastic.tasks import TeacherRegression


@pytest.mark.parametrize("act", ["linear", "tanh", "sigmoid", "relu"])
def test_bptt_matches_central_differences_of_the_euler_maths(act):
    rng = np.random.default_rng(0)
    spec = RateModelSpec(sizes=[4, 5, 3], activation=act)
    weights, steps = init_weights(spec, rng), 15
    inputs, targets = rng.normal(size=(2, 4)), rng.normal(size=(2, 3))
    final, trajectory = forward(weights, inputs, act, spec.a, steps, record=True)

    def loss(ws):
        out = forward(ws, inputs, act, spec.a, steps)[-1]
        return TeacherRegression.losses(out, targets).mean()

    grad = bptt(weights, inputs, trajectory, TeacherRegression.output_gradient(final[-1], targets), act, spec.a)
    eps = 1e-6  # float64: truncation ~eps^2, rounding ~1e-16/eps, both far below 1e-7
    for l, w in enumerate(weights):
        for index in [(0, 0), (w.shape[0] - 1, w.shape[1] - 1), (1, 2)]:
            plus = [x.copy() for x in weights]
            minus = [x.copy() for x in weights]
            plus[l][index] += eps
            minus[l][index] -= eps
            numeric = (loss(plus) - loss(minus)) / (2 * eps)
            assert grad.weights[l][index] == pytest.approx(numeric, rel=1e-6, abs=1e-9)


def test_node_gradient_is_the_gradient_of_the_perturbation_input():
    rng = np.random.default_rng(1)
    spec = RateModelSpec(sizes=[3, 4, 2], activation="tanh")
    weights, steps = init_weights(spec, rng), 10
    inputs, targets = rng.normal(size=(2, 3)), rng.normal(size=(2, 2))
    final, trajectory = forward(weights, inputs, "tanh", spec.a, steps, record=True)
    grad = bptt(weights, inputs, trajectory, TeacherRegression.output_gradient(final[-1], targets), "tanh", spec.a)
    eps = 1e-6
    for layer, (b, n) in [(0, (1, 2)), (1, (0, 1))]:
        perts = [np.zeros((2, 4)), np.zeros((2, 2))]
        perts[layer][b, n] = eps
        up = TeacherRegression.losses(forward(weights, inputs, "tanh", spec.a, steps, perts)[-1], targets).mean()
        perts[layer][b, n] = -eps
        down = TeacherRegression.losses(forward(weights, inputs, "tanh", spec.a, steps, perts)[-1], targets).mean()
        assert grad.nodes[layer][b, n] == pytest.approx((up - down) / (2 * eps), rel=1e-6)


@pytest.mark.parametrize("backend", ["runtime", "standalone"])
def test_gradcheck_through_the_brian2_simulation(backend, capsys):
    code = main(["gradcheck", "protocols/quickstart.toml", "--set", f'training.backend="{backend}"',
                 "--set", "model.sizes=[4,5,2]", "--set", "task.batch=2"])
    out = capsys.readouterr().out
    value = float(out.strip().splitlines()[-1].split("=")[1])
    assert code == 0 and value < 1e-6, out
