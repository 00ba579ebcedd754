r"""Statistics of a rule's update as an estimator of the descent direction, at fixed weights.

Given n dry-run updates :math:`u_s` (one per noise sample) and the reference gradient g:

* the **mean update** :math:`\bar u = \frac1n \sum_s u_s` and its cosine with :math:`-g`;
* the cosine of the **expected update** :math:`E u` with :math:`-g`, with :math:`\|E u\|^2`
  estimated as :math:`\|\bar u\|^2 - V/n` (the mean of n samples carries V/n of noise, which
  alone would give a finite n an angle): 1 for an unbiased estimator, up to sampling error, which
  can take it above 1; the **bias angle** is its arccos (0 where it exceeds 1);
* the **variance** :math:`V = \frac{1}{n-1}\sum_s \|u_s - \bar u\|^2` (the trace of the covariance);
* the **SNR** of a single update, :math:`\|E u\|^2 / V`, with the same noise-free estimate of
  :math:`\|E u\|^2` (for K Gaussian directions in D dimensions, K / (D + 1));
* the **cosine of single updates**, :math:`\frac1n \sum_s \cos(u_s, -g)`.

Confidence intervals (95%): for the single-update cosine from its standard error; for the
others, which are not means, by the delete-one-group jackknife over G groups of samples (the
samples are split in the order drawn into G nearly equal groups), with a t quantile on G - 1
degrees of freedom. Only the per-group sums of the updates and of their squared norms are kept,
so memory grows with G times the number of weights, not with n.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .alignment import layer_subsets

GROUPS = 20
# t quantiles (0.975) for the jackknife's G - 1 degrees of freedom
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         12: 2.179, 15: 2.131, 19: 2.093, 20: 2.086, 30: 2.042, 60: 2.000}


def t975(dof):
    """The 97.5% quantile of Student's t (tabulated; the nearest smaller tabulated dof)."""
    if dof >= 120:
        return 1.96
    return _T975[max(k for k in _T975 if k <= dof)]


@dataclass
class EstimatorAccumulator:
    """Collects dry-run updates (one list of arrays per sample) group by group."""

    samples: int
    groups: int = GROUPS
    sums: list = field(default_factory=list)  # per group: per layer, sum of updates
    norms: list = field(default_factory=list)  # per group: per layer, sum of squared norms
    counts: list = field(default_factory=list)
    seen: int = 0

    def add(self, update):
        group = min(self.seen * min(self.groups, self.samples) // self.samples, self.groups - 1)
        while len(self.sums) <= group:
            self.sums.append([np.zeros_like(np.asarray(u, float)) for u in update])
            self.norms.append(np.zeros(len(update)))
            self.counts.append(0)
        for layer, u in enumerate(update):
            self.sums[group][layer] += u
            self.norms[group][layer] += float(np.sum(np.square(u)))
        self.counts[group] += 1
        self.seen += 1

    def table(self, gradient, cosines):
        """One row per layer (W1.., all): the statistics of the module docstring with their
        intervals. ``cosines``: the per-sample single-update cosines, ``{layer name: array}``."""
        rows = []
        for name, layers in layer_subsets(len(gradient)):
            sums = np.array([np.concatenate([group[l].ravel() for l in layers]) for group in self.sums])
            norms = np.array([sum(group[l] for l in layers) for group in self.norms])
            counts = np.array(self.counts, float)
            descent = -np.concatenate([np.ravel(gradient[l]) for l in layers])
            full = _statistics(sums.sum(0), norms.sum(), counts.sum(), descent)
            row = dict(layer=name, samples=int(counts.sum()), **full)
            if len(counts) >= 3:
                leave_out = [_statistics(sums.sum(0) - sums[b], norms.sum() - norms[b], counts.sum() - counts[b],
                                         descent) for b in range(len(counts))]
                for key in full:
                    row[f"{key}_low"], row[f"{key}_high"] = _jackknife_interval(full[key],
                                                                                [x[key] for x in leave_out])
            # the angle of the expected update, and its interval, from its cosine's (arccos is monotone)
            row["bias_angle_deg"] = _angle(row["expected_update_cosine"])
            if "expected_update_cosine_low" in row:
                row["bias_angle_deg_low"] = _angle(row["expected_update_cosine_high"])
                row["bias_angle_deg_high"] = _angle(row["expected_update_cosine_low"])
            single = np.asarray(cosines.get(name, []), float)
            single = single[np.isfinite(single)]
            if len(single):
                half = t975(len(single) - 1) * single.std(ddof=1) / np.sqrt(len(single)) if len(single) > 1 else np.nan
                row.update(single_cosine=float(single.mean()), single_cosine_low=float(single.mean() - half),
                           single_cosine_high=float(single.mean() + half))
            rows.append(row)
        return pd.DataFrame(rows)


def _statistics(total, norms, n, descent):
    mean = total / n
    mean2 = float(mean @ mean)
    variance = max((norms - n * mean2) / (n - 1), 0.0) if n > 1 else np.nan
    nm, nd = np.sqrt(mean2), np.linalg.norm(descent)
    cosine = float(mean @ descent / (nm * nd)) if nm > 0 and nd > 0 else np.nan
    # The mean of n samples is itself noisy: E|u_bar|^2 = |E u|^2 + V/n. The bias angle is that of
    # E u, whose norm is estimated without that noise (undetermined when the noise is all there is).
    signal2 = mean2 - variance / n if n > 1 else mean2
    bias = float(mean @ descent / (np.sqrt(signal2) * nd)) if signal2 > 0 and nd > 0 else np.nan
    snr = signal2 / variance if variance > 1e-12 * mean2 else np.inf  # an exact rule has no noise
    return dict(mean_update_cosine=cosine, expected_update_cosine=bias, variance=float(variance), snr=float(snr))


def _angle(cosine):
    return float(np.degrees(np.arccos(np.clip(cosine, -1, 1))))


def _jackknife_interval(estimate, leave_out):
    values = np.asarray(leave_out, float)
    g = len(values)
    if not np.all(np.isfinite(values)):
        return (estimate, estimate) if np.all(values == estimate) else (np.nan, np.nan)
    se = np.sqrt((g - 1) / g * np.sum((values - values.mean()) ** 2))
    half = t975(g - 1) * se
    return float(estimate - half), float(estimate + half)
