"""Trials per second of weight-perturbation training, five ways, in one process:

a. a naive Brian2 loop, one ``Network.run`` per trial, runtime mode, Cython target;
b. the same with the numpy target;
c. a hand-vectorised NumPy loop of the same network, rule and update (no Brian2);
d. bioplastic's trial loop (``training.loop = "trial"``): the compiled standalone binary re-run
   once per trial with ``run_args``;
e. bioplastic's block loop (``training.loop = "block"``): one run of the binary trains every
   trial, the updates in generated code.

Two networks: the 20-50-5 tanh network of issue 10 (tau 10 ms, dt 0.5 ms, 50 ms trials, K = 1,
batch 1) and the quickstart network (10-20-2, K = 8, batch 8, 60 steps). No analysis trials
(``analysis.every = 0``): the training loop only. All five start from the same seed and draw the
same inputs and perturbations; the script prints how far their first 20 losses are from the
block loop's.

    .venv/bin/python benchmarks/bench_block_loop.py [--quick] [--out FILE.json]

(d) and (e) are timed on a second trainer, after a first one built the binary (a build is paid
once per network structure and reused from the cache). For (e) the time is split into the
binary's run (starting it, its simulation, its files) and the rest (drawing the block's inputs
and perturbations in Python, writing and reading the arrays).
"""

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

SMALL = ['sweep.grid={ "rule.kind" = ["weight_perturbation"] }', "model.sizes=[20, 50, 5]", 'model.tau="10 ms"',
         'model.dt="0.5 ms"', 'task.duration="50 ms"', "task.batch=1", "rule.samples=1", "analysis.every=0"]
QUICKSTART = ['sweep.grid={ "rule.kind" = ["weight_perturbation"] }', "analysis.every=0"]
# Losses compared trial by trial: with K = 1 and sigma = 1e-3 a forward difference divides the
# loss's rounding by sigma^2, and the curves of any two loops drift apart after a few dozen
# trials (to 1e-5 by trial 50), as two runs of one loop would on two machines.
FIRST = 20


def protocol(overrides, trials, loop="trial", backend="standalone"):
    from bioplastic.config import load_protocol
    swept = load_protocol(ROOT / "protocols" / "quickstart.toml", [*overrides, f"training.trials={trials}",
                                                                   f'training.loop="{loop}"',
                                                                   f'training.backend="{backend}"'])
    return next(p for _, _, p in swept.variants())


def losses_of(table):
    return table.loc[table.metric == "loss"].sort_values("trial")["value"].to_numpy()


def numpy_loop(p, trials):
    """WP written out in NumPy, every copy of a trial at once (variants x batch)."""
    from bioplastic import rng as streams
    from bioplastic.tasks import TASKS
    model, rule = p.model, p.rule
    task = TASKS[p.task_kind](p.task, model, p.seed)
    weights = model.init_weights(streams.stream(p.seed, "init"))
    input_rng, noise_rng = streams.stream(p.seed, "inputs"), streams.stream(p.seed, "noise")
    steps, a, k = int(round(float(task.duration / model.dt))), model.a, rule.samples
    losses = []
    t0 = time.perf_counter()
    for _ in range(trials):
        batch = task.sample(input_rng)
        noise = [noise_rng.normal(0.0, rule.sigma, (k,) + w.shape) for w in weights]
        copies = [np.concatenate([w[None], w[None] + n]) for w, n in zip(weights, noise)]  # (V, n_out, n_in)
        rates = [np.broadcast_to(batch.inputs, (1 + k,) + batch.inputs.shape)]
        rates += [np.zeros((1 + k, len(batch.inputs), w.shape[0])) for w in weights]
        for _ in range(steps):  # every layer reads the previous layer's rate from the step's start
            drive = [np.einsum("voi,vbi->vbo", w, r) for w, r in zip(copies, rates[:-1])]
            rates = rates[:1] + [(1 - a) * r + a * np.tanh(u) for r, u in zip(rates[1:], drive)]
        batch_loss = np.mean((rates[-1] - batch.targets) ** 2, axis=(1, 2))
        change = batch_loss[1:] - batch_loss[0]
        weights = [w - rule.lr * np.einsum("k,koi->oi", change, n) / (k * rule.sigma ** 2)
                   for w, n in zip(weights, noise)]
        losses.append(batch_loss[0])
    return time.perf_counter() - t0, np.array(losses)


