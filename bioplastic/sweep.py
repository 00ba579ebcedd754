"""Run a protocol: one training run, or every variant and seed of its ``[sweep]`` table.

One sweep runner (:func:`run_sweep`) serves both commands: ``bioplastic run`` gives it one
worker, which runs the variants one after the other in this process (variants that share a
network structure share one standalone build); ``bioplastic sweep`` a pool of worker processes
or a Dask cluster. Either resumes an interrupted sweep.
"""

import concurrent.futures
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from .engine.experiment import Experiment
from .engine.trainer import Trainer
from .errors import DivergenceError, RunawayError, SimulationKilled, SpecError
from .plotting import draw_folder
from .results import (atomic_folder, claim_folder, final_value, loss_warning, remove_folders, versions, write_json,
                      write_protocol, write_table)
from .tasks import TASKS


def run_protocol(protocol, out, progress=False, retry_failed=False):
    """Train ``protocol`` into the result folder ``out``. Returns its summary.

    One run is written atomically: it appears complete or not at all. A sweep keeps what it
    finished: every variant's folder is written atomically as it completes and ``runs.csv`` lists
    the finished ones, so an interrupted sweep leaves them (with ``summary.json`` saying
    ``"status": "interrupted"`` or ``"failed"``); only a sweep that finished nothing leaves nothing.

    A run stopped for runaway activity leaves no result folder; what it logged up to the stop is
    kept in ``<its folder>.failed/`` (``metrics.csv``, ``protocol.toml`` and a ``summary.json``
    whose ``status`` is ``"failed"``), and the error is raised again.
    """
    if protocol.sweep:
        return run_sweep(protocol, out, progress=progress, retry_failed=retry_failed)
    return _run_one(protocol, Path(out), progress)


def _run_one(protocol, out, progress):
    try:
        with atomic_folder(out) as folder:
            summary = _run_single(protocol, folder, progress)
            draw_folder(folder)
    except (RunawayError, DivergenceError) as exc:
        _keep_failed(protocol, out, exc)
        raise
    return summary


def _keep_failed(protocol, out, exc):
    failed = out.with_name(out.name + ".failed")
    if failed.exists():
        return
    with atomic_folder(failed) as folder:
        if exc.metrics is not None:
            metrics = exc.metrics if isinstance(exc.metrics, pd.DataFrame) else \
                pd.DataFrame(exc.metrics, columns=["trial", "layer", "metric", "value"])
            write_table(metrics, folder / "metrics.csv")
        write_protocol(protocol.to_table(), folder / "protocol.toml")
        summary = dict(name=protocol.name, status="failed", failure=failure_kind(exc), error=str(exc), seed=protocol.seed)
        if getattr(exc, "trial", None) is not None:
            summary["failed_at_trial"] = int(exc.trial)
        if getattr(exc, "simulated", None) is not None:
            summary["stopped_at_s"] = float(exc.simulated)
        write_json(dict(**summary, versions=versions()), folder / "summary.json")
    exc.failed_folder = failed


def _run_single(protocol, folder, progress):
    if TASKS[protocol.task_kind].mode == "continuous":
        return _run_experiment(protocol, folder)
    start = time.perf_counter()
    trainer = Trainer(protocol)
    metrics = trainer.train(progress=progress)
    wall = time.perf_counter() - start
    folder.mkdir(parents=True, exist_ok=True)
    write_protocol(protocol.to_table(), folder / "protocol.toml")
    write_table(metrics, folder / "metrics.csv")
    loss = metrics[metrics.metric == "loss"]
    summary = dict(name=protocol.name, rule=protocol.rule_kind, seed=protocol.seed,
                   trials=protocol.training.trials, backend=protocol.training.backend,
                   initial_loss=float(loss.value.iloc[0]), final_loss=final_value(metrics, "loss"),
                   mean_cosine=_mean(metrics, "cosine"), mean_cosine_theory=_mean(metrics, "cosine_theory"),
                   reference=protocol.reference, weights=trainer.adapter.weight_names(protocol.model),
                   wall_time_s=wall, trials_per_s=protocol.training.trials / wall, versions=versions())
    summary.update(trainer.task.training_summary(metrics))
    warning = loss_warning(metrics)
    if warning:
        summary["warning"] = warning
        print(f"warning: {protocol.name} (seed {protocol.seed}): {warning}", file=sys.stderr, flush=True)
    write_json(summary, folder / "summary.json")
    return summary


