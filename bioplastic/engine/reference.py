r"""Reference gradients of the objective the rules follow; each model family's adapter
(:mod:`bioplastic.engine.families`) names its own.

* ``bptt`` (rate networks): exact, backwards through the trajectory Brian2 recorded for the
  trial's clean copies (:mod:`bioplastic.gradients.bptt`).
* ``surrogate`` (recurrent LIF/ALIF networks): BPTT backwards through the recorded trajectory
  with every spike's derivative replaced by the model's pseudo-derivative
  (:mod:`bioplastic.gradients.surrogate`). Not the gradient of the loss, which is piecewise
  constant in the weights, so the cosine theories of WP and NP do not apply to it.
* ``finite_difference`` (feed-forward and E/I spiking networks): the gradient of the **expected** loss over the
  task's input noise, by central differences through the Brian2 simulation,

  .. math:: \hat g_j = \frac{1}{M} \sum_{m=1}^{M}
            \frac{L(w + \epsilon e_j; \xi_m) - L(w - \epsilon e_j; \xi_m)}{2\epsilon},

  with common random numbers: the copies nudged up and down along every weight j see the very
  same input spikes :math:`\xi_m`, and all weights share the same M input samples, so what
  differs between two copies is the weight alone. The loss of one input sample is a piecewise
  smooth function of the weights (a spike can appear or vanish), its expectation is smooth;
  ``fd_eps`` trades the O(ε²) bias of the difference quotient against the variance that such
  jumps add (∝ 1/ε). The reference reports its own standard error per weight and the cosine
  between the estimates of two halves of the samples, so that a reader can tell a poor
  alignment from a noisy reference.

:func:`finite_difference_gradient` is the per-batch version for rate networks that
``bioplastic gradcheck`` holds BPTT against.
"""

import numpy as np

from ..gradients import Gradient, bptt
from ..networks.rate_math import flatten, unflatten
from ..tasks.base import Batch
from ..networks.recurrent_rate_math import bptt as recurrent_bptt

def feedforward_bptt_gradient(trainer, batch, observed):
    """BPTT through the recorded trajectory of the trial's clean copies of a feed-forward rate network."""
    model, size = trainer.protocol.model, trainer.batch
    observed = clean_run(trainer, batch, observed)
    outputs = observed.final[-1][:size]
    g = bptt(trainer.weights, batch.inputs, observed.trajectory, trainer.task.output_gradient(outputs, batch.targets),
             model.activation, model.a)
    return Gradient(g.weights, g.nodes, "bptt", True)


def clean_run(trainer, batch, observed):
    """The trial's observation with a recorded trajectory of clean copies. An in-network rule's
    trials record none (and may perturb every copy), nor do a perturbation rule's when the
    protocol asks for no analysis, so for those the network runs once more without the rule
    (with the model's own noise, if it has any, drawn afresh)."""
    if trainer.rule.realisation != "in_network" and observed is not None and observed.trajectory is not None:
        return observed
    backend = trainer.backend_for(1, variants=1, with_rule=False)
    return trainer.run(backend, batch, [np.broadcast_to(w, (backend.copies,) + w.shape) for w in trainer.weights])


def recurrent_bptt_gradient(trainer, batch, observed):
    """BPTT through the recorded trajectory of the trial's clean copies of a recurrent rate network:
    dL/dW of the plastic weights, and dL/dp of each plastic projection's target (per example)."""
    model, size = trainer.protocol.model, trainer.batch
    observed = clean_run(trainer, batch, observed)
    outputs = observed.final[-1][:size]
    steps = observed.trajectory.shape[0]
    z_grad = trainer.task.output_gradient(outputs, batch.targets).reshape(size, steps, -1).transpose(1, 0, 2)
    weights = model.full_weights(trainer.weights, trainer.protocol.seed)
    grads, nodes = recurrent_bptt(weights, batch.inputs, observed.trajectory, z_grad, model.activation, model.a)
    targets = {"input": "neurons", "recurrent": "neurons", "readout": "readout"}
    return Gradient([grads[name] for name in model.plastic_layers],
                    [nodes[targets[name]] for name in model.plastic_layers], "bptt", True)


