"""Turn strings such as ``"20 ms"`` into Brian2 quantities, and strip units at the table boundary."""

import re

import brian2.units.allunits as allunits
from brian2.units.fundamentalunits import DimensionMismatchError, Quantity, get_dimensions

from .errors import SpecError

# Units a protocol may name. Kept explicit so that a string is never evaluated as code.
_UNITS = {
    short: getattr(allunits, full)
    for short, full in dict(s="second", second="second", ms="msecond", us="usecond", ns="nsecond",
                            Hz="hertz", kHz="khertz", V="volt", volt="volt", mV="mvolt", uV="uvolt",
                            A="amp", amp="amp", nA="namp", pA="pamp", ohm="ohm", Mohm="Mohm",
                            Gohm="Gohm", S="siemens", siemens="siemens", nS="nsiemens",
                            uS="usiemens", F="farad", farad="farad", pF="pfarad", nF="nfarad").items()
}
_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z]+)(?:\s*\^\s*([-+]?(?:\d+\.?\d*|\.\d+)))?\s*$")


def parse_quantity(value, unit, key="value"):
    """Parse ``value`` (a string like ``"20 ms"`` or a Quantity) into a quantity with the dimensions of ``unit``.

    Raises
    ------
    SpecError
        If the string cannot be read, names an unknown unit, or has the wrong dimensions.
    """
    if isinstance(value, Quantity):
        quantity = value
    elif isinstance(value, str):
        match = _QUANTITY.match(value)
        if not match:
            raise SpecError(key, f"must be a number with a unit, like '10 {unit!s}'", value)
        number, name, power = match.groups()
        if name not in _UNITS:
            raise SpecError(key, f"unknown unit {name!r}; known units: {', '.join(sorted(_UNITS))}", value)
        quantity = float(number) * (_UNITS[name] ** float(power) if power else _UNITS[name])  # "0.3 Hz^0.5"
    else:
        raise SpecError(key, f"must be a quantity with a unit, like '10 {unit!s}'", value)
    if get_dimensions(quantity) != get_dimensions(unit):
        raise SpecError(key, f"must have the dimensions of {unit!s}", value)
    return quantity


def strip(quantity, unit):
    """The plain float of ``quantity`` expressed in ``unit`` (for tables: name the column after the unit)."""
    try:
        return float(quantity / unit)
    except DimensionMismatchError as exc:  # pragma: no cover - a programming error, not user input
        raise ValueError(f"cannot express {quantity} in {unit}") from exc


def format_quantity(quantity):
    """A string that :func:`parse_quantity` reads back, e.g. ``"10.0 ms"`` (``"3600.0 s"`` from 1 s on)."""
    if get_dimensions(quantity) == get_dimensions(_UNITS["s"]) and abs(float(quantity)) >= 1:
        return f"{float(quantity)!r} s"
    for name in ("ms", "mV", "Hz", "nA", "nS", "pF", "Mohm"):
        if get_dimensions(quantity) == get_dimensions(_UNITS[name]):
            return f"{float(quantity / _UNITS[name])!r} {name}"
    if get_dimensions(quantity) == get_dimensions(_UNITS["Hz"] ** 0.5):
        return f"{float(quantity / _UNITS['Hz'] ** 0.5)!r} Hz^0.5"
    return str(quantity)
