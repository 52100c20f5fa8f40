"""The ONNX ConvTranspose op (1-D and 2-D, within a frame): edgernn.ops.conv_transpose and its
ONNX translator.

Oracles, each independent of edgernn's code:
- onnxruntime (CPU, one thread) on small ConvTranspose models built here with onnx.helper,
  input [T, C, *spatial] with the time axis as the op's N axis, run on the whole sequence at
  once; edgernn streams it one ``step`` per frame, with a batch of streams and with ``run``
  (chunks), to 1e-5 max abs;
- ONNX's conformance cases for ConvTranspose (the expected outputs of ONNX's reference
  implementation), their N axis streamed as time;
- int8 weights: onnxruntime on the same model with W replaced by its symmetric int8 rounding,
  computed here from the quantisation scheme (edgernn/quant.py: one scale per packed column,
  max |W| / 127 over the column's inputs; a column of ConvTranspose's matrix is one (output
  channel, kernel tap) of one group, its inputs the group's input channels);
- the kernel called directly on a hand-made row with N = 3 samples (onnxruntime with N = 3);
- a PyTorch decoder step graph (exporters/make_decoder_fixtures.py: GRU, Linear,
  ConvTranspose1d x 2) against PyTorch's recorded outputs and onnxruntime, state fed back.
Malformed operands and forged rows end in typed errors.
"""
from pathlib import Path

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
FIXTURES = Path(__file__).parent / "fixtures" / "onnx"


