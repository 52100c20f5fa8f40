"""Where a single step's tail (p99) comes from: the step against controls of the same length.

    python -m benchmarks.tail_latency [lstm2x128] [--weights float32] [--calls 6000]

Every row is timed by the same loop as benchmarks/perf.py (perf_counter_ns around each call,
after warm-up calls) and reports p50, p99, p99/p50, the share of calls slower than 1.5x p50
and their median extra time, and the longest burst of such calls in a row:
- the model's ``Stream.step`` (one of exporters/synthetic.py's benchmark models);
- the same step with the cache flushed before every call (4 MiB written, untimed): what a
  step costs when its weights come from L3 instead of L2;
- a compute-only loop as long as the step (a dependent multiply-add chain, no memory);
- a read of as many bytes as the model's weights (a sum over a float32 buffer);
- a read of a quarter of those bytes, four times over (the same work, from L2).

The controls are plain Numba loops (compiled here with fastmath so the sums vectorise; they
are measuring sticks, not edgernn kernels). If the read of the weights' bytes shows the
step's tail and the compute-only loop and the in-L2 read do not, the tail comes with reading
that many bytes per call on this machine, not with the step's code.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import edgernn  # noqa: E402
from benchmarks.report import timed  # noqa: E402
from exporters.synthetic import SHAPES, named_model  # noqa: E402

FLUSH_BYTES = 4 << 20


def _controls():
    import numba

    @numba.njit(fastmath=True, cache=False)
    def spin(n):
        x = 1.0
        for _ in range(n):
            x = x * 1.0000001 + 1e-9
        return x

    @numba.njit(fastmath=True, cache=False)
    def read(a, reps):
        s = np.float32(0.0)
        for _ in range(reps):
            for i in range(a.size):
                s += a[i]
        return s

    return spin, read


def timed_us(fn, calls, warm=200, before=None):
    """Per-call µs of ``calls`` calls fn(k) (perf.py's loop, benchmarks.report.timed)."""
    return timed(fn, range(calls), warm, before) * 1e6


def longest_run(mask):
    """The most consecutive True values in a boolean array."""
    best = run = 0
    for m in mask:
        run = run + 1 if m else 0
        best = max(best, run)
    return best


def summary(ts):
    p50, p99 = np.percentile(ts, 50), np.percentile(ts, 99)
    is_slow = ts > 1.5 * p50
    slow = ts[is_slow]
    return {"p50_us": float(p50), "p99_us": float(p99), "p99_over_p50": float(p99 / p50),
            "slow_share": float(slow.size / ts.size), "slow_extra_us": float(np.median(slow) - p50) if slow.size else 0.0,
            "longest_burst": longest_run(is_slow)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", default="lstm2x128", choices=list(SHAPES))
    ap.add_argument("--weights", default="float32", choices=["float32", "int8"])
    ap.add_argument("--calls", type=int, default=6000)
    a = ap.parse_args(argv)
    m = edgernn.load(named_model(a.model), weights=a.weights)
    s = m.stream()
    frames = np.random.default_rng(0).standard_normal((a.calls + 200, m._in_width)).astype(np.float32)
    it = iter(range(10 ** 9))

    def step(_):
        s.step(frames[next(it) % len(frames)])

    flush_buf = np.zeros(FLUSH_BYTES, np.uint8)

    def flush():
        flush_buf[::64] += 1

    spin, read = _controls()
    rows = [("Stream.step", summary(timed_us(step, a.calls)))]
    rows.append(("Stream.step, cache flushed before each call", summary(timed_us(step, a.calls, before=flush))))
    p50 = rows[0][1]["p50_us"]
    n = 1000
    while np.median(timed_us(lambda _: spin(n), 50, warm=5)) < p50:
        n = int(n * 1.25) + 1
    rows.append((f"compute only, as long as the step ({n} FMAs in a chain)", summary(timed_us(lambda _: spin(n), a.calls))))
    nbytes = m.weight_bytes()
    whole = np.ones(max(1, nbytes // 4), np.float32)
    quarter = np.ones(max(1, nbytes // 16), np.float32)
    rows.append((f"read of the weights' bytes ({nbytes / 1024:.0f} KiB)", summary(timed_us(lambda _: read(whole, 1), a.calls))))
    rows.append((f"read of a quarter of them, 4 times ({nbytes / 4096:.0f} KiB)",
                 summary(timed_us(lambda _: read(quarter, 4), a.calls))))
    print(f"{a.model} ({a.weights} weights, {nbytes / 1024:.0f} KiB): {a.calls} calls each")
    print(f"  {'':<58}{'p50 us':>8}{'p99 us':>8}{'p99/p50':>9}{'>1.5x p50':>11}{'extra us':>10}{'burst':>7}")
    for what, r in rows:
        print(f"  {what:<58}{r['p50_us']:>8.2f}{r['p99_us']:>8.2f}{r['p99_over_p50']:>9.2f}"
              f"{r['slow_share'] * 100:>10.2f}%{r['slow_extra_us']:>10.1f}{r['longest_burst']:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
