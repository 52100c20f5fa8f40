"""Keras convolutions along time in TFLite files, streamed (formats/tflite_dilation.py, passes/pulse.py).

Fixtures: exporters/make_tflite_time_conv_fixtures.py (Keras 3 -> TFLite, open time axis):
causal Conv1D, dilated causal Conv1D (SPACE_TO_BATCH_ND ... BATCH_TO_SPACE_ND, paddings and
crops one computed tensor), dilated 'same' Conv1D (look-ahead, paddings and crops two computed
tensors), strided causal Conv1D, and a dilated 'same' Conv2D over time x features; each in
front of a GRU or LSTM (a WHILE loop). Oracle: LiteRT running the whole sequence at once (one
thread), and the Keras output the exporter recorded. Malformed chains are made by editing the
dilated 'same' file with the flatbuffer object API.
"""
from pathlib import Path

import numpy as np
import pytest

litert = pytest.importorskip("ai_edge_litert.interpreter")
schema = pytest.importorskip("ai_edge_litert.schema_py_generated")

import edgernn  # noqa: E402
from edgernn.errors import UnsupportedOpError  # noqa: E402
from compare import assert_close  # noqa: E402
from exporters.make_malformed import pack  # noqa: E402

TFLITE = Path(__file__).parent / "fixtures" / "tflite"
TOL = 1e-5
#: name: (delay, output stride) the stream must report
KERAS = {"k3_causal_conv_gru": (0, 1), "k3_dilated_causal_conv_lstm": (0, 1), "k3_dilated_same_conv_gru": (3, 1),
         "k3_strided_causal_conv_gru": (0, 2), "k3_dilated_conv2d_gru": (2, 1)}


def litert_sequence(name, x):
    it = litert.Interpreter(model_path=str(TFLITE / f"{name}.tflite"), num_threads=1)
    inp = it.get_input_details()[0]
    it.resize_tensor_input(inp["index"], [1, len(x), x.shape[1]])
    it.allocate_tensors()
    it.set_tensor(inp["index"], x[None])
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])[0]


def streamed(m, frames):
    s = m.stream()
    due = [y for y in (s.step(f) for f in frames) if y is not None]
    return np.stack(due + list(s.flush())).reshape(len(due) + m.flush_steps, -1)


@pytest.mark.parametrize("name", sorted(KERAS))
def test_keras_time_convolution_streams_like_litert_and_keras(name):
    data = np.load(TFLITE / f"{name}.npz")
    x = data["frames"]
    want = litert_sequence(name, x)
    assert_close(data["keras_y"], want, TOL, "LiteRT against Keras")
    m = edgernn.load(str(TFLITE / f"{name}.tflite"))
    assert (m.delay, m.output_stride) == KERAS[name]
    assert "history" in m.describe()["ops"]
    assert_close(streamed(m, x), want, TOL, "stepped + flushed")
    two = m.stream(batch=2)                     # one chunked call; the second stream runs x backwards
    back = np.ascontiguousarray(x[::-1])
    got = np.concatenate([two.run(np.stack([x, back], axis=1)), two.flush()])
    assert_close(got[:, 0].reshape(want.shape), want, TOL, "chunked, stream 0 of 2")
    assert_close(got[:, 1].reshape(want.shape), litert_sequence(name, back), TOL, "chunked, stream 1 of 2")


def test_dilated_conv_is_one_ir_conv_with_the_dilation():
    """The SPACE_TO_BATCH_ND chain becomes one conv: dilation 3 along time, pads 3 + 3 (TensorFlow's
    SAME), and the FLOOR_MODs that computed the paddings are left out."""
    from edgernn.formats.tflite import import_tflite
    g = import_tflite(str(TFLITE / "k3_dilated_same_conv_gru.tflite"))
    convs = [n for n in g.nodes if n.op == "conv"]
    assert len(convs) == 1 and convs[0].attrs["dilations"] == [1, 3] and convs[0].attrs["pads"] == [0, 3, 0, 3]
    assert not [n for n in g.nodes if n.source_op in ("FLOOR_MOD", "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND")]
    g2 = import_tflite(str(TFLITE / "k3_dilated_conv2d_gru.tflite"))
    conv2d = [n for n in g2.nodes if n.op == "conv"]
    assert len(conv2d) == 1 and conv2d[0].attrs["dilations"] == [2, 2] and conv2d[0].attrs["pads"] == [2, 2, 2, 2]


