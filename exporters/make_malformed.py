"""Malformed and hostile model files, for tests/test_malformed.py.

Each case must end in a typed :class:`edgernn.errors.EdgeRNNError` (or, for the few marked
``expect="none"``, load) within 5 s and 500 MB. A :class:`Case` holds the file's bytes, its suffix,
the action that should fail (``load``, ``load-bytes``, ``load-step`` (a step graph, then one step),
``convert-int8`` then load the .ernn, or a
Stream call on a valid model) and the error type it requires. ONNX files are built with
``onnx.helper``; TFLite files are real fixtures (tests/fixtures/tflite) changed with the schema's
object API and packed again; .ernn files are written with edgernn's own writer.

    python -m exporters.make_malformed OUT_DIR      # writes every case as OUT_DIR/<group>-<name><suffix>
"""
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TFLITE_FIXTURES = ROOT / "tests" / "fixtures" / "tflite"
VALID_ONNX = ROOT / "tests" / "fixtures" / "onnx" / "lstm_l1_bf_lin_dy.onnx"
I, H, N = 4, 3, 5           # input size, hidden size, dense outputs of the small ONNX models
BIG = 1 << 28               # 2^28 float32 = 1 GiB: over the default 256 MiB ceiling


@dataclass
class Case:
    data: object = b""          # the file's bytes, or a function that makes them (for the slow ones)
    suffix: str = ".onnx"
    action: str = "load"        # load | load-bytes | load-step | convert-int8 | stream:<python kwargs> | run-zero-frames
    expect: str = "EdgeRNNError"
    env: dict = field(default_factory=dict)

    def bytes(self):
        return self.data() if callable(self.data) else self.data


# ------------------------------------------------------------------ ONNX
def _onnx():
    import onnx
    from onnx import helper, numpy_helper
    return onnx, helper, numpy_helper


def _init(name, shape, seed=0):
    _, _, numpy_helper = _onnx()
    return numpy_helper.from_array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), name)


def recurrent(op="LSTM", hidden=H, extra=(), out="Y", inits=(), inputs=("x", "W", "R"), opsets=(("", 17),),
              x_type=1, name="rnn", **attrs):
    """One LSTM/GRU/RNN node over x [T, 1, I] (+ `extra` nodes after it) as a ModelProto."""
    onnx, helper, _ = _onnx()
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    attrs.setdefault("hidden_size", hidden)
    nodes = [helper.make_node(op, list(inputs), ["Y", "Yh"], name=name, **attrs), *extra]
    weights = [_init("W", (1, gates * hidden, I)), _init("R", (1, gates * hidden, hidden), 1)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", x_type, ["T", 1, I])],
                          [helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, None)],
                          initializer=weights + list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])


def _bytes(model):
    return model.SerializeToString()


def _with_attribute(op, attr, value, **kw):
    """A recurrent model whose node carries attribute `attr` = `value` (an AttributeProto
    of whatever type onnx.helper gives `value`)."""
    m = recurrent(op, **kw)
    node = m.graph.node[0]
    for a in list(node.attribute):
        if a.name == attr:
            node.attribute.remove(a)
    node.attribute.append(_onnx()[1].make_attribute(attr, value))
    return m


def _node_name_not_utf8():
    data = _bytes(recurrent(name="@@NAME@@"))
    return data.replace(b"@@NAME@@", b"\xff\xfe\xfd\xfcname")


def _after_lstm(*nodes, inits=(), out="Z"):
    """LSTM (Y [T, 1, 1, H]) followed by `nodes` ending in `out`."""
    return recurrent(extra=nodes, inits=inits, out=out)


def _constant_of_shape(inits, nodes=()):
    """Y + ConstantOfShape(shape), the shape an initializer or computed by `nodes` from `inits`."""
    onnx, helper, _ = _onnx()
    value = helper.make_tensor("value", onnx.TensorProto.FLOAT, [1], [0.0])
    cos = helper.make_node("ConstantOfShape", ["shape"], ["big"], value=value)
    return _after_lstm(*nodes, cos, helper.make_node("Add", ["Y", "big"], ["Z"]), inits=inits)


def _column_and_row(n=1 << 14):
    return [_init("c1", (n, 1)), _init("c2", (1, n))]


