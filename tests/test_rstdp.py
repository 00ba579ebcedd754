"""Reward-modulated STDP: hand-placed events against closed forms, the Brian2 code against its
NumPy reference, signs, bounds, dry runs, and the reward the network computes for itself."""

import numpy as np
import pytest
from brian2 import mV, ms

from bioplastic.engine.backends import get_backend
from bioplastic.networks import LifModelSpec
from bioplastic.networks.neuromodulator import schedule, schedule_values
from bioplastic.networks.spiking_network import SpikingBlueprint, clamp
from bioplastic.rules import RunContext
from bioplastic.rules.rstdp import RSTDP, RSTDPSpec, build_rstdp, initial_state, pairing_closed_form, rstdp_step, tail

DT = 0.5 * ms


def single_synapses(rule, copies, steps, levels=False, pulses=False, monitor=False):
    """``copies`` independent synapses input -> output with forced output spikes (runtime device)."""
    def task(recipe, layout):
        clamp(recipe, layout, layout.output)
        if levels or pulses:
            schedule(recipe, layout, levels=levels, pulses=pulses)

    def record(recipe, layout):
        if monitor:
            recipe.monitor("w_trace", "weights1", variables=(f"w_now_{rule.kind}",), record=True, dt=DT, when="end",
                           order=20)

    spec = LifModelSpec(sizes=[1, 1], dt=DT, t_ref=0 * ms)  # no refractoriness: every forced spike happens
    blueprint = SpikingBlueprint(spec, copies, steps, blocks=copies,
                                 contributors=[task, lambda r, l: build_rstdp(rule, r, l), record])
    return get_backend("runtime", blueprint), blueprint.layout


def run(rule, pre, post, levels=None, pulses=None, online=False, w0=0.001, monitor=False):
    """Run hand-placed spikes: ``pre``/``post`` (steps, copies) of 0/1; returns the observation.

    ``online``: the weights learn during the run (as in an experiment); else a dry run of a trial.
    """
    steps, copies = pre.shape
    backend, layout = single_synapses(rule, copies, steps, levels is not None, pulses is not None, monitor)
    context = RunContext(copies, np.zeros(copies, int), dry_run=not online, continuous=online, layout=layout)
    values = {**rule.run_values(context), ("clamp_layer1", "values"): post,
              **schedule_values(levels=levels, pulses=pulses)}
    return backend.run(weights=[np.full((copies, 1, 1), w0)], inputs=pre.T[:, :, None], values=values)


def reference(rule, pre, post, levels=None, pulses=None, online=False, w0=0.001):
    """The same through :func:`rstdp_step`, step by step; Δw per copy in mV (a trial's dry run ends
    with the closed-form tail, an online run does not)."""
    steps, copies = pre.shape
    params = {**rule.constants(), "third_factor": rule.spec.third_factor, "online": float(online)}
    state, total = initial_state(copies, w0 * 1e-3), np.zeros(copies)
    for n in range(steps):
        dw, state = rstdp_step(pre[n] > 0, post[n] > 0, state, params, float(DT),
                               level=0.0 if levels is None else levels[n], pulse=0.0 if pulses is None else pulses[n])
        total += dw
    # the run ends at the end of its last step: integrate that last step too
    last = 0.0 if levels is None else levels[-1]
    dw, state = rstdp_step(np.zeros(copies, bool), np.zeros(copies, bool), state, params, float(DT), level=last)
    total += dw
    if not online:
        total += tail(state, params)
    return total / 1e-3, state


def pairings(offsets, reward_after, steps=600, first=40, amplitude=1.5):
    copies = len(offsets)
    pre, post, pulses = (np.zeros((steps, copies)) for _ in range(3))
    for c, off in enumerate(offsets):
        pre[first + max(-off, 0), c] = 1
        post[first + max(off, 0), c] = 1
        pulses[first + abs(off) + reward_after, c] = amplitude
    return pre, post, pulses


