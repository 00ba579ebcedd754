"""Training in blocks of trials, each block one simulation (``training.loop``).

The trial loop (:meth:`Trainer.train_trial`) starts one simulation per trial: for a small
network most of a trial's time is then spent starting the binary and moving its files. Where a
rule has a block form registered for the model's family
(:func:`~bioplastic.rules.builders.register_block_builder`), the block loop instead runs a network
that does the trials' scoring and updates itself, many trials per simulation. Today: WP and NP on
feed-forward rate networks with a squared-error task (the block network
:func:`bioplastic.networks.rate.block_recipe`, their updates in :mod:`bioplastic.rules.perturbation`);
R-STDP, WP and NP on feed-forward spiking networks (the block network
:mod:`bioplastic.networks.spiking_block`, R-STDP's update in :mod:`bioplastic.rules.rstdp`);
the reward-modulated Hebbian rules, WP and NP on recurrent rate networks (the block network
:mod:`bioplastic.networks.recurrent_rate_block`, the Hebbian update in :mod:`bioplastic.rules.hebbian`);
and e-prop, WP and NP on recurrent LIF/ALIF networks (the same block network on the ALIF recipe,
:class:`bioplastic.networks.alif.AlifBlockBlueprint`, e-prop's update in :mod:`bioplastic.rules.eprop`).
The family's adapter runs a block (``run_block``). Each block's inputs, targets and perturbations are drawn
here from the trainer's random streams in the trial loop's order, so both loops give the same
learning curve, to rounding. The analysis trials (every ``analysis.every``) run through the trial
loop, which records what the reference gradient needs; the blocks fill the trials between them.
"""

import copy
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ..errors import RunawayError
from ..registry import FAMILIES
from ..rules import RULES, TrialData
from ..rules.base import check_update_finite
from ..rules.builders import block_unsupported, find_block_builder
from ..tasks import TASKS
from .backends import get_backend

MAX_NUMBERS_PER_BLOCK = 4_000_000  # numbers of perturbation noise and inputs per block (32 MB)
MAX_BLOCK = 2000


def block_loop_unsupported(protocol):
    """Why ``protocol`` cannot train in blocks (a sentence), or None if it can: whether a block
    form is registered for its rule on its model family, and scores its task."""
    return FAMILIES[protocol.model.family].block_refusal(protocol.model) or block_unsupported(
        RULES[protocol.rule_kind], protocol.model, TASKS[protocol.task_kind], protocol.rule, protocol.task)


def uses_block_loop(protocol):
    """True when ``training.loop`` is "block", or "auto" on the standalone backend where the
    protocol can train in blocks. (On the runtime backend the trial loop is the default: there
    the block network's code generation, every process, costs more than it saves.)"""
    loop = protocol.training.loop
    return loop == "block" or (loop == "auto" and protocol.training.backend == "standalone"
                               and block_loop_unsupported(protocol) is None and protocol.analysis.every != 1)


