"""Trials per second of training the quickstart network: bioplastic's standalone trainer
against a naive Brian2 runtime loop (one ``Network.run`` per trial), in the same process.

Run from the repository root::

    .venv/bin/python benchmarks/bench_trial_loop.py [--trials N] [--out FILE.json]

What is timed (see benchmarks/README.md):

a. ``Trainer(p).train()`` with ``training.backend = "standalone"`` for ``--trials`` trials, after
   a warm-up trainer of one trial that builds and compiles the C++ project (timed separately);
b. a hand-written Brian2 script in runtime mode (Cython target, else numpy), the same replicated
   network and the same weight-perturbation update in NumPy, one ``net.restore`` + ``net.run``
   per trial, for ``--naive-trials`` trials after one untimed warm-up trial;
c. ``Trainer(p).train()`` with the runtime (numpy) backend for ``--runtime-trials`` trials;
d. the naive loop of (b) again after ``gc.freeze()`` (Brian2's ``Network.run`` calls
   ``gc.collect()`` every run, and that scan is most of a runtime trial's cost here).

``p`` is the ``weight_perturbation`` variant of ``protocols/quickstart.toml``'s sweep: the same
copies (1 + K variants times the batch), steps and recording as real training. All three start
from the same seed, so their loss curves must agree to rounding; the script checks that.
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "protocols" / "quickstart.toml"
RULE_KIND = "weight_perturbation"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=300, help="timed trials of the standalone trainer (300)")
    parser.add_argument("--naive-trials", type=int, default=50, help="timed trials of the naive loop (50)")
    parser.add_argument("--runtime-trials", type=int, default=20,
                        help="timed trials of bioplastic's runtime numpy backend (20; 0 skips it)")
    parser.add_argument("--no-gc-freeze", action="store_true",
                        help="skip (d), the naive loop rerun after gc.freeze()")
    parser.add_argument("--out", help="write the numbers to this JSON file")
    parser.add_argument("--cache", help="standalone build cache folder (default: a fresh temporary folder, "
                        "so the build time is a cold build)")
    args = parser.parse_args(argv)
    for name in ("trials", "naive_trials"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: must be >= 1")
    if args.runtime_trials < 0:
        parser.error("--runtime-trials: must be >= 0")
    return args


def wp_protocol(trials, backend):
    """The quickstart sweep's weight-perturbation variant, with ``trials`` trials on ``backend``."""
    from bioplastic.config import load_protocol
    protocol = load_protocol(PROTOCOL)
    matches = [p for _, values, p in protocol.variants() if values.get("rule.kind") == RULE_KIND]
    if not matches:
        raise SystemExit(f"{PROTOCOL}: no {RULE_KIND} variant in the sweep")
    p = matches[0]
    # the trial loop, one run of the binary per trial, is what this benchmark measures (the block
    # loop has bench_block_loop.py)
    return dataclasses.replace(p, training=dataclasses.replace(p.training, trials=trials, backend=backend, loop="trial"))


def filesystem_type(path):
    """The type of the filesystem holding ``path`` (ext4, tmpfs, ...), or "?"."""
    import subprocess
    try:
        out = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def _relative(path):
    path = Path(path).absolute()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def losses_of(table):
    return table.loc[table.metric == "loss"].sort_values("trial")["value"].to_numpy()


def timed_backend(backend):
    """Wrap ``backend.run`` (an instance attribute, nothing is edited) to time every call."""
    calls = []
    run = backend.run

    def timed(*a, **k):
        t0 = time.perf_counter()
        try:
            return run(*a, **k)
        finally:
            calls.append(time.perf_counter() - t0)

    backend.run = timed
    return calls, lambda: vars(backend).pop("run", None)


def bench_trainer(backend_name, trials):
    """Warm-up trainer of one trial (the build), then a fresh trainer of ``trials`` trials."""
    from bioplastic.engine.trainer import Trainer
    t0 = time.perf_counter()
    warm = Trainer(wp_protocol(1, backend_name))
    warm.train()
    build_s = time.perf_counter() - t0
    trainer = Trainer(wp_protocol(trials, backend_name))  # same structure: reuses the built backend
    assert trainer.backend is warm.backend
    calls, unwrap = timed_backend(trainer.backend)
    t0 = time.perf_counter()
    table = trainer.train()
    total_s = time.perf_counter() - t0
    unwrap()
    return dict(trials=trials, build_s=build_s, total_s=total_s, sim_s=calls,
                copies=trainer.backend.copies, steps=trainer.steps, record=trainer.backend.blueprint.record,
                losses=losses_of(table)), trainer


# ----------------------------------------------------------------------------------------------
# b. The naive Brian2 loop, written out by hand.
# ----------------------------------------------------------------------------------------------

