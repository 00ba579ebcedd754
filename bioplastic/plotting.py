"""Figures from result tables only; nothing here simulates.

Each ``plot_x(table, ax=None) -> Axes`` draws on a given Axes (or a new figure), so users can
compose them. :func:`draw_folder` redraws every figure of a result folder from its tables.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .registry import Registry
from .results import alignment_table, finished_runs, labelled_run_tables, read_metrics, scaling_tables, sweep_tables

COLORS = {"backprop": "black", "weight_perturbation": "tab:orange", "node_perturbation": "tab:blue",
          "rstdp": "tab:green", "mstdp": "tab:olive", "STDP": "black", "MSTDP": "tab:blue", "MSTDPET": "tab:red",
          "oua": "tab:purple", "miconi": "tab:red", "exploratory_hebbian": "tab:brown",
          "node_perturbation_time": "tab:cyan",
          # the lines of the temporally extended task (bioplastic.analysis.learning_curves)
          "WP": "tab:orange", "NP, one reward per trial": "tab:blue", "NP, a reward per step": "tab:cyan"}
_CYCLE = ["tab:purple", "tab:brown", "tab:pink", "tab:gray", "tab:cyan", "tab:olive"]


def color(name, names=()):
    """A fixed colour for the known rules and variants, else one from a cycle by position."""
    if name in COLORS:
        return COLORS[name]
    others = [n for n in names if n not in COLORS]
    return _CYCLE[others.index(name) % len(_CYCLE)] if name in others else None


def _axes(ax, size=(5.0, 3.6)):
    if ax is not None:
        return ax
    return Figure(figsize=size, layout="constrained").add_subplot()


def smoothing_window(trials):
    """Trials averaged per point of a learning curve: 1 up to 100 trials, then about 1/50 of them."""
    return max(1, int(round(trials / 50))) if trials > 100 else 1


def plot_learning_curves(losses, ax=None, window=None, ylabel="loss"):
    """Loss against trial, mean ± sem over seeds, one line per variant.

    Parameters
    ----------
    losses : DataFrame
        Columns ``variant``, ``seed``, ``trial``, ``value`` (the loss).
    window : int, optional
        Trials in the running mean of each seed's curve (default :func:`smoothing_window`); the
        legend says when it is above 1.
    """
    ax = _axes(ax, (6.5, 3.6))
    names = list(dict.fromkeys(losses.variant))
    window = window or smoothing_window(losses.trial.nunique())
    for variant, rows in losses.groupby("variant", sort=False):
        rows = rows.sort_values("trial").assign(value=lambda r: r.groupby("seed").value.transform(
            lambda v: v.rolling(window, min_periods=1).mean()))
        stats = rows.groupby("trial").value.agg(["mean", "sem", "count"])
        sem = stats["sem"].fillna(0.0).to_numpy()
        c = color(variant, names)
        n = int(stats["count"].max())
        ax.plot(stats.index, stats["mean"], color=c, label=f"{variant} (n={n})")
        ax.fill_between(stats.index, stats["mean"] - sem, stats["mean"] + sem, color=c, alpha=0.25, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel(ylabel)
    band = "mean ± sem over seeds" + (f";\nrunning mean over {window} trials" if window > 1 else "")
    ax.legend(frameon=False, fontsize="small", title=band, title_fontsize="x-small", loc="upper left",
              bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_cosine_distribution(alignment, ax=None, title=None):
    """Distribution of cos(ΔW, -∇L) per variant, with the measured mean and the theory marked.

    Parameters
    ----------
    alignment : DataFrame
        Columns ``variant``, ``cosine`` and optionally ``cosine_theory`` and
        ``mean_update_cosine`` (the cosine of the mean update; whole-network rows).
    title : str, optional
        What the cosines are of (which updates, how many, against which reference).
    """
    ax = _axes(ax)
    names = list(dict.fromkeys(alignment.variant))
    for x, name in enumerate(names):
        rows = alignment[alignment.variant == name]
        values = rows.cosine.dropna().to_numpy()
        if not len(values):  # a rule that did not change the weights has no direction
            ax.text(x, 0.02, "no update", ha="center", fontsize="x-small", color="gray")
            continue
        if len(values) > 1 and np.ptp(values) > 1e-12:
            parts = ax.violinplot(values, positions=[x], widths=0.8, showextrema=False)
            for body in parts["bodies"]:
                body.set_facecolor(color(name, names) or "tab:gray")
                body.set_alpha(0.5)
        ax.scatter(np.full(len(values), x) + np.random.default_rng(0).uniform(-0.12, 0.12, len(values)),
                   values, s=4, color=color(name, names) or "tab:gray", alpha=0.6)
        ax.hlines(values.mean(), x - 0.35, x + 0.35, color="black", lw=2,
                  label="measured mean" if x == 0 else None)
        if "cosine_theory" in rows and rows.cosine_theory.notna().any():
            ax.hlines(rows.cosine_theory.mean(), x - 0.35, x + 0.35, color="red", lw=2, ls="--",
                      label="theory" if "theory" not in ax.get_legend_handles_labels()[1] else None)
        if "mean_update_cosine" in rows and rows.mean_update_cosine.notna().any():
            ax.plot([x], [rows.mean_update_cosine.iloc[0]], "D", color="black", ms=6, mfc="white",
                    label="mean update" if "mean update" not in ax.get_legend_handles_labels()[1] else None)
    ax.set_xticks(range(len(names)), names, fontsize="small", rotation=15 if len(names) > 3 else 0)
    ax.set_xlim(-0.75, len(names) - 0.25)  # a single violin keeps its width
    if title:
        ax.set_title(title, fontsize="small")
    ax.set_ylabel("cos(ΔW, −∇L)")
    ax.set_ylim(min(-0.05, ax.get_ylim()[0]), 1.05)
    ax.axhline(0, color="gray", lw=0.5)
    ax.legend(frameon=False, fontsize="small")
    return ax


# -- experiments (continuous runs) ------------------------------------------------------------
def _series(metrics, name):
    rows = metrics[metrics.metric == name].sort_values("t_s")
    return rows.t_s.to_numpy(), rows.value.to_numpy()


def plot_rewarded_weight(metrics, ax=None):
    """Izhikevich (2007), Fig. 1: the rewarded synapse's weight against the distribution of the
    others (5-95 and 25-75 percentile bands, median, mean), with the rewards ticked below.

    ``metrics``: a distal-reward ``metrics.csv``.
    """
    ax = _axes(ax, (6.0, 3.6))
    t, _ = _series(metrics, "weight_p50")
    if len(t):
        bands = {q: _series(metrics, f"weight_p{q:02d}")[1] for q in (5, 25, 50, 75, 95)}
        minutes = t / 60
        ax.fill_between(minutes, bands[5], bands[95], color="tab:gray", alpha=0.2, lw=0,
                        label="other synapses, 5-95%")
        ax.fill_between(minutes, bands[25], bands[75], color="tab:gray", alpha=0.4, lw=0, label="25-75%")
        ax.plot(minutes, bands[50], color="tab:gray", lw=1, label="median")
    t, mean = _series(metrics, "mean_weight")
    ax.plot(t / 60, mean, color="black", lw=1, ls="--", label="mean of all plastic")
    t, weight = _series(metrics, "rewarded_weight")
    ax.plot(t / 60, weight, color="tab:red", lw=1.5, label="rewarded synapse")
    t, count = _series(metrics, "reward")
    rewarded = t[1:][np.diff(count) > 0] if len(count) > 1 else []
    ax.plot(np.asarray(rewarded) / 60, np.full(len(rewarded), -0.05 * max(1.0, np.nanmax(weight))), "|",
            color="tab:red", ms=4, label=f"rewards ({int(count[-1]) if len(count) else 0})")
    ax.set_xlabel("time (min)")
    ax.set_ylabel("weight (mV)")
    ax.legend(frameon=False, fontsize="x-small", loc="upper left")
    return ax


def plot_raster(raster, start, stop, ax=None, n_exc=None):
    """Spikes in ``[start, stop)`` seconds (``raster``: columns ``t_s``, ``neuron``)."""
    ax = _axes(ax, (4.0, 3.0))
    rows = raster[(raster.t_s >= start) & (raster.t_s < stop)]
    excitatory = rows.neuron < n_exc if n_exc is not None else np.ones(len(rows), bool)
    ax.plot((rows.t_s[excitatory] - start) * 1e3, rows.neuron[excitatory], ".", ms=1, color="black")
    ax.plot((rows.t_s[~excitatory] - start) * 1e3, rows.neuron[~excitatory], ".", ms=1, color="tab:blue",
            label="inhibitory" if n_exc is not None else None)
    ax.set_xlim(0, (stop - start) * 1e3)
    ax.set_xlabel(f"time from {start:g} s (ms)")
    ax.set_ylabel("neuron")
    return ax


def plot_weight_histogram(histogram, rewarded=None, ax=None):
    """The final distribution of the weights, with the rewarded synapse marked."""
    ax = _axes(ax, (4.0, 3.0))
    ax.bar(histogram.weight_mv_low, histogram.synapses, width=histogram.weight_mv_high - histogram.weight_mv_low,
           align="edge", color="tab:gray")
    if rewarded is not None:  # a line: a marker at 0 would vanish on the log axis
        ax.axvline(rewarded, color="tab:red", lw=2, label=f"rewarded synapse ({rewarded:.2f} mV)")
        ax.legend(frameon=False, fontsize="small")
    ax.set_yscale("log")
    ax.set_xlabel("weight at the end (mV)")
    ax.set_ylabel("synapses")
    return ax


def plot_traces(metrics, names, ax=None, labels=None):
    """Time series of ``metrics`` (a continuous run) on one axis each, stacked in ``ax`` (a list)."""
    if ax is None:
        fig = Figure(figsize=(5.5, 1.3 * len(names) + 0.5), layout="constrained")
        ax = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    for axis, name in zip(ax, names):
        t, values = _series(metrics, name)
        axis.plot(t * 1e3, values, color="black", lw=1)
        axis.set_ylabel((labels or {}).get(name, name), fontsize="small")
    ax[-1].set_xlabel("time (ms)")
    return ax


def plot_spike_pattern(runs, spikes, axes=None):
    """Florian (2007), Fig. 1: spikes, reward, traces, and the weight under each variant.

    ``runs``: {variant: metrics of its run}; ``spikes``: the pattern (``t_s``, ``neuron``).
    """
    if axes is None:
        fig = Figure(figsize=(5.5, 6.5), layout="constrained")
        axes = fig.subplots(5, 1, sharex=True)
    first = next(iter(runs.values()))
    for name, y in (("pre", 1), ("post", 0)):
        times = spikes[spikes.neuron == name].t_s * 1e3
        axes[0].vlines(times, y, y + 0.8, color="black")
    axes[0].set_yticks([0.4, 1.4], ["post", "pre"])
    with_reward = next((m for m in runs.values() if (m.metric == "third_factor").any()), first)
    t, reward = _series(with_reward, "third_factor")
    axes[1].step(t * 1e3, reward, where="post", color="tab:green")
    axes[1].set_ylabel("reward r(t)", fontsize="small")
    for name, style in (("pre_trace", "-"), ("post_trace", "--")):
        t, values = _series(first, name)
        axes[2].plot(t * 1e3, values, style, color="black", lw=1, label={"pre_trace": "P+ (pre)",
                                                                        "post_trace": "P- (post)"}[name])
    axes[2].legend(frameon=False, fontsize="x-small")
    axes[2].set_ylabel("traces", fontsize="small")
    names = list(runs)
    for variant, metrics in runs.items():
        t, e = _series(metrics, "eligibility")
        if len(t) and np.any(e != 0):
            axes[3].plot(t * 1e3, e, color=color(variant, names), lw=1, label=variant)
        t, w = _series(metrics, "weight")
        axes[4].plot(t * 1e3, w, color=color(variant, names), lw=1.5, label=variant)
    axes[3].set_ylabel("eligibility (1/s)", fontsize="small")
    axes[4].set_ylabel("weight (mV)", fontsize="small")
    axes[4].legend(frameon=False, fontsize="small")
    axes[4].set_xlabel("time (ms)")
    return axes


def plot_oua(runs, theta_target, axes=None):
    """OUA's one-parameter example: θ and μ over time against θ*, and the cumulative reward against
    that of the untrained parameter; ``runs`` maps a run's name (a seed) to its metrics."""
    if axes is None:
        fig = Figure(figsize=(9, 3.4), layout="constrained")
        axes = fig.subplots(1, 2)
    left, right = axes
    for n, (name, metrics) in enumerate(runs.items()):
        left.plot(*_series(metrics, "theta"), color="0.75", lw=0.5, label="θ (sampled weight)" if n == 0 else None)
        left.plot(*_series(metrics, "mu"), color=color("oua"), lw=1.0, label="μ (mean)" if n == 0 else None)
        right.plot(*_series(metrics, "cumulative_reward"), color=color("oua"), lw=1.0, label="OUA" if n == 0 else None)
    right.plot(*_series(next(iter(runs.values())), "cumulative_reward_untrained"), color="black", ls="--", lw=1.0,
               label="untrained θ0")
    left.axhline(theta_target, color="black", ls="--", lw=0.8, label="θ*")
    left.set_xlabel("time (s)")
    left.set_ylabel("parameter")
    right.set_xlabel("time (s)")
    right.set_ylabel("cumulative reward")
    left.set_title(f"{len(runs)} run{'s' if len(runs) > 1 else ''}", fontsize="small")
    for ax in axes:
        ax.legend(frameon=False, fontsize="small")
    return axes


