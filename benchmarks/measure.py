"""Measuring what the benchmarks measure: the peak resident memory of the standalone binary."""

import subprocess
import time
from pathlib import Path


def measure_binary(peaks):
    """From now on, run the standalone binary as the backend does, but poll its peak resident
    memory (``VmHWM`` of /proc/PID/status, every millisecond until it exits) into ``peaks``.
    ``ru_maxrss`` would not do: Linux carries the forking Python process's size over into the child's."""
    from bioplastic.engine import backends
    original = backends.subprocess.run

    def run(command, **kwargs):
        if command[0] != "./main":
            return original(command, **kwargs)
        process = subprocess.Popen(command, cwd=kwargs.get("cwd"), env=kwargs.get("env"), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        peak = 0
        while process.poll() is None:
            try:
                status = Path(f"/proc/{process.pid}/status").read_text()
                peak = max(peak, int(status.split("VmHWM:")[1].split()[0]) * 1024)
            except (OSError, IndexError):  # exiting
                pass
            time.sleep(0.001)
        peaks.append(peak)
        return subprocess.CompletedProcess(command, process.returncode, b"")

    backends.subprocess.run = run
