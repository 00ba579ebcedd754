"""The trial loop: draw a batch, perturb, run every copy in one simulation, score, update.

One trial, for a rule with V variants (the clean network and its perturbed versions) and a
batch of B examples, runs V * B copies of the network in one Brian2 run; copy ``v * B + b`` is
variant ``v`` on example ``b``. Independent samples of a dry run (``align``) run side by side as
further blocks of V * B copies.

The same loop trains feed-forward rate, recurrent rate, spiking and recurrent LIF/ALIF networks,
with between-trials rules (WP, NP, backprop) and in-network rules (R-STDP, EH, Miconi, Hoerzer,
e-prop, ...): for an in-network rule the run itself accumulates the change, an eligibility or a
gradient estimate (``acc_<rule>``) and the rule reads it back. What
differs by model family is looked up in the family's adapter (:mod:`bioplastic.engine.families`),
never branched on: the network's blueprint, how copies read inputs, the model's run values and
the reference gradient.
"""

import copy
import dataclasses

import numpy as np
import pandas as pd
from brian2 import Quantity, mV
from tqdm import tqdm

from .. import rng as rng_streams
from ..analysis import compare
from ..analysis.estimators import EstimatorAccumulator
from ..errors import DivergenceError, RunawayError
from ..registry import FAMILIES
from ..rules import RULES, RunContext, TrialData, checked_update, rule_code
from ..rules.base import check_update_finite
from ..rules.builders import contributor
from ..tasks import TASKS
from .backends import get_backend
from .block_loop import train_in_blocks, uses_block_loop


