"""Family adapters: everything that differs between model families, in one registered object each.

A model spec names its ``family``; the engine looks the family's adapter up in
:data:`bioplastic.registry.FAMILIES` and never branches on the name. An adapter owns:

* its networks: the blueprint of a trial's copies, of an experiment's run and of a block of
  trials (the block loop), and how a block runs;
* its run values: what the model and seed give every run, and how copies read a batch's inputs;
* its reference gradient (:mod:`bioplastic.engine.reference`), and whether that reference runs
  simulations of its own (then it is kept for as long as the weights do not change);
* its memory estimate, for :mod:`bioplastic.resources`;
* its gradcheck (:mod:`bioplastic.engine.gradcheck`).

A new family is an adapter registered with :func:`register_family`, plus its tests.
"""

import dataclasses

import numpy as np

from ..errors import RunawayError, SpecError
from ..networks.alif import AlifBlockBlueprint, AlifBlueprint, model_values as alif_model_values
from ..networks.rate import RateBlockBlueprint, RateBlueprint
from ..networks.recurrent_rate import RecurrentRateBlueprint, model_values as recurrent_model_values
from ..networks.recurrent_rate_block import RecurrentRateBlockBlueprint
from ..networks.spiking_block import SpikingBlockBlueprint
from ..networks.spiking_network import SpikingBlueprint
from ..registry import FAMILIES
from ..rules.base import rule_code
from .. import resources
from . import reference


class Family:
    """Base class of a family adapter; subclasses set ``name`` and ``reference``."""

    name = None
    reference = None  # the name of its own reference gradient (``analysis.reference = "auto"``)
    reference_apart = False  # True: its reference runs simulations of its own, independent of the trial's
    fresh_inputs_per_sample = False  # True: every dry-run sample draws fresh inputs (the batch holds one block each)

    # -- networks -----------------------------------------------------------------------------
    def trial_blueprint(self, model, steps, variants, samples, batch, *, record, seed, contributors):
        """The network of ``samples`` blocks of ``variants * batch`` copies; ``record``: how many
        clean copies record their trajectory; ``contributors``: ``f(recipe, layout)``."""
        raise NotImplementedError

    def experiment_blueprint(self, model, steps, copies, blocks, *, seed, contributors):
        """The network of a continuous run of ``copies`` copies reading ``blocks`` input blocks."""
        raise SpecError("task.kind", f"{self.name} models run no continuous experiments")

    def block_blueprint(self, model, steps, variants, batch, trials, *, seed, conditions, contributors, block_form):
        """The network of a block: ``trials`` trials of ``variants * batch`` copies in one run, with
        the trial network's ``contributors`` (the task's, an in-network rule's) and a rule's
        ``block_form`` updating the weights at every trial boundary; ``conditions``: how many task
        conditions the trials draw from (None: unknown)."""
        raise SpecError("training.loop", f"{self.name} models have no block network yet")

    def block_refusal(self, model):
        """Why ``model`` has no block network though its family has one (a sentence), or None."""
        return None

    def run_block(self, trainer, backend, form, draws, length):
        """Run the trials ``draws`` (:class:`~bioplastic.engine.block_loop.Draw`, at most ``length``)
        in one simulation of ``backend``'s block network; returns a
        :class:`~bioplastic.engine.block_loop.BlockResult`.

        Each trial's run values are the trial loop's (:meth:`Trainer.run_values`); the block
        network (:mod:`bioplastic.networks.block`) makes those that change from trial to trial
        tables with a row per trial, and the task scores every trial's read-out as the trial loop's."""
        from .block_loop import BlockResult, active, block_noise
        rule, layout, count = trainer.rule, backend.blueprint.layout, len(draws)
        trial_values, inputs = zip(*(trainer.run_values(backend, d.batch) for d in draws))
        weights = [np.broadcast_to(w, (layout.copies,) + w.shape) for w in trainer.weights]
        observed = backend.run(seed=draws[0].seed, weights=weights, inputs=inputs, trial_values=list(trial_values),
                               active=active(count, length), values=form.values(rule, layout, block_noise(draws, length)))
        self.check_block(trainer, observed, layout)
        if form.finish is not None:
            with rule_code(rule, "finish"):
                form.finish(rule, observed.state)
        variants = layout.copies // trainer.batch
        readouts = observed.readouts[:count].reshape(count, variants, trainer.batch, -1)
        losses = np.stack([trainer.task.losses(r[0], d.batch.targets) for r, d in zip(readouts, draws)])
        rewards = None if observed.rewards is None else observed.rewards[:count, :trainer.batch]
        return BlockResult([w[0] for w in observed.weights], losses, rewards, readouts)

    def check_block(self, trainer, observed, layout):
        """Stop training when a block's run went wrong (e.g. a spiking network ran away)."""

    def min_steps(self, model):
        """``(steps, why)``: the fewest steps a trial of ``model`` may have."""
        return 1, "one step"

    def words(self, kind):
        """How an error names a model of this family and the key that chose it."""
        return f"{self.name} models (model.kind = {kind!r})"

    # -- run values ---------------------------------------------------------------------------
    def copy_inputs(self, batch, blueprint):
        """``(conditions, inputs)`` of every copy: each copy reads its example's stimulus (the
        batch repeated to fill the copies)."""
        copies = blueprint.copies
        return _tiled(np.asarray(batch.conditions), copies), _tiled(np.asarray(batch.inputs), copies)

    def weight_names(self, model):
        """Names of the plastic weight matrices, layer order (None: W1, W2, ...)."""
        return None

    def model_values(self, protocol, copies):
        """Run values that come from the protocol's model and seed, not from the build."""
        return {}

    # -- reference, resources, gradcheck ------------------------------------------------------
    def reference_gradient(self, trainer, batch, observed):
        raise NotImplementedError

    # Bytes per synapse of one network copy, all told: Brian2's objects and the engine's arrays in
    # Python, the run files in /dev/shm, the binary's own copy (measured; see resources).
    bytes_per_synapse = 300
    reference_bytes_per_synapse = 300  # of a finite-difference reference's copies, where the family has one

    def memory(self, model, batch, variants, continuous, task_class, task):
        """``dict(neurons, synapses, size_key, per_step, task)``: one copy's neurons and synapses, the
        key that sets them, the bytes recorded per step and the task's own arrays."""
        raise NotImplementedError

    def without_noise(self, model):
        """``(model, what was changed or None)``: the model with no randomness inside its runs."""
        return model, None

    def gradcheck(self, protocol, eps):
        """``(title, reference gradient, numeric gradient)`` per layer, or a SpecError saying why not."""
        raise SpecError("model.kind", f"gradcheck has no check for {self.name} models", protocol.model_kind)


