"""The ``edgernn`` command line.

    edgernn info MODEL [--json]                  what a model streams, and what it costs
    edgernn run MODEL FRAMES.npy -o OUT.npy      stream frames through a model, save outputs

Errors a user can cause (a missing file, a file that is not a model, frames of the wrong
shape) print ``edgernn: error: <message>`` on stderr and exit with status 2, without a
traceback.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

from . import __version__
from .errors import EdgeRNNError, FrameShapeError

EXIT_ERROR = 2


class CLIError(Exception):
    """A usage problem found by the command line itself (reported like an EdgeRNNError)."""


# ---------------------------------------------------------------- helpers
def _shape(shape):
    """(40,) -> '(40,)', () -> '()' : Python tuple notation, as in numpy."""
    return str(tuple(int(d) for d in shape))


def _bytes(n):
    n = int(n)
    if n < 1024:
        return f"{n:,} B"
    if n < 1024 * 1024:
        return f"{n:,} B ({n / 1024:.1f} KB)"
    return f"{n:,} B ({n / (1024 * 1024):.2f} MB)"


def _can_encode(stream, text):
    enc = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(enc)
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def _us(stream):
    return "µs" if _can_encode(stream, "µs") else "us"


def _load(path, time_axis):
    from . import load
    return load(path, time_axis=time_axis)


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ---------------------------------------------------------------- info
def cmd_info(args):
    model = _load(args.model, args.time_axis)
    d = model.describe()
    if args.json:
        print(json.dumps(d, indent=2, default=_json_default))
        return 0

    out = sys.stdout
    names = [n for n, _ in d["inputs"] + d["outputs"] + d["states"]]
    w = max([len(n) for n in names] + [8]) + 2

    def section(title, items, empty="none"):
        print(f"{title}:", file=out)
        if not items:
            print(f"  {empty}", file=out)
        for name, shape in items:
            print(f"  {name:<{w}} {_shape(shape)}", file=out)

    print(f"model: {d['source']}", file=out)
    section("inputs (per-frame shape)", d["inputs"])
    section("outputs (per-frame shape)", d["outputs"])
    section("state tensors (per-frame shape)", d["states"], empty="none (the model keeps no state)")
    ops = sorted(d["ops"].items(), key=lambda kv: (-kv[1], kv[0]))
    print("ops:", file=out)
    for op, count in ops:
        print(f"  {op:<{w}} x{count}", file=out)
    flops = int(d["flops_per_step"])
    rows = [
        ("parameters", f"{int(d['parameters']):,}"),
        ("FLOPs per step", f"{flops:,} ({flops / 1e6:.3f} MFLOP)"),
        ("weights", _bytes(d["weight_bytes"])),
        ("state per stream", _bytes(d["state_bytes_per_stream"])),
        ("work arena per stream", _bytes(d["work_bytes_per_stream"])),
        ("program rows", f"{int(d['program_rows'])}"),
    ]
    kw = max(len(k) for k, _ in rows) + 1
    for k, v in rows:
        print(f"{k + ':':<{kw}} {v}", file=out)
    return 0


# ---------------------------------------------------------------- run
def _load_frames(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"no frames file at {path!r}")
    if os.path.isfile(path):
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic != b"\x93NUMPY" and magic[:4] != b"PK\x03\x04":
            raise CLIError(f"{path!r} is not a .npy file (no NumPy header); save the frames with "
                           "numpy.save, shape (T, *frame_shape), float32")
    try:
        frames = np.load(path, allow_pickle=False)
    except OSError:
        raise
    except Exception as e:  # ValueError, UnpicklingError, zip errors, ...
        raise CLIError(f"{path!r} is not a readable .npy array file ({type(e).__name__}: {e})") from None
    if isinstance(frames, np.lib.npyio.NpzFile):
        keys = list(frames.keys())
        frames.close()
        raise CLIError(f"{path!r} is an .npz archive (arrays: {', '.join(keys) or 'none'}); "
                       "give one .npy file with the frames, shape (T, *frame_shape)")
    return frames


def _check_frames(frames, info, path):
    want = tuple(int(d) for d in info.frame_shape)
    expected = "('T', " + ", ".join(str(d) for d in want) + (",)" if not want else ")")
    if frames.ndim != 1 + len(want) or tuple(frames.shape[1:]) != want:
        raise FrameShapeError(
            f"frames in {path!r} have shape {tuple(frames.shape)}; input '{info.name}' expects "
            f"{expected}: T frames of shape {_shape(want)}")
    if frames.dtype == np.float32:
        return frames
    if frames.dtype.kind in "fiu":
        print(f"edgernn: note: converting frames from {frames.dtype} to float32", file=sys.stderr)
        return frames.astype(np.float32)
    raise FrameShapeError(f"frames in {path!r} have dtype {frames.dtype}; expected float32")


def _out_path(path, multi):
    """Where the outputs actually go: np.save/np.savez add .npy/.npz when missing."""
    root, ext = os.path.splitext(path)
    if multi:
        return path if ext == ".npz" else (root if ext == ".npy" else path) + ".npz"
    return path if ext == ".npy" else path + ".npy"


def cmd_run(args):
    t0 = time.perf_counter()
    model = _load(args.model, args.time_axis)
    t_load = time.perf_counter() - t0

    if len(model.inputs) != 1:
        names = ", ".join(f"'{t.name}' {_shape(t.frame_shape)}" for t in model.inputs)
        raise CLIError(f"'edgernn run' streams models with one input; this model has "
                       f"{len(model.inputs)} ({names}). Use the Python API: model.stream().step(x1, x2, ...)")
    info = model.inputs[0]
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise CLIError(f"cannot write {args.output!r}: no directory {out_dir!r}")
    frames = np.ascontiguousarray(_check_frames(_load_frames(args.frames), info, args.frames))
    T = frames.shape[0]
    outputs = model.outputs
    multi = len(outputs) > 1

    # compile (or load from Numba's cache) outside the timed region, on a throwaway stream
    t0 = time.perf_counter()
    if T:
        model.stream().step(frames[0])
    t_warm = time.perf_counter() - t0

    results = [np.empty((T,) + tuple(o.frame_shape), np.float32) for o in outputs]
    s = model.stream()
    t0 = time.perf_counter()
    if T and args.chunk:
        ys = s.run(frames)
        ys = ys if multi else (ys,)
        for r, y in zip(results, ys):
            r[...] = y
    else:
        for t in range(T):
            ys = s.step(frames[t])
            if multi:
                for r, y in zip(results, ys):
                    r[t] = y
            else:
                results[0][t] = ys
    elapsed = time.perf_counter() - t0

    dest = _out_path(args.output, multi)
    if multi:
        if dest != args.output:
            print(f"edgernn: note: the model has {len(outputs)} outputs; writing an .npz archive "
                  f"to {dest!r} instead of {args.output!r}", file=sys.stderr)
        np.savez(dest, **{o.name: r for o, r in zip(outputs, results)})
        what = ", ".join(f"{o.name} {_shape(r.shape)}" for o, r in zip(outputs, results))
        written = f"wrote {dest} ({len(outputs)} arrays, one per output name)"
    else:
        np.save(dest, results[0])
        what = f"{outputs[0].name} {_shape(results[0].shape)}"
        written = f"wrote {dest}"

    us = _us(sys.stdout)
    per = (elapsed / T * 1e6) if T else 0.0
    mode = "chunk (Stream.run)" if args.chunk else "step by step (Stream.step)"
    print(f"{T} frames -> {what}: {elapsed * 1e3:.2f} ms, {per:.1f} {us}/frame, {mode}; "
          f"model load {t_load * 1e3:.0f} ms + compile/warm-up {t_warm * 1e3:.0f} ms not included; {written}")
    return 0


# ---------------------------------------------------------------- parser
def build_parser():
    p = argparse.ArgumentParser(
        prog="edgernn",
        description="Stream recurrent models (LSTM, GRU, RNN) one frame at a time.")
    p.add_argument("--version", action="version", version=f"edgernn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    def model_args(sp):
        sp.add_argument("model", metavar="MODEL", help="an ONNX or TFLite model file")
        sp.add_argument("--time-axis", type=int, default=None, metavar="AXIS",
                        help="the time axis of the model input, when edgernn cannot find it")

    pi = sub.add_parser("info", help="show a model's inputs, outputs, state, ops and costs",
                        description="Show what a model streams (per-frame inputs, outputs and state) "
                                    "and what it costs (parameters, FLOPs and memory per step).")
    model_args(pi)
    pi.add_argument("--json", action="store_true", help="print the description as JSON")
    pi.set_defaults(func=cmd_info)

    pr = sub.add_parser("run", help="stream frames from a .npy file through a model",
                        description="Stream T frames (a .npy array of shape (T, *frame_shape)) through "
                                    "a single-input model from its initial state and save the outputs "
                                    "with a leading T axis (.npy; .npz with one array per output name "
                                    "when the model has several outputs).")
    model_args(pr)
    pr.add_argument("frames", metavar="FRAMES.npy", help="frames, shape (T, *frame_shape), float32")
    pr.add_argument("-o", "--output", required=True, metavar="OUT.npy", help="where to save the outputs")
    pr.add_argument("--chunk", action="store_true",
                    help="run all frames in one call (Stream.run) instead of one Stream.step per frame")
    pr.set_defaults(func=cmd_run)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return args.func(args)
    except (EdgeRNNError, CLIError, OSError) as e:
        msg = str(e)
        if isinstance(e, OSError) and e.filename is not None and e.strerror:
            msg = f"{e.strerror}: {e.filename!r}"
        print(f"edgernn: error: {msg}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("edgernn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
