"""Result folders, written atomically, and the tidy tables inside them.

A run writes into a hidden sibling folder, ``.NAME.tmp-<pid>-<hex>``, and renames it into place
only when everything is written, so a failed or interrupted run leaves no result folder,
half-written or otherwise; the next run beside it removes what a killed one left.

Layout of one run::

    DIR/protocol.toml   fully resolved; ``bioplastic run DIR/protocol.toml`` runs it again
    DIR/metrics.csv     tidy: trial, layer, metric, value
    DIR/summary.json    final metrics, wall time, versions, seed
    DIR/figures/*.png

A sweep holds one such folder per variant and seed, ``DIR/runs.csv`` indexing them, and the
comparison figures in ``DIR/figures``.
"""

import contextlib
import json
import math
import os
import platform
import shutil
from pathlib import Path

import pandas as pd
import tomli_w

from .errors import SpecError
from .scratch import mark, remove_stale_siblings, temporary_sibling, unmark

METRICS_COLUMNS = ["trial", "layer", "metric", "value"]


@contextlib.contextmanager
def atomic_folder(path):
    """Yield a temporary folder that becomes ``path`` only if the block succeeds.

    Raises FileExistsError if ``path`` exists already (results are never overwritten).
    """
    path = Path(path)
    tmp = temporary_sibling(path)
    created = claim_folder(path, tmp)
    mark(tmp)  # only marked folders are ever cleaned up as a killed run's leftovers
    done = False
    try:
        yield tmp
        unmark(tmp)
        os.rename(tmp, path)
        done = True
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if not done:  # leave no empty results/<name>/ behind either
            remove_folders(created)


def check_writable(path):
    """Refuse, before any work, a result path that could not be written at the end: a dangling
    symbolic link, a name that (as its temporary sibling's longer name) passes the file system's
    limit, or a folder no one may write into."""
    if path.is_symlink():
        raise SpecError("--out", f"is a symbolic link to {os.readlink(path)!r}, which does not exist; give a plain "
                        "folder path", str(path))
    existing = next(p for p in path.parents if p.exists())  # the last parent, '.' or '/', does
    extra = len(temporary_sibling(path).name.encode()) - len(path.name.encode())  # ".", ".tmp-<pid>-<hex>"
    limit = os.pathconf(existing, "PC_NAME_MAX") if existing.is_dir() else 255
    if len(path.name.encode()) + extra > limit:
        raise SpecError("--out", f"the folder name is too long for this file system (at most {limit - extra} bytes "
                        "here)", str(path))
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise SpecError("--out", f"cannot create the result folder: {str(existing)!r} is not a folder you may write "
                        "into", str(path))


def claim_folder(path, folder=None):
    """Create ``folder`` (default: ``path`` itself) for the result ``path``, which must not exist.

    Removes what a killed run left beside ``path`` first. Returns the parents made here (for
    :func:`remove_folders`); errors name ``--out``.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"--out: the result folder exists already; choose another (got {str(path)!r})")
    check_writable(path)
    created = [p for p in reversed(path.parents) if not p.exists()]  # parents made here, outermost first
    remove_stale_siblings(path)
    try:
        Path(folder or path).mkdir(parents=True)
    except OSError as exc:
        raise SpecError("--out", f"cannot create the result folder: {exc.strerror or exc}", str(path)) from None
    return created


def remove_folders(created):
    """Remove the (empty) folders ``claim_folder`` made, innermost first."""
    for parent in reversed(created):
        with contextlib.suppress(OSError):
            parent.rmdir()


def write_table(frame, path):
    """Write a CSV through a temporary file and a rename, so no reader sees half a table."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def write_json(data, path):
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_finite(data), indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


def _finite(data):
    """JSON has no NaN: write missing numbers as null."""
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if hasattr(data, "item"):  # numpy scalars
        return _finite(data.item())
    return data


def write_protocol(table, path):
    Path(path).write_text(tomli_w.dumps(table))


def read_metrics(folder):
    return pd.read_csv(Path(folder) / "metrics.csv", keep_default_na=False, na_values=[""],
                       dtype={"layer": str}).fillna({"layer": ""})


def versions():
    import brian2
    import numpy

    from . import __version__
    return dict(bioplastic=__version__, brian2=brian2.__version__, numpy=numpy.__version__,
                pandas=pd.__version__, python=platform.python_version())


