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
import io
import json
import os
import sys
import time

import numpy as np

from . import __version__
from .errors import EdgeRNNError, FrameShapeError
from .links import doc
from .profile import plain_json
from .units import PERIOD_FORMS, format_bytes, parse_period

EXIT_ERROR = 2


class CLIError(Exception):
    """A usage problem found by the command line itself (reported like an EdgeRNNError)."""


# ---------------------------------------------------------------- helpers
def _shape(shape):
    """(40,) -> '(40,)', () -> '()' : Python tuple notation, as in numpy."""
    return str(tuple(int(d) for d in shape))


_bytes = format_bytes      # one byte formatter for info, convert and the profile report (IEC: KiB)


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
    if getattr(args, "activations", None):
        opts["activations"] = args.activations
    return opts


def _load(path, args):
    from . import load
    return load(path, **load_options(args))


# ---------------------------------------------------------------- info
def _axes(model):
    """{"input", "declared", "time_axis", "batch_axis"}: the axes of the first input that edgernn
    streams as time and batch (None in a step graph, which has no time axis)."""
    from .ir.dims import Dim
    if not model.graph.inputs:
        return {"input": None, "declared": None, "time_axis": None, "batch_axis": None}
    v = model.graph.inputs[0]
    shape = tuple(v.shape or ())

    def axis(kind):                          # the axis whose symbolic size has T (kind "t") or B ("b")
        return next((a for a, d in enumerate(shape) if isinstance(d, Dim) and getattr(d, kind)), None)
    dims = [repr(d) if isinstance(d, Dim) else str(d) for d in shape]
    declared = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
    return {"input": v.name, "declared": declared, "time_axis": axis("t"), "batch_axis": axis("b")}


def cmd_info(args):
    model = _load(args.model, args)
    d = model.describe()
    axes = _axes(model)
    d.setdefault("time_axis", axes["time_axis"])
    d.setdefault("batch_axis", axes["batch_axis"])
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
    if axes["time_axis"] is not None:
        batch = f", batch axis {axes['batch_axis']}" if axes["batch_axis"] is not None else ""
        print(f"time axis: axis {axes['time_axis']} of input '{axes['input']}' {axes['declared']}{batch} "
              "(T is time, B batch; --time-axis chooses another)", file=out)
    else:
        print("time axis: none (a step graph: each call is one step)", file=out)
    section("inputs (per-frame shape)", d["inputs"])
    section("outputs (per-frame shape)", d["outputs"])
    section("state tensors (per-frame shape)", d["states"], empty="none (the model keeps no state)")
    if d["delay"] or d["flush_steps"] or d["history_bytes_per_stream"] or d["output_stride"] > 1:
        every = f", one output every {d['output_stride']} frames" if d["output_stride"] > 1 else ""
        print(f"along time: outputs lag the input by {d['delay']} frame(s) (step gives None for the first "
              f"{d['delay']}{every}), up to {d['flush_steps']} more from Stream.flush() at the end, "
              f"{_bytes(d['history_bytes_per_stream'])} of frame history per stream", file=out)
    print("state pairs (state input -> the output that becomes its next value; --state IN=OUT pairs by hand):",
          file=out)
    if not d["state_pairs"]:
        print("  none", file=out)
    for k, v in d["state_pairs"].items():
        print(f"  {k} -> {v}", file=out)
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


def cmd_convert(args):
    from .convert import convert, parse_labels
    period = parse_period(args.frame_period, what="--frame-period")
    model = convert(args.model, args.output, weights=args.weights, labels=parse_labels(args.labels),
                    frame_period=period, mean=_array_arg(args.mean, "mean"), std=_array_arg(args.std, "std"),
                    description=args.description or "", stream=args.stream, **load_options(args))
    src = os.path.getsize(args.model)
    dst = model.file.file_bytes
    print(f"wrote {args.output}: {_bytes(dst)} ({100.0 * dst / src:.1f}% of {os.path.basename(args.model)}), "
          f"weights {args.weights}")
    return 0


# ---------------------------------------------------------------- run
STDIO = "-"      # FRAMES '-' reads .npy (or .npz) bytes from stdin; -o - writes them to stdout