class NaiveLoop:
    """Weight perturbation on ``copies`` replicated rate networks, one Brian2 runtime run per trial.

    Copy ``v * B + b`` is variant ``v`` (0: clean, k: weights + xi_k) on example ``b``; the B clean
    copies' rates are recorded at every step for the BPTT reference.
    """

    def __init__(self, protocol, target):
        import brian2
        from brian2 import Network, NeuronGroup, StateMonitor, Synapses, defaultclock

        self.protocol = protocol
        model, task, rule = protocol.model, protocol.task, protocol.rule
        self.model, self.task, self.rule = model, task, rule
        self.steps = int(round(float(task.duration / model.dt)))
        self.batch, self.samples = task.batch, rule.samples
        self.variants = 1 + rule.samples
        self.copies = self.variants * self.batch
        self.every = protocol.analysis.every
        if model.activation != "tanh" or rule.antithetic:
            raise SystemExit("the naive loop is written for the tanh, non-antithetic quickstart")

        brian2.set_device("runtime")
        brian2.prefs.codegen.target = target
        self.target = target
        defaultclock.dt = model.dt
        c = self.copies
        self.input = NeuronGroup(c * model.sizes[0], "r : 1", name="naive_layer0")
        eqs = "dr/dt = (-r + tanh(I + pert)) / tau : 1\nI : 1\npert : 1"
        self.layers, self.synapses, self.monitors = [], [], []
        pre = self.input
        for l, (n_out, n_in) in enumerate(model.shapes, start=1):
            group = NeuronGroup(c * n_out, eqs, method="euler", namespace={"tau": model.tau},
                                name=f"naive_layer{l}")
            syn = Synapses(pre, group, "w : 1\nI_post = w * r_pre : 1 (summed)", name=f"naive_weights{l}")
            copy, o, i = np.meshgrid(np.arange(c), np.arange(n_out), np.arange(n_in), indexing="ij")
            syn.connect(i=(copy * n_in + i).ravel(), j=(copy * n_out + o).ravel())
            mon = StateMonitor(group, "r", record=np.arange(self.batch * n_out), name=f"naive_rates{l}")
            self.layers.append(group)
            self.synapses.append(syn)
            self.monitors.append(mon)
            pre = group
        self.net = Network(self.input, *self.layers, *self.synapses, *self.monitors, name="naive_network")
        self.net.store("trial_start")
        self.duration = self.steps * model.dt

    def code_targets(self):
        """Class names of the code objects Brian2 actually ran (after one run)."""
        names = set()
        for obj in self.net.sorted_objects:
            for codeobj in getattr(obj, "code_objects", []) or []:
                names.add(codeobj.__class__.__name__)  # a weak proxy: type() would name the proxy
        return sorted(names)

    def train(self, trials):
        """``trials`` WP updates from the seed's initial weights; returns the clean-batch losses."""
        from bioplastic import rng as streams
        from bioplastic.gradients import bptt
        from bioplastic.networks import init_weights
        from bioplastic.networks.rate_math import forward

        model, task, rule, seed = self.model, self.task, self.rule, self.protocol.seed
        B, K, V, steps, a = self.batch, self.samples, self.variants, self.steps, model.a
        weights = init_weights(model, streams.stream(seed, "init"))
        teacher_model = dataclasses.replace(model, init_gain=task.teacher_gain)
        teacher_weights = init_weights(teacher_model, streams.stream(seed, "teacher"))
        input_rng, noise_rng = streams.stream(seed, "inputs"), streams.stream(seed, "noise")
        losses, sim_s = [], []
        for t in range(trials):
            inputs = input_rng.normal(0.0, task.input_std, (B, model.sizes[0]))
            targets = forward(teacher_weights, inputs, model.activation, a, steps)[-1]
            noise = [noise_rng.normal(0.0, rule.sigma, (K,) + w.shape) for w in weights]

            t0 = time.perf_counter()
            self.net.restore("trial_start")
            self.input.r[:] = np.tile(inputs, (V, 1)).ravel()
            for syn, w, xi in zip(self.synapses, weights, noise):
                per_variant = w[None] + np.concatenate([np.zeros_like(xi[:1]), xi])  # (V, n_out, n_in)
                syn.w[:] = np.repeat(per_variant, B, axis=0).ravel()
            self.net.run(self.duration, namespace={})
            output = np.array(self.layers[-1].r[:]).reshape(V, B, -1)  # copies, as RateNetwork.read does
            trajectory = [np.array(m.r[:]).T.reshape(steps, B, -1) for m in self.monitors]
            sim_s.append(time.perf_counter() - t0)

            per_copy = np.mean((output - targets) ** 2, axis=-1)  # (V, B)
            batch_loss = per_copy.mean(axis=1)
            differences = batch_loss[1:] - batch_loss[0]
            flat = np.concatenate([n.reshape(K, -1) for n in noise], axis=1)
            g = flat.T @ differences / (K * rule.sigma ** 2)
            splits = np.cumsum([w.size for w in weights])[:-1]
            update = [-rule.lr * part.reshape(w.shape) for part, w in zip(np.split(g, splits), weights)]
            if self.every > 0 and t % self.every == 0:  # the trainer's analysis: BPTT on the clean copies
                grad = bptt(weights, inputs, trajectory, 2.0 * (output[0] - targets) / output[0].size,
                            model.activation, a)
                u = np.concatenate([x.ravel() for x in update])
                d = -np.concatenate([x.ravel() for x in grad.weights])
                float(u @ d / (np.linalg.norm(u) * np.linalg.norm(d)))
            loss = float(batch_loss[0])
            if not np.isfinite(loss) or not all(np.all(np.isfinite(x)) for x in update):
                raise RuntimeError(f"naive loop diverged at trial {t}")
            losses.append(loss)
            weights = [w + x for w, x in zip(weights, update)]
        return np.array(losses), sim_s


