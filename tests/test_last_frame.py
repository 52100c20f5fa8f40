"""A slice that keeps only the last element along time (torch ``y[:, -1]``, Keras
``return_sequences=False``) streams as the current frame: frame t of the stream equals the
model run offline on frames 0..t. Oracle: onnxruntime on every prefix of a hand-built model.
(The TFLite forms are covered in tests/test_tflite.py with LiteRT.)"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import edgernn  # noqa: E402

I, H, N = 6, 8, 30
RNG = np.random.default_rng(3)


def last_step_gru(start=-1, end=2 ** 63 - 1):
    w = lambda *s: RNG.normal(0, 0.5, s).astype(np.float32)  # noqa: E731
    inits = [numpy_helper.from_array(a, n) for n, a in (("W", w(1, 3 * H, I)), ("R", w(1, 3 * H, H)),
                                                         ("B", w(1, 6 * H)), ("Wh", w(H, 3)))]
    inits += [numpy_helper.from_array(np.array(v, np.int64), n)
              for n, v in (("s", [start]), ("e", [end]), ("a", [0]), ("sq", [0, 1]))]
    nodes = [helper.make_node("GRU", ["x", "W", "R", "B"], ["Y", ""], hidden_size=H, linear_before_reset=1),
             helper.make_node("Slice", ["Y", "s", "e", "a"], ["last"]),
             helper.make_node("Squeeze", ["last", "sq"], ["h"]),
             helper.make_node("MatMul", ["h", "Wh"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, I])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_last_step_output_streams_as_the_current_frame():
    m = last_step_gru()
    frames = RNG.normal(size=(N, I)).astype(np.float32)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = np.stack([sess.run(None, {"x": frames[:t + 1, None]})[0][0] for t in range(N)])
    model = edgernn.load(m)
    assert model.outputs[0].frame_shape == (3,)
    s = model.stream()
    got = np.stack([s.step(f) for f in frames])
    assert np.abs(got - want).max() <= 1e-5


def test_other_slices_along_time_are_still_rejected():
    with pytest.raises(edgernn.UnsupportedModelError, match="time axis"):
        edgernn.load(last_step_gru(start=-2))
