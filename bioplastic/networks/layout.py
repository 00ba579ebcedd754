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
    """Names and sizes of a replicated spiking network (no Brian2 objects)."""

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
