"""ONNX math ops: unary functions, Clip, Pow/Min/Max/PRelu, reductions, Pad, Split and
BatchNormalization (ops/elementwise.py, unary.py, reduce.py, pad.py, split.py, batchnorm.py; translated by
formats/onnx_math.py).

Oracles, independent of edgernn's own NumPy references:
- ONNX Runtime (CPU) running small per-frame models (input [T, ...], time axis 0) on the whole
  sequence; edgernn steps them one frame at a time (1e-5 absolute, and relative for exp/pow);
- ONNX's conformance cases (``onnx.backend.test.case.node``), each input tensor fed whole as
  one frame (a Squeeze drops the added time axis); training-mode BatchNormalization and
  reductions over empty axes must be refused;
- NumPy, for ops on constants folded at load time, and on shape vectors.
Malformed operands and what cannot stream (pads or reductions along time, reflect pads wider
than the axis, computed pads, wrong-shaped BatchNormalization statistics) end in typed errors.
"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import edgernn  # noqa: E402
from edgernn import ops  # noqa: E402
from edgernn.errors import EdgeRNNError, UnsupportedModelError, UnsupportedOpError  # noqa: E402
from edgernn.ir.dims import T  # noqa: E402
from edgernn.ir.graph import Node, Value  # noqa: E402
from edgernn.ops.row import LAYOUTS, check_row  # noqa: E402

FRAMES = 7
TOL = 1e-5


def init(name, arr, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(arr, dtype), name)


def ints(name, arr):
    return init(name, arr, np.int64)


def model(nodes, inits=(), x_shape=("T", 1, 6), outputs=1, opset=17):
    """Input x (time axis 0), outputs y0, y1, ..."""
    g = helper.make_graph(list(nodes), "math", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                          [helper.make_tensor_value_info(f"y{k}", TensorProto.FLOAT, None) for k in range(outputs)],
                          initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def one(op, *inputs, inits=(), x_shape=("T", 1, 6), outputs=1, opset=17, **attrs):
    outs = [f"y{k}" for k in range(outputs)]
    return model([helper.make_node(op, ["x", *inputs], outs, **attrs)], inits, x_shape, outputs, opset)


RNG = np.random.default_rng(3)


def rand(*shape, low=-2.0, high=2.0):
    return RNG.uniform(low, high, shape).astype(np.float32)


CASES = {
    # unary
    "sqrt": lambda: model([helper.make_node("Abs", ["x"], ["a"]), helper.make_node("Sqrt", ["a"], ["y0"])]),
    "exp": lambda: one("Exp"),
    "log": lambda: model([helper.make_node("Abs", ["x"], ["a"]), helper.make_node("Log", ["a"], ["y0"])]),
    "abs": lambda: one("Abs"),
    "neg": lambda: one("Neg"),
    "reciprocal": lambda: one("Reciprocal"),
    "floor": lambda: one("Floor"),
    "ceil": lambda: one("Ceil"),
    "softplus": lambda: one("Softplus"),
    "softsign": lambda: one("Softsign"),
    "leaky_relu": lambda: one("LeakyRelu", alpha=0.2),
    "leaky_relu_default": lambda: one("LeakyRelu"),
    "hard_sigmoid": lambda: one("HardSigmoid", alpha=0.3, beta=0.4),
    "elu": lambda: one("Elu", alpha=0.7),
    "thresholded_relu": lambda: one("ThresholdedRelu", alpha=0.5),
    "clip_opset6": lambda: one("Clip", opset=6, min=-0.5, max=0.8),
    "clip_opset6_max_only": lambda: one("Clip", opset=6, max=0.3),
    "clip_opset13": lambda: one("Clip", "lo", "hi", inits=[init("lo", -0.4), init("hi", 0.9)], opset=13),
    "clip_opset13_min_only": lambda: one("Clip", "lo", inits=[init("lo", 0.1)], opset=13),
    "clip_opset13_max_only": lambda: one("Clip", "", "hi", inits=[init("hi", 0.1)], opset=13),
    # binary
    "pow_square": lambda: one("Pow", "e", inits=[init("e", 2.0)]),
    "pow_sqrt": lambda: model([helper.make_node("Abs", ["x"], ["a"]), helper.make_node("Pow", ["a", "e"], ["y0"])],
                              [init("e", [0.5])]),
    "pow_int_exponent": lambda: one("Pow", "e", inits=[ints("e", 3)]),
    "pow_int_exponents": lambda: one("Pow", "e", inits=[ints("e", [[1, 2, 3, 0, 2, 1]])]),
    "pow_const_base": lambda: model([helper.make_node("Pow", ["b", "x"], ["y0"])], [init("b", rand(6, low=0.5))]),
    "min_variadic": lambda: one("Min", "a", "b", inits=[init("a", rand(6)), init("b", rand(1, 1))]),
    "max_two": lambda: one("Max", "a", inits=[init("a", rand(1, 6))]),
    "max_one_input": lambda: one("Max"),
    "max_broadcast_up": lambda: one("Max", "a", inits=[init("a", rand(3, 1))], x_shape=("T", 1, 1, 6)),
    "prelu": lambda: one("PRelu", "s", inits=[init("s", rand(6))]),
    "prelu_channel": lambda: one("PRelu", "s", inits=[init("s", rand(3, 1))], x_shape=("T", 1, 3, 4)),
    # reductions
    "reduce_mean_last": lambda: one("ReduceMean", "ax", inits=[ints("ax", [-1])], opset=18),
    "reduce_sum_two_axes": lambda: one("ReduceSum", "ax", inits=[ints("ax", [2, 4])], x_shape=("T", 1, 3, 4, 5),
                                       keepdims=0),
    "reduce_sum_opset11": lambda: one("ReduceSum", x_shape=("T", 1, 3, 4), axes=[2], opset=11),
    "reduce_max_opset13": lambda: one("ReduceMax", x_shape=("T", 1, 3, 4), axes=[3], keepdims=0, opset=13),
    "reduce_min_middle": lambda: one("ReduceMin", "ax", inits=[ints("ax", [2])], x_shape=("T", 1, 3, 4), opset=18),
    "reduce_l2": lambda: one("ReduceL2", "ax", inits=[ints("ax", [2, 3])], x_shape=("T", 1, 3, 4), opset=18),
    "reduce_l1": lambda: one("ReduceL1", "ax", inits=[ints("ax", [3])], x_shape=("T", 1, 3, 4), opset=18),
    "reduce_sum_square": lambda: one("ReduceSumSquare", x_shape=("T", 1, 3, 4), axes=[2], opset=13),
    "reduce_prod": lambda: one("ReduceProd", "ax", inits=[ints("ax", [3])], x_shape=("T", 1, 3, 4), opset=18),
    "reduce_sum_noop": lambda: one("ReduceSum", "ax", inits=[ints("ax", [])], noop_with_empty_axes=1, opset=13),
    # pad
    "pad_constant": lambda: one("Pad", "p", "v", inits=[ints("p", [0, 0, 2, 0, 0, 1]), init("v", 1.5)]),
    "pad_crop": lambda: one("Pad", "p", inits=[ints("p", [0, 0, 0, 3, 0, 0, 0, -1])], x_shape=("T", 1, 2, 6)),
    "pad_edge": lambda: one("Pad", "p", inits=[ints("p", [0, 0, 1, 2, 0, 0, 3, 1])], x_shape=("T", 1, 3, 4),
                            mode="edge"),
    "pad_reflect": lambda: one("Pad", "p", inits=[ints("p", [0, 0, 2, 3, 0, 0, 2, 1])], x_shape=("T", 1, 3, 4),
                               mode="reflect"),
    "pad_wrap": lambda: one("Pad", "p", inits=[ints("p", [0, 0, 1, 3, 0, 0, 2, 4])], x_shape=("T", 1, 3, 4),
                            mode="wrap", opset=19),
    "pad_axes_opset18": lambda: one("Pad", "p", "", "ax", inits=[ints("p", [1, 2]), ints("ax", [-1])], opset=18),
    "pad_opset2": lambda: one("Pad", x_shape=("T", 1, 3, 4), pads=[0, 0, 1, 0, 0, 0, 0, 2], value=-0.5, opset=2),
    # split
    "split_opset11_sizes": lambda: one("Split", x_shape=("T", 1, 7), outputs=2, axis=2, split=[3, 4], opset=11),
    "split_opset13_input": lambda: one("Split", "s", inits=[ints("s", [1, 2])], x_shape=("T", 1, 3, 4), outputs=2,
                                       axis=2, opset=13),
    "split_equal": lambda: one("Split", x_shape=("T", 1, 2, 6), outputs=3, axis=-1, opset=13),
    "split_uneven_opset18": lambda: one("Split", x_shape=("T", 1, 7), outputs=3, axis=2, num_outputs=3, opset=18),
    # batch norm
    "batch_norm": lambda: one("BatchNormalization", "s", "b", "m", "v", x_shape=("T", 3, 1, 4),
                              inits=[init("s", rand(3)), init("b", rand(3)), init("m", rand(3)),
                                     init("v", rand(3, low=0.1, high=2))], epsilon=1e-3),
    "batch_norm_opset9_2d": lambda: one("BatchNormalization", "s", "b", "m", "v", x_shape=("T", 5), opset=9,
                                        inits=[init("s", rand(5)), init("b", rand(5)), init("m", rand(5)),
                                               init("v", rand(5, low=0.1, high=2))]),
}
RELATIVE = ("exp", "pow", "reciprocal", "reduce_prod", "reduce_l2", "reduce_sum_square", "softplus")


def x_frames(proto, frames=FRAMES, seed=0):
    shape = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim][1:]
    return np.random.default_rng(seed).uniform(-2.0, 2.0, [frames] + shape).astype(np.float32)


def ort_outputs(proto, xs):
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": xs})


def assert_close(got, want, name, relative):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (name, got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=TOL if relative else 0, atol=TOL if not relative else 1e-6,
                               err_msg=name)


@pytest.mark.parametrize("name", sorted(CASES))
def test_steps_match_onnxruntime(name):
    proto = CASES[name]()
    xs = x_frames(proto)
    want = ort_outputs(proto, xs)
    m = edgernn.load(proto, time_axis=0)
    s = m.stream()
    relative = name.startswith(RELATIVE)
    for t in range(FRAMES):
        got = s.step(xs[t].reshape(m.inputs[0].frame_shape))
        got = got if isinstance(got, tuple) else (got,)
        assert len(got) == len(want)
        for k, (g, w) in enumerate(zip(got, want)):
            assert_close(g, w[t].reshape(g.shape), f"{name} frame {t} output {k}", relative)


@pytest.mark.parametrize("name", ["pad_reflect", "reduce_sum_two_axes", "split_uneven_opset18", "batch_norm",
                                  "min_variadic", "pow_int_exponents", "clip_opset13", "hard_sigmoid"])
def test_run_and_batches_equal_steps(name):
    """Stream.run over the sequence, and batch=3 streams stepped together, give what single steps give."""
    m = edgernn.load(CASES[name](), time_axis=0)
    shape = m.inputs[0].frame_shape
    xs = np.random.default_rng(5).uniform(-2, 2, (3, FRAMES) + shape).astype(np.float32)
    single = []
    for b in range(3):
        s = m.stream()
        outs = [s.step(xs[b, t]) for t in range(FRAMES)]
        single.append([o if isinstance(o, tuple) else (o,) for o in outs])
    ran = m.stream().run(xs[0])
    ran = ran if isinstance(ran, tuple) else (ran,)
    for k, r in enumerate(ran):
        np.testing.assert_array_equal(r, np.stack([single[0][t][k] for t in range(FRAMES)]))
    batched = m.stream(batch=3)
    for t in range(FRAMES):
        got = batched.step(xs[:, t])
        got = got if isinstance(got, tuple) else (got,)
        for k, g in enumerate(got):
            np.testing.assert_array_equal(g, np.stack([single[b][t][k] for b in range(3)]))


# ---------------------------------------------------------------- ONNX conformance cases
CONFORMANCE_OPS = {"Abs", "Neg", "Sqrt", "Exp", "Log", "Reciprocal", "Floor", "Ceil", "Clip", "LeakyRelu", "HardSigmoid",
                   "Elu", "Softplus", "Softsign", "ThresholdedRelu", "Pow", "Min", "Max", "PRelu", "ReduceSum",
                   "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare",
                   "Pad", "Split", "BatchNormalization", "ScatterND"}


def _conformance_cases():
    from onnx.backend.test.case.node import collect_testcases
    out = {}
    with np.errstate(all="ignore"):
        cases = collect_testcases()
    for c in cases:
        nodes = c.model.graph.node
        if len(nodes) != 1 or nodes[0].op_type not in CONFORMANCE_OPS or not c.data_sets:
            continue
        inputs, outputs = c.data_sets[0]
        if nodes[0].op_type == "Pad" and inputs[0].dtype == np.int32:     # edge/reflect/wrap: exact in float32
            inputs[0], outputs[0] = inputs[0].astype(np.float32), np.asarray(outputs[0]).astype(np.float32)
        if inputs[0].dtype != np.float32 or any(np.asarray(o).dtype != np.float32 for o in outputs):
            continue
        out[c.name] = c
    return out


CONFORMANCE = _conformance_cases()
#: cases edgernn must refuse: batch statistics (training), reductions over an empty axis, and
#: ScatterND's reductions (edgernn scatters by assignment only)
REFUSED = {n for n in CONFORMANCE if "training_mode" in n or ("empty_set" in n and "non_reduced_axis" not in n)
           or (n.startswith("test_scatternd_") and n != "test_scatternd")}     # reduction add/mul/max/min


def _per_frame(case):
    """The case's model with its first input fed as frames [T, 1, *shape] (time, then a unit
    axis for the batch; a Squeeze drops both) and every other input an initializer; returns
    (model, the first input as one frame)."""
    m = onnx.ModelProto()
    m.CopyFrom(case.model)
    g = m.graph
    inputs, _ = case.data_sets[0]
    names = [i.name for i in g.input]
    for name, arr in zip(names[1:], inputs[1:]):
        g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
    x = inputs[0]
    opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    if opset >= 13:
        g.initializer.append(numpy_helper.from_array(np.array([0, 1], np.int64), "squeeze_axes"))
        squeeze = helper.make_node("Squeeze", ["frames", "squeeze_axes"], [names[0]])
    else:
        squeeze = helper.make_node("Squeeze", ["frames"], [names[0]], axes=[0, 1])
    g.node.insert(0, squeeze)
    del g.input[:]
    g.input.append(helper.make_tensor_value_info("frames", TensorProto.FLOAT, [None, 1] + list(x.shape)))
    return m, x


def test_conformance_cases_collected():
    assert len(CONFORMANCE) >= 100, sorted(CONFORMANCE)
    ops_covered = {c.model.graph.node[0].op_type for c in CONFORMANCE.values()}
    assert ops_covered == CONFORMANCE_OPS, CONFORMANCE_OPS - ops_covered


@pytest.mark.parametrize("name", sorted(set(CONFORMANCE) - REFUSED))
def test_conformance_case(name):
    case = CONFORMANCE[name]
    proto, x = _per_frame(case)
    _, expected = case.data_sets[0]
    m = edgernn.load(proto, time_axis=0)
    s = m.stream()
    got = s.step(x.reshape(m.inputs[0].frame_shape))
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(expected)
    for g, w in zip(got, expected):
        w = np.asarray(w)
        np.testing.assert_allclose(g.reshape(w.shape), w, rtol=TOL, atol=TOL, err_msg=name)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_conformance_case_refused(name):
    proto, _ = _per_frame(CONFORMANCE[name])
    with pytest.raises((UnsupportedModelError, UnsupportedOpError)):
        edgernn.load(proto, time_axis=0)


# ---------------------------------------------------------------- constant folding
FOLDED = {
    "Sqrt": (lambda c: np.sqrt(np.abs(c)), lambda c: np.abs(c)),
    "Exp": (np.exp, None), "Log": (lambda c: np.log(np.abs(c) + 0.1), lambda c: np.abs(c) + 0.1),
    "Neg": (np.negative, None), "Reciprocal": (lambda c: 1 / c, None), "Floor": (np.floor, None),
    "Ceil": (np.ceil, None), "Abs": (np.abs, None),
}


@pytest.mark.parametrize("op", sorted(FOLDED))
def test_unary_on_a_constant_folds(op):
    """y = x + op(c): the op runs at load (no row of its own), and its value is NumPy's."""
    fn, prepare = FOLDED[op]
    c = rand(6)
    c_in = c if prepare is None else prepare(c)
    proto = model([helper.make_node(op, ["c"], ["f"]), helper.make_node("Add", ["x", "f"], ["y0"])], [init("c", c_in)])
    m = edgernn.load(proto, time_axis=0)
    assert set(m.plan.row_layouts) == {"binary"}
    x = rand(6)
    s = m.stream()
    np.testing.assert_allclose(s.step(x), x + fn(c).astype(np.float32), rtol=1e-6, atol=1e-6)


