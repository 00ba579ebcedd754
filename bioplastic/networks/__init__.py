"""Brian2 networks built from model specs: rate networks (feed-forward or recurrent), spiking
(LIF, Izhikevich) networks and recurrent LIF/ALIF networks with a read-out over time.

Model kinds are registered (:func:`register_model_kind`): a plugin adds one with its spec class,
whose ``family`` names the family adapter that builds and runs it
(:mod:`bioplastic.engine.families`).
"""

from ..registry import Registry
from .alif import AlifModelSpec
from .rate import RateModelSpec, RateNetwork, init_weights
from .recurrent_rate import RecurrentRateModelSpec
from .spiking import IzhikevichModelSpec, LifModelSpec, SpikingModelSpec

MODEL_KINDS = Registry("model kind")  # model.kind -> spec class


def register_model_kind(spec_class, *, override=False):
    """Make ``spec_class`` (a frozen dataclass of ``param`` fields with ``kind`` and ``family``)
    the model of ``model.kind = spec_class.kind``. A spec class may choose another class for some
    tables by a classmethod ``variant(table)`` (a rate model with ``recurrent = true``)."""
    for attribute in ("kind", "family"):
        if not isinstance(getattr(spec_class, attribute, None), str):
            raise ValueError(f"{spec_class.__name__}.{attribute}: must be a string naming the model's {attribute}")
    return MODEL_KINDS.register(spec_class.kind, spec_class, override=override)


def model_spec_class(kind, table):
    """The spec class of a model table of ``kind`` (its ``variant`` for that table, where it has one)."""
    spec_class = MODEL_KINDS[kind]
    return spec_class.variant(table) if hasattr(spec_class, "variant") else spec_class


for _spec in (RateModelSpec, LifModelSpec, IzhikevichModelSpec, AlifModelSpec):
    register_model_kind(_spec)

__all__ = ["MODEL_KINDS", "AlifModelSpec", "model_spec_class", "register_model_kind", "RateModelSpec",
           "RecurrentRateModelSpec", "RateNetwork", "init_weights", "LifModelSpec", "IzhikevichModelSpec",
           "SpikingModelSpec"]
