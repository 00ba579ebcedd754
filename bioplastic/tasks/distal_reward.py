r"""Izhikevich (2007), Fig. 1: dopamine-modulated STDP solves the distal reward problem.

One excitatory synapse of a recurrent network (by default the first synapse of neuron 0, which
starts at 0 mV) is singled out. Whenever its postsynaptic neuron fires within ``window`` after
its presynaptic neuron (strictly later), a reward is scheduled after a random delay, uniform on
whole steps in ``(delay_min, delay_max]``, and then delivered as a pulse of dopamine. By then the
network has fired thousands of other spikes; only the eligibility trace links the reward back to
the pairing. Over an hour the rewarded synapse climbs to the weight cap while the others stay low.

Everything happens inside the simulation: a detector in the neuromodulator group watches the two
neurons, keeps up to 8 pending rewards (a ninth overwrites the oldest, counted in
``rewards_dropped``), and fires the pulses. Per recorded second the task reports
``rewarded_weight`` and ``mean_weight`` (all plastic excitatory synapses, mV), ``rate`` (Hz, over
the second) and ``reward`` (pulses so far); every ``snapshot_every`` the percentiles of the other
weights; and a raster of the first and last ``raster`` of the run.

References
----------
Izhikevich (2007), Solving the distal reward problem through linkage of STDP and dopamine
signaling. Cereb. Cortex 17(10). Parameters follow his code ``daspnet.m``.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from brian2 import mV, ms, second

from ..errors import SpecError
from ..networks.neuromodulator import neuromodulator
from ..networks.recipe import Regular
from ..networks.spiking import connectivity
from ..spec import non_negative, param, positive, validate
from .base import CONTINUOUS_COLUMNS, ContinuousTask, record_rows

SLOTS = 8  # rewards that can be pending at once
NEVER = "1e12 * second"


@dataclass(frozen=True)
class DistalRewardSpec:
    """Parameters of the distal-reward experiment (see the module docstring)."""

    duration: object = param(3600 * second, "simulated time", unit=second, check=positive)
    record_every: object = param(1 * second, "record the metrics every", unit=second, check=positive)
    window: object = param(20 * ms, "post must fire within this after pre for a reward", unit=ms, check=positive)
    delay_min: object = param(1 * second, "shortest reward delay (exclusive)", unit=second, check=non_negative)
    delay_max: object = param(3 * second, "longest reward delay", unit=second, check=positive)
    pulse: float = param(0.5, "reward delivered per pairing (a pulse of dopamine)", check=positive)
    rewarded_synapse: int = param(0, "index of the rewarded synapse among the excitatory synapses", kind=int,
                                  check=non_negative)
    initial_weight: object = param(0 * mV, "initial weight of the rewarded synapse", unit=mV)
    snapshot_every: object = param(300 * second, "record every weight this often (for the distribution)",
                                   unit=second, check=positive)
    raster: object = param(1 * second, "raster of the first and of the last this much of the run", unit=second,
                           check=non_negative)

    def __post_init__(self):
        validate(self)
        if not self.delay_max > self.delay_min:
            raise SpecError("DistalRewardSpec.delay_max", f"must be above delay_min ({self.delay_min})",
                            str(self.delay_max))
        for name in ("record_every", "snapshot_every"):
            ratio = float(self.duration / getattr(self, name))
            if abs(ratio - round(ratio)) > 1e-9:
                raise SpecError(f"DistalRewardSpec.{name}", f"must divide the duration ({self.duration})",
                                str(getattr(self, name)))
        if self.raster * 2 > self.duration:
            raise SpecError("DistalRewardSpec.raster", f"must be at most half the duration ({self.duration})",
                            str(self.raster))


class DistalReward(ContinuousTask):
    """Reward a chosen synapse's pre→post pairings with delayed dopamine (Izhikevich 2007)."""

    kind = "distal_reward"
    spec_class = DistalRewardSpec
    description = "Izhikevich (2007): a delayed dopamine pulse after each pre->post pairing of one chosen synapse"
    reward_pulses = True

    def __init__(self, spec, model, seed):
        super().__init__(spec, model, seed)
        if not model.recurrent:
            raise SpecError("model.recurrent", "the distal_reward task rewards a synapse of a recurrent network; "
                            "must be true", False)
        self.conn = connectivity(model, seed)
        if spec.rewarded_synapse >= self.conn.n_exc_synapses:
            raise SpecError("task.rewarded_synapse", f"must be below the number of excitatory synapses "
                            f"({self.conn.n_exc_synapses})", spec.rewarded_synapse)
        self.pre = int(self.conn.exc_i[spec.rewarded_synapse])
        self.post = int(self.conn.exc_j[spec.rewarded_synapse])

    @classmethod
    def recorded_bytes(cls, spec, model):
        """The weight snapshots: every plastic synapse, every ``snapshot_every``."""
        snapshots = float(spec.duration / spec.snapshot_every)
        return int(snapshots * model.n_exc * model.out_degree * 8 * 2) + super().recorded_bytes(spec, model)

    @classmethod
    def quick(cls, table):
        """Four simulated seconds instead of an hour."""
        table.update(duration="4 s", record_every="1 s", snapshot_every="2 s", raster="0.5 s")

    def initial_weights(self, weights, layout):
        weights = [w.copy() for w in weights]
        weights[0][..., self.spec.rewarded_synapse] = float(self.spec.initial_weight / mV)
        return weights

    def contribute(self, recipe, layout):
        s, n = self.spec, layout.groups["neurons"]
        copies = np.arange(layout.copies)
        recipe.record_every = s.record_every
        recipe.reward_pulses = True
        mod = neuromodulator(recipe, layout)
        mod.add("t_pre_last : second", "next_slot : integer", "rewards_dropped : 1", "wtotal : volt", "spikes : 1",
                *(f"due{k} : second" for k in range(SLOTS)))
        mod.initial.update(t_pre_last=-1e9 * second, **{f"due{k}": 1e12 * second for k in range(SLOTS)})
        mod.namespace["pulse_size"] = s.pulse
        fires = [f"rs_fire{k} = int(t >= due{k})" for k in range(SLOTS)]
        mod.regular["schedule"] = Regular(
            fires + ["reward_pulse = pulse_size * (" + " + ".join(f"rs_fire{k}" for k in range(SLOTS)) + ")"]
            + [f"due{k} = due{k} + rs_fire{k} * {NEVER}" for k in range(SLOTS)], when="before_thresholds", order=0)
        watch_pre = recipe.connect("watch_pre", "neurons", "modulator", copies * n + self.pre, copies)
        watch_pre.on_pre["pre"] = ["t_pre_last_post = t"]
        watch_pre.pathway_order["pre"] = -20
        watch_post = recipe.connect("watch_post", "neurons", "modulator", copies * n + self.post, copies)
        pending = " + ".join(f"int(next_slot_post == {k}) * int(due{k}_post < 1e11 * second)" for k in range(SLOTS))
        watch_post.on_pre["pre"] = [
            "rs_hit = int(t - t_pre_last_post > 0 * ms) * int(t - t_pre_last_post < window_post)",
            # whole steps in (delay_min, delay_max], as daspnet.m draws 1000 + ceil(2000 rand) ms
            "rs_delay = delay_min_post + ceil(delay_span_post * rand() / dt) * dt",
            f"rewards_dropped_post += rs_hit * ({pending})",
            *(f"due{k}_post = due{k}_post + rs_hit * int(next_slot_post == {k}) * (t + rs_delay - due{k}_post)"
              for k in range(SLOTS)),
            f"next_slot_post = (next_slot_post + rs_hit) % {SLOTS}"]
        watch_post.pathway_order["pre"] = -19
        for name, value in (("window", s.window), ("delay_min", s.delay_min), ("delay_span", s.delay_max - s.delay_min)):
            mod.add(f"{name} : second (shared, constant)")
            mod.initial[name] = value
        # The metrics, every record_every: the rule brings the weights up to date first (order -10).
        group = recipe.group("neurons")
        group.add("wsum : volt")
        group.regular["clear"] = Regular(["wsum = 0 * volt"], dt=s.record_every, when="start", order=-9)
        mod.regular["clear"] = Regular(["wtotal = 0 * volt"], dt=s.record_every, when="start", order=-9)
        recipe.synapses["exc"].regular["sum"] = Regular(["wsum_post += w"], dt=s.record_every, when="start", order=-8)
        tally = recipe.connect("tally", "neurons", "modulator", np.arange(layout.size("neurons")),
                               layout.copy_index("neurons"))
        tally.on_pre["pre"] = ["spikes_post += 1"]
        tally.regular["total"] = Regular(["wtotal_post += wsum_pre"], dt=s.record_every, when="start", order=-7)
        per_copy = self.conn.n_exc_synapses
        recipe.monitor("rewarded", "exc", variables=("w",), record=copies * per_copy + s.rewarded_synapse,
                       dt=s.record_every, when="start", order=-5)
        recipe.monitor("totals", "modulator", variables=("wtotal", "spikes", "n_rewards", "rewards_dropped"),
                       record=True, dt=s.record_every, when="start", order=-5)
        recipe.monitor("snapshots", "exc", variables=("w",), record=True, dt=s.snapshot_every, when="start", order=-5)
        spike = " or ".join(f"({c})" for c in group.threshold)
        group.events["raster"] = f"({spike}) and (t < raster_first or t >= raster_last)"
        group.namespace.update(raster_first=s.raster, raster_last=s.duration - s.raster)
        recipe.monitor("raster", "neurons", event="raster")

    def metrics(self, observation, layout):
        s = self.spec
        totals, rewarded = observation.monitors["totals"], observation.monitors["rewarded"]
        n_syn, n = self.conn.n_exc_synapses, layout.groups["neurons"]
        t, weight, mean = totals["t"], rewarded["w"][:, 0] / 1e-3, totals["wtotal"][:, 0] / 1e-3 / n_syn
        count, spikes = totals["n_rewards"][:, 0], totals["spikes"][:, 0]
        if observation.stopped_at is None:  # the last record ends with the run: its final weights
            final = observation.weights[0][0]
            t, weight, mean = np.append(t, float(s.duration)), np.append(weight, final[s.rewarded_synapse]), \
                np.append(mean, final.mean())
            count, spikes = np.append(count, np.nan), np.append(spikes, np.nan)
        rows = record_rows(t, "rewarded_weight", weight) + record_rows(t, "mean_weight", mean)
        rows += [r for r in record_rows(t, "reward", count) if np.isfinite(r[-1])]
        rate = np.diff(spikes) / (n * float(s.record_every))
        rows += [r for r in record_rows(t[1:], "rate", rate) if np.isfinite(r[-1])]
        rows = [(round(r[1] / float(s.record_every)),) + r[1:] for r in rows]  # trial = the record's index
        snaps = observation.monitors["snapshots"]
        others = np.delete(np.arange(n_syn), s.rewarded_synapse)
        for tn, w in zip(snaps["t"], snaps["w"]):
            for q in (5, 25, 50, 75, 95):
                rows.append((round(tn / float(s.record_every)), float(tn), "", f"weight_p{q:02d}",
                             float(np.percentile(w[others] / 1e-3, q))))
        return pd.DataFrame(rows, columns=CONTINUOUS_COLUMNS).sort_values(["trial", "metric"], kind="stable")

    def tables(self, observation, layout):
        raster = observation.monitors["raster"]
        final = observation.weights[0][0]
        edges = np.linspace(0, max(final.max(), 1e-9), 41)
        counts, _ = np.histogram(np.delete(final, self.spec.rewarded_synapse), bins=edges)
        return {"raster.csv": pd.DataFrame({"t_s": raster["t"], "neuron": raster["i"].astype(int)}),
                "weight_histogram.csv": pd.DataFrame({"weight_mv_low": edges[:-1], "weight_mv_high": edges[1:],
                                                      "synapses": counts})}

    def summary(self, metrics, observation, layout, recipe=None):
        weight = metrics[metrics.metric == "rewarded_weight"]
        cap = float(recipe.weight_cap) if recipe is not None and recipe.weight_cap is not None else np.nan
        reached = weight[weight.value >= 0.99 * cap] if np.isfinite(cap) else weight.iloc[0:0]
        first = float(reached.t_s.iloc[0]) if len(reached) else None
        after = weight[weight.t_s >= first] if first is not None else weight.iloc[0:0]
        totals = observation.monitors["totals"]
        return dict(final_rewarded_weight_mv=float(weight.value.iloc[-1]),
                    final_mean_weight_mv=float(metrics[metrics.metric == "mean_weight"].value.iloc[-1]),
                    cap_mv=cap, time_to_cap_s=first,
                    fraction_at_cap_after=float((after.value >= 0.9 * cap).mean()) if len(after) else None,
                    rewards=int(totals["n_rewards"][-1, 0]) if len(totals["t"]) else 0,
                    rewards_dropped=int(totals["rewards_dropped"][-1, 0]) if len(totals["t"]) else 0,
                    mean_rate_hz=float(metrics[metrics.metric == "rate"].value.mean()))