def _run_experiment(protocol, folder):
    """One continuous run: metrics.csv (trial, t_s, layer, metric, value), the task's tables, summary."""
    start = time.perf_counter()
    metrics, tables, headline = Experiment(protocol).run()
    wall = time.perf_counter() - start
    folder.mkdir(parents=True, exist_ok=True)
    write_protocol(protocol.to_table(), folder / "protocol.toml")
    write_table(metrics, folder / "metrics.csv")
    for name, table in tables.items():
        write_table(table, folder / name)
    simulated = float(protocol.task.duration)
    summary = dict(name=protocol.name, rule=protocol.rule_kind, task=protocol.task_kind, seed=protocol.seed,
                   backend=protocol.training.backend, simulated_s=simulated, **headline, wall_time_s=wall,
                   realtime_factor=simulated / wall, versions=versions())
    write_json(summary, folder / "summary.json")
    return summary


def _summary_numbers(summary):
    """The numbers of a run's summary that ``runs.csv`` lists (not its seed or trial count)."""
    return {k: v for k, v in summary.items() if k not in ("seed", "trials") and
            (v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)))}


def _number(value):
    return "n/a" if value is None else f"{value:.4g}"


def _mean(metrics, metric):
    rows = metrics[(metrics.metric == metric) & (metrics.layer == "all")]
    return float(rows.value.mean()) if len(rows) else None


def sweep_plan(protocol):
    """Every run of ``protocol``'s sweep: ``(variant label, swept values, the run's protocol, its
    folder relative to the sweep's)``, in a fixed order."""
    return [(label, values, variant.with_seed(protocol.seed + i), Path(label) / f"seed{protocol.seed + i}")
            for label, values, variant in protocol.variants() for i in range(protocol.sweep["seeds"])]


SWEEP_FILE = "sweep.json"


def run_sweep(protocol, out, workers=1, scheduler=None, progress=False, connect_timeout=10.0, retry_failed=False):
    """Run every variant and seed of ``protocol``'s sweep into ``out``; return the sweep's summary.

    One worker runs them one after the other in this process (``bioplastic run``; variants that
    share a network structure share one build); more run in a pool of worker processes, or on
    the Dask cluster at ``scheduler`` (``bioplastic sweep``).

    Each run's folder is written atomically (``<variant>/seed<N>/``, or ``<variant>/seed<N>.failed/``
    with its one-line error), so the folders are the record of what is done: ``runs.csv`` is
    rebuilt from them after every run, and the same command run again (after a crash, or a
    ``kill -9`` of the whole process group) runs only the runs that have neither. ``out`` keeps
    the resolved protocol in ``sweep.json``; a different sweep cannot resume into it. A sweep
    that stops early keeps what it finished, its ``summary.json`` saying ``"interrupted"`` or
    ``"failed"``; one that finished nothing in a folder it made leaves nothing. A sweep whose
    every run failed raises, after writing its records.

    A resume heals: a run folder without a readable ``summary.json`` and ``metrics.csv`` is set
    aside (moved to ``.set_aside/``, never deleted) and run again, and so is the record of a run
    that failed for the machine's sake (an I/O error, memory, a signal). Failures of the science
    (divergence, runaway) and of the code stay, unless ``retry_failed``.
    """
    out = Path(out)
    plan = sweep_plan(protocol)
    identity = json.dumps(protocol.to_table(), sort_keys=True, default=str)
    executor = _executor(workers, scheduler, connect_timeout)  # an unreachable scheduler: nothing written
    with executor:
        created = _claim_sweep(out, identity, protocol)
        if created is None:  # a resume
            _heal(out, plan, retry_failed)
        # In this process, a run shows its own progress, and only divergence and runaway are
        # recorded as failed runs; any other error stops the sweep, as it stops a single run.
        in_process = isinstance(executor, _InProcess)
        options = (progress, SCIENCE) if in_process else ()
        todo = [(label, run, path) for label, _, run, path in plan if _status(out / path) is None]
        bar = tqdm(total=len(plan), initial=len(plan) - len(todo), desc=protocol.name, unit="run",
                   disable=None if progress and not in_process else True)
        failed = sum(_status(out / path) == "failed" for *_, path in plan)
        bar.set_postfix(failed=failed)
        futures = {executor.submit(_sweep_task, run.to_table(), run.file, str(out / path), *options): (label, run)
                   for label, run, path in todo}
        try:
            for future in executor.as_completed(futures):
                status, error = future.result()
                failed += status == "failed"
                bar.set_postfix(failed=failed)
                bar.update(1)
                runs = _write_runs(out, plan)
                if progress and in_process:
                    label, run = futures[future]
                    print(f"  {label} seed {run.seed}: {_headline(out, runs, label, run.seed, error)}", flush=True)
        except BaseException as exc:
            for future in futures:
                future.cancel()
            executor.stop()  # the workers, at once: their runs are lost anyway
            _remove_debris(out, plan)
            _stop_sweep(protocol, out, created, plan, exc)
            raise
        finally:
            bar.close()
    runs = _write_runs(out, plan)
    done = runs[runs.status == "done"] if len(runs) else runs
    summary = dict(name=protocol.name, seed=protocol.seed, status="complete" if len(done) == len(plan) else
                   "complete with failures", runs=len(plan), done=len(done), failed=int((runs.status == "failed").sum()),
                   variants=_by_variant(protocol, done), wall_time_s=float(done.wall_time_s.sum())
                   if "wall_time_s" in done else 0.0, versions=versions())
    if len(done):
        draw_folder(out)
    write_json(summary, out / "summary.json")
    if not len(done):  # as a failed run: its records move to <out>.failed/
        failed = out.with_name(out.name + ".failed")
        if not failed.exists():
            out.rename(failed)
        raise SpecError("sweep", f"every run failed (records in {failed if not out.exists() else out}); the first: "
                        f"{runs.error.iloc[0]}", file=protocol.file)
    return summary


