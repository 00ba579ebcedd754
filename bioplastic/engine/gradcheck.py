"""The gradchecks behind ``bioplastic gradcheck``, one per kind of reference gradient; each family
adapter (:mod:`bioplastic.engine.families`) names its own.

Each returns ``(title, reference gradient, numeric gradient)``, one array per weight layer.
"""

import dataclasses

from .reference import eprop_with_true_signal, finite_difference_gradient
from .trainer import Trainer


def bptt_against_finite_differences(protocol, eps):
    """BPTT through the recorded trajectory against central finite differences through the
    Brian2 simulation, with nothing random inside the run (see :func:`deterministic`)."""
    trainer = Trainer(deterministic(protocol))
    batch = trainer.task.sample(trainer.input_rng)
    trial, _ = trainer.step(batch, with_gradient=True)
    numeric = finite_difference_gradient(trainer, batch.inputs, batch.targets, eps=eps)
    title = (f"BPTT through the recorded Brian2 trajectory vs central finite differences through the "
             f"Brian2 simulation (eps={eps:g}, backend={protocol.training.backend})")
    return title, trial.gradient.weights, numeric


def eprop_against_surrogate(protocol):
    """e-prop with the true learning signal, accumulated inside the Brian2 run, against surrogate
    BPTT through the same trajectory. A spike has no finite difference: this identity checks the
    spiking gradient instead."""
    trainer = Trainer(with_eprop(protocol))
    batch = trainer.task.sample(trainer.input_rng)
    numeric, gradient = eprop_with_true_signal(trainer, batch)
    title = ("e-prop with the true learning signal, accumulated inside the Brian2 run, vs surrogate BPTT "
             f"through the recorded trajectory (backend={protocol.training.backend}; --eps is not used)")
    return title, gradient.weights, numeric


def with_eprop(protocol):
    """The protocol with e-prop as its rule (its own spec when it has one): the identity checks
    e-prop's traces against surrogate BPTT whatever rule the protocol trains with."""
    from ..rules.eprop import EpropSpec
    if protocol.rule_kind == "eprop":
        return protocol
    return dataclasses.replace(protocol, rule_kind="eprop", rule=EpropSpec())


def deterministic(protocol):
    """The protocol with nothing random inside the run, as a finite difference needs: BPTT is
    checked on its own (the rule is irrelevant; in-network rules draw perturbations), and a model
    with noise of its own (a recurrent network's private noise and random initial state) has it
    switched off, which is said."""
    from ..registry import FAMILIES
    from ..rules.backprop import BackpropSpec
    model, said = FAMILIES[protocol.model.family].without_noise(protocol.model)
    if said:
        print(f"gradcheck: {said}: finite differences need the same run every time")
    return dataclasses.replace(protocol, model=model, rule_kind="backprop", rule=BackpropSpec())
