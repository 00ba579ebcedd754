"""Temporary folders owned by a process: their names carry the owner's pid, so that whatever a
killed process left behind (``kill -9`` can be caught by nobody) is removed by the next command,
and a live process's folders are never touched. Each holds a marker file (:data:`MARKER`), and
only folders holding it are ever removed: a user's folder whose name happens to match is not.

Names: ``<prefix><pid>-<random>`` (result folders in the making: ``.NAME.tmp-<pid>-<hex>``
beside their destination; run scratch: ``/dev/shm/bioplastic-<pid>-<random>``; a command's own
temporary folder, where Brian2, the compiler and the sweep's workers put their temporary files:
``$TMPDIR/bioplastic-<pid>-<random>``).
"""

import ctypes
import os
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path

SHM = Path("/dev/shm")
SCRATCH_PREFIX = "bioplastic-"
SCRATCH = re.compile(r"^bioplastic-(\d+)-.+$")
TEMPORARY = re.compile(r"^\..+\.tmp-(\d+)-[0-9a-f]+$")
MARKER = ".bioplastic-temporary"  # inside every temporary folder bioplastic makes
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


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
        if match and (entry / MARKER).is_file() and not alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


_on_disk = []  # why run files go to disk though there is a /dev/shm (empty: they go to memory)


def keep_run_files_on_disk(why):
    """From now on, :func:`memory_folder` gives None (run files go to disk); say so once."""
    if not _on_disk:
        print(f"note: {why}; the run files go to disk", file=sys.stderr, flush=True)
        _on_disk.append(why)


def memory_folder():
    """A private scratch folder in /dev/shm owned by this process, or None where there is no
    writable tmpfs (or too little of it: :func:`keep_run_files_on_disk`). Stale scratch of dead
    processes is removed first."""
    if _on_disk or not (SHM.is_dir() and os.access(SHM, os.W_OK)):
        return None
    remove_stale(SHM, SCRATCH)
    return owned_folder(SHM)


def owned_folder(parent):
    """A new folder ``bioplastic-<pid>-<random>`` in ``parent``, marked as temporary."""
    folder = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=parent))
    mark(folder)
    return folder


def mark(folder):
    """Mark ``folder`` as a temporary folder of bioplastic (only marked folders are cleaned up)."""
    (Path(folder) / MARKER).touch()


def unmark(folder):
    """Unmark ``folder`` before it is renamed into a result."""
    Path(folder, MARKER).unlink(missing_ok=True)


class private_tempdir:
    """A command's own temporary folder, made the process's ``TMPDIR`` (so Brian2's log and
    script copies, the compiler's files and a sweep's spawned workers' files all land in it);
    removed, and the old ``TMPDIR`` restored, on exit. A killed command's folder is removed by
    the next command. Does nothing where the system's temporary folder is not writable."""

    def __enter__(self):
        self.saved = (os.environ.get("TMPDIR"), tempfile.tempdir)
        system = tempfile.gettempdir()
        remove_stale(system, SCRATCH)
        try:
            self.folder = owned_folder(system)
        except OSError:
            self.folder = None
            return None
        os.environ["TMPDIR"] = str(self.folder)
        tempfile.tempdir = str(self.folder)
        return self.folder

    def __exit__(self, *exc):
        if self.folder is None:
            return
        environ, tempfile.tempdir = self.saved
        if environ is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = environ
        shutil.rmtree(self.folder, ignore_errors=True)


def die_with_parent(parent):
    """Have the kernel kill this process when its parent (pid ``parent``) dies, even by
    ``kill -9`` (Linux ``prctl``; elsewhere nothing). Called first thing in a sweep's workers;
    the standalone binary does the same in its own ``main`` (see the engine's backends)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the call: no signal will come
        os._exit(1)


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