def register_family(adapter, *, override=False):
    """Make ``adapter`` (a :class:`Family` instance) the adapter of ``adapter.name``."""
    if not isinstance(adapter, Family):
        raise TypeError(f"register_family: needs a Family instance (got {type(adapter).__name__})")
    return FAMILIES.register(adapter.name, adapter, override=override)


def _layers(sizes):
    """Neurons and synapses of one copy of dense feed-forward layers of ``sizes``."""
    return dict(neurons=sum(sizes), synapses=sum(a * b for a, b in zip(sizes[:-1], sizes[1:])), size_key="model.sizes")


def _tiled(array, copies):
    """``array`` (examples, ...) repeated along its first axis to fill ``copies``."""
    return np.tile(array, (copies // len(array),) + (1,) * (array.ndim - 1))


class FeedForwardRate(Family):
    """Feed-forward rate networks (``model.kind = "rate"``)."""

    name = "feedforward_rate"
    reference = "bptt"

    def trial_blueprint(self, model, steps, variants, samples, batch, *, record, seed, contributors):
        return RateBlueprint(model, samples * variants * batch, steps, record=record, contributors=contributors)

    def block_blueprint(self, model, steps, variants, batch, trials, *, seed, conditions, contributors, block_form):
        # the block network scores the squared error itself; a rate task contributes nothing to it
        return RateBlockBlueprint(model, variants * batch, batch, steps, trials, contributors=[block_form])

    def run_block(self, trainer, backend, form, draws, length):
        from .block_loop import BlockResult, active, block_noise, padded
        count = len(draws)
        values = form.values(trainer.rule, backend.blueprint.layout, block_noise(draws, length))
        weights, losses = backend.run(seed=draws[0].seed, weights=trainer.weights,
                                      inputs=padded([d.batch.inputs for d in draws], length),
                                      targets=padded([d.batch.targets for d in draws], length),
                                      active=active(count, length), values=values)
        return BlockResult(weights, losses[:count, :trainer.batch])

    def min_steps(self, model):
        return len(model.sizes) - 1, "one per layer"  # the input needs one step per layer to reach the output

    def reference_gradient(self, trainer, batch, observed):
        return reference.feedforward_bptt_gradient(trainer, batch, observed)

    bytes_per_synapse = 400  # a perturbed and a clean network: measured 311-314 per perturbed synapse

    def memory(self, model, batch, variants, continuous, task_class, task):
        sizes = list(model.sizes)
        return dict(_layers(sizes), per_step=batch * sum(sizes[1:]) * 8,  # the clean copies' recorded rates
                    task=64 * batch * (sizes[0] + sizes[-1]) * 8 * 2)  # 64 labelled batches at once

    def gradcheck(self, protocol, eps):
        from .gradcheck import bptt_against_finite_differences
        return bptt_against_finite_differences(protocol, eps)


class RecurrentRate(Family):
    """Recurrent rate networks with a read-out over time (``model.kind = "rate"``, ``recurrent = true``)."""

    name = "recurrent_rate"
    reference = "bptt"
    blueprint_class = RecurrentRateBlueprint
    block_blueprint_class = RecurrentRateBlockBlueprint
    states = 1  # recorded state variables per neuron and step

    def words(self, kind):
        return "recurrent_rate models (model.kind = \"rate\" with recurrent = true)"

    def trial_blueprint(self, model, steps, variants, samples, batch, *, record, seed, contributors):
        return self.blueprint_class(model, samples * variants * batch, steps, record=record, seed=seed,
                                    contributors=contributors)

    def experiment_blueprint(self, model, steps, copies, blocks, *, seed, contributors):
        return self.blueprint_class(model, copies, steps, seed=seed, contributors=contributors)

    def block_blueprint(self, model, steps, variants, batch, trials, *, seed, conditions, contributors, block_form):
        return self.block_blueprint_class(model, variants * batch, batch, steps, trials, seed=seed,
                                          conditions=conditions or 1, contributors=contributors,
                                          block_form=block_form)

    def model_values(self, protocol, copies):
        return recurrent_model_values(protocol.model, protocol.seed, copies)

    def weight_names(self, model):
        return list(model.plastic_layers)

    def without_noise(self, model):
        if model.noise > 0 or model.x_init > 0:
            return (dataclasses.replace(model, noise=0.0, x_init=0.0),
                    f"model.noise and model.x_init set to 0 (were {model.noise:g}, {model.x_init:g})")
        return model, None

    def reference_gradient(self, trainer, batch, observed):
        return reference.recurrent_bptt_gradient(trainer, batch, observed)

    bytes_per_synapse = 220  # measured 158 (recurrent rate, n = 400 and 800)

    def memory(self, model, batch, variants, continuous, task_class, task):
        n = model.n_neurons
        # the clean copies' states, every copy's stimulus (x3) and read-out (x2)
        per_step = 8 * (self.states * batch * n + variants * batch * (3 * model.n_inputs + 2 * model.n_outputs))
        return dict(neurons=n + model.n_inputs + model.n_outputs, synapses=n * (n + model.n_inputs + 2 * model.n_outputs),
                    size_key="model.n_neurons", per_step=per_step,
                    task=task_class.recorded_bytes(task, model) if continuous else 0)

    gradcheck = FeedForwardRate.gradcheck  # BPTT against finite differences, as for feed-forward networks


class RecurrentSpiking(RecurrentRate):
    """Recurrent LIF/ALIF networks with a read-out over time (``model.kind = "alif"``)."""

    name = "alif"
    reference = "surrogate"
    blueprint_class = AlifBlueprint
    block_blueprint_class = AlifBlockBlueprint
    states = 2  # v and a
    bytes_per_synapse = 350  # measured 270 (n = 800)

    def words(self, kind):
        return Family.words(self, kind)

    def model_values(self, protocol, copies):
        return alif_model_values(protocol.model, protocol.seed, copies)

    def without_noise(self, model):
        return model, None  # no private noise in the model

    def reference_gradient(self, trainer, batch, observed):
        return reference.surrogate_gradient(trainer, batch, observed)

    def gradcheck(self, protocol, eps):
        from .gradcheck import eprop_against_surrogate
        return eprop_against_surrogate(protocol)


class Spiking(Family):
    """Feed-forward and recurrent E/I networks of LIF, Izhikevich or a plugin's spiking neurons."""

    name = "spiking"
    reference = "finite_difference"
    reference_apart = True
    fresh_inputs_per_sample = True

    def trial_blueprint(self, model, steps, variants, samples, batch, *, record, seed, contributors):
        # Sample s, variant v, example b reads input block s * B + b: the variants of one example
        # share its input spikes (common random numbers); every sample has fresh ones.
        copy = np.arange(samples * variants * batch)
        blocks = (copy // (variants * batch)) * batch + copy % batch
        return SpikingBlueprint(model, len(copy), steps, blocks=samples * batch, seed=seed,
                                contributors=contributors, input_block=blocks)

    def experiment_blueprint(self, model, steps, copies, blocks, *, seed, contributors):
        return SpikingBlueprint(model, copies, steps, blocks=blocks, seed=seed, contributors=contributors)

    def copy_inputs(self, batch, blueprint):
        """Copies read input blocks (the rasters stay one per block)."""
        return np.asarray(batch.conditions)[blueprint.layout.input_block], np.asarray(batch.inputs)

    def block_refusal(self, model):
        if model.recurrent:
            return ("recurrent E/I spiking networks have no block network yet (a spike in flight at a trial's end "
                    "would reach the next trial)")
        return None

    def block_blueprint(self, model, steps, variants, batch, trials, *, seed, conditions, contributors, block_form):
        refusal = self.block_refusal(model)
        if refusal:
            raise SpecError("training.loop", refusal, "block")
        return SpikingBlockBlueprint(model, variants * batch, batch, steps, trials, seed=seed,
                                     conditions=conditions or 1, contributors=contributors, block_form=block_form)

    def check_block(self, trainer, observed, layout):
        if observed.stopped_at is not None:  # the block's time since the trial's start (after the lead-in step)
            steps = float(observed.stopped_at / layout.dt) - 1
            trial = int(steps // layout.steps)
            raise RunawayError((steps - trial * layout.steps) * layout.dt, trainer.protocol.training.max_rate,
                               file=trainer.protocol.file, trial=trial)

    def model_values(self, protocol, copies):
        return {("guard", "max_rate"): float(protocol.training.max_rate)}

    bytes_per_synapse = 550  # measured 440 in training ([800, 100], weight perturbation)
    reference_bytes_per_synapse = 220  # the reference's copies carry no rule: measured 175

    def reference_gradient(self, trainer, batch, observed):
        analysis = trainer.protocol.analysis
        shape = self.memory(trainer.protocol.model, 1, 1, False, None, None)
        per_copy = resources.copy_bytes(self, shape, reference=True)
        return reference.expected_loss_gradient(trainer, np.asarray(batch.conditions)[:trainer.batch],
                                                analysis.fd_samples, analysis.fd_eps,
                                                max_copies=resources.reference_copies(per_copy))

    def memory(self, model, batch, variants, continuous, task_class, task):
        if model.recurrent:
            neurons = model.n_exc + model.n_inh
            shape = dict(neurons=neurons, synapses=neurons * model.out_degree, size_key="model.n_exc")
        else:
            shape = _layers(list(model.sizes))
        if continuous:  # forced spikes, reward schedules, monitors of a few variables
            return dict(shape, per_step=8 * variants * batch * 8, task=task_class.recorded_bytes(task, model))
        return dict(shape, per_step=3 * batch * model.sizes[0] * 8, task=0)  # the input rasters (NumPy, TimedArray)

    def gradcheck(self, protocol, eps):
        raise SpecError("model.kind", "gradcheck holds BPTT against finite differences for rate networks, and e-prop "
                        "against surrogate BPTT for recurrent LIF/ALIF networks (model.kind = \"alif\"); for this "
                        "spiking network, `bioplastic align` compares a rule with finite differences of the expected "
                        "loss", protocol.model_kind)


for _adapter in (FeedForwardRate(), RecurrentRate(), RecurrentSpiking(), Spiking()):
    register_family(_adapter)

__all__ = ["Family", "register_family", "FeedForwardRate", "RecurrentRate", "RecurrentSpiking", "Spiking"]