def _folded(op, inits, repeat=1, **attrs):
    """Y + op(constants...): every input of `op` is a constant, so it is computed at load."""
    _, helper, _ = _onnx()
    names = [t.name for t in inits] * repeat
    nodes = [helper.make_node(op, names, ["big"], **attrs), helper.make_node("Add", ["Y", "big"], ["Z"])]
    return _after_lstm(*nodes, inits=inits)


def _narrow_dense(k):
    """x [T, 1, k] -> MatMul by W [k, 1] -> RNN(3): a dense layer with one output and k inputs."""
    onnx, helper, _ = _onnx()
    nodes = [helper.make_node("MatMul", ["x", "Wd"], ["m"]), helper.make_node("RNN", ["m", "W", "R"], ["Y", "Yh"],
                                                                                hidden_size=H)]
    inits = [_init("Wd", (k, 1)), _init("W", (1, H, 1)), _init("R", (1, H, H))]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["T", 1, k])],
                          [helper.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, None)], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _int64(name, values):
    return _onnx()[2].from_array(np.asarray(values, np.int64), name)


def _declared_huge_initializer():
    onnx, helper, _ = _onnx()
    t = onnx.TensorProto(name="huge", data_type=onnx.TensorProto.FLOAT, dims=[1 << 16, 1 << 14], raw_data=b"\0" * 4)
    return _after_lstm(helper.make_node("Add", ["Y", "huge"], ["Z"]), inits=[t])


def _dense_head(kind, bias_shape):
    """LSTM -> dense head with N outputs whose bias has `bias_shape` (Gemm C, or MatMul + Add)."""
    _, helper, _ = _onnx()
    flat = [helper.make_node("Reshape", ["Y", "rows"], ["Yf"])]
    inits = [_int64("rows", [-1, H]), _init("Wd", (H, N), 2), _init("bd", bias_shape, 3)]
    if kind == "gemm":
        nodes = flat + [helper.make_node("Gemm", ["Yf", "Wd", "bd"], ["Z"])]
    else:
        nodes = flat + [helper.make_node("MatMul", ["Yf", "Wd"], ["M"]), helper.make_node("Add", ["M", "bd"], ["Z"])]
    return _after_lstm(*nodes, inits=inits)


def _dense_plus_shape():
    """LSTM -> MatMul + Add of the sequence's Shape (symbolic sizes, not numbers): no bias."""
    _, helper, _ = _onnx()
    nodes = [helper.make_node("Reshape", ["Y", "rows"], ["Yf"]), helper.make_node("MatMul", ["Yf", "Wd"], ["M"]),
             helper.make_node("Shape", ["Y"], ["S"]), helper.make_node("Add", ["M", "S"], ["Z"])]
    return _after_lstm(*nodes, inits=[_int64("rows", [-1, H]), _init("Wd", (H, 4), 2)])


def _layer_norm(scale_shape, bias_shape):
    _, helper, _ = _onnx()
    ln = helper.make_node("LayerNormalization", ["Y", "scale", "bias"], ["Z"], axis=-1)
    return _after_lstm(ln, inits=[_init("scale", scale_shape, 4), _init("bias", bias_shape, 5)])


def _recurrent_bias_1x1(op):
    return recurrent(op, inputs=("x", "W", "R", "B"), inits=[_init("B", (1, 1), 6)])


def _peephole_1x1(hidden=1024):
    return recurrent("LSTM", hidden=hidden, inputs=("x", "W", "R", "", "", "", "", "P"), inits=[_init("P", (1, 1), 7)])


