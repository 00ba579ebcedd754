"""Brian2 networks built from model specs: rate networks (feed-forward or recurrent) and spiking
(LIF, Izhikevich) networks."""

from .rate import RateModelSpec, RateNetwork, build_rate_network, init_weights
from .recurrent_rate import RecurrentRateModelSpec
from .spiking import IzhikevichModelSpec, LifModelSpec, SpikingModelSpec

MODEL_KINDS = {"rate": RateModelSpec, "lif": LifModelSpec, "izhikevich": IzhikevichModelSpec}


def model_spec_class(kind, table):
    """The spec class of a model table: ``kind``, and for rate models its ``recurrent`` flag."""
    if kind == "rate" and table.get("recurrent") is True:
        return RecurrentRateModelSpec
    return MODEL_KINDS[kind]


__all__ = ["MODEL_KINDS", "model_spec_class", "RateModelSpec", "RecurrentRateModelSpec", "RateNetwork",
           "build_rate_network", "init_weights", "LifModelSpec", "IzhikevichModelSpec", "SpikingModelSpec"]
