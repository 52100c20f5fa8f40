"""edgernn against ONNX Runtime and LiteRT, one thread each, same models and inputs, one run.

    python benchmarks/perf.py [--frames 3000] [--json benchmarks/results/perf.json]

Models (exporters/synthetic.py, torch-style random weights): GRU 1x37 on 13 inputs, LSTM
2x128 on 40 inputs + Dense(12), GRU 2x128 + Dense(12), LSTM 3x256 on 64 inputs + Dense(12).
edgernn runs each with float32 weights, int8 weights, and int8 weights with int8 activations
("int8 act": ``activations="int8"``, docs/quantization.md); ONNX Runtime runs the float32 ONNX file with
intra/inter-op threads 1, its state fed back through the call (the file has state inputs and
outputs); LiteRT (num_threads=1) runs benchmarks/models/<model>.tflite when that file exists
(made by exporters/make_benchmark_tflite.py), its state kept in variable tensors.

Modes:
- single frame per call: p50, p99 and max of each step's wall time (perf_counter_ns around
  the call, after a warm-up), over --frames calls or as many more as fill MIN_SECONDS;
  ``edgernn out=`` is float32's ``Stream.step(x, out=y)`` into one caller's array (no
  allocation) and ``edgernn step()`` the same stream type's ``step(x)``, each on a stream of
  its own and called from a lambda alike (the harness passes one argument), so their ratio
  compares the two calls and nothing else;
- a chunk of 100 frames per call, per frame;
- B = 1, 8, 64 streams stepped together: frames per second; B = 64 also with threads=2 (the
  streams split in two blocks on two cores); ONNX Runtime stepping the same 64 streams as one
  batch in one call (a file made with batch 64, the 64 states fed back through the call),
  timed interleaved with edgernn's batches;
- the floor: numpy's BLAS sgemv over every weight matrix of one step ([gates*H, inputs+H]
  per layer, the dense head), timed the same way: how long reading the weights once takes.
The runtimes a ratio compares are timed interleaved: single frames (edgernn float32 and int8,
ONNX Runtime, LiteRT, the floor) in ROUNDS blocks that take turns, chunks (edgernn, ONNX
Runtime) the same way, and the batch sizes with each other. On a shared host a neighbour's
burst then slows every runtime alike instead of one of them.
Start-up: a fresh process loads the model and steps once with the Numba cache warm, and with
EDGERNN_NO_CACHE=1 (a first compile, as on a fresh machine).

Bounds, measured in the same run, for the targets a machine may not allow:
- the call floor: Stream.step of a one-op model (Relu): what any step costs in Python and
  dispatch; no single-frame ratio can beat ORT / (call floor), and ORT / (call floor +
  engine compute) estimates the best there is (an estimate: both terms count the engine's
  fixed cost of a call, tens of ns);
- the GEMM peak: numpy's sgemm (one thread, 512 x 512), the most FLOP/s this core gives; B=64
  can be at most peak / (B=1 GFLOP/s) times faster than B=1, and at most peak / (ORT's
  batch-64 GFLOP/s) times faster than ORT's batch-64 call (above 1, "2 x ORT / peak" says a
  2x lead would need more than the peak);
- the engine's dense kernel in cache (the 256 x 256 probe of edgernn.devices), float32 and
  int8 weights, B=1: int8 cannot take less than FLOP / (int8 rate) per step;
- the tail: the BLAS floor's own p99/p50, a call reading the same bytes in the same run
  (benchmarks/tail_latency.py sets a step's tail against controls of the same length);
- the chunk: the recurrent passes (R h, one frame at a time) at the in-cache B=1 rate and
  every other FLOP at the sgemm peak, cells and copies free: no chunk can be faster.
``--from-json PATH`` prints a saved run's tables and targets again, measuring nothing.

``--anchor CMD``: a native implementation to hold edgernn against in the same run (the issue's
"native anchor", e.g. RTNeural built beside the project; no such code is in this repository).
CMD is a shell command run with the model's name appended (gru1x37, lstm2x128, gru2x128,
lstm3x256), right before and right after that model is measured; it prints one JSON object
per line, ``{"backend": NAME, "models": {MODEL: {"median_us": MICROSECONDS PER STEP}}}``
(one line per backend it built). The report takes, per model, the fastest backend's mean of
its two runs, and sets edgernn's single-frame p50 (float32, int8) against it.
BLAS runs single-threaded (OPENBLAS_NUM_THREADS=1, set before numpy loads), as does everything.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import edgernn  # noqa: E402
from benchmarks.report import machine, timed, write_json  # noqa: E402
from exporters.synthetic import SHAPES, named_model  # noqa: E402

MODELS = list(SHAPES)
TFLITE = ROOT / "benchmarks" / "models"
CHUNK = 100
BATCHES = (1, 8, 64)
THREADS = 2             # B = 64 is also stepped with Stream(batch=64, threads=THREADS)
ROUNDS = 5              # blocks per runtime in the interleaved timing (interleaved())
WARM = 100              # untimed calls before each block of single frames
MIN_SECONDS = 0.5       # single frames: each runtime is timed for at least this long (calls_for())
MAX_CALLS = 200_000


def stats(ts):
    return {"p50_us": float(np.percentile(ts, 50) * 1e6), "p99_us": float(np.percentile(ts, 99) * 1e6),
            "max_us": float(ts.max() * 1e6)}


# ---------------------------------------------------------------- runners
# Each runner gives callables; the timing of the runtimes that a ratio compares is interleaved.
def interleaved(runners, warm, rounds=ROUNDS):
    """Per-call seconds of every runner ({name: (fn, items)}: fn(item) per call), timed in
    ``rounds`` blocks that take turns: each runner's items are cut into ``rounds`` blocks, and
    round r times block r of every runner, the order rotating from round to round; each
    block starts with ``warm`` untimed calls (the runner before it has filled the cache with
    its own data). A machine that slows down for a while (a neighbour on a shared host) then
    slows every runtime alike, and the ratios of one run stay fair."""
    names = list(runners)
    blocks = {k: np.array_split(np.arange(len(items)), rounds) for k, (_, items) in runners.items()}
    parts = {k: [] for k in names}
    for r in range(rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            fn, items = runners[k]
            parts[k].append(timed(fn, items[blocks[k][r]], warm=warm))
    return {k: np.concatenate(v) for k, v in parts.items()}


def calls_for(fn, frames):
    """Single-frame calls to time: len(frames), or more for a fast runtime, enough to fill
    MIN_SECONDS (at most MAX_CALLS). A p99 over 3,000 calls of a 1 µs step spans 4 ms of
    wall time, and the few disturbances of the host that fall inside it then decide it."""
    t = float(np.median(timed(fn, frames[:50], warm=10)))
    return max(len(frames), min(MAX_CALLS, int(MIN_SECONDS / max(t, 1e-9))))


def cycled(frames, n):
    """n frames, frames repeated."""
    return frames[np.arange(n) % len(frames)]


#: what edgernn runs each model with: a key of the tables, and edgernn.load's arguments
EDGERNN_WEIGHTS = {"float32": {}, "int8": {"weights": "int8"},
                   "int8 act": {"weights": "int8", "activations": "int8"}}


def edgernn_runner(path, weights):
    """(model, stream) of the file with these weights (a key of EDGERNN_WEIGHTS)."""
    m = edgernn.load(path, **EDGERNN_WEIGHTS[weights])
    return m, m.stream()


def batch_frames(frames, b):
    """[n, b, F] frames for b streams (each stream sees the same frames), n enough for timing."""
    fb = np.ascontiguousarray(np.broadcast_to(frames[:, None, :], (len(frames), b, frames.shape[1])))
    return fb[:max(200, len(frames) // b)]


def edgernn_extras(m, s, frames, ort_batch=None):
    """What only edgernn has: the engine's time without Python, and batched streams (B=1, 8,
    64 and 64 on THREADS threads, interleaved with each other and, when given, with
    ``ort_batch``: ONNX Runtime's step of BATCHES[-1] streams in one call)."""
    from edgernn.breakdown import time_rows
    engine_us = time_rows(m.plan, s._work.copy(), m.plan.prog) * 1e6     # the program alone, no Python
    runners = {}
    for b, threads in [(b, 1) for b in BATCHES] + [(BATCHES[-1], THREADS)]:
        sb = m.stream(batch=b, threads=threads)
        runners[b if threads == 1 else f"{b}x{threads}"] = (sb.step, batch_frames(frames, b))
    if ort_batch is not None:
        runners["ort"] = (ort_batch, batch_frames(frames, BATCHES[-1]))
    batched = {}
    for k, ts in interleaved(runners, warm=4).items():
        t = float(np.median(ts))
        batched[k] = {"step_us": t * 1e6, "frames_per_s": (k if isinstance(k, int) else BATCHES[-1]) / t}
    ort = batched.pop("ort", None)
    return {"engine_us": engine_us, "batched": batched, "weight_bytes": m.weight_bytes(),
            "flops_per_step": m.flops_per_step()}, ort


