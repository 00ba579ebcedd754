r"""How exact is the expected-cosine theory? Monte Carlo over random instances.

Each instance draws the quantities the theory reads (gradients, node gradients, presynaptic
rates, layer sizes, K, the batch) at random, computes the rule's own ``theory()``, and estimates
the true mean cosine from ``draws`` independent estimates drawn exactly as the estimator draws
them. The relative error ``|Monte Carlo − theory| / theory`` then says how exact the theory is,
case by case:

* ``wp_all``: weight perturbation on the whole network (cos² ~ Beta(K/2, (D−1)/2): exact);
* ``wp_layer``: one layer of WP (second moments matched: an approximation);
* ``np_layer``, ``np_all``: node perturbation per layer and on the whole network (moment matched);
* ``wp_forward``: WP with a clean copy (forward differences) on a quadratic loss with Hessian H,
  whose difference quotient has the extra term ½ξᵀHξ/σ. Its second moment gives
  :math:`D \to D + \sigma^2 (D + 4)\big((\mathrm{tr} H)^2 + 2\|H\|_F^2\big) / (4\|g\|^2)`
  (:func:`~bioplastic.analysis.theory.forward_difference_dimension`); ``wp_forward_plain`` is the
  same instances against the theory without that term (what ``theory()`` reports, since a rule
  does not know H).

``analysis/theory_accuracy.py`` runs the study and prints the median and maximum errors; the
tests take their tolerances from those numbers.
"""

import numpy as np
import pandas as pd

from .alignment import layer_names
from .theory import expected_cosine, forward_difference_dimension


def _cosines(estimates, mean):
    return estimates @ mean / (np.linalg.norm(estimates, axis=1) * np.linalg.norm(mean))


def weight_perturbation_instance(rng, draws):
    """Rows (case, layer, theory, monte_carlo, sem) of one random WP instance."""
    from ..gradients import Gradient
    from ..rules import RULES, TrialData
    samples = int(rng.choice([1, 2, 4, 8]))
    shapes = [(int(rng.integers(2, 12)), int(rng.integers(2, 12))) for _ in range(2)]
    g = [rng.normal(size=s) * rng.uniform(0.2, 3.0) for s in shapes]
    rule = RULES["weight_perturbation"](RULES["weight_perturbation"].spec_class(samples=samples))
    theory = rule.theory(TrialData(weights=[np.zeros(s) for s in shapes], losses=None, final=[],
                                   gradient=Gradient(g, None)))
    flat = np.concatenate([x.ravel() for x in g])
    xi = rng.normal(size=(draws, samples, flat.size))
    estimate = np.einsum("skd,sk->sd", xi, xi @ flat) / samples
    bounds = np.cumsum([0] + [x.size for x in g])
    rows = []
    for l, name in enumerate(layer_names(2)):
        part = slice(bounds[l], bounds[l + 1])
        cos = _cosines(estimate[:, part], flat[part])
        rows.append(("wp_layer", name, theory[name][1], cos.mean(), cos.std() / np.sqrt(draws)))
    cos = _cosines(estimate, flat)
    rows.append(("wp_all", "all", theory["all"][1], cos.mean(), cos.std() / np.sqrt(draws)))
    return rows, dict(samples=samples, dimension=flat.size)


def node_perturbation_instance(rng, draws):
    """Rows of one random NP instance (two layers, batch 1 or 4, unequal sizes and rates)."""
    from ..gradients import Gradient
    from ..rules import RULES, TrialData
    batch = int(rng.choice([1, 4]))
    samples = int(rng.choice([1, 2, 4, 8]))
    sizes = [int(rng.integers(2, 12)) for _ in range(3)]
    g = [rng.normal(size=(batch, n)) * rng.uniform(0.2, 3.0) for n in sizes[1:]]
    pre = [np.abs(rng.normal(size=(batch, n))) * rng.uniform(0.2, 2.0) for n in sizes[:-1]]
    rule = RULES["node_perturbation"](RULES["node_perturbation"].spec_class(samples=samples))
    final = [p[None] for p in pre] + [np.zeros((1, batch, sizes[-1]))]
    theory = rule.theory(TrialData(weights=None, losses=None, final=final, gradient=Gradient(None, g)))
    rows = [("np_all" if name == "all" else "np_layer", name, theory[name][1], cos.mean(), cos.std() / np.sqrt(draws))
            for name, cos in node_perturbation_cosines(rng, g, pre, samples, draws).items()]
    return rows, dict(samples=samples, batch=batch)


