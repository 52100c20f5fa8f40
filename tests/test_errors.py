"""Bad input gets a typed edgernn error that says what is wrong, never a crash."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import edgernn  # noqa: E402

I, H = 4, 3
RNG = np.random.default_rng(0)


def w(name, *shape):
    return numpy_helper.from_array(RNG.standard_normal(shape).astype(np.float32), name)


def lstm_model(extra_nodes=(), out="Y", lstm_inputs=("x", "W", "R"), inits=None, graph_inputs=(), **attrs):
    nodes = [helper.make_node("LSTM", list(lstm_inputs), ["Y", "Yh"], hidden_size=H, **attrs), *extra_nodes]
    inits = [w("W", 1, 4 * H, I), w("R", 1, 4 * H, H)] if inits is None else inits
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, I]), *graph_inputs],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no model file"):
        edgernn.load("/nonexistent/model.onnx")


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage" * 50, b"not a model at all"])
def test_not_an_onnx_file(tmp_path, content):
    p = tmp_path / "bad.onnx"
    p.write_bytes(content)
    with pytest.raises(edgernn.ModelFormatError, match="ONNX"):
        edgernn.load(p)


def test_truncated_onnx_file(tmp_path):
    data = lstm_model().SerializeToString()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(edgernn.EdgeRNNError):
        edgernn.load(p)


def test_tflite_file_is_named(tmp_path):
    p = tmp_path / "m.tflite"
    p.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 64)
    with pytest.raises(edgernn.ModelFormatError, match="tflite"):
        edgernn.load(p)


def test_unsupported_op_names_node_op_opset_and_supported_list():
    m = lstm_model([helper.make_node("Erf", ["Y"], ["Z"], name="my_erf")], out="Z")
    with pytest.raises(edgernn.UnsupportedOpError) as e:
        edgernn.load(m)
    msg = str(e.value)
    assert "my_erf" in msg and "Erf" in msg and "opset 17" in msg and "LSTM" in msg


def test_custom_domain_op():
    m = lstm_model([helper.make_node("FusedThing", ["Y"], ["Z"], domain="com.example")], out="Z")
    with pytest.raises(edgernn.UnsupportedOpError, match="custom domain"):
        edgernn.load(m)


@pytest.mark.parametrize("direction", ["reverse", "bidirectional"])
def test_reverse_and_bidirectional_are_rejected(direction):
    d = 2 if direction == "bidirectional" else 1
    m = lstm_model(inits=[w("W", d, 4 * H, I), w("R", d, 4 * H, H)], direction=direction)
    with pytest.raises(edgernn.UnsupportedModelError, match="one frame at a time"):
        edgernn.load(m)


def test_weights_as_graph_inputs_must_be_bound():
    m = lstm_model(inits=[w("R", 1, 4 * H, H)],
                   graph_inputs=[helper.make_tensor_value_info("W", TensorProto.FLOAT, [1, 4 * H, I])])
    with pytest.raises(edgernn.UnsupportedModelError, match="initializer"):
        edgernn.load(m)


def test_softmax_over_time_mixes_frames():
    m = lstm_model([helper.make_node("Softmax", ["Y"], ["Z"], axis=0)], out="Z")
    with pytest.raises(edgernn.UnsupportedModelError, match="time"):
        edgernn.load(m)


def test_dynamic_sequence_lens_is_rejected():
    seq = helper.make_tensor_value_info("seq", TensorProto.INT32, [1])
    m = lstm_model(lstm_inputs=("x", "W", "R", "", "seq"), graph_inputs=[seq])
    with pytest.raises(edgernn.UnsupportedModelError):
        edgernn.load(m)


@pytest.fixture(scope="module")
def stream():
    return edgernn.load(lstm_model()).stream()


@pytest.mark.parametrize("frame", [np.zeros(I + 1, np.float32), np.zeros((2, I), np.float32),
                                   np.zeros((), np.float32)])
def test_wrong_frame_shape_says_expected_shape(stream, frame):
    with pytest.raises(edgernn.FrameShapeError, match=r"expected \(4,\)"):
        stream.step(frame)


def test_wrong_frame_dtype(stream):
    with pytest.raises(edgernn.FrameShapeError, match="float32"):
        stream.step(np.zeros(I, np.float64))


def test_not_an_array(stream):
    with pytest.raises(edgernn.FrameShapeError, match="numpy"):
        stream.step([0.0] * I)


def test_wrong_number_of_inputs(stream):
    with pytest.raises(edgernn.FrameShapeError, match="1 input"):
        stream.step(np.zeros(I, np.float32), np.zeros(I, np.float32))


def test_run_needs_time_axis(stream):
    with pytest.raises(edgernn.FrameShapeError, match=r"\('T', 4\)"):
        stream.run(np.zeros((5, I + 1), np.float32))


def test_batch_stream_frame_shape():
    s = edgernn.load(lstm_model()).stream(batch=2)
    with pytest.raises(edgernn.FrameShapeError, match=r"\(2, 4\)"):
        s.step(np.zeros(I, np.float32))


def test_state_assignment_is_validated(stream):
    good = stream.state
    with pytest.raises(edgernn.StateError, match="keys"):
        stream.state = {"nope": np.zeros(3)}
    bad = {k: np.zeros(v.size + 1) for k, v in good.items()}
    with pytest.raises(edgernn.StateError, match="expected"):
        stream.state = bad
    stream.state = good


def test_errors_share_one_base_class():
    for cls in (edgernn.ModelFormatError, edgernn.UnsupportedOpError, edgernn.UnsupportedModelError,
                edgernn.FrameShapeError, edgernn.StateError):
        assert issubclass(cls, edgernn.EdgeRNNError)
