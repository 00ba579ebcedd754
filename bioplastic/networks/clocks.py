"""Clocks whose order is the same in every process, so that a cached standalone build is reused.

Brian2 starts a network's clocks in the order of a Python set. With the default hash (the
object's address) that order changes from process to process, and the generated ``main.cpp``
changes with it: every new process (a sweep worker, each ``bioplastic run``) compiled it again.
A :class:`NamedClock` hashes by its name, and every network here builds its clocks as such.
"""

import zlib

from brian2 import Clock


class NamedClock(Clock):
    """A ``Clock`` whose hash follows from its name."""

    dt, dt_ = Clock.dt, Clock.dt_  # Brian2 looks for settable properties in the class's own __dict__

    def __hash__(self):
        # Brian2 hashes a new object once before it has a name (a weak reference keeps that hash),
        # and renames a clock called "clock" while it sits in sets: the first name's hash is kept.
        cached = self.__dict__.get("_name_hash")
        if cached is not None:
            return cached
        name = self.__dict__.get("_name")
        if not name:
            return object.__hash__(self)
        self.__dict__["_name_hash"] = zlib.crc32(name.encode())
        return self.__dict__["_name_hash"]


class SharedClocks:
    """One clock per ``dt`` for the code that runs on a clock of its own: a standalone binary checks
    every clock at every step, so fifteen clocks of one trial's period cost more than one."""

    def __init__(self):
        self.clocks = {}

    def __call__(self, dt):
        """The clock of period ``dt`` (None: the group's clock)."""
        if dt is None:
            return None
        key = int(round(float(dt) * 1e12))  # picoseconds: a name that is the same in every process
        if key not in self.clocks:
            self.clocks[key] = NamedClock(dt, name=f"every_{key}ps_clock")
        return self.clocks[key]