def _load_frames(path, key=None):
    """The frames array of a .npy file, of one array of an .npz archive (``key``), or of the
    .npy/.npz bytes on standard input (path '-')."""
    if path == STDIO:
        source = io.BytesIO(sys.stdin.buffer.read())
        name = "standard input"
        magic = source.getvalue()[:6]
        if not magic:
            raise CLIError("no frames on standard input: pipe .npy bytes, e.g. python -c \"import numpy, "
                           "sys; numpy.save(sys.stdout.buffer, frames)\" | edgernn run MODEL - -o out.npy")
    else:
        if not os.path.exists(path):
            raise FileNotFoundError(f"no frames file at {path!r}")
        source, name, magic = path, repr(path), None
        if os.path.isfile(path):
            with open(path, "rb") as f:
                magic = f.read(6)
    if magic is not None and magic != b"\x93NUMPY" and magic[:4] != b"PK\x03\x04":
        raise CLIError(f"{name} is not a .npy file (no NumPy header); save the frames with "
                       "numpy.save, shape (T, *frame_shape), float32")
    try:
        frames = np.load(source, allow_pickle=False)
    except OSError:
        raise
    except Exception as e:  # ValueError, UnpicklingError, zip errors, ...
        raise CLIError(f"{name} is not a readable .npy array file ({type(e).__name__}: {e})") from None
    if isinstance(frames, np.lib.npyio.NpzFile):
        with frames:
            return _npz_member(frames, name, key)
    if key is not None:
        raise CLIError(f"--key {key!r} picks an array of an .npz archive; {name} is one .npy array")
    return frames


def _npz_member(z, name, key):
    """The array ``key`` of an open .npz archive; without a key, its only array."""
    keys = list(z.keys())
    if key is not None and key in keys:
        return z[key]
    if key is None and len(keys) == 1:
        return z[keys[0]]
    listing = ", ".join(f"{k} {_shape(z[k].shape)} {z[k].dtype}" for k in keys) or "none"
    if key is None:
        raise CLIError(f"{name} is an .npz archive of {len(keys)} arrays ({listing}); "
                       "choose the frames with --key NAME")
    raise CLIError(f"{name} has no array {key!r}; its arrays: {listing}")


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


def _write_stdout(outputs, results, multi):
    buf = io.BytesIO()
    if multi:
        np.savez(buf, **{o.name: r for o, r in zip(outputs, results)})
    else:
        np.save(buf, results[0])
    out = getattr(sys.stdout, "buffer", None)
    if out is None:
        raise CLIError("-o - writes binary .npy data, but standard output here takes only text")
    sys.stdout.flush()
    out.write(buf.getvalue())
    out.flush()


WARM_CHUNK = 8      # frames of the first (untimed) call of `run --chunk`: reaches the matrix row blocks


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
    if args.output != STDIO and not os.path.isdir(out_dir):
        raise CLIError(f"cannot write {args.output!r}: no directory {out_dir!r}")
    where = "standard input" if args.frames == STDIO else args.frames
    frames = np.ascontiguousarray(_check_frames(_load_frames(args.frames, args.key), info, where))
    T = frames.shape[0]
    outputs = model.outputs
    multi = len(outputs) > 1

    # the first call compiles (or loads from Numba's cache) what the timed mode runs: made
    # outside the timed region, on a throwaway stream, in the same mode (a chunk: the same
    # entry point and matrix blocks as the whole file's)
    from . import compiler
    t0 = time.perf_counter()
    warm = min(T, WARM_CHUNK) if args.chunk else 1
    with compiler.subject(args.model):
        if T and args.chunk:
            model.stream().run(frames[:warm])
        elif T:
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

    dest = STDIO if args.output == STDIO else _out_path(args.output, multi)
    if dest == STDIO:                      # .npy bytes (.npz for several outputs) on stdout; the summary on stderr
        _write_stdout(outputs, results, multi)
        what = ", ".join(f"{o.name} {_shape(r.shape)}" for o, r in zip(outputs, results))
        written = f"wrote {'an .npz archive' if multi else '.npy bytes'} to standard output"
    elif multi:
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
    first = f"a chunk of {warm} frame{'s' if warm > 1 else ''}" if args.chunk else "a step"
    print(f"{T} frames -> {what}: {elapsed * 1e3:.2f} ms, {per:.1f} {us}/frame, {mode}; not included: "
          f"model load {t_load * 1e3:.0f} ms, first call {t_warm * 1e3:.0f} ms ({first} on a throwaway stream: "
          f"compiles or loads the native code); {written}",
          file=sys.stderr if dest == STDIO else sys.stdout)
    return 0


