"""The ONNX Conv op (1-D and 2-D, within a frame): edgernn.ops.conv and its ONNX translator.

Oracles, each independent of edgernn's code:
- onnxruntime (CPU, one thread) on small Conv models built here with onnx.helper, input
  [T, C, *spatial] with the time axis as Conv's N axis (the conv runs within each frame),
  run on the whole sequence at once; edgernn streams it one ``step`` per frame, with a batch
  of streams and with ``run`` (chunks), to 1e-5 max abs;
- ONNX's conformance cases for Conv (``onnx.backend.test.case.node.conv``: the expected outputs
  of ONNX's reference implementation), their N = 1 axis streamed as time;
- int8 weights: onnxruntime on the same model with W replaced by its per-output-channel
  symmetric int8 rounding, computed here from the quantisation scheme in edgernn/quant.py's
  docstring (scale = max |W[m]| / 127), and within the rounding bound of the float model;
- the kernel called directly on a hand-made row with N = 3 samples (onnxruntime with N = 3).
Malformed convolutions end in typed errors.
"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import edgernn  # noqa: E402
from edgernn.errors import EdgeRNNError, UnsupportedModelError  # noqa: E402
from compare import assert_close as check_close, model_frames, run_ort  # noqa: E402

T = 5
TOL = 1e-5


def conv_model(C, M, spatial, kernel, *, bias=True, seed=0, opset=17, x_shape=None, w_shape=None, batch_axis=False,
               **attrs):
    """One Conv node: x [T, C, *spatial] -> y, W [M, C/group, *kernel] (and B [M]) initializers.

    batch_axis: x is [T, 1, C, *spatial] reshaped to [-1, C, *spatial] first (the streaming pass
    then binds its axis 1 as the batch before it tries anything else)."""
    rng = np.random.default_rng(seed)
    group = attrs.get("group", 1)
    w = rng.uniform(-1, 1, w_shape or (M, C // group, *kernel)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "W")]
    if bias:
        inits.append(numpy_helper.from_array(rng.uniform(-1, 1, M).astype(np.float32), "B"))
    nodes = [helper.make_node("Conv", ["xc" if batch_axis else "x", "W", "B"][:3 if bias else 2], ["y"], **attrs)]
    if batch_axis:
        x_shape = ["T", 1, C, *spatial]
        inits.append(numpy_helper.from_array(np.array([-1, C, *spatial], np.int64), "to_conv"))
        nodes.insert(0, helper.make_node("Reshape", ["x", "to_conv"], ["xc"]))
    graph = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                            x_shape or ["T", C, *spatial])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def frames(model, n=T, seed=1, batch=None):
    return model_frames(model, n, seed, batch)


def assert_close(got, want, tol=TOL, what=""):
    check_close(got, want, tol, what)


# name: (C, M, spatial, kernel, attrs, bias). Mg = M / group < 8 with >= 8 positions runs the direct loop, else the matvec.
CASES = {
    "1d": (3, 5, [9], [3], {}, True),
    "1d_nobias_stride2_dil2_asym": (4, 6, [13], [3], dict(strides=[2], dilations=[2], pads=[2, 1]), False),
    "1d_depthwise": (6, 6, [10], [5], dict(group=6, pads=[2, 2]), True),
    "1d_depthwise_x2_stride2": (4, 8, [11], [3], dict(group=4, strides=[2], pads=[1, 0]), True),
    "1d_same_upper_s2": (3, 16, [10], [4], dict(auto_pad="SAME_UPPER", strides=[2]), True),
    "1d_same_lower_s2": (3, 16, [10], [4], dict(auto_pad="SAME_LOWER", strides=[2]), True),
    "1d_valid_dil3": (2, 9, [14], [3], dict(auto_pad="VALID", dilations=[3]), False),
    "1d_wide_70": (5, 70, [6], [2], dict(pads=[0, 1]), True),      # a 64-output panel + a padded one
    "2d": (3, 4, [6, 5], [3, 3], {}, True),
    "2d_nobias_strides_asym_pads": (4, 10, [7, 8], [3, 2], dict(strides=[2, 1], pads=[1, 0, 0, 2]), False),
    "2d_dilations": (3, 9, [9, 10], [2, 3], dict(dilations=[2, 3], pads=[1, 2, 1, 0]), True),
    "2d_groups2_direct": (4, 6, [5, 6], [3, 3], dict(group=2, pads=[1, 1, 1, 1]), True),
    "2d_groups2_matvec": (6, 20, [5, 4], [2, 3], dict(group=2, strides=[1, 2]), True),
    "2d_depthwise": (8, 8, [8, 7], [3, 3], dict(group=8, pads=[1, 1, 1, 1]), True),
    "2d_depthwise_s2_dil2": (5, 5, [9, 9], [3, 3], dict(group=5, strides=[2, 2], dilations=[2, 2], pads=[2, 1, 1, 2]),
                             False),
    "2d_same_upper": (3, 8, [7, 6], [3, 4], dict(auto_pad="SAME_UPPER", strides=[2, 2]), True),
    "2d_same_lower": (3, 8, [7, 6], [3, 4], dict(auto_pad="SAME_LOWER", strides=[2, 2]), True),
    "2d_same_lower_depthwise": (4, 4, [5, 6], [2, 2], dict(auto_pad="SAME_LOWER", group=4), True),
    "2d_valid": (2, 12, [6, 6], [3, 2], dict(auto_pad="VALID", strides=[1, 2]), True),
    "2d_notset_explicit_kernel_shape": (3, 8, [5, 5], [3, 3], dict(auto_pad="NOTSET", kernel_shape=[3, 3],
                                                                 pads=[0, 1, 2, 1]), True),
    "2d_1x1": (16, 24, [3, 4], [1, 1], {}, True),
}


def case_model(name, **kw):
    C, M, spatial, kernel, attrs, bias = CASES[name]
    return conv_model(C, M, spatial, kernel, bias=bias, **attrs, **kw)


@pytest.mark.parametrize("name", sorted(CASES))
def test_steps_match_onnxruntime(name):
    model = case_model(name)
    x = frames(model)
    want = run_ort(model, x)
    s = edgernn.load(model, time_axis=0).stream()
    got = np.stack([s.step(f) for f in x])
    assert_close(got, want, what=name)


@pytest.mark.parametrize("name", ["1d", "2d_nobias_strides_asym_pads", "2d_depthwise", "2d_groups2_matvec",
                                  "1d_wide_70"])
def test_a_batch_of_streams_and_chunks_match_onnxruntime(name):
    """Five streams stepped together (a block of 4 rows and 1), and ``run`` over chunks."""
    model = case_model(name)
    m = edgernn.load(model, time_axis=0)
    x = frames(model, batch=5)                                     # (T, 5, C, *spatial)
    want = run_ort(model, x.reshape(T * 5, *x.shape[2:])).reshape(T, 5, -1)
    s = m.stream(batch=5)
    stepped = np.stack([s.step(f) for f in x])
    assert_close(stepped.reshape(T, 5, -1), want, what=f"{name} batch")
    ran = m.stream().run(x[:, 0])
    assert_close(ran.reshape(T, -1), want[:, 0], what=f"{name} run")


def test_opset_1_conv_and_reference_and_ernn_round_trip(tmp_path):
    """Conv as opset 1 wrote it; the NumPy reference on the packed graph; an .ernn file."""
    from edgernn.convert import convert
    from edgernn.reference import ReferenceStream
    model = case_model("2d_dilations", opset=1)
    x = frames(model)
    want = run_ort(model, x)
    m = edgernn.load(model, time_axis=0)
    ref = ReferenceStream(m)
    assert_close(np.stack([ref.step(f) for f in x]).reshape(want.shape), want, what="reference")
    path = tmp_path / "conv.onnx"
    onnx.save(model, str(path))
    back = convert(str(path), str(tmp_path / "conv.ernn"), time_axis=0)
    assert_close(back.stream().run(x), want, what="convert")
    assert_close(edgernn.load(str(tmp_path / "conv.ernn")).stream().run(x), want, what=".ernn")


# ---------------------------------------------------------------- int8 weights
def int8_rounded(w):
    """W with each output channel's weights rounded to int8 steps of max |W[m]| / 127."""
    scale = np.abs(w).reshape(len(w), -1).max(axis=1) / 127
    scale = np.where(scale > 0, scale, 1).reshape((-1,) + (1,) * (w.ndim - 1)).astype(np.float32)
    return (np.clip(np.rint(w / scale), -127, 127) * scale).astype(np.float32), scale