def ort_runner(path, batch=1):
    """ONNX Runtime's step: one call per frame (or chunk) of ``batch`` streams (a file made
    with that batch size), the state fed back through it."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feeds = {i.name: np.zeros([1, batch, i.shape[2]], np.float32) for i in sess.get_inputs() if i.name != "x"}
    state_names = [o.name for o in sess.get_outputs()[1:]]
    back = [n.replace("T_", "0_") for n in state_names]

    def step(f, _feeds=feeds):
        _feeds["x"] = f.reshape(-1, batch, f.shape[-1])
        outs = sess.run(None, _feeds)
        for k, v in zip(back, outs[1:]):
            _feeds[k] = v
        return outs[0]

    return step


def litert_runner(path):
    """LiteRT, one frame per invoke: LSTM files keep their state in variable tensors; GRU
    files take it as inputs h0_<l> and give it back as outputs h_<l>, fed back every call."""
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    sig = it.get_signature_runner()
    ins = {k: d["index"] for k, d in sig.get_input_details().items()}
    outs = {k: d["index"] for k, d in sig.get_output_details().items()}
    x_index, y_index = ins.pop("x"), outs.pop("y")
    shape = tuple(sig.get_input_details()["x"]["shape"])
    del sig                 # a live signature runner holds the interpreter's buffers: invoke() refuses
    feed_back = [(outs[f"h_{k[3:]}"], ins[k]) for k in ins]          # h_<l> -> h0_<l>
    for k in ins.values():
        it.set_tensor(k, np.zeros_like(it.get_tensor(k)))

    def step(f):
        it.set_tensor(x_index, f.reshape(shape))
        it.invoke()
        for src, dst in feed_back:
            it.set_tensor(dst, it.get_tensor(src))
        return it.get_tensor(y_index)

    return step


def floor_runner(name):
    """(step, bytes): numpy sgemv over each weight matrix of one step, as one call."""
    cell, layers, hidden, inputs, dense = SHAPES[name]
    g = {"lstm": 4, "gru": 3}[cell]
    rng = np.random.default_rng(0)
    mats = [rng.standard_normal((g * hidden, (inputs if l == 0 else hidden) + hidden)).astype(np.float32)
            for l in range(layers)]
    if dense:
        mats.append(rng.standard_normal((dense, hidden)).astype(np.float32))
    vecs = [rng.standard_normal(w.shape[1]).astype(np.float32) for w in mats]

    def step(_):
        for w, v in zip(mats, vecs):
            w @ v

    return step, int(sum(w.nbytes for w in mats))


def measure_model(name, path, batch_path, frames, litert_version):
    """Every runtime on one model: single frames and chunks timed interleaved (module doc);
    ``batch_path``: the same model for BATCHES[-1] streams, for ONNX Runtime."""
    edg = {w: edgernn_runner(path, w) for w in EDGERNN_WEIGHTS}
    ort_step = ort_runner(path)
    floor_step, floor_bytes = floor_runner(name)
    singles = {f"edgernn {w}": (s.step, frames) for w, (_, s) in edg.items()}
    m32 = edg["float32"][0]
    into = np.empty(m32.outputs[0].frame_shape, np.float32)
    plain, into_step = m32.stream().step, m32.stream().step
    singles["edgernn step()"] = (lambda f: plain(f), frames)
    singles["edgernn out="] = (lambda f: into_step(f, out=into), frames)
    singles["ort"] = (ort_step, frames)
    for suffix, key in (("", "litert"), ("_int8", "litert int8")):
        tfl = TFLITE / f"{name}{suffix}.tflite"
        if litert_version and tfl.exists():
            singles[key] = (litert_runner(tfl), frames)
    singles["floor"] = (floor_step, frames)
    singles = {k: (fn, cycled(items, calls_for(fn, items))) for k, (fn, items) in singles.items()}
    single = {k: stats(ts) for k, ts in interleaved(singles, warm=WARM).items()}
    chunks = frames[:len(frames) // CHUNK * CHUNK].reshape(-1, CHUNK, frames.shape[1])
    chunked = {f"edgernn {w}": (s.run, chunks) for w, (_, s) in edg.items()}
    chunked["ort"] = (ort_step, chunks)
    per_frame = {k: float(np.median(ts) / CHUNK * 1e6) for k, ts in interleaved(chunked, warm=1).items()}
    runs = {"edgernn": {}, "edgernn step()": {"single": single["edgernn step()"]},
            "edgernn out=": {"single": single["edgernn out="]},
            "ort": {"single": single["ort"], "chunk_per_frame_us": per_frame["ort"]},
            "floor": {"single": single["floor"], "bytes": floor_bytes}}
    for w, (m, s) in edg.items():
        extras, ort_batched = edgernn_extras(m, s, frames, ort_runner(batch_path, BATCHES[-1]) if w == "float32" else None)
        e = {"single": single[f"edgernn {w}"], "chunk_per_frame_us": per_frame[f"edgernn {w}"], **extras}
        if ort_batched is not None:
            runs["ort"]["batched"] = {BATCHES[-1]: ort_batched}
        flops, fps = e["flops_per_step"], e["batched"]
        e["gflops"] = {"chunk": flops / e["chunk_per_frame_us"] / 1e3,
                       **{f"B={b}": flops * fps[b]["frames_per_s"] / 1e9 for b in BATCHES}}
        runs["edgernn"][w] = e
    for key in ("litert", "litert int8"):
        if key in single:
            runs[key] = {"single": single[key]}
    return runs


def run_anchor(command, name):
    """{backend: microseconds per step} of the native anchor's command on model ``name``."""
    import json
    import shlex
    out = subprocess.run(f"{command} {shlex.quote(name)}", shell=True, capture_output=True, text=True, check=True).stdout
    lines = [json.loads(line) for line in out.splitlines() if line.strip().startswith("{")]
    return {d["backend"]: float(d["models"][name]["median_us"]) for d in lines if name in d.get("models", {})}


