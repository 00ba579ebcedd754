"""Declared parameters of a spec (Nengo style): a frozen dataclass whose fields carry their
default, unit, description and check. One machinery validates every spec, builds it from a
protocol table, and lists it for ``bioplastic list``.
"""

import copy
import dataclasses
import math
from dataclasses import dataclass, field

from brian2.units.fundamentalunits import Quantity

from .errors import SpecError
from .units import format_quantity, parse_quantity


def param(default, doc, *, unit=None, kind=float, check=None, choices=None, element=int):
    """Declare one spec parameter.

    Parameters
    ----------
    default : object
        Default value (a Brian2 quantity when ``unit`` is given).
    doc : str
        One line for ``bioplastic list``.
    unit : brian2 unit, optional
        The dimensions the value must have; strings such as ``"10 ms"`` are parsed.
    kind : type
        ``float``, ``int``, ``bool``, ``str`` or ``list`` (a list of int; with ``unit``, a list of
        quantities such as ``["10 ms", "85 ms"]``).
    check : callable, optional
        ``check(value) -> str | None``: the requirement that was not met, or None.
    choices : sequence of str, optional
        The valid values of a string parameter.
    element : type
        ``int`` or ``float``: what a ``list`` without a unit holds.
    """
    meta = dict(doc=doc, unit=unit, kind=kind, check=check, choices=choices, element=element)
    if isinstance(default, (list, Quantity)):  # unhashable defaults need a factory
        return field(default_factory=lambda: copy.copy(default), metadata=meta)
    return field(default=default, metadata=meta)


def positive(value):
    return None if value > 0 else "must be > 0"


def non_negative(value):
    return None if value >= 0 else "must be >= 0"


def layer_sizes(sizes):
    """The check of a ``sizes`` list: input first, at least two layers, none empty."""
    if len(sizes) < 2:
        return "must list at least an input and an output layer"
    if any(n <= 0 for n in sizes):
        return "every layer size must be > 0"
    return None


def fraction(value):
    """The check of a per-step or per-trial decay factor: in [0, 1)."""
    return None if 0 <= value < 1 else "must be in [0, 1)"


def at_least(bound):
    return lambda value: None if value >= bound else f"must be >= {bound}"


def params(spec_class):
    """The declared parameters of a spec class, as ``dataclasses.Field`` objects."""
    return [f for f in dataclasses.fields(spec_class) if "doc" in f.metadata]


def _coerce(f, value, key):
    """Convert and check one value; raise SpecError naming ``key``."""
    meta = f.metadata
    kind, unit = meta["kind"], meta["unit"]
    if kind is list and unit is not None:
        if not isinstance(value, list):
            raise SpecError(key, f"must be a list of quantities, like [\"10 {unit!s}\"]", value)
        value = [parse_quantity(v, unit, f"{key}[{n}]") for n, v in enumerate(value)]
        for n, v in enumerate(value):
            if not math.isfinite(float(v / unit)):
                raise SpecError(f"{key}[{n}]", "must be finite", format_quantity(v))
    elif unit is not None:
        value = parse_quantity(value, unit, key)
        if not math.isfinite(float(value / unit)):
            raise SpecError(key, "must be finite", format_quantity(value))
    elif kind is bool:
        if not isinstance(value, bool):
            raise SpecError(key, "must be true or false", value)
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(key, "must be an integer", value)
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(key, "must be a number", value)
        value = float(value)
        if not math.isfinite(value):
            raise SpecError(key, "must be finite", value)
    elif kind is str:
        if not isinstance(value, str):
            raise SpecError(key, "must be a string", value)
        if meta["choices"] and value not in meta["choices"]:
            raise SpecError(key, f"must be one of {', '.join(meta['choices'])}", value)
    elif kind is list:
        numbers = (int,) if meta["element"] is int else (int, float)
        if not isinstance(value, list) or not all(isinstance(v, numbers) and not isinstance(v, bool) for v in value):
            raise SpecError(key, f"must be a list of {'integers' if meta['element'] is int else 'numbers'}", value)
        value = [meta["element"](v) for v in value]
        if not all(math.isfinite(v) for v in value):
            raise SpecError(key, "must hold finite numbers", value)
    else:  # pragma: no cover - a programming error in a spec declaration
        raise TypeError(f"unknown parameter kind {kind!r}; valid: bool, int, float, str, list")
    problem = meta["check"](value) if meta["check"] else None
    if problem:
        raise SpecError(key, problem, format_quantity(value) if isinstance(value, Quantity) else value)
    return value


def validate(spec):
    """Check every declared parameter of a spec instance (called from ``__post_init__``)."""
    owner = type(spec).__name__
    for f in params(type(spec)):
        value = _coerce(f, getattr(spec, f.name), f"{owner}.{f.name}")
        object.__setattr__(spec, f.name, value)


def from_table(spec_class, table, path, ignore=("kind",)):
    """Build ``spec_class`` from a protocol table; errors name ``path.key``.

    Unknown keys are errors that list the valid keys.
    """
    known = {f.name: f for f in params(spec_class)}

    def where(key):
        return f"{path}.{key}" if path else key

    for key in table:
        if key not in known and key not in ignore:
            raise SpecError(where(key), f"unknown key; valid keys: {', '.join(sorted(known))}")
    values = {}
    for key, f in known.items():
        if key in table:
            values[key] = _coerce(f, table[key], where(key))
    try:
        return spec_class(**values)
    except SpecError as exc:  # cross-field checks in __post_init__ name the class; re-root them
        attr = exc.key.split(".", 1)[-1] if exc.key else ""
        raise SpecError(where(attr) if attr else path, exc.message, exc.got) from None


def _written(value):
    if isinstance(value, Quantity):
        return format_quantity(value)
    if isinstance(value, list):
        return [_written(v) for v in value]
    return value


def to_table(spec):
    """The spec as a TOML-ready dict (quantities written back as strings)."""
    return {f.name: _written(getattr(spec, f.name)) for f in params(type(spec))}


def toml_literal(value):
    """``value`` as it is written in a TOML file (quantities as strings: ``"10.0 ms"``)."""
    value = _written(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    return repr(value)


def describe(spec_class):
    """Rows ``(name, default as TOML, doc, choices)`` for ``bioplastic list``."""
    rows = []
    for f in params(spec_class):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        rows.append((f.name, toml_literal(default), f.metadata["doc"], f.metadata["choices"]))
    return rows


__all__ = ["dataclass", "param", "positive", "non_negative", "fraction", "at_least", "layer_sizes", "params", "validate",
           "from_table", "to_table", "describe", "toml_literal"]