def _headline(out, runs, label, seed, error):
    """What a finished run prints: its final loss (or first number), or its error."""
    if error is not None:
        return f"failed: {error}"
    row = runs[(runs.variant == label) & (runs.seed == seed)].iloc[0]
    key = "final_loss" if "final_loss" in row and pd.notna(row.final_loss) else next(
        (c for c in runs.columns if c not in ("variant", "seed", "status", "error", "path") and
         isinstance(row[c], (int, float)) and pd.notna(row[c])), None)
    return f"{key} {_number(row[key])}" if key else "done"


def _by_variant(protocol, runs):
    """Per variant, the mean over seeds of every number its runs report (and the sem of the final loss)."""
    if not len(runs):
        return []
    swept = {key for _, values, _ in protocol.variants() for key in values}
    columns = [c for c in runs.columns if c not in ("variant", "seed", "path") and c not in swept
               and pd.api.types.is_numeric_dtype(runs[c])]
    groups = runs.groupby("variant", sort=False)
    table = groups[columns].mean()
    if "final_loss" in runs:
        table["final_loss_sem"] = groups.final_loss.sem()
    table["seeds"] = groups.seed.count()
    return table.reset_index().to_dict("records")


def _stop_sweep(protocol, out, created, plan, exc):
    """A sweep stopped early: keep the finished runs, marked; or leave nothing if none finished in
    a folder this command made."""
    done = sum(_status(out / path) == "done" for *_, path in plan)
    if not done and created is not None:
        shutil.rmtree(out, ignore_errors=True)
        remove_folders(created)
        return
    interrupted = isinstance(exc, KeyboardInterrupt) or not isinstance(exc, Exception)
    write_json(dict(name=protocol.name, seed=protocol.seed, status="interrupted" if interrupted else "failed",
                    error=str(exc) or type(exc).__name__, finished=done, total=len(plan), versions=versions()),
               out / "summary.json")


def _executor(workers, scheduler, connect_timeout):
    if scheduler is None and workers == 1:
        return _InProcess()
    if scheduler is None:
        return _Pool(workers)
    try:
        from distributed import Client
        from distributed.comm import get_address_host_port
    except ImportError:
        raise SpecError("--scheduler", "needs Dask: pip install 'bioplastic[distributed]'", scheduler) from None
    try:  # checked before a Client exists: a half-made one complains from its destructor
        host, port = get_address_host_port(scheduler)
    except ValueError as exc:
        raise SpecError("--scheduler", f"not a scheduler address like tcp://host:8786: {exc}", scheduler) from None
    if not 0 < port < 65536:
        raise SpecError("--scheduler", f"port {port} is out of range (1-65535)", scheduler)
    try:
        client = Client(scheduler, timeout=f"{connect_timeout}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise SpecError("--scheduler", f"cannot reach the Dask scheduler within {connect_timeout:g} s "
                        f"({type(exc).__name__})", scheduler) from None
    return _DaskExecutor(client)


class _InProcess:
    """One worker: each run in this process, in turn, when the loop asks for the next result."""

    def __init__(self):
        self.pending = []

    def submit(self, fn, *args):
        future = concurrent.futures.Future()
        self.pending.append((future, fn, args))
        return future

    def as_completed(self, futures):
        for future, fn, args in self.pending:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except Exception as exc:
                    future.set_exception(exc)
                yield future

    def stop(self):
        pass  # the run in progress has stopped already: it raised

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.pending.clear()