def anchor_summary(before, after):
    """The anchor's row of a model: each backend's two runs, and the fastest backend's mean."""
    runs = {k: [before[k], after[k]] for k in before if k in after}
    if not runs:
        raise SystemExit("--anchor: the command printed no time for this model in one of its two runs")
    best = min(runs, key=lambda k: sum(runs[k]))
    return {"runs_us": runs, "backend": best, "step_us": sum(runs[best]) / 2}


def bounds(frames):
    """The call floor (us), GEMM peak and in-cache dense kernel rates (GFLOP/s); module doc."""
    from benchmarks.models import call_floor_model
    from edgernn.devices import measure_engine_gflops
    s = edgernn.load(call_floor_model(frames.shape[1]), time_axis=0).stream()
    call_us = stats(timed(s.step, frames))["p50_us"]
    a, b = (np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32) for _ in range(2))
    a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.5:
        a @ b
        n += 1
    peak = 2 * 512 ** 3 * n / (time.perf_counter() - t0) / 1e9
    return {"call_floor_us": call_us, "sgemm_peak_gflops": peak,
            "dense_f32_gflops": measure_engine_gflops(False), "dense_int8_gflops": measure_engine_gflops(True)}


def startup(path, cold):
    code = ("import time, numpy as np; t = time.perf_counter(); import edgernn; "
            f"m = edgernn.load({str(path)!r}); m.stream().step(np.zeros(m.inputs[0].frame_shape, np.float32)); "
            "print(time.perf_counter() - t)")
    env = dict(os.environ, EDGERNN_NO_CACHE="1") if cold else dict(os.environ)
    env.pop("EDGERNN_NO_CACHE", None) if not cold else None
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- report
def targets(r):
    """(description, ratio, limit, holds) for each target of the performance issue."""
    def single(model, who, weights="float32"):
        runs = r["models"][model]
        return (runs["edgernn"][weights] if who == "edgernn" else runs[who])["single"]["p50_us"]
    rows = []
    bd = r["bounds"]
    for model, k in (("gru1x37", 10), ("lstm2x128", 3)):
        ratio = single(model, "ort") / single(model, "edgernn")
        rows.append((f"{model}: ORT / edgernn single frame (float32)", ratio, f">= {k}", ratio >= k))
        rows.append(("  bound: ORT / call floor (an engine taking no time)", single(model, "ort") / bd["call_floor_us"],
                     "report", None))
        est = single(model, "ort") / (bd["call_floor_us"] + r["models"][model]["edgernn"]["float32"]["engine_us"])
        rows.append(("  estimate: ORT / (call floor + engine compute)", est, "report", None))
    for model in MODELS:
        if "edgernn out=" in r["models"][model]:
            ratio = single(model, "edgernn out=") / single(model, "edgernn step()")
            rows.append((f"{model}: step(x, out=y) / step(x) single frame", ratio, "<= 1", ratio <= 1.0))
    for model in ("lstm2x128", "lstm3x256"):
        ratio = single(model, "edgernn") / single(model, "floor")
        rows.append((f"{model}: edgernn / BLAS floor", ratio, "<= 1.3", ratio <= 1.3))
    for model in MODELS:
        s = r["models"][model]["edgernn"]["float32"]["single"]
        ratio = s["p99_us"] / s["p50_us"]
        rows.append((f"{model}: p99 / p50 (float32)", ratio, "<= 1.5", ratio <= 1.5))
        f = r["models"][model]["floor"]["single"]
        rows.append(("  the BLAS floor's p99 / p50 (same bytes per call)", f["p99_us"] / f["p50_us"], "report", None))
    for model in MODELS:
        ratio = single(model, "edgernn", "int8") / single(model, "edgernn")
        limit = 0.5 if model == "lstm3x256" else 1.0
        rows.append((f"{model}: int8 / float32 single frame", ratio, f"<= {limit}", ratio <= limit))
        if model == "lstm3x256":
            e = r["models"][model]["edgernn"]
            least = e["int8"]["flops_per_step"] / (bd["dense_int8_gflops"] * 1e3) / single(model, "edgernn")
            rows.append(("  bound: FLOP / in-cache int8 kernel rate, / float32", least, "report", None))
    for model in MODELS:          # reported: int8 activations against int8 weights alone
        if "int8 act" in r["models"][model]["edgernn"]:
            ratio = single(model, "edgernn", "int8 act") / single(model, "edgernn", "int8")
            rows.append((f"{model}: int8 act / int8 single frame", ratio, "report", None))
    for model in MODELS:
        runs = r["models"][model]
        ratio = runs["edgernn"]["float32"]["chunk_per_frame_us"] / runs["ort"]["chunk_per_frame_us"]
        rows.append((f"{model}: edgernn / ORT, 100-frame chunk per frame", ratio, "<= 1", ratio <= 1))
        cell, layers, hidden, _, _ = SHAPES[model]
        recurrent = layers * 2 * {"lstm": 4, "gru": 3}[cell] * hidden * hidden        # R h per frame
        flops = runs["edgernn"]["float32"]["flops_per_step"]
        least = (recurrent / bd["dense_f32_gflops"] + (flops - recurrent) / bd["sgemm_peak_gflops"]) / 1e3
        rows.append(("  bound: R h at B=1 rate + rest at peak, / ORT", least / runs["ort"]["chunk_per_frame_us"],
                     "report", None))
    for model in MODELS:
        b = r["models"][model]["edgernn"]["float32"]["batched"]
        ratio = b[64]["frames_per_s"] / b[1]["frames_per_s"]
        rows.append((f"{model}: frames/s B=64 / B=1", ratio, ">= 8", ratio >= 8))
        if model != "gru1x37":                  # the B=64 targets: the 128- and 256-unit models
            share = r["models"][model]["edgernn"]["float32"]["gflops"]["B=64"] / bd["sgemm_peak_gflops"]
            rows.append(("  B=64 GFLOP/s / sgemm peak", share, ">= 0.75", share >= 0.75))
        ort_b = r["models"][model]["ort"].get("batched", {}).get(64)
        if ort_b:
            vs_ort = b[64]["frames_per_s"] / ort_b["frames_per_s"]
            rows.append(("  B=64 frames/s: edgernn / ORT's batch-64 call", vs_ort, ">= 2", vs_ort >= 2))
            ort_share = r["models"][model]["edgernn"]["float32"]["flops_per_step"] * ort_b["frames_per_s"] / 1e9 \
                / bd["sgemm_peak_gflops"]
            rows.append(("  bound: 2 x ORT's batch-64 GFLOP/s / sgemm peak", 2 * ort_share, "report", None))
            act = r["models"][model]["edgernn"].get("int8 act", {}).get("batched", {}).get(64)
            if act:                             # reported: int8 x int8 is not the float32 the target means
                rows.append(("  int8 act B=64 frames/s / ORT's (float32)", act["frames_per_s"] / ort_b["frames_per_s"],
                             "report", None))
        key = f"64x{THREADS}"
        with_threads = b[key]["frames_per_s"] / b[1]["frames_per_s"]
        rows.append((f"  with threads={THREADS}: B=64 / B=1", with_threads, "report", None))
        ceiling = bd["sgemm_peak_gflops"] / r["models"][model]["edgernn"]["float32"]["gflops"]["B=1"]
        rows.append(("  bound: sgemm peak / B=1 GFLOP/s", ceiling, "report", None))
    for model in MODELS:          # the native anchor (--anchor), when the run had one
        a = r["models"][model].get("anchor")
        if not a:
            continue
        limit = 2.0 if model == "gru1x37" else 1.2
        ratio = single(model, "edgernn") / a["step_us"]
        rows.append((f"{model}: edgernn / native anchor ({a['backend']}), float32", ratio, f"<= {limit}",
                     ratio <= limit))
        if model == "lstm3x256":
            ratio = single(model, "edgernn", "int8") / a["step_us"]
            rows.append((f"{model}: edgernn int8 / native anchor float32", ratio, "<= 0.5", ratio <= 0.5))
            if "int8 act" in r["models"][model]["edgernn"]:
                ratio = single(model, "edgernn", "int8 act") / a["step_us"]
                rows.append(("  int8 act / native anchor float32", ratio, "report", None))
    warm = r["startup_s"]["cached"]
    rows.append(("start-up with the Numba cache (s)", warm, "< 1", warm < 1))
    for model in MODELS:          # reported, no target: LiteRT in its fastest streaming form
        for weights, key in (("float32", "litert"), ("int8", "litert int8")):
            if key in r["models"][model]:
                ratio = r["models"][model][key]["single"]["p50_us"] / single(model, "edgernn", weights)
                rows.append((f"{model}: LiteRT / edgernn single frame ({weights})", ratio, "report", None))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=3000,
                    help="timed single-frame calls per runtime (at least: more for fast ones, calls_for())")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "perf.json"))
    ap.add_argument("--from-json", metavar="PATH",
                    help="measure nothing: print the tables and targets of a run saved with --json")
    ap.add_argument("--anchor", metavar="CMD",
                    help="a native anchor's timing command, run before and after each model (module doc)")
    args = ap.parse_args(argv)
    if args.from_json:
        import json
        report = json.loads(Path(args.from_json).read_text())
        for runs in report["models"].values():        # JSON object keys are strings: B = 1, 8, 64
            for e in list(runs["edgernn"].values()) + [runs["ort"]]:
                if "batched" in e:
                    e["batched"] = {int(k) if k.isdigit() else k: v for k, v in e["batched"].items()}
        print_report(report)
        return
    report = measure(args.frames, args.anchor)
    print_report(report)
    write_json(report, args.json)