def test_binary_reduce_pad_split_batchnorm_on_constants_fold():
    c = rand(2, 3, 4)
    nodes = [
        helper.make_node("Abs", ["c"], ["cabs"]), helper.make_node("Pow", ["cabs", "e"], ["p"]),
        helper.make_node("ReduceMean", ["p"], ["r"], axes=[0], keepdims=0),                       # [3, 4]
        helper.make_node("Max", ["r", "z"], ["mx"]),
        helper.make_node("Pad", ["mx", "pads"], ["pd"], mode="reflect"),                         # [3, 6]
        helper.make_node("Split", ["pd"], ["s0", "s1"], axis=0, split=[1, 2]),                   # [1, 6], [2, 6]
        helper.make_node("BatchNormalization", ["s1", "bs", "bb", "bm", "bv"], ["bn"]),          # [2, 6]
        helper.make_node("ReduceSum", ["bn"], ["rs"], axes=[0], keepdims=1),                     # [1, 6]
        helper.make_node("Add", ["s0", "rs"], ["k"]),
        helper.make_node("Mul", ["x", "k"], ["y0"]),
    ]
    bs, bb, bm, bv = rand(6), rand(6), rand(6), rand(6, low=0.5)           # channel axis 1 of [2, 6]
    inits = [init("c", c), init("e", 1.5), init("z", 0.3), ints("pads", [0, 1, 0, 1]), init("bs", bs), init("bb", bb),
             init("bm", bm), init("bv", bv)]
    m = edgernn.load(model(nodes, inits, opset=12), time_axis=0)
    assert m.plan.row_layouts == ["binary"]
    r = np.maximum((np.abs(c) ** 1.5).mean(axis=0), 0.3)
    pd = np.pad(r, [(0, 0), (1, 1)], mode="reflect")
    bn = (pd[1:] - bm) / np.sqrt(bv + 1e-5) * bs + bb
    k = pd[:1] + bn.sum(axis=0, keepdims=True)
    x = rand(*m.inputs[0].frame_shape)
    s = m.stream()
    np.testing.assert_allclose(s.step(x).ravel(), (x * k).ravel(), rtol=1e-5, atol=1e-5)


