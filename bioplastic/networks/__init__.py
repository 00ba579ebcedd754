"""Brian2 networks built from model specs: rate networks and spiking (LIF, Izhikevich) networks."""

from .rate import RateModelSpec, RateNetwork, build_rate_network, init_weights
from .spiking import IzhikevichModelSpec, LifModelSpec, SpikingModelSpec

MODEL_KINDS = {"rate": RateModelSpec, "lif": LifModelSpec, "izhikevich": IzhikevichModelSpec}

__all__ = ["MODEL_KINDS", "RateModelSpec", "RateNetwork", "build_rate_network", "init_weights", "LifModelSpec",
           "IzhikevichModelSpec", "SpikingModelSpec"]
