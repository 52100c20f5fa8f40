"""TFLite builtin ops of audio front ends: convolutions, padding, reductions, normaliser math.

The fixtures (tests/fixtures/tflite/conv_*.tflite, made by
exporters/make_tflite_conv_fixtures.py, whose docstring describes each) are per-step Keras
models: one call = one frame (a spectrogram patch), no state, loaded with ``step=True``.
They exercise CONV_2D (strides, SAME/VALID, dilation factors, fused RELU/RELU6, Conv1D as
RESHAPE + CONV_2D), DEPTHWISE_CONV_2D (depth multiplier 2, dilation), TRANSPOSE_CONV (SAME
with stride 2, VALID with stride (1, 2), the output shape computed from the batch size),
MEAN, SQUARED_DIFFERENCE, RSQRT, MIRROR_PAD, PAD, PADV2, STRIDED_SLICE, UNPACK/PACK, ABS,
SQRT, POW, SUM and REDUCE_MAX.

Oracle: LiteRT (``ai_edge_litert``, one thread) running the same file once per frame, and
the Keras outputs the exporter recorded (``keras_y``).

* float32 files: within 1e-5 relative to max(1, |y|), alone and as a batch of 3 streams;
* dynamic-range int8: LiteRT quantises the input of each int8-filter CONV_2D on the fly
  (symmetric, max|x| / 127 per call); edgernn keeps it float. Bounded per frame by that
  rounding carried through the following layers' |W| row sums;
* full-integer int8 (float32 I/O): LiteRT rounds every activation to its tensor's int8
  grid; edgernn computes the same int8 filters in float32. Bounded by the file's scales
  (each layer's output rounding, s/2, carried through the following layers' |W| row sums),
  and edgernn follows the float Keras model within the weight rounding
  (``exporters.keras_tflite.QUANTISED_TOLERANCE``).

``python tests/test_tflite_ops.py`` prints the measured errors.
"""
import functools
from pathlib import Path

import numpy as np
import pytest

import edgernn
from compare import max_err
from edgernn.errors import UnsupportedOpError

Interpreter = pytest.importorskip("ai_edge_litert.interpreter").Interpreter
schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
flatbuffers = pytest.importorskip("flatbuffers")

FIXTURES = Path(__file__).parent / "fixtures" / "tflite"
TOL = 1e-5
FRAMES = 60
QUANTISED_TOLERANCE = 0.05        # exporters/keras_tflite.py: scaled error of a quantised export

FLOAT = ["conv_encoder2d", "conv_encoder1d", "conv_normaliser", "conv_decoder2d"]
QUANTISED = ["conv_encoder2d_dynrange", "conv_encoder2d_int8"]
#: IR ops each float file runs on (the transposes between convolutions are dropped)
EXPECTED_OPS = {
    "conv_encoder2d": {"conv": 4, "transpose": 2, "dense": 1},
    "conv_encoder1d": {"conv": 3, "transpose": 2, "dense": 1},
    "conv_decoder2d": {"conv_transpose": 2, "transpose": 2, "dense": 1},
    "conv_normaliser": {"reduce_mean": 2, "pad": 3, "reduce_sum": 1, "reduce_max": 1, "pow": 1, "sqrt": 2,
                        "reciprocal": 1},
}


# ---------------------------------------------------------------- helpers
def path(name):
    return FIXTURES / f"{name}.tflite"


@functools.lru_cache(maxsize=None)
def data(name):
    with np.load(FIXTURES / f"{name}.npz") as z:
        return {k: z[k] for k in z.files}


@functools.lru_cache(maxsize=None)
def model(name):
    return edgernn.load(path(name), step=True)


def frames(name):
    return data(name)["frames"][:FRAMES]


def litert(source, xs):
    """LiteRT once per frame (batch 1): outputs (T, out) flattened."""
    it = Interpreter(model_content=source, num_threads=1) if isinstance(source, bytes) else \
        Interpreter(model_path=str(source), num_threads=1)
    run = it.get_signature_runner()
    x_name = next(iter(run.get_input_details()))
    return np.stack([next(iter(run(**{x_name: f[None]}).values()))[0].reshape(-1) for f in xs])


@functools.lru_cache(maxsize=None)
def litert_of(name):
    return litert(path(name), frames(name))


def steps(m, xs, batch=None):
    s = m.stream(batch=batch)
    return np.stack([np.asarray(s.step(f)).copy().reshape((-1,) if batch is None else (batch, -1)) for f in xs])