# ---------------------------------------------------------------- profile
def cmd_profile(args):
    from .profile import profile
    parse_period(args.period, what="--period")      # a bad period fails before the long run
    device = args.device
    if device is not None:                          # a bad name too
        from .devices import load_device
        device = load_device(device, devices_dir=args.devices_dir)
    for path in (args.json, args.plot):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise CLIError(f"cannot write {path!r}: its directory does not exist")
    if args.plot:
        from .plot import PlotUnavailableError
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise PlotUnavailableError("--plot needs matplotlib: pip install 'edgernn[plot]'") from None
    r = profile(args.model, period=args.period, frames=args.frames, batch=args.batch, device=device,
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
                                    f"prediction for a device. See {doc('profiling.md')}")
    model_args(pp)
    pp.add_argument("--period", default=None, metavar="T",
                    help=f"frame period: {PERIOD_FORMS} (default: the period an .ernn file stores, if any)")
    pp.add_argument("--frames", type=int, default=20000, metavar="N", help="timed steps (default 20000)")
    pp.add_argument("--warmup", type=int, default=200, metavar="N", help="warm-up steps before the timed ones, reported apart (default 200)")
    pp.add_argument("--batch", type=int, default=None, metavar="B", help="step B streams together")
    pp.add_argument("--device", default=None, metavar="NAME",
                    help="predict the step on a device profile (rpi4, rpi5, rpi3b+, rpi-zero2w, ...; or a .json path)")
    pp.add_argument("--devices-dir", default=None, metavar="DIR",
                    help="look up --device names in DIR first (*.json profiles; also $EDGERNN_DEVICES_DIR), "
                         "then in the profiles shipped with edgernn")
    pp.add_argument("--compare", action="store_true", help="also run ONNX Runtime (LiteRT for .tflite) on the same frames")
    pp.add_argument("--json", default=None, metavar="OUT.json", help="write every figure as JSON")
    pp.add_argument("--plot", default=None, metavar="OUT.png", help="write a latency histogram + series PNG (needs matplotlib)")
    pp.set_defaults(func=cmd_profile)


# ---------------------------------------------------------------- compile, cache
def cmd_compile(args):
    from . import compiler
    models = args.models or []
    for path in models:
        if not os.path.exists(path):
            raise FileNotFoundError(f"no model file at {path!r}")
    compiler.warm(models, load=lambda path: _load(path, args))
    return 0


def _cache_where():
    from . import config
    root = config.cache_root()
    if not config.JIT_OPTIONS["cache"]:
        return "caching is off (EDGERNN_NO_CACHE=1)"
    if root is None:
        return "the __pycache__ folders inside the edgernn package (the per-user folder cannot be written)"
    if os.environ.get("NUMBA_CACHE_DIR"):
        return f"{root} (NUMBA_CACHE_DIR; this edgernn's folders in it)"
    return f"{root} (the per-user default; NUMBA_CACHE_DIR moves it)"


def cmd_cache(args):
    from . import compiler
    if args.clear:
        where = _cache_where()
        n, size = compiler.clear_cache()
        print(f"removed {n} file(s), {_bytes(size)}, of compiled code: {where}")
        return 0
    root, files = compiler.cache_files()
    files = [p for p in files if compiler.is_code(p)]
    size = sum(os.path.getsize(p) for p in files if os.path.exists(p))
    print(f"cache: {_cache_where()}")
    print(f"files: {len(files)}, {_bytes(size)} of compiled code")
    old = compiler.legacy_files()
    if old:
        print(f"also {len(old)} file(s), {_bytes(sum(os.path.getsize(p) for p in old))}, cached by an earlier "
              "edgernn inside the package's __pycache__ (edgernn cache --clear removes them too)")
    if args.list:
        for p in files + old:
            print(f"  {p}")
    return 0


def add_compile_parsers(sub):
    pk = sub.add_parser("compile", help="compile the native code ahead of time (image builds, first boot)",
                        description="Compile, or find in the cache, the native code the models need: their "
                                    "kernels and every entry point (Stream.step, Stream.run, batches, threads, "
                                    "the profiler's loop); with no model, every kernel and entry point. Later "
                                    "processes load it from the cache instead of compiling for tens of seconds; "
                                    "run it on the device at first boot or as a systemd ExecStartPre, as the user "
                                    "that runs the model. Prints each item and its time. See "
                                    f"{doc('compile-cache.md')}")
    pk.add_argument("models", nargs="*", metavar="MODEL", help="model files (.onnx, .tflite or .ernn)")
    add_model_options(pk, model=False)
    pk.set_defaults(func=cmd_compile)

    pa = sub.add_parser("cache", help="show or clear the cache of compiled code",
                        description="Show where edgernn's compiled code is cached (NUMBA_CACHE_DIR, else "
                                    "$XDG_CACHE_HOME/edgernn/numba, i.e. ~/.cache/edgernn/numba), how many files "
                                    "and bytes; --clear removes them (the next run compiles again). See "
                                    f"{doc('compile-cache.md')}")
    pa.add_argument("--clear", action="store_true", help="remove edgernn's cached code")
    pa.add_argument("--list", action="store_true", help="list the files")
    pa.set_defaults(func=cmd_cache)