def measure(n_frames, anchor=None):
    import onnx
    report = {"machine": machine(), "models": {}}
    litert_version = report["machine"]["ai_edge_litert"]
    with tempfile.TemporaryDirectory() as d:
        for name in MODELS:
            path, batch_path = Path(d) / f"{name}.onnx", Path(d) / f"{name}_batch{BATCHES[-1]}.onnx"
            onnx.save(named_model(name, state_io=True), path)
            onnx.save(named_model(name, state_io=True, batch=BATCHES[-1]), batch_path)
            frames = np.random.default_rng(1).standard_normal((n_frames, SHAPES[name][3])).astype(np.float32)
            before = run_anchor(anchor, name) if anchor else None
            report["models"][name] = measure_model(name, path, batch_path, frames, litert_version)
            if anchor:
                report["models"][name]["anchor"] = anchor_summary(before, run_anchor(anchor, name))
            print(f"measured {name}", file=sys.stderr)
        report["bounds"] = bounds(frames)
        report["startup_s"] = {"cached": startup(Path(d) / "lstm2x128.onnx", cold=False),
                               "first_compile": startup(Path(d) / "lstm2x128.onnx", cold=True)}
    return report


def print_report(report):
    """The tables, bounds and targets of a run; sets report["targets"]."""
    print(f"machine: {report['machine']}\n")
    print(f"{'model':<11}{'runtime':<16}{'p50 us':>9}{'p99 us':>9}{'max us':>9}{'chunk us/f':>12}"
          f"{'B=1 f/s':>10}{'B=8 f/s':>10}{'B=64 f/s':>11}{f'B=64 x{THREADS}':>11}")
    for name, runs in report["models"].items():
        rows = [(f"edgernn {w}", runs["edgernn"][w]) for w in EDGERNN_WEIGHTS if w in runs["edgernn"]] + \
               [(who, runs[who]) for who in ("edgernn step()", "edgernn out=", "ort", "litert", "litert int8", "floor") if who in runs]
        if "anchor" in runs:
            a = runs["anchor"]
            print(f"{name:<11}{'anchor ' + a['backend']:<16}{a['step_us']:>9.2f}   (native, mean of its runs before and "
                  f"after: {', '.join(f'{k} ' + '/'.join(f'{v:.2f}' for v in t) for k, t in a['runs_us'].items())})")
        for label, run in rows:
            s = run["single"]
            chunk = f"{run['chunk_per_frame_us']:>12.2f}" if "chunk_per_frame_us" in run else " " * 12
            b = run.get("batched", {})
            keys = list(BATCHES) + [f"64x{THREADS}"]
            fps = "".join(f"{b[k]['frames_per_s']:>{10 if k in (1, 8) else 11},.0f}" if k in b else
                          " " * (10 if k in (1, 8) else 11) for k in keys) if b else ""
            print(f"{name:<11}{label:<16}{s['p50_us']:>9.2f}{s['p99_us']:>9.2f}{s['max_us']:>9.1f}{chunk}{fps}")
    print(f"\n{'model':<11}{'weights':<9}{'MFLOP/step':>11}   GFLOP/s: chunk, B=1, B=8, B=64 (edgernn)")
    for name, runs in report["models"].items():
        for w in (w for w in EDGERNN_WEIGHTS if w in runs["edgernn"]):
            e = runs["edgernn"][w]
            g = e["gflops"]
            print(f"{name:<11}{w:<9}{e['flops_per_step'] / 1e6:>11.3f}   {g['chunk']:.1f}, {g['B=1']:.1f}, "
                  f"{g['B=8']:.1f}, {g['B=64']:.1f}")
    bd = report["bounds"]
    print(f"\nbounds: call floor {bd['call_floor_us']:.2f} us (Stream.step of a one-op model); sgemm peak "
          f"{bd['sgemm_peak_gflops']:.1f} GFLOP/s (1 thread); engine dense 256x256 in cache, B=1: "
          f"{bd['dense_f32_gflops']:.1f} GFLOP/s float32, {bd['dense_int8_gflops']:.1f} int8")
    print(f"\nstart-up (load + first step, fresh process): {report['startup_s']['cached']:.2f} s with the Numba "
          f"cache, {report['startup_s']['first_compile']:.2f} s compiling (fresh machine)\n")
    report["targets"] = []
    print(f"{'target':<52}{'ratio':>8}  {'goal':<7} holds")
    for desc, ratio, goal, ok in targets(report):
        report["targets"].append({"target": desc, "ratio": ratio, "goal": goal, "holds": ok})
        print(f"{desc:<52}{ratio:>8.2f}  {goal:<7} {'-' if ok is None else 'yes' if ok else 'NO'}")




if __name__ == "__main__":
    main()
