"""The engine: the trial loop (Trainer), the block loop, experiments, and the backends that run
them. Importing it registers the model-family adapters and the backends."""

from . import backends, families  # noqa: F401  (register the backends and the family adapters)
