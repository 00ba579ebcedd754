"""How exact is the expected-cosine theory? Monte Carlo over random instances (NumPy only).

For every case (WP on the whole network and per layer, NP per layer and whole, WP with a clean
copy on a curved loss, with and without its curvature term) it draws random instances, compares
the rule's theory with the mean cosine of ``--draws`` estimates, and prints the median and
maximum relative error, and the maximum beyond 3 Monte Carlo standard errors::

    .venv/bin/python analysis/theory_accuracy.py [--instances 50] [--draws 20000] [--out table.csv]

See :mod:`bioplastic.analysis.theory_accuracy`; the README's "How exact is the theory?" records
the numbers, and ``tests/test_theory.py`` takes its tolerances from them.
"""

import argparse

import numpy as np

from bioplastic.analysis.theory_accuracy import study, summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--draws", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the per-instance table (CSV)")
    args = parser.parse_args(argv)
    table = study(args.instances, args.draws, args.seed)
    beyond = np.maximum(0, (table.monte_carlo - table.theory).abs() - 3 * table["sem"]) / table.theory
    result = summary(table).set_index("case")
    result["max_beyond_3_sem"] = beyond.groupby(table.case).max()
    print(result.to_string(float_format=lambda x: f"{x:.4f}"))
    if args.out:
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
