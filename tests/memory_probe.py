"""The processes under a command, and its peak memory: the resident memory of its whole process
tree (Python, the standalone binary, the compiler) plus its scratch files in /dev/shm, sampled
together."""

import os
import subprocess
import time
from pathlib import Path

SHM = Path("/dev/shm")


def children(pid):
    """The child processes of ``pid`` (from /proc: cheap enough to poll)."""
    found = []
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(p) for p in listing.read_text().split()]
        except OSError:  # it ended meanwhile
            continue
    return found


def descendants(pid):
    """The processes under ``pid``, children first."""
    found, frontier = [], [pid]
    while frontier:
        for child in children(frontier.pop()):
            found.append(child)
            frontier.append(child)
    return found


def _rss(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _shm(pids):
    total = 0
    for pid in pids:
        for folder in SHM.glob(f"bioplastic-{pid}-*"):
            for where, _, files in os.walk(folder):  # a folder removed meanwhile is skipped
                for name in files:
                    try:
                        total += os.lstat(os.path.join(where, name)).st_size
                    except OSError:
                        continue
    return total


def peak(argv, cwd, period=0.01, timeout=600):
    """Run ``argv``; return ``(return code, peak bytes of its tree's memory plus /dev/shm)``."""
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    highest, deadline = 0, time.time() + timeout
    while process.poll() is None and time.time() < deadline:
        pids = [process.pid, *descendants(process.pid)]
        highest = max(highest, sum(_rss(p) for p in pids) + _shm(pids))
        time.sleep(period)
    if process.poll() is None:
        process.kill()
    _, err = process.communicate()
    return process.returncode, highest, err.decode(errors="replace")
