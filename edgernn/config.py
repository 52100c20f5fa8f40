"""Numba compilation options: the one place they are set.

`cache=True` writes compiled code next to the sources (``__pycache__``) so a second process
starts without recompiling. `boundscheck` stays off: every buffer range is validated when a
plan is built (`edgernn.plan.Plan.validate`), before any kernel runs. `fastmath` stays off
so results match the NumPy references bit-for-bit in order of operations; it can be turned
on per machine with ``EDGERNN_FASTMATH=1`` once its error is measured.
"""
import os

JIT_OPTIONS = dict(
    nogil=True,
    cache=os.environ.get("EDGERNN_NO_CACHE", "") != "1",
    boundscheck=False,
    fastmath=os.environ.get("EDGERNN_FASTMATH", "") == "1",
    error_model="numpy",
)


def jit(fn):
    """Compile `fn` with the project's Numba options (lazily imports numba)."""
    import numba

    return numba.njit(**JIT_OPTIONS)(fn)