def node_perturbation_cosines(rng, node_gradients, pre, samples, draws):
    """``{W1.., all: cosines}`` of ``draws`` NP estimates (K = ``samples`` node-noise draws per
    example, credited by the presynaptic rates) with their mean, per layer and whole."""
    means = [np.einsum("bo,bi->oi", gl, p).ravel() for gl, p in zip(node_gradients, pre)]
    xi = [rng.normal(size=(draws, samples) + gl.shape) for gl in node_gradients]
    proj = sum(np.einsum("skbn,bn->skb", x, gl) for x, gl in zip(xi, node_gradients))
    estimates = [np.einsum("skbo,skb,bi->soi", x, proj, p).reshape(draws, -1) for x, p in zip(xi, pre)]
    out = {name: _cosines(estimates[l], means[l]) for l, name in enumerate(layer_names(len(means)))}
    out["all"] = _cosines(np.concatenate(estimates, axis=1), np.concatenate(means))
    return out


def forward_difference_instance(rng, draws):
    """Rows of one WP instance with a clean copy on a random quadratic loss (gradient g,
    Hessian H), at a σ where the curvature term is comparable with the gradient's."""
    samples = int(rng.choice([1, 2, 4, 8]))
    dimension = int(rng.integers(5, 60))
    g = rng.normal(size=dimension)
    a = rng.normal(size=(dimension, dimension))
    h = (a + a.T) / 2 * rng.uniform(0.05, 0.5) + np.eye(dimension) * rng.uniform(0.0, 1.0)
    sigma = float(rng.uniform(0.01, 0.3))
    xi = rng.normal(size=(draws, samples, dimension)) * sigma
    difference = xi @ g + 0.5 * np.einsum("skd,de,ske->sk", xi, h, xi)
    estimate = np.einsum("skd,sk->sd", xi, difference) / (samples * sigma ** 2)
    cos = _cosines(estimate, g)
    d_eff = forward_difference_dimension(dimension, sigma, float(g @ g), float(np.trace(h)), float(np.sum(h * h)))
    rows = [("wp_forward", "all", expected_cosine(d_eff, samples), cos.mean(), cos.std() / np.sqrt(draws)),
            ("wp_forward_plain", "all", expected_cosine(dimension, samples), cos.mean(), cos.std() / np.sqrt(draws))]
    return rows, dict(samples=samples, dimension=dimension, dimension_effective=d_eff)


INSTANCES = (weight_perturbation_instance, node_perturbation_instance, forward_difference_instance)


def study(instances=50, draws=20000, seed=0):
    """A table of every case of ``instances`` random instances of each kind, with the relative
    error of the theory and its Monte Carlo standard error."""
    rows = []
    for make in INSTANCES:
        for i in range(instances):
            rng = np.random.default_rng([seed, INSTANCES.index(make), i])
            cases, info = make(rng, draws)
            rows += [dict(instance=i, case=case, layer=layer, theory=theory, monte_carlo=mc, sem=sem, **info)
                     for case, layer, theory, mc, sem in cases]
    table = pd.DataFrame(rows)
    table["relative_error"] = (table.monte_carlo - table.theory).abs() / table.theory
    table["relative_sem"] = table["sem"] / table.theory
    return table


def summary(table):
    """Median and maximum relative error per case (with the largest Monte Carlo sem, for scale)."""
    return table.groupby("case", sort=False).agg(instances=("instance", "nunique"), rows=("relative_error", "size"),
                                                 median_error=("relative_error", "median"),
                                                 max_error=("relative_error", "max"),
                                                 max_relative_sem=("relative_sem", "max")).reset_index()
