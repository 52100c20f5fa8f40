"""Step a model over a signal's windows: the loop under ``edgernn stream``.

:func:`stream_signal` frames the samples (:mod:`.framing`), steps a Stream once per window and
yields a :class:`Step` per output: its index j, ``t`` (the end of the new samples of the window
it describes, in seconds from the start: (j + 1) s H / rate for a model with output stride s
and hop H; a model with look-ahead gives it ``Model.delay`` steps later, and the last ones
from ``Stream.flush``), the outputs by name, and the time of the step that gave it (the
model's step alone, measured around ``Stream.step``; with a front end (:mod:`.frontend`), its
features and resynthesis are in that time too; 0 for flushed outputs).
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
    audio: np.ndarray | None = None           # float32 [H] resynthesised by a front end's synthesis

    def to_json(self):
        """One JSON line: {"step": i, "t": seconds, "<output name>": [values], ...}; a value that
        is not finite is written as null (JSON has no NaN or infinity)."""
        row = {"step": self.index, "t": round(self.t, 6)}
        for name, value in self.outputs.items():
            row[name] = [x if math.isfinite(x) else None for x in np.asarray(value, np.float64).ravel().tolist()]
        return json.dumps(row, allow_nan=False)


@dataclass
class StepStats:
    """Per-step compute times against the hop's duration (the deadline); ``frontend_times``: the
    front end's share of each (features and resynthesis), when there is one."""
    hop_seconds: float
    times: list = field(default_factory=list)
    frontend_times: list = field(default_factory=list)

    def add(self, seconds, frontend_seconds=None):
        self.times.append(seconds)
        if frontend_seconds is not None:
            self.frontend_times.append(frontend_seconds)

    def report(self, signal_seconds):
        t = np.asarray(self.times) * 1e6
        if not len(t):
            return {"steps": 0}
        p50, p90, p99 = (float(np.percentile(t, q)) for q in (50, 90, 99))
        frontend = {}
        if self.frontend_times:
            f = np.asarray(self.frontend_times) * 1e6
            frontend = {"frontend_p50_us": float(np.percentile(f, 50)), "frontend_max_us": float(f.max())}
        return {**frontend, "steps": len(t), "signal_s": signal_seconds, "compute_s": float(t.sum() / 1e6),
                "real_time_factor": float(t.sum() / 1e6 / signal_seconds) if signal_seconds > 0 else None,
                "p50_us": p50, "p90_us": p90, "p99_us": p99, "max_us": float(t.max()),
                "deadline_us": self.hop_seconds * 1e6, "deadline_misses": int((t > self.hop_seconds * 1e6).sum())}


def window_shape(model, window, fields=None, frontend=None):
    """The shape the model's one signal input takes a window of ``window`` samples (of
    ``fields`` values each, for rows) in; with a ``frontend``, its ``feature_size`` values."""
    if len(model.inputs) != 1:
        names = ", ".join(i.name for i in model.inputs)
        raise FrameShapeError(f"edgernn stream feeds one signal input, but the model takes {len(model.inputs)} "
                              f"({names}); bind the others with --constant NAME=VALUE")
    shape = tuple(model.inputs[0].frame_shape)
    if frontend is not None:
        return _feature_shape(model, shape, fields, frontend)
    per_sample = 1 if fields is None else fields
    if int(np.prod(shape)) != window * per_sample:
        what = f"{window} samples" if fields is None else f"{window} line(s) of {fields} fields"
        hint = (f"pass --window {int(np.prod(shape))} (and a matching --hop)" if fields is None else
                f"each step needs {int(np.prod(shape))} values: --window {int(np.prod(shape)) // fields} lines of "
                f"{fields} fields" if int(np.prod(shape)) % fields == 0 else "the lines have the wrong number of fields")
        raise FrameShapeError(f"the model's input '{model.inputs[0].name}' takes {int(np.prod(shape))} values per "
                              f"step (shape {shape}), but a window is {what}; {hint}")
    return shape


