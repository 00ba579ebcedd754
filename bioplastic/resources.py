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
import shutil

from .errors import SpecError
from .registry import FAMILIES
from .scratch import SHM, keep_run_files_on_disk

BASELINE = 240 * 2**20  # a command before any network: Python, Brian2, SymPy (measured ~200 MiB)
BYTES_PER_NEURON = 160
SHM_SHARE = 0.45  # of a standalone network's bytes, its run files in /dev/shm (measured 0.35-0.42)
SHARE = 0.8  # of the available memory a protocol may plan to use
REFERENCE_MEMORY = 512 * 2**20  # what the copies of a finite-difference reference may hold at once


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


def estimate(model, task_class, task, rule, analysis=None, backend="standalone"):
    """The peak memory of one run of a protocol (``task``: the task's spec), by part.

    Returns a dict: ``copies`` and ``per_copy`` (bytes of one network copy: its Brian2 objects,
    the engine's arrays, the run files and the binary's copy of them), ``per_step`` (bytes
    recorded or written for every step), ``steps``, ``task`` (the task's own arrays and
    records), ``reference`` (the network copies of a finite-difference reference, when the
    analysis runs one), ``variants``, ``batch`` and ``size_key``; and the totals: ``memory``
    (bytes, the command's own baseline included) and ``shm`` (bytes of ``/dev/shm``).
    """
    steps = int(round(float(task.duration / model.dt)))
    continuous = task_class.mode == "continuous"
    variants = 1 if continuous else rule.variants
    batch = task_class.copies_for(task) if continuous else task.batch
    family = FAMILIES[model.family]
    parts = family.memory(model, batch, variants, continuous, task_class, task)
    per_copy = copy_bytes(family, parts)
    copies = variants * batch
    reference = 0
    if analysis is not None and analysis.every > 0 and not continuous and family.reference == "finite_difference":
        per_reference_copy = copy_bytes(family, parts, reference=True)
        reference = reference_copies(per_reference_copy) * per_reference_copy
    network = per_copy * copies + reference
    memory = BASELINE + network + parts["per_step"] * steps + parts["task"]
    shm = SHM_SHARE * network if backend == "standalone" else 0
    return dict(copies=copies, per_copy=per_copy, per_step=parts["per_step"], steps=steps, task=parts["task"],
                reference=reference, variants=variants, batch=batch, size_key=parts["size_key"],
                memory=int(memory), shm=int(shm))


def copy_bytes(family, parts, reference=False):
    """Bytes of one network copy of ``parts`` (a family's :meth:`memory`) of ``family``; of a
    reference's copy (no rule attached) if ``reference``."""
    per_synapse = family.reference_bytes_per_synapse if reference else family.bytes_per_synapse
    return parts["synapses"] * per_synapse + parts["neurons"] * BYTES_PER_NEURON


def reference_copies(per_copy, most=4096):
    """How many network copies of ``per_copy`` bytes a finite-difference reference simulates at
    once: up to ``most``, within :data:`REFERENCE_MEMORY` (more copies are more simulations)."""
    return int(max(1, min(most, REFERENCE_MEMORY // max(per_copy, 1))))


def check(model, task_class, task, rule, analysis=None, backend="standalone", limit=None):
    """Refuse a protocol whose estimate exceeds 80% of the available memory (or of ``limit``),
    naming the key that drives it. Returns the estimate (:func:`estimate`)."""
    parts = estimate(model, task_class, task, rule, analysis, backend)
    network = parts["per_copy"] * parts["copies"]
    over_time = parts["per_step"] * parts["steps"]
    need = parts["memory"]
    have = available_bytes() if limit is None else limit
    if have is None or need <= SHARE * have:
        free = shm_free()
        if parts["shm"] and free is not None and parts["shm"] > SHARE * free:
            keep_run_files_on_disk(f"/dev/shm has {size(free)} free and a run needs about {size(parts['shm'])} there")
        return parts
    if parts["per_copy"] > SHARE * have / 2:  # a single copy does not fit: the network is too big
        blame = parts["size_key"]
    elif over_time + parts["task"] > network:
        blame = "task.duration" if over_time > parts["task"] else "task.batch"
    else:  # the number of copies does not fit
        blame = "rule.samples" if parts["variants"] > parts["batch"] else "task.batch"
    raise SpecError(blame, f"needs about {size(need)} for {parts['copies']:,} network copies in one simulation; this "
                    f"machine has {size(have)} available")


def for_protocol(protocol):
    """:func:`estimate` of a resolved protocol; of a sweep, the largest over its variants."""
    from .rules import RULES
    from .tasks import TASKS
    runs = [p for _, _, p in protocol.variants()] if protocol.sweep else [protocol]
    return max((estimate(p.model, TASKS[p.task_kind], p.task, RULES[p.rule_kind](p.rule), p.analysis,
                         p.training.backend) for p in runs), key=lambda e: e["memory"])


def shm_free():
    """Free bytes in /dev/shm, or None where there is none."""
    try:
        return shutil.disk_usage(SHM).free
    except OSError:
        return None


def size(n):
    gib = n / 2 ** 30
    if gib >= 100:
        return f"{gib:,.0f} GiB"
    if gib >= 1:
        return f"{gib:.3g} GiB"
    return f"{n / 2 ** 20:.3g} MiB" if n >= 2 ** 20 else f"{n / 2 ** 10:.3g} KiB"
