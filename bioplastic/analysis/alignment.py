"""How close an implied update is to the negative gradient: cosine, angle and norm ratio."""

import numpy as np


def _cosine(a, b):
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")


def layer_names(n_layers):
    """Names used in tables: W1 .. WL, input side first."""
    return [f"W{l}" for l in range(1, n_layers + 1)]


def layer_subsets(n_layers):
    """``(name, layer indices)`` for each layer alone, then ``("all", every layer)``."""
    return [(name, [l]) for l, name in enumerate(layer_names(n_layers))] + [("all", list(range(n_layers)))]


def compare(update, gradient, lr):
    """Compare an update with the descent direction, per layer and for the whole network.

    Parameters
    ----------
    update : list of ndarray
        The rule's implied weight change, one array per layer.
    gradient : list of ndarray
        The reference gradient dL/dW, same shapes.
    lr : float
        The rule's learning rate: ``norm_ratio = |update| / (lr |gradient|)``, which is 1 for
        gradient descent with the same rate.

    Returns
    -------
    list of dict
        Rows with ``layer`` (``W1``.. and ``all``), ``cosine`` (with -gradient), ``angle_deg``,
        ``norm_ratio``.
    """
    flat_u = [np.ravel(u) for u in update]
    flat_g = [-np.ravel(g) for g in gradient]
    pairs = list(zip(layer_names(len(update)), flat_u, flat_g))
    pairs.append(("all", np.concatenate(flat_u), np.concatenate(flat_g)))
    rows = []
    for layer, u, g in pairs:
        cosine = _cosine(u, g)
        g_norm = np.linalg.norm(g)
        rows.append(dict(layer=layer, cosine=cosine,
                         angle_deg=float(np.degrees(np.arccos(np.clip(cosine, -1, 1)))),
                         norm_ratio=float(np.linalg.norm(u) / (lr * g_norm)) if g_norm > 0 else float("nan")))
    return rows


def summarise(table, value="cosine", by=("rule", "layer")):
    """Mean, sem, n (and the mean theory where the table has it) of ``value`` per group."""
    grouped = table.groupby(list(by), sort=False)
    out = grouped[value].agg(mean="mean", sem="sem", n="count")
    if f"{value}_theory" in table:
        out["theory"] = grouped[f"{value}_theory"].mean()
    if f"mean_update_{value}" in table:  # one value per group: the mean update's
        out["of_mean_update"] = grouped[f"mean_update_{value}"].first()
    return out.reset_index()
