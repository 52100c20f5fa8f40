"""The ONNX MaxPool and AveragePool ops within a frame: edgernn.ops.pool and its translator.

Oracles, each independent of edgernn's code:
- onnxruntime (one thread) on small pool models built here with onnx.helper, x [T, C, *spatial]
  with time as the pool's N axis, the whole sequence at once; edgernn streams it one step per
  frame and in a batch of streams, to 1e-6;
- ONNX's conformance cases for MaxPool and AveragePool (the expected outputs of ONNX's
  reference implementation) that edgernn supports (no ceil_mode, no Indices output), their
  N = 1 axis streamed as time.
Unsupported attributes end in typed errors naming the node.
"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import edgernn  # noqa: E402
from edgernn.errors import UnsupportedModelError  # noqa: E402
from compare import assert_close, model_frames, run_ort  # noqa: E402

T = 4


def pool_model(op, C, spatial, opset=19, lead="T", **attrs):
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], **attrs)], "pool",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [lead, C, *spatial])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


CASES = {
    "max_1d": ("MaxPool", 3, [10], dict(kernel_shape=[3])),
    "max_1d_s2_pads": ("MaxPool", 2, [11], dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
    "max_1d_dil2": ("MaxPool", 2, [12], dict(kernel_shape=[3], dilations=[2], pads=[2, 0])),
    "max_2d": ("MaxPool", 3, [6, 7], dict(kernel_shape=[2, 3], strides=[2, 1], pads=[1, 1, 0, 1])),
    "max_2d_same_upper": ("MaxPool", 2, [7, 5], dict(kernel_shape=[3, 2], strides=[2, 2], auto_pad="SAME_UPPER")),
    "avg_1d": ("AveragePool", 3, [9], dict(kernel_shape=[4], strides=[2])),
    "avg_1d_pads_exclude": ("AveragePool", 2, [8], dict(kernel_shape=[3], pads=[1, 2])),
    "avg_1d_pads_include": ("AveragePool", 2, [8], dict(kernel_shape=[3], pads=[1, 2], count_include_pad=1)),
    "avg_2d_freq_only": ("AveragePool", 4, [1, 8], dict(kernel_shape=[1, 2], strides=[1, 2])),
    "avg_2d_dil_include": ("AveragePool", 2, [7, 9], dict(kernel_shape=[2, 3], dilations=[2, 2], pads=[1, 2, 1, 1],
                                                       count_include_pad=1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_pools_match_onnxruntime(name):
    op, C, spatial, attrs = CASES[name]
    model = pool_model(op, C, spatial, **attrs)
    x = model_frames(model, T)
    want = run_ort(model, x)
    m = edgernn.load(model, time_axis=0)
    s = m.stream()
    assert_close(np.stack([s.step(f) for f in x]), want, 1e-6, name)
    batch = model_frames(model, T, seed=3, batch=3)
    stepped = np.stack([m.stream(batch=3).step(f) for f in batch])
    assert_close(stepped, run_ort(model, batch.reshape(T * 3, *batch.shape[2:])).reshape(stepped.shape), 1e-6,
                 f"{name} batch")


def _conformance_cases():
    from onnx.backend.test.case.node import collect_testcases
    out = {}
    for c in collect_testcases():
        node = c.model.graph.node[0] if c.model.graph.node else None
        if node is None or node.op_type not in ("MaxPool", "AveragePool") or len(node.output) > 1:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("ceil_mode", 0) or c.model.graph.input[0].type.tensor_type.shape.dim[0].dim_value != 1:
            continue
        x = c.model.graph.input[0].type.tensor_type
        if len(x.shape.dim) not in (3, 4) or x.elem_type != TensorProto.FLOAT:
            continue
        out[c.name] = c
    return out


CONFORMANCE = _conformance_cases()


def test_conformance_cases_collected():
    assert len(CONFORMANCE) >= 12, sorted(CONFORMANCE)


@pytest.mark.parametrize("name", sorted(CONFORMANCE))
def test_onnx_conformance(name):
    case = CONFORMANCE[name]
    (inputs, (expected,)), = case.data_sets[:1]
    m = onnx.ModelProto()
    m.CopyFrom(case.model)
    x = inputs[0]
    name0 = m.graph.input[0].name
    del m.graph.input[:]
    m.graph.input.append(helper.make_tensor_value_info(name0, TensorProto.FLOAT, ["T", *x.shape[1:]]))
    try:
        model = edgernn.load(m, time_axis=0)
    except UnsupportedModelError as e:
        pytest.fail(f"{name}: {e}")
    got = model.stream().run(np.repeat(x, 2, axis=0))
    for frame in got:
        np.testing.assert_allclose(frame, expected[0], rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("attrs, message", [
    (dict(kernel_shape=[3], ceil_mode=1), "ceil_mode"),
    (dict(kernel_shape=[2], pads=[2, 0]), "reach past the kernel"),
    (dict(kernel_shape=[3], strides=[0]), "strides"),
])
def test_unsupported_pools_are_typed_errors(attrs, message):
    with pytest.raises(UnsupportedModelError, match=message):
        edgernn.load(pool_model("MaxPool", 2, [9], lead=1, **attrs), step=True)


def test_max_pool_indices_output_is_a_typed_error():
    graph = helper.make_graph([helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2])], "pool",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 2, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("i", TensorProto.INT64, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=10)
    with pytest.raises(UnsupportedModelError, match="Indices"):
        edgernn.load(model, time_axis=0)
