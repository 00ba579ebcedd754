"""Figures from result tables only; nothing here simulates.

Each ``plot_x(table, ax=None) -> Axes`` draws on a given Axes (or a new figure), so users can
compose them. :func:`draw_folder` redraws every figure of a result folder from its tables.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .results import alignment_table, labelled_run_tables, read_metrics, sweep_tables

COLORS = {"backprop": "black", "weight_perturbation": "tab:orange", "node_perturbation": "tab:blue"}


def _axes(ax, size=(5.0, 3.6)):
    if ax is not None:
        return ax
    return Figure(figsize=size, layout="constrained").add_subplot()


def plot_learning_curves(losses, ax=None):
    """Loss against trial, mean ± sem over seeds, one line per variant.

    Parameters
    ----------
    losses : DataFrame
        Columns ``variant``, ``seed``, ``trial``, ``value`` (the loss).
    """
    ax = _axes(ax)
    for variant, rows in losses.groupby("variant", sort=False):
        stats = rows.groupby("trial").value.agg(["mean", "sem", "count"])
        sem = stats["sem"].fillna(0.0).to_numpy()
        color = COLORS.get(variant)
        n = int(stats["count"].max())
        ax.plot(stats.index, stats["mean"], color=color, label=f"{variant} (n={n})")
        ax.fill_between(stats.index, stats["mean"] - sem, stats["mean"] + sem, color=color, alpha=0.25, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel("loss (MSE at trial end)")
    ax.legend(frameon=False, fontsize="small")
    return ax


def plot_cosine_distribution(alignment, ax=None):
    """Distribution of cos(ΔW, -∇L) per variant, with the measured mean and the theory marked.

    Parameters
    ----------
    alignment : DataFrame
        Columns ``variant``, ``cosine`` and optionally ``cosine_theory`` (whole-network rows).
    """
    ax = _axes(ax)
    names = list(dict.fromkeys(alignment.variant))
    for x, name in enumerate(names):
        rows = alignment[alignment.variant == name]
        values = rows.cosine.dropna().to_numpy()
        if len(values) > 1 and np.ptp(values) > 1e-12:
            parts = ax.violinplot(values, positions=[x], widths=0.8, showextrema=False)
            for body in parts["bodies"]:
                body.set_facecolor(COLORS.get(name, "tab:gray"))
                body.set_alpha(0.5)
        ax.scatter(np.full(len(values), x) + np.random.default_rng(0).uniform(-0.12, 0.12, len(values)),
                   values, s=4, color=COLORS.get(name, "tab:gray"), alpha=0.6)
        ax.hlines(values.mean(), x - 0.35, x + 0.35, color="black", lw=2,
                  label="measured mean" if x == 0 else None)
        if "cosine_theory" in rows and rows.cosine_theory.notna().any():
            ax.hlines(rows.cosine_theory.mean(), x - 0.35, x + 0.35, color="red", lw=2, ls="--",
                      label="theory" if "theory" not in ax.get_legend_handles_labels()[1] else None)
    ax.set_xticks(range(len(names)), names, fontsize="small")
    ax.set_ylabel("cos(ΔW, −∇L)")
    ax.set_ylim(min(-0.05, ax.get_ylim()[0]), 1.05)
    ax.axhline(0, color="gray", lw=0.5)
    ax.legend(frameon=False, fontsize="small")
    return ax


def _save(ax, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    ax.figure.savefig(path, dpi=120)
    return path


def draw_folder(folder):
    """Redraw the figures of a run, a sweep (``runs.csv``) or an alignment (``alignment.csv``) folder.

    Returns the paths written.
    """
    folder = Path(folder)
    figures = folder / "figures"
    written = []
    if (folder / "runs.csv").exists():
        for path in pd.read_csv(folder / "runs.csv").path:
            written += draw_folder(folder / path)
        losses, alignment = sweep_tables(folder)
        written.append(_save(plot_learning_curves(losses), figures / "learning_curves.png"))
        if "cosine" in alignment and alignment.cosine.notna().any():
            written.append(_save(plot_cosine_distribution(alignment), figures / "cosine_distribution.png"))
    elif (folder / "alignment.csv").exists():
        written.append(_save(plot_cosine_distribution(alignment_table(folder)), figures / "cosine_distribution.png"))
    elif (folder / "metrics.csv").exists():
        loss, alignment = labelled_run_tables(read_metrics(folder), _run_name(folder), 0)
        written.append(_save(plot_learning_curves(loss), figures / "learning_curve.png"))
        if "cosine" in alignment and alignment.cosine.notna().any():
            written.append(_save(plot_cosine_distribution(alignment), figures / "cosine_distribution.png"))
    else:
        raise FileNotFoundError(f"{folder}: not a result folder (no runs.csv, alignment.csv or metrics.csv)")
    return written


def _run_name(folder):
    import tomllib
    try:
        return tomllib.loads((folder / "protocol.toml").read_text())["rule"]["kind"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return folder.name
