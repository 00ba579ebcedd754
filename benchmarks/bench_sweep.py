"""The throughput of `bioplastic sweep` on 2 workers against `bioplastic run` one variant at a time,
and the time spent building against the time spent simulating.

Run from the repository root::

    .venv/bin/python benchmarks/bench_sweep.py [--variants 4] [--seeds 3] [--trials 100] [--out FILE.json]

The sweep: ``protocols/quickstart.toml`` (WP, NP and backprop on the 10-20-2 tanh network,
standalone backend) over ``--variants`` values of ``rule.lr`` (the same structure, so one build
serves every variant of a rule), ``--seeds`` seeds each, ``--trials`` trials a run.

a. **one by one**: one ``bioplastic run`` command per variant and seed (on the ``protocol.toml``
   that the sweep wrote for that run), each a fresh process, the way a shell loop runs them,
   sharing one build cache;
b. **sweep**: one ``bioplastic sweep --workers 2`` command.

Each method starts from an empty build cache of its own, so both pay for their builds. The build
count is the number of standalone projects each left in its cache; the time of one build is
measured as a cold run's wall time minus a warm run's, and the simulation time is the sum of
the runs' own training time (``wall_time_s`` in their summaries, which includes the warm
backend's start-up but no compilation once the project is built).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = "protocols/quickstart.toml"


def command(*args, cache):
    environment = dict(os.environ, BIOPLASTIC_CACHE=str(cache))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bioplastic.cli", *args], cwd=ROOT, env=environment, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def builds(cache):
    return len(list((Path(cache) / "standalone").glob("*/main")))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    rates = ",".join(str(0.02 * (i + 1)) for i in range(args.variants))
    common = ["--set", f"training.trials={args.trials}", "--set", "analysis.every=0"]
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        # (b) the sweep
        wall_sweep = command("sweep", PROTOCOL, "--grid", f"rule.lr={rates}", "--seeds", str(args.seeds),
                             "--workers", "2", "--out", str(scratch / "sweep"), *common, cache=scratch / "cache_sweep")
        runs = pd.read_csv(scratch / "sweep" / "runs.csv")
        # (a) the same runs, one command each
        wall_one = 0.0
        for path in runs.path:  # each run's resolved protocol.toml runs again as it is
            wall_one += command("run", str(scratch / "sweep" / path / "protocol.toml"), "--out",
                                str(scratch / "one" / path), cache=scratch / "cache_one")
        # one build: a cold run minus a warm one (same structure)
        first = str(scratch / "sweep" / runs.path.iloc[-1] / "protocol.toml")
        cold = command("run", first, "--out", str(scratch / "cold"), cache=scratch / "cache_cold")
        warm = command("run", first, "--out", str(scratch / "warm"), cache=scratch / "cache_cold")
        simulation = float(runs.wall_time_s.sum())
        result = dict(runs=len(runs), one_by_one_s=wall_one, sweep_2_workers_s=wall_sweep, speedup=wall_one / wall_sweep,
                      builds_sweep=builds(scratch / "cache_sweep"), builds_one_by_one=builds(scratch / "cache_one"),
                      build_s=cold - warm, simulation_s=simulation)
    print(f"{result['runs']} runs of quickstart ({args.variants} learning rates x 3 rules x {args.seeds} seeds, "
          f"{args.trials} trials each):")
    print(f"  one `bioplastic run` per run: {wall_one:6.1f} s ({len(runs) / wall_one:.2f} runs/s, "
          f"{result['builds_one_by_one']} builds)")
    print(f"  `bioplastic sweep --workers 2`: {wall_sweep:6.1f} s ({len(runs) / wall_sweep:.2f} runs/s, "
          f"{result['builds_sweep']} builds): {result['speedup']:.2f}x")
    print(f"  one build {result['build_s']:.1f} s; the sweep's runs trained for {simulation:.1f} s in all "
          f"(builds: about {result['builds_sweep'] * result['build_s']:.0f} s of the workers' time)")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