def trainer_loop(p):
    """A first trainer builds (untimed), a second one of the same structure trains (timed)."""
    from bioplastic.engine import block_loop
    from bioplastic.engine.backends import get_backend
    from bioplastic.engine.trainer import Trainer
    Trainer(p).train()
    binary = []
    if p.training.loop == "block":  # time the binary's runs inside the block loop
        from bench_trial_loop import timed_backend
        original = block_loop.get_backend

        def timed(*args, **kwargs):
            backend = original(*args, **kwargs)
            binary.append(timed_backend(backend)[0])  # the backend's run times, as they are made
            return backend
        block_loop.get_backend = timed
    t0 = time.perf_counter()
    table = Trainer(p).train()
    total = time.perf_counter() - t0
    block_loop.get_backend = get_backend
    return total, losses_of(table), sum(sum(calls) for calls in binary)


def naive_loop(p, trials, target):
    from bench_trial_loop import NaiveLoop
    loop = NaiveLoop(p, target)
    loop.train(1)  # warm-up: code generation and compilation
    t0 = time.perf_counter()
    losses, _ = loop.train(trials)
    return time.perf_counter() - t0, losses


def workload(name, overrides, counts):
    print(f"\n{name}", flush=True)
    results = {}
    ref = None
    for method, trials in counts.items():
        if method == "block":
            total, losses, binary = trainer_loop(protocol(overrides, trials, "block"))
        elif method == "run_args":
            total, losses, binary = (*trainer_loop(protocol(overrides, trials, "trial"))[:2], None)
        elif method == "numpy":
            (total, losses), binary = numpy_loop(protocol(overrides, trials), trials), None
        else:
            (total, losses), binary = naive_loop(protocol(overrides, trials, backend="runtime"), trials,
                                                 method.split("_")[1]), None
        ref = losses if ref is None else ref
        n = min(len(ref), len(losses), FIRST)
        difference = float(np.max(np.abs(losses[:n] / ref[:n] - 1)))
        results[method] = dict(trials=trials, total_s=total, trials_per_s=trials / total, binary_s=binary,
                               loss_difference_first=difference, first=n)
        extra = f"  (binary {binary / total:.0%} of the time)" if binary else ""
        print(f"  {method:<14} {trials:>5} trials  {trials / total:9.1f} trials/s  "
              f"{1000 * total / trials:8.3f} ms/trial  first {n} losses vs block: {difference:.1e}{extra}", flush=True)
    block = results["block"]["trials_per_s"]
    for method in results:
        if method != "block":
            print(f"  block / {method:<12} {block / results[method]['trials_per_s']:7.1f}x")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials (a smoke test)")
    parser.add_argument("--out", type=Path, help="write the numbers to this JSON file")
    args = parser.parse_args(argv)
    scale = 0.1 if args.quick else 1.0

    def counts(block, run_args, numpy, naive):
        return {"block": max(2, int(block * scale)), "run_args": max(2, int(run_args * scale)),
                "numpy": max(2, int(numpy * scale)), "naive_cython": max(2, int(naive * scale)),
                "naive_numpy": max(2, int(naive * scale))}

    out = dict(machine=dict(python=platform.python_version(), cpu=platform.processor() or platform.machine()),
               small=workload("20-50-5 tanh, K = 1, batch 1, 100 steps", SMALL, counts(3000, 400, 600, 40)),
               quickstart=workload("quickstart 10-20-2 tanh, K = 8, batch 8, 60 steps", QUICKSTART,
                                   counts(600, 300, 150, 30)))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