def onnx_cases():
    onnx, helper, _ = _onnx()
    concat = helper.make_node("Concat", ["Y", "Y"], ["Z"])
    cases = {
        "node_name_not_utf8": Case(_node_name_not_utf8(), expect="ModelFormatError"),
        "string_attribute_not_utf8": Case(_bytes(_with_attribute("LSTM", "direction", b"\xff\xfeforward")),
                                          expect="ModelFormatError"),
        "activation_name_not_utf8": Case(_bytes(_with_attribute("GRU", "activations", [b"\xffSigmoid", b"Tanh"])),
                                         expect="ModelFormatError"),
        "opset_0": Case(_bytes(recurrent(opsets=(("", 0),))), expect="ModelFormatError"),
        "no_default_domain_opset": Case(_bytes(recurrent(opsets=(("com.example", 1),))), expect="ModelFormatError"),
        "input_elem_type_99": Case(_bytes(recurrent(x_type=99)), expect="ModelFormatError"),
        "input_elem_type_int32": Case(_bytes(recurrent(x_type=onnx.TensorProto.INT32)), expect="UnsupportedModelError"),
        "concat_without_axis": Case(_bytes(_after_lstm(concat)), expect="ModelFormatError"),
        "concat_axis_as_float": Case(_bytes(_after_lstm(helper.make_node("Concat", ["Y", "Y"], ["Z"], axis=1.5))),
                                     expect="ModelFormatError"),
        "hidden_size_as_string": Case(_bytes(_with_attribute("LSTM", "hidden_size", "three")),
                                      expect="ModelFormatError"),
        "hidden_size_as_ints": Case(_bytes(_with_attribute("LSTM", "hidden_size", [3, 3])), expect="ModelFormatError"),
        "hidden_size_as_tensor": Case(_bytes(_with_attribute("RNN", "hidden_size", _int64("h", [3]))),
                                      expect="ModelFormatError"),
        "hidden_size_huge": Case(_bytes(recurrent("LSTM", hidden=H, hidden_size=1 << 40))),
        "clip_as_string": Case(_bytes(_with_attribute("LSTM", "clip", "big")), expect="ModelFormatError"),
        "activations_as_ints": Case(_bytes(_with_attribute("RNN", "activations", [1])), expect="ModelFormatError"),
        "activation_alpha_as_string": Case(_bytes(_with_attribute("RNN", "activation_alpha", "x")),
                                           expect="ModelFormatError"),
        "constant_of_shape_2e28": Case(_bytes(_constant_of_shape([_int64("shape", [BIG])])),
                                       expect="ResourceLimitError"),
        "constant_of_shape_negative": Case(_bytes(_constant_of_shape([_int64("shape", [-5, 3])])),
                                           expect="ModelFormatError"),
        "constant_of_shape_computed_2e28": Case(_bytes(_constant_of_shape(      # folded by the passes, not the importer
            [_int64("s1", [1 << 14]), _int64("s2", [1 << 14])],
            [helper.make_node("Concat", ["s1", "s2"], ["shape"], axis=0)])), expect="ResourceLimitError"),
        # small constants whose folded result is huge (folded by the passes, not the importer)
        "add_broadcast_constants_2e28": Case(_bytes(_folded("Add", _column_and_row())), expect="ResourceLimitError"),
        "matmul_outer_product_2e28": Case(_bytes(_folded("MatMul", _column_and_row())), expect="ResourceLimitError"),
        "concat_one_input_1024_times": Case(_bytes(_folded("Concat", [_init("c1", (1 << 18,))], repeat=1024, axis=0)),
                                            expect="ResourceLimitError"),
        # a 16 MB weight [2^22, 1] that the pack pass pads to kernel panels (a multiple of the lanes)
        "dense_one_output_panel_padding": Case(lambda: _bytes(_narrow_dense(1 << 22)), expect="ResourceLimitError"),
        "initializer_declared_huge": Case(_bytes(_declared_huge_initializer()), expect="ResourceLimitError"),
        "initializer_over_ceiling": Case(_bytes(_after_lstm(helper.make_node("Add", ["Y", "c"], ["Z"]),
                                                            inits=[_init("c", (64, 64))])),
                                         expect="ResourceLimitError", env={"EDGERNN_MAX_BYTES": "8K"}),
        # a 1-float dense bias is valid ONNX (it broadcasts): it must load, and run as onnxruntime runs it
        "gemm_bias_one_float": Case(_bytes(_dense_head("gemm", (1,))), expect="none"),
        "matmul_add_bias_one_float": Case(_bytes(_dense_head("matmul", (1,))), expect="none"),
        # a dense output plus the sequence's Shape (a fuzzed file): the symbolic sizes are no bias
        "matmul_add_shape_values": Case(_bytes(_dense_plus_shape()), expect="UnsupportedModelError"),
        # tensors whose shape does not match their op: the op's own shape rule refuses them
        "layernorm_scale_one_float": Case(_bytes(_layer_norm((1,), (H,)))),
        "layernorm_bias_one_float": Case(_bytes(_layer_norm((H,), (1,)))),
        "lstm_peephole_1x1_h1024": Case(lambda: _bytes(_peephole_1x1())),
        "lstm_peephole_1x1_h1024_convert_int8": Case(lambda: _bytes(_peephole_1x1()), action="convert-int8"),
    }
    for op in ("LSTM", "GRU", "RNN"):
        cases[f"{op.lower()}_without_hidden_size"] = Case(_bytes(_without_hidden_size(op)), expect="ModelFormatError")
        cases[f"{op.lower()}_bias_1x1"] = Case(_bytes(_recurrent_bias_1x1(op)))
    cases.update(step_graph_cases())
    return cases


