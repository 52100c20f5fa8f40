"""The self-check every export runs: the source model and edgernn on the same frames.

Framework-neutral: the caller runs its source model (PyTorch now; Keras/TFLite and .ernn
exporters later) over the frames as ONE sequence from the initial state and hands over what
it produced. This module streams the exported file through edgernn one ``Stream.step`` per
frame, as a device would, and raises :class:`ExportCheckError` when any output of any frame,
or the final state, differs by more than the tolerance.

Error measure (as in docs/DESIGN's verification rule): for each output,
``max|edgernn - source| / max(1, max|source|)``, i.e. absolute for outputs of magnitude up to
1 and relative to the output's scale beyond that.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_TOLERANCE = 1e-5


class ExportCheckError(AssertionError):
    """The exported file does not compute what the source model computes. Do not deploy it."""


def scaled_error(got: np.ndarray, want: np.ndarray) -> float:
    """max|got - want| / max(1, max|want|), in float64; inf when the shapes differ."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return float("inf")
    if want.size == 0:
        return 0.0
    return float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want)))))


@dataclass
class CheckReport:
    """What a self-check compared and the largest scaled error it saw, per runtime."""
    path: str
    n_frames: int
    tolerance: float
    errors: dict = field(default_factory=dict)      # runtime -> {output or state name: error}
    skipped: dict = field(default_factory=dict)     # runtime -> why it was not run

    def worst(self, runtime: str = "edgernn") -> float:
        return max(self.errors.get(runtime, {}).values(), default=0.0)

    def summary(self) -> str:
        parts = [f"{rt} max scaled error {self.worst(rt):.1e}" for rt in self.errors]
        parts += [f"{rt} skipped ({why})" for rt, why in self.skipped.items()]
        return (f"self-check on {self.n_frames} frames, one step per frame (tolerance "
                f"{self.tolerance:g}): " + "; ".join(parts))


def compare(runtime: str, path, got: dict, want: dict, tolerance: float, report: CheckReport,
            what: str) -> None:
    """Record errors of got vs want (same keys; arrays with a leading frame axis for outputs)
    into report; raise ExportCheckError naming the first name and frame beyond tolerance."""
    errs = report.errors.setdefault(runtime, {})
    for name, ref in want.items():
        if name not in got:
            raise ExportCheckError(f"{path}: {runtime} gives no {what} named {name!r} "
                                   f"(it has {sorted(got)}); the export is wrong, do not deploy it")
        err = scaled_error(got[name], ref)
        errs[name] = err
        if err <= tolerance:
            continue
        detail = f"shape {np.shape(got[name])} vs source {np.shape(ref)}"
        if np.shape(got[name]) == np.shape(ref):
            diff = np.abs(np.asarray(got[name], np.float64) - ref)
            if what == "output":
                per_frame = diff.reshape(len(diff), -1).max(axis=1)
                detail = f"first at frame {int(np.argmax(per_frame > tolerance * max(1.0, np.abs(ref).max())))}"
            detail += f", max abs difference {diff.max():.3e}"
        raise ExportCheckError(
            f"{path}: {runtime} disagrees with the source model on {what} {name!r}: scaled error "
            f"{err:.3e} > tolerance {tolerance:g} ({detail}). The exported file does not compute "
            "what the source model computes; do not deploy it.")


def stream_edgernn(path, frames: np.ndarray) -> tuple[dict, dict]:
    """Stream frames (T, *frame_shape) through edgernn one step at a time from a fresh state:
    ({output name: (T, *out_frame_shape)}, final {state name: array})."""
    import edgernn

    model = edgernn.load(path)
    s = model.stream()
    ys = [s.step(np.ascontiguousarray(f, np.float32)) for f in frames]
    names = [o.name for o in model.outputs]
    per_output = list(zip(*ys)) if len(names) > 1 else [ys]
    return {n: np.stack(v) for n, v in zip(names, per_output)}, s.state


def check_edgernn(path, frames: np.ndarray, outputs: dict, final_state: dict | None = None,
                  tolerance: float = DEFAULT_TOLERANCE, report: CheckReport | None = None) -> CheckReport:
    """Stream the exported file through edgernn and compare with the source model.

    outputs: {output name: source output per frame, (T, *out_frame_shape)}.
    final_state: {state input name: the source's state after the last frame, per-frame shape}
    (None when the file has no explicit state). Raises ExportCheckError on disagreement."""
    import edgernn

    report = report or CheckReport(str(path), len(frames), tolerance)
    try:
        got, state = stream_edgernn(path, frames)
    except edgernn.EdgeRNNError as e:
        raise ExportCheckError(f"{path}: edgernn cannot stream the exported file: "
                               f"{type(e).__name__}: {e}") from e
    compare("edgernn", path, got, outputs, tolerance, report, "output")
    if final_state:
        compare("edgernn", path, state, final_state, tolerance, report, "final state")
    return report


def check_onnxruntime(path, frames: np.ndarray, input_name: str, state_pairs: list,
                      outputs: dict, final_state: dict | None, tolerance: float,
                      report: CheckReport) -> CheckReport:
    """Stream an ONNX file through onnxruntime the way a stateless runtime must: one call per
    frame (T=1, batch 1), feeding each call's final-state outputs into the next call's state
    inputs. Precondition: the frame input and the outputs have time and batch as their two
    leading axes, in either order (both are 1 here).

    state_pairs: [(state input name, state output name, full shape, batch axis)].
    Skipped (and noted in the report) when onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        report.skipped["onnxruntime"] = "not installed"
        return report
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(Path(path)), so, providers=["CPUExecutionProvider"])
    state = {i: np.zeros(shape, np.float32) for i, _, shape, _ in state_pairs}
    out_names = [o.name for o in sess.get_outputs()]
    ys = {n: [] for n in outputs}
    for f in frames:
        x = np.ascontiguousarray(f, np.float32)[None, None]
        res = dict(zip(out_names, sess.run(None, {input_name: x, **state})))
        for n in outputs:
            ys[n].append(res[n][0, 0])
        state = {i: res[o] for i, o, _, _ in state_pairs}
    got = {n: np.stack(v) for n, v in ys.items()}
    compare("onnxruntime", path, got, outputs, tolerance, report, "output")
    if final_state:
        squeezed = {i: np.take(state[i], 0, axis=axis) for i, _, _, axis in state_pairs}
        compare("onnxruntime", path, squeezed, final_state, tolerance, report, "final state")
    return report
