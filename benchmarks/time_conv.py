"""Convolutions along time, per frame: edgernn's streamed step against re-running ONNX Runtime.

    python benchmarks/time_conv.py [--frames 2000] [--rounds 5] [--json benchmarks/results/time_conv.json]

Models: the PyTorch sequence models of exporters/make_time_conv_fixtures.py (causal Conv1d ->
GRU, dilated causal TCN -> LSTM, centred Conv1d -> LSTM, CRNN -> GRU, stride-2 Conv1d -> GRU,
AvgPool1d(4) -> GRU), exported with a dynamic
time axis. Without a streaming runtime, a user who wants an output per new frame re-runs the
offline model on the latest frames; this benchmark gives ONNX Runtime (intra/inter-op threads
1) the least it must re-run to get each new output right for the convolutions: a window of R
frames, R = 1 + the frames every history of edgernn's plan keeps (the convolutions' receptive
field along the chain, look-ahead included), one call per new output (every frame, or every
s-th for a stride s over time: per frame, the call's time / s). (The recurrent layer's
state then restarts every call, so even that is not what the model computes: only a
streaming runtime runs it correctly; the ratio is a lower bound on the saving.) edgernn steps
the same frames with ``Stream.step``. The two are timed in ROUNDS blocks that take turns; the
table gives each one's median per-frame time over all rounds and the ratio ORT / edgernn.
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
    s = model.output_stride                                # ORT runs only when an output is due
    windows = [x[None, t - R + 1:t + 1] for t in range(R - 1, R - 1 + frames, s)]
    stream = model.stream()
    times = {"edgernn": [], "ort": []}
    for _ in range(rounds):
        times["edgernn"].append(timed(stream.step, x[:frames], warm=50))
        times["ort"].append(timed(lambda w: sess.run(None, {"x": w}), windows, warm=max(1, 50 // s)))
    p50 = {k: float(np.median(np.concatenate(v))) * 1e6 for k, v in times.items()}
    p50["ort"] /= s                                        # per frame
    row = {"model": name, "receptive_field": R, "delay": model.delay, "stride": s, "edgernn_us": p50["edgernn"],
           "ort_window_us": p50["ort"], "ratio": p50["ort"] / p50["edgernn"]}
    print(f"| {name} | {R} | {model.delay} | {s} | {p50['edgernn']:.2f} | {p50['ort']:.1f} | {row['ratio']:.1f}x |",
          flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000, help="timed frames per round and runtime")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "time_conv.json"))
    args = ap.parse_args()
    print("| model | window R (frames) | delay | stride | edgernn p50 µs/frame | ORT over R frames, p50 µs/frame "
          "| ORT / edgernn |\n|---|---|---|---|---|---|---|")
    rows = [measure(name, args.frames, args.rounds) for name in MODELS]
    write_json({"machine": machine(), "frames": args.frames, "rounds": args.rounds, "rows": rows}, args.json)


if __name__ == "__main__":
    main()
