"""Temporary folders owned by a process: their names carry the owner's pid, so that whatever a
killed process left behind (``kill -9`` can be caught by nobody) is removed by the next command,
and a live process's folders are never touched.

Names: ``<prefix><pid>-<random>`` (result folders in the making: ``.NAME.tmp-<pid>-<hex>``
beside their destination; run scratch: ``/dev/shm/bioplastic-<pid>-<random>``).
"""

import os
import re
import shutil
import sys
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


def quiet_brian():
    """Brian2 keeps a debug log and a copy of the script in the temp folder and, for an uncaught
    error, asks the user to report a bug in Brian 2. A command handles its errors itself, so
    neither is wanted: drop the files and the hook (in every process that runs Brian2: the
    commands and a sweep's workers)."""
    import logging

    from brian2 import prefs
    from brian2.utils.logger import BrianLogger
    prefs.logging.file_log = False
    prefs.logging.save_script = False
    if BrianLogger.file_handler is not None:
        BrianLogger.file_handler.close()
        logging.getLogger("brian2").removeHandler(BrianLogger.file_handler)
        BrianLogger.file_handler = None
    for attribute in ("tmp_log", "tmp_script"):
        path = getattr(BrianLogger, attribute, None)
        if path:
            for leftover in (path, f"{path}.1"):
                if os.path.exists(leftover):
                    os.remove(leftover)
            setattr(BrianLogger, attribute, None)
    sys.excepthook = sys.__excepthook__
    if BrianLogger.console_handler is not None:  # Brian2's notes on its code generation are not for users
        BrianLogger.console_handler.setLevel(logging.WARNING)