def surrogate_gradient(trainer, batch, observed):
    """Surrogate-gradient BPTT through the recorded trajectory of the trial's clean copies of a
    recurrent LIF/ALIF network: dL/dW of the plastic weights, and dL/dp of each plastic
    projection's target (per example)."""
    from ..gradients.surrogate import bptt as surrogate_bptt
    model, size = trainer.protocol.model, trainer.batch
    observed = clean_run(trainer, batch, observed)
    weights = model.full_weights(trainer.weights, trainer.protocol.seed)
    params = model.surrogate_params()
    grads = {name: np.zeros_like(weights[name]) for name in ("input", "recurrent", "readout")}
    nodes = {"neurons": np.zeros((size, model.n_neurons)), "readout": np.zeros((size, model.n_outputs))}
    for b, (trajectory, y_grad) in enumerate(_recorded_examples(trainer, batch, observed)):
        g_in, g_rec, g_out, nodes["neurons"][b], nodes["readout"][b] = surrogate_bptt(
            params, weights["input"], weights["recurrent"], weights["readout"], np.asarray(batch.inputs[b], float),
            y_grad, trajectory)
        for name, g in zip(("input", "recurrent", "readout"), (g_in, g_rec, g_out)):
            grads[name] += g
    targets = {"input": "neurons", "recurrent": "neurons", "readout": "readout"}
    return Gradient([grads[name] for name in model.plastic_layers],
                    [nodes[targets[name]] for name in model.plastic_layers], "surrogate", False)


def _recorded_examples(trainer, batch, observed):
    """Per example of the batch: its recorded :class:`~bioplastic.gradients.surrogate.Trajectory`
    and dL/dy[t] of the batch loss (steps, n_out)."""
    from ..gradients.surrogate import recorded
    size = trainer.batch
    outputs = observed.final[-1][:size]
    v, a = observed.trajectory
    steps = v.shape[0]
    y_grad = trainer.task.output_gradient(outputs, batch.targets).reshape(size, steps, -1)
    y = outputs.reshape(size, steps, -1)
    params = trainer.protocol.model.surrogate_params()
    for b in range(size):
        yield recorded(params, v[:, b], a[:, b], y[b]), y_grad[b]


def eprop_with_true_signal(trainer, batch):
    """e-prop's gradient with the true learning signal, accumulated inside the Brian2 run, and
    the surrogate BPTT gradient of the same trajectory: ``(e-prop per layer, Gradient)``.

    A first run records the trajectory; NumPy computes the true learning signal from it
    (:func:`~bioplastic.gradients.surrogate.true_learning_signal`); a second run of the same
    (deterministic) network, whose e-prop reads that signal instead of its feedback, accumulates
    Σ_t L_j[t] e_ji[t] in its synapses."""
    from ..gradients.surrogate import true_learning_signal
    from ..rules.builders import contributor
    from ..rules.eprop import GIVEN_SIGNAL
    from .backends import get_backend
    protocol, model, size = trainer.protocol, trainer.protocol.model, trainer.batch
    observed = clean_run(trainer, batch, None)
    gradient = surrogate_gradient(trainer, batch, observed)
    weights = model.full_weights(trainer.weights, protocol.seed)
    params = model.surrogate_params()
    # Each copy accumulates its own example's gradient (the run's error weights are per example),
    # and the rule averages over copies: the signal of example b is that of b's loss alone.
    signals = np.stack([true_learning_signal(params, weights["recurrent"], weights["readout"], size * y_grad, tr)
                        for tr, y_grad in _recorded_examples(trainer, batch, observed)], axis=1)
    rule = trainer.rule.with_given_signal()
    blueprint = trainer.adapter.trial_blueprint(
        model, trainer.steps, 1, 1, size, record=0, seed=protocol.seed,
        contributors=[trainer.task.contribute, contributor(rule, model), trainer.task.contribute_after_rule])
    blueprint.with_rule = True
    backend = get_backend(protocol.training.backend, blueprint, protocol.training.threads)
    run = trainer.run(backend, batch, [np.broadcast_to(w, (size,) + w.shape) for w in trainer.weights], rule=rule,
                      values={(GIVEN_SIGNAL, "values"): signals.reshape(trainer.steps, -1)}, dry_run=True)
    return rule.update_gradient(run.deltas[rule.kind]), gradient


