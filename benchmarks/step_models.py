"""Step graphs per call: edgernn against ONNX Runtime or LiteRT (one thread each, same inputs, one run).

    python benchmarks/step_models.py [--calls 2000] [--rounds 5] [--json benchmarks/results/step_models.json]

Models: the six silero-vad ONNX files of its PyPI wheel (exporters/fetch_silero.py; 16 kHz
windows of 64 + 512 samples, and 32 + 256 at 8 kHz for the files that have an 8 kHz branch),
the torch step graphs of exporters/make_step_fixtures.py (conv encoder + GRU, bidirectional
GRU across frequency bands) and
exporters/make_decoder_fixtures.py (GRU + ConvTranspose decoder) against ONNX Runtime, and the
Keras explicit-state cells and conv encoders converted to TFLite (exporters/make_tflite_step_
fixtures.py, make_tflite_conv_fixtures.py) against LiteRT (num_threads=1, its signature runner
called once per step, the state fed back the same way). ONNX Runtime
(intra/inter-op threads 1) is called as silero-vad's own OnnxWrapper calls it: one window per
call, the state output fed back as the next state input (and ``sr`` each call); edgernn steps
the same windows with ``Stream.step``. The two are timed in ROUNDS blocks that take turns, so
a neighbour's burst slows both alike; the table gives each one's median per-call time over
all rounds (perf_counter_ns around the call, after a warm-up) and the ratio other / edgernn.
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
TFLITE = ROOT / "tests" / "fixtures" / "tflite"
SILERO = {"silero_vad.onnx": (16000, 8000), "silero_vad_16k_op15.onnx": (16000,), "silero_vad_half.onnx": (16000,),
          "silero_vad_op18_ifless.onnx": (16000, 8000), "silero_vad_openvino_16k.onnx": (16000,),
          "silero_vad_16k_sequence.onnx": (16000,)}


class LiteRTStep:
    """One LiteRT signature-runner call per step, the state outputs fed back."""

    def __init__(self, path, frame_input, pairs, frame_shape):
        from ai_edge_litert.interpreter import Interpreter
        self.run = Interpreter(model_path=str(path), num_threads=1).get_signature_runner()
        details = self.run.get_input_details()
        self.frame_input, self.pairs, self.frame_shape = frame_input, pairs, frame_shape
        self.state = {i: np.zeros([1] + [int(d) for d in details[i]["shape_signature"][1:]], np.float32)
                      for i in pairs}

    def __call__(self, frame):
        res = self.run(**{self.frame_input: frame.reshape(self.frame_shape)}, **self.state)
        self.state = {i: res[o] for i, o in self.pairs.items()}


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
            yield (f"{name} @ {sr // 1000} kHz", path, load, OrtStep, ("input", pairs, ort_consts, (1, window)),
                   lambda rng, n, w=window: (0.1 * rng.standard_normal((n, w))).astype(np.float32))


def fixture_cases():
    noise = lambda shape: (lambda rng, n: rng.standard_normal((n,) + shape).astype(np.float32))
    for tag in ("ts", "dy"):
        yield (f"conv_gru_step_{tag}.onnx", FIXTURES / f"conv_gru_step_{tag}.onnx", {},
               OrtStep, ("x", {"conv_cache": "conv_cache_out", "h": "hn"}, {}, (1, 1, 40)), noise((1, 40)))
        yield (f"convtranspose_decoder_{tag}.onnx", FIXTURES / f"convtranspose_decoder_{tag}.onnx", {},
               OrtStep, ("x", {"h": "hn"}, {}, (1, 1, 16)), noise((1, 16)))
        yield (f"band_gru_step_{tag}.onnx", FIXTURES / f"band_gru_step_{tag}.onnx", {},
               OrtStep, ("x", {"h": "hn"}, {}, (1, 8, 4)), noise((8, 4)))
    stacked, separate = {"input_2": "tf.stack"}, {"h": "output_1", "c": "output_2"}
    for name, x, pairs, load in (("tk_lstm_step", "input_1", stacked, {}),
                                 ("tk_lstm_step_hardsig", "input_1", stacked, {}),
                                 ("tk_lstm_step_dynrange", "input_1", stacked, {}),
                                 ("tk_lstm_step_int8", "input_1", stacked, {}),
                                 ("k3_lstm_step", "x", separate, {"states": separate}),
                                 ("k3_lstm_step_hardsig", "x", separate, {"states": separate}),
                                 ("k3_lstm_step_int8", "x", separate, {"states": separate}),
                                 ("k3_gru_step", "x", {"h": "output_1"}, {})):
        yield (f"{name}.tflite", TFLITE / f"{name}.tflite", load, LiteRTStep, (x, pairs, (1, 16)), noise((16,)))
    for name in ("conv_encoder2d", "conv_encoder2d_dynrange", "conv_encoder2d_int8", "conv_encoder1d",
                 "conv_normaliser", "conv_decoder2d"):
        path = TFLITE / f"{name}.tflite"
        shape = tuple(np.load(TFLITE / f"{name}.npz")["frames"].shape[1:])
        yield (f"{name}.tflite", path, {"step": True}, LiteRTStep, (None, {}, (1,) + shape), noise(shape))


def measure(label, path, load, runtime, runtime_args, make_frames, calls, rounds):
    model = edgernn.load(path, **load)
    stream = model.stream()
    frames = make_frames(np.random.default_rng(0), calls)
    shaped = frames.reshape((calls,) + model.inputs[0].frame_shape)
    if runtime is LiteRTStep and runtime_args[0] is None:       # a stateless file: its one input
        from ai_edge_litert.interpreter import Interpreter
        runner = Interpreter(model_path=str(path), num_threads=1).get_signature_runner()
        runtime_args = (next(iter(runner.get_input_details())),) + runtime_args[1:]
    other = runtime(path, *runtime_args)
    name = "LiteRT" if runtime is LiteRTStep else "ONNX Runtime"
    times = {"edgernn": [], name: []}
    for _ in range(rounds):
        times["edgernn"].append(timed(stream.step, shaped, warm=50))
        times[name].append(timed(other, frames, warm=50))
    p50 = {k: float(np.median(np.concatenate(v))) * 1e6 for k, v in times.items()}
    row = {"model": label, "runtime": name, "edgernn_us": p50["edgernn"], "runtime_us": p50[name],
           "ratio": p50[name] / p50["edgernn"], "ops": model.op_counts()}
    print(f"| {label} | {p50['edgernn']:.1f} | {name} {p50[name]:.1f} | {row['ratio']:.2f}x |", flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000, help="timed calls per round and runtime")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="", help="run the models whose label contains this text")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "step_models.json"))
    args = ap.parse_args()
    print("| model | edgernn p50 µs/call | other runtime, p50 µs/call | other / edgernn |\n|---|---|---|---|")
    rows = []
    for case in list(silero_cases(fetch())) + list(fixture_cases()):
        if args.only in case[0]:
            rows.append(measure(*case, args.calls, args.rounds))
    write_json({"machine": machine(), "calls": args.calls, "rounds": args.rounds, "rows": rows}, args.json)


if __name__ == "__main__":
    main()