def add_model_options(sp, model=True):
    """The MODEL argument (unless ``model`` is False) and the options edgernn.load takes."""
    if model:
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
    sp.add_argument("--activations", choices=("float32", "int8"), default=None,
                    help="int8: quantise the inputs of int8 weight matrices per call and multiply in int8 (sdot "
                         "on a Pi 5); needs int8 weights (an .ernn converted with --weights int8, which then "
                         "stores the choice). Default: the .ernn file's choice, else float32")


# ---------------------------------------------------------------- parser
def build_parser():
    p = argparse.ArgumentParser(
        prog="edgernn",
        description="Stream recurrent models (LSTM, GRU, RNN) one frame at a time.")
    p.add_argument("--version", action="version", version=f"edgernn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    model_args = add_model_options

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
    pr.add_argument("frames", metavar="FRAMES.npy",
                    help="frames, shape (T, *frame_shape), float32: a .npy file, an .npz archive (with --key), "
                         "or - for .npy bytes on standard input")
    pr.add_argument("--key", default=None, metavar="NAME",
                    help="the array of an .npz archive that holds the frames (e.g. test_frames)")
    pr.add_argument("-o", "--output", required=True, metavar="OUT.npy",
                    help="where to save the outputs; - writes .npy bytes to standard output (the summary "
                         "then goes to standard error)")
    pr.add_argument("--chunk", action="store_true",
                    help="run all frames in one call (Stream.run) instead of one Stream.step per frame")
    pr.set_defaults(func=cmd_run)

    pc = sub.add_parser("convert", help="convert a model to a compact .ernn file for a device",
                        description="Write the prepared model (program, weights in kernel layout, "
                                    "deployment metadata) to one .ernn file; a device needs only "
                                    f"numpy, numba and edgernn to run it ({doc('format.md')}).")
    model_args(pc)
    pc.add_argument("-o", "--output", required=True, metavar="OUT.ernn", help="the file to write")
    pc.add_argument("--weights", choices=("float32", "float16", "int8"), default="float32",
                    help="weight storage: int8 (a quarter of the bytes, per-output scales), float16 "
                         "(half; decoded at load) or float32 (default)")
    pc.add_argument("--labels", metavar="A,B,..|FILE",
                    help="class names of the first output, comma-separated or a file, one per line")
    pc.add_argument("--stream", metavar="OPTIONS", default=None,
                    help="edgernn stream's signal and event options to store with the model, as one quoted "
                         "string after '=' (e.g. --stream=\"--window 400 --hop 160 --rate 16000 --features logmel "
                         "--n-mels 40 --detect\"); then `edgernn stream MODEL.ernn SOURCE` needs no others")
    pc.add_argument("--frame-period", metavar="T", help=f"time between frames: {PERIOD_FORMS}; stored in the "
                    "file, where edgernn profile takes it as the deadline")
    pc.add_argument("--mean", metavar="X,..|FILE", help="per-feature mean subtracted from each frame (in the program)")
    pc.add_argument("--std", metavar="X,..|FILE", help="per-feature std each frame is divided by (in the program)")
    pc.add_argument("--description", metavar="TEXT", help="free text stored in the file")
    pc.set_defaults(func=cmd_convert)
    add_profile_parser(sub, model_args)
    add_compile_parsers(sub)
    from .io.command import add_stream_parser
    add_stream_parser(sub, model_args)
    return p


def _value_options(parser):
    """Every option string (of the parser and its subcommands) that takes one value."""
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sp in action.choices.values():
                found |= _value_options(sp)
        elif action.option_strings and action.nargs is None:
            found.update(s for s in action.option_strings if s.startswith("--"))
    return found


def _attach_dash_values(argv, options):
    """``--period -5ms`` -> ``--period=-5ms``: argparse takes a value starting with '-' (other than
    a plain negative number) for an option and stops with "expected one argument"; given to the
    option, the value gets the option's own message ("must be positive")."""
    out = []
    for a in argv:
        if out and out[-1] in options and len(a) > 1 and a[0] == "-" and (a[1].isdigit() or a[1] in ".+"):
            out[-1] = f"{out[-1]}={a}"
        else:
            out.append(a)
    return out


def main(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(_attach_dash_values(argv, _value_options(parser)))
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