class _Pool(concurrent.futures.ProcessPoolExecutor):
    """Spawned worker processes that die with this one (even on ``kill -9``) and that
    :meth:`stop` ends at once."""

    as_completed = staticmethod(concurrent.futures.as_completed)

    def __init__(self, workers):
        import multiprocessing
        super().__init__(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                         initializer=_start_worker, initargs=(os.getpid(),))

    def stop(self, grace=2.0):
        """End every worker now: SIGTERM, then SIGKILL after ``grace`` seconds. Their binaries die
        with them; the caller removes what they leave (:func:`_remove_debris`)."""
        processes = list((self._processes or {}).values())
        for process in processes:
            process.terminate()
        deadline = time.monotonic() + grace
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        # The manager thread sees its workers gone and ends; joining it releases the pool's
        # semaphores (else multiprocessing's resource tracker complains of leaked ones at exit).
        self.shutdown(wait=True, cancel_futures=True)


def _start_worker(parent):
    """A worker's start: it dies with the sweep's process, leaves Ctrl-C to it (which stops the
    workers itself) and keeps Brian2 quiet, as the command does."""
    import threading

    from .scratch import die_with_parent, quiet_brian
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    quiet_brian()
    # tqdm's default lock is a multiprocessing semaphore; a stopped worker would leave it to
    # multiprocessing's resource tracker, which then warns of a leak. A worker draws no bars.
    tqdm.set_lock(threading.RLock())


class _DaskExecutor:
    """A Dask client as a ``concurrent.futures`` executor (the client closes with it)."""

    as_completed = staticmethod(concurrent.futures.as_completed)

    def __init__(self, client):
        self.client = client
        self.executor = client.get_executor(pure=False)

    def submit(self, fn, *args):
        return self.executor.submit(fn, *args)

    def stop(self):
        self.executor.shutdown(wait=False)  # cancels every run, pending or running, on the cluster

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.executor.shutdown(wait=False)
        self.client.close()


def _claim_sweep(out, identity, protocol):
    """Create ``out`` for this sweep, or check that it holds this very sweep (a resume); returns
    the folders made here (:func:`~bioplastic.results.claim_folder`), None on a resume."""
    record = out / SWEEP_FILE
    if out.exists():
        try:
            stored = json.loads(record.read_text())["protocol"]
        except (OSError, ValueError, KeyError, TypeError):
            stored = _identity_from_protocol_file(out)
            if stored is None:
                raise SpecError("--out", "the folder exists already and holds something other than a bioplastic "
                                "sweep (no readable sweep.json); choose another folder", str(out)) from None
            if stored == identity:
                print(f"warning: {record} was damaged; written again from {out / 'protocol.toml'}", file=sys.stderr)
                write_json(dict(protocol=identity), record)
        if stored != identity:
            raise SpecError("--out", "holds the results of a different sweep (another protocol, grid, seeds or "
                            "--set); choose another folder, or repeat the original command to resume", str(out))
        return None
    created = claim_folder(out)
    write_protocol(protocol.to_table(), out / "protocol.toml")
    write_json(dict(protocol=identity), record)
    return created


def _identity_from_protocol_file(out):
    """The identity of the sweep in ``out`` from its ``protocol.toml`` (or None): what repairs a
    damaged ``sweep.json``."""
    import tomllib
    if not (out / "protocol.toml").is_file() or not (out / SWEEP_FILE).exists():
        return None
    try:
        table = tomllib.loads((out / "protocol.toml").read_text())
    except (OSError, ValueError):
        return None
    return json.dumps(table, sort_keys=True, default=str)


def _status(folder):
    """``"done"``, ``"failed"`` or None (not run yet) for a run's folder."""
    if (folder / "summary.json").exists():
        return "done"
    if (folder.with_name(folder.name + ".failed") / "summary.json").exists():
        return "failed"
    return None


SCIENCE = (DivergenceError, RunawayError)  # the run's own outcome: kept on resume
MACHINE = (OSError, MemoryError, SimulationKilled)  # the machine's doing: run again on resume


def failure_kind(exc):
    """How a failed run is recorded: ``"science"`` (divergence, runaway), ``"machine"`` (I/O,
    memory, a killed simulation) or ``"error"`` (bad input, a bug)."""
    return "science" if isinstance(exc, SCIENCE) else "machine" if isinstance(exc, MACHINE) else "error"


