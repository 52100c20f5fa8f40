"""Malformed and hostile inputs end in a typed EdgeRNNError, in bounded time and memory.

Each case (built by exporters/make_malformed.py: ONNX files from onnx.helper, TFLite fixtures
changed with the schema's object API, .ernn files from edgernn's own writer, Stream arguments on a
valid model) runs in a child process, so a segfault, the OOM killer or a hang fails the case
instead of the test run. The child times only the failing call (not interpreter start-up, imports
or building a valid stream first) and measures its peak resident memory during that call
(VmHWM, reset through /proc/self/clear_refs just before it; the process's whole peak where that is
not allowed), and reports both as JSON. Every case must raise an EdgeRNNError subclass (the one
named in the case, when it names one) with a message, within 5 s and 500 MB: the bound the issue
sets, the only wall-clock assertion in the suite.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("ai_edge_litert")

from exporters import make_malformed  # noqa: E402

SECONDS, MEGABYTES = 5.0, 500
CASES = make_malformed.all_cases()

CHILD = r"""
import ast, json, resource, sys, time, traceback
import numpy as np
import edgernn
from edgernn.convert import convert

path, action = sys.argv[1], sys.argv[2]

def peak_mb():
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

# set-up that is not under test: a valid model and stream, the file's bytes
if action.startswith("stream:"):
    model = edgernn.load(path)
    kwargs = {k: ast.literal_eval(v) for k, v in (kv.split("=") for kv in action[7:].split(","))}
    call = lambda: model.stream(**kwargs)
elif action == "run-zero-frames":
    model = edgernn.load(path)
    stream = model.stream()
    frames = np.zeros((0,) + tuple(model.inputs[0].frame_shape), np.float32)
    call = lambda: stream.run(frames)
elif action == "load-bytes":
    data = open(path, "rb").read()
    call = lambda: edgernn.load(data)
elif action.startswith("load:"):
    call = lambda: edgernn.load(action[5:])
elif action == "load-step":
    def call():
        model = edgernn.load(path, step=True)
        model.stream().step(*[np.zeros(t.frame_shape, np.float32) for t in model.inputs])
elif action == "convert-int8":
    def call():
        convert(path, path + ".ernn", weights="int8")
        return edgernn.load(path + ".ernn")
else:
    call = lambda: edgernn.load(path)

try:
    open("/proc/self/clear_refs", "w").write("5")      # VmHWM := current RSS
except OSError:
    pass
error, start = None, time.perf_counter()
try:
    call()
except BaseException as e:
    error = e
seconds = time.perf_counter() - start
print(json.dumps({
    "seconds": seconds, "peak_mb": peak_mb(),
    "error": None if error is None else type(error).__name__,
    "types": [] if error is None else [c.__name__ for c in type(error).__mro__],
    "message": "" if error is None else str(error),
    "traceback": "" if error is None or isinstance(error, edgernn.EdgeRNNError) else
                 "".join(traceback.format_exception(error)),
}))
"""


def run_case(case, tmp_path):
    path = tmp_path / f"case{case.suffix}"
    path.write_bytes(case.bytes())
    env = dict(os.environ, **case.env)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])
    # generous: a first run compiles the engine (the "stream" group builds a valid stream first)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), case.action], capture_output=True, text=True,
                          timeout=900, env=env)
    assert proc.returncode == 0, f"the child died (status {proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check(case, result):
    where = f"{result['error']}: {result['message']}\n{result['traceback']}"
    if case.expect == "none":
        assert result["error"] is None, where
    else:
        assert result["error"] is not None, "no error: the malformed input was accepted"
        assert "EdgeRNNError" in result["types"], f"not an EdgeRNNError: {where}"
        assert case.expect in result["types"], f"expected {case.expect}, got {where}"
        assert result["message"].strip(), "the error has no message"
    assert result["seconds"] < SECONDS, f"took {result['seconds']:.1f} s ({where})"
    assert result["peak_mb"] < MEGABYTES, f"peak memory {result['peak_mb']:.0f} MB ({where})"


@pytest.mark.parametrize("name", list(CASES["onnx"]))
def test_onnx(name, tmp_path):
    case = CASES["onnx"][name]
    check(case, run_case(case, tmp_path))


@pytest.mark.parametrize("name", list(CASES["tflite"]))
def test_tflite(name, tmp_path):
    case = CASES["tflite"][name]
    check(case, run_case(case, tmp_path))


@pytest.mark.parametrize("name", list(CASES["sniff"]))
def test_ernn_and_format_sniffing(name, tmp_path):
    case = CASES["sniff"][name]
    check(case, run_case(case, tmp_path))


@pytest.mark.parametrize("name", list(CASES["time"]))
def test_forged_time_convolutions(name, tmp_path):
    """.ernn files of a streamed time convolution with forged history, clock and gate facts."""
    case = CASES["time"][name]
    check(case, run_case(case, tmp_path))


@pytest.mark.parametrize("name", list(CASES["stream"]))
def test_stream_arguments(name, tmp_path):
    case = CASES["stream"][name]
    check(case, run_case(case, tmp_path))


@pytest.mark.parametrize("name", ["gemm_bias_one_float", "matmul_add_bias_one_float"])
def test_one_float_dense_bias_broadcasts_like_onnxruntime(name):
    """A 1-float Gemm C or MatMul + Add bias is valid ONNX (it broadcasts over the N outputs):
    not an error, but the same numbers as onnxruntime."""
    ort = pytest.importorskip("onnxruntime")
    import numpy as np

    import edgernn
    data = CASES["onnx"][name].bytes()
    x = np.random.default_rng(0).standard_normal((6, 1, make_malformed.I)).astype(np.float32)
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    stream = edgernn.load(data).stream()
    got = np.stack([stream.step(frame[0]) for frame in x])
    assert np.abs(got - want.reshape(got.shape)).max() <= 1e-5
