"""The ``bioplastic`` command: argument parsing and printing only.

Every command ends in one handler (:func:`main`): bad input is one ``error:`` line and exit 2, a
bug one line and exit 1 (``--debug`` shows the traceback), Ctrl-C exit 130 and SIGTERM exit 143,
each after its temporary files are removed.
"""

import argparse
import datetime
import math
import os
import signal
import sys
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .errors import BuildError, SimulationKilled, SpecError

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DESCRIPTION = """bioplastic: biologically plausible learning rules in Brian2, measured against the true gradient.

Trains rate and spiking networks with weight and node perturbation, backprop and reward-modulated
STDP, and compares every rule's update with the gradient. A protocol (TOML) names the model, the
task, the rule, the training and the analysis; see README.md and `bioplastic list`."""


def _stamp():
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def _default_out(name, prefix=""):
    out = Path("results") / name / f"{prefix}{_stamp()}"
    n = 1
    while out.exists():
        out = Path("results") / name / f"{prefix}{_stamp()}-{n}"
        n += 1
    return out


def _load(args):
    from .config import load_protocol
    if getattr(args, "out", None) is not None and not args.out.strip():
        raise SpecError("--out", "must name a folder (leave it out for the default)", args.out)
    return load_protocol(args.protocol, args.set or (), quick=getattr(args, "quick", False),
                         grid=getattr(args, "grid", None) or (), seeds=getattr(args, "seeds", None),
                         plugins=args.plugin or ())


def cmd_sweep(args):
    from .sweep import run_sweep
    if not args.out.strip():
        raise SpecError("--out", "must name a folder", args.out)
    if args.workers < 1:
        raise SpecError("--workers", "must be >= 1", args.workers)
    if not (math.isfinite(args.connect_timeout) and args.connect_timeout > 0):
        raise SpecError("--connect-timeout", "must be a positive number of seconds", args.connect_timeout)
    protocol = _load(args)
    if args.scheduler is None:
        _check_workers(protocol, args.workers)
    out = Path(args.out)
    where = f"the Dask cluster at {args.scheduler}" if args.scheduler else f"{args.workers} worker processes"
    print(f"sweeping {protocol.name} -> {out} ({len(protocol.variants())} variants x {protocol.sweep['seeds']} seeds "
          f"on {where})", flush=True)
    summary = run_sweep(protocol, out, workers=args.workers, scheduler=args.scheduler, progress=True,
                        connect_timeout=args.connect_timeout, retry_failed=args.retry_failed)
    print(f"  {summary['done']} of {summary['runs']} runs done, {summary['failed']} failed")
    print(f"results: {out}")
    return EXIT_OK


def cmd_validate(args):
    from .resources import for_protocol, size
    protocol = _load(args)
    variants = len(protocol.variants()) if protocol.sweep else 1
    print(f"ok: {args.protocol}: {protocol.name} ({protocol.rule_kind if not protocol.sweep else f'{variants} variants'})")
    need = for_protocol(protocol)
    print(f"  needs about {size(need['memory'])} of memory and {size(need['shm'])} of /dev/shm"
          + (" per run (`bioplastic sweep` runs one per worker at once)" if protocol.sweep else ""))
    return EXIT_OK


