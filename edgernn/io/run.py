"""Step a model over a signal's windows: the loop under ``edgernn stream``.

:func:`stream_signal` frames the samples (:mod:`.framing`), steps a Stream once per window and
yields a :class:`Step` per output: its index j, ``t`` (the end of the new samples of the window
it describes, in seconds from the start: (j + 1) s H / rate for a model with output stride s
and hop H; a model with look-ahead gives it ``Model.delay`` steps later, and the last ones
from ``Stream.flush``), the outputs by name, and the time of the step that gave it (the
model's step alone, measured around ``Stream.step``; 0 for flushed outputs).
:class:`StepStats` sums those times into what a real-time user asks: latency percentiles, the
real-time factor (compute time / signal time) and the hops whose step took longer than the
hop lasts (deadline misses).
"""
import json
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import FrameShapeError
from .framing import Framer


@dataclass
class Step:
    index: int
    t: float
    outputs: dict
    seconds: float

    def to_json(self):
        """One JSON line: {"step": i, "t": seconds, "<output name>": [values], ...}; a value that
        is not finite is written as null (JSON has no NaN or infinity)."""
        row = {"step": self.index, "t": round(self.t, 6)}
        for name, value in self.outputs.items():
            row[name] = [x if math.isfinite(x) else None for x in np.asarray(value, np.float64).ravel().tolist()]
        return json.dumps(row, allow_nan=False)


@dataclass
class StepStats:
    """Per-step compute times against the hop's duration (the deadline)."""
    hop_seconds: float
    times: list = field(default_factory=list)

    def add(self, seconds):
        self.times.append(seconds)

    def report(self, signal_seconds):
        t = np.asarray(self.times) * 1e6
        if not len(t):
            return {"steps": 0}
        p50, p90, p99 = (float(np.percentile(t, q)) for q in (50, 90, 99))
        return {"steps": len(t), "signal_s": signal_seconds, "compute_s": float(t.sum() / 1e6),
                "real_time_factor": float(t.sum() / 1e6 / signal_seconds) if signal_seconds > 0 else None,
                "p50_us": p50, "p90_us": p90, "p99_us": p99, "max_us": float(t.max()),
                "deadline_us": self.hop_seconds * 1e6, "deadline_misses": int((t > self.hop_seconds * 1e6).sum())}


def window_shape(model, window, fields=None):
    """The shape the model's one signal input takes a window of ``window`` samples (of
    ``fields`` values each, for rows) in."""
    if len(model.inputs) != 1:
        names = ", ".join(i.name for i in model.inputs)
        raise FrameShapeError(f"edgernn stream feeds one signal input, but the model takes {len(model.inputs)} "
                              f"({names}); bind the others with --constant NAME=VALUE")
    shape = tuple(model.inputs[0].frame_shape)
    per_sample = 1 if fields is None else fields
    if int(np.prod(shape)) != window * per_sample:
        what = f"{window} samples" if fields is None else f"{window} line(s) of {fields} fields"
        hint = (f"pass --window {int(np.prod(shape))} (and a matching --hop)" if fields is None else
                f"each step needs {int(np.prod(shape))} values: --window {int(np.prod(shape)) // fields} lines of "
                f"{fields} fields" if int(np.prod(shape)) % fields == 0 else "the lines have the wrong number of fields")
        raise FrameShapeError(f"the model's input '{model.inputs[0].name}' takes {int(np.prod(shape))} values per "
                              f"step (shape {shape}), but a window is {what}; {hint}")
    return shape


def stream_signal(model, samples, rate, window, hop, stats=None, realtime=False, fields=None):
    """Yield a :class:`Step` per output of the windows of ``samples`` at ``rate`` Hz: a float32
    array [N] (or [N, F], rows of ``fields`` = F values), or an iterable of such blocks as a
    live source gives them (each window is stepped as soon as its samples are in). ``stats``
    (a :class:`StepStats`) collects each step's time. ``realtime``: play the signal at its
    rate, each step waiting until its hop's last sample would have arrived (start + (i + 1) H
    / rate on the monotonic clock, so waits do not add up to a drift)."""
    shape = window_shape(model, window, fields)
    framer = Framer(window, hop, fields)
    stream = model.stream()
    names = [o.name for o in model.outputs]
    blocks = [samples] if isinstance(samples, np.ndarray) else samples
    clock = time.perf_counter
    if realtime:                     # compile (or load from the cache) before the clock starts
        stream.step(np.zeros(shape, np.float32))
        stream.reset()
    start = time.monotonic()
    per_output = model.output_stride * hop / rate
    j = 0

    def windows():
        for block in blocks:
            yield from framer.push(block)
        yield from framer.finish()
    for i, w in enumerate(windows()):
        frame = np.ascontiguousarray(w.reshape(shape))
        if realtime:
            wait = start + (i + 1) * hop / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        t0 = clock()
        y = stream.step(frame)
        spent = clock() - t0
        if stats is not None:
            stats.add(spent)
        if y is not None:
            yield Step(j, (j + 1) * per_output, dict(zip(names, y if isinstance(y, tuple) else (y,))), spent)
            j += 1
    rest = stream.flush()
    rest = rest if isinstance(rest, tuple) else (rest,)
    for k in range(len(rest[0])):
        yield Step(j, (j + 1) * per_output, {n: r[k] for n, r in zip(names, rest)}, 0.0)
        j += 1