@pytest.mark.parametrize("name", ["1d", "1d_depthwise", "2d_nobias_strides_asym_pads", "2d_groups2_matvec",
                                  "2d_depthwise_s2_dil2", "1d_wide_70", "2d_same_lower"])
def test_int8_weights_match_onnxruntime_on_rounded_weights(name):
    model = case_model(name)
    x = frames(model)
    want_float = run_ort(model, x)
    w = numpy_helper.to_array(model.graph.initializer[0])
    rounded, scale = int8_rounded(w)
    q_model = onnx.ModelProto()
    q_model.CopyFrom(model)
    q_model.graph.initializer[0].CopyFrom(numpy_helper.from_array(rounded, "W"))
    want = run_ort(q_model, x)
    m = edgernn.load(model, time_axis=0, weights="int8")
    assert any(v is not None and v.dtype == "int8" for n in m.graph.nodes for v in n.inputs)
    got = m.stream().run(x)
    assert_close(got, want, tol=1e-4, what=f"{name} int8")
    # and within the rounding bound of the float model: |dW| <= scale / 2 per weight
    taps = np.prod(w.shape[1:])
    bound = 0.5 * float(scale.max()) * taps * float(np.abs(x).max()) + 1e-4
    assert_close(got, want_float, tol=bound, what=f"{name} int8 vs float")
    assert float(np.max(np.abs(got - want_float))) > 0      # the weights really were rounded


