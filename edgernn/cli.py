"""The ``edgernn`` command line.

    edgernn info MODEL [--json]                  what a model streams, and what it costs
    edgernn run MODEL FRAMES.npy -o OUT.npy      stream frames through a model, save outputs
    edgernn convert MODEL -o OUT.ernn [--weights int8|float16|float32] [metadata options]
    edgernn profile MODEL --period 10ms          step latency, deadline, breakdown, memory
    edgernn stream MODEL SPEECH.wav --window W   a recording window by window: JSON lines, segments

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
from .profile import plain_json

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


def _pairs(items, option, parse):
    """{name: parse(value)} from repeated NAME=VALUE options."""
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CLIError(f"{option} takes NAME=VALUE, got {item!r}")
        try:
            out[name] = parse(value)
        except ValueError:
            raise CLIError(f"{option} {item!r}: cannot read {value!r}") from None
    return out


def _number(text):
    return int(text) if text.strip().lstrip("+-").isdigit() else float(text)


def _sizes(text):
    return [None if d.strip().lower() in ("b", "batch", "none", "") else int(d) for d in text.split(",")]


def load_options(args):
    """The keyword arguments of edgernn.load that the model options give."""
    opts = {"time_axis": getattr(args, "time_axis", None)}
    for key, option, parse in (("constants", "--constant", _number), ("shapes", "--shape", _sizes),
                               ("states", "--state", str)):
        values = _pairs(getattr(args, key, None), option, parse)
        if values:
            opts[key] = values
    if getattr(args, "step", False):
        opts["step"] = True
    return opts


def _load(path, args):
    from . import load
    return load(path, **load_options(args))


# ---------------------------------------------------------------- info
def cmd_info(args):
    model = _load(args.model, args)
    d = model.describe()
    if args.json:
        print(json.dumps(plain_json(d), indent=2))
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
    print("kind: " + ("step graph (one call per step, state tensors kept in the stream)" if d["mode"] == "step"
                      else "sequence graph (one frame of its time axis per step)"), file=out)
    if d["bound_constants"]:
        print("bound constants: " + ", ".join(f"{k}={v}" for k, v in d["bound_constants"].items()), file=out)
    section("inputs (per-frame shape)", d["inputs"])
    section("outputs (per-frame shape)", d["outputs"])
    section("state tensors (per-frame shape)", d["states"], empty="none (the model keeps no state)")
    if d["delay"] or d["flush_steps"] or d["history_bytes_per_stream"] or d["output_stride"] > 1:
        every = f", one output every {d['output_stride']} frames" if d["output_stride"] > 1 else ""
        print(f"along time: outputs lag the input by {d['delay']} frame(s) (step gives None for the first "
              f"{d['delay']}{every}), up to {d['flush_steps']} more from Stream.flush() at the end, "
              f"{_bytes(d['history_bytes_per_stream'])} of frame history per stream", file=out)
    if d["mode"] == "step" and d["state_pairs"]:
        print("state pairs (input -> the output that is its next value): "
              + ", ".join(f"{k} -> {v}" for k, v in d["state_pairs"].items()), file=out)
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
    if "file" in d:
        _print_file_facts(d["file"], out)
    return 0


def _print_file_facts(f, out):
    print(f".ernn file: format version {f['format_version']}, {_bytes(f['file_bytes'])}, "
          f"checksum {f['checksum']}, weights {'mapped in place' if f['weights_mapped_in_place'] else 'decoded at load'}",
          file=out)
    print("metadata:", file=out)
    for k, v in f["metadata"].items():
        text = ", ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v) if isinstance(v, list) else str(v)
        print(f"  {k} = {text if len(text) <= 100 else text[:97] + '...'}", file=out)
    print(f"tensors ({len(f['tensors'])}):", file=out)
    nw = max([len(t["name"]) for t in f["tensors"]] + [4]) + 2
    for t in f["tensors"]:
        print(f"  {t['name']:<{nw}} {t['dtype']:<8} {_shape(t['shape']):<14} {t['bytes']:>10,} B", file=out)


# ---------------------------------------------------------------- convert
def _array_arg(text, what):
    """Comma-separated numbers, or a .npy / text file of them."""
    if text is None:
        return None
    if os.path.exists(text):
        return np.load(text) if text.endswith(".npy") else np.loadtxt(text, dtype=np.float32, ndmin=1)
    try:
        return np.array([float(x) for x in text.split(",")], np.float32)
    except ValueError:
        raise CLIError(f"--{what} must be comma-separated numbers or a file (.npy or text), got {text!r}") from None


def _labels_arg(text):
    if text is None:
        return None
    if os.path.exists(text):
        with open(text, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    return [x.strip() for x in text.split(",")]


def cmd_convert(args):
    from .convert import convert, parse_period
    period = parse_period(args.frame_period) if args.frame_period else None
    model = convert(args.model, args.output, weights=args.weights, labels=_labels_arg(args.labels),
                    frame_period=period, mean=_array_arg(args.mean, "mean"), std=_array_arg(args.std, "std"),
                    description=args.description or "", **load_options(args))
    src = os.path.getsize(args.model)
    dst = model.file.file_bytes
    print(f"wrote {args.output}: {_bytes(dst)} ({100.0 * dst / src:.1f}% of {os.path.basename(args.model)}), "
          f"weights {args.weights}")
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
    model = _load(args.model, args)
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

    parts = [[] for _ in outputs]          # per output: arrays with a leading frame axis

    def keep(ys, one_frame):
        if ys is None:                     # a model with look-ahead: this frame's output is not due yet
            return
        for part, y in zip(parts, ys if multi else (ys,)):
            part.append(y[None] if one_frame else y)

    s = model.stream()
    t0 = time.perf_counter()
    if T and args.chunk:
        keep(s.run(frames), False)
    else:
        for t in range(T):
            keep(s.step(frames[t]), True)
    elapsed = time.perf_counter() - t0
    if T and model.flush_steps:            # the frames file is a whole utterance: its last outputs too
        keep(s.flush(), False)
    results = [np.concatenate(p) if p else np.empty((0,) + tuple(o.frame_shape), np.float32)
               for p, o in zip(parts, outputs)]

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


# ---------------------------------------------------------------- profile
def cmd_profile(args):
    from .profile import parse_period, profile
    parse_period(args.period)                       # a bad period fails before the long run
    for path in (args.json, args.plot):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise CLIError(f"cannot write {path!r}: its directory does not exist")
    if args.plot:
        from .plot import PlotUnavailableError
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise PlotUnavailableError("--plot needs matplotlib: pip install 'edgernn[plot]'") from None
    r = profile(args.model, period=args.period, frames=args.frames, batch=args.batch, device=args.device,
                compare=args.compare, warmup=args.warmup, load_options=load_options(args))
    print(r.report(_us(sys.stdout)))
    if args.json:
        r.to_json(args.json)
        print(f"wrote {args.json}")
    if args.plot:
        r.plot(args.plot)
        print(f"wrote {args.plot}")
    return 0


def add_profile_parser(sub, model_args):
    pp = sub.add_parser("profile", help="time the streaming step: latency, deadline, breakdown, memory",
                        description="Step the model frame by frame (Stream.step) on seeded random frames and "
                                    "report latency percentiles, jitter, real-time factor and deadline misses, "
                                    "a per-op breakdown, memory, and optionally ONNX Runtime beside it and a "
                                    "prediction for a device. See docs/profiling.md.")
    model_args(pp)
    pp.add_argument("--period", default=None, metavar="T", help="frame period: 10ms, 0.01s, 500us or 100Hz")
    pp.add_argument("--frames", type=int, default=20000, metavar="N", help="timed steps (default 20000)")
    pp.add_argument("--warmup", type=int, default=200, metavar="N", help="warm-up steps before the timed ones, reported apart (default 200)")
    pp.add_argument("--batch", type=int, default=None, metavar="B", help="step B streams together")
    pp.add_argument("--device", default=None, metavar="NAME",
                    help="predict the step on a device profile (rpi4, rpi5, rpi3b+, rpi-zero2w, ...; or a .json path)")
    pp.add_argument("--compare", action="store_true", help="also run ONNX Runtime (LiteRT for .tflite) on the same frames")
    pp.add_argument("--json", default=None, metavar="OUT.json", help="write every figure as JSON")
    pp.add_argument("--plot", default=None, metavar="OUT.png", help="write a latency histogram + series PNG (needs matplotlib)")
    pp.set_defaults(func=cmd_profile)


# ---------------------------------------------------------------- parser
def build_parser():
    p = argparse.ArgumentParser(
        prog="edgernn",
        description="Stream recurrent models (LSTM, GRU, RNN) one frame at a time.")
    p.add_argument("--version", action="version", version=f"edgernn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    def model_args(sp):
        sp.add_argument("model", metavar="MODEL", help="a model file (.onnx, .tflite or .ernn)")
        sp.add_argument("--time-axis", type=int, default=None, metavar="AXIS",
                        help="the time axis of the model input, when edgernn cannot find it")
        sp.add_argument("--constant", dest="constants", action="append", metavar="NAME=VALUE",
                        help="bind an input that is a setting, e.g. --constant sr=16000 (repeatable)")
        sp.add_argument("--shape", dest="shapes", action="append", metavar="NAME=D,..",
                        help="sizes of a step graph's input the file leaves open, e.g. --shape input=576 "
                             "(the frame) or input=B,576 (repeatable)")
        sp.add_argument("--state", dest="states", action="append", metavar="IN=OUT",
                        help="pair a state input with the output that is its next value (repeatable)")
        sp.add_argument("--step", action="store_true",
                        help="the file is one step with explicit state inputs and outputs (a step graph)")

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

    pc = sub.add_parser("convert", help="convert a model to a compact .ernn file for a device",
                        description="Write the prepared model (program, weights in kernel layout, "
                                    "deployment metadata) to one .ernn file; a device needs only "
                                    "numpy, numba and edgernn to run it (docs/format.md).")
    model_args(pc)
    pc.add_argument("-o", "--output", required=True, metavar="OUT.ernn", help="the file to write")
    pc.add_argument("--weights", choices=("float32", "float16", "int8"), default="float32",
                    help="weight storage: int8 (a quarter of the bytes, per-output scales), float16 "
                         "(half; decoded at load) or float32 (default)")
    pc.add_argument("--labels", metavar="A,B,..|FILE",
                    help="class names of the first output, comma-separated or a file, one per line")
    pc.add_argument("--frame-period", metavar="DURATION", help="time between frames, e.g. 10ms")
    pc.add_argument("--mean", metavar="X,..|FILE", help="per-feature mean subtracted from each frame (in the program)")
    pc.add_argument("--std", metavar="X,..|FILE", help="per-feature std each frame is divided by (in the program)")
    pc.add_argument("--description", metavar="TEXT", help="free text stored in the file")
    pc.set_defaults(func=cmd_convert)
    add_profile_parser(sub, model_args)
    from .io.command import add_stream_parser
    add_stream_parser(sub, model_args)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return args.func(args)
    except BrokenPipeError:          # `edgernn info x | head`: the reader left; nothing to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
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