def _feature_shape(model, shape, fields, frontend):
    if fields is not None:
        raise FrameShapeError(f"a front end (--features) takes one audio signal, but the source gives rows of {fields} "
                              "fields; leave --features out for sensor lines")
    size = int(np.prod(shape))
    if size != frontend.feature_size:
        hint = frontend.spec.options_for_size(size)
        raise FrameShapeError(f"the model's input '{model.inputs[0].name}' takes {size} values per step (shape "
                              f"{shape}), but {frontend.spec.describe()} gives {frontend.feature_size}"
                              + (f"; pass {hint}" if hint else "; choose --features and their size to match"))
    if frontend.synthesizes:
        out = model.outputs[0]
        if model.delay or model.output_stride != 1:
            raise FrameShapeError("--wav-out resynthesises each step's window from that step's output, but the model "
                                  f"gives its outputs {model.delay} step(s) late and every {model.output_stride} "
                                  "step(s); this is not built for such models")
        if int(np.prod(out.frame_shape)) != frontend.synthesis_size:
            raise FrameShapeError(f"the model's output '{out.name}' (shape {tuple(out.frame_shape)}): "
                                  + frontend.synthesis_mismatch(int(np.prod(out.frame_shape))))
    return shape


def stream_signal(model, samples, rate, window, hop, stats=None, realtime=False, fields=None, frontend=None):
    """Yield a :class:`Step` per output of the windows of ``samples`` at ``rate`` Hz: a float32
    array [N] (or [N, F], rows of ``fields`` = F values), or an iterable of such blocks as a
    live source gives them (each window is stepped as soon as its samples are in). ``stats``
    (a :class:`StepStats`) collects each step's time. ``realtime``: play the signal at its
    rate, each step waiting until its hop's last sample would have arrived (start + (i + 1) H
    / rate on the monotonic clock, so waits do not add up to a drift). ``frontend`` (a
    :class:`~edgernn.io.frontend.FrontEnd` for windows of ``window`` samples every ``hop``):
    each window becomes its features before the step, and with a synthesis each Step carries
    the resynthesised ``audio`` (the last samples: ``frontend.finish()``)."""
    shape = window_shape(model, window, fields, frontend)
    if frontend is not None:
        if (frontend.window_length, frontend.hop) != (window, hop):
            raise FrameShapeError(f"the front end takes windows of {frontend.window_length} samples every "
                                  f"{frontend.hop}, not {window} every {hop}")
        frontend.warm_up()                                  # compile (or load from the cache) before any timing
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
        frame = np.ascontiguousarray(w.reshape(shape)) if frontend is None else w
        if realtime:
            wait = start + (i + 1) * hop / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        t0 = clock()
        if frontend is None:
            y = stream.step(frame)
            spent = clock() - t0
        else:
            y, audio, spent, frontend_spent = _step_with_frontend(stream, frontend, frame, shape, clock, t0)
        if stats is not None:
            stats.add(spent, None if frontend is None else frontend_spent)
        if y is not None:
            yield Step(j, (j + 1) * per_output, dict(zip(names, y if isinstance(y, tuple) else (y,))), spent,
                       None if frontend is None or audio is None else audio.copy())
            j += 1
    rest = stream.flush()
    rest = rest if isinstance(rest, tuple) else (rest,)
    for k in range(len(rest[0])):
        yield Step(j, (j + 1) * per_output, {n: r[k] for n, r in zip(names, rest)}, 0.0)
        j += 1


def _step_with_frontend(stream, frontend, window, shape, clock, t0):
    """(outputs, resynthesised audio or None, seconds of the whole step, the front end's share)."""
    features = frontend.process(window).reshape(shape)
    t1 = clock()
    y = stream.step(features)
    t2 = clock()
    audio = None
    if frontend.synthesizes:
        audio = frontend.synthesize(y[0] if isinstance(y, tuple) else y)
    t3 = clock()
    return y, audio, t3 - t0, (t1 - t0) + (t3 - t2)