# ---------------------------------------------------------------- ONNX conformance cases
def _conformance_cases():
    import importlib
    try:
        import onnx.backend.test.case.node as node_cases
        importlib.import_module("onnx.backend.test.case.node.conv")
        cases = list(node_cases._NodeTestCases)
    except (ImportError, AttributeError):  # pragma: no cover - depends on the onnx version
        from onnx.backend.test.case.node import collect_testcases
        cases = collect_testcases()
    return {c.name: c for c in cases if c.model.graph.node and c.model.graph.node[0].op_type == "Conv"}


CONFORMANCE = _conformance_cases()


def test_conformance_cases_collected():
    assert len(CONFORMANCE) >= 6, sorted(CONFORMANCE)


@pytest.mark.parametrize("name", sorted(CONFORMANCE))
def test_onnx_conformance(name):
    """X [1, C, H, W] with its N axis declared as time; W bound as an initializer; each case's
    input streamed three times (three frames), every frame giving the expected output."""
    case = CONFORMANCE[name]
    (inputs, (expected,)), = case.data_sets[:1]
    m = onnx.ModelProto()
    m.CopyFrom(case.model)
    g = m.graph
    names = [i.name for i in g.input]
    for nm, arr in zip(names[1:], inputs[1:]):
        g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(arr), nm))
    x = inputs[0]
    assert x.shape[0] == 1
    del g.input[:]
    g.input.append(helper.make_tensor_value_info(names[0], TensorProto.FLOAT, ["T", *x.shape[1:]]))
    model = edgernn.load(m, time_axis=0)
    got = model.stream().run(np.repeat(x, 3, axis=0))
    for frame in got:
        np.testing.assert_allclose(frame, expected[0], rtol=1e-5, atol=1e-5, err_msg=name)


