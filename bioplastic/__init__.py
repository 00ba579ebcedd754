"""bioplastic: biologically plausible learning rules in Brian2, measured against the true gradient."""

__version__ = "0.1.0"