def expected_loss_gradient(trainer, conditions, samples, eps, max_copies=4096):
    """Central differences of the expected loss at ``trainer.weights`` (see the module docstring).

    ``conditions`` fixes the task condition of each of the B examples; every one of the
    ``samples`` input samples draws fresh input spikes for them (stream ``reference``).
    """
    from .. import rng as rng_streams
    weights, size = trainer.weights, len(conditions)
    shapes = [w.shape for w in weights]
    flat = flatten(weights)
    count = flat.size
    per_weight = 2 * size
    weights_per_run = int(max(1, min(count, max_copies // per_weight)))
    samples_per_run = int(max(1, min(samples, max_copies // (per_weight * weights_per_run))))
    rng = rng_streams.stream(trainer.protocol.seed, "reference")  # the same samples at every call: a smooth function of w
    inputs = [trainer.task.sample(rng, batch=samples_per_run * size, conditions=np.tile(conditions, samples_per_run))
              for _ in range(0, samples, samples_per_run)]
    backend = trainer.backend_for(samples_per_run, variants=2 * weights_per_run, record=False, with_rule=False)
    differences = np.zeros((len(inputs) * samples_per_run, count))
    for index in _chunks(count, weights_per_run):
        variants = _nudged(flat, index, eps, weights_per_run)
        copy_weights = [np.tile(np.repeat(part, size, axis=0), (samples_per_run,) + (1,) * len(shape))
                        for part, shape in zip(unflatten(variants, shapes), shapes)]
        for chunk, batch in enumerate(inputs):
            observed = trainer.run(backend, batch, copy_weights, dry_run=True)
            losses = trainer.task.losses(observed.final[-1], np.asarray(batch.targets)[backend.blueprint.layout.input_block])
            losses = losses.reshape(samples_per_run, 2 * weights_per_run, size).mean(axis=2)
            rows = slice(chunk * samples_per_run, (chunk + 1) * samples_per_run)
            differences[rows, index] = _central(losses, len(index), eps)
    differences = differences[:samples]
    mean = differences.mean(axis=0)
    sem = differences.std(axis=0, ddof=1) / np.sqrt(len(differences)) if len(differences) > 1 else np.full(count, np.nan)
    half = len(differences) // 2
    split = float("nan")
    if half >= 1:
        a, b = differences[:half].mean(axis=0), differences[half:2 * half].mean(axis=0)
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        split = float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")
    return Gradient(unflatten(mean, shapes), None, "finite_difference", False, unflatten(sem, shapes), split)


def finite_difference_gradient(trainer, inputs, targets, eps=1e-6, max_copies=4096):
    """Central finite differences of the batch loss of a rate network, through the Brian2 simulation.

    Each weight is nudged by ±eps in its own copy, so 2P runs become ceil(2P B / max_copies)
    simulations of many copies. Returns dL/dW, one array per layer.
    """
    weights, batch = trainer.weights, trainer.batch
    shapes = [w.shape for w in weights]
    flat = flatten(weights)
    chunk = int(max(1, min(flat.size, max_copies // (2 * batch))))
    backend = trainer.backend_for(1, variants=2 * chunk, record=False, with_rule=False)
    gradient = np.empty_like(flat)
    for index in _chunks(flat.size, chunk):
        copy_weights = [np.repeat(part, batch, axis=0) for part in unflatten(_nudged(flat, index, eps, chunk), shapes)]
        observed = trainer.run(backend, Batch(inputs, targets, np.zeros(len(inputs), int)), copy_weights)
        losses = trainer.task.losses(observed.final[-1].reshape(2 * chunk, batch, -1), targets).mean(axis=1)
        gradient[index] = _central(losses, len(index), eps)
    return unflatten(gradient, shapes)


def _chunks(count, width):
    """Indices 0..count-1 in runs of ``width``."""
    return [np.arange(start, min(start + width, count)) for start in range(0, count, width)]


def _nudged(flat, index, eps, width):
    """``2 * width`` copies of the weights ``flat``: copy 2k has weight ``index[k]`` raised by eps,
    copy 2k + 1 lowered (the spare copies, when ``index`` is short, keep ``flat``)."""
    variants = np.repeat(flat[None], 2 * width, axis=0)
    variants[2 * np.arange(len(index)), index] += eps
    variants[2 * np.arange(len(index)) + 1, index] -= eps
    return variants


def _central(losses, count, eps):
    """Central differences from the losses of :func:`_nudged` copies (the last axis)."""
    return (losses[..., 0:2 * count:2] - losses[..., 1:2 * count:2]) / (2 * eps)