# ---------------------------------------------------------------- the kernel on N > 1 samples
@pytest.mark.parametrize("name", ["2d_groups2_direct", "2d_nobias_strides_asym_pads", "1d_same_lower_s2"])
@pytest.mark.parametrize("weights", ["float32", "int8"])
def test_kernel_loops_over_samples(name, weights):
    """A row with samples = 3 (a concrete N), run on two streams: each stream equals ORT on
    X [3, C, *spatial]; the row passes check_row, and a patch or output pushed past the work
    arena, or a zero stride, is refused."""
    from edgernn.ops.conv import F, ROW, Conv, conv_kernel, scratch_elements
    from edgernn.ops.matvec import matvec_descriptor, panel_lanes
    from edgernn.ops.row import check_row
    from edgernn.plan import ConstArena
    model = case_model(name)
    node = next(n for n in edgernn.load(model, time_axis=0, weights=weights).graph.nodes if n.op == "conv")
    g = Conv().geometry(node)
    w, b = node.inputs[1], node.input(2)
    arena = ConstArena.build([a for a in (w.const, w.scale, None if b is None else b.const) if a is not None])
    N, x_size = 3, 3 * g.C * int(np.prod(g.in_sizes))
    y_size = N * g.M * int(np.prod(g.out_sizes))
    two = lambda v, fill: [fill] * (2 - len(v)) + list(v)
    (in_h, in_w), (out_h, out_w), (k_h, k_w) = two(g.in_sizes, 1), two(g.out_sizes, 1), two(g.kernel, 1)
    (sh, sw), (dh, dw), (top, left) = two(g.strides, 1), two(g.dilations, 1), two(g.pads_begin, 0)
    w_off = arena.byte_offset(w.const, "w") // (1 if w.scale is not None else 4)
    fields = dict(x=0, y=x_size, w=w_off, w_scale=-1 if w.scale is None else arena.byte_offset(w.scale, "s") // 4,
                  w_matvec=matvec_descriptor(panel_lanes([g.M // g.group]), w.scale is not None),
                  b=-1 if b is None else arena.byte_offset(b.const, "b") // 4, patch=x_size + y_size,
                  samples=N, channels=g.C, groups=g.group, m=g.M, in_h=in_h, in_w=in_w,
                  out_h=out_h, out_w=out_w, k_h=k_h, k_w=k_w, stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw,
                  pad_top=top, pad_left=left, direct=int(Conv.direct(g)))
    row = ROW.make(fields)
    patch = scratch_elements(Conv.direct(g), g.C, g.group, g.M, k_h, k_w, out_h, out_w, sh, sw, dh, dw)
    width = x_size + y_size + patch
    sizes = {"consts": arena.consts.size, "qconsts": arena.qconsts.size, "work": width, "fparams": 1}
    check_row(ROW, row, sizes, "conv row")
    x = np.random.default_rng(3).standard_normal((2, N, g.C, *g.in_sizes)).astype(np.float32)
    work = np.zeros((2, width), np.float32)
    work[:, :x_size] = x.reshape(2, -1)
    conv_kernel(row, np.zeros(1, np.float32), arena.consts, arena.qconsts, work, False)
    want_model = model
    if weights == "int8":
        want_model = onnx.ModelProto()
        want_model.CopyFrom(model)
        rounded, _ = int8_rounded(numpy_helper.to_array(model.graph.initializer[0]))
        want_model.graph.initializer[0].CopyFrom(numpy_helper.from_array(rounded, "W"))
    for s in range(2):
        assert_close(work[s, x_size:x_size + y_size].reshape(N, g.M, *g.out_sizes), run_ort(want_model, x[s]),
                     tol=1e-4, what=f"stream {s}")
    forgeries = [("patch", width - patch + 1), ("y", width - y_size + 1), ("stride_w", 0), ("groups", 0),
                 ("samples", 1000)]
    if Conv.direct(g):            # the direct path's scratch grows with the output width
        forgeries.append(("out_w", out_w + 9))
    for field, forged in forgeries:
        bad = row.copy()
        bad[getattr(F, field)] = forged
        with pytest.raises(UnsupportedModelError, match="reaches"):
            check_row(ROW, bad, sizes, f"conv row, {field} = {forged}")


# ---------------------------------------------------------------- malformed convolutions
BAD = {
    "w_wrong_channels": (dict(C=4, M=6, spatial=[8], kernel=[3], w_shape=(6, 3, 3)), "weight W"),
    "w_wrong_rank": (dict(C=4, M=6, spatial=[8], kernel=[3], w_shape=(6, 4, 3, 3)), "kernel axes"),
    "group_not_dividing_c": (dict(C=5, M=6, spatial=[8], kernel=[3], group=2, w_shape=(6, 2, 3)), "does not divide"),
    "group_not_dividing_m": (dict(C=4, M=6, spatial=[8], kernel=[3], group=4, w_shape=(6, 1, 3)), "multiple of group"),
    "zero_stride": (dict(C=2, M=3, spatial=[8], kernel=[3], strides=[0]), "strides"),
    "zero_dilation": (dict(C=2, M=3, spatial=[5, 5], kernel=[3, 3], dilations=[1, 0]), "dilations"),
    "negative_pad": (dict(C=2, M=3, spatial=[8], kernel=[3], pads=[-1, 0]), "pads"),
    "pads_wrong_length": (dict(C=2, M=3, spatial=[5, 5], kernel=[3, 3], pads=[1, 1]), "pads"),
    "kernel_too_large": (dict(C=2, M=3, spatial=[4], kernel=[3], dilations=[2]), "does not fit"),
    "kernel_shape_disagrees": (dict(C=2, M=3, spatial=[8], kernel=[3], kernel_shape=[2]), "kernel_shape"),
    "unknown_auto_pad": (dict(C=2, M=3, spatial=[8], kernel=[3], auto_pad="SAME"), "auto_pad"),
    "bias_wrong_size": (dict(C=2, M=3, spatial=[8], kernel=[3]), "bias"),
    "conv_along_time_auto_pad": (dict(C=2, M=3, spatial=[8], kernel=[3], x_shape=[1, 2, "T"], auto_pad="SAME_UPPER"),
                                 "explicit pads"),
    "3d_conv": (dict(C=2, M=3, spatial=[4, 4, 4], kernel=[2, 2, 2]), "spatial axes"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_conv_is_a_typed_error(name):
    kw, message = BAD[name]
    kw = dict(kw)
    C, M, spatial, kernel = kw.pop("C"), kw.pop("M"), kw.pop("spatial"), kw.pop("kernel")
    model = conv_model(C, M, spatial, kernel, batch_axis=name != "conv_along_time_auto_pad", **kw)
    if name == "bias_wrong_size":
        model.graph.initializer[1].CopyFrom(numpy_helper.from_array(np.ones(M + 1, np.float32), "B"))
    time_axis = 2 if name == "conv_along_time_auto_pad" else 0
    with pytest.raises(UnsupportedModelError, match=message) as err:
        edgernn.load(model, time_axis=time_axis)
    assert "Conv" in str(err.value) or "conv" in str(err.value)


def test_computed_weight_is_a_typed_error():
    """W computed from the frame (Relu(x) reshaped): the conv needs it constant."""
    model = conv_model(2, 2, [3], [3], bias=False)
    model.graph.initializer.pop(0)
    model.graph.initializer.append(numpy_helper.from_array(np.array([2, 1, 3], np.int64), "w_shape"))
    model.graph.node.insert(0, helper.make_node("Reshape", ["x", "w_shape"], ["W"]))
    with pytest.raises(EdgeRNNError, match="constant"):
        edgernn.load(model, time_axis=0)