def test_ernn_round_trip_and_batches(tmp_path):
    name = "k3_dilated_same_conv_gru"
    x = np.load(TFLITE / f"{name}.npz")["frames"][:60]
    m = edgernn.load(str(TFLITE / f"{name}.tflite"))
    path = tmp_path / "m.ernn"
    from edgernn.convert import convert
    convert(str(TFLITE / f"{name}.tflite"), str(path))
    e = edgernn.load(str(path))
    assert e.delay == 3
    assert_close(streamed(e, x), streamed(m, x), 0.0, ".ernn against the TFLite file")
    s = m.stream(batch=3)
    outs = [s.step(np.stack([f, 2 * f, -f])) for f in x]
    got = np.stack([o for o in outs if o is not None] + list(s.flush()))
    for b, scale in enumerate((1, 2, -1)):
        assert_close(got[:, b].reshape(len(x), -1), streamed(m, scale * x), 0.0, f"stream {b} of 3")


# ---------------------------------------------------------------- chains edgernn refuses
def _file():
    return schema.ModelT.InitFromPackedBuf((TFLITE / "k3_dilated_same_conv_gru.tflite").read_bytes(), 0)


def _names(m):
    codes = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return [codes[max(m.operatorCodes[op.opcodeIndex].builtinCode, m.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode)]
            for op in m.subgraphs[0].operators]


def _op(m, name):
    return m.subgraphs[0].operators[_names(m).index(name)]


def _const_tensor(m, values):
    """A new int32 constant tensor of the main subgraph; its index."""
    buf = schema.BufferT()
    buf.data = np.asarray(values, np.int32).view(np.uint8).ravel()
    m.buffers.append(buf)
    t = schema.TensorT()
    t.shape, t.type, t.buffer, t.name = list(np.shape(values)), schema.TensorType.INT32, len(m.buffers) - 1, b"forged"
    m.subgraphs[0].tensors.append(t)
    return len(m.subgraphs[0].tensors) - 1


def _set_input(op, k, ti):
    ins = list(op.inputs)
    ins[k] = ti
    op.inputs = ins


def _crops_zero(m):            # paddings still grow with the length: the net padding is not constant
    _set_input(_op(m, "BATCH_TO_SPACE_ND"), 2, _const_tensor(m, [[0, 0]]))


def _crops_too_big(m):         # crops past the paddings: a negative padding
    _set_input(_op(m, "SPACE_TO_BATCH_ND"), 2, _const_tensor(m, [[0, 0]]))
    _set_input(_op(m, "BATCH_TO_SPACE_ND"), 2, _const_tensor(m, [[0, 1]]))


def _other_block(m):
    _set_input(_op(m, "BATCH_TO_SPACE_ND"), 1, _const_tensor(m, [2]))


def _strided_conv(m):
    _op(m, "CONV_2D").builtinOptions.strideW = 2


def _no_conv(m):               # the conv's code becomes an ABS: the phases reach an op that mixes nothing
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.ABS
    m.operatorCodes.append(code)
    _op(m, "CONV_2D").opcodeIndex = len(m.operatorCodes) - 1


def _computed_block(m):
    _set_input(_op(m, "SPACE_TO_BATCH_ND"), 1, _op(m, "FLOOR_MOD").outputs[0])


BAD = {"crops_zero": (_crops_zero, "change with the input's length"),
       "crops_too_big": (_crops_too_big, "crops more than it pads"),
       "other_block": (_other_block, "block shape differs"),
       "strided_conv": (_strided_conv, "stride-1, undilated"),
       "no_conv": (_no_conv, "ABS reads the batch of phases"),
       "computed_block": (_computed_block, "block shape is not a constant")}


@pytest.mark.parametrize("case", sorted(BAD))
def test_chains_that_are_not_a_dilated_convolution_are_refused(case):
    edit, message = BAD[case]
    m = _file()
    edit(m)
    with pytest.raises(UnsupportedOpError, match=message) as e:
        edgernn.load(pack(m))
    assert "SPACE_TO_BATCH_ND" in str(e.value)


def test_batch_to_space_alone_is_refused():
    m = _file()
    s2b = _op(m, "SPACE_TO_BATCH_ND")
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.RESHAPE
    m.operatorCodes.append(code)
    s2b.opcodeIndex = len(m.operatorCodes) - 1            # a RESHAPE to the (computed) paddings: not a chain
    with pytest.raises(UnsupportedOpError, match="BATCH_TO_SPACE_ND is supported only as the end of a dilated"):
        edgernn.load(pack(m))