def _check_workers(protocol, workers):
    """Refuse more sweep workers than the memory holds: each runs a whole run at once."""
    from .resources import SHARE, available_bytes, for_protocol, size
    need, have = for_protocol(protocol)["memory"], available_bytes()
    if have is not None and workers > 1 and workers * need > SHARE * have:
        fits = max(1, int(SHARE * have // need))
        raise SpecError("--workers", f"{workers} workers need about {size(workers * need)} at once (one run each, "
                        f"{size(need)}); this machine has {size(have)} available: use --workers {fits}", workers)


def cmd_run(args):
    from .sweep import run_protocol
    protocol = _load(args)
    out = Path(args.out) if args.out else _default_out(protocol.name)
    print(f"running {protocol.name} -> {out}", flush=True)
    if args.retry_failed and not protocol.sweep:
        raise SpecError("--retry-failed", "resumes a sweep; this protocol has no [sweep] table", args.protocol)
    summary = run_protocol(protocol, out, progress=True, retry_failed=args.retry_failed)
    if protocol.sweep:
        if summary.get("failed"):
            print(f"  {summary['failed']} run(s) failed: see the status and error columns of runs.csv")
        for v in summary["variants"]:
            if "final_loss" in v:
                print(f"  {v['variant']:<22} final loss {v['final_loss']:.4g}  mean cosine "
                      f"{_fmt(v.get('mean_cosine'))}  ({v['seeds']} seeds)")
            else:
                print(f"  {v['variant']:<22} " + "  ".join(f"{k} {_fmt(x)}" for k, x in v.items()
                                                            if k not in ("variant", "seeds", "wall_time_s")))
    elif "final_loss" in summary:
        print(f"  final loss {summary['final_loss']:.4g} (initial {summary['initial_loss']:.4g}), "
              f"{summary['trials_per_s']:.1f} trials/s")
    else:
        print("  " + "  ".join(f"{k} {_fmt(v)}" for k, v in summary.items()
                               if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "seed"))
    print(f"results: {out}")
    print(f"figures: {out / 'figures'}")
    return EXIT_OK


def _fmt(x):
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.4g}"


def _shipped(folder):
    """``models/`` or ``protocols/`` of the working directory, else of the bioplastic checkout."""
    here = Path(folder)
    return here if here.is_dir() else Path(__file__).resolve().parents[1] / folder


def cmd_list(args):
    """Every model, rule, task and protocol, with its keys and defaults as TOML to paste."""
    import tomllib

    from .config import TOP_KEYS, AnalysisSpec, TrainingSpec, load_plugins
    from .networks import MODEL_KINDS, RecurrentRateModelSpec
    from .rules import RULES
    from .rules.builders import block_families, builder_models
    from .spec import describe
    from .tasks import TASKS
    what = args.what
    load_plugins({"plugins": list(args.plugins)}, Path.cwd(), trusted=args.plugins)  # named here: trusted
    if what is None:
        print("# A protocol is a TOML file. Top-level keys:")
        print('name = "my_protocol"  # names results/<name>/ (a plain folder name)')
        print("seed = 0  # one seed per run, split into named streams")
        print('description = ""  # one line for `bioplastic list`')
        print('plugins = []  # Python files (beside the protocol) or modules that register rules, tasks or models')
        print(f"# sections: {', '.join('[' + k + ']' for k in TOP_KEYS if k not in ('name', 'seed', 'description', 'plugins'))}")
    if what in (None, "models"):
        print(f"\n# models: files in {_shipped('models')}, used as  [model] file = \"NAME.toml\"  (the protocol's own "
              "[model] keys override the file's)")
        for path in sorted(_shipped("models").glob("*.toml")):
            table = tomllib.loads(path.read_text())
            print(f"#   {path.name} (kind = {table.get('kind', 'rate')}): {table.get('description', '')}")
        for kind, spec in [*MODEL_KINDS.items(), ("rate", RecurrentRateModelSpec)]:
            print(f"[model]  # {spec.family.replace('_', ' ')} network")
            print(f'kind = "{kind}"')
            _print_params(describe(spec))
    if what in (None, "rules"):
        print("\n# rules")
        for kind, rule in RULES.items():
            where = ("inside the network (builders: " + ", ".join(builder_models(rule)) + ")"
                     if rule.realisation == "in_network" else "between trials")
            blocks = block_families(rule)
            where += (f"; on {', '.join(blocks)} networks also many trials per simulation with the update in "
                      "generated code (the block loop, training.loop)" if blocks else "; one simulation per trial")
            print(f"[rule]  # {rule.description}; {where}; trains {', '.join(rule.model_families)} models")
            print(f'kind = "{kind}"')
            _print_params(describe(rule.spec_class))
    if what in (None, "tasks"):
        print("\n# tasks")
        for kind, task in TASKS.items():
            mode = "the trial loop" if task.mode == "trials" else "one continuous run"
            print(f"[task]  # {task.description}; {mode}; {', '.join(task.families)} models")
            print(f'kind = "{kind}"')
            _print_params(describe(task.spec_class))
    if what in (None, "protocols"):
        print(f"\n# protocols in {_shipped('protocols')}")
        for path in sorted(_shipped("protocols").glob("*.toml")):
            print(f"#   {path.name}: {tomllib.loads(path.read_text()).get('description', '')}")
        for name, spec in (("training", TrainingSpec), ("analysis", AnalysisSpec)):
            print(f"[{name}]")
            _print_params(describe(spec))
        print("[sweep]  # optional: every case with every point of the grid, each with `seeds` seeds")
        print('grid = { "rule.kind" = ["weight_perturbation", "node_perturbation"] }  # dotted key -> values')
        print('cases = [{ label = "a", "rule.lr" = 0.1 }]  # named sets of keys')
        print("seeds = 1")
    return EXIT_OK


def _print_params(rows):
    for name, default, doc, choices in rows:
        extra = f" (one of: {', '.join(choices)})" if choices else ""
        print(f"{name} = {default}  # {doc}{extra}")


def cmd_gradcheck(args):
    from .analysis.alignment import layer_names
    from .registry import FAMILIES
    if not (np.isfinite(args.eps) and args.eps > 0):
        raise SpecError("--eps", "must be a finite number > 0", args.eps)
    if not np.isfinite(args.tolerance) and not args.tolerance == np.inf:
        raise SpecError("--tolerance", "must be a number", args.tolerance)
    if not args.tolerance >= 0:
        raise SpecError("--tolerance", "must be >= 0", args.tolerance)
    protocol = _load(args)
    if protocol.sweep:
        protocol = protocol.variants()[0][2]
    _refuse_experiment(protocol, "gradcheck checks the gradient of a trial task's loss")
    title, reference, numeric = FAMILIES[protocol.model.family].gradcheck(protocol, args.eps)
    scale = max(np.abs(g).max() for g in reference)
    # Entries far below the largest gradient are compared in absolute terms.
    floor = max(1e-6 * scale, np.finfo(float).tiny)
    rows = []
    for name, ref, num in zip(layer_names(len(reference)), reference, numeric):
        error = np.abs(ref - num)
        rel = error / np.maximum(np.maximum(np.abs(ref), np.abs(num)), floor)
        rows.append(dict(layer=name, weights=ref.size, max_abs_grad=np.abs(ref).max(),
                         max_abs_error=error.max(), max_rel_error=rel.max()))
    table = pd.DataFrame(rows)
    worst = float(np.max(table.max_rel_error.to_numpy()))  # NaN anywhere makes it NaN (pandas would skip it)
    print(title)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3e}"))
    print(f"max_rel_error={worst:.3e}")
    if not worst <= args.tolerance:  # NaN fails too
        print(f"FAILED: max_rel_error above tolerance {args.tolerance:g}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    return EXIT_OK


def cmd_align(args):
    from .analysis import summarise
    from .engine.trainer import Trainer
    from .plotting import draw_folder
    from .results import atomic_folder, write_protocol, write_table
    protocol = _load(args)
    _refuse_experiment(protocol, "align draws dry-run updates of a trial task")
    samples = args.samples or protocol.analysis.samples
    runs = [(label, p) for label, _, p in protocol.variants()] if protocol.sweep else [(protocol.rule_kind, protocol)]
    out = Path(args.out) if args.out else _default_out(protocol.name, prefix="align-")
    if out.exists():
        raise FileExistsError(f"--out: the result folder exists already; choose another (got {str(out)!r})")
    tables, synapses, estimators = [], [], []
    for label, p in runs:
        trainer = Trainer(p)
        tables.append(trainer.align(samples, progress=True).assign(variant=label))
        synapses.append(trainer.synapse_table().assign(variant=label))
        estimators.append(trainer.estimator.assign(variant=label))
    table = pd.concat(tables, ignore_index=True)
    table = table[["variant"] + [c for c in table.columns if c != "variant"]]
    stats = summarise(table, "cosine", by=("variant", "rule", "reference", "layer"))
    with atomic_folder(out) as folder:
        write_table(table, folder / "alignment.csv")
        write_table(pd.concat(synapses, ignore_index=True), folder / "synapses.csv")
        estimator = pd.concat(estimators, ignore_index=True)
        estimator = estimator[["variant", "rule", "reference"] + [c for c in estimator.columns
                                                                  if c not in ("variant", "rule", "reference")]]
        write_table(estimator, folder / "estimator.csv")
        write_protocol(protocol.to_table(), folder / "protocol.toml")
        draw_folder(folder)
    print(f"cosine(update, -gradient) over {samples} dry-run samples at fixed weights (reference: "
          f"{', '.join(table.reference.unique())}):")
    print(stats.to_string(index=False, float_format=lambda x: f"{x:.4f}", na_rep="–"))
    if "reference_split_cosine" in table:
        split = table.groupby("variant", sort=False).reference_split_cosine.first()
        print("reference: finite differences of the expected loss over "
              f"{protocol.analysis.fd_samples} input samples; cosine between its two halves: "
              + ", ".join(f"{v} {x:.3f}" for v, x in split.items()))
    print("the estimator at these weights (95% intervals; expected update: the mean update without its own "
          "sampling noise; snr: |mean|^2 / variance of one update):")
    for row in estimator.itertuples():
        print(f"  {row.variant:<20} {row.layer:<4} mean-update cosine {_interval(row, 'mean_update_cosine')}  "
              f"expected-update cosine {_interval(row, 'expected_update_cosine')} (bias angle "
              f"{_interval(row, 'bias_angle_deg', '.1f')} deg)  snr {_interval(row, 'snr', '.3g')}"
              + (f" (theory {row.snr_theory:.3g})" if pd.notna(getattr(row, "snr_theory", np.nan)) else "") + "  "
              f"single cosine {_interval(row, 'single_cosine')}"
              + (f"  theory {row.cosine_theory:.4f}" if pd.notna(getattr(row, "cosine_theory", np.nan)) else ""))
    print(f"alignment: {out / 'alignment.csv'}")
    print(f"estimator: {out / 'estimator.csv'}")
    return EXIT_OK


def _refuse_experiment(protocol, what):
    from .tasks import TASKS
    if TASKS[protocol.task_kind].mode != "trials":
        raise SpecError("task.kind", f"{what}; this task is one continuous experiment (run it with `bioplastic run`)",
                        protocol.task_kind)


def _interval(row, key, spec=".4f"):
    value, low, high = (getattr(row, k, np.nan) for k in (key, f"{key}_low", f"{key}_high"))
    if pd.isna(low):
        return format(value, spec)
    return f"{format(value, spec)} [{format(low, spec)}, {format(high, spec)}]"


def cmd_figures(args):
    from .plotting import draw_folder
    try:
        written = draw_folder(args.folder)
    except (KeyError, AttributeError, ValueError, pd.errors.ParserError) as exc:
        raise SpecError("", f"not a readable result folder ({type(exc).__name__}: {exc})",
                        file=args.folder) from None
    for path in written:
        print(path)
    return EXIT_OK


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``error:`` line and exit 2, like every other error."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


class Interrupted(BaseException):
    """A signal asked the command to stop (a BaseException, so no handler on the way swallows it)."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.code = 128 + signum


RETRY_HELP = ("on resuming a sweep, run again the runs that failed by divergence, runaway or an error too (those "
              "that failed for the machine's sake, by I/O, memory or a signal, are always run again)")


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    parser = _Parser(prog="bioplastic", description=DESCRIPTION, parents=[common],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"bioplastic {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def protocol_command(name, func, help):
        p = sub.add_parser(name, help=help, description=help, parents=[common])
        p.add_argument("protocol", help="a protocol TOML file")
        p.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a key, e.g. rule.sigma=0.05 or model.tau=\"20 ms\" (repeatable)")
        p.add_argument("--plugin", action="append", metavar="FILE_OR_MODULE",
                       help="allow this plugin of the protocol though it is a module or a file outside the protocol's "
                       "folder (repeatable; also $BIOPLASTIC_PLUGINS). Plugins are code: allow only what you trust")
        p.set_defaults(func=func)
        return p

    p = protocol_command("run", cmd_run, "train as the protocol says; write a result folder")
    p.add_argument("--out", help="result folder (default results/<name>/<timestamp>)")
    p.add_argument("--quick", action="store_true", help="shrink the protocol for a smoke test")
    p.add_argument("--retry-failed", action="store_true", help=RETRY_HELP)
    p = protocol_command("sweep", cmd_sweep, "run every variant and seed of a sweep in parallel (a process pool, "
                         "or a Dask cluster); the same command again resumes an interrupted sweep")
    p.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                   help="sweep a key over values, e.g. rule.sigma=0.01,0.1 (repeatable; adds to the protocol's "
                   "[sweep] grid)")
    p.add_argument("--seeds", type=int, help="seeds per variant (default: the protocol's sweep.seeds, else 1)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                   help="worker processes (default: one per core)")
    p.add_argument("--scheduler", help="address of a Dask scheduler (tcp://host:port): run the variants there")
    p.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to wait for the scheduler")
    p.add_argument("--out", required=True, help="result folder (an existing one of the same sweep is resumed)")
    p.add_argument("--quick", action="store_true", help="shrink the protocol for a smoke test")
    p.add_argument("--retry-failed", action="store_true", help=RETRY_HELP)
    p = protocol_command("validate", cmd_validate, "check a protocol; exit 2 with one line if it is wrong")
    p.add_argument("--quick", action="store_true", help="validate the --quick version")
    p = protocol_command("gradcheck", cmd_gradcheck, "BPTT against finite differences of the simulation "
                         "(rate networks)")
    p.add_argument("--eps", type=float, default=1e-5, help="finite-difference step (default 1e-5)")
    p.add_argument("--tolerance", type=float, default=1e-6, help="max relative error allowed (default 1e-6)")
    p = protocol_command("align", cmd_align, "dry-run updates at fixed weights against the gradient")
    p.add_argument("--samples", type=int, help="number of samples (default analysis.samples)")
    p.add_argument("--out", help="result folder (default results/<name>/align-<timestamp>)")
    p.add_argument("--quick", action="store_true", help="shrink the protocol for a smoke test")
    p = sub.add_parser("list", help="models, rules, tasks and protocols with their keys and defaults",
                       description="models, rules, tasks and protocols with their keys and defaults, as TOML",
                       parents=[common])
    p.add_argument("what", nargs="?", choices=["models", "rules", "tasks", "protocols"],
                   help="list only these (default: everything)")
    p.add_argument("--plugins", nargs="+", default=[], metavar="FILE",
                   help="load these plugins first (Python files or module names), to list what they register")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("figures", help="redraw the figures of a result folder", parents=[common],
                       description="redraw the figures of a run, sweep or alignment folder from its tables")
    p.add_argument("folder", help="a folder written by `bioplastic run` or `bioplastic align`")
    p.set_defaults(func=cmd_figures)
    return parser


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed on one line
        return exc.code
    if getattr(args, "samples", None) is not None and args.samples < 1:
        print(f"error: --samples: must be >= 1 (got {args.samples})", file=sys.stderr)
        return EXIT_BAD_INPUT
    from .scratch import SCRATCH, SHM, private_tempdir, quiet_brian, remove_stale
    quiet_brian()
    remove_stale(SHM, SCRATCH)  # what a killed command left in memory
    # SIGTERM and SIGHUP (a closed terminal) stop a command as Ctrl-C does: cleanly, one line.
    restore = {s: signal.signal(s, _raise_interrupted) for s in STOP_SIGNALS} if _main_thread() else {}
    try:
        with private_tempdir():  # every temporary file of the command and its workers, removed with it
            return args.func(args)
    except (SpecError, FileExistsError, FileNotFoundError, NotADirectoryError) as exc:
        _error(exc)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `bioplastic list | head -1`: the reader has gone, stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # e.g. an --out that cannot be created
        _error(f"{exc.filename}: {exc.strerror}" if exc.filename else exc)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except SystemExit as exc:  # bioplastic's commands return; only plugin code exits
        _error(f"plugin code called sys.exit({exc.code!r}); a plugin must raise an error instead")
        return EXIT_BAD_INPUT
    except Interrupted as exc:
        print("interrupted", file=sys.stderr)
        return exc.code
    except (BuildError, SimulationKilled) as exc:  # the machine, not the protocol nor bioplastic
        plugins = _loaded_plugins()
        if isinstance(exc, BuildError) and plugins:  # bioplastic's own code compiles: the plugin's is in question
            _error(f"{exc}; the protocol loads plugin code ({plugins}), whose code is in the build")
            return EXIT_BAD_INPUT
        _error(exc)
        return EXIT_CHECK_FAILED
    except Exception as exc:  # a bug: one line, the traceback on request
        if args.debug:
            traceback.print_exc()
        plugins = _loaded_plugins()
        if plugins and _from_brian(exc):  # Brian2 refused equations or code: most likely a plugin's
            _error(f"Brian2 rejected the network's code: {_innermost(exc)[:300]} (the protocol loads plugin code: "
                   f"{plugins}; check its equations; --debug shows the traceback)")
            return EXIT_BAD_INPUT
        message = " ".join(str(exc).split()) or "(no message)"
        _error(f"{type(exc).__name__}: {message[:300]} (this is a bug in bioplastic or in a plugin; rerun with "
               f"--debug for the traceback)")
        return EXIT_CHECK_FAILED
    finally:
        for stop, handler in restore.items():
            signal.signal(stop, handler)


def _loaded_plugins():
    from .config import LOADED_PLUGINS
    return ", ".join(dict.fromkeys(LOADED_PLUGINS.values()))


def _causes(exc):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _from_brian(exc):
    """Whether Brian2 raised ``exc`` (or one of its causes): a parse, unit or code-generation error."""
    return any(type(e).__module__.startswith("brian2") or "brian2" in traceback.extract_tb(e.__traceback__)[-1].filename
               for e in _causes(exc) if e.__traceback__ is not None or type(e).__module__.startswith("brian2"))


def _innermost(exc):
    """The first cause's message, on one line: Brian2's own words."""
    *_, first = _causes(exc)
    return f"{type(first).__name__}: {' '.join(str(first).split())}"


def _error(message):
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)


def _main_thread():
    import threading
    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