def plot_cosine_over_training(cosines, ax=None, reference=None, title=None):
    """The cosine of each variant's update with -∇L at every analysed trial (mean over seeds,
    smoothed over a few analyses), against the trial; ``reference`` names the gradient."""
    ax = _axes(ax)
    variants = list(dict.fromkeys(cosines.variant))
    for variant in variants:
        rows = cosines[cosines.variant == variant].groupby("trial").cosine.mean()
        window = max(1, len(rows) // 20)
        ax.plot(rows.index, rows.rolling(window, min_periods=1).mean(), color=color(variant, variants), label=variant)
    ax.axhline(0, color="0.8", lw=0.5)
    ax.set_xlabel("trial")
    ax.set_ylabel("cosine(update, -∇L)" + (f", reference: {reference}" if reference else ""))
    ax.legend(frameon=False, fontsize="x-small" if len(variants) > 4 else "small")
    if title:
        ax.set_title(title, fontsize="small")
    return ax


def plot_scaling(table, xlabel, ax=None, reference=None):
    """The mean whole-network cosine of each rule's updates against a swept quantity (mean ± sem
    over seeds), with the theory at the same points as a dashed line."""
    ax = _axes(ax)
    lines = list(dict.fromkeys(table.line))
    for name in lines:
        rows = table[table.line == name].sort_values("x")
        c = color(name, lines)
        ax.errorbar(rows.x, rows.cosine, yerr=rows["sem"].fillna(0), color=c, marker="o", ms=4, capsize=2,
                    label=name or "measured")
        if rows.theory.notna().any():
            ax.plot(rows.x, rows.theory, color=c, ls="--", lw=1, label=f"{name} theory".strip())
    numeric = table.x[table.x > 0]
    if len(numeric) and numeric.max() / numeric.min() > 20:
        from matplotlib.ticker import NullFormatter
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean cos(update, -∇L)" + (f", reference: {reference}" if reference else ""))
    ax.legend(frameon=False, fontsize="small")
    return ax


def plot_learning_curves_with_theory(curves, late_loss):
    """Mean learning curves (± sem over seeds) of each rule with their closed form dashed, at the
    smallest and the largest swept ``input_dim``, and the mean loss of the curves' tails against
    ``input_dim`` with the theory (:func:`bioplastic.analysis.learning_curves.sweep_learning_curves`)."""
    dims = sorted(curves.input_dim.unique())
    shown = [dims[0], dims[-1]] if len(dims) > 1 else dims
    fig = Figure(figsize=(4.2 * (len(shown) + 1), 3.6), layout="constrained")
    axes = fig.subplots(1, len(shown) + 1)
    lines = list(dict.fromkeys(curves.line))
    for ax, dim in zip(axes, shown):
        for line in lines:
            rows = curves[(curves.line == line) & (curves.input_dim == dim)]
            c = color(line, lines)
            ax.plot(rows.trial, rows["mean"], color=c, lw=1, label=line)
            ax.fill_between(rows.trial, rows["mean"] - rows["sem"], rows["mean"] + rows["sem"], color=c, alpha=0.2, lw=0)
            if rows.theory.notna().any():
                ax.plot(rows.trial, rows.theory, color=c, ls="--", lw=1.2)
        ax.set_yscale("log")
        ax.set_xlabel("trial")
        ax.set_ylabel("loss (mean over seeds)")
        ax.set_title(f"N_eff = {dim} (dashed: closed form)", fontsize="small")
    ax = axes[-1]
    for line in lines:
        rows = late_loss[late_loss.line == line].sort_values("input_dim")
        c = color(line, lines)
        ax.errorbar(rows.input_dim, rows["mean"], yerr=rows["sem"], color=c, marker="o", ms=4, capsize=2, label=line)
        if rows.theory.notna().any():
            ax.plot(rows.input_dim, rows.theory, color=c, ls="--", lw=1.2)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("effective input dimension N_eff")
    ax.set_ylabel(f"mean loss, trials {late_loss.trials.iloc[0]}")
    ax.legend(frameon=False, fontsize="x-small")
    return axes


def plot_cosine_over_training_by_layer(by_layer, reference=None):
    """One panel of :func:`plot_cosine_over_training` per weight layer (``{layer: cosines}``):
    e-prop's read-out update is exact, its recurrent one is where the feedback kinds differ."""
    fig = Figure(figsize=(4.2 * len(by_layer), 3.4), layout="constrained")
    for ax, (layer, cosines) in zip(np.atleast_1d(fig.subplots(1, len(by_layer))), by_layer.items()):
        plot_cosine_over_training(cosines, ax=ax, reference=reference, title=f"{layer} weights")
    return fig


def plot_synapse_scatter(synapses, alignment=None):
    """Per synapse, each rule's mean dry-run update against the descent direction -∇L, one panel
    per variant (Miconi 2017's comparison), all on the same weights and trials."""
    variants = list(dict.fromkeys(synapses.variant))
    fig = Figure(figsize=(3.2 * len(variants), 3.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(variants)))
    for ax, variant in zip(axes, variants):
        rows = synapses[synapses.variant == variant]
        ax.scatter(rows.descent, rows.mean_update, s=3, alpha=0.4, color=color(variant, variants), linewidths=0)
        title = variant
        if alignment is not None and "mean_update_cosine" in alignment:
            cos = alignment[(alignment.variant == variant) & (alignment.layer == "all")].mean_update_cosine
            if len(cos):
                title += f"\ncos = {float(cos.iloc[0]):.2f}"
        ax.set_title(title, fontsize="small")
        ax.axhline(0, color="0.8", lw=0.5)
        ax.axvline(0, color="0.8", lw=0.5)
        ax.set_xlabel("-dL/dw (BPTT)")
    axes[0].set_ylabel("mean update of the rule")
    return axes


def plot_stdp_window(window, ax=None):
    """Δw against Δt = t_post - t_pre, measured (dots) and the closed form (line) where given."""
    ax = _axes(ax)
    if "closed_form_mv" in window:
        ax.plot(window.delta_t_ms, window.closed_form_mv, color="tab:red", lw=1.5, label="closed form")
    ax.plot(window.delta_t_ms, window.dw_mv, "o", ms=3, color="black", label="simulated")
    ax.axhline(0, color="gray", lw=0.5)
    ax.axvline(0, color="gray", lw=0.5)
    ax.set_xlabel("Δt = t_post - t_pre (ms)")
    ax.set_ylabel("Δw (mV)")
    after = window.reward_after_s.iloc[0] if "reward_after_s" in window else None
    ax.legend(frameon=False, fontsize="small", title=f"reward {after:g} s after the pair" if after is not None else None,
              title_fontsize="x-small")
    return ax


def _save(ax, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = ax.figure if hasattr(ax, "figure") else ax[0].figure
    figure.savefig(path, dpi=120)
    return path


def _protocol(folder):
    import tomllib
    try:
        return tomllib.loads((Path(folder) / "protocol.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _task_kind(folder):
    return _protocol(folder).get("task", {}).get("kind")


# -- a task's own figures, registered by task kind --------------------------------------------------
@dataclass
class TaskFigures:
    """A task's own figures: ``run(folder, metrics, figures)`` for one run (an experiment's, whose
    metrics have no loss), ``sweep(folder, runs, figures)`` for a sweep folder; each returns the
    paths written. ``sweep_replaces`` says the sweep's figures stand instead of the learning curves
    and cosines."""

    run: object = None
    sweep: object = None
    sweep_replaces: bool = False


TASK_FIGURES = Registry("task's figures")  # task kind -> TaskFigures


def register_task_figures(kind, figures, *, override=False):
    """Draw ``figures`` (a :class:`TaskFigures`) for result folders of the task ``kind``."""
    return TASK_FIGURES.register(kind, figures, override=override)


def _distal_reward_run(folder, metrics, figures):
    written = [_save(plot_rewarded_weight(metrics), figures / "rewarded_weight.png")]
    raster = pd.read_csv(folder / "raster.csv")
    end = float(metrics.t_s.max())
    span = 1.0 if len(raster) == 0 else min(1.0, end / 2)
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    n_exc = _protocol(folder).get("model", {}).get("n_exc")
    plot_raster(raster, 0.0, span, left, n_exc)
    plot_raster(raster, end - span, end, right, n_exc)
    left.set_title("first second", fontsize="small")
    right.set_title("last second", fontsize="small")
    written.append(_save(left, figures / "raster.png"))
    final = metrics[metrics.metric == "rewarded_weight"].sort_values("t_s").value
    written.append(_save(plot_weight_histogram(pd.read_csv(folder / "weight_histogram.csv"),
                                               float(final.iloc[-1]) if len(final) else None),
                         figures / "weight_histogram.png"))
    return written


def _spike_pattern_run(folder, metrics, figures):
    return [_save(plot_spike_pattern({_run_name(folder): metrics}, pd.read_csv(folder / "spikes.csv")),
                  figures / "spike_pattern.png")]


def _spike_pattern_sweep(folder, runs, figures):
    first = runs.drop_duplicates("variant")
    by_variant = {r.variant: read_metrics(folder / r.path) for r in first.itertuples()}
    spikes = pd.read_csv(folder / first.path.iloc[0] / "spikes.csv")
    return [_save(plot_spike_pattern(by_variant, spikes), figures / "spike_pattern.png")]


def _oua_run(folder, metrics, figures):
    target = _protocol(folder).get("task", {}).get("theta_target", 1.0)
    return [_save(plot_oua({_run_name(folder): metrics}, target), figures / "oua.png")]


def _oua_sweep(folder, runs, figures):
    runs_metrics = {r.path: read_metrics(folder / r.path) for r in runs.itertuples()}
    target = _protocol(folder).get("task", {}).get("theta_target", 1.0)
    return [_save(plot_oua(runs_metrics, target), figures / "oua.png")]


def _stdp_pairing_run(folder, metrics, figures):
    written = [_save(plot_stdp_window(pd.read_csv(folder / "window.csv")), figures / "stdp_window.png")]
    names = [n for n in ("eligibility", "dopamine", "weight") if (metrics.metric == n).any()]
    written.append(_save(plot_traces(metrics, names, labels={"eligibility": "eligibility (1/s)",
                                                              "dopamine": "dopamine (phasic)",
                                                              "weight": "weight (mV)"}),
                         figures / "pairing_traces.png"))
    return written


def _temporal_regression_sweep(folder, runs, figures):
    from .analysis.learning_curves import sweep_learning_curves
    return [_save(plot_learning_curves_with_theory(*sweep_learning_curves(folder)),
                  figures / "learning_curves_theory.png")]


register_task_figures("distal_reward", TaskFigures(run=_distal_reward_run))
register_task_figures("spike_pattern", TaskFigures(run=_spike_pattern_run, sweep=_spike_pattern_sweep,
                                                   sweep_replaces=True))
register_task_figures("oua_regression", TaskFigures(run=_oua_run, sweep=_oua_sweep, sweep_replaces=True))
register_task_figures("stdp_pairing", TaskFigures(run=_stdp_pairing_run))
register_task_figures("temporal_regression", TaskFigures(sweep=_temporal_regression_sweep))


def _training_cosines_title(alignment, reference=None):
    counts = alignment.groupby("variant").cosine.count()
    return (f"updates during training, whole network (all layers): {int(counts.max())} per variant"
            + (f" ({int(counts.min())}-{int(counts.max())})" if counts.min() != counts.max() else "")
            + (f"; reference: {reference}" if reference else ""))


def reference_name(folder):
    """The reference gradient a result folder's cosines were measured against: its summary's, or
    that of the first of its runs that names one (None for folders written before summaries did)."""
    folder = Path(folder)
    paths = [folder / "summary.json"]
    if (folder / "runs.csv").exists():
        paths += [folder / path / "summary.json" for path in finished_runs(folder).path]
    return next((summary["reference"] for summary in map(_summary, paths) if summary.get("reference")), None)


def _summary(path):
    """A summary.json as a dict ({} where there is none)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def draw_folder(folder):
    """Redraw the figures of a run, a sweep (``runs.csv``) or an alignment (``alignment.csv``) folder.

    Returns the paths written.
    """
    folder = Path(folder)
    figures = folder / "figures"
    written = []
    kind = _task_kind(folder)
    if (folder / "runs.csv").exists():
        runs = finished_runs(folder)
        for path in runs.path:
            written += draw_folder(folder / path)
        own = TASK_FIGURES.get(kind, TaskFigures())
        if own.sweep is not None:
            written += own.sweep(folder, runs, figures)
            if own.sweep_replaces:
                return written
        losses, alignment = sweep_tables(folder)
        reference = reference_name(folder)
        if len(losses):
            written.append(_save(plot_learning_curves(losses), figures / "learning_curves.png"))
        if "cosine" in alignment and alignment.cosine.notna().any():
            written.append(_save(plot_cosine_distribution(alignment, title=_training_cosines_title(alignment, reference)),
                                 figures / "cosine_distribution.png"))
            written.append(_save(plot_cosine_over_training(alignment, reference=reference),
                                 figures / "cosine_over_training.png"))
            by_layer = _cosines_by_layer(folder)
            if len(by_layer) > 1:
                written.append(_save(plot_cosine_over_training_by_layer(by_layer, reference),
                                     figures / "cosine_over_training_by_layer.png"))
            for key, table in scaling_tables(folder).items():
                xlabel = "number of weights" if key == "model.sizes" else key
                name = key.replace(".", "_")
                written.append(_save(plot_scaling(table, xlabel, reference=reference), figures / f"scaling_{name}.png"))
    elif (folder / "alignment.csv").exists():
        table = alignment_table(folder)
        reference = ", ".join(table.reference.unique()) if "reference" in table else "bptt"
        title = f"fixed weights, {table.groupby('variant').size().max()} dry-run samples each; reference: {reference}"
        written.append(_save(plot_cosine_distribution(table, title=title), figures / "align_cosines.png"))
        if (folder / "synapses.csv").exists():
            synapses = pd.read_csv(folder / "synapses.csv")
            written.append(_save(plot_synapse_scatter(synapses, table), figures / "synapse_scatter.png"))
    elif (folder / "metrics.csv").exists():
        metrics = read_metrics(folder)
        if "loss" not in set(metrics.metric):  # an experiment: only its task's own figures
            own = TASK_FIGURES.get(kind, TaskFigures())
            return own.run(folder, metrics, figures) if own.run is not None else []
        loss, alignment = labelled_run_tables(metrics, _run_name(folder), 0)
        written.append(_save(plot_learning_curves(loss), figures / "learning_curve.png"))
        if "cosine" in alignment and alignment.cosine.notna().any():
            written.append(_save(plot_cosine_distribution(alignment, title=_training_cosines_title(
                alignment, reference_name(folder))),
                                 figures / "cosine_distribution.png"))
    else:
        raise FileNotFoundError(f"{folder}: not a result folder (no runs.csv, alignment.csv or metrics.csv)")
    return written


def _cosines_by_layer(folder):
    """Every run's cosines per weight layer, keyed by the layer's name where the run's summary names
    its plastic weights (recurrent networks: input, recurrent, readout; runs of one sweep may train
    different sets), else by W1, W2, ..."""
    by_layer = {}
    for run in finished_runs(folder).itertuples():
        metrics = read_metrics(folder / run.path)
        names = {f"W{i + 1}": name for i, name in enumerate(_summary(folder / run.path / "summary.json").get("weights")
                                                            or ())}
        for layer in sorted(layer for layer in set(metrics.layer) if layer.startswith("W")):
            _, cosines = labelled_run_tables(metrics, run.variant, run.seed, layer)
            by_layer.setdefault(names.get(layer, layer), []).append(cosines)
    return {name: pd.concat(parts) for name, parts in by_layer.items()}


def _run_name(folder):
    return _protocol(folder).get("rule", {}).get("kind", Path(folder).name)