def _sweep_task(table, file, destination, progress=False, recorded=(Exception,)):
    """One run, in a worker: ``("done", None)`` or ``("failed", one-line error)`` for a failure of
    the kinds ``recorded``; others are raised."""
    from .config import load_plugins, resolve
    from .scratch import quiet_brian
    quiet_brian()  # a Dask worker too, as the command: no Brian2 log or script files left behind
    destination = Path(destination)
    if _status(destination) is not None:  # a worker of an earlier, killed command finished it meanwhile
        return _status(destination), None
    # The command checked and named the plugins already: here they are trusted, and loaded quietly.
    protocol = resolve(load_plugins(table, Path(file).parent, trusted=table.get("plugins", ()), announce=False), file)
    try:
        _run_one(protocol, destination, progress)
        return "done", None
    except recorded as exc:  # recorded, and the sweep goes on
        if _status(destination) == "done":  # another worker wrote the same run first (see above)
            return "done", None
        error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        failed = destination.with_name(destination.name + ".failed")
        if not failed.exists():
            with atomic_folder(failed) as folder:
                write_protocol(table, folder / "protocol.toml")
                write_json(dict(name=protocol.name, status="failed", failure=failure_kind(exc), error=error,
                                seed=protocol.seed, versions=versions()), folder / "summary.json")
        return "failed", error


def _read_summary(folder):
    """A run folder's ``summary.json`` as a dict, or None if it is missing or damaged."""
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def _complete(folder):
    """Whether a finished run's folder holds a readable summary and metrics table."""
    try:
        pd.read_csv(folder / "metrics.csv")
    except (OSError, ValueError):
        return False
    return _read_summary(folder) is not None


def _heal(out, plan, retry_failed):
    """Before a resume: set aside damaged run folders and the records of runs to retry."""
    for *_, path in plan:
        folder = out / path
        if folder.exists() and not _complete(folder):
            _set_aside(out, folder, "damaged (no readable summary.json and metrics.csv)")
        failed = folder.with_name(folder.name + ".failed")
        if not failed.exists() or folder.exists():
            continue
        record = _read_summary(failed)
        if record is None:
            _set_aside(out, failed, "a damaged record of a failed run")
        elif record.get("failure") == "machine":
            _set_aside(out, failed, f"failed for the machine's sake ({record.get('error', '')})")
        elif retry_failed:
            _set_aside(out, failed, "--retry-failed")


SET_ASIDE = ".set_aside"  # a variant's label cannot start with a dot, so no run folder is called so


def _set_aside(out, folder, why):
    """Move a run's folder out of the way (never delete it) so that the run is run again."""
    destination = out / SET_ASIDE / folder.relative_to(out)
    n = 1
    while destination.exists():
        destination = out / SET_ASIDE / f"{folder.relative_to(out)}-{n}"
        n += 1
    destination.parent.mkdir(parents=True, exist_ok=True)
    folder.rename(destination)
    print(f"warning: {folder}: {why}; set aside in {destination}, and run again", file=sys.stderr, flush=True)


def _remove_debris(out, plan):
    """What stopped workers left: their runs' temporary folders and their scratch in memory."""
    from .scratch import SCRATCH, SHM, TEMPORARY, remove_stale
    for parent in {(out / path).parent for *_, path in plan}:
        remove_stale(parent, TEMPORARY)
    remove_stale(SHM, SCRATCH)


_unreadable = set()  # run folders already named in a warning


def _write_runs(out, plan):
    """``runs.csv`` from the run folders: one row per finished or failed run, in plan order. A
    folder whose summary cannot be read is named in one warning and left out (the next resume
    runs it again)."""
    rows = []
    for label, values, run, path in plan:
        status = _status(out / path)
        if status is None:
            continue
        folder = out / path if status == "done" else (out / path).with_name(path.name + ".failed")
        summary = _read_summary(folder)
        if summary is None:
            if folder not in _unreadable:
                _unreadable.add(folder)
                print(f"warning: {folder / 'summary.json'} cannot be read; the run is left out of runs.csv and run "
                      "again when the sweep resumes", file=sys.stderr, flush=True)
            continue
        numbers = _summary_numbers(summary)
        rows.append(dict(variant=label, **values, seed=run.seed, **numbers, status=status,
                         error=summary.get("error", ""), path=str(folder.relative_to(out))))
    runs = pd.DataFrame(rows, columns=None if rows else ["variant", "seed", "status", "error", "path"])
    write_table(runs, out / "runs.csv")
    return runs
