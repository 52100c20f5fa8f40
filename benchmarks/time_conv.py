"""Convolutions along time, per frame: edgernn's streamed step against re-running ONNX Runtime.

    python benchmarks/time_conv.py [--frames 2000] [--rounds 5] [--json benchmarks/results/time_conv.json]

Models: the PyTorch sequence models of exporters/make_time_conv_fixtures.py (causal Conv1d ->
GRU, dilated causal TCN -> LSTM, centred Conv1d -> LSTM, CRNN -> GRU, stride-2 Conv1d -> GRU,
AvgPool1d(4) -> GRU), exported with a dynamic time axis. Without a streaming runtime, a user
who wants the model's output as frames arrive re-runs the offline model on the latest frames:
ONNX Runtime (intra/inter-op threads 1) gets the least it must re-run to get each new output
right for the convolutions, a window of R frames, R = 1 + the frames every history of
edgernn's plan keeps (the convolutions' receptive field along the chain, look-ahead
included). (The recurrent layer's state then restarts every call, so even that is not what
the model computes: only a streaming runtime runs it correctly; the ratios are lower bounds
on the saving.) Two ways to re-run, both timed per call and given per frame:

- **every frame** (what the issue measures): one call per new frame;
- **when due**: for a model with a stride s over time, one call every s-th frame only (the
  call's time / s), the least a user who knows the stride re-runs.

edgernn steps every frame with ``Stream.step`` (the history takes each one), both as
``step(x)`` and as ``step(x, out=y)`` into one array (no allocation per step; on a stream of
its own, called through a function, which the timer counts); its time per frame
is the median over blocks of s consecutive steps (one due output each; each step timed on its
own) divided by s, so the frames with and without an output count as they come. The runtimes are timed in ROUNDS blocks
that take turns; the table gives each one's median over all rounds and the ratios.
"""
import argparse
import os
import sys
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import edgernn  # noqa: E402
from benchmarks.report import machine, timed, write_json  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "onnx"
MODELS = ("causal_conv_gru", "tcn_lstm", "centred_conv_lstm", "crnn_gru", "strided_conv_gru", "avgpool_gru")


def receptive_field(model):
    """1 + the frames every history of the prepared graph keeps."""
    return 1 + sum(int(n.attrs["frames"]) - 1 for n in model.graph.nodes if n.op == "history")


def measure(name, frames, rounds):
    import onnxruntime as ort
    path = FIXTURES / f"{name}_ts.onnx"
    model = edgernn.load(path)
    R = receptive_field(model)
    x = np.random.default_rng(0).standard_normal((frames + R, 8)).astype(np.float32)
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    s = model.output_stride
    every = [x[None, t - R + 1:t + 1] for t in range(R - 1, R - 1 + frames)]
    due = every[::s]
    stream, into_stream = model.stream(), model.stream()
    into = np.empty(model.outputs[0].frame_shape, np.float32)

    def step_into(f):
        return into_stream.step(f, out=into)
    n = frames - frames % s
    times = {"edgernn": [], "edgernn_out": [], "ort_every": [], "ort_due": []}
    for _ in range(rounds):                                # per step, summed over blocks of s steps
        times["edgernn"].append(timed(stream.step, x[:n], warm=50).reshape(-1, s).sum(axis=1))
        times["edgernn_out"].append(timed(step_into, x[:n], warm=50).reshape(-1, s).sum(axis=1))
        times["ort_every"].append(timed(lambda w: sess.run(None, {"x": w}), every, warm=50))
        if s > 1:
            times["ort_due"].append(timed(lambda w: sess.run(None, {"x": w}), due, warm=max(1, 50 // s)))
    if s == 1:
        times["ort_due"] = times["ort_every"]
    p50 = {k: float(np.median(np.concatenate(v))) * 1e6 for k, v in times.items()}
    p50["edgernn"] /= s                                    # per frame
    p50["edgernn_out"] /= s
    p50["ort_due"] /= s
    row = {"model": name, "receptive_field": R, "delay": model.delay, "stride": s, "edgernn_us": p50["edgernn"],
           "edgernn_out_us": p50["edgernn_out"], "ratio_out": p50["ort_every"] / p50["edgernn_out"],
           "ort_every_frame_us": p50["ort_every"], "ort_when_due_us": p50["ort_due"],
           "ratio": p50["ort_every"] / p50["edgernn"], "ratio_when_due": p50["ort_due"] / p50["edgernn"]}
    print(f"| {name} | {R} | {model.delay} | {s} | {p50['edgernn']:.2f} | {p50['edgernn_out']:.2f} | "
          f"{p50['ort_every']:.1f} | {p50['ort_due']:.1f} | {row['ratio']:.1f}x | {row['ratio_out']:.1f}x | "
          f"{row['ratio_when_due']:.1f}x |", flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000, help="timed frames per round and runtime")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "time_conv.json"))
    args = ap.parse_args()
    print("| model | window R (frames) | delay | stride | edgernn µs/frame | edgernn out=, µs/frame "
          "| ORT every frame, µs/frame | ORT when due, µs/frame | ratio (every frame) | ratio, out= (every frame) "
          "| ratio (when due) |\n|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [measure(name, args.frames, args.rounds) for name in MODELS]
    write_json({"machine": machine(), "frames": args.frames, "rounds": args.rounds, "rows": rows}, args.json)


if __name__ == "__main__":
    main()
