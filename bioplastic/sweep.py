"""Run a protocol: one training run, or every variant and seed of its ``[sweep]`` table.

Runs are sequential in this process; variants that share a network structure share one
standalone build.
"""

import time
from pathlib import Path

import pandas as pd

from .engine.trainer import Trainer
from .plotting import draw_folder
from .results import (atomic_folder, final_value, versions, write_json, write_protocol, write_table)


def run_protocol(protocol, out, progress=False):
    """Train ``protocol`` into the result folder ``out`` (written atomically). Returns its summary."""
    with atomic_folder(out) as folder:
        summary = (_run_sweep if protocol.sweep else _run_single)(protocol, folder, progress)
        draw_folder(folder)
    return summary


def _run_single(protocol, folder, progress):
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
                   wall_time_s=wall, trials_per_s=protocol.training.trials / wall, versions=versions())
    write_json(summary, folder / "summary.json")
    return summary


def _mean(metrics, metric):
    rows = metrics[(metrics.metric == metric) & (metrics.layer == "all")]
    return float(rows.value.mean()) if len(rows) else None


def _run_sweep(protocol, folder, progress):
    rows = []
    for label, values, variant in protocol.variants():
        for i in range(protocol.sweep["seeds"]):
            run = variant.with_seed(protocol.seed + i)
            path = Path(label) / f"seed{run.seed}"
            summary = _run_single(run, folder / path, progress)
            rows.append(dict(variant=label, **values, seed=run.seed, final_loss=summary["final_loss"],
                             mean_cosine=summary["mean_cosine"], wall_time_s=summary["wall_time_s"],
                             path=str(path)))
            if progress:
                print(f"  {label} seed {run.seed}: final loss {summary['final_loss']:.4g}", flush=True)
    runs = pd.DataFrame(rows)
    write_table(runs, folder / "runs.csv")
    write_protocol(protocol.to_table(), folder / "protocol.toml")
    by_variant = runs.groupby("variant", sort=False).agg(final_loss=("final_loss", "mean"),
                                                         final_loss_sem=("final_loss", "sem"),
                                                         mean_cosine=("mean_cosine", "mean"),
                                                         seeds=("seed", "count"))
    summary = dict(name=protocol.name, seed=protocol.seed, variants=by_variant.reset_index().to_dict("records"),
                   wall_time_s=float(runs.wall_time_s.sum()), versions=versions())
    write_json(summary, folder / "summary.json")
    return summary
