"""Memory a protocol will need, estimated before anything is built, and refused when it cannot fit.

The estimate counts what grows with the protocol: the network copies of one simulation (their
neurons and synapses in Brian2, with the arrays the engine builds for them), what is recorded or
written per step (a rate network's trajectories, a spiking network's input rasters, an
experiment's monitors) and the task's batches. The constants are rough but on the safe side: what
matters is refusing a protocol that needs ten times the machine, naming the key that makes it so,
instead of a MemoryError from NumPy after minutes. What one copy of a model holds is its family
adapter's to say (:meth:`bioplastic.engine.families.Family.memory`).
"""

import os

from .errors import SpecError
from .registry import FAMILIES

BYTES_PER_SYNAPSE = 96  # Brian2's indices and variables, the engine's per-copy weights, the build's index arrays
BYTES_PER_NEURON = 160
SHARE = 0.8  # of the available memory a protocol may plan to use


def available_bytes():
    """Memory available to a new process (MemAvailable), or the physical memory where unknown."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):  # pragma: no cover - no way to tell
        return None


def estimate(model, task_class, task, rule):
    """The peak memory of one simulation of a protocol (``task``: the task's spec), by part.

    Returns a dict: ``copies`` and ``per_copy`` (bytes of one network copy), ``per_step`` (bytes
    recorded or written for every step of the run), ``steps``, ``task`` (the task's own arrays),
    ``variants`` and ``batch`` (what multiplies into the copies), and ``size_key`` (the model key
    that sets one copy's size).
    """
    steps = int(round(float(task.duration / model.dt)))
    continuous = task_class.mode == "continuous"
    variants = 1 if continuous else rule.variants
    batch = task_class.copies_for(task) if continuous else task.batch
    parts = FAMILIES[model.family].memory(model, batch, variants, continuous, task_class, task)
    return dict(copies=variants * batch, per_copy=parts["synapses"] * BYTES_PER_SYNAPSE
                + parts["neurons"] * BYTES_PER_NEURON, per_step=parts["per_step"], steps=steps, task=parts["task"],
                variants=variants, batch=batch, size_key=parts["size_key"])


def check(model, task_class, task, rule, limit=None):
    """Refuse a protocol whose estimate exceeds 80% of the available memory (or of ``limit``),
    naming the key that drives it. Returns the estimate in bytes."""
    parts = estimate(model, task_class, task, rule)
    network = parts["per_copy"] * parts["copies"]
    over_time = parts["per_step"] * parts["steps"]
    need = network + over_time + parts["task"]
    have = available_bytes() if limit is None else limit
    if have is None or need <= SHARE * have:
        return need
    if parts["per_copy"] > SHARE * have / 2:  # a single copy does not fit: the network is too big
        blame = parts["size_key"]
    elif over_time + parts["task"] > network:
        blame = "task.duration" if over_time > parts["task"] else "task.batch"
    else:  # the number of copies does not fit
        blame = "rule.samples" if parts["variants"] > parts["batch"] else "task.batch"
    raise SpecError(blame, f"needs about {_size(need)} for {parts['copies']:,} network copies in one simulation; this "
                    f"machine has {_size(have)} available")


def _size(n):
    gib = n / 2 ** 30
    if gib >= 100:
        return f"{gib:,.0f} GiB"
    return f"{gib:.3g} GiB" if gib >= 1 else f"{n / 2 ** 20:.3g} MiB"