def ct_model(C, M, spatial, kernel, *, bias=True, seed=0, opset=17, x_shape=None, w_shape=None, batch_axis=False,
             **attrs):
    """One ConvTranspose node: x [T, C, *spatial] -> y, W [C, M/group, *kernel] (and B [M]).

    batch_axis: x is [T, 1, C, *spatial] reshaped to [-1, C, *spatial] first."""
    rng = np.random.default_rng(seed)
    group = attrs.get("group", 1)
    w = rng.uniform(-1, 1, w_shape or (C, M // group, *kernel)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "W")]
    if bias:
        inits.append(numpy_helper.from_array(rng.uniform(-1, 1, M).astype(np.float32), "B"))
    nodes = [helper.make_node("ConvTranspose", ["xc" if batch_axis else "x", "W", "B"][:3 if bias else 2], ["y"],
                              **attrs)]
    if batch_axis:
        x_shape = ["T", 1, C, *spatial]
        inits.append(numpy_helper.from_array(np.array([-1, C, *spatial], np.int64), "to_op"))
        nodes.insert(0, helper.make_node("Reshape", ["x", "to_op"], ["xc"]))
    graph = helper.make_graph(nodes, "conv_transpose",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape or ["T", C, *spatial])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def frames(model, n=T, seed=1, batch=None):
    return model_frames(model, n, seed, batch)


def assert_close(got, want, tol=TOL, what=""):
    check_close(got, want, tol, what)


def direct(C, M, kernel, attrs):
    """Whether the case runs the kernel's direct path (fewer than 8 columns per group)."""
    return M // attrs.get("group", 1) * int(np.prod(kernel)) < 8


# name: (C, M, spatial, kernel, attrs, bias)
CASES = {
    "1d": (3, 5, [6], [3], {}, True),
    "1d_stride2_pads": (4, 6, [5], [4], dict(strides=[2], pads=[1, 1]), True),
    "1d_direct_output_padding": (4, 1, [7], [3], dict(strides=[2], pads=[1, 1], output_padding=[1]), True),
    "1d_nobias_dil2_asym": (3, 4, [6], [3], dict(dilations=[2], pads=[2, 1], strides=[3]), False),
    "1d_groups2": (4, 6, [5], [3], dict(group=2, strides=[2]), True),
    "1d_depthwise_direct": (6, 6, [9], [3], dict(group=6, strides=[2], pads=[1, 0]), True),
    "1d_output_shape_larger": (3, 4, [5], [3], dict(output_shape=[12], strides=[2]), True),
    "1d_output_shape_cropped": (3, 4, [5], [3], dict(output_shape=[9], strides=[2]), False),
    "1d_same_upper": (3, 4, [5], [4], dict(auto_pad="SAME_UPPER", strides=[2]), True),
    "1d_same_lower": (3, 4, [5], [4], dict(auto_pad="SAME_LOWER", strides=[2]), True),
    "1d_same_upper_odd_total": (3, 4, [5], [3], dict(auto_pad="SAME_UPPER", strides=[2]), True),
    "1d_same_lower_odd_total": (3, 4, [5], [3], dict(auto_pad="SAME_LOWER", strides=[2]), True),
    "1d_valid": (2, 5, [4], [3], dict(auto_pad="VALID", strides=[2]), True),
    "1d_wide_70_columns": (5, 35, [4], [2], dict(strides=[2]), True),   # a 64-column panel + a padded one
    "1d_long_blocks": (6, 4, [21], [2], dict(strides=[2]), True),       # 21 positions: blocks of 8, 8, 5
    "2d": (3, 4, [4, 5], [3, 3], {}, True),
    "2d_strides_dil_asym_pads": (3, 8, [4, 5], [3, 2], dict(strides=[2, 1], dilations=[1, 2], pads=[1, 0, 0, 1]),
                                 True),
    "2d_nobias_output_padding": (2, 3, [3, 4], [3, 3], dict(strides=[3, 2], output_padding=[2, 1], pads=[1, 1, 0, 1]),
                                 False),
    "2d_groups2": (4, 6, [3, 4], [2, 3], dict(group=2, strides=[2, 2]), True),
    "2d_depthwise_direct": (5, 5, [4, 4], [2, 2], dict(group=5, strides=[2, 2]), True),
    "2d_direct_dilations": (3, 1, [4, 5], [2, 3], dict(dilations=[2, 2], strides=[1, 2], pads=[0, 1, 1, 0]), True),
    "2d_output_shape": (2, 3, [3, 3], [3, 3], dict(output_shape=[10, 8], strides=[3, 2]), True),
    "2d_same_upper": (3, 4, [3, 4], [3, 4], dict(auto_pad="SAME_UPPER", strides=[2, 2]), True),
    "2d_same_lower": (3, 4, [3, 4], [3, 4], dict(auto_pad="SAME_LOWER", strides=[2, 3]), True),
    "2d_kernel_shape_given": (2, 4, [3, 3], [2, 2], dict(kernel_shape=[2, 2], strides=[2, 2]), True),
    "2d_1x1": (16, 24, [3, 4], [1, 1], {}, True),
}


def case_model(name, **kw):
    C, M, spatial, kernel, attrs, bias = CASES[name]
    return ct_model(C, M, spatial, kernel, bias=bias, **attrs, **kw)


def test_cases_cover_both_kernel_paths():
    paths = {direct(C, M, k, a) for C, M, _, k, a, _ in CASES.values()}
    assert paths == {True, False}


@pytest.mark.parametrize("name", sorted(CASES))
def test_steps_match_onnxruntime(name):
    model = case_model(name)
    x = frames(model)
    want = run_ort(model, x)
    m = edgernn.load(model, time_axis=0)
    assert any(n.op == "conv_transpose" for n in m.graph.nodes)
    s = m.stream()
    got = np.stack([s.step(f) for f in x])
    assert_close(got, want, what=name)


@pytest.mark.parametrize("name", ["1d", "1d_depthwise_direct", "2d_groups2", "1d_wide_70_columns", "1d_long_blocks"])
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


@pytest.mark.parametrize("name", ["2d_strides_dil_asym_pads", "1d_depthwise_direct"])
def test_opset_1_and_reference_and_ernn_round_trip(name, tmp_path):
    """ConvTranspose as opset 1 wrote it; the NumPy reference on the packed graph; an .ernn file."""
    from edgernn.convert import convert
    from edgernn.reference import ReferenceStream
    model = case_model(name, opset=1)
    x = frames(model)
    want = run_ort(model, x)
    m = edgernn.load(model, time_axis=0)
    ref = ReferenceStream(m)
    assert_close(np.stack([ref.step(f) for f in x]).reshape(want.shape), want, what="reference")
    path = tmp_path / "ct.onnx"
    onnx.save(model, str(path))
    back = convert(str(path), str(tmp_path / "ct.ernn"), time_axis=0)
    assert_close(back.stream().run(x), want, what="convert")
    assert_close(edgernn.load(str(tmp_path / "ct.ernn")).stream().run(x), want, what=".ernn")


def test_constant_input_folds_at_load_through_the_reference():
    """ConvTranspose of a constant X (its unpacked weights) is computed at load by the NumPy
    reference and added to the frame: equal to onnxruntime."""
    model = case_model("2d_nobias_output_padding")
    g = model.graph
    x_const = np.random.default_rng(5).standard_normal((1, 2, 3, 4)).astype(np.float32)
    want_shape = run_ort(model, x_const).shape[1:]
    g.initializer.append(numpy_helper.from_array(x_const, "x_const"))
    g.node[0].input[0] = "x_const"
    g.node[0].output[0] = "folded"
    g.node.append(helper.make_node("Add", ["x", "folded"], ["y"]))
    del g.input[:]
    g.input.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", *want_shape]))
    x = np.random.default_rng(6).standard_normal((T, *want_shape)).astype(np.float32)
    m = edgernn.load(model, time_axis=0)
    assert not any(n.op == "conv_transpose" for n in m.graph.nodes)
    assert_close(m.stream().run(x), run_ort(model, x), what="folded")


def test_pointwise_along_time_runs_each_frame_alone():
    """Kernel 1, stride 1, no padding along the time axis: allowed, frame by frame."""
    model = ct_model(3, 4, [], [1], x_shape=[1, 3, "T"])
    x = np.random.default_rng(2).standard_normal((1, 3, T)).astype(np.float32)
    want = run_ort(model, x)                                    # [1, 4, T]
    s = edgernn.load(model, time_axis=2).stream()
    got = np.stack([s.step(x[0, :, t]) for t in range(T)])    # the frame [3] -> [4] (N = 1 is the batch)
    assert_close(got.reshape(T, 4), want[0].T, what="pointwise along time")


# ---------------------------------------------------------------- int8 weights
def int8_rounded(w, group):
    """W [C, Mg, *kernel] rounded to int8 steps of max |W| / 127 per packed column: one
    (output channel, tap) of one group, over the group's input channels."""
    C = w.shape[0]
    cols = w.reshape(group, C // group, -1)
    scale = np.abs(cols).max(axis=1, keepdims=True) / 127
    scale = np.where(scale > 0, scale, 1).astype(np.float32)
    rounded = (np.clip(np.rint(cols / scale), -127, 127) * scale).astype(np.float32)
    return rounded.reshape(w.shape), scale


@pytest.mark.parametrize("name", ["1d", "1d_depthwise_direct", "2d_strides_dil_asym_pads", "2d_groups2",
                                  "1d_wide_70_columns", "1d_direct_output_padding", "2d_same_lower"])
def test_int8_weights_match_onnxruntime_on_rounded_weights(name):
    C, M, spatial, kernel, attrs, bias = CASES[name]
    model = case_model(name)
    x = frames(model)
    want_float = run_ort(model, x)
    w = numpy_helper.to_array(model.graph.initializer[0])
    rounded, scale = int8_rounded(w, attrs.get("group", 1))
    q_model = onnx.ModelProto()
    q_model.CopyFrom(model)
    q_model.graph.initializer[0].CopyFrom(numpy_helper.from_array(rounded, "W"))
    want = run_ort(q_model, x)
    m = edgernn.load(model, time_axis=0, weights="int8")
    assert any(v is not None and v.dtype == "int8" for n in m.graph.nodes for v in n.inputs)
    got = m.stream().run(x)
    assert_close(got, want, tol=1e-4, what=f"{name} int8")
    # and within the rounding bound of the float model: |dW| <= scale / 2 per weight
    taps = C // attrs.get("group", 1) * int(np.prod(kernel))
    bound = 0.5 * float(scale.max()) * taps * float(np.abs(x).max()) + 1e-4
    assert_close(got, want_float, tol=bound, what=f"{name} int8 vs float")
    assert float(np.max(np.abs(got - want_float))) > 0      # the weights really were rounded


# ---------------------------------------------------------------- ONNX conformance cases
def _conformance_cases():
    import warnings
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings():          # other ops' cases compute infinities on purpose
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    return {c.name: c for c in cases if c.model.graph.node and c.model.graph.node[0].op_type == "ConvTranspose"}


CONFORMANCE = _conformance_cases()
RUNNABLE = sorted(n for n, c in CONFORMANCE.items() if len(c.data_sets[0][0][0].shape) <= 4)


def _conformance_model(case):
    """The case's model with W bound as an initializer; X [N, C, *spatial] with N declared as
    time when N = 1, else kept as a constant size (the kernel then loops over the samples)."""
    (inputs, (expected,)), = case.data_sets[:1]
    m = onnx.ModelProto()
    m.CopyFrom(case.model)
    g = m.graph
    names = [i.name for i in g.input]
    for nm, arr in zip(names[1:], inputs[1:]):
        g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(arr), nm))
    x = inputs[0]
    del g.input[:]
    g.input.append(helper.make_tensor_value_info(names[0], TensorProto.FLOAT, ["T", *x.shape[1:]]))
    return m, x, expected


def test_conformance_cases_collected():
    assert len(RUNNABLE) >= 9 and "test_convtranspose_3d" in CONFORMANCE, sorted(CONFORMANCE)


@pytest.mark.parametrize("name", RUNNABLE)
def test_onnx_conformance(name):
    """Each case's samples streamed as frames, twice over: every frame its expected output."""
    m, x, expected = _conformance_model(CONFORMANCE[name])
    model = edgernn.load(m, time_axis=0)
    got = model.stream().run(np.concatenate([x, x]))
    np.testing.assert_allclose(got, np.concatenate([expected, expected]), rtol=1e-5, atol=1e-5, err_msg=name)


def test_conformance_3d_is_a_typed_error():
    m, _, _ = _conformance_model(CONFORMANCE["test_convtranspose_3d"])
    with pytest.raises(UnsupportedModelError, match="spatial axes"):
        edgernn.load(m, time_axis=0)


# ---------------------------------------------------------------- the kernel on N > 1 samples
@pytest.mark.parametrize("name", ["2d_groups2", "2d_strides_dil_asym_pads", "1d_depthwise_direct",
                                  "2d_direct_dilations"])
@pytest.mark.parametrize("weights", ["float32", "int8"])
def test_kernel_loops_over_samples_and_forged_rows_are_refused(name, weights):
    """A row with samples = 3 (a concrete N), run on two streams: each stream equals ORT on
    X [3, C, *spatial]; the row passes check_row, and a scratch or output pushed past the
    work arena, a zero stride or dilation, zero groups or too many samples are refused."""
    from edgernn.ops.conv_transpose import BLOCK, F, ROW, ConvTranspose, conv_transpose_kernel
    from edgernn.ops.matvec import matvec_descriptor, panel_lanes
    from edgernn.ops.row import check_row
    from edgernn.plan import ConstArena
    C_, M_, _, kernel_, attrs, _ = CASES[name]
    model = case_model(name)
    node = next(n for n in edgernn.load(model, time_axis=0, weights=weights).graph.nodes if n.op == "conv_transpose")
    g = ConvTranspose().geometry(node)
    w, b = node.inputs[1], node.input(2)
    arena = ConstArena.build([a for a in (w.const, w.scale, None if b is None else b.const) if a is not None])
    N, x_size = 3, 3 * g.C * int(np.prod(g.in_sizes))
    y_size = N * g.M * int(np.prod(g.out_sizes))
    cg, cols = g.C // g.group, g.M // g.group * int(np.prod(g.kernel))
    two = lambda v, fill: [fill] * (2 - len(v)) + list(v)
    (in_h, in_w), (out_h, out_w), (k_h, k_w) = two(g.in_sizes, 1), two(g.out_sizes, 1), two(g.kernel, 1)
    (sh, sw), (dh, dw), (top, left) = two(g.strides, 1), two(g.dilations, 1), two(g.pads_begin, 0)
    w_off = arena.byte_offset(w.const, "w") // (1 if w.scale is not None else 4)
    fields = dict(x=0, y=x_size, w=w_off, w_scale=-1 if w.scale is None else arena.byte_offset(w.scale, "s") // 4,
                  w_matvec=matvec_descriptor(panel_lanes([cols]), w.scale is not None),
                  b=-1 if b is None else arena.byte_offset(b.const, "b") // 4, columns=x_size + y_size,
                  samples=N, channels=g.C, groups=g.group, m=g.M, in_h=in_h, in_w=in_w,
                  out_h=out_h, out_w=out_w, k_h=k_h, k_w=k_w, stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw,
                  pad_top=top, pad_left=left, direct=int(ConvTranspose.direct(g)))
    assert fields["direct"] == int(direct(C_, M_, kernel_, attrs))
    row = ROW.make(fields)
    scratch = BLOCK * (cg + cols)
    width = x_size + y_size + scratch
    sizes = {"consts": arena.consts.size, "qconsts": arena.qconsts.size, "work": width, "fparams": 1}
    check_row(ROW, row, sizes, "conv_transpose row")
    x = np.random.default_rng(3).standard_normal((2, N, g.C, *g.in_sizes)).astype(np.float32)
    work = np.zeros((2, width), np.float32)
    work[:, :x_size] = x.reshape(2, -1)
    conv_transpose_kernel(row, np.zeros(1, np.float32), arena.consts, arena.qconsts, work, False)
    want_model = model
    if weights == "int8":
        want_model = onnx.ModelProto()
        want_model.CopyFrom(model)
        rounded, _ = int8_rounded(numpy_helper.to_array(model.graph.initializer[0]), g.group)
        want_model.graph.initializer[0].CopyFrom(numpy_helper.from_array(rounded, "W"))
    for s in range(2):
        assert_close(work[s, x_size:x_size + y_size].reshape(N, g.M, *g.out_sizes), run_ort(want_model, x[s]),
                     tol=1e-4, what=f"stream {s}")
    for field, forged in (("columns", width - scratch + 1), ("y", width - y_size + 1), ("x", width - x_size + 1),
                          ("stride_w", 0), ("dil_h", 0), ("groups", 0), ("groups", g.C + 1), ("k_w", 0),
                          ("samples", 1000), ("m", g.M * 1000), ("channels", g.C * 1000)):
        bad = row.copy()
        bad[getattr(F, field)] = forged
        with pytest.raises(UnsupportedModelError, match="reaches"):
            check_row(ROW, bad, sizes, f"conv_transpose row, {field} = {forged}")


# ---------------------------------------------------------------- malformed operands
BAD = {
    "w_wrong_channels": (dict(C=4, M=6, spatial=[8], kernel=[3], w_shape=(3, 6, 3)), "input channels"),
    "w_wrong_rank": (dict(C=4, M=6, spatial=[8], kernel=[3], w_shape=(4, 6, 3, 3)), "kernel axes"),
    "group_not_dividing_c": (dict(C=5, M=6, spatial=[8], kernel=[3], group=2, w_shape=(5, 3, 3)), "does not divide"),
    "group_disagrees_with_x": (dict(C=4, M=6, spatial=[8], kernel=[3], group=4, w_shape=(8, 1, 3), bias=False),
                               "input channels"),
    "zero_stride": (dict(C=2, M=3, spatial=[8], kernel=[3], strides=[0]), "strides"),
    "zero_dilation": (dict(C=2, M=3, spatial=[5, 5], kernel=[3, 3], dilations=[1, 0]), "dilations"),
    "negative_pad": (dict(C=2, M=3, spatial=[8], kernel=[3], pads=[-1, 0]), "pads"),
    "pads_wrong_length": (dict(C=2, M=3, spatial=[5, 5], kernel=[3, 3], pads=[1, 1]), "pads"),
    "pads_crop_everything": (dict(C=2, M=3, spatial=[2], kernel=[2], pads=[2, 1]), "crop the whole output"),
    "output_padding_too_large": (dict(C=2, M=3, spatial=[4], kernel=[3], strides=[2], output_padding=[2]),
                                 "output_padding"),
    "output_padding_wrong_length": (dict(C=2, M=3, spatial=[4, 4], kernel=[3, 3], output_padding=[0]),
                                    "output_padding"),
    "output_shape_wrong_length": (dict(C=2, M=3, spatial=[4, 4], kernel=[3, 3], output_shape=[9, 9, 9]),
                                  "output_shape"),
    "output_shape_zero": (dict(C=2, M=3, spatial=[4], kernel=[3], output_shape=[0]), "output_shape"),
    "kernel_shape_disagrees": (dict(C=2, M=3, spatial=[8], kernel=[3], kernel_shape=[2]), "kernel_shape"),
    "pads_with_auto_pad": (dict(C=2, M=3, spatial=[8], kernel=[3], auto_pad="VALID", pads=[1, 0]), "only one"),
    "unknown_auto_pad": (dict(C=2, M=3, spatial=[8], kernel=[3], auto_pad="SAME"), "auto_pad"),
    "bias_wrong_size": (dict(C=2, M=3, spatial=[8], kernel=[3]), "bias"),
    "along_time_strided": (dict(C=2, M=3, spatial=[8], kernel=[3], strides=[2], x_shape=[1, 2, "T"]),
                           "overlap-add"),
    "along_time_strided_pointwise": (dict(C=2, M=3, spatial=[8], kernel=[1], strides=[2], x_shape=[1, 2, "T"]),
                                     "overlap-add"),
    "along_time_output_padding": (dict(C=2, M=3, spatial=[8], kernel=[3], dilations=[2], output_padding=[1],
                                       x_shape=[1, 2, "T"]), "output_padding"),
    "3d": (dict(C=2, M=3, spatial=[4, 4, 4], kernel=[2, 2, 2]), "spatial axes"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_conv_transpose_is_a_typed_error(name):
    kw, message = BAD[name]
    kw = dict(kw)
    C, M, spatial, kernel = kw.pop("C"), kw.pop("M"), kw.pop("spatial"), kw.pop("kernel")
    along_time = name.startswith("along_time")
    model = ct_model(C, M, spatial, kernel, batch_axis=not along_time, **kw)
    if name == "bias_wrong_size":
        model.graph.initializer[1].CopyFrom(numpy_helper.from_array(np.ones(M + 1, np.float32), "B"))
    with pytest.raises(UnsupportedModelError, match=message) as err:
        edgernn.load(model, time_axis=2 if along_time else 0)
    assert "ConvTranspose" in str(err.value) or "conv_transpose" in str(err.value)


def test_computed_weight_is_a_typed_error():
    """W computed from the frame (x reshaped): the op needs it constant."""
    model = ct_model(2, 2, [3], [3], bias=False)
    model.graph.initializer.pop(0)
    model.graph.initializer.append(numpy_helper.from_array(np.array([2, 1, 3], np.int64), "w_shape"))
    model.graph.node.insert(0, helper.make_node("Reshape", ["x", "w_shape"], ["W"]))
    with pytest.raises(EdgeRNNError, match="constant"):
        edgernn.load(model, time_axis=0)


def test_forged_packed_weight_is_a_typed_error():
    """A packed node whose panel matrix does not match its attributes (as a hostile .ernn
    could declare it) is refused by the op's own check."""
    from edgernn.ops.conv_transpose import ConvTranspose
    m = edgernn.load(case_model("2d_groups2"), time_axis=0)
    node = next(n for n in m.graph.nodes if n.op == "conv_transpose")
    assert node.attrs.get("packed")
    op = ConvTranspose()
    for attr, forged in (("out_channels", 12), ("kernel_shape", [2, 2]), ("group", 3), ("out_channels", 0)):
        saved = node.attrs[attr] if attr in node.attrs else None
        node.attrs[attr] = forged
        with pytest.raises(UnsupportedModelError, match="conv_transpose"):
            op.infer(node)
        node.attrs[attr] = saved


# ---------------------------------------------------------------- the PyTorch decoder step graph
def ort_decoder(path, xs, batch=1):
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    h = np.zeros((1, batch, 24), np.float32)
    out = []
    for f in xs:
        y, h = sess.run(None, {"x": f.reshape(batch, 1, 16), "h": h})
        out.append(y)
    return np.stack(out)


def max_err(a, b):
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)))


