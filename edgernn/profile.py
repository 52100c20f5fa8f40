"""``edgernn.profile``: does a model meet its frame deadline, and what does a step cost?

    r = edgernn.profile("kws.onnx", period="10ms", frames=20000, device="rpi4", compare=True)
    print(r.report())          # the text report; r.to_json("out.json"); r.plot("out.png")

What is measured, in order:
1. load (import, passes, plan) and compile (the first stream and step: Numba compiles the
   kernels the model uses, or loads them from its cache), each timed once;
2. ``warmup`` steps, timed and reported apart from the rest;
3. ``frames`` steps of a fresh-state stream through the public :meth:`Stream.step`, each
   timed with ``time.perf_counter_ns`` (the Python loop between steps is not in the figures);
4. the per-op breakdown (:mod:`edgernn.breakdown`) and the per-call overhead, measured as
   ``Stream.step`` on a copy of the model whose program is empty;
5. optionally ONNX Runtime / LiteRT on the same frames (:mod:`edgernn.compare`) and a
   prediction for a device (:mod:`edgernn.devices`).

The frames are seeded standard-normal float32 (or the ``inputs`` you give), a pool of at most
1024 distinct frames cycled, the same pool for every runtime.
"""
import copy
import dataclasses
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .errors import EdgeRNNError
from .units import PeriodError, parse_period  # noqa: F401  (edgernn.profile.parse_period: the one parser)

PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9))
POOL = 1024
CHECK_STEPS = 64


class ProfileArgumentError(EdgeRNNError, ValueError):
    """An argument of :func:`profile` (frames, batch, warmup, inputs...) is not usable; a bad
    period raises :class:`edgernn.units.PeriodError`."""


STORED_PERIOD = "model.frame_period_s"


def stored_period(model):
    """Seconds between frames as the model's file states it (the .ernn metadata key
    ``model.frame_period_s``, written by ``edgernn convert --frame-period``), or None."""
    value = (getattr(model, "metadata", None) or {}).get(STORED_PERIOD)
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, np.generic):
        value = value.item()
    return parse_period(value, what=f"frame period stored in {model.source} ({STORED_PERIOD})")


# ---------------------------------------------------------------- the result
@dataclass
class ProfileResult:
    """Every figure of a profile run. Times are microseconds unless the name says otherwise."""
    model: str
    batch: object
    frames: int
    period_us: object
    latency_us: dict
    jitter_us: float
    real_time_factor: object
    deadline_misses: object
    warmup: dict
    load_ms: object
    compile_ms: float
    memory: dict
    breakdown: object = None
    compare: list = field(default_factory=list)
    device: object = None
    host: dict = field(default_factory=dict)
    period_source: object = None    # "argument", or "model.frame_period_s" (the period an .ernn file stores)
    latency_ns: np.ndarray = field(default=None, repr=False)

    def to_dict(self, samples=False):
        """The figures as a JSON-ready dict (plain Python numbers, lists and dicts; the keys are
        this class's fields). Each compared runtime keeps its figures, not its samples or
        outputs. samples=True adds ``latency_ns``, every timed step's latency in ns."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "latency_ns"}
        d["compare"] = [{k: v for k, v in c.items() if k not in ("latency_ns", "outputs")} for c in self.compare]
        if samples:
            d["latency_ns"] = self.latency_ns.tolist()
        return plain_json(d)

    def to_json(self, path=None, samples=False):
        """The figures as JSON text; written to `path` when given. samples=True adds every step's ns."""
        text = json.dumps(self.to_dict(samples), indent=2)
        if path is not None:
            with open(path, "w") as f:
                f.write(text + "\n")
        return text

    def plot(self, path):
        """A PNG with the latency histogram and the per-step series, deadline marked."""
        from .plot import plot_profile
        return plot_profile(self, path)

    def report(self, us="µs"):
        """The human-readable report ``edgernn profile`` prints (also ``str(result)``): host,
        latency percentiles, jitter, real-time factor and deadline misses against the period,
        warm-up, load and compile times, memory, the per-op breakdown, the compared runtimes
        and the device prediction when there are any. us: the microsecond symbol ("us" for
        a terminal without UTF-8)."""
        from .report import format_report
        return format_report(self, us)

    def __str__(self):
        return self.report()


