"""Compare learning rules side by side: one figure from a rule sweep (and an alignment).

Panels:
  (a) learning curves: loss against trial, mean ± sem over seeds, one line per rule;
  (b) cos(ΔW, −∇L) of the updates logged during training, per rule, with the theory;
  (c) with ``--align``: the same cosine over dry-run samples at fixed weights, with the theory.

SWEEP_DIR is a folder written by ``bioplastic run`` for a protocol whose ``[sweep]`` is over
``rule.kind`` (it holds ``runs.csv``); ALIGN_DIR is a folder written by ``bioplastic align``
(it holds ``alignment.csv``). Only the tables are read; nothing is simulated::

    bioplastic run protocols/quickstart.toml --out results/qs
    bioplastic align protocols/quickstart.toml --samples 200 --out results/qs-align
    .venv/bin/python analysis/compare_rules.py results/qs --align results/qs-align --out qs.png
"""

import argparse
from pathlib import Path

from matplotlib.figure import Figure

from bioplastic.plotting import plot_cosine_distribution, plot_learning_curves
from bioplastic.results import alignment_table, sweep_tables


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="result folder of a rule.kind sweep (has runs.csv)")
    parser.add_argument("--align", type=Path, help="result folder of `bioplastic align` (has alignment.csv)")
    parser.add_argument("--out", type=Path, required=True, help="figure file to write (.png, .pdf, ...)")
    args = parser.parse_args(argv)

    losses, cosines = sweep_tables(args.sweep)
    panels = 3 if args.align else 2
    fig = Figure(figsize=(5.2 * panels, 4.0), layout="constrained")
    axes = fig.subplots(1, panels)
    if args.align:
        axes[2].sharey(axes[1])  # the two cosine panels on one scale

    plot_learning_curves(losses, ax=axes[0])
    axes[0].set_title("(a) learning curves (mean ± sem over seeds)")

    if "cosine" in cosines and cosines.cosine.notna().any():
        plot_cosine_distribution(cosines, ax=axes[1])
    else:
        axes[1].text(0.5, 0.5, "no cosines logged", ha="center", va="center", transform=axes[1].transAxes)
    axes[1].set_title("(b) cos(ΔW, −∇L) during training")

    if args.align:
        plot_cosine_distribution(alignment_table(args.align), ax=axes[2])
        axes[2].set_title("(c) cos(ΔW, −∇L) at fixed weights")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"figure: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