def _step_graph(nodes, x_shape, inits=(), out="y", extra_inputs=()):
    """A stateless step graph x -> nodes -> out (loaded with step=True by the case's action)."""
    onnx, helper, _ = _onnx()
    info = lambda n, s, t=onnx.TensorProto.FLOAT: helper.make_tensor_value_info(n, t, s)
    g = helper.make_graph(nodes, "step", [info("x", x_shape)] + [info(*e) for e in extra_inputs],
                          [info(out, None)], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def _if_graph(then_outputs=1, cond="c"):
    """If on `cond` whose then branch returns `then_outputs` values for a node with one output."""
    onnx, helper, _ = _onnx()
    info = lambda n: helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
    then = helper.make_graph([helper.make_node("Relu", ["x"], [f"t{k}"]) for k in range(then_outputs)], "then", [],
                             [info(f"t{k}") for k in range(then_outputs)])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e0"])], "else", [], [info("e0")])
    return [helper.make_node("If", [cond], ["y"], then_branch=then, else_branch=other)]


def _nested_if(depth):
    """If(c) whose then branch is another If(c), `depth` deep, the innermost returning Relu(x)."""
    onnx, helper, _ = _onnx()
    info = lambda n: helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
    inner = helper.make_graph([helper.make_node("Relu", ["x"], ["r"])], "leaf", [], [info("r")])
    for k in range(depth):
        other = helper.make_graph([helper.make_node("Neg", ["x"], [f"n{k}"])], f"else{k}", [], [info(f"n{k}")])
        node = helper.make_node("If", ["c"], [f"y{k}"], then_branch=inner, else_branch=other)
        inner = helper.make_graph([node], f"then{k}", [], [info(f"y{k}")])
    return [inner.node[0], helper.make_node("Identity", [f"y{depth - 1}"], ["y"])]


def step_graph_cases():
    """Convolutions, pads and If in step graphs: sizes and conditions a hostile file forges."""
    _, helper, numpy_helper = _onnx()
    w = lambda shape: numpy_helper.from_array(np.ones(shape, np.float32), "w")
    ints = lambda name, v: numpy_helper.from_array(np.asarray(v, np.int64), name)
    step = "load-step"
    return {
        # a declared input of 2^32 floats: the work arena is refused before it is allocated
        "step_input_declared_2e32": Case(_bytes(_step_graph([helper.make_node("Relu", ["x"], ["y"])],
                                                            [1, 1 << 16, 1 << 16])), action=step,
                                         expect="ResourceLimitError"),
        "conv_kernel_longer_than_input": Case(_bytes(_step_graph([helper.make_node("Conv", ["x", "w"], ["y"])],
                                                                 [1, 1, 8], [w((1, 1, 1 << 20))])), action=step,
                                              expect="UnsupportedModelError"),
        "conv_weight_channels_mismatch": Case(_bytes(_step_graph([helper.make_node("Conv", ["x", "w"], ["y"])],
                                                                 [1, 3, 8], [w((4, 5, 3))])), action=step,
                                              expect="UnsupportedModelError"),
        "conv_group_huge": Case(_bytes(_step_graph([helper.make_node("Conv", ["x", "w"], ["y"], group=1 << 40)],
                                                   [1, 3, 8], [w((3, 1, 3))])), action=step),
        "conv_stride_negative": Case(_bytes(_step_graph([helper.make_node("Conv", ["x", "w"], ["y"], strides=[-2])],
                                                        [1, 1, 8], [w((1, 1, 3))])), action=step),
        "conv_dilation_huge": Case(_bytes(_step_graph([helper.make_node("Conv", ["x", "w"], ["y"],
                                                                        dilations=[1 << 62])],
                                                      [1, 1, 8], [w((1, 1, 3))])), action=step),
        "conv_pads_2e40": Case(_bytes(_step_graph([helper.make_node("Conv", ["x", "w"], ["y"],
                                                                    pads=[1 << 40, 1 << 40])],
                                                  [1, 1, 8], [w((1, 1, 3))])), action=step),
        "pad_2e40": Case(_bytes(_step_graph([helper.make_node("Pad", ["x", "p"], ["y"])], [1, 8],
                                            [ints("p", [0, 1 << 40, 0, 0])])), action=step),
        "pad_reflect_wider_than_input": Case(_bytes(_step_graph([helper.make_node("Pad", ["x", "p"], ["y"],
                                                                                  mode="reflect")], [1, 8],
                                                                [ints("p", [0, 9, 0, 9])])), action=step),
        "pad_negative_past_input": Case(_bytes(_step_graph([helper.make_node("Pad", ["x", "p"], ["y"])], [1, 8],
                                                           [ints("p", [0, -9, 0, 0])])), action=step),
        "reduce_axis_out_of_range": Case(_bytes(_step_graph([helper.make_node("ReduceMean", ["x", "a"], ["y"])],
                                                            [1, 8], [ints("a", [7])])), action=step),
        "split_sizes_past_axis": Case(_bytes(_step_graph([helper.make_node("Split", ["x", "s"], ["y", "z"], axis=1)],
                                                         [1, 8], [ints("s", [6, 6])])), action=step),
        "if_condition_computed": Case(_bytes(_step_graph([helper.make_node("ReduceSum", ["x"], ["c"])] + _if_graph(),
                                                         [1, 4])), action=step, expect="UnsupportedModelError"),
        "if_branch_returns_two_for_one": Case(_bytes(_step_graph(
            [helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(True)))]
            + _if_graph(then_outputs=2), [1, 4])), action=step, expect="UnsupportedModelError"),
        "if_nested_20_deep": Case(lambda: _bytes(_step_graph(
            [helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(True)))]
            + _nested_if(20), [1, 4])), action=step, expect="ModelFormatError"),
        "if_condition_of_eight_values": Case(_bytes(_step_graph(
            [helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.ones(8, bool)))]
            + _if_graph(), [1, 4])), action=step, expect="UnsupportedModelError"),
    }


