"""Resource ceilings, checked before anything is allocated.

A tiny hostile file can ask for a huge tensor (a ConstantOfShape of 2^28 floats, a TFLite
WHILE state of [2^31 - 1, 24], a forged .ernn size) and a caller can ask for a huge batch of
streams. Every allocation whose size comes from a model file or a caller goes through
:func:`check_bytes` first, which raises :class:`~edgernn.errors.ResourceLimitError` naming
what asked and how much, instead of letting NumPy try (seconds of page faults, then a plain
MemoryError or the OOM killer).

The ceiling is per allocation: ``MAX_BYTES`` (default 256 MiB: a Pi Zero 2 W has 512 MB in
all), set with the environment variable ``EDGERNN_MAX_BYTES`` (bytes, or with
a K/M/G suffix) or :func:`set_max_bytes` at run time.
"""
import os

from .errors import ResourceLimitError

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
DEFAULT_MAX_BYTES = 256 << 20


def parse_bytes(text):
    """'512M' -> 536870912; a plain integer is bytes. Raises ValueError on anything else."""
    t = str(text).strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in _UNITS and t[-1:] else ""
    number = t[:-1] if unit else t
    value = int(number) * _UNITS[unit]
    if value <= 0:
        raise ValueError(f"a byte ceiling must be positive, got {text!r}")
    return value


def _from_environment():
    text = os.environ.get("EDGERNN_MAX_BYTES", "")
    if not text:
        return DEFAULT_MAX_BYTES
    try:
        return parse_bytes(text)
    except ValueError:
        raise ResourceLimitError(f"EDGERNN_MAX_BYTES={text!r} is not a size; use bytes or a K/M/G suffix, "
                                 "e.g. EDGERNN_MAX_BYTES=256M") from None


MAX_BYTES = _from_environment()


def set_max_bytes(limit):
    """Set the per-allocation ceiling (bytes, or a string such as '256M'); returns the old one."""
    global MAX_BYTES
    old = MAX_BYTES
    MAX_BYTES = parse_bytes(limit) if isinstance(limit, str) else int(limit)
    if MAX_BYTES <= 0:
        MAX_BYTES = old
        raise ValueError(f"a byte ceiling must be positive, got {limit!r}")
    return old


def fmt_bytes(n):
    """Bytes for a message, in binary units: '1.0 GiB'."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def check_bytes(nbytes, what):
    """Raise ResourceLimitError when one allocation of ``nbytes`` for ``what`` (a phrase naming
    the tensor, arena or request) would exceed the ceiling."""
    nbytes = int(nbytes)
    if nbytes > MAX_BYTES or nbytes < 0:
        raise ResourceLimitError(
            f"{what} needs {nbytes:,} bytes ({fmt_bytes(nbytes)}), over edgernn's ceiling of {MAX_BYTES:,} bytes "
            f"({fmt_bytes(MAX_BYTES)}) per allocation; "
            "a model file that asks for this much is malformed or hostile. If it is genuine, raise the ceiling "
            "with EDGERNN_MAX_BYTES (e.g. EDGERNN_MAX_BYTES=2G) or edgernn.limits.set_max_bytes()")
    return nbytes


def check_elements(shape, itemsize, what):
    """check_bytes for an array of ``shape`` (ints; a negative or non-integer size is refused)
    and ``itemsize`` bytes per element; returns the element count."""
    count = 1
    for d in shape:
        d = int(d)
        if d < 0:
            raise ResourceLimitError(f"{what} has a negative size {d} in shape {list(shape)}")
        count *= d
    check_bytes(count * int(itemsize), what)
    return count