def plain_json(o):
    """o with numpy scalars and arrays turned into Python numbers and lists (for json)."""
    if isinstance(o, dict):
        return {k: plain_json(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [plain_json(v) for v in o]
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return o


def latency_stats(ns):
    """p50/p90/p99/p99.9/max/min/mean/std in microseconds of an int array of nanoseconds."""
    us = np.asarray(ns, np.float64) / 1e3
    out = {k: float(np.percentile(us, q)) for k, q in PERCENTILES}
    out.update(max=float(us.max()), min=float(us.min()), mean=float(us.mean()), std=float(us.std()))
    return out


# ---------------------------------------------------------------- progress
class _Progress:
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""

    def __init__(self, total, label, enabled):
        self.total, self.label, self.enabled = total, label, enabled
        self.last = 0.0

    def update(self, done):
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.1:
            return
        self.last = now
        frac = done / max(self.total, 1)
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {done}/{self.total}")
        sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write(f"\r{self.label} [{'#' * 30}] {self.total}/{self.total}\n")
            sys.stderr.flush()


# ---------------------------------------------------------------- inputs
def _frame_pool(model, batch, n, inputs, seed):
    """List over model inputs of float32 arrays [P, (B,) *frame_shape]."""
    lead = () if batch is None else (batch,)
    if inputs is None:
        rng = np.random.default_rng(seed)
        return [rng.standard_normal((min(n, POOL),) + lead + tuple(t.frame_shape)).astype(np.float32)
                for t in model.inputs]
    arrays = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
    if len(arrays) != len(model.inputs):
        raise ProfileArgumentError(f"inputs: the model takes {len(model.inputs)} input(s), got {len(arrays)} array(s)")
    pool = []
    for a, t in zip(arrays, model.inputs):
        a = np.asarray(a)
        want = lead + tuple(t.frame_shape)
        if a.ndim != 1 + len(want) or tuple(a.shape[1:]) != want or a.shape[0] < 1:
            raise ProfileArgumentError(f"inputs for '{t.name}' have shape {a.shape}; expected (T,) + {want}")
        pool.append(np.ascontiguousarray(a, np.float32))
    return pool


# ---------------------------------------------------------------- helpers
def _peak_rss_bytes():
    try:
        import resource
    except ImportError:  # Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def _memory(model, batch):
    p = model.plan
    B = 1 if batch is None else batch
    work = int(p.work_size * 4)
    return {"weight_bytes": int(model.weight_bytes()),
            "state_bytes_per_stream": int(model.state_bytes()),
            "work_arena_bytes_per_stream": work,
            "int8_activation_copy_bytes": int(p.dot_copy_bytes),     # docs/quantization.md, Memory
            "arena_bytes": int(B * work + p.consts.nbytes + p.fparams.nbytes + p.prog.nbytes + p.dot_copy_bytes),
            "peak_rss_bytes": _peak_rss_bytes()}


def _time_steps(stream, pool, start, count, progress=None, keep=0):
    """Step `count` frames (pool[(start + t) % P]) and return (ns per step, first `keep` outputs)."""
    P = pool[0].shape[0]
    frames = [[a[(start + t) % P] for a in pool] for t in range(min(count, P))]
    lat = np.empty(count, np.int64)
    kept = []
    step = stream.step
    clock = time.perf_counter_ns
    for t in range(count):
        f = frames[t % len(frames)]
        t0 = clock()
        y = step(*f)
        lat[t] = clock() - t0
        if t < keep:
            kept.append(y if isinstance(y, tuple) else (y,))
        if progress is not None and not t & 1023:
            progress.update(t)
    return lat, kept


def call_overhead_us(model, batch, pool, steps=2000):
    """Median ns of ``Stream.step`` on a copy of the model whose program is empty: the Python
    side of a step (checks, packing, the native call, unpacking) without any op."""
    from .stream import Stream
    hollow = copy.copy(model)
    hollow.plan = dataclasses.replace(model.plan, prog=model.plan.prog[:0])
    s = Stream(hollow, batch)
    _time_steps(s, pool, 0, min(200, steps))
    lat, _ = _time_steps(s, pool, 0, steps)
    return float(np.median(lat)) / 1e3


def _host_info():
    import numba
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware")):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"machine": platform.machine(), "cpu": cpu, "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__,
            "numba_cpu_name": os.environ.get("NUMBA_CPU_NAME", "host")}


def _max_abs_diff(ours, theirs, delay=0):
    """Largest |difference| of our per-step outputs and another runtime's; with look-ahead our
    step t gives frame t - delay (the first ``delay`` steps give None)."""
    diffs = [float(np.max(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32))))
             for row_a, row_b in zip(ours[delay:], theirs) for a, b in zip(row_a, row_b)]
    return max(diffs) if diffs else None