class Trainer:
    """Train (or dry-run) one protocol's rule on its model and task.

    Parameters
    ----------
    protocol : bioplastic.config.Protocol
    """

    def __init__(self, protocol):
        self.protocol = protocol
        model = protocol.model
        self.adapter = FAMILIES[model.family]
        self.rule = RULES[protocol.rule_kind](protocol.rule)
        seed = protocol.seed
        self.task = TASKS[protocol.task_kind](protocol.task, model, seed)
        self.steps = int(round(float(self.task.duration / model.dt)))
        with rule_code(self.rule, "constrain"):
            self.weights = self.rule.constrain(model.init_weights(rng_streams.stream(seed, "init"), seed))
        self.input_rng = rng_streams.stream(seed, "inputs")
        self.noise_rng = rng_streams.stream(seed, "noise")
        self.seed_rng = rng_streams.stream(seed, "run_seeds")  # randomness drawn inside the runs
        self._model_values = {}  # copies -> the model's run values (Family.model_values)
        self.batch = protocol.task.batch
        # A trial records the trajectory of its clean copies only for a reference gradient: when the
        # rule needs one (backprop) or the analysis compares with one. An in-network rule gets its
        # reference from a run of its own, so its trials record none.
        needs_trajectory = self.rule.needs_gradient or protocol.analysis.every > 0
        self.backend = self.backend_for(samples=1, record=needs_trajectory and self.rule.realisation != "in_network")
        self._reference = None  # (weights it was computed at, gradient)

    # -- the network ----------------------------------------------------------------------------
    def contributors(self, with_rule=True):
        """What the task and the in-network rule (unless ``with_rule`` is False) add to the network."""
        contributors = [self.task.contribute]
        if with_rule and self.rule.realisation == "in_network":
            contributors.append(contributor(self.rule, self.protocol.model))
        return contributors + [self.task.contribute_after_rule]

    def blueprint(self, variants, samples=1, record=True, with_rule=True):
        """The network of ``samples`` blocks of ``variants * batch`` copies (with the in-network
        rule built in unless ``with_rule`` is False)."""
        blueprint = self.adapter.trial_blueprint(self.protocol.model, self.steps, variants, samples, self.batch,
                                                 record=self.batch if record else 0, seed=self.protocol.seed,
                                                 contributors=self.contributors(with_rule))
        blueprint.with_rule = with_rule and self.rule.realisation == "in_network"
        return blueprint

    def backend_for(self, samples, variants=None, record=True, with_rule=True):
        variants = self.rule.variants if variants is None else variants
        return get_backend(self.protocol.training.backend, self.blueprint(variants, samples, record, with_rule),
                           self.protocol.training.threads)

    def run(self, backend, batch, weights, perts=None, dry_run=False, rule=None, values=None):
        """One simulation of ``backend``'s copies with per-copy ``weights`` (and ``perts``); the
        run values of ``rule`` (default: the protocol's) and ``values`` are written too."""
        run_values, inputs = self.run_values(backend, batch, dry_run, rule)
        run_values.update(values or {})
        seed = int(self.seed_rng.integers(2 ** 31))
        observed = backend.run(weights=weights, inputs=inputs, perts=perts, values=run_values, seed=seed)
        if observed.stopped_at is not None:
            raise RunawayError(observed.stopped_at, self.protocol.training.max_rate, file=self.protocol.file)
        return observed

    def run_values(self, backend, batch, dry_run=False, rule=None):
        """``(values, inputs)``: the run values of one trial of ``batch`` on ``backend`` (the
        model's, the task's and, where it is built in, the rule's), and its copies' inputs."""
        rule = self.rule if rule is None else rule
        layout = backend.blueprint.layout
        conditions, inputs = self.adapter.copy_inputs(batch, backend.blueprint)
        if backend.copies not in self._model_values:  # they depend on the protocol alone: computed once
            self._model_values[backend.copies] = self.adapter.model_values(self.protocol, backend.copies)
        values = dict(self._model_values[backend.copies])
        values.update(self.task.run_values(batch, layout))
        if backend.blueprint.with_rule:
            with rule_code(rule, "run_values"):
                values.update(rule.run_values(RunContext(layout.copies, conditions, dry_run=dry_run, continuous=False,
                                                         layout=layout, weights=self.weights)))
        return values, inputs

    # -- one trial ------------------------------------------------------------------------------
    def step(self, batch, with_gradient, dry_run=False):
        """Run one trial at the current weights; return the trial data and the implied update."""
        return self._run_samples(batch, [self._perturb()], self.backend, with_gradient, dry_run)[0]

    def _perturb(self):
        with rule_code(self.rule, "perturb"):
            return self.rule.perturb(self.weights, self.batch, self.noise_rng)

    def _run_samples(self, batch, perturbations, backend, with_gradient, dry_run=False):
        """Run independent samples of one trial side by side in one simulation.

        Sample ``s`` owns copies ``s * V * B .. (s + 1) * V * B - 1``; the backend may hold room
        for more samples than given (the spare copies repeat the last sample and are ignored).
        For spiking networks ``batch`` holds one block of B examples per sample of the backend.
        Returns ``(trial, update)`` per sample.
        """
        variants, size = self.rule.variants, self.batch
        per_sample = variants * size
        room = backend.copies // per_sample
        padded = perturbations + [perturbations[-1]] * (room - len(perturbations))
        copy_weights = [np.concatenate(parts) for parts in zip(*(self._copy_weights(p) for p in padded))]
        copy_perts = None
        if perturbations[0].nodes is not None:
            copy_perts = [np.concatenate([p.nodes[l].reshape(per_sample, -1) for p in padded])
                          for l in range(len(self.weights))]
        observed = self.run(backend, batch, copy_weights, copy_perts, dry_run=dry_run)
        final = [f.reshape(room, variants, size, -1) for f in observed.final]
        deltas = getattr(observed, "deltas", {}).get(self.rule.kind)
        rewards = getattr(observed, "rewards", None)
        gradient = None
        if with_gradient or self.rule.needs_gradient:
            gradient = self.reference(batch, observed)
        results = []
        for s, perturbation in enumerate(perturbations):
            sample_final = [f[s] for f in final]
            targets, conditions = batch.targets, batch.conditions
            if self.adapter.fresh_inputs_per_sample:  # the batch holds one block of examples per sample
                targets = np.asarray(targets)[s * size:(s + 1) * size]
                conditions = np.asarray(conditions)[s * size:(s + 1) * size]
            trial = TrialData(self.weights, self.task.losses(sample_final[-1], targets), sample_final, gradient,
                              deltas=None if deltas is None else
                              [d.reshape((room, variants, size) + d.shape[1:])[s, 0] for d in deltas],
                              rewards=None if rewards is None else rewards.reshape(room, variants, size)[s, 0],
                              conditions=conditions)
            with rule_code(self.rule, "update"):
                results.append((trial, checked_update(self.rule, self.rule.update(trial, perturbation), self.weights)))
        return results

    def _copy_weights(self, perturbation):
        """Per-copy weights (V * B, ...) of one sample: variant v's offset on every example."""
        n = self.rule.variants * self.batch
        if perturbation.weights is None:
            return [np.broadcast_to(w, (n,) + w.shape) for w in self.weights]
        return [np.repeat(w + dw, self.batch, axis=0) for w, dw in zip(self.weights, perturbation.weights)]

    def reference(self, batch, observed):
        """The reference gradient at the current weights (see :mod:`bioplastic.engine.reference`)."""
        if self._reference is not None and all(np.array_equal(a, b) for a, b in zip(self._reference[0], self.weights)):
            return self._reference[1]
        gradient = self.adapter.reference_gradient(self, batch, observed)
        if self.adapter.reference_apart or self.rule.realisation == "in_network":
            # computed in runs of its own, independent of the trial's noise: keep it at these weights
            self._reference = ([w.copy() for w in self.weights], gradient)
        return gradient

    # -- analysis -------------------------------------------------------------------------------
    @property
    def lr(self):
        """The rule's learning rate as a plain number (in the model's weight unit where it has one)."""
        lr = self.protocol.rule.lr
        return float(lr / mV) if isinstance(lr, Quantity) else float(lr)

    def analyse(self, trial, update):
        """Alignment rows (layer, metric, value) of an update with the trial's reference gradient."""
        rows = []
        with rule_code(self.rule, "theory"):
            theory = self.rule.theory(trial) if trial.gradient.exact else {}
        for row in compare(update, trial.gradient.weights, self.lr):
            layer = row.pop("layer")
            rows += [(layer, metric, value) for metric, value in row.items()]
            if layer in theory:  # (D, cosine) or (D, cosine, K): the isotropic estimator of the same moments
                dimension, cosine, *samples = theory[layer]
                rows += [(layer, "cosine_theory", cosine), (layer, "effective_dimension", dimension)]
                rows += [(layer, "effective_samples", samples[0])] if samples else []
        return rows

    def train(self, progress=False):
        """Run the protocol's trials, applying each update. Returns the tidy metrics table.

        Raises
        ------
        DivergenceError
            When the loss or the weights leave the finite range, or the loss exceeds
            ``training.max_loss``.
        RunawayError
            When a spiking network's population rate exceeds ``training.max_rate``.
        """
        if uses_block_loop(self.protocol):
            rows = train_in_blocks(self, progress)
        else:
            rows = []
            for t in tqdm(range(self.protocol.training.trials), desc=self.protocol.name,
                          disable=None if progress else True, leave=False, unit="trial"):
                self.train_trial(t, rows)
        return pd.DataFrame(rows, columns=["trial", "layer", "metric", "value"])

    def train_trial(self, t, rows):
        """Trial ``t`` of training, one simulation: logs to ``rows`` and applies the update."""
        every = self.protocol.analysis.every
        analyse = every > 0 and t % every == 0
        batch = self.task.sample(self.input_rng)
        try:
            trial, update = self.step(batch, with_gradient=analyse)
        except RunawayError as exc:
            raise exc.at_trial(t, self.task.duration, rows) from None
        loss = float(trial.losses[0].mean())
        self.check_trial(t, loss, update, rows)
        self.log_trial(t, loss, rows, trial)
        if analyse:
            rows += [(t, layer, metric, value) for layer, metric, value in self.analyse(trial, update)]
        with rule_code(self.rule, "constrain"):
            self.weights = self.rule.constrain([w + u for w, u in zip(self.weights, update)])
        with rule_code(self.rule, "observe"):
            self.rule.observe(trial)

    def align(self, samples, progress=False, max_copies=4096):
        """Draw ``samples`` dry-run updates at fixed weights.

        Rate networks: one fixed batch, the rule's own noise varies. Spiking networks: the batch's
        conditions are fixed and every sample draws fresh input spikes. Independent samples run
        side by side, up to ``max_copies`` network copies per simulation.

        Returns a table with one row per sample and layer: ``rule``, ``reference``, ``layer``,
        ``sample``, ``cosine``, ``angle_deg``, ``norm_ratio``, ``mean_update_cosine`` (the cosine
        of the mean of all the samples' updates: how well the rule's expected update points along
        the gradient) and, where a theory exists, ``cosine_theory`` and ``effective_dimension``.
        ``self.estimator`` then holds the estimator's statistics with their confidence intervals
        (:mod:`bioplastic.analysis.estimators`), one row per layer.
        """
        first = self.task.sample(self.input_rng)
        per_sample = self.rule.variants * self.batch
        chunk = max(1, min(samples, max_copies // per_sample))
        backend = self.backend_for(chunk)
        if self.rule.calibration == "samples":
            # The baseline of the very samples drawn below (their reward's mean): a first pass
            # keeps only the rewards, then the random streams are rewound and the same samples
            # drawn again. A baseline from other samples would be off by its standard error,
            # and a rule whose eligibility has a nonzero mean turns that error into a bias that
            # no number of samples averages away.
            streams = copy.deepcopy((self.seed_rng, self.noise_rng, self.input_rng))
            self.rule.calibrate([dataclasses.replace(trial, deltas=None, final=[], gradient=None)
                                 for trial, _ in self._draw(first, samples, backend, chunk)])
            self.seed_rng, self.noise_rng, self.input_rng = streams
        elif self.rule.calibration == "chunk":  # e.g. a reward baseline at its converged value for these weights
            self.rule.calibrate([trial for trial, _ in self._draw(first, chunk, backend, chunk)])
        records, total = [], None
        accumulator = EstimatorAccumulator(samples)
        with tqdm(total=samples, desc=f"align {self.rule.kind}", disable=None if progress else True,
                  leave=False, unit="sample") as bar:
            for s, (trial, update) in enumerate(self._draw(first, samples, backend, chunk, bar=bar)):
                check_update_finite(self.rule, update, f"in dry-run sample {s}", self.protocol.file)
                total = update if total is None else [a + b for a, b in zip(total, update)]
                accumulator.add(update)
                for layer, metric, value in self.analyse(trial, update):
                    records.append(dict(rule=self.rule.kind, reference=trial.gradient.name, layer=layer, sample=s,
                                        metric=metric, value=value))
        table = pd.DataFrame(records).pivot_table(index=["rule", "reference", "layer", "sample"], columns="metric",
                                                  values="value", sort=False, dropna=False).reset_index()
        table.columns.name = None
        mean = {row["layer"]: row["cosine"] for row in compare(total, trial.gradient.weights, self.lr)}
        table["mean_update_cosine"] = table.layer.map(mean)
        if trial.gradient.split_cosine is not None:  # how reproducible a Monte Carlo reference is
            table["reference_split_cosine"] = trial.gradient.split_cosine
        self.mean_update = [t / samples for t in total]  # what synapse_table compares per synapse
        self.gradient = trial.gradient.weights
        estimator = accumulator.table(trial.gradient.weights,
                                      {layer: rows.cosine.to_numpy() for layer, rows in table.groupby("layer")})
        if "cosine_theory" in table:
            estimator["cosine_theory"] = estimator.layer.map(table.groupby("layer").cosine_theory.mean())
        if "effective_samples" in table:  # K/(D + 1): the SNR of K Gaussian directions in D dimensions
            snr = table.effective_samples / (table.effective_dimension + 1)
            estimator["snr_theory"] = estimator.layer.map(snr.groupby(table.layer).mean())
        self.estimator = estimator.assign(rule=self.rule.kind, reference=trial.gradient.name)
        return table

    def synapse_table(self, most=2000, seed=0):
        """After :meth:`align`: per synapse, the mean dry-run update beside the descent direction
        -∇L (columns ``layer``, ``synapse``, ``mean_update``, ``descent``), at most ``most`` synapses
        per layer (a fixed random subset, the same for every rule of a protocol)."""
        from ..analysis.alignment import layer_names
        rows = []
        for name, update, gradient in zip(layer_names(len(self.gradient)), self.mean_update, self.gradient):
            index = np.arange(update.size)
            if update.size > most:
                index = np.sort(np.random.default_rng(seed).choice(update.size, most, replace=False))
            rows.append(pd.DataFrame(dict(layer=name, synapse=index, mean_update=update.ravel()[index],
                                          descent=-gradient.ravel()[index])))
        return pd.concat(rows, ignore_index=True)

    def _draw(self, first, samples, backend, chunk, bar=None):
        """Yield ``samples`` dry-run (trial, update) pairs, ``chunk`` per simulation."""
        for start in range(0, samples, chunk):
            count = min(chunk, samples - start)
            perturbations = [self._perturb() for _ in range(count)]
            batch = first if not self.adapter.fresh_inputs_per_sample else self.task.sample(
                self.input_rng, batch=chunk * self.batch, conditions=np.tile(first.conditions, chunk))
            yield from self._run_samples(batch, perturbations, backend, with_gradient=True, dry_run=True)
            if bar is not None:
                bar.update(count)

    def check_trial(self, t, loss, update, rows):
        """Stop the run at trial ``t`` if it diverged (see :meth:`_check_finite`), handing the
        error what was logged so far and the loss that diverged."""
        try:
            self._check_finite(t, loss, update)
        except DivergenceError as exc:
            exc.metrics, exc.trial = rows + [(t, "", "loss", loss)], t
            raise

    def log_trial(self, t, loss, rows, trial=None):
        """Trial ``t``'s rows, where :meth:`logs_trial`: its loss, and from ``trial`` (where given)
        its mean reward (where the run has one) and the task's metrics."""
        if not self.logs_trial(t):
            return
        rows.append((t, "", "loss", loss))
        if trial is None:
            return
        if trial.rewards is not None:
            rows.append((t, "", "reward", float(np.mean(trial.rewards))))
        rows += [(t, "", metric, value) for metric, value in self.task.trial_metrics(trial)]

    def logs_trial(self, t):
        """Whether trial ``t``'s loss goes into the metrics (every ``eval_every``, and the last)."""
        training = self.protocol.training
        return t % training.eval_every == 0 or t == training.trials - 1

    def _check_finite(self, t, loss, update):
        """Stop a run that left the finite range, blaming what did it: the learning rate when the
        loss grew out of range, the rule itself when it returned a non-finite update at a finite loss."""
        max_loss = self.protocol.training.max_loss
        if not np.isfinite(loss) or loss > max_loss:
            raise DivergenceError("rule.lr", f"training diverged at trial {t} (loss {loss:.3g}, "
                                  f"limit training.max_loss = {max_loss:g}); lower the learning rate",
                                  self.protocol.rule.lr if not isinstance(self.protocol.rule.lr, Quantity)
                                  else str(self.protocol.rule.lr), file=self.protocol.file)
        check_update_finite(self.rule, update, f"at trial {t} (loss {loss:.3g})", self.protocol.file)


__all__ = ["Trainer"]
