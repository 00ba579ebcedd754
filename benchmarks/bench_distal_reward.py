"""Izhikevich (2007) distal reward: bioplastic's standalone experiment against the same network
written the way a typical Brian2 user writes it (runtime mode, Cython, clock-driven eligibility).

Run from the repository root::

    .venv/bin/python benchmarks/bench_distal_reward.py [--duration 600] [--naive-duration 20] \\
        [--repeats 3] [--json FILE.json]

What is timed (see benchmarks/README.md):

a. bioplastic: ``Experiment(p)`` for ``protocols/izhikevich2007_distal_reward.toml`` with
   ``task.duration = --duration`` on the standalone backend. The build (code generation and C++
   compilation, cached in ``.bioplastic_cache/`` by a hash of the network, so only the first build
   of a duration compiles) is timed on its own and left out of the ratio. Then ``e.run()`` is timed
   ``--repeats`` times (the whole call: binary, reading the results, metrics), and within it the
   binary alone (``subprocess.run``, wrapped at runtime as a measurement).
b. naive: the same network written out below as a plain Brian2 script: runtime device, Cython
   code generation (numpy if Cython fails, and the script says so), per-synapse event-driven STDP
   traces, a clock-driven eligibility ``c`` and weight ``w`` on every synapse, a one-neuron
   dopamine group, and the reward logic in a ``network_operation``. One ``run(1 ms)`` warms it up
   (compiles every code object; reported on its own), then one ``run(--naive-duration)`` is timed.

The ratio compares the cost per simulated second: naive wall time / D_slow against bioplastic's
median ``e.run()`` time / D_fast. The issue's target is at least 40x real time for bioplastic
(one hour in at most 90 s after the build). The script exits 1 only if bioplastic's run fails or
reports no spikes; speed decides nothing.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "protocols" / "izhikevich2007_distal_reward.toml"
TARGET_SPEEDUP = 40.0  # the issue: one simulated hour in <= 90 s after the build

# The network of models/izhikevich2007_network.toml and the rule of the protocol (daspnet.m).
N_EXC, N_INH, OUT_DEGREE = 800, 200, 100
PRESETS = {"RS": (0.02, 0.2, -65.0, 8.0), "FS": (0.1, 0.2, -65.0, 2.0)}  # a, b, c (mV), d (mV)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0,
                        help="simulated seconds of the bioplastic run, D_fast (600)")
    parser.add_argument("--naive-duration", type=float, default=20.0,
                        help="simulated seconds of the timed naive run, D_slow (20)")
    parser.add_argument("--repeats", type=int, default=3, help="timed bioplastic runs (3; the build is cached)")
    parser.add_argument("--naive-target", choices=("cython", "numpy"), default="cython",
                        help="Brian2 code-generation target of the naive script (cython; numpy if it fails)")
    parser.add_argument("--profile", action="store_true",
                        help="also print Brian2's per-code-object profile of the naive run")
    parser.add_argument("--cold", action="store_true",
                        help="build in fresh temporary caches (bioplastic's build folder and Brian2's Cython "
                             "cache), removed at the end, so both build times are cold compilations")
    parser.add_argument("--json", metavar="PATH", help="write every number to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats: must be >= 1")
    for name in ("duration", "naive_duration"):
        value = getattr(args, name)
        if value < 2 or abs(value - round(value)) > 1e-9:
            parser.error(f"--{name.replace('_', '-')}: must be a whole number of seconds >= 2")
    return args


# -- a. bioplastic ------------------------------------------------------------------------------
class BinaryTimer:
    """Wraps ``subprocess.run`` as ``bioplastic.engine.backends`` sees it, timing calls of ./main."""

    def __init__(self):
        from bioplastic.engine import backends
        self.module, self.original, self.calls = backends.subprocess, backends.subprocess.run, []

    def __enter__(self):
        original, calls = self.original, self.calls

        def timed(cmd, *a, **k):
            t0 = time.perf_counter()
            try:
                return original(cmd, *a, **k)
            finally:
                if isinstance(cmd, (list, tuple)) and cmd and str(cmd[0]).endswith("main"):
                    calls.append(time.perf_counter() - t0)

        self.module.run = timed
        return self

    def __exit__(self, *exc):
        self.module.run = self.original


def bench_bioplastic(duration, repeats, early):
    """Build, then ``repeats`` timed runs of the protocol for ``duration`` simulated seconds."""
    from bioplastic.config import load_protocol
    from bioplastic.engine.experiment import Experiment

    protocol = load_protocol(PROTOCOL, [f'task.duration="{duration:g} s"'])
    t0 = time.perf_counter()
    experiment = Experiment(protocol)
    setup_s = time.perf_counter() - t0
    directory = experiment.backend.directory
    cached = (directory / "main").exists()
    print(f"  build folder {directory.relative_to(ROOT) if directory.is_relative_to(ROOT) else directory} "
          f"({'compiled binary present: cached build' if cached else 'no binary yet: cold build'})", flush=True)
    t0 = time.perf_counter()
    experiment.backend._ready()
    build_s = time.perf_counter() - t0
    print(f"  build {build_s:.1f} s (+ {setup_s:.1f} s setting up the experiment)", flush=True)

    runs, binary, summary, metrics = [], [], None, None
    for k in range(repeats):
        with BinaryTimer() as timer:
            t0 = time.perf_counter()
            metrics, _, summary = experiment.run()
            runs.append(time.perf_counter() - t0)
        binary.append(sum(timer.calls))
        print(f"  run {k + 1}/{repeats}: {runs[-1]:.2f} s (binary {binary[-1]:.2f} s), "
              f"rate {summary['mean_rate_hz']:.3f} Hz, {summary['rewards']} rewards", flush=True)
    experiment.backend.close()  # gives Brian2's device back before the naive script takes it

    rates = metrics[metrics.metric == "rate"]
    mean_weight = metrics[(metrics.metric == "mean_weight") & (metrics.t_s <= early + 1e-9)]
    rewards = metrics[metrics.metric == "reward"]
    rewards_early = rewards[rewards.t_s <= early + 1e-9].value
    return dict(duration_s=duration, build_s=build_s, setup_s=setup_s, build_cached=cached,
                build_folder=str(directory), run_s=runs, binary_s=binary,
                run_min_s=min(runs), run_median_s=statistics.median(runs),
                binary_min_s=min(binary), binary_median_s=statistics.median(binary),
                rate_hz=float(rates.value.mean()),
                rate_first_hz=float(rates[rates.t_s <= early + 1e-9].value.mean()),
                rewards=int(summary["rewards"]), rewards_dropped=int(summary["rewards_dropped"]),
                rewards_first=int(rewards_early.iloc[-1]) if len(rewards_early) else 0,
                final_rewarded_weight_mv=summary["final_rewarded_weight_mv"],
                final_mean_weight_mv=summary["final_mean_weight_mv"],
                mean_weight_first_mv=float(mean_weight.sort_values("t_s").value.iloc[-1]))


# -- b. the naive Brian2 script -----------------------------------------------------------------
def naive_connectivity(rng):
    """100 distinct random targets per neuron, no self-connections; inhibitory onto excitatory."""
    n = N_EXC + N_INH
    exc_i, exc_j, inh_i, inh_j = [], [], [], []
    for source in range(n):
        pool = np.arange(n if source < N_EXC else N_EXC)
        pool = pool[pool != source]
        targets = rng.choice(pool, size=OUT_DEGREE, replace=False)
        (exc_i if source < N_EXC else inh_i).extend([source] * OUT_DEGREE)
        (exc_j if source < N_EXC else inh_j).extend(targets)
    return (np.array(exc_i), np.array(exc_j)), (np.array(inh_i) - N_EXC, np.array(inh_j))


def cython_cache():
    from brian2 import prefs
    from brian2.codegen.runtime.cython_rt.extension_manager import get_cython_cache_dir
    return Path(prefs.codegen.runtime.cython.cache_dir or get_cython_cache_dir())


def cython_modules(cache):
    """The compiled extension modules in Brian2's Cython cache folder."""
    return {p.name for p in cache.glob("*.so")} if cache.is_dir() else set()


