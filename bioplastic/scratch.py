"""Temporary folders owned by a process: their names carry the owner's pid, so that whatever a
killed process left behind (``kill -9`` can be caught by nobody) is removed by the next command,
and a live process's folders are never touched.

Names: ``<prefix><pid>-<random>`` (result folders in the making: ``.NAME.tmp-<pid>-<hex>``
beside their destination; run scratch: ``/dev/shm/bioplastic-<pid>-<random>``).
"""

import os
import re
import shutil
import tempfile
from pathlib import Path

SHM = Path("/dev/shm")
SCRATCH_PREFIX = "bioplastic-"
SCRATCH = re.compile(r"^bioplastic-(\d+)-.+$")
TEMPORARY = re.compile(r"^\..+\.tmp-(\d+)-[0-9a-f]+$")


def alive(pid):
    """Whether a process ``pid`` exists (one of another user counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(folder, pattern):
    """Remove the entries of ``folder`` whose name matches ``pattern`` (its first group: the
    owner's pid) and whose owner is dead; return them."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if match and not alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def memory_folder():
    """A private scratch folder in /dev/shm owned by this process, or None where there is no
    writable tmpfs. Stale scratch of dead processes is removed first."""
    if not (SHM.is_dir() and os.access(SHM, os.W_OK)):
        return None
    remove_stale(SHM, SCRATCH)
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=SHM))


def temporary_sibling(path):
    """The name of the folder in which ``path`` is written before it is renamed into place."""
    path = Path(path)
    return path.parent / f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}"


def remove_stale_siblings(path):
    """Remove the ``.NAME.tmp-<pid>-*`` folders beside ``path`` whose writer is dead."""
    return remove_stale(Path(path).parent, TEMPORARY)
