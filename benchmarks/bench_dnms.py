"""Trials per second of Miconi's DNMS protocol: bioplastic's standalone trainer against a naive
Brian2 runtime loop (one ``Network.run`` per trial), in the same process.

Run from the repository root::

    .venv/bin/python benchmarks/bench_dnms.py [--trials N] [--naive-trials N] [--out FILE.json]

What is timed:

a. ``Trainer(p).train()`` on ``protocols/miconi2017_dnms.toml`` (200 units, 1000 steps a trial,
   Miconi's rule inside the network) with the standalone backend, for ``--trials`` trials after a
   warm-up trainer of the same trials that builds the C++ project (reported, not timed), once
   with the trial loop (one run of the binary per trial) and once with the block loop (the
   trials in one run, the rule's update at every trial's end inside the network);
b. the naive loop: the same network and rule equations built in Brian2's runtime mode with its
   default Cython target, and per trial ``restore``, writing the weights, stimulus and run
   values onto the objects, one ``net.run``, reading the eligibility and the read-out, and
   Miconi's update in NumPy (the same rule object), for ``--naive-trials`` trials after one
   untimed warm-up trial, with ``gc.freeze()`` after the build (the fairest naive baseline).

The analysis (``analysis.every``) is switched off in both, so both do the same work per trial.
"""

import argparse
import dataclasses
import gc
import json
import time
from pathlib import Path

import numpy as np

from naive_loop import runtime_network, write_values

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "protocols" / "miconi2017_dnms.toml"


def protocol(trials, backend, threads=1, neurons=200, loop="trial"):
    from bioplastic.config import load_protocol
    p = load_protocol(PROTOCOL, [f"model.n_neurons={neurons}"])
    return dataclasses.replace(p, training=dataclasses.replace(p.training, trials=trials, backend=backend, threads=threads,
                                                               loop=loop),
                               analysis=dataclasses.replace(p.analysis, every=0))


def standalone(trials, threads=1, neurons=200, loop="trial"):
    """``(build seconds, seconds per trial)``: a block's build depends on its length, so the
    warm-up trainer runs the same number of trials."""
    from bioplastic.engine.trainer import Trainer
    start = time.perf_counter()
    Trainer(protocol(trials if loop == "block" else 1, "standalone", threads, neurons, loop)).train()
    build = time.perf_counter() - start
    trainer = Trainer(protocol(trials, "standalone", threads, neurons, loop))
    start = time.perf_counter()
    trainer.train()
    return build, (time.perf_counter() - start) / trials


def naive(trials, neurons=200):
    """One runtime ``run()`` per trial, with the loop written out as a Brian2 user would."""
    import brian2
    from bioplastic import rng as streams
    from bioplastic.rules import TrialData
    from bioplastic.networks.recurrent_rate import (STIMULUS, RecurrentRateBlueprint, matrix_order, model_values,
                                                    synapse_order)
    from bioplastic.rules.base import RunContext
    p = protocol(trials, "runtime", neurons=neurons)
    model = p.model
    rule, task, blueprint, net = runtime_network(p, RecurrentRateBlueprint)
    network, objects = net.network, net.objects
    weights = model.all_weights(p.seed)
    inputs_rng = streams.stream(p.seed, "inputs")
    context = RunContext(1, np.zeros(1, int), layout=blueprint.layout)
    times = []
    gc.freeze()  # the built objects are never collected: the collector need not walk them every trial
    for trial in range(trials + 1):
        start = time.perf_counter()
        batch = task.sample(inputs_rng)
        network.restore("start")
        objects[STIMULUS].values[...] = batch.inputs[0]
        values = {**model_values(model, p.seed, 1), **rule.run_values(context), **task.run_values(batch, blueprint.layout)}
        write_values(objects, values)
        objects["recurrent_weights"].w = synapse_order(weights["recurrent"])
        brian2.seed(trial)
        network.run(net.duration, namespace={})
        z = np.asarray(objects["trace_z"].z).T.reshape(1, -1)
        eligibility = matrix_order(objects["recurrent_weights"].e_miconi[:], 1, (model.n_neurons, model.n_neurons))
        data = TrialData([weights["recurrent"]], task.losses(z[None], batch.targets), [z[None]],
                         deltas=[eligibility], conditions=batch.conditions)
        weights["recurrent"] = weights["recurrent"] + rule.update(data, None)[0]
        rule.observe(data)
        if trial:  # the first trial compiles the Cython code
            times.append(time.perf_counter() - start)
    gc.unfreeze()
    return float(np.mean(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--naive-trials", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 50], help="network sizes N (200 50)")
    parser.add_argument("--threads", type=int, default=1, help="also time the standalone trainer on this many "
                        "OpenMP threads (N = 200)")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    result = {}
    print("Miconi's DNMS protocol (1000 steps a trial, Miconi's rule inside the network), by network size:")
    for neurons in args.sizes:
        build, per_trial = standalone(args.trials, neurons=neurons)
        _, per_block_trial = standalone(args.trials, neurons=neurons, loop="block")
        naive_per_trial = naive(args.naive_trials, neurons=neurons)
        result[neurons] = dict(standalone_trials_per_s=1 / per_trial, block_trials_per_s=1 / per_block_trial,
                               naive_cython_trials_per_s=1 / naive_per_trial, speedup=naive_per_trial / per_trial,
                               block_speedup=naive_per_trial / per_block_trial, standalone_build_s=build)
        print(f"  N = {neurons:4d}: standalone trial loop {1 / per_trial:7.2f} trials/s ({per_trial * 1e3:6.1f} ms; "
              f"build {build:4.1f} s), block loop {1 / per_block_trial:7.2f} trials/s ({per_block_trial * 1e3:6.1f} ms), "
              f"naive Cython loop {1 / naive_per_trial:6.2f} trials/s ({naive_per_trial * 1e3:6.1f} ms): trial loop "
              f"{naive_per_trial / per_trial:5.1f}x, block loop {naive_per_trial / per_block_trial:5.1f}x naive, "
              f"{per_trial / per_block_trial:4.1f}x the trial loop")
    if args.threads > 1:
        _, per_trial = standalone(args.trials, threads=args.threads)
        result["threads"] = {args.threads: 1 / per_trial}
        print(f"  N =  200 with {args.threads} OpenMP threads: {1 / per_trial:7.2f} trials/s")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
