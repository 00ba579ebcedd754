"""One integer seed per run, split into named, independent streams.

Never use numpy's global random state: every consumer asks for its own stream by name, so that
adding a consumer does not change the numbers another one draws.
"""

import zlib

import numpy as np


def stream(seed, name):
    """A fresh ``numpy.random.Generator`` for the stream ``name`` of run ``seed``."""
    key = zlib.crc32(name.encode())
    return np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=(key,)))
