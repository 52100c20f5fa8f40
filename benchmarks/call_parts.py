"""What a ``Stream.step`` call costs besides the model: its parts, each timed alone.

    python -m benchmarks.call_parts [--calls 50000]

The model is benchmarks/perf.py's call-floor model (one Relu on 13 inputs), so the step is
almost all call. Each row is the best of 15 rounds of ``--calls`` calls in a plain loop (no
per-call clock; the rows take turns round by round), in ns per call:
- ``Stream.step``: the whole call;
- the native entry alone (``engine.step_frame_at``'s entry point with the stream's handle,
  as the step calls it: ``Stream.step.native_call``);
- ``np.empty`` of the output, as the step makes it;
- a Python function with the step's signature and frame checks, doing nothing else;
- the entry point of a Numba function with three and with eight 1-D array arguments that does
  nothing, compiled with edgernn's options (``nogil`` on) and with the GIL kept: what unboxing
  an array argument and releasing the GIL cost;
- one ``time.perf_counter_ns()`` read, which every per-call time in perf.py includes once.

The loop's own cost (a call of a no-op lambda) is subtracted from every row.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import edgernn  # noqa: E402
from benchmarks.models import call_floor_model  # noqa: E402
from benchmarks.report import jit_uncached  # noqa: E402

N_IN = 13
ROUNDS = 15


def per_call_ns(fns, calls):
    """For each fn: the best of ROUNDS rounds of ``calls`` calls of fn(), ns per call. The
    rounds take turns (every fn once per round), so a burst of the host's other work slows
    one round of every row, not every round of one."""
    best = [float("inf")] * len(fns)
    for _ in range(ROUNDS):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            for _ in range(calls):
                fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return [b / calls * 1e9 for b in best]


def empty_entries():
    """{(array arguments, nogil): entry point} of do-nothing Numba functions."""
    def three(a, b, c):
        c[0] = a[0]

    def eight(a, b, c, d, e, f, g, h):
        c[0] = a[0]
    v = np.zeros(4, np.float32)
    out = {}
    for fn, n in ((three, 3), (eight, 8)):
        for nogil in (True, False):
            jitted = jit_uncached(fn, nogil=nogil)
            jitted(*[v] * n)
            out[n, nogil] = jitted.overloads[jitted.signatures[0]].entry_point
    return out


def measure(calls):
    s = edgernn.load(call_floor_model(N_IN), time_axis=0).stream()
    x = np.zeros(N_IN, np.float32)
    m = s.model
    native, handle, _ = s.step.native_call
    y = np.empty(m._out_width, np.float32)
    shape, f32, ndarray, empty, clock = (N_IN,), np.dtype(np.float32), np.ndarray, np.empty, time.perf_counter_ns

    def checks_only(x=None, *more):
        if not more and type(x) is ndarray and x.dtype is f32 and x.shape == shape:
            return None

    v = np.zeros(4, np.float32)
    entries = empty_entries()
    rows = [("Stream.step (the whole call)", lambda: s.step(x)),
            ("native entry, with the stream's handle", lambda: native(handle, x, y)),
            ("np.empty of the output", lambda: empty((m._out_width,), f32)),
            ("Python call and frame checks", lambda: checks_only(x))]
    for n in (3, 8):
        for nogil in (True, False):
            e = entries[n, nogil]
            args = [v] * n
            rows.append((f"empty Numba entry, {n} arrays, {'GIL released' if nogil else 'GIL kept'}",
                         lambda e=e, args=args: e(*args)))
    rows.append(("perf_counter_ns()", lambda: clock()))
    loop, *ns = per_call_ns([lambda: None] + [fn for _, fn in rows], calls)
    return [(what, t - loop) for (what, _), t in zip(rows, ns)], loop


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=50_000)
    a = ap.parse_args(argv)
    rows, loop = measure(a.calls)
    print(f"ns per call, best of {ROUNDS} x {a.calls} calls, less the loop's own {loop:.1f} ns")
    for what, ns in rows:
        print(f"  {what:<48}{ns:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
