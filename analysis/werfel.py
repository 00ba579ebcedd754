"""Werfel, Xie & Seung (2005): learning time against the numbers of outputs M and inputs N, each
rule at its best learning rate, with the fitted exponents and their bootstrap intervals.

    bioplastic sweep protocols/werfel2005.toml --out results/werfel2005
    .venv/bin/python analysis/werfel.py results/werfel2005 --out figures/werfel2005

For every rule and network shape the learning rate with the lowest median learning time over the
seeds is kept (a run that never reaches a tenth of its initial loss counts as never). The
exponents are least-squares slopes of log time against log M (at N = 8) and log N (at M = 2);
their 95% intervals come from 1000 bootstrap resamples of the seeds within every (shape, rate)
cell, the best rate chosen again in every resample. The paper predicts that NP is M times slower
than gradient descent, and WP a further N times slower: exponents of T_NP/T_GD of 1 in M and 0 in
N, of T_WP/T_NP of 0 in M and 1 in N. Writes ``<out>.png``, ``<out>.pdf`` and ``<out>.csv``.
"""

import argparse
import ast
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bioplastic.plotting import color
from bioplastic.results import finished_runs

RULES = {"backprop": "GD", "node_perturbation": "NP", "weight_perturbation": "WP"}
PREDICTED = {("NP/GD", "M"): 1.0, ("NP/GD", "N"): 0.0, ("WP/NP", "M"): 0.0, ("WP/NP", "N"): 1.0}


def load(folder):
    runs = finished_runs(folder).copy()
    shape = runs["model.sizes"].map(ast.literal_eval)
    runs["N"], runs["M"] = shape.map(lambda s: s[0]), shape.map(lambda s: s[-1])
    runs["time"] = pd.to_numeric(runs.get("learning_time"), errors="coerce").fillna(np.inf)
    return runs[["rule.kind", "rule.lr", "N", "M", "seed", "time"]]


def best_times(runs):
    """Per rule and shape: the lowest median learning time over the learning rates."""
    median = runs.groupby(["rule.kind", "N", "M", "rule.lr"]).time.median()
    return median.groupby(["rule.kind", "N", "M"]).min()


def slope(times, axis):
    """Least-squares slope of log time against log M (N = 8) or log N (M = 2); NaN if any is never."""
    fixed = {"M": ("N", 8), "N": ("M", 2)}[axis]
    rows = times[times.index.get_level_values(fixed[0]) == fixed[1]]
    x = np.log(rows.index.get_level_values(axis).to_numpy(float))
    y = np.log(rows.to_numpy(float))
    if len(x) < 2 or not np.all(np.isfinite(y)):
        return np.nan
    return float(np.polyfit(x, y, 1)[0])


def exponents(runs):
    best = best_times(runs)
    out = {}
    for rule, name in RULES.items():
        if rule in best.index.get_level_values(0):
            for axis in ("M", "N"):
                out[(name, axis)] = slope(best.loc[rule], axis)
    for ratio, (a, b) in {"NP/GD": ("node_perturbation", "backprop"),
                          "WP/NP": ("weight_perturbation", "node_perturbation")}.items():
        if a in best.index.get_level_values(0) and b in best.index.get_level_values(0):
            for axis in ("M", "N"):
                out[(ratio, axis)] = slope(best.loc[a] / best.loc[b], axis)
    return out


def bootstrap(runs, resamples=1000, seed=0):
    rng = np.random.default_rng(seed)
    cells = [group for _, group in runs.groupby(["rule.kind", "N", "M", "rule.lr"])]
    draws = []
    for _ in range(resamples):
        sample = pd.concat([g.iloc[rng.integers(0, len(g), len(g))] for g in cells])
        draws.append(exponents(sample))
    return pd.DataFrame(draws)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args(argv)
    runs = load(args.sweep)
    measured = exponents(runs)
    draws = bootstrap(runs, args.resamples)
    rows = []
    for key, value in measured.items():
        low, high = np.nanpercentile(draws[key], [2.5, 97.5]) if draws[key].notna().any() else (np.nan, np.nan)
        rows.append(dict(quantity=key[0], against=key[1], exponent=value, low=low, high=high,
                         never=float(draws[key].isna().mean()), predicted=PREDICTED.get(key, np.nan)))
    table = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out.with_suffix(".csv"), index=False)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    best = best_times(runs)
    figure = Figure(figsize=(8.4, 3.4), layout="constrained")
    for ax, axis, fixed in zip(figure.subplots(1, 2), ("M", "N"), (("N", 8), ("M", 2))):
        drawn = False
        for rule, name in RULES.items():
            if rule not in best.index.get_level_values(0):
                continue
            rows = best.loc[rule]
            rows = rows[rows.index.get_level_values(fixed[0]) == fixed[1]]
            x = rows.index.get_level_values(axis)
            y = np.where(np.isfinite(rows.to_numpy(float)), rows.to_numpy(float), np.nan)  # never: no point
            b = measured.get((name, axis), np.nan)
            ax.plot(x, y, "o-", color=color(rule), label=f"{name} (exponent {b:.2f})")
            drawn = drawn or bool(np.isfinite(y).any())
        ax.set_xscale("log", base=2)
        if drawn:
            ax.set_yscale("log")
        ax.set_xlabel(f"{axis} ({fixed[0]} = {fixed[1]})")
        ax.set_ylabel("learning time (trials), best rate")
        ax.legend(frameon=False, fontsize="small")
    ax.set_title("predicted: T_NP/T_GD ∝ M, T_WP/T_NP ∝ N", fontsize="small")
    for suffix in (".png", ".pdf"):
        figure.savefig(args.out.with_suffix(suffix), dpi=120)


if __name__ == "__main__":
    main()
