"""Brian2 networks built from model specs: rate networks (feed-forward or recurrent), spiking
(LIF, Izhikevich) networks and recurrent LIF/ALIF networks with a read-out over time."""

from .rate import RateModelSpec, RateNetwork, build_rate_network, init_weights
from . import alif, recurrent_rate
from .alif import AlifModelSpec
from .recurrent_rate import RecurrentRateModelSpec
from .spiking import IzhikevichModelSpec, LifModelSpec, SpikingModelSpec

MODEL_KINDS = {"rate": RateModelSpec, "lif": LifModelSpec, "izhikevich": IzhikevichModelSpec, "alif": AlifModelSpec}
# Recurrent families with a read-out over time: family -> (blueprint class, model_values function
# giving the run values that come from the model spec and seed rather than from the build).
RECURRENT_FAMILIES = {"recurrent_rate": (recurrent_rate.RecurrentRateBlueprint, recurrent_rate.model_values),
                      "recurrent_spiking": (alif.AlifBlueprint, alif.model_values)}


def model_spec_class(kind, table):
    """The spec class of a model table: ``kind``, and for rate models its ``recurrent`` flag."""
    if kind == "rate" and table.get("recurrent") is True:
        return RecurrentRateModelSpec
    return MODEL_KINDS[kind]


__all__ = ["MODEL_KINDS", "RECURRENT_FAMILIES", "AlifModelSpec", "model_spec_class", "RateModelSpec", "RecurrentRateModelSpec", "RateNetwork",
           "build_rate_network", "init_weights", "LifModelSpec", "IzhikevichModelSpec", "SpikingModelSpec"]
