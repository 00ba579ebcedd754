"""Exceptions that name what is wrong: the owner or key path, what is required, and what was given."""

_MISSING = object()


class BioplasticError(Exception):
    """Base class of every error bioplastic raises on purpose."""


class SpecError(BioplasticError, ValueError):
    """A parameter failed validation.

    ``key`` is a dotted path: ``NodePerturbation.sigma`` when a spec is built in Python,
    ``rule.sigma`` when it comes from a protocol file (then ``file`` is set too).
    """

    def __init__(self, key, message, got=_MISSING, file=None):
        self.key = key
        self.message = message
        self.got = got
        self.file = file
        super().__init__(str(self))

    def __str__(self):
        text = f"{self.key}: {self.message}" if self.key else self.message
        if self.got is not _MISSING:
            text += f" (got {self.got!r})"
        if self.file:
            text = f"{self.file}: {text}"
        return text

    def located(self, file=None, prefix=None):
        """The same error with a file (unless it names one already) and/or a key-path prefix added."""
        key = f"{prefix}.{self.key}" if prefix and self.key else (prefix or self.key)
        return SpecError(key, self.message, self.got, self.file or file)  # the innermost file is the one at fault


class BuildError(BioplasticError):
    """The standalone network could not be compiled (no compiler, or a broken one)."""


class SimulationKilled(BioplasticError):
    """The standalone simulation was killed by a signal (the kernel's OOM killer, a user): the
    machine's doing, not the protocol's, so a sweep retries such a run when it resumes."""


class DivergenceError(SpecError):
    """Training left the finite range: a protocol error, blamed on the key that controls it.

    ``metrics`` (set by the training loop) holds the tidy rows logged up to and including the
    trial that diverged, which the caller keeps in a folder marked as failed."""

    metrics = None
    trial = None


class RunawayError(SpecError):
    """A spiking network's population rate exceeded ``training.max_rate``; the run was stopped.

    ``metrics`` holds the tidy rows logged before the stop (the caller keeps them in a folder
    marked as failed).
    """

    def __init__(self, stopped_at, max_rate, file=None, simulated=None, trial=None, metrics=None):
        self.stopped_at, self.max_rate, self.trial, self.metrics = stopped_at, max_rate, trial, metrics
        self.simulated = stopped_at if simulated is None else simulated
        where = f" in trial {trial}" if trial is not None else ""
        super().__init__("training.max_rate", f"runaway activity: the population rate exceeded {max_rate} at "
                         f"t = {_seconds(self.simulated)} of simulated time{where}; the run was stopped", file=file)

    def at_trial(self, trial, duration, rows):
        """The same stop, placed in the training loop: trial ``trial`` of length ``duration``."""
        return RunawayError(self.stopped_at, self.max_rate, self.file, trial * duration + self.stopped_at, trial, rows)


def _seconds(quantity):
    try:
        return f"{float(quantity):.3f} s"
    except TypeError:  # pragma: no cover - a plain number already
        return str(quantity)