class NaiveDistalReward:
    """Izhikevich (2007) as a Brian2 user writes it from the ``frompapers`` example and the docs."""

    def __init__(self, target, seed=1):
        import brian2
        from brian2 import (ExplicitStateUpdater, Network, NeuronGroup, SpikeMonitor, StateMonitor, Synapses,
                            defaultclock, linked_var, ms, mV, network_operation, prefs, second)

        brian2.set_device("runtime")
        prefs.codegen.target = target
        self.target = target
        brian2.seed(seed)
        rng = np.random.default_rng(seed)
        defaultclock.dt = 1 * ms
        self.dt = 1e-3

        # Izhikevich's neurons. "Euler with dt = 0.5 ms" on the 1-ms clock of everything else: two
        # Euler half steps per step with the input held (his own scheme updates u once with the new
        # v; here u takes two half steps as well).
        half_euler = ExplicitStateUpdater("x_half = x + 0.5*dt*f(x, t)\n"
                                          "x_new = x_half + 0.5*dt*f(x_half, t + 0.5*dt)")
        eqs = """dv/dt = (0.04*v**2/mV + 5*v + 140*mV - u + I) / ms : volt
                 du/dt = a * (b*v - u) / ms : volt
                 I : volt
                 a : 1 (constant)
                 b : 1 (constant)
                 v_reset : volt (constant)
                 u_jump : volt (constant)
                 tspike : second"""
        neurons = NeuronGroup(N_EXC + N_INH, eqs, threshold="v >= 30*mV",
                              reset="v = v_reset\nu += u_jump\ntspike = t", method=half_euler,
                              name=f"naive_neurons_{target}")
        params = np.array([PRESETS["RS"]] * N_EXC + [PRESETS["FS"]] * N_INH)
        neurons.a, neurons.b = params[:, 0], params[:, 1]
        neurons.v_reset, neurons.u_jump = params[:, 2] * mV, params[:, 3] * mV
        neurons.v = neurons.v_reset
        neurons.u = neurons.b * neurons.v
        neurons.tspike = -1e9 * second
        # daspnet.m: I = 13 * (rand - 0.5) every ms for every neuron
        neurons.run_regularly("I = 13*mV*(rand() - 0.5)", when="start", name=f"naive_thalamic_{target}")
        exc_group, inh_group = neurons[:N_EXC], neurons[N_EXC:]

        dopamine = NeuronGroup(1, "dd/dt = -d / tau_d : 1", method="exact", name=f"naive_dopamine_{target}")

        # Dopamine-modulated STDP as in brian2's examples/frompapers/Izhikevich_2007.py: the STDP
        # traces are per-synapse event-driven variables; the eligibility c and the weight w are
        # integrated on every synapse at every step (clock-driven).
        stdp = """d : 1 (linked)
                  dopamine_index : integer (constant)
                  dc/dt = -c / tau_c : 1 (clock-driven)
                  dw/dt = lr * c * (tonic + d) / tau_c : volt (clock-driven)
                  dapre/dt = -apre / tau_plus : 1 (event-driven)
                  dapost/dt = -apost / tau_minus : 1 (event-driven)"""
        namespace = dict(tau_c=1 * second, tau_d=200 * ms, lr=100 * mV, tonic=0.002, tau_plus=20 * ms,
                         tau_minus=20 * ms, a_plus=0.1, a_minus=0.15, w_min=0 * mV, w_max=4 * mV)
        exc = Synapses(exc_group, neurons, stdp,
                       on_pre="v_post += w\nc -= a_minus * apost\napre += 1",
                       on_post="c += a_plus * apre\napost += 1",
                       delay=1 * ms, method="euler", namespace=namespace, name=f"naive_exc_{target}")
        inh = Synapses(inh_group, exc_group, "w : volt", on_pre="v_post += w", delay=1 * ms,
                       name=f"naive_inh_{target}")
        (exc_i, exc_j), (inh_i, inh_j) = naive_connectivity(rng)
        exc.connect(i=exc_i, j=exc_j)
        inh.connect(i=inh_i, j=inh_j)
        exc.w = 1 * mV
        inh.w = -1 * mV
        exc.dopamine_index = 0
        exc.d = linked_var(dopamine, "d", index="dopamine_index")
        # daspnet.m applies and clips the weights every 10 ms; the clip runs as often here (clipping
        # at every step would cost this script about 0.14 s more per simulated second).
        exc.run_regularly("w = clip(w, w_min, w_max)", dt=10 * ms, when="end", name=f"naive_clip_{target}")
        dopamine.namespace.update(namespace)

        # The rewarded synapse: the first one of neuron 0, starting at 0 mV (as in the protocol).
        self.rewarded = 0
        self.pre, self.post = int(exc_i[0]), int(exc_j[0])
        exc.w[self.rewarded] = 0 * mV

        # Reward logic the simple way: after every step, look at the two neurons' last spikes; a
        # post spike 0 < dt < 20 ms after a pre spike schedules 0.5 dopamine 1-3 s later.
        pending, counts = [], {"pairings": 0, "rewards": 0}
        delays = np.random.default_rng(seed + 1)

        @network_operation(dt=defaultclock.dt, when="end", name=f"naive_reward_{target}")
        def reward(t):
            now = float(t[:] / second)
            t_post = float(neurons.tspike_[self.post])
            if abs(t_post - now) < 0.5 * self.dt:
                gap = t_post - float(neurons.tspike_[self.pre])
                if 0.5 * self.dt < gap < 0.020 - 0.5 * self.dt:
                    pending.append(now + 1.0 + np.ceil(2000 * delays.random()) * 1e-3)  # daspnet.m
                    counts["pairings"] += 1
            while pending and pending[0] <= now + 0.5 * self.dt:
                pending.pop(0)
                dopamine.d_ += 0.5
                counts["rewards"] += 1

        self.spikes = SpikeMonitor(neurons, name=f"naive_spikes_{target}")
        self.weight = StateMonitor(exc, "w", record=[self.rewarded], dt=1 * second, name=f"naive_weight_{target}")
        self.exc, self.counts = exc, counts
        self.net = Network(neurons, dopamine, exc, inh, reward, self.spikes, self.weight,
                           name=f"naive_network_{target}")

    def run(self, duration, profile=False):
        from brian2 import second
        self.net.run(duration * second, namespace={}, profile=profile)

    def code_targets(self):
        names = set()
        for obj in self.net.sorted_objects:
            for codeobj in getattr(obj, "code_objects", []) or []:
                names.add(codeobj.__class__.__name__)
        return sorted(names)