# ---------------------------------------------------------------- the entry point
def profile(model, period=None, frames=20000, batch=None, device=None, compare=False, warmup=200,
            breakdown=True, inputs=None, seed=0, progress=None, time_axis=None, load_options=None):
    """Profile a model's streaming step; returns a :class:`ProfileResult`.

    model: a path (ONNX) or a loaded :class:`~edgernn.Model`.
    period: the frame period, seconds or a string ('10ms', '100Hz'); None takes the period an
    .ernn file stores (``model.frame_period_s``), and skips the deadline figures when there is none.
    frames: timed steps after warm-up. batch: None (one stream) or B streams stepped together.
    device: a device profile name ('rpi4') or .json path: adds a latency prediction there.
    compare: also run ONNX Runtime (and LiteRT for .tflite sources) on the same frames.
    inputs: frames to cycle, [T, (B,) *frame_shape] (a list of arrays for several inputs).
    progress: show a progress bar on stderr (None: when stderr is a terminal).
    time_axis, load_options: how a path is loaded (``load_options``: the keyword arguments of
    :func:`edgernn.load`, e.g. ``{"constants": {"sr": 16000}, "shapes": {"input": [576]}}``;
    they replace ``time_axis``).
    """
    from .model import Model
    from .stream import Stream
    period_s = parse_period(period)
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ProfileArgumentError(f"frames must be a positive integer, got {frames!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
        raise ProfileArgumentError(f"warmup must be a non-negative integer, got {warmup!r}")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1):
        raise ProfileArgumentError(f"batch must be a positive integer or None, got {batch!r}")
    frames, warmup = int(frames), int(warmup)
    batch = None if batch is None else int(batch)
    dev = None
    if device is not None:
        from .devices import load_device
        dev = load_device(device)     # fail on a bad name before the long run

    load_ms = None
    if not isinstance(model, Model):
        from . import load
        t0 = time.perf_counter()
        model = load(model, **(load_options or {"time_axis": time_axis}))
        load_ms = (time.perf_counter() - t0) * 1e3
    period_source = None if period_s is None else "argument"
    if period_s is None:
        period_s = stored_period(model)
        period_source = None if period_s is None else STORED_PERIOD
    pool = _frame_pool(model, batch, frames, inputs, seed)

    t0 = time.perf_counter()
    Stream(model, batch).step(*[a[0] for a in pool])
    compile_ms = (time.perf_counter() - t0) * 1e3

    stream = Stream(model, batch)
    warm_lat, _ = _time_steps(stream, pool, 0, warmup) if warmup else (np.zeros(0, np.int64), [])
    work_after_warmup = stream._work.copy()
    stream.reset()
    show = sys.stderr.isatty() if progress is None else bool(progress)
    bar = _Progress(frames, "profiling", show and frames >= 2000)
    lat, ours = _time_steps(stream, pool, 0, frames, bar, keep=CHECK_STEPS)
    bar.close()

    stats = latency_stats(lat)
    result = ProfileResult(
        model=model.source, batch=batch, frames=frames,
        period_us=None if period_s is None else period_s * 1e6,
        latency_us=stats, jitter_us=stats["p99"] - stats["p50"],
        real_time_factor=None if period_s is None else stats["mean"] * 1e-6 / period_s,
        deadline_misses=None if period_s is None else int(np.count_nonzero(lat > period_s * 1e9)),
        warmup={"steps": warmup, **({"first_us": warm_lat[0] / 1e3, "p50_us": float(np.median(warm_lat)) / 1e3,
                                     "max_us": warm_lat.max() / 1e3} if warmup else {})},
        load_ms=load_ms, compile_ms=compile_ms, memory=_memory(model, batch),
        host=_host_info(), period_source=period_source, latency_ns=lat)

    overhead = None
    if breakdown or dev is not None:
        overhead = call_overhead_us(model, batch, pool)
    if breakdown:
        from .breakdown import op_breakdown
        bd = op_breakdown(model, work_after_warmup)
        bd["call_overhead_us"] = overhead
        bd["step_p50_us"] = stats["p50"]
        bd["unattributed_us"] = stats["p50"] - overhead - bd["whole_us"]
        result.breakdown = bd
    if compare:
        result.compare = _compare(model, pool, frames, warmup, batch, ours)
    if dev is not None:
        result.device = _predict(model, batch, dev, overhead, period_s, stats["p50"])
    result.memory["peak_rss_bytes"] = _peak_rss_bytes()
    return result


def _compare(model, pool, frames, warmup, batch, ours):
    from .compare import run_litert, run_onnxruntime, run_onnxruntime_chunk
    out = []
    for runner in (run_onnxruntime, run_onnxruntime_chunk, run_litert):
        r = runner(model, pool, frames, warmup, batch)
        if "latency_ns" in r:
            r["latency_us"] = latency_stats(r["latency_ns"])
            r["max_abs_diff"] = _max_abs_diff(ours, r["outputs"], model.delay) if r.get("state_carried") else None
        out.append(r)
    return out


def _predict(model, batch, dev, overhead_us, period_s, measured_p50_us):
    from .devices import host_device, predict, workload_of
    host = host_device(overhead_us)
    work = workload_of(model, 1 if batch is None else batch)
    here = predict(host, work, host, period_s)
    there = predict(dev, work, host, period_s)
    there["host"] = {k: v["value"] for k, v in host.facts.items()}
    there["host_check"] = {"predicted_us": here["warm_us"], "measured_p50_us": measured_p50_us,
                           "error": here["warm_us"] / measured_p50_us - 1.0}
    return there