def bench_naive(protocol, trials):
    """Build the naive loop (Cython, else numpy), one untimed warm-up trial, then ``trials`` trials."""
    failure = None
    for target in ("cython", "numpy"):
        try:
            t0 = time.perf_counter()
            loop = NaiveLoop(protocol, target)
            loop.train(1)
            warmup_s = time.perf_counter() - t0
            break
        except Exception as exc:  # noqa: BLE001  (a failed Cython compile: fall back to numpy)
            if target == "numpy":
                raise
            failure = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            print(f"  cython target failed ({failure}); falling back to numpy", flush=True)
    code_objects = loop.code_targets()
    t0 = time.perf_counter()
    losses, sim_s = loop.train(trials)
    total_s = time.perf_counter() - t0
    return dict(trials=trials, build_s=warmup_s, total_s=total_s, sim_s=sim_s, target=loop.target,
                code_objects=code_objects, cython_failure=failure, copies=loop.copies, steps=loop.steps,
                record=loop.batch, losses=losses), loop


def bench_naive_frozen(loop, trials):
    """The same naive loop with the garbage collector's current objects frozen (``gc.freeze()``).

    Brian2's ``Network.run`` calls ``gc.collect()`` on every run; with Brian2, SymPy and Cython
    loaded that is a full scan of some 10^5 objects. Freezing them makes the scan cheap.
    """
    import gc

    import brian2
    brian2.set_device("runtime")
    brian2.prefs.codegen.target = loop.target  # another backend may have changed it since
    t0 = time.perf_counter()
    loop.train(1)
    warmup_s = time.perf_counter() - t0
    gc.collect()
    gc.freeze()
    try:
        t0 = time.perf_counter()
        losses, sim_s = loop.train(trials)
        total_s = time.perf_counter() - t0
    finally:
        gc.unfreeze()
    return dict(trials=trials, build_s=warmup_s, total_s=total_s, sim_s=sim_s, target=loop.target, losses=losses)


# ----------------------------------------------------------------------------------------------

def row(name, result):
    ms = 1e3 * result["total_s"] / result["trials"]
    return dict(method=name, trials=result["trials"], ms_per_trial=ms, trials_per_s=1e3 / ms,
                sim_ms_per_trial=1e3 * float(np.mean(result["sim_s"])),
                sim_ms_median=1e3 * float(np.median(result["sim_s"])), build_s=result["build_s"])


def print_table(rows):
    print()
    print(f"{'method':<34} {'trials':>6} {'ms/trial':>9} {'trials/s':>9} {'run ms':>7} {'(median)':>8} "
          f"{'build/warm-up s':>16}")
    print("-" * 95)
    for r in rows:
        print(f"{r['method']:<34} {r['trials']:>6} {r['ms_per_trial']:>9.2f} {r['trials_per_s']:>9.1f} "
              f"{r['sim_ms_per_trial']:>7.2f} {r['sim_ms_median']:>8.2f} {r['build_s']:>16.2f}")
    print("ms/trial: wall time of the whole trial loop / trials; run ms: the part spent setting values, "
          "running Brian2\nand reading results back (mean, median); build/warm-up: the untimed first trial, "
          "incl. compilation.")
    print()