def _without_hidden_size(op):
    m = recurrent(op)
    node = m.graph.node[0]
    node.attribute.remove(next(a for a in node.attribute if a.name == "hidden_size"))
    return m


# ------------------------------------------------------------------ TFLite
def _schema():
    from ai_edge_litert import schema_py_generated
    return schema_py_generated


def fixture(name):
    """A TFLite fixture as the schema's mutable object tree (ModelT)."""
    return _schema().ModelT.InitFromPackedBuf((TFLITE_FIXTURES / f"{name}.tflite").read_bytes(), 0)


def pack(model):
    import flatbuffers
    b = flatbuffers.Builder(1 << 16)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _ops(m, g, name):
    s = _schema()
    code = getattr(s.BuiltinOperator, name)
    return [op for op in m.subgraphs[g].operators if m.operatorCodes[op.opcodeIndex].builtinCode == code]


def _tflite(mutate, base="k3_gru", **kw):
    m = fixture(base)
    mutate(m)
    return Case(pack(m), suffix=".tflite", **kw)


def _while_body(m):
    return _ops(m, 0, "WHILE")[0].builtinOptions.bodySubgraphIndex


def _huge_state(m):
    body = m.subgraphs[_while_body(m)]
    body.tensors[3].shape = np.array([2 ** 31 - 1, 24], np.int32)     # slot 3: the GRU's h


