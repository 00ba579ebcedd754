"""bioplastic: biologically plausible learning rules in Brian2, measured against the true gradient."""

__version__ = "0.1.0"

from . import engine  # noqa: E402,F401  (registers the model families and backends that config reads)