def bench_naive(duration, target, profile):
    failure = None
    if target == "cython":
        from brian2.codegen.runtime.cython_rt import CythonCodeObject
        if not CythonCodeObject.is_available():  # Brian2's own check: compiles a small test module
            failure = "brian2's CythonCodeObject.is_available() is False (no working Cython/compiler)"
            print(f"  cython target unavailable ({failure}); falling back to numpy", flush=True)
            target = "numpy"
    cache = cython_cache()
    modules_before = cython_modules(cache)
    t0 = time.perf_counter()
    naive = NaiveDistalReward(target)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive.run(1e-3)  # one step: compiles (or loads from Brian2's Cython cache) every code object
    warmup_s = time.perf_counter() - t0
    compiled = len(cython_modules(cache) - modules_before) if target == "cython" else None
    where = f"{compiled} Cython modules compiled, the rest found in {cache}" if target == "cython" else \
        "numpy: nothing to compile"
    print(f"  target {naive.target}: network set up in {build_s:.1f} s, warm-up run of one step "
          f"{warmup_s:.1f} s ({where})", flush=True)
    spikes_before = naive.spikes.num_spikes
    t0 = time.perf_counter()
    naive.run(duration, profile=profile)
    run_s = time.perf_counter() - t0
    if profile:
        from brian2 import profiling_summary
        print(profiling_summary(naive.net, show=12))
    spikes = naive.spikes.num_spikes - spikes_before
    w = np.asarray(naive.exc.w_) * 1e3
    result = dict(duration_s=duration, target=naive.target, cython_failure=failure, build_s=build_s,
                  warmup_s=warmup_s, cython_modules_compiled=compiled, run_s=run_s,
                  per_sim_s=run_s / duration,
                  rate_hz=spikes / (N_EXC + N_INH) / duration,
                  rewards=naive.counts["rewards"], pairings=naive.counts["pairings"],
                  final_rewarded_weight_mv=float(w[naive.rewarded]),
                  final_mean_weight_mv=float(w.mean()),
                  code_objects=naive.code_targets())
    print(f"  run of {duration:g} s: {run_s:.1f} s ({run_s / duration:.3f} s per simulated second), "
          f"rate {result['rate_hz']:.3f} Hz, {result['rewards']} rewards", flush=True)
    return result