def block_length(protocol, numbers_per_trial):
    """Trials per simulation: those between two analysis trials (or all), within a memory bound
    (``numbers_per_trial``: the noise and inputs one trial hands the block)."""
    every, trials = protocol.analysis.every, protocol.training.trials
    span = trials if every == 0 else max(every - 1, 1)
    return max(1, min(span, trials, MAX_BLOCK, MAX_NUMBERS_PER_BLOCK // max(numbers_per_trial, 1)))


@dataclass
class Draw:
    """One trial's draws, in the trial loop's order: its batch, its perturbation, its run seed."""

    batch: object
    perturbation: object
    seed: int


@dataclass
class BlockResult:
    """What a block gives back: the weights after it, and every trial's loss and reward of the
    clean copies (trials, batch) (rewards None where the run has none)."""

    weights: list
    losses: np.ndarray
    rewards: object = None
    readouts: object = None  # per trial the clean copies' read-out (variants, batch, n), for trial_metrics


def padded(parts, length):
    """``parts`` (one array per trial) stacked, with zeros for the padding trials up to ``length``."""
    stacked = np.asarray(parts, float)
    pad = length - len(stacked)
    return np.concatenate([stacked, np.zeros((pad,) + stacked.shape[1:])]) if pad else stacked


def active(count, length):
    """Per trial of a block of ``length``: 1 for the ``count`` trials drawn, 0 for the padding."""
    return np.r_[np.ones(count), np.zeros(length - count)]


def block_noise(draws, length):
    """Per weight layer, the trials' perturbation noise stacked (padded to ``length``)."""
    return [padded(layer, length) for layer in zip(*(d.perturbation.noise for d in draws))]


def train_in_blocks(trainer, progress=False):
    """Train ``trainer``'s protocol, blocks of trials per simulation; returns the metric rows."""
    protocol = trainer.protocol
    training, every, rule = protocol.training, protocol.analysis.every, trainer.rule
    # the numbers one trial hands the block (its noise and inputs), from throwaway draws (the
    # trainer's streams stay untouched)
    probe = rule.perturb(trainer.weights, trainer.batch, np.random.default_rng(0))
    inputs = copy.deepcopy(trainer.task).sample(np.random.default_rng(0)).inputs  # a task may cache its draws
    length = block_length(protocol, sum(np.size(z) for z in probe.noise) + np.size(inputs))
    form = find_block_builder(rule, protocol.model.family)
    blueprint = trainer.adapter.block_blueprint(protocol.model, trainer.steps, rule.variants, trainer.batch, length,
                                                seed=protocol.seed, conditions=trainer.task.n_conditions(protocol.task),
                                                contributors=trainer.contributors(),
                                                block_form=form.contributor(rule))
    backend = get_backend(training.backend, blueprint, training.threads)
    rows, t = [], 0
    with tqdm(total=training.trials, desc=protocol.name, disable=None if progress else True, leave=False,
              unit="trial") as bar:
        while t < training.trials:
            if every > 0 and t % every == 0:  # the reference gradient needs this trial's trajectory
                trainer.train_trial(t, rows)
                t, _ = t + 1, bar.update(1)
                continue
            stop = training.trials if every == 0 else min(training.trials, (t // every + 1) * every)
            count = min(length, stop - t)
            _run_block(trainer, backend, form, t, count, length, rows)
            t, _ = t + count, bar.update(count)
    return rows


def _run_block(trainer, backend, form, start, count, length, rows):
    """Trials ``start .. start + count - 1`` in one simulation of ``length`` trials (the rest padding)."""
    protocol, rule, task = trainer.protocol, trainer.rule, trainer.task
    draws = []
    for _ in range(count):  # the trial loop's draws, in its order: batch, perturbation, run seed
        batch = task.sample(trainer.input_rng)
        perturbation = trainer._perturb()
        draws.append(Draw(batch, perturbation, int(trainer.seed_rng.integers(2 ** 31))))
    try:
        result = trainer.adapter.run_block(trainer, backend, form, draws, length)
    except RunawayError as exc:
        raise exc.at_trial(start + exc.trial, task.duration, rows) from None  # exc.trial: within the block
    no_update = [np.zeros_like(w) for w in trainer.weights]  # the block's updates are checked below, once
    for n, (draw, losses) in enumerate(zip(draws, result.losses)):
        t, loss = start + n, float(np.mean(losses))
        trainer.check_trial(t, loss, no_update, rows)
        trial = None  # what the trial loop logs besides the loss, where the block network reports it
        if result.readouts is not None:
            trial = TrialData(trainer.weights, np.asarray(losses)[None], [result.readouts[n]], None,
                              rewards=None if result.rewards is None else result.rewards[n],
                              conditions=draw.batch.conditions)
        trainer.log_trial(t, loss, rows, trial)
    if not all(np.all(np.isfinite(w)) for w in result.weights):
        check_update_finite(rule, [w - w0 for w, w0 in zip(result.weights, trainer.weights)],
                            f"at trial {start + count - 1} (in a block)", protocol.file)
    trainer.weights = [np.array(w) for w in result.weights]