def test_one_pairing_and_one_pulse_equal_the_closed_form():
    # Pairings at Δt from -12 to +15 steps, each followed by a dopamine pulse 60 steps after its
    # later spike; the trial's end integrates the rest in closed form. Same arithmetic in three
    # orders (lazy event code, step-by-step NumPy, formula): agreement to rounding.
    rule = RSTDP(RSTDPSpec(lr=2 * mV, a_plus=1.0, a_minus=0.8, tau_e=100 * ms, tau_d=50 * ms, w_min=-100 * mV,
                           w_max=100 * mV))
    offsets = [-12, -2, 0, 3, 15]
    pre, post, pulses = pairings(offsets, reward_after=60)
    observed = run(rule, pre, post, pulses=pulses)
    simulated = observed.deltas["rstdp"][0].ravel()
    numpy, _ = reference(rule, pre, post, pulses=pulses)
    params = {**rule.constants()}
    closed = pairing_closed_form(np.array(offsets) * float(DT), 60 * float(DT), 1.5, params) / 1e-3
    np.testing.assert_allclose(simulated, closed, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(numpy, closed, rtol=1e-10, atol=1e-15)
    assert (closed[:2] < 0).all() and (closed[2:] > 0).all()  # post before pre depresses


def test_florian_fig1_pattern_hand_computed():
    # Pre at 10, 85, 115, 135 ms; post at 15, 75, 110, 140 ms; A+ = A- = 1, tau = 20 ms, lr 0.1 mV.
    # Plain STDP sums every pair, spike by spike: +e^-5/20 (post 15) + e^-65/20 (post 75)
    # - (e^-70/20 + e^-10/20) (pre 85) + ... = 0.34518; MSTDP weighs the pairs before 100 ms by +1
    # and those after by -1: 0.18085 - 0.16433 = 0.01651.
    steps = 400  # 200 ms at 0.5 ms
    pre, post = np.zeros((steps, 1)), np.zeros((steps, 1))
    pre[[20, 170, 230, 270], 0] = 1
    post[[30, 150, 220, 280], 0] = 1
    e = np.exp
    before = e(-5 / 20) + e(-65 / 20) - (e(-70 / 20) + e(-10 / 20))
    after = ((e(-100 / 20) + e(-25 / 20)) - (e(-100 / 20) + e(-40 / 20) + e(-5 / 20))
             - (e(-120 / 20) + e(-60 / 20) + e(-25 / 20)) + (e(-130 / 20) + e(-55 / 20) + e(-25 / 20) + e(-5 / 20)))
    assert before + after == pytest.approx(0.34518, abs=1e-5)
    assert before - after == pytest.approx(0.01651, abs=1e-5)
    levels = np.where(np.arange(steps) < 200, 1.0, -1.0)[:, None]
    stdp = RSTDP(RSTDPSpec(lr=0.1 * mV, tau_e=0 * ms, third_factor="none", w_min=-10 * mV))
    mstdp = RSTDP(RSTDPSpec(lr=0.1 * mV, tau_e=0 * ms, third_factor="reward", w_min=-10 * mV))
    got = run(stdp, pre, post, online=True, w0=1.0).weights[0].ravel()[0] - 1.0
    assert got == pytest.approx(0.1 * (before + after), rel=1e-12)
    got = run(mstdp, pre, post, levels=levels, online=True, w0=1.0).weights[0].ravel()[0] - 1.0
    assert got == pytest.approx(0.1 * (before - after), rel=1e-12)


@pytest.mark.parametrize("third,tau_e", [("dopamine", 100), ("dopamine", 0), ("reward", 25), ("reward", 0),
                                         ("none", 40), ("none", 0)])
def test_brian2_matches_the_numpy_reference_on_random_events(third, tau_e):
    # Random pre and post spikes, reward pulses (dopamine) or a reward level that changes sign
    # (reward), a tonic level, three copies: the event-driven Brian2 code and the step-by-step
    # NumPy propagation agree to rounding, online and with the end-of-trial tail.
    rng = np.random.default_rng(tau_e + len(third))
    steps, copies = 500, 3
    pre = (rng.random((steps, copies)) < 0.04).astype(float)
    post = (rng.random((steps, copies)) < 0.04).astype(float)
    pulses = levels = None
    if third == "dopamine":
        pulses = np.where(rng.random((steps, copies)) < 0.01, rng.normal(0, 1, (steps, copies)), 0.0)
    elif third == "reward":
        levels = np.repeat(rng.normal(0, 1, (5, copies)), steps // 5, axis=0)
    rule = RSTDP(RSTDPSpec(lr=0.5 * mV, a_plus=1.0, a_minus=1.2, tau_e=tau_e * ms, third_factor=third,
                           tau_d=40 * ms, tonic=0.1 if third == "dopamine" else 0.0, w_min=-50 * mV, w_max=50 * mV))
    observed = run(rule, pre, post, levels=levels, pulses=pulses, online=True, w0=1.0)
    expected, state = reference(rule, pre, post, levels=levels, pulses=pulses, online=True, w0=1.0)
    np.testing.assert_allclose(observed.deltas["rstdp"][0].ravel(), expected, rtol=1e-9, atol=1e-12)
    assert np.abs(expected).max() > 1e-3  # something happened
    # online: the weights moved by what was accumulated (bounds far away)
    np.testing.assert_allclose(observed.weights[0].ravel() - 1.0, expected, rtol=1e-9, atol=1e-12)


def test_no_third_factor_no_change_and_a_negated_one_negates_it():
    rule = RSTDP(RSTDPSpec(lr=1 * mV, tau_e=200 * ms, third_factor="dopamine", w_min=-50 * mV, w_max=50 * mV))
    offsets = [-8, 4, 10]
    pre, post, pulses = pairings(offsets, reward_after=40)
    positive = run(rule, pre, post, pulses=pulses).deltas["rstdp"][0].ravel()
    negative = run(rule, pre, post, pulses=-pulses).deltas["rstdp"][0].ravel()
    silent = run(rule, pre, post, pulses=0 * pulses).deltas["rstdp"][0].ravel()
    assert np.abs(positive).min() > 1e-6
    np.testing.assert_allclose(negative, -positive, rtol=1e-12)
    np.testing.assert_array_equal(silent, 0.0)
    level_rule = RSTDP(RSTDPSpec(lr=1 * mV, tau_e=200 * ms, third_factor="reward", w_min=-50 * mV, w_max=50 * mV))
    levels = np.ones((pre.shape[0], 3))
    up = run(level_rule, pre, post, levels=levels).deltas["rstdp"][0].ravel()
    down = run(level_rule, pre, post, levels=-levels).deltas["rstdp"][0].ravel()
    np.testing.assert_allclose(down, -up, rtol=1e-12)


def test_weights_stay_inside_their_bounds_online():
    # A long run of potentiating pairs under a large reward: the weight hits w_max and stays.
    rule = RSTDP(RSTDPSpec(lr=5 * mV, tau_e=50 * ms, third_factor="reward", w_min=0 * mV, w_max=2 * mV))
    steps = 2000
    pre, post = np.zeros((steps, 2)), np.zeros((steps, 2))
    pre[::40, :] = 1
    post[4::40, 0] = 1  # copy 0: pre -> post (potentiation)
    post[:-4:40, 1] = 1  # copy 1: post -> pre... reversed below
    post[:, 1] = np.roll(pre[:, 1], -4)
    levels = np.full((steps, 2), 3.0)
    observed = run(rule, pre, post, levels=levels, online=True, w0=1.0, monitor=True)
    w = observed.monitors["w_trace"]["w_now_rstdp"] / 1e-3
    assert w.max() <= 2.0 + 1e-12 and w.min() >= 0.0 - 1e-12
    assert w[-1, 0] == pytest.approx(2.0) and w[-1, 1] == pytest.approx(0.0)
    clipped = rule.constrain([np.array([-1.0, 1.0, 3.0])])[0]
    np.testing.assert_array_equal(clipped, [0.0, 1.0, 2.0])


def test_a_dry_run_accumulates_without_touching_the_weights():
    rule = RSTDP(RSTDPSpec(lr=1 * mV, tau_e=100 * ms, w_min=-50 * mV, w_max=50 * mV))
    pre, post, pulses = pairings([5, 10], reward_after=20)
    observed = run(rule, pre, post, pulses=pulses, online=False, w0=1.0)
    np.testing.assert_array_equal(observed.weights[0].ravel(), 1.0)
    assert np.abs(observed.deltas["rstdp"][0]).min() > 1e-6


def test_the_baseline_tracks_the_reward_per_condition():
    from bioplastic.rules import TrialData
    rule = RSTDP(RSTDPSpec(baseline=True, baseline_rate=0.5))
    for reward in (2.0, 1.0, 1.0):  # the first reward starts the average; then halfway each time
        rule.observe(TrialData([], None, [], rewards=np.array([reward, -2.0]), conditions=np.array([0, 1])))
    assert rule._baselines[0] == pytest.approx(1.25) and rule._baselines[1] == pytest.approx(-2.0)
    layout = single_synapses(rule, 2, 10)[1]
    values = rule.run_values(RunContext(2, np.array([1, 0]), layout=layout))
    np.testing.assert_allclose(values[("modulator", "baseline_rstdp")], [-2.0, 1.25])
