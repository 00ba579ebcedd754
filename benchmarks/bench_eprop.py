"""e-prop: trials per second against a naive Brian2 runtime loop, and memory against surrogate BPTT
as the trial length T grows.

Run from the repository root::

    .venv/bin/python benchmarks/bench_eprop.py [--trials N] [--naive-trials N] [--lengths T ...] [--out FILE.json]

**Speed.** Both train ``protocols/eprop_pattern.toml`` with symmetric feedback (100 LIF neurons,
100 frozen Poisson inputs, 1000 steps a trial), the analysis switched off:

a. ``Trainer(p).train()`` with the standalone backend, for ``--trials`` trials after a warm-up
   trainer of one trial that builds the C++ project (reported, not timed);
b. the naive loop: the same network and e-prop equations built in Brian2's runtime mode with its
   default Cython target, and per trial ``restore``, writing the weights, input, target and
   feedback onto the objects, one ``net.run``, reading the accumulated gradient, and the update
   in NumPy (the same rule object), for ``--naive-trials`` trials after one untimed warm-up.

**Memory.** For each trial length T, a fresh process trains one trial (after the build is cached)
and reports the peak resident memory of the simulation (the standalone binary's ``VmHWM``,
polled every millisecond) and the peak of Python's allocations during the trial (``tracemalloc``: reading
the results back, and for BPTT the backward pass). e-prop keeps per-synapse traces, so nothing it
stores grows with T; surrogate BPTT records v and a of every neuron at every step (2 x N x 8
bytes per step) and runs backwards through them. The network has one bias input channel here,
so that the task's own arrays (input, target) are a few bytes per step and do not hide the
difference. The slopes (bytes per step) are fitted over the lengths.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from measure import measure_binary
from naive_loop import runtime_network, write_values

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "protocols" / "eprop_pattern.toml"
MEMORY_NEURONS = 200


def protocol(trials, backend, rule="eprop", overrides=()):
    import tomllib
    from bioplastic.config import resolve
    table = tomllib.loads(PROTOCOL.read_text())
    del table["sweep"]
    table["rule"] = {"kind": rule, "lr": 0.003} if rule != "eprop" else {"kind": "eprop", "lr": 0.01}
    table["training"].update(trials=trials, backend=backend)
    table["analysis"]["every"] = 0
    for key, value in overrides:
        section, name = key.split(".")
        table[section][name] = value
    return resolve(table, str(PROTOCOL))


def standalone(trials, loop):
    """``Trainer(p).train()`` in the trial loop or the block loop; a first trainer of the same
    trials builds the project (a block's build depends on its trials), and is not timed."""
    from bioplastic.engine.trainer import Trainer
    start = time.perf_counter()
    Trainer(protocol(trials if loop == "block" else 1, "standalone", overrides=[("training.loop", loop)])).train()
    build = time.perf_counter() - start
    trainer = Trainer(protocol(trials, "standalone", overrides=[("training.loop", loop)]))
    start = time.perf_counter()
    metrics = trainer.train()
    return build, (time.perf_counter() - start) / trials, metrics[metrics.metric == "loss"].value.to_numpy()


def naive(trials):
    """One runtime ``run()`` per trial, with the loop written out as a Brian2 user would."""
    from bioplastic import rng as streams
    from bioplastic.networks.alif import AlifBlueprint, model_values
    from bioplastic.networks.recurrent_rate import STIMULUS, matrix_order, synapse_order
    from bioplastic.rules import TrialData
    from bioplastic.rules.base import RunContext
    p = protocol(trials, "runtime")
    model = p.model
    rule, task, blueprint, net = runtime_network(p, AlifBlueprint)
    network, objects = net.network, net.objects
    weights = model.init_weights(None, p.seed)
    inputs_rng = streams.stream(p.seed, "inputs")
    times, losses = [], []
    for trial in range(trials + 1):
        start = time.perf_counter()
        batch = task.sample(inputs_rng)
        network.restore("start")
        shifted = np.concatenate([batch.inputs[0, 1:], np.zeros((1, model.n_inputs))])  # x[t + 1] at step t
        objects[STIMULUS].values[...] = shifted
        context = RunContext(1, np.zeros(1, int), layout=blueprint.layout, weights=weights)
        values = {**model_values(model, p.seed, 1), **rule.run_values(context), **task.run_values(batch, blueprint.layout)}
        write_values(objects, values)
        for projection, w in zip(blueprint.layout.projections, weights):
            objects[projection.synapses].w = synapse_order(w)
        network.run(net.duration, namespace={})
        y = np.asarray(objects["trace_y"].y).T.reshape(1, -1)
        deltas = [matrix_order(objects[p.synapses].acc_eprop[:], 1, p.shape) for p in blueprint.layout.projections]
        data = TrialData(weights, task.losses(y[None], batch.targets), [y[None]], deltas=deltas)
        weights = [w + u for w, u in zip(weights, rule.update(data, None))]
        losses.append(float(data.losses[0, 0]))
        if trial:  # the first trial compiles the Cython code
            times.append(time.perf_counter() - start)
    return float(np.mean(times)), np.array(losses[:trials])


def memory_probe(rule, steps):
    """One training trial at T = ``steps``; print the peaks as JSON (run in a fresh process)."""
    import tracemalloc
    from bioplastic.engine.trainer import Trainer
    peaks = []
    measure_binary(peaks)
    overrides = [("model.n_inputs", 1), ("model.n_neurons", MEMORY_NEURONS), ("task.input", "bias"),
                 ("task.duration", f"{steps} ms")]
    trainer = Trainer(protocol(1, "standalone", rule, overrides))
    batch = trainer.task.sample(trainer.input_rng)
    tracemalloc.start()
    trainer.step(batch, with_gradient=False)
    python_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    binary_peak = max(peaks)
    print(json.dumps(dict(rule=rule, steps=steps, binary_peak=binary_peak, python_peak=python_peak)))


def memory(lengths):
    rows = []
    for rule in ("eprop", "backprop"):
        for steps in [lengths[0]] + list(lengths):  # the first builds the project: not measured
            out = subprocess.run([sys.executable, __file__, "--memory-probe", rule, str(steps)], cwd=ROOT,
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        rows.pop(-len(lengths) - 1)
    return rows


def slope(rows, rule, key):
    chosen = [r for r in rows if r["rule"] == rule]
    return float(np.polyfit([r["steps"] for r in chosen], [r[key] for r in chosen], 1)[0])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--naive-trials", type=int, default=5)
    parser.add_argument("--lengths", type=int, nargs="+", default=[1000, 2000, 4000, 8000])
    parser.add_argument("--memory-probe", nargs=2, metavar=("RULE", "STEPS"), help=argparse.SUPPRESS)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory table")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    if args.memory_probe:
        return memory_probe(args.memory_probe[0], int(args.memory_probe[1]))
    build, per_trial, losses = standalone(args.trials, "trial")
    block_build, block_per_trial, block_losses = standalone(args.trials, "block")
    naive_per_trial, naive_losses = naive(args.naive_trials)
    agree = float(np.max(np.abs(losses[:len(naive_losses)] - naive_losses) / np.abs(naive_losses)))
    block_agree = float(np.max(np.abs(losses - block_losses) / np.abs(losses)))
    print("e-prop on eprop_pattern (100 LIF neurons, 1000 steps a trial, symmetric feedback):")
    print(f"  trial loop {1 / per_trial:7.2f} trials/s ({per_trial * 1e3:6.1f} ms; build {build:4.1f} s)")
    print(f"  block loop {1 / block_per_trial:7.2f} trials/s ({block_per_trial * 1e3:6.1f} ms; build {block_build:4.1f} s): "
          f"{per_trial / block_per_trial:4.2f}x the trial loop (loss curves agree to a relative {block_agree:.1e})")
    print(f"  naive Cython loop {1 / naive_per_trial:6.2f} trials/s ({naive_per_trial * 1e3:6.1f} ms): trial loop "
          f"{naive_per_trial / per_trial:5.1f}x, block loop {naive_per_trial / block_per_trial:5.1f}x faster "
          f"(loss curves agree to a relative {agree:.1e} over the naive loop's trials)")
    if args.no_memory:
        rows, slopes = [], {}
    else:
        rows, slopes = memory_table(args.lengths)
    if args.out:
        Path(args.out).write_text(json.dumps(dict(trial_loop_trials_per_s=1 / per_trial,
                                                  block_loop_trials_per_s=1 / block_per_trial,
                                                  block_over_trial=per_trial / block_per_trial,
                                                  naive_cython_trials_per_s=1 / naive_per_trial,
                                                  speedup=naive_per_trial / per_trial,
                                                  block_speedup=naive_per_trial / block_per_trial, build_s=build,
                                                  block_build_s=block_build, loss_agreement=agree,
                                                  block_loss_agreement=block_agree, memory=rows, slopes=slopes),
                                             indent=2))


def memory_table(lengths):
    rows = memory(lengths)
    print(f"Memory of one training trial against its length T ({MEMORY_NEURONS} LIF neurons, one bias input):")
    print("  rule      T      binary peak   Python peak")
    for r in rows:
        print(f"  {r['rule']:8s} {r['steps']:6d}  {r['binary_peak'] / 2**20:9.1f} MiB  {r['python_peak'] / 2**20:9.1f} MiB")
    slopes = {rule: {key: slope(rows, rule, key) for key in ("binary_peak", "python_peak")} for rule in ("eprop", "backprop")}
    expected = 2 * MEMORY_NEURONS * 8
    for rule, s in slopes.items():
        print(f"  {rule:8s} grows by {s['binary_peak']:8.0f} B/step in the binary, {s['python_peak']:8.0f} B/step in "
              f"Python (BPTT's trajectory: 2 x N x 8 = {expected} B/step)")
    return rows, slopes


if __name__ == "__main__":
    main()