def final_value(metrics, metric="loss", fraction=0.1, first=False):
    """Mean of ``metric`` (whole network) over the last (``first``: the first) ``fraction`` of its
    logged trials."""
    rows = metrics[(metrics.metric == metric) & (metrics.layer.isin(["", "all"]))]
    if rows.empty:
        return float("nan")
    rows = rows.sort_values("trial")
    count = max(1, int(round(len(rows) * fraction)))
    return float((rows.head(count) if first else rows.tail(count)).value.mean())


def loss_warning(metrics, factor=2.0):
    """A warning when the loss ended far above where it started (a bounded activation can hide a
    divergence), comparing the means of the first and the last tenth of the trials; else None."""
    initial, final = final_value(metrics, "loss", first=True), final_value(metrics, "loss")
    if final > factor * initial:
        return f"final loss {final:.3g} is {final / initial:.1f}x the initial {initial:.3g}"
    return None


def labelled_run_tables(metrics, variant, seed, layer="all"):
    """One run's loss rows, and its ``cosine``/``cosine_theory`` per trial (wide) of ``layer``
    (default the whole network), both labelled with ``variant`` and ``seed`` for figures that
    compare runs."""
    metrics = metrics.assign(variant=variant, seed=seed)
    losses = metrics[(metrics.metric == "loss") & metrics.layer.isin(["", "all"])]
    rows = metrics[(metrics.layer == layer) & metrics.metric.isin(["cosine", "cosine_theory"])]
    cosines = rows.pivot_table(index=["variant", "seed", "trial"], columns="metric", values="value").reset_index()
    cosines.columns.name = None
    return losses, cosines


def finished_runs(folder):
    """The rows of a sweep's ``runs.csv`` whose run finished (``bioplastic sweep`` also lists the
    failed ones, with their error)."""
    runs = pd.read_csv(Path(folder) / "runs.csv")
    return runs[runs.status == "done"] if "status" in runs else runs


def sweep_tables(folder, layer="all"):
    """Losses and the cosines of ``layer`` (see :func:`labelled_run_tables`) of every finished run in ``runs.csv``."""
    folder = Path(folder)
    pairs = [labelled_run_tables(read_metrics(folder / run.path), run.variant, run.seed, layer)
             for run in finished_runs(folder).itertuples()]
    return pd.concat([p[0] for p in pairs]), pd.concat([p[1] for p in pairs])


def alignment_table(folder):
    """The whole-network rows of ``alignment.csv``, labelled by ``variant`` for figures (tables
    written before the column existed are labelled by their ``rule``)."""
    table = pd.read_csv(Path(folder) / "alignment.csv")
    if "variant" not in table:
        table = table.rename(columns={"rule": "variant"})
    return table[table.layer == "all"]


def _weights_of(sizes):
    """The number of weights of a feed-forward network of layer ``sizes``."""
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def scaling_tables(folder):
    """For every swept key of a sweep other than ``rule.kind``, the runs' mean whole-network cosine
    (and its theory) against that key: ``{key: DataFrame(line, x, cosine, sem, theory, seeds)}``.
    ``model.sizes`` becomes its number of weights; a line is a rule kind when the sweep varies it."""
    import ast
    runs = finished_runs(folder)
    keys = [c for c in runs.columns if "." in c and c != "rule.kind" and runs[c].nunique() > 1]
    out = {}
    for key in keys:
        values = runs[key]
        if key == "model.sizes":
            x = values.map(lambda v: _weights_of(ast.literal_eval(v) if isinstance(v, str) else v))
        else:
            x = pd.to_numeric(values, errors="coerce")
            if x.isna().any():
                continue
        line = runs["rule.kind"] if "rule.kind" in runs else pd.Series("", index=runs.index)
        table = pd.DataFrame(dict(line=line, x=x, cosine=runs.mean_cosine,
                                  theory=runs.get("mean_cosine_theory", pd.Series(float("nan"), index=runs.index))))
        grouped = table.groupby(["line", "x"], sort=True)
        out[key] = grouped.agg(cosine=("cosine", "mean"), sem=("cosine", "sem"), theory=("theory", "mean"),
                               seeds=("cosine", "count")).reset_index()
    return out
