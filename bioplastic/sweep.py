"""Run a protocol: one training run, or every variant and seed of its ``[sweep]`` table.

Runs are sequential in this process; variants that share a network structure share one
standalone build.
"""

import shutil
import sys
import time
from pathlib import Path

import pandas as pd

from .engine.experiment import Experiment
from .engine.reference import reference_name
from .engine.trainer import Trainer
from .errors import DivergenceError, RunawayError
from .plotting import draw_folder
from .results import (atomic_folder, claim_folder, final_value, loss_warning, remove_folders, versions, write_json,
                      write_protocol, write_table)
from .tasks import TASKS


def run_protocol(protocol, out, progress=False):
    """Train ``protocol`` into the result folder ``out``. Returns its summary.

    One run is written atomically: it appears complete or not at all. A sweep keeps what it
    finished: every variant's folder is written atomically as it completes and ``runs.csv`` lists
    the finished ones, so an interrupted sweep leaves them (with ``summary.json`` saying
    ``"status": "interrupted"`` or ``"failed"``); only a sweep that finished nothing leaves nothing.

    A run stopped for runaway activity leaves no result folder; what it logged up to the stop is
    kept in ``<its folder>.failed/`` (``metrics.csv``, ``protocol.toml`` and a ``summary.json``
    whose ``status`` is ``"failed"``), and the error is raised again.
    """
    return (_run_sweep if protocol.sweep else _run_one)(protocol, Path(out), progress)


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
        summary = dict(name=protocol.name, status="failed", error=str(exc), seed=protocol.seed)
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
                   reference=reference_name(protocol),
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


def _number(value):
    return "n/a" if value is None else f"{value:.4g}"


def _mean(metrics, metric):
    rows = metrics[(metrics.metric == metric) & (metrics.layer == "all")]
    return float(rows.value.mean()) if len(rows) else None


def _run_sweep(protocol, folder, progress):
    created = claim_folder(folder)  # written in place: finished variants stay, each written atomically
    rows = []
    try:
        write_protocol(protocol.to_table(), folder / "protocol.toml")
        for label, values, variant in protocol.variants():
            for i in range(protocol.sweep["seeds"]):
                run = variant.with_seed(protocol.seed + i)
                path = Path(label) / f"seed{run.seed}"
                summary = _run_one(run, folder / path, progress)
                numbers = {k: v for k, v in summary.items() if k not in ("seed", "trials") and
                           (v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)))}
                rows.append(dict(variant=label, **values, seed=run.seed, **numbers, path=str(path)))
                write_table(pd.DataFrame(rows), folder / "runs.csv")  # what is finished, at any moment
                if progress:
                    headline = "final_loss" if "final_loss" in summary else next(iter(numbers), None)
                    print(f"  {label} seed {run.seed}: {headline} {_number(summary.get(headline))}", flush=True)
    except BaseException as exc:
        _stop_sweep(protocol, folder, created, rows, exc)
        raise
    runs = pd.DataFrame(rows)
    swept = {key for _, values, _ in protocol.variants() for key in values}
    columns = [c for c in runs.columns if c not in ("variant", "seed", "path") and c not in swept
               and pd.api.types.is_numeric_dtype(runs[c])]
    by_variant = runs.groupby("variant", sort=False)[columns].mean()
    if "final_loss" in runs:
        by_variant["final_loss_sem"] = runs.groupby("variant", sort=False).final_loss.sem()
    by_variant["seeds"] = runs.groupby("variant", sort=False).seed.count()
    summary = dict(name=protocol.name, seed=protocol.seed, status="complete",
                   variants=by_variant.reset_index().to_dict("records"), wall_time_s=float(runs.wall_time_s.sum()),
                   versions=versions())
    draw_folder(folder)
    write_json(summary, folder / "summary.json")
    return summary


def _stop_sweep(protocol, folder, created, rows, exc):
    """A sweep stopped early: keep the finished variants, marked; or leave nothing if none finished."""
    if not rows:
        shutil.rmtree(folder, ignore_errors=True)
        remove_folders(created)
        return
    interrupted = isinstance(exc, KeyboardInterrupt) or not isinstance(exc, Exception)
    write_json(dict(name=protocol.name, seed=protocol.seed, status="interrupted" if interrupted else "failed",
                    error=str(exc) or type(exc).__name__, finished=len(rows),
                    total=len(protocol.variants()) * protocol.sweep["seeds"], versions=versions()),
               folder / "summary.json")
