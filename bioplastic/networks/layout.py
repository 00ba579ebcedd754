"""Names and sizes of a replicated network (no Brian2 objects): what every contributor to a
recipe (the base network, the task, the rule's builder) may refer to."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Projection:
    """One plastic connection: its synapses hold ``copies * size`` weights, copy-major."""

    synapses: str
    pre: str
    post: str
    shape: tuple  # per copy: (n_out, n_in) dense, or (n_synapses,) sparse

    @property
    def size(self):
        return int(np.prod(self.shape))


@dataclass
class Layout:
    """Names and sizes of a replicated network (no Brian2 objects).

    A run holds ``trials`` trials of ``steps`` steps each (one, except in a block of the block
    loop); its copies are ``copies // batch`` variants of ``batch`` examples (copy ``c`` is variant
    ``c // batch`` on example ``c % batch``). A block (``block``) starts with one lead-in step, so
    that trial n occupies steps ``1 + n*steps .. (n+1)*steps`` and ends on a tick of a clock of
    one trial's period; ``conditions`` is the number of task conditions its trials draw from."""

    spec: object
    copies: int
    steps: int
    blocks: int = 1
    seed: int = 0
    groups: dict = field(default_factory=dict)  # group name -> neurons per copy (input: per block)
    layers: list = field(default_factory=list)  # spiking groups, input side first
    projections: list = field(default_factory=list)
    input: str | None = None  # the input spike sources (feed-forward)
    output: str = ""  # the group whose neurons the task reads out
    input_block: np.ndarray = None  # (copies,): the input block every copy reads
    trials: int = 1  # trials per run
    batch: int = 1  # examples per variant
    block: bool = False  # many trials in one run, after a lead-in step
    conditions: int = 1  # task conditions (input patterns, trial types) a block's trials draw from

    def __post_init__(self):
        if self.input_block is None:
            self.input_block = np.arange(self.copies) % self.blocks
        self.input_block = np.asarray(self.input_block, int)
        if self.input_block.shape != (self.copies,) or self.input_block.min(initial=0) < 0 or \
                self.input_block.max(initial=0) >= self.blocks:
            raise ValueError(f"input_block: must give a block in [0, {self.blocks}) for each of {self.copies} copies")

    @property
    def dt(self):
        return self.spec.dt

    @property
    def duration(self):
        return self.steps * self.spec.dt

    @property
    def run_length(self):
        """What sets how long a run is: part of the build key, since the run's duration is built
        in (two recipes that differ only in their trials' length are different networks)."""
        return dict(steps=self.steps, trials=self.trials, dt=repr(self.dt))

    @property
    def period(self):
        """One trial's length."""
        return self.steps * self.spec.dt

    @property
    def run_steps(self):
        """Steps of one run: a trial's, or a block's trials after its lead-in step."""
        return self.trials * self.steps + 1 if self.block else self.steps

    def copy_index(self, group):
        """The copy that every neuron of ``group`` belongs to (the input group: its block)."""
        return np.repeat(np.arange(self.blocks if group == self.input else self.copies), self.groups[group])

    def size(self, group):
        return (self.blocks if group == self.input else self.copies) * self.groups[group]


def checked_array(name, array, shape):
    """``array`` as a flat float array, after checking its shape (an error names ``name``)."""
    array = np.asarray(array, float)
    if array.shape != shape:
        raise ValueError(f"{name}: must have shape {shape} (got {array.shape})")
    return np.ascontiguousarray(array).ravel()


def synapse_order(weights):
    """Weights (..., n_post, n_pre) as the flat synapse order of the recipe (presynaptic-major)."""
    return np.ascontiguousarray(np.swapaxes(np.asarray(weights, float), -1, -2)).ravel()


def matrix_order(values, copies, shape):
    """A synaptic variable in synapse order back to (copies, n_post, n_pre)."""
    n_post, n_pre = shape
    return np.swapaxes(np.asarray(values).reshape(copies, n_pre, n_post), -1, -2)