def _body_calling(m, callee):
    """k3_gru's loop body gets a WHILE over subgraph `callee` (the body itself, or main) whose
    output 3 becomes the loop's h. Its inputs are the body's, except that the counters (body
    inputs 0, 1) start at a new constant 0 and the accumulator (2) is replaced by the invariant
    input 4, so that nothing but the recursion stops the import (before the fix: RecursionError)."""
    s = _schema()
    loop = _ops(m, 0, "WHILE")[0]
    body = m.subgraphs[_while_body(m)]
    inner = s.OperatorT()
    inner.opcodeIndex = loop.opcodeIndex
    inner.builtinOptionsType, inner.builtinOptions = loop.builtinOptionsType, s.WhileOptionsT()
    inner.builtinOptions.condSubgraphIndex = loop.builtinOptions.condSubgraphIndex
    inner.builtinOptions.bodySubgraphIndex = _while_body(m) if callee == "itself" else 0
    zero = _constant_tensor(m, body, np.int32(0), b"zero")
    inner.inputs = np.array([zero, zero, body.inputs[4]] + list(body.inputs[3:]), np.int32)
    outs = []
    for ti in body.inputs:
        src, t = body.tensors[int(ti)], s.TensorT()
        t.shape, t.type, t.name = src.shape, src.type, src.name + b"/inner"
        body.tensors.append(t)
        outs.append(len(body.tensors) - 1)
    inner.outputs = np.array(outs, np.int32)
    body.operators.append(inner)
    _set_item(body, "outputs", 3, outs[3])


def _set_item(obj, attr, k, value):
    """obj.attr[k] = value for an int vector of the object tree (read-only NumPy arrays)."""
    arr = np.array(getattr(obj, attr), np.int32)
    arr[k] = value
    setattr(obj, attr, arr)


def _constant_tensor(m, g, value, name):
    """Append a constant tensor holding `value` (float32 or int32 NumPy) to subgraph `g`; its index."""
    s = _schema()
    value = np.asarray(value)
    buf, t = s.BufferT(), s.TensorT()
    buf.data = np.frombuffer(value.tobytes(), np.uint8)
    m.buffers.append(buf)
    t.shape, t.buffer, t.name = np.array(value.shape, np.int32), len(m.buffers) - 1, name
    t.type = s.TensorType.FLOAT32 if value.dtype == np.float32 else s.TensorType.INT32
    g.tensors.append(t)
    return len(g.tensors) - 1


def _fc_bias_one_float(m):
    fc = _ops(m, 0, "FULLY_CONNECTED")[0]
    bias = _constant_tensor(m, m.subgraphs[0], np.array([0.5], np.float32), b"bias1")
    fc.inputs = np.array(list(fc.inputs[:2]) + [bias], np.int32)


def _huge_weight_shape(m):
    fc = _ops(m, 0, "FULLY_CONNECTED")[0]
    m.subgraphs[0].tensors[int(fc.inputs[1])].shape = np.array([1 << 20, 1 << 20], np.int32)


def tflite_cases():
    def corrupt(mutate):
        return _tflite(mutate, expect="ModelFormatError")

    def loop(m):
        return _ops(m, 0, "WHILE")[0].builtinOptions
    return {
        "while_state_2e31x24": _tflite(_huge_state, expect="ResourceLimitError"),
        "while_body_calls_itself": corrupt(lambda m: _body_calling(m, "itself")),
        "while_body_calls_main": corrupt(lambda m: _body_calling(m, "main")),
        "while_body_index_99": corrupt(lambda m: setattr(loop(m), "bodySubgraphIndex", 99)),
        "while_cond_index_negative": corrupt(lambda m: setattr(loop(m), "condSubgraphIndex", -1)),
        "subgraph_output_minus_1": corrupt(lambda m: _set_item(m.subgraphs[0], "outputs", 0, -1)),
        "subgraph_input_out_of_range": corrupt(lambda m: _set_item(m.subgraphs[0], "inputs", 0, 10 ** 6)),
        "op_input_negative_2": corrupt(lambda m: _set_item(m.subgraphs[0].operators[0], "inputs", 0, -2)),
        "op_input_out_of_range": corrupt(lambda m: _set_item(m.subgraphs[0].operators[0], "inputs", 1, 5000)),
        "op_output_minus_1": corrupt(lambda m: _set_item(m.subgraphs[0].operators[0], "outputs", 0, -1)),
        "body_op_input_out_of_range": corrupt(lambda m: _set_item(m.subgraphs[_while_body(m)].operators[2],
                                                                  "inputs", 1, 777)),
        "opcode_index_out_of_range": corrupt(lambda m: setattr(m.subgraphs[0].operators[0], "opcodeIndex", 200)),
        "opcode_index_uint32_max": corrupt(lambda m: setattr(m.subgraphs[0].operators[0], "opcodeIndex", 2 ** 32 - 1)),
        "buffer_index_out_of_range": corrupt(lambda m: setattr(m.subgraphs[0].tensors[6], "buffer", 10 ** 5)),
        "buffer_index_uint32_max": corrupt(lambda m: setattr(m.subgraphs[0].tensors[6], "buffer", 2 ** 32 - 1)),
        "signature_tensor_out_of_range": corrupt(lambda m: setattr(m.signatureDefs[0].inputs[0], "tensorIndex", 4000)),
        "weight_shape_2e20x2e20": _tflite(_huge_weight_shape, expect="ResourceLimitError"),
        # a tensor whose shape does not match its op: the op's own shape rule refuses it
        "fully_connected_bias_one_float": _tflite(_fc_bias_one_float, base="tk_lstm"),
    }


