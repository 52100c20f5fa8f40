"""The units edgernn reads and prints, each with one home: frame periods and byte counts.

``parse_period`` is what ``edgernn profile --period``, ``edgernn convert --frame-period``,
:func:`edgernn.profile`, :func:`edgernn.convert.convert` and the reader of the period stored in
an .ernn file (``model.frame_period_s``) use; ``format_bytes`` is what ``edgernn info`` and the
profile report print (IEC units: 1 KiB = 1024 B).
"""
import math
import numbers
import re

from .errors import EdgeRNNError

_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9}
_HZ = {"hz": 1.0, "khz": 1e3}
_PERIOD = re.compile(r"\s*([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Zµμ]*)\s*")
PERIOD_FORMS = "10ms, 0.01s, 500us or 100Hz"


class PeriodError(EdgeRNNError, ValueError):
    """A frame period that is not a positive duration (``10ms``) or rate (``100Hz``)."""


def parse_period(period, what="period"):
    """Seconds from '10ms', '10 ms', '0.01s', '500us', '100Hz', '16kHz' or a number of seconds;
    None gives None. Anything else, and any period that is not positive and finite, raises
    :class:`PeriodError` (``what`` names the argument in its message)."""
    if period is None:
        return None
    if isinstance(period, numbers.Real) and not isinstance(period, bool):
        value = float(period)
        if not value > 0 or math.isinf(value):
            raise PeriodError(f"the {what} must be positive (a number of seconds), got {period!r}")
        return value
    m = _PERIOD.fullmatch(str(period))
    if m and not float(m.group(1)) > 0:          # '-5ms', '0', '-0.01': the sign is the problem
        raise PeriodError(f"the {what} must be positive, got {period!r}")
    unit = m.group(2) if m else ""
    if not m or (unit not in _UNITS and unit.lower() not in _HZ):
        raise PeriodError(f"cannot read the {what} {period!r}; give a number with a unit: {PERIOD_FORMS}")
    value = float(m.group(1))
    seconds = value * _UNITS[unit] if unit in _UNITS else 1.0 / (value * _HZ[unit.lower()])
    if not seconds > 0 or math.isinf(seconds):
        raise PeriodError(f"the {what} {period!r} is out of range")
    return seconds


def format_bytes(n):
    """'512 B', '19,200 B (18.8 KiB)', '3,145,728 B (3.00 MiB)'; None gives '-'."""
    if n is None:
        return "-"
    n = int(n)
    if abs(n) < 1024:
        return f"{n:,} B"
    if abs(n) < 1024 ** 2:
        return f"{n:,} B ({n / 1024:.1f} KiB)"
    if abs(n) < 1024 ** 3:
        return f"{n:,} B ({n / 1024 ** 2:.2f} MiB)"
    return f"{n:,} B ({n / 1024 ** 3:.2f} GiB)"