def max_loss_difference(a, b):
    n = min(len(a), len(b))
    return float(np.max(np.abs(a[:n] - b[:n]) / np.maximum(np.abs(b[:n]), 1e-12))), n


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out).resolve() if args.out else None  # relative to where it was started
    cache = Path(args.cache).resolve() if args.cache else Path(tempfile.mkdtemp(prefix="bench-bioplastic-"))
    os.chdir(ROOT)  # the protocol's model file and the bioplastic package are found from the root
    sys.path.insert(0, str(ROOT))
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["BIOPLASTIC_CACHE"] = str(cache)
    cache_fs = filesystem_type(cache)

    import brian2

    from bioplastic.engine import backends

    started = time.perf_counter()
    protocol = wp_protocol(args.trials, "standalone")
    copies = (1 + protocol.rule.samples) * protocol.task.batch
    steps = int(round(float(protocol.task.duration / protocol.model.dt)))
    print(f"quickstart {RULE_KIND}: sizes {protocol.model.sizes}, batch {protocol.task.batch}, "
          f"K = {protocol.rule.samples} -> {copies} copies, {steps} steps of {protocol.model.dt}, "
          f"analysis every {protocol.analysis.every} trials; brian2 {brian2.__version__}, "
          f"{os.cpu_count()} CPUs; standalone build cache {cache} ({cache_fs})", flush=True)

    results, rows = {}, []
    try:
        print(f"a. standalone trainer: build, then {args.trials} trials ...", flush=True)
        results["standalone"], trainer = bench_trainer("standalone", args.trials)
        trainer.backend.close()  # gives Brian2's device back, before the naive loop takes it
        rows.append(row("bioplastic standalone (run_args)", results["standalone"]))

        print(f"b. naive Brian2 runtime loop: build + warm-up, then {args.naive_trials} trials ...", flush=True)
        results["naive"], loop = bench_naive(protocol, args.naive_trials)
        backends._owner = None  # the naive loop used the device behind bioplastic's back
        rows.append(row(f"naive Brian2 loop ({results['naive']['target']})", results["naive"]))

        if args.runtime_trials:
            print(f"c. runtime (numpy) trainer: warm-up, then {args.runtime_trials} trials ...", flush=True)
            results["runtime"], _ = bench_trainer("runtime", args.runtime_trials)
            rows.append(row("bioplastic runtime (numpy)", results["runtime"]))

        if not args.no_gc_freeze:
            print(f"d. the naive loop again, after gc.freeze(): {args.naive_trials} trials ...", flush=True)
            results["naive_frozen"] = bench_naive_frozen(loop, args.naive_trials)
            backends._owner = None
            rows.append(row(f"naive loop + gc.freeze() ({loop.target})", results["naive_frozen"]))
    finally:
        if not args.cache:
            shutil.rmtree(cache, ignore_errors=True)

    print_table(rows)
    ratio = rows[0]["trials_per_s"] / rows[1]["trials_per_s"]
    print(f"standalone / naive: {ratio:.1f}x trials per second (target: >= 10x) "
          f"-> {'OK' if ratio >= 10 else 'BELOW TARGET'}")
    ratio_frozen = None
    if "naive_frozen" in results:
        ratio_frozen = rows[0]["trials_per_s"] / rows[-1]["trials_per_s"]
        print(f"standalone / (naive + gc.freeze()): {ratio_frozen:.1f}x")
    naive = results["naive"]
    print(f"naive loop code objects: {', '.join(naive['code_objects'])}")
    checks = {}
    for name in [k for k in ("naive", "runtime", "naive_frozen") if k in results]:
        diff, n = max_loss_difference(results[name]["losses"], results["standalone"]["losses"])
        checks[name] = dict(trials_compared=n, max_relative_loss_difference=diff)
        print(f"loss curve {name} vs standalone, first {n} trials: max relative difference {diff:.2e}")
    agree = all(c["max_relative_loss_difference"] <= 1e-6 for c in checks.values())
    if not agree:
        print("ERROR: the loss curves disagree: the methods are not doing the same work", file=sys.stderr)
    total = time.perf_counter() - started
    print(f"total benchmark time {total:.1f} s")

    if out:
        report = dict(
            benchmark="bench_trial_loop", date=datetime.datetime.now().isoformat(timespec="seconds"),
            command=" ".join([_relative(sys.executable), *sys.argv]),
            machine=dict(cpus=os.cpu_count(), platform=platform.platform(), processor=platform.processor(),
                         python=platform.python_version(), brian2=brian2.__version__, numpy=np.__version__,
                         load_average=os.getloadavg()),
            standalone_cache=dict(path=str(cache), filesystem=cache_fs, temporary=not args.cache),
            network=dict(protocol=str(PROTOCOL.relative_to(ROOT)), rule=RULE_KIND, sizes=protocol.model.sizes,
                         batch=protocol.task.batch, samples=protocol.rule.samples, copies=copies, steps=steps,
                         recorded_copies=protocol.task.batch, analysis_every=protocol.analysis.every),
            results={r["method"]: r for r in rows},
            naive_target=naive["target"], naive_code_objects=naive["code_objects"],
            naive_cython_failure=naive["cython_failure"],
            standalone_over_naive=ratio, standalone_over_naive_gc_frozen=ratio_frozen, loss_checks=checks, losses_agree=agree, total_s=total)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