def rel_err(a, b):
    """max |a - b| / max(1, |b|)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


def file_model(source):
    return schema.ModelT.InitFromPackedBuf(source if isinstance(source, bytes) else Path(source).read_bytes(), 0)


def packed(m):
    b = flatbuffers.Builder(1 << 16)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def op_name(m, op):
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    c = m.operatorCodes[op.opcodeIndex]
    return names[max(c.builtinCode, c.deprecatedBuiltinCode)]


def ops_named(m, name):
    return [op for op in m.subgraphs[0].operators if op_name(m, op) == name]


def tensor_array(m, ti, dequantise=True):
    """The stored array of main-subgraph tensor ti (int8 dequantised with its scales)."""
    t = m.subgraphs[0].tensors[ti]
    dtype = {schema.TensorType.FLOAT32: np.float32, schema.TensorType.INT8: np.int8,
             schema.TensorType.INT32: np.int32}[t.type]
    a = np.frombuffer(np.asarray(m.buffers[t.buffer].data, np.uint8).tobytes(), dtype).reshape(t.shape)
    q = t.quantization
    if dequantise and dtype != np.float32 and q is not None and q.scale is not None and len(q.scale):
        shape = [1] * a.ndim
        if len(q.scale) > 1:
            shape[q.quantizedDimension] = -1
        a = a.astype(np.float32) * np.asarray(q.scale, np.float32).reshape(shape)
    return a


def gains(name):
    """(schema model, [(op, input tensor, output tensor, gain)]) of the main subgraph's weighted
    ops; gain = the largest L2 norm of the weights feeding one output (a channel's taps over
    every input channel): how much an output's rounding noise grows from its inputs'."""
    m = file_model(path(name))
    out = []
    for op in m.subgraphs[0].operators:
        kind = op_name(m, op)
        if kind == "CONV_2D":
            w = tensor_array(m, op.inputs[1])                           # [O, kh, kw, I]
            g = (w.reshape(w.shape[0], -1) ** 2).sum(1).max()
        elif kind == "DEPTHWISE_CONV_2D":
            w = tensor_array(m, op.inputs[1])                           # [1, kh, kw, C * mult]
            g = (w.reshape(-1, w.shape[-1]) ** 2).sum(0).max()
        elif kind == "FULLY_CONNECTED":
            g = (tensor_array(m, op.inputs[1]) ** 2).sum(1).max()        # [N, K]
        else:
            continue
        out.append((kind, op.inputs[0], op.outputs[0], float(np.sqrt(g))))
    return m, out


SIGMAS = 3        # bound = 3 standard deviations of the rounding noise LiteRT adds


# ---------------------------------------------------------------- float files
@pytest.mark.parametrize("name", FLOAT)
def test_float_file_matches_litert_frame_by_frame(name):
    y = steps(model(name), frames(name))
    assert rel_err(y, litert_of(name)) <= TOL
    assert rel_err(y, data(name)["keras_y"][:FRAMES]) <= TOL


@pytest.mark.parametrize("name", FLOAT)
def test_float_file_runs_on_the_expected_ir_ops(name):
    counts = model(name).op_counts()
    for op, n in EXPECTED_OPS[name].items():
        assert counts.get(op) == n, (op, counts)


@pytest.mark.parametrize("name", ["conv_encoder2d", "conv_normaliser"])
def test_batch_of_three_streams_is_three_single_streams(name):
    xs = data(name)["frames"][:3 * 20].reshape((20, 3) + data(name)["frames"].shape[1:])
    y = steps(model(name), xs, batch=3)
    for b in range(3):
        assert max_err(y[:, b], steps(model(name), xs[:, b])) <= TOL
        assert rel_err(y[:, b], litert(path(name), xs[:, b])) <= TOL


def test_conv_attributes_from_the_file():
    """Strides, SAME/VALID, dilations and the depthwise groups reach the IR conv nodes."""
    from edgernn.formats.tflite import import_tflite
    convs = [n for n in import_tflite(path("conv_encoder2d")).nodes if n.op == "conv"]
    got = [(n.attrs["auto_pad"], n.attrs["strides"], n.attrs["dilations"], n.attrs["group"],
            list(n.inputs[1].const.shape)) for n in convs]
    assert got == [("SAME_UPPER", [2, 1], [1, 1], 1, [8, 2, 3, 3]),
                   ("SAME_UPPER", [1, 1], [2, 2], 1, [16, 8, 3, 3]),
                   ("VALID", [1, 1], [1, 2], 16, [32, 1, 3, 3]),
                   ("VALID", [1, 1], [1, 1], 1, [8, 32, 1, 1])]


# ---------------------------------------------------------------- quantised files
@pytest.mark.parametrize("name", QUANTISED)
def test_int8_filters_keep_the_files_values(name):
    """Every int8 filter of the file: the IR's conv weight is the file's int8 filter times its
    per-channel scales, transposed to [M, Cg, kh, kw], kept int8 in the IR (and in the
    loaded model's packed panels)."""
    from edgernn.formats.tflite import import_tflite
    from edgernn.quant import dequantize
    m = file_model(path(name))
    convs = [n for n in import_tflite(path(name)).nodes if n.op == "conv"]
    ops = [op for op in m.subgraphs[0].operators if op_name(m, op) in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert len(convs) == len(ops) == 4
    n_int8 = 0
    for node, op in zip(convs, ops):
        t = m.subgraphs[0].tensors[op.inputs[1]]
        perm = [0, 3, 1, 2] if op_name(m, op) == "CONV_2D" else [3, 0, 1, 2]
        want = tensor_array(m, op.inputs[1]).transpose(perm)
        w = node.inputs[1]
        if t.type == schema.TensorType.INT8:
            n_int8 += 1
            assert w.dtype == "int8"
        assert np.allclose(dequantize(w), want, rtol=1e-6, atol=0)
    assert n_int8 == (1 if name.endswith("dynrange") else 4)      # dynamic range: >= 1024 weights only
    packed = [n.inputs[1] for n in edgernn.load(path(name), step=True).graph.nodes if n.op == "conv"]
    assert sum(w.dtype == "int8" and w.scale is not None for w in packed) == n_int8


def dynamic_range_bound(name, xs):
    """Per frame: LiteRT rounds the input of the int8-filter CONV_2D to steps of max|x| / 127
    (uniform noise, standard deviation step / sqrt(12)); that noise grows through that conv
    and every later weighted op by their gains (ReLU and ReLU6 only shrink it). SIGMAS
    standard deviations."""
    m, chain = gains(name)
    tensors = m.subgraphs[0].tensors
    first = next(op for op in ops_named(m, "CONV_2D") if tensors[op.inputs[1]].type == schema.TensorType.INT8)
    x_ti = first.inputs[0]
    gain = float(np.prod([g for _, i, _, g in chain[[c[1] for c in chain].index(x_ti):]]))
    it = Interpreter(model_path=str(path(name)), num_threads=1, experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    inp = it.get_input_details()[0]["index"]
    out = []
    for f in xs:
        it.set_tensor(inp, f[None])
        it.invoke()
        step = np.abs(it.get_tensor(x_ti)).max() / 127
        out.append(SIGMAS * step / np.sqrt(12) * gain)
    return np.array(out)


@pytest.mark.filterwarnings("ignore:Warning. Enabling .experimental_preserve_all_tensors")
def test_dynamic_range_file_within_its_input_quantisation():
    name = "conv_encoder2d_dynrange"
    xs = frames(name)
    y = steps(model(name), xs)
    want = litert_of(name)
    dy = np.abs(y - want).max(axis=1)
    bound = dynamic_range_bound(name, xs)
    assert np.all(dy <= bound + TOL), (dy / bound).max()
    assert dy.max() > 1e-4                                           # LiteRT did quantise
    scale = np.abs(data(name)["keras_y"]).max()
    assert max_err(y, data(name)["keras_y"][:FRAMES]) <= QUANTISED_TOLERANCE * scale


def full_integer_bound(name):
    """LiteRT's integer run vs the same int8 weights in float32: LiteRT rounds the input and
    every weighted op's output to its tensor's grid (uniform noise, variance s^2 / 12); the
    noise so far grows through each op by its gain: var' = gain^2 var + s_out^2 / 12.
    SIGMAS standard deviations of the output's noise."""
    m, chain = gains(name)
    tensors = m.subgraphs[0].tensors
    s = lambda ti: float(tensors[ti].quantization.scale[0])        # noqa: E731
    var = s(chain[0][1]) ** 2 / 12
    for kind, i, o, g in chain:
        var = g * g * var + s(o) ** 2 / 12
    return SIGMAS * float(np.sqrt(var))


def output_range(name):
    """The float range of the int8 output of the last weighted op: LiteRT saturates there."""
    m, chain = gains(name)
    q = m.subgraphs[0].tensors[chain[-1][2]].quantization
    s, zp = float(q.scale[0]), int(q.zeroPoint[0])
    return s * (-128 - zp), s * (127 - zp)


def test_full_integer_file_within_litert_rounding_and_follows_keras():
    """edgernn clamped to the output's int8 range (LiteRT saturates values its calibration did
    not see; edgernn does not) within LiteRT's rounding noise; unclamped, edgernn follows the
    float Keras model within the weight rounding."""
    name = "conv_encoder2d_int8"
    xs = data(name)["frames"]                                       # all 200: some saturate
    y = steps(model(name), xs)
    want = litert(path(name), xs)
    lo, hi = output_range(name)
    err = max_err(np.clip(y, lo, hi), want)
    assert err <= full_integer_bound(name), (err, full_integer_bound(name))
    assert max_err(y, want) > err                                   # LiteRT saturated somewhere
    scale = np.abs(data(name)["keras_y"]).max()
    assert max_err(y, data(name)["keras_y"]) <= QUANTISED_TOLERANCE * scale


# ---------------------------------------------------------------- variants made by editing the file
def normaliser_with(edit):
    m = file_model(path("conv_normaliser"))
    edit(m)
    return packed(m)


def test_mirror_pad_symmetric_matches_litert():
    """SYMMETRIC (the border repeated) has no IR pad mode: a gather of constant indices."""
    def symmetric(m):
        ops_named(m, "MIRROR_PAD")[0].builtinOptions.mode = schema.MirrorPadMode.SYMMETRIC
    source = normaliser_with(symmetric)
    xs = frames("conv_normaliser")
    m = edgernn.load(source, step=True)
    assert m.op_counts().get("gather") == 1 and m.op_counts().get("pad") == 2
    y = steps(m, xs)
    want = litert(source, xs)
    assert rel_err(y, want) <= TOL
    assert max_err(want, litert_of("conv_normaliser")) > 1e-2     # a different model than REFLECT


def test_strided_slice_with_computed_begin_is_refused():
    def computed_begin(m):
        op = ops_named(m, "STRIDED_SLICE")[0]
        op.inputs = [op.inputs[0], ops_named(m, "MEAN")[0].outputs[0]] + list(op.inputs[2:])
    with pytest.raises(UnsupportedOpError, match="STRIDED_SLICE: its begin .* must be a constant"):
        edgernn.load(normaliser_with(computed_begin), step=True)


def test_strided_slice_with_ellipsis_mask_is_refused():
    def ellipsis(m):
        ops_named(m, "STRIDED_SLICE")[0].builtinOptions.ellipsisMask = 1
    with pytest.raises(UnsupportedOpError, match="STRIDED_SLICE: ellipsis_mask"):
        edgernn.load(normaliser_with(ellipsis), step=True)


def test_mirror_pad_symmetric_wider_than_the_axis_is_refused():
    def too_wide(m):
        op = ops_named(m, "MIRROR_PAD")[0]
        op.builtinOptions.mode = schema.MirrorPadMode.SYMMETRIC
        pads = m.subgraphs[0].tensors[op.inputs[1]]
        m.buffers[pads.buffer].data = np.array([[0, 0], [30, 2], [0, 0]], np.int32).view(np.uint8).ravel()
    with pytest.raises(UnsupportedOpError, match="MIRROR_PAD: SYMMETRIC mirror padding of axis 1"):
        edgernn.load(normaliser_with(too_wide), step=True)


def test_space_to_batch_outside_a_dilated_conv_is_reported():
    """SPACE_TO_BATCH_ND is translated only as the start of a dilated convolution's chain
    (tests/test_tflite_dilation.py); anywhere else the error names it."""
    def space_to_batch(m):
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.SPACE_TO_BATCH_ND
        m.operatorCodes.append(code)
        m.subgraphs[0].operators[0].opcodeIndex = len(m.operatorCodes) - 1
    m = file_model(path("conv_encoder2d"))
    space_to_batch(m)
    with pytest.raises(UnsupportedOpError, match="SPACE_TO_BATCH_ND"):
        edgernn.load(packed(m), step=True)


if __name__ == "__main__":
    for name in FLOAT + QUANTISED:
        y = steps(model(name), frames(name))
        print(f"{name:<26} vs LiteRT {max_err(y, litert_of(name)):.2e} (rel {rel_err(y, litert_of(name)):.2e})  "
              f"vs Keras {max_err(y, data(name)['keras_y'][:FRAMES]):.2e}  |y| <= {np.abs(y).max():.2f}")
    print("full-integer bound", full_integer_bound("conv_encoder2d_int8"))
    b = dynamic_range_bound("conv_encoder2d_dynrange", frames("conv_encoder2d_dynrange"))
    print("dynamic-range bound per frame: min", b.min(), "max", b.max())


def test_every_unsupported_op_is_listed_at_once():
    """Two ops of the encoder turned into builtins edgernn lacks: one error names both, with
    their op indices."""
    from exporters.make_malformed import fixture, pack
    m = fixture("conv_encoder2d")
    ops = m.subgraphs[0].operators
    for k, code in ((0, schema.BuiltinOperator.ARG_MAX), (1, schema.BuiltinOperator.GATHER_ND)):
        m.operatorCodes.append(schema.OperatorCodeT())
        m.operatorCodes[-1].builtinCode = m.operatorCodes[-1].deprecatedBuiltinCode = code
        m.operatorCodes[-1].version = 1
        ops[k].opcodeIndex = len(m.operatorCodes) - 1
    with pytest.raises(edgernn.UnsupportedOpError) as e:
        edgernn.load(pack(m), step=True)
    msg = str(e.value)
    assert "ARG_MAX x1 (op 0)" in msg and "GATHER_ND x1 (op 1)" in msg, msg
