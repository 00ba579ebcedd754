"""The cost of learning: memory and time per update of BPTT, weight perturbation and node
perturbation as the trial length T and the network grow, beside the expected counts.

Run from the repository root::

    .venv/bin/python benchmarks/bench_cost.py [--lengths 100 200 400 800 1600] [--hidden 50 200] [--out FILE.json]

A tanh rate network 20-H-5 learns a teacher (batch 8, standalone backend, no analysis); WP and
NP draw K = 4 directions. For every rule, H and T a fresh process (the build cached by a first
one) trains 10 trials and reports the median wall time of one update, the binary's peak
resident memory (``VmHWM``) and the peak of Python's allocations during one trial
(``tracemalloc``). Expected:

* BPTT records the rates of the batch's clean copies at every step, 8 x batch x (H + 5) bytes a
  step, and runs backwards through them: its memory grows with T;
* WP keeps K perturbations of the P weights (8 K P bytes), NP K of the batch's H + 5 node currents
  (8 K batch (H + 5) bytes), whatever T; their trials record nothing.
"""

import argparse
import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from measure import measure_binary

ROOT = Path(__file__).resolve().parent.parent
RULES = ("backprop", "weight_perturbation", "node_perturbation")
BATCH, SAMPLES = 8, 4


def protocol(rule, hidden, steps, trials):
    from bioplastic.config import resolve
    table = dict(name="cost", seed=0,
                 model=dict(kind="rate", sizes=[20, hidden, 5], activation="tanh", tau="10 ms", dt="1 ms"),
                 task=dict(kind="teacher_regression", batch=BATCH, duration=f"{steps} ms"),
                 rule=dict(kind=rule, lr=1e-3, **({} if rule == "backprop" else dict(sigma=1e-3, samples=SAMPLES))),
                 training=dict(trials=trials, backend="standalone"), analysis=dict(every=0))
    return resolve(table, "bench_cost")


def probe(rule, hidden, steps, trials=10):
    from bioplastic.engine.trainer import Trainer
    peaks = []
    measure_binary(peaks)
    trainer = Trainer(protocol(rule, hidden, steps, trials))
    times = []
    for t in range(trials):
        batch = trainer.task.sample(trainer.input_rng)
        if t == trials - 1:
            tracemalloc.start()
        start = time.perf_counter()
        _, update = trainer.step(batch, with_gradient=False)
        times.append(time.perf_counter() - start)
        trainer.weights = [w + u for w, u in zip(trainer.weights, update)]
    python_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(json.dumps(dict(rule=rule, hidden=hidden, steps=steps, update_s=float(np.median(times)),
                          binary_peak=max(peaks), python_peak=python_peak)))


def expected(rule, hidden, steps):
    weights = 20 * hidden + hidden * 5
    if rule == "backprop":
        return 8 * BATCH * (hidden + 5) * steps
    if rule == "weight_perturbation":
        return 8 * SAMPLES * weights
    return 8 * SAMPLES * BATCH * (hidden + 5)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 200, 400, 800, 1600])
    parser.add_argument("--hidden", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--probe", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    if args.probe:
        return probe(args.probe[0], int(args.probe[1]), int(args.probe[2]))
    rows = []
    for hidden in args.hidden:
        for rule in RULES:
            for steps in args.lengths:
                command = [sys.executable, __file__, "--probe", rule, str(hidden), str(steps)]
                subprocess.run(command, cwd=ROOT, check=True, capture_output=True)  # builds, not measured
                out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                row["expected_bytes"] = expected(rule, hidden, steps)
                rows.append(row)
                print(f"  H={hidden:4d} {rule:20s} T={steps:5d}: update {row['update_s'] * 1e3:7.1f} ms, binary "
                      f"{row['binary_peak'] / 2**20:6.1f} MiB, Python {row['python_peak'] / 2**20:6.1f} MiB "
                      f"(the rule's own storage: {row['expected_bytes'] / 2**20:7.3f} MiB)", flush=True)
    print("growth with T (least-squares slope, bytes or ms per step):")
    for hidden in args.hidden:
        for rule in RULES:
            chosen = [r for r in rows if r["rule"] == rule and r["hidden"] == hidden]
            t = [r["steps"] for r in chosen]
            slopes = {k: float(np.polyfit(t, [r[k] for r in chosen], 1)[0]) for k in ("binary_peak", "python_peak", "update_s")}
            print(f"  H={hidden:4d} {rule:20s}: binary {slopes['binary_peak']:8.0f} B/step, Python "
                  f"{slopes['python_peak']:8.0f} B/step, update {slopes['update_s'] * 1e3:6.3f} ms/step "
                  f"(expected for the rule: {expected(rule, hidden, 2) - expected(rule, hidden, 1):6d} B/step)")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