# -- report -------------------------------------------------------------------------------------
def table(bp, nv):
    per_bp = bp["run_median_s"] / bp["duration_s"]
    per_bin = bp["binary_median_s"] / bp["duration_s"]
    rows = [
        ("", f"bioplastic standalone ({bp['duration_s']:g} s)", f"naive Brian2 runtime, {nv['target']} "
         f"({nv['duration_s']:g} s)"),
        ("build / warm-up (not in the ratio)",
         f"{bp['build_s']:.1f} s ({'cached' if bp['build_cached'] else 'cold'} build)",
         f"{nv['build_s'] + nv['warmup_s']:.1f} s" + (f" ({nv['cython_modules_compiled']} Cython modules compiled)"
                                                      if nv["cython_modules_compiled"] is not None else "")),
        ("run wall time", f"{bp['run_median_s']:.2f} s median, {bp['run_min_s']:.2f} s min "
         f"({len(bp['run_s'])} runs)", f"{nv['run_s']:.1f} s"),
        ("of which the binary", f"{bp['binary_median_s']:.2f} s median", "-"),
        ("wall s per simulated s", f"{per_bp:.4f}", f"{nv['per_sim_s']:.3f}"),
        ("real-time factor (simulated s per wall s)", f"{1 / per_bp:.1f}x", f"{1 / nv['per_sim_s']:.2f}x"),
        ("one simulated hour (extrapolated)", f"{per_bp * 3600:.1f} s", f"{nv['per_sim_s'] * 3600 / 60:.0f} min"),
        ("firing rate", f"{bp['rate_hz']:.3f} Hz (first {nv['duration_s']:g} s: {bp['rate_first_hz']:.3f} Hz)",
         f"{nv['rate_hz']:.3f} Hz"),
        ("rewards", f"{bp['rewards']} ({bp['rewards_first']} in the first {nv['duration_s']:g} s)",
         f"{nv['rewards']}"),
        ("mean excitatory weight at the end", f"{bp['final_mean_weight_mv']:.3f} mV (at "
         f"{nv['duration_s']:g} s: {bp['mean_weight_first_mv']:.3f} mV)", f"{nv['final_mean_weight_mv']:.3f} mV"),
        ("rewarded synapse at the end", f"{bp['final_rewarded_weight_mv']:.2f} mV",
         f"{nv['final_rewarded_weight_mv']:.2f} mV"),
    ]
    lines = [f"| {' | '.join(rows[0])} |", "|---|---:|---:|"]
    lines += [f"| {' | '.join(r)} |" for r in rows[1:]]
    ratio = nv["per_sim_s"] / per_bp
    ratio_binary = nv["per_sim_s"] / per_bin
    lines.append(f"| **naive / bioplastic, per simulated second** | **{ratio:.0f}x** "
                 f"({ratio_binary:.0f}x against the binary alone) | |")
    return "\n".join(lines), ratio, ratio_binary, 1 / per_bp


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.json).resolve() if args.json else None  # relative to where it was started
    os.chdir(ROOT)  # the protocol's model file, the package and .bioplastic_cache/ are found from here
    sys.path.insert(0, str(ROOT))

    scratch = None
    if args.cold:
        scratch = Path(tempfile.mkdtemp(prefix="bench-distal-reward-"))
        os.environ["BIOPLASTIC_CACHE"] = str(scratch / "bioplastic")
    import brian2
    if args.cold:
        brian2.prefs.codegen.runtime.cython.cache_dir = str(scratch / "cython")
    try:
        return measure(args, out)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def measure(args, out):
    import brian2

    started = time.perf_counter()
    load = os.getloadavg()
    print(f"Izhikevich (2007) distal reward, 1000 neurons, 100 000 synapses, dt = 1 ms; brian2 "
          f"{brian2.__version__}, {os.cpu_count()} CPUs, load average {load[0]:.2f}", flush=True)

    print(f"a. bioplastic standalone: build, then {args.repeats} runs of {args.duration:g} s ...", flush=True)
    try:
        bp = bench_bioplastic(args.duration, args.repeats, args.naive_duration)
    except Exception as exc:  # noqa: BLE001
        print(f"ERROR: bioplastic's run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if not bp["rate_hz"] > 0:
        print("ERROR: bioplastic's run reported no spikes", file=sys.stderr)
        return 1

    print(f"b. naive Brian2 script ({args.naive_target}): warm-up, then {args.naive_duration:g} s ...", flush=True)
    nv = bench_naive(args.naive_duration, args.naive_target, args.profile)

    text, ratio, ratio_binary, speed = table(bp, nv)
    print()
    print(text)
    print()
    meets = speed >= TARGET_SPEEDUP
    print(f"bioplastic: {speed:.1f}x real time, one hour in {3600 / speed:.1f} s after the build "
          f"(target: >= {TARGET_SPEEDUP:g}x, one hour in <= {3600 / TARGET_SPEEDUP:g} s) -> "
          f"{'meets the target' if meets else 'BELOW THE TARGET'}")
    print(f"naive / bioplastic per simulated second: {ratio:.0f}x ({ratio_binary:.0f}x against the binary alone)")
    if nv["cython_failure"]:
        print(f"note: the naive script ran with numpy because Cython failed: {nv['cython_failure']}")
    total = time.perf_counter() - started
    print(f"total benchmark time {total:.1f} s")

    if out:
        report = dict(
            benchmark="bench_distal_reward", date=datetime.datetime.now().isoformat(timespec="seconds"),
            command=" ".join([sys.executable if not Path(sys.executable).is_relative_to(ROOT)
                              else str(Path(sys.executable).relative_to(ROOT)), *sys.argv]),
            machine=dict(cpus=os.cpu_count(), platform=platform.platform(), python=platform.python_version(),
                         brian2=brian2.__version__, numpy=np.__version__, load_average_start=load,
                         load_average_end=os.getloadavg()),
            cold_caches=args.cold, protocol=str(PROTOCOL.relative_to(ROOT)), bioplastic=bp, naive=nv,
            naive_over_bioplastic=ratio, naive_over_bioplastic_binary=ratio_binary,
            bioplastic_realtime_factor=speed, target_realtime_factor=TARGET_SPEEDUP, meets_target=meets,
            total_s=total)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
