"""The trial loop: draw a batch, perturb, run every copy in one simulation, score, update.

One trial, for a rule with V variants (the clean network and its perturbed versions) and a
batch of B examples, runs V * B copies of the network in one Brian2 run; copy ``v * B + b`` is
variant ``v`` on example ``b``. The BPTT reference runs through the recorded trajectory of the
B clean copies.
"""

import dataclasses

import numpy as np
import pandas as pd
from tqdm import tqdm

from .. import rng as rng_streams
from ..analysis import compare
from ..errors import DivergenceError
from ..gradients import bptt
from ..networks import init_weights
from ..networks.rate import RateBlueprint
from ..networks.rate_math import flatten, forward, unflatten
from ..rules import RULES, TrialData
from ..tasks import TASKS
from .backends import get_backend


class Trainer:
    """Train (or dry-run) one protocol's rule on its model and task.

    Parameters
    ----------
    protocol : bioplastic.config.Protocol
    """

    def __init__(self, protocol):
        self.protocol = protocol
        model, task_spec = protocol.model, protocol.task
        self.rule = RULES[protocol.rule_kind](protocol.rule)
        self.steps = int(round(float(task_spec.duration / model.dt)))
        seed = protocol.seed
        self.weights = init_weights(model, rng_streams.stream(seed, "init"))
        teacher_weights = init_weights(dataclasses.replace(model, init_gain=task_spec.teacher_gain),
                                       rng_streams.stream(seed, "teacher"))
        self.task = TASKS[protocol.task_kind](
            task_spec, model.sizes[0],
            teacher=lambda x: forward(teacher_weights, x, model.activation, model.a, self.steps)[-1])
        self.input_rng = rng_streams.stream(seed, "inputs")
        self.noise_rng = rng_streams.stream(seed, "noise")
        self.batch = task_spec.batch
        self.backend = get_backend(protocol.training.backend,
                                   RateBlueprint(model, self.rule.variants * self.batch, self.steps, record=self.batch))

    def step(self, inputs, targets, with_gradient):
        """Run one trial at the current weights; return the trial data and the implied update."""
        perturbation = self.rule.perturb(self.weights, self.batch, self.noise_rng)
        return self._run_samples(inputs, targets, [perturbation], self.backend, with_gradient)[0]

    def _run_samples(self, inputs, targets, perturbations, backend, with_gradient):
        """Run independent perturbation samples of one trial side by side in one simulation.

        Sample ``s`` owns copies ``s * V * B .. (s + 1) * V * B - 1``; the backend may hold room
        for more samples than given (the spare copies repeat the last sample and are ignored).
        Returns ``(trial, update)`` per sample.
        """
        weights, variants, batch = self.weights, self.rule.variants, self.batch
        per_sample = variants * batch
        room = backend.copies // per_sample
        padded = perturbations + [perturbations[-1]] * (room - len(perturbations))
        copy_weights = [np.concatenate(parts) for parts in zip(*(self._copy_weights(p) for p in padded))]
        copy_perts = None
        if perturbations[0].nodes is not None:
            copy_perts = [np.concatenate([p.nodes[l].reshape(per_sample, -1) for p in padded])
                          for l in range(len(weights))]
        observed = backend.run(weights=copy_weights, inputs=np.tile(inputs, (variants * room, 1)), perts=copy_perts)
        final = [f.reshape(room, variants, batch, -1) for f in observed.final]
        gradient = None
        if with_gradient or self.rule.needs_gradient:  # the recorded copies are sample 0's clean ones
            gradient = bptt(weights, inputs, observed.trajectory,
                            self.task.output_gradient(final[-1][0, 0], targets),
                            self.protocol.model.activation, self.protocol.model.a)
        results = []
        for s, perturbation in enumerate(perturbations):
            sample_final = [f[s] for f in final]
            trial = TrialData(weights, self.task.losses(sample_final[-1], targets), sample_final, gradient)
            results.append((trial, self.rule.update(trial, perturbation)))
        return results

    def _copy_weights(self, perturbation):
        """Per-copy weights (V * B, n_out, n_in) of one sample: variant v's offset on every example."""
        n = self.rule.variants * self.batch
        if perturbation.weights is None:
            return [np.broadcast_to(w, (n,) + w.shape) for w in self.weights]
        return [np.repeat(w + dw, self.batch, axis=0) for w, dw in zip(self.weights, perturbation.weights)]

    def analyse(self, trial, update):
        """Alignment rows (layer, metric, value) of an update with the trial's reference gradient."""
        rows = []
        theory = self.rule.theory(trial)
        for row in compare(update, trial.gradient.weights, self.protocol.rule.lr):
            layer = row.pop("layer")
            rows += [(layer, metric, value) for metric, value in row.items()]
            if layer in theory:
                dimension, cosine = theory[layer]
                rows += [(layer, "cosine_theory", cosine), (layer, "effective_dimension", dimension)]
        return rows

    def train(self, progress=False):
        """Run the protocol's trials, applying each update. Returns the tidy metrics table.

        Raises
        ------
        DivergenceError
            When the loss or the weights leave the finite range, or the loss exceeds
            ``training.max_loss``.
        """
        training, every = self.protocol.training, self.protocol.analysis.every
        rows = []
        for t in tqdm(range(training.trials), desc=self.protocol.name, disable=None if progress else True,
                      leave=False, unit="trial"):
            analyse = every > 0 and t % every == 0
            inputs, targets = self.task.sample(self.input_rng)
            trial, update = self.step(inputs, targets, with_gradient=analyse)
            loss = float(trial.losses[0].mean())
            self._check_finite(t, loss, update)
            if t % training.eval_every == 0 or t == training.trials - 1:
                rows.append((t, "", "loss", loss))
            if analyse:
                rows += [(t, layer, metric, value) for layer, metric, value in self.analyse(trial, update)]
            self.weights = [w + u for w, u in zip(self.weights, update)]
        return pd.DataFrame(rows, columns=["trial", "layer", "metric", "value"])

    def align(self, samples, progress=False, max_copies=4096):
        """Draw ``samples`` dry-run updates at fixed weights on one fixed batch.

        Independent samples run side by side, up to ``max_copies`` network copies per simulation.

        Returns a table with one row per sample and layer: ``rule``, ``layer``, ``sample``,
        ``cosine``, ``angle_deg``, ``norm_ratio`` and, where a theory exists, ``cosine_theory``
        and ``effective_dimension``.
        """
        inputs, targets = self.task.sample(self.input_rng)
        per_sample = self.rule.variants * self.batch
        chunk = max(1, min(samples, max_copies // per_sample))
        backend = get_backend(self.protocol.training.backend,
                              RateBlueprint(self.protocol.model, chunk * per_sample, self.steps, record=self.batch))
        records = []
        with tqdm(total=samples, desc=f"align {self.rule.kind}", disable=None if progress else True,
                  leave=False, unit="sample") as bar:
            for start in range(0, samples, chunk):
                count = min(chunk, samples - start)
                perturbations = [self.rule.perturb(self.weights, self.batch, self.noise_rng) for _ in range(count)]
                for s, (trial, update) in enumerate(self._run_samples(inputs, targets, perturbations, backend,
                                                                      with_gradient=True), start=start):
                    for layer, metric, value in self.analyse(trial, update):
                        records.append(dict(rule=self.rule.kind, layer=layer, sample=s, metric=metric, value=value))
                bar.update(count)
        table = pd.DataFrame(records).pivot_table(index=["rule", "layer", "sample"], columns="metric",
                                                  values="value", sort=False, dropna=False).reset_index()
        table.columns.name = None
        return table

    def _check_finite(self, t, loss, update):
        max_loss = self.protocol.training.max_loss
        finite = np.isfinite(loss) and all(np.all(np.isfinite(u)) for u in update)
        if not finite or loss > max_loss:
            raise DivergenceError("rule.lr", f"training diverged at trial {t} (loss {loss:.3g}, "
                                  f"limit training.max_loss = {max_loss:g}); lower the learning rate",
                                  self.protocol.rule.lr, file=self.protocol.file)


def finite_difference_gradient(trainer, inputs, targets, eps=1e-6, max_copies=4096):
    """Central finite differences of the batch loss, through the Brian2 simulation itself.

    Each weight is nudged by ±eps in its own copy, so 2P runs become ceil(2P B / max_copies)
    simulations of many copies. Returns dL/dW, one array per layer.
    """
    weights, batch = trainer.weights, trainer.batch
    shapes = [w.shape for w in weights]
    flat = flatten(weights)
    chunk = int(max(1, min(flat.size, max_copies // (2 * batch))))
    backend = get_backend(trainer.protocol.training.backend,
                          RateBlueprint(trainer.protocol.model, 2 * chunk * batch, trainer.steps, record=0))
    gradient = np.empty_like(flat)
    for start in range(0, flat.size, chunk):
        index = np.arange(start, min(start + chunk, flat.size))
        variants = np.repeat(flat[None], 2 * chunk, axis=0)
        variants[2 * np.arange(len(index)), index] += eps
        variants[2 * np.arange(len(index)) + 1, index] -= eps
        copy_weights = [np.repeat(part, batch, axis=0) for part in unflatten(variants, shapes)]
        observed = backend.run(weights=copy_weights, inputs=np.tile(inputs, (2 * chunk, 1)))
        losses = trainer.task.losses(observed.final[-1].reshape(2 * chunk, batch, -1), targets).mean(axis=1)
        gradient[index] = (losses[0:2 * len(index):2] - losses[1:2 * len(index):2]) / (2 * eps)
    return unflatten(gradient, shapes)
