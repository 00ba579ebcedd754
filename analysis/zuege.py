"""Züge, Klos & Memmesheimer (2023): weight against node perturbation on a temporally extended
linear task, with the closed-form expected learning curves drawn over the measured ones.

    bioplastic sweep protocols/zuege2023.toml --out results/zuege2023
    .venv/bin/python analysis/zuege.py results/zuege2023 --out figures/zuege2023

Left: the mean learning curves (± sem over seeds) at the smallest and the largest effective input
dimension N_eff, each rule's closed form dashed (bioplastic.analysis.learning_curves, from the
measured mean initial loss). Right: the mean loss over the last third of the trials against N_eff,
beside the theory's mean over the same trials. Writes ``<out>.png``, ``<out>.pdf`` and
``<out>.csv`` (the right panel's table, with the ratio measured/theory).
"""

import argparse
from pathlib import Path

from bioplastic.analysis.learning_curves import sweep_learning_curves
from bioplastic.plotting import plot_learning_curves_with_theory


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="a temporal_regression sweep folder (has runs.csv)")
    parser.add_argument("--out", type=Path, required=True, help="file name stem of the figure and table")
    args = parser.parse_args(argv)
    curves, late_loss = sweep_learning_curves(args.sweep)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    late_loss.to_csv(args.out.with_suffix(".csv"), index=False)
    figure = plot_learning_curves_with_theory(curves, late_loss)[0].figure
    for suffix in (".png", ".pdf"):
        figure.savefig(args.out.with_suffix(suffix), dpi=120)
        print(args.out.with_suffix(suffix))
    print(late_loss.to_string(index=False))


if __name__ == "__main__":
    main()