def test_math_on_shape_vectors_folds_with_integers():
    """Reshape(x, [-1, min(max(|-(shape[2])|, 3), 100) + sum(shape[1:2]) - 1]): ints all the way."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i2"], ["d"]),
        helper.make_node("Neg", ["d"], ["nd"]), helper.make_node("Abs", ["nd"], ["ad"]),
        helper.make_node("Max", ["ad", "three"], ["mx"]), helper.make_node("Min", ["mx", "hundred"], ["mn"]),
        helper.make_node("Slice", ["s", "one", "two"], ["s1"]),
        helper.make_node("ReduceSum", ["s1"], ["sum1"], keepdims=1),
        helper.make_node("Add", ["mn", "sum1"], ["w"]), helper.make_node("Sub", ["w", "one"], ["w1"]),
        helper.make_node("Concat", ["minus1", "w1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y0"]),
    ]
    inits = [ints("i2", [2]), ints("three", [3]), ints("hundred", [100]), ints("one", [1]), ints("two", [2]),
             ints("minus1", [-1])]
    m = edgernn.load(model(nodes, inits, opset=11), time_axis=0)
    assert m.outputs[0].frame_shape == (6,)
    x = rand(*m.inputs[0].frame_shape)
    s = m.stream()
    np.testing.assert_array_equal(s.step(x), x.reshape(6))


def test_min_of_the_time_size_and_a_number_is_refused():
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Min", ["s", "c"], ["m"]),
             helper.make_node("Reshape", ["x", "m"], ["y0"])]
    with pytest.raises(UnsupportedModelError, match="sequence length"):
        edgernn.load(model(nodes, [ints("c", [4, 1, 6])]), time_axis=0)


# ---------------------------------------------------------------- typed errors
def _refused(proto, match, error=UnsupportedModelError):
    with pytest.raises(error, match=match):
        edgernn.load(proto, time_axis=0)


def test_pad_along_time_streams_only_in_front_of_a_convolution():
    _refused(one("Pad", "p", inits=[ints("p", [2, 0, 0, 0, 0, 0])]), "in front of a convolution")


def test_pad_along_time_refused_with_axes_input():
    _refused(one("Pad", "p", "", "ax", inits=[ints("p", [0, 1]), ints("ax", [0])], opset=18),
             "in front of a convolution")


def test_reflect_pad_along_time_is_refused():
    _refused(one("Pad", "p", inits=[ints("p", [1, 0, 0, 1, 0, 0])], mode="reflect"), "constant \\(zero\\) padding")


def test_reflect_pad_must_be_narrower_than_the_axis():
    _refused(one("Pad", "p", inits=[ints("p", [0, 0, 6, 0, 0, 0])], mode="reflect"), "pad < the axis size")


def test_pads_of_the_wrong_length_are_refused():
    _refused(one("Pad", "p", inits=[ints("p", [0, 1, 0, 1])]), "2 per axis")


def test_negative_pads_only_in_constant_mode():
    _refused(one("Pad", "p", inits=[ints("p", [0, 0, -1, 0, 0, 0])], mode="edge"), "constant mode only")


def _ir_node(op, inputs, **attrs):
    return Node(op, "n", inputs, [Value("y")], attrs, source_op=op)


def test_computed_pads_are_refused():
    x = Value("x", shape=(T, 1, 6))
    pads = Value("pads", shape=(6,), dtype="int64")          # computed: no const
    with pytest.raises(UnsupportedModelError, match="pads must be a constant"):
        ops.get("pad").infer(_ir_node("pad", [x, pads]))


def test_computed_clip_bounds_are_refused():
    x = Value("x", shape=(T, 1, 6))
    with pytest.raises(UnsupportedModelError, match="min must be a constant"):
        ops.get("clip").infer(_ir_node("clip", [x, Value("lo", shape=())]))


def test_clip_bound_must_be_a_scalar():
    _refused(one("Clip", "lo", inits=[init("lo", [0.1, 0.2])], opset=13), "scalar")


@pytest.mark.parametrize("which", ["s", "b", "m", "v"])
def test_batch_norm_statistics_of_the_wrong_shape_are_refused(which):
    vecs = {k: rand(3 if k != which else 4, low=0.1) for k in "sbmv"}
    proto = one("BatchNormalization", "s", "b", "m", "v", x_shape=("T", 3, 1, 4),
                inits=[init(k, v) for k, v in vecs.items()])
    _refused(proto, r"has shape \[4\], expected \[3\]")


def test_batch_norm_computed_statistics_are_refused():
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[0, 2, 3], keepdims=0),
             helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y0"])]
    proto = model(nodes, [init("s", rand(3)), init("b", rand(3)), init("v", rand(3, low=0.1))], ("T", 3, 1, 4),
                  opset=13)
    with pytest.raises(UnsupportedModelError):
        edgernn.load(proto, time_axis=0)


def test_batch_norm_training_mode_is_refused():
    proto = one("BatchNormalization", "s", "b", "m", "v", x_shape=("T", 3, 1, 4), training_mode=1, opset=15,
                inits=[init(k, rand(3, low=0.1)) for k in "sbmv"])
    _refused(proto, "training_mode", UnsupportedOpError)


def test_reduce_over_time_is_refused():
    _refused(one("ReduceMean", x_shape=("T", 1, 6), axes=[0], opset=13), "the time axis")


def test_reduce_over_every_axis_is_refused():
    _refused(one("ReduceSum", x_shape=("T", 1, 6), opset=13), "the time axis")


def test_split_along_time_is_refused():
    _refused(one("Split", x_shape=("T", 1, 6), outputs=2, axis=0, opset=13), "the time axis")


def test_split_sizes_must_cover_the_axis():
    _refused(one("Split", "s", inits=[ints("s", [2, 3])], outputs=2, axis=2, opset=13), "do not cut axis")


def test_prelu_slope_must_broadcast_to_x():
    x = Value("x", shape=(T, 1, 6))
    slope = Value("s", shape=(2, 6), const=rand(2, 6))
    with pytest.raises(UnsupportedModelError, match="unidirectional"):
        ops.get("prelu").infer(_ir_node("prelu", [x, slope]))


def test_unknown_pad_mode_is_refused():
    _refused(one("Pad", "p", inits=[ints("p", [0, 0, 1, 0, 0, 1])], mode="mirror"), "mode 'mirror'")


# ---------------------------------------------------------------- forged rows
def _sizes(plan):
    return {"consts": plan.consts.size, "qconsts": plan.qconsts.size, "work": plan.work_size,
            "fparams": plan.fparams.size}


@pytest.mark.parametrize("case, layout, field, value", [
    ("pad_reflect", "pad", "in_dims", 10 ** 6),          # x read over more elements than exist
    ("pad_reflect", "pad", "dims", 10 ** 4),             # y written past the arena
    ("reduce_l2", "reduce", "n", 0),                     # would divide by zero
    ("reduce_l2", "reduce", "dims", 10 ** 6),
    ("batch_norm", "batch_norm", "c", 10 ** 5),          # scale/bias read past the constants
    ("hard_sigmoid", "unary", "params", 10 ** 6),        # alpha/beta past fparams
    ("pow_int_exponents", "binary", "b", 10 ** 7),
])
def test_a_forged_row_is_refused(case, layout, field, value):
    plan = edgernn.load(CASES[case](), time_axis=0).plan
    i = plan.row_layouts.index(layout)
    ROW = LAYOUTS[layout]
    row = plan.prog[i].copy()
    check_row(ROW, row, _sizes(plan), "row")
    col, count = ROW.columns[field]
    row[col:col + count] = value
    with pytest.raises(UnsupportedModelError, match="reaches"):
        check_row(ROW, row, _sizes(plan), "row")


def test_errors_are_edgernn_errors():
    """An axis out of range is a typed error, not a NumPy IndexError."""
    with pytest.raises(EdgeRNNError):
        edgernn.load(one("ReduceMax", "ax", inits=[ints("ax", [7])], opset=18), time_axis=0)


@pytest.mark.parametrize("name", ["batch_norm", "pad_wrap", "reduce_sum_two_axes", "split_uneven_opset18",
                                  "pow_int_exponents", "clip_opset6", "max_broadcast_up"])
def test_ernn_round_trip_gives_the_same_outputs(name, tmp_path):
    """Converted to .ernn (packed BatchNorm, float exponents, attrs as JSON) and read back."""
    from edgernn.convert import convert
    proto = CASES[name]()
    direct = edgernn.load(proto, time_axis=0)
    convert(proto, tmp_path / "m.ernn", time_axis=0)
    back = edgernn.load(tmp_path / "m.ernn")
    a, b = direct.stream(), back.stream()
    for x in x_frames(proto, seed=9):
        ga, gb = a.step(x.reshape(direct.inputs[0].frame_shape)), b.step(x.reshape(back.inputs[0].frame_shape))
        for u, v in zip(ga if isinstance(ga, tuple) else (ga,), gb if isinstance(gb, tuple) else (gb,)):
            np.testing.assert_array_equal(u, v)


# ---------------------------------------------------------------- ScatterND (cache updates)
def _scatter_model(data_shape, indices, update_shape, data_const=None):
    """x [1, *shape] (the frame; its batch axis first) is data, a constant update scattered into it,
    or x is the update (its shape as given), scattered into a constant data [1, *data_shape]."""
    from onnx import helper, numpy_helper, TensorProto
    inits = [numpy_helper.from_array(np.asarray(indices, np.int64), "idx")]
    nodes = [helper.make_node("ScatterND", ["data", "idx", "upd"], ["y"])]
    if data_const is None:      # the cache is the frame; the update a constant
        inits.append(numpy_helper.from_array(np.full(update_shape, 7.0, np.float32), "upd"))
        nodes.insert(0, helper.make_node("Identity", ["x"], ["data"]))
        x_shape = data_shape
    else:                        # the update is the frame; the cache a constant
        inits.append(numpy_helper.from_array(np.asarray(data_const, np.float32)[None], "data"))
        nodes.insert(0, helper.make_node("Identity", ["x"], ["upd"]))
        x_shape = update_shape
    declared = list(x_shape) if data_const is not None else [1] + list(x_shape)
    g = helper.make_graph(nodes, "scatter", [helper.make_tensor_value_info("x", TensorProto.FLOAT, declared)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 16)]), x_shape


@pytest.mark.parametrize("data_shape,indices,update_shape,frame_is_data", [
    ((4, 5), [[0, 1], [0, 3]], (2, 5), True),            # two rows replaced (batch index 0 first)
    ((4, 5), [[0, 0, 4], [0, 2, -1], [-1, 3, 0]], (3,), True),   # single elements, negative indices
    ((3, 4, 2), [[[0, 2]], [[0, 0]]], (2, 1, 4, 2), False),  # the update is the frame
])
def test_scatter_nd_matches_onnxruntime(data_shape, indices, update_shape, frame_is_data):
    import onnxruntime as ort
    const = None if frame_is_data else np.arange(np.prod(data_shape), dtype=np.float32).reshape(data_shape)
    model, x_shape = _scatter_model(data_shape, indices, update_shape, const)
    m = edgernn.load(model.SerializeToString(), step=True)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    s = m.stream()
    for x in np.random.default_rng(0).standard_normal((5,) + tuple(x_shape)).astype(np.float32):
        want = sess.run(None, {"x": x[None] if frame_is_data else x})[0]
        assert np.abs(s.step(x) - want.reshape(m.outputs[0].frame_shape)).max() == 0.0


def test_scatter_nd_index_outside_data_is_refused():
    model, _ = _scatter_model((4, 5), [[0, 4]], (1, 5))
    with pytest.raises(UnsupportedModelError, match="outside"):
        edgernn.load(model.SerializeToString(), step=True)
