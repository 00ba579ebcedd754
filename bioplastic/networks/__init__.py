"""Brian2 networks built from model specs."""

from .rate import RateModelSpec, RateNetwork, build_rate_network, init_weights

MODEL_KINDS = {"rate": RateModelSpec}

__all__ = ["MODEL_KINDS", "RateModelSpec", "RateNetwork", "build_rate_network", "init_weights"]