# ------------------------------------------------------------------ .ernn and format sniffing
def ernn_bytes(mutate=None, source=None):
    """A valid .ernn (``source``, an ONNX file's bytes, default the valid ONNX LSTM, loaded) as
    bytes, after `mutate(graph)` on the loaded graph: what edgernn's own writer puts in a file."""
    import tempfile

    import edgernn
    from edgernn.formats.ernn import write_ernn
    m = edgernn.load(source if source is not None else VALID_ONNX)
    if mutate is not None:
        mutate(m.graph)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.ernn"
        write_ernn(path, m.graph, {"general.name": "malformed"})
        return path.read_bytes()


def _one_float(op, slot):
    """A graph mutator: input ``slot`` of the first ``op`` node becomes a constant of one float
    (shape [1], or [1, 1] for a peephole), whatever the op's shape rule says."""
    def mutate(graph):
        from edgernn.ir.graph import Value
        node = next(n for n in graph.nodes if n.op == op)
        shape = (1, 1) if op == "lstm" and slot == 7 else (1,)
        while len(node.inputs) <= slot:
            node.inputs.append(None)
        node.inputs[slot] = Value(f"{node.name}.forged{slot}", shape=shape, const=np.ones(shape, np.float32))
    return mutate


def _valid_peephole(hidden=1024):
    return _bytes(recurrent("LSTM", hidden=hidden, inputs=("x", "W", "R", "", "", "", "", "P"),
                            inits=[_init("P", (1, 3 * hidden), 7)]))


TIME_CONV_ONNX = ROOT / "tests" / "fixtures" / "onnx" / "centred_conv_lstm_ts.onnx"


def _time_conv(mutate):
    """A valid streamed time convolution (history, clock, gates) as .ernn bytes after ``mutate``."""
    return lambda: ernn_bytes(mutate, TIME_CONV_ONNX.read_bytes())


def _set_attr(op, name, value):
    def mutate(graph):
        next(n for n in graph.nodes if n.op == op).attrs[name] = value
    return mutate


def _short_history(graph):
    s = next(s for s in graph.states if s.name.endswith("/history"))
    s.value.shape = s.next.shape = tuple(s.value.shape[:-1]) + (1,)
    s.init = np.zeros((8, 1), np.float32)


def _without_flush_limit(graph):
    node = next(n for n in graph.nodes if n.op == "history")
    graph.states = [s for s in graph.states if s.value is not node.inputs[3]]
    node.inputs = node.inputs[:3]


def _without_clock(graph):
    graph.states = [s for s in graph.states if s.name != "clock"]
    graph.nodes = [n for n in graph.nodes if n.op != "clock"]


