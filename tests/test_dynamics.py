"""The Brian2 network integrates exactly the discrete dynamics that the NumPy maths describes."""

import numpy as np
import pytest

from bioplastic.engine.backends import get_backend
from bioplastic.networks import RateModelSpec, init_weights
from bioplastic.networks.rate import RateBlueprint
from bioplastic.networks.rate_math import activation, activation_derivative, forward

COPIES, STEPS = 3, 20


def _case(act, rng):
    spec = RateModelSpec(sizes=[3, 4, 2], activation=act)
    weights = [np.stack([w + 0.1 * rng.normal(size=w.shape) for _ in range(COPIES)])
               for w in init_weights(spec, rng)]
    inputs = rng.normal(size=(COPIES, 3))
    perts = [rng.normal(size=(COPIES, 4)), rng.normal(size=(COPIES, 2))]
    return spec, weights, inputs, perts


@pytest.mark.parametrize("act", ["linear", "tanh", "sigmoid", "relu"])
def test_brian2_matches_numpy_euler(act):
    # Same arithmetic in a different order: agreement to a few ulps of O(1) rates.
    spec, weights, inputs, perts = _case(act, np.random.default_rng(1))
    observed = get_backend("runtime", RateBlueprint(spec, COPIES, STEPS, record=2)).run(weights=weights, inputs=inputs, perts=perts)
    final, trajectory = forward(weights, inputs, act, spec.a, STEPS, perts, record=True)
    for got, want in zip(observed.final, final):
        np.testing.assert_allclose(got, want, atol=1e-12, rtol=0)
    for got, want in zip(observed.trajectory, trajectory):
        np.testing.assert_allclose(got, want[:, :2], atol=1e-12, rtol=0)


def test_standalone_matches_runtime_and_reuses_its_build():
    spec, weights, inputs, perts = _case("tanh", np.random.default_rng(2))
    runtime = get_backend("runtime", RateBlueprint(spec, COPIES, STEPS, record=1)).run(weights=weights, inputs=inputs, perts=perts)
    standalone = get_backend("standalone", RateBlueprint(spec, COPIES, STEPS, record=1))
    first = standalone.run(weights=weights, inputs=inputs, perts=perts)
    again = standalone.run(weights=[w * 0.5 for w in weights], inputs=inputs)  # new run_args, same build
    for a, b in zip(first.final, runtime.final):
        np.testing.assert_allclose(a, b, atol=1e-12, rtol=0)
    half = forward([w * 0.5 for w in weights], inputs, "tanh", spec.a, STEPS)
    np.testing.assert_allclose(again.final[-1], half[-1], atol=1e-12, rtol=0)


def test_copies_are_independent():
    # Changing copy 0's weights must leave copies 1 and 2 exactly as they were (block connectivity).
    spec, weights, inputs, perts = _case("tanh", np.random.default_rng(3))
    backend = get_backend("runtime", RateBlueprint(spec, COPIES, STEPS, record=0))
    before = backend.run(weights=weights, inputs=inputs, perts=perts).final[-1]
    changed = [w.copy() for w in weights]
    changed[0][0] += 1.0
    after = backend.run(weights=changed, inputs=inputs, perts=perts).final[-1]
    assert not np.allclose(after[0], before[0])
    np.testing.assert_array_equal(after[1:], before[1:])


@pytest.mark.parametrize("act", ["linear", "tanh", "sigmoid"])
def test_activation_derivatives(act):
    u = np.linspace(-2, 2, 9)
    eps = 1e-6
    numeric = (activation(act, u + eps) - activation(act, u - eps)) / (2 * eps)
    np.testing.assert_allclose(activation_derivative(act, u), numeric, atol=1e-9)
