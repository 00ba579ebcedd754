"""The cosine of each rule's updates against a swept quantity, with the theory: one figure per
swept key of a sweep folder (written by ``bioplastic sweep`` or ``bioplastic run``).

    bioplastic sweep protocols/scaling_width.toml --out results/scaling_width
    .venv/bin/python analysis/scaling.py results/scaling_width --out figures/scaling_width

writes ``figures/scaling_width_<key>.png`` and ``.pdf`` for every swept key other than
``rule.kind`` (``model.sizes`` is drawn against the number of weights). Only the tables are read.
"""

import argparse
from pathlib import Path

from bioplastic.plotting import plot_scaling, reference_name
from bioplastic.results import scaling_tables


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="a sweep folder (has runs.csv)")
    parser.add_argument("--out", type=Path, required=True, help="file name stem of the figures")
    args = parser.parse_args(argv)
    tables = scaling_tables(args.sweep)
    if not tables:
        parser.error(f"{args.sweep}: the sweep varies no numeric key besides rule.kind")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for key, table in tables.items():
        ax = plot_scaling(table, "number of weights" if key == "model.sizes" else key,
                          reference=reference_name(args.sweep))
        for suffix in (".png", ".pdf"):
            path = args.out.with_name(f"{args.out.name}_{key.replace('.', '_')}{suffix}")
            ax.figure.savefig(path, dpi=120)
            print(path)


if __name__ == "__main__":
    main()
