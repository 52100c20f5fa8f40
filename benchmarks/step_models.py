"""Step graphs per call: edgernn against ONNX Runtime (one thread each, same inputs, one run).

    python benchmarks/step_models.py [--calls 2000] [--rounds 5] [--json benchmarks/results/step_models.json]

Models: the six silero-vad ONNX files of its PyPI wheel (exporters/fetch_silero.py; 16 kHz
windows of 64 + 512 samples, and 32 + 256 at 8 kHz for the files that have an 8 kHz branch),
and the torch conv encoder + GRU step graphs of exporters/make_step_fixtures.py. ONNX Runtime
(intra/inter-op threads 1) is called as silero-vad's own OnnxWrapper calls it: one window per
call, the state output fed back as the next state input (and ``sr`` each call); edgernn steps
the same windows with ``Stream.step``. The two are timed in ROUNDS blocks that take turns, so
a neighbour's burst slows both alike; the table gives each one's median per-call time over
all rounds (perf_counter_ns around the call, after a warm-up) and the ratio ORT / edgernn.
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
from exporters.fetch_silero import fetch  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "onnx"
SILERO = {"silero_vad.onnx": (16000, 8000), "silero_vad_16k_op15.onnx": (16000,), "silero_vad_half.onnx": (16000,),
          "silero_vad_op18_ifless.onnx": (16000, 8000), "silero_vad_openvino_16k.onnx": (16000,),
          "silero_vad_16k_sequence.onnx": (16000,)}


class OrtStep:
    """One ONNX Runtime call per step, the state outputs fed back as the state inputs."""

    def __init__(self, path, frame_input, pairs, constants, frame_shape):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.frame_input, self.pairs, self.constants = frame_input, pairs, constants
        self.frame_shape = frame_shape
        shapes = {i.name: [d if isinstance(d, int) else 1 for d in i.shape] for i in self.sess.get_inputs()}
        self.state = {i: np.zeros(shapes[i], np.float32) for i in pairs}
        self.names = [o.name for o in self.sess.get_outputs()]

    def __call__(self, frame):
        out = self.sess.run(None, {self.frame_input: frame.reshape(self.frame_shape), **self.state, **self.constants})
        res = dict(zip(self.names, out))
        self.state = {i: res[o] for i, o in self.pairs.items()}


def silero_cases(directory):
    for name, rates in SILERO.items():
        for sr in rates:
            window = 576 if sr == 16000 else 288
            path = directory / name
            sequence, fixed = "sequence" in name, "openvino" in name
            load = {}
            if name in ("silero_vad.onnx", "silero_vad_16k_op15.onnx", "silero_vad_op18_ifless.onnx"):
                load["constants"] = {"sr": sr}
            if not (sequence or fixed):
                load["shapes"] = {"input": [window]}
            pairs = {"h": "hn", "c": "cn"} if sequence else {"state": "stateN"}
            ort_consts = {"sr": np.array(sr, np.int64)} if "constants" in load else {}
            yield (f"{name} @ {sr // 1000} kHz", path, load, ("input", pairs, ort_consts, (1, window)),
                   lambda rng, n, w=window: (0.1 * rng.standard_normal((n, w))).astype(np.float32))


def fixture_cases():
    for tag in ("ts", "dy"):
        path = FIXTURES / f"conv_gru_step_{tag}.onnx"
        yield (f"conv_gru_step_{tag}.onnx", path, {},
               ("x", {"conv_cache": "conv_cache_out", "h": "hn"}, {}, (1, 1, 40)),
               lambda rng, n: rng.standard_normal((n, 1, 40)).astype(np.float32))


def measure(label, path, load, ort_args, make_frames, calls, rounds):
    model = edgernn.load(path, **load)
    stream = model.stream()
    frames = make_frames(np.random.default_rng(0), calls)
    shaped = frames.reshape((calls,) + model.inputs[0].frame_shape)
    ort_step = OrtStep(path, *ort_args)
    times = {"edgernn": [], "onnxruntime": []}
    for _ in range(rounds):
        times["edgernn"].append(timed(stream.step, shaped, warm=50))
        times["onnxruntime"].append(timed(ort_step, frames, warm=50))
    p50 = {k: float(np.median(np.concatenate(v))) * 1e6 for k, v in times.items()}
    row = {"model": label, "edgernn_us": p50["edgernn"], "onnxruntime_us": p50["onnxruntime"],
           "ratio": p50["onnxruntime"] / p50["edgernn"], "ops": model.op_counts()}
    print(f"| {label} | {p50['edgernn']:.1f} | {p50['onnxruntime']:.1f} | {row['ratio']:.2f}x |", flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000, help="timed calls per round and runtime")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="", help="run the models whose label contains this text")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "step_models.json"))
    args = ap.parse_args()
    print("| model | edgernn p50 µs/call | ONNX Runtime p50 µs/call | ORT / edgernn |\n|---|---|---|---|")
    rows = []
    for case in list(silero_cases(fetch())) + list(fixture_cases()):
        if args.only in case[0]:
            rows.append(measure(*case, args.calls, args.rounds))
    write_json({"machine": machine(), "calls": args.calls, "rounds": args.rounds, "rows": rows}, args.json)


if __name__ == "__main__":
    main()
