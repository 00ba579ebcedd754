"""Registries of what users extend: rules, tasks, model kinds, neuron models, model families, backends.

A registry is a dict from a name to an entry, with :meth:`Registry.register`, which refuses to
replace an entry unless told to. It imports nothing of bioplastic, so that ``config`` can read the
choices that ``engine`` registers without importing ``engine`` (``bioplastic/__init__`` imports the
engine once, which fills them).
"""


class Registry(dict):
    """Named entries of one kind (``what`` names the kind in errors)."""

    def __init__(self, what):
        super().__init__()
        self.what = what

    def register(self, name, entry, *, override=False):
        """Add ``entry`` under ``name``; an existing different entry is replaced only with ``override``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"register: a {self.what} needs a name (got {name!r})")
        if name in self and self[name] is not entry and not override:
            old = self[name]
            where = f"{getattr(old, '__module__', '?')}.{getattr(old, '__name__', type(old).__name__)}"
            raise ValueError(f"register: the {self.what} {name!r} is registered already (by {where}); choose another "
                             f"name, or pass override=True to replace it")
        self[name] = entry
        return entry

    def get_entry(self, name):
        """The entry ``name``, or a ValueError listing the registered names."""
        if name not in self:
            raise ValueError(f"{self.what}: must be one of {', '.join(self)} (got {name!r})")
        return self[name]


FAMILIES = Registry("model family")  # name -> adapter (bioplastic.engine.families)
BACKENDS = Registry("backend")  # name -> backend class (bioplastic.engine.backends)