def time_conv_cases():
    return {
        "ernn_history_frames_huge": Case(_time_conv(_set_attr("history", "frames", 10 ** 9)), suffix=".ernn"),
        "ernn_history_axis_text": Case(_time_conv(_set_attr("history", "axis", "time")), suffix=".ernn"),
        "ernn_history_buffer_short": Case(_time_conv(_short_history), suffix=".ernn"),
        "ernn_clock_cap_below_delay": Case(_time_conv(_set_attr("clock", "cap", 1)), suffix=".ernn"),
        "ernn_clock_cycle_huge": Case(_time_conv(_set_attr("clock", "cycle", 10 ** 12)), suffix=".ernn"),
        "ernn_clock_chain_forged": Case(_time_conv(_set_attr("clock", "out_chain", [["window", 1, 1, 0, 0]])),
                                        suffix=".ernn"),
        "ernn_history_chain_text": Case(_time_conv(_set_attr("history", "in_chain", "window")), suffix=".ernn"),
        "ernn_period_zero": Case(_time_conv(_set_attr("lstm", "period", 0)), suffix=".ernn"),
        "ernn_due_from_negative": Case(_time_conv(_set_attr("lstm", "due_from", -3)), suffix=".ernn"),
        "ernn_without_clock": Case(_time_conv(_without_clock), suffix=".ernn"),
        "ernn_history_without_limit": Case(_time_conv(_without_flush_limit), suffix=".ernn"),
    }


def sniff_cases():
    tfl = (TFLITE_FIXTURES / "k3_gru.tflite").read_bytes()
    return {
        "ernn_as_bytes_loads": Case(ernn_bytes, suffix=".ernn", action="load-bytes", expect="none"),
        "ernn_bad_magic": Case(lambda: b"XXXX" + ernn_bytes()[4:], suffix=".ernn", expect="ModelFormatError"),
        "ernn_truncated_header": Case(lambda: ernn_bytes()[:20], suffix=".ernn", expect="ModelFormatError"),
        "ernn_truncated_as_bytes": Case(lambda: ernn_bytes()[:20000], suffix=".ernn", action="load-bytes",
                                        expect="ModelFormatError"),
        "ernn_dense_bias_one_float": Case(lambda: ernn_bytes(_one_float("dense", 2)), suffix=".ernn"),
        "ernn_lstm_bias_one_float": Case(lambda: ernn_bytes(_one_float("lstm", 3)), suffix=".ernn"),
        "ernn_lstm_peephole_1x1_h1024": Case(lambda: ernn_bytes(_one_float("lstm", 7), _valid_peephole()),
                                             suffix=".ernn"),
        "ernn_layernorm_scale_one_float": Case(lambda: ernn_bytes(_one_float("layer_norm", 1),
                                                                  _bytes(_layer_norm((H,), (H,)))), suffix=".ernn"),
        "ernn_layernorm_bias_one_float": Case(lambda: ernn_bytes(_one_float("layer_norm", 2),
                                                                 _bytes(_layer_norm((H,), (H,)))), suffix=".ernn"),
        "tflite_bad_identifier": Case(tfl[:4] + b"XXXX" + tfl[8:], suffix=".tflite", expect="ModelFormatError"),
        "empty_file": Case(b"", suffix=".onnx", expect="ModelFormatError"),
        "empty_bytes": Case(b"", action="load-bytes", expect="ModelFormatError"),
        "dev_null": Case(b"", action="load:/dev/null", expect="ModelFormatError"),
    }


# ------------------------------------------------------------------ Stream arguments (on a valid model)
def stream_cases():
    valid = VALID_ONNX.read_bytes()
    return {
        "batch_0": Case(valid, action="stream:batch=0"),
        "batch_negative": Case(valid, action="stream:batch=-2"),
        "batch_10_million": Case(valid, action="stream:batch=10_000_000", expect="ResourceLimitError"),
        "threads_0": Case(valid, action="stream:threads=0"),
        "run_zero_frames": Case(valid, action="run-zero-frames"),
    }


def all_cases():
    return {"onnx": onnx_cases(), "tflite": tflite_cases(), "sniff": sniff_cases(), "stream": stream_cases(),
            "time": time_conv_cases()}


def main(argv):
    out = Path(argv[0] if argv else "malformed")
    out.mkdir(parents=True, exist_ok=True)
    for group, cases in all_cases().items():
        for name, case in cases.items():
            data = case.bytes()
            (out / f"{group}-{name}{case.suffix}").write_bytes(data)
            print(f"{group}-{name}{case.suffix}: {len(data)} bytes, {case.action}, expect {case.expect}")


if __name__ == "__main__":
    main(sys.argv[1:])