@pytest.mark.parametrize("tag", ["ts", "dy"])
def test_torch_decoder_step_graph(tag, tmp_path):
    """exporters/make_decoder_fixtures.py: GRU step, Linear, ConvTranspose1d + ReLU,
    ConvTranspose1d, 200 steps with the state fed back, against PyTorch (recorded) and
    onnxruntime, alone and in a batch of two streams, and from its int8 .ernn."""
    path = FIXTURES / f"convtranspose_decoder_{tag}.onnx"
    data = np.load(FIXTURES / f"convtranspose_decoder_{tag}.npz")
    xs, torch_y = data["frames"], data["y"]                       # (200, 1, 16), (200, 1, 32)
    assert xs.shape == (200, 1, 16) and torch_y.shape == (200, 1, 32)
    want = ort_decoder(path, xs)[:, 0]                              # (200, 1, 32)
    assert max_err(want, torch_y) < 1e-5
    m = edgernn.load(path)
    assert [t.name for t in m.states] == ["h"]
    assert sum(n.op == "conv_transpose" for n in m.graph.nodes) == 2
    s = m.stream()
    got = np.stack([s.step(x) for x in xs])
    assert max_err(got, torch_y) < TOL and max_err(got, want) < TOL
    batch = m.stream(batch=2)
    pair = np.stack([batch.step(np.stack([x, -x])) for x in xs])   # (200, 2, 1, 32)
    assert max_err(pair[:, 0], torch_y) < TOL
    assert max_err(pair[:, 1], ort_decoder(path, np.stack([-xs], axis=1))[:, 0]) < TOL
    ernn = tmp_path / "decoder.ernn"
    from edgernn.convert import convert
    convert(str(path), str(ernn), weights="int8")
    q = edgernn.load(str(ernn))
    assert any(v is not None and v.dtype == "int8" for n in q.graph.nodes if n.op == "conv_transpose"
               for v in n.inputs)
    q_stream = q.stream()
    got8 = np.stack([q_stream.step(x) for x in xs])
    err8 = max_err(got8, torch_y)
    assert 0 < err8 < 0.05 * np.abs(torch_y).max(), err8
