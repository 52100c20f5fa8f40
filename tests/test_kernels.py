"""Every Numba kernel against the plain NumPy reference of the same op.

Each case is a small ONNX graph around one op (made here with onnx.helper), loaded by
edgernn and run twice on the same frames: by the compiled engine (`Stream`) and by
`edgernn.reference.ReferenceStream`, which evaluates the same prepared IR with each op's
NumPy `reference`. The recurrent references are checked against ONNX Runtime and ONNX's
conformance data elsewhere (test_onnx_*.py, test_ort_parity.py); here they are the oracle
for the kernels, including batches of streams.
"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import edgernn  # noqa: E402
from edgernn.reference import ReferenceStream  # noqa: E402

RNG = np.random.default_rng(7)
I, H = 5, 7


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def rand(*shape, scale=0.5):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def model(nodes, inits, x_shape, y_shapes, opset=17):
    """ONNX model with input x of `x_shape` (time axis 0) and outputs y0, y1, ..."""
    g = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(f"y{k}", TensorProto.FLOAT, None) for k in range(y_shapes)],
        initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def lstm_case(H=H, scale=0.5, **attrs):
    inits = [init("W", rand(1, 4 * H, I)), init("R", rand(1, 4 * H, H, scale=scale)), init("B", rand(1, 8 * H))]
    ins = ["x", "W", "R", "B"]
    if attrs.pop("peepholes", False):
        inits.append(init("P", rand(1, 3 * H)))
        ins += ["", "", "", "P"]
    n = helper.make_node("LSTM", ins, ["y0", "y1", "y2"], hidden_size=H, **attrs)
    return model([n], inits, ["T", 1, I], 3)


def gru_case(H=H, scale=0.5, **attrs):
    inits = [init("W", rand(1, 3 * H, I)), init("R", rand(1, 3 * H, H, scale=scale)), init("B", rand(1, 6 * H))]
    return model([helper.make_node("GRU", ["x", "W", "R", "B"], ["y0", "y1"], hidden_size=H, **attrs)],
                 inits, ["T", 1, I], 2)


def rnn_case(H=H, scale=0.5, **attrs):
    inits = [init("W", rand(1, H, I)), init("R", rand(1, H, H, scale=scale)), init("B", rand(1, 2 * H))]
    return model([helper.make_node("RNN", ["x", "W", "R", "B"], ["y0", "y1"], hidden_size=H, **attrs)],
                 inits, ["T", 1, I], 2)


def head_case(op, *extra_inputs, extra_inits=(), x_shape=("T", 1, 6), **attrs):
    """One non-recurrent op on the frame (time axis 0, given explicitly at load)."""
    n = helper.make_node(op, ["x", *extra_inputs], ["y0"], **attrs)
    return model([n], list(extra_inits), list(x_shape), 1)


CASES = {
    "lstm": lambda: lstm_case(),
    "lstm_peepholes_clip": lambda: lstm_case(peepholes=True, clip=0.7),
    "lstm_input_forget": lambda: lstm_case(input_forget=1),
    "lstm_activations": lambda: lstm_case(activations=["HardSigmoid", "Softsign", "Elu"],
                                          activation_alpha=[0.3, 0.9], activation_beta=[0.4]),
    "gru_lbr0": lambda: gru_case(linear_before_reset=0),
    "gru_lbr1_clip": lambda: gru_case(linear_before_reset=1, clip=0.5),
    "gru_activations": lambda: gru_case(activations=["HardSigmoid", "ScaledTanh"],
                                        activation_alpha=[0.3, 0.8], activation_beta=[0.4, 1.3]),
    "rnn_tanh": lambda: rnn_case(),
    "rnn_relu": lambda: rnn_case(activations=["Relu"]),
    "rnn_affine": lambda: rnn_case(activations=["Affine"], activation_alpha=[0.5], activation_beta=[0.1]),
    "dense_matmul_add": lambda: model(
        [helper.make_node("MatMul", ["x", "Wm"], ["m"]), helper.make_node("Add", ["m", "b"], ["y0"])],
        [init("Wm", rand(6, 4)), init("b", rand(4))], ["T", 1, 6], 1),
    "gemm_transB": lambda: head_case("Gemm", "Wg", "c", x_shape=("T", 6),
                                     extra_inits=[init("Wg", rand(4, 6)), init("c", rand(4))],
                                     transB=1, alpha=0.5, beta=2.0),
    "add_broadcast": lambda: head_case("Add", "c", extra_inits=[init("c", rand(6))]),
    "sub_const_first": lambda: model([helper.make_node("Sub", ["c", "x"], ["y0"])],
                                     [init("c", rand(1, 1, 6))], ["T", 1, 6], 1),
    "mul": lambda: head_case("Mul", "c", extra_inits=[init("c", rand(1, 6))]),
    "div": lambda: head_case("Div", "c", extra_inits=[init("c", rand(6) + 2.0)]),
    "relu": lambda: head_case("Relu"),
    "sigmoid": lambda: head_case("Sigmoid"),
    "tanh": lambda: head_case("Tanh"),
    "softmax": lambda: head_case("Softmax", axis=-1),
    "log_softmax": lambda: head_case("LogSoftmax", axis=2),
    "softmax_opset11_coerce": lambda: model([helper.make_node("Softmax", ["x"], ["y0"], axis=2)],
                                            [], ["T", 1, 2, 3], 1, opset=11),
    "layer_norm": lambda: head_case("LayerNormalization", "g", "bt", extra_inits=[init("g", rand(6)), init("bt", rand(6))],
                                    epsilon=1e-3),
    "transpose_copy": lambda: head_case("Transpose", x_shape=("T", 1, 2, 3), perm=[0, 1, 3, 2]),
    "slice_step": lambda: head_case("Slice", "s", "e", "a", "st", x_shape=("T", 1, 9),
                                    extra_inits=[init("s", np.array([7])), init("e", np.array([0])),
                                                 init("a", np.array([2])), init("st", np.array([-2]))]),
    "concat": lambda: model([helper.make_node("Relu", ["x"], ["r"]),
                             helper.make_node("Concat", ["r", "x", "r"], ["y0"], axis=2)], [], ["T", 1, 6], 1),
    "gather": lambda: head_case("Gather", "i", extra_inits=[init("i", np.array([4, 0, 4]))], axis=2),
    # wide enough for 64-output panels (ops/matvec.py), the last one part padding; R scaled
    # by ~1/sqrt(H) as trained models are (not chaotic: rounding differences stay small)
    "lstm_wide": lambda: lstm_case(H=40, scale=0.15),
    "gru_lbr0_wide": lambda: gru_case(H=70, scale=0.12, linear_before_reset=0),    # R in groups [z r | h]
    "gru_lbr1_wide": lambda: gru_case(H=45, scale=0.15, linear_before_reset=1),
    "rnn_wide": lambda: rnn_case(H=65, scale=0.12),
    "dense_wide": lambda: model(
        [helper.make_node("MatMul", ["x", "Wm"], ["m"]), helper.make_node("Add", ["m", "b"], ["y0"])],
        [init("Wm", rand(6, 70)), init("b", rand(70))], ["T", 1, 6], 1),
}


WEIGHTED = [name for name in CASES if name.split("_")[0] in ("lstm", "gru", "rnn", "dense", "gemm")]


@pytest.mark.parametrize("batch", [None, 5])    # 5: a block of 4 rows (x86) and 1
@pytest.mark.parametrize("name,weights", [(n, "float32") for n in sorted(CASES)] + [(n, "int8") for n in WEIGHTED])
def test_kernel_matches_numpy_reference(name, weights, batch):
    """int8: the reference multiplies by the dequantised weights (q * scale, in NumPy); the
    kernel sums q * x and scales after, so the two differ by float rounding only."""
    m = edgernn.load(CASES[name](), time_axis=0, weights=weights)
    s = m.stream(batch=batch)
    B = 1 if batch is None else batch
    refs = [ReferenceStream(m) for _ in range(B)]
    frame_shape = m.inputs[0].frame_shape
    for t in range(25):
        frames = rand(B, *frame_shape, scale=1.5)
        got = s.step(frames[0] if batch is None else frames)
        got = got if isinstance(got, tuple) else (got,)
        for b, ref in enumerate(refs):
            want = ref.step(frames[b])
            want = want if isinstance(want, tuple) else (want,)
            for g, w in zip(got, want):
                g = g if batch is None else g[b]
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=f"{name} {weights} frame {t}")


@pytest.mark.parametrize("name", WEIGHTED)
def test_weighted_kernels_match_onnxruntime(name):
    """The layout round trip (pack to panels, unpack for the reference) checked from outside:
    T steps of the engine against ONNX Runtime running the whole sequence at once."""
    ort = pytest.importorskip("onnxruntime")
    proto = CASES[name]()
    proto.ir_version = min(proto.ir_version, 8)          # what this onnxruntime reads
    m = edgernn.load(proto, time_axis=0)
    s = m.stream()
    shape = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    xs = rand(25, *shape[1:], scale=1.5)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": xs})[0]
    for t in range(25):
        got = s.step(xs[t].reshape(m.inputs[0].frame_shape))
        got = got[0] if isinstance(got, tuple) else got
        np.testing.assert_allclose(got.ravel(), want[t].ravel(), rtol=1e-5, atol=1e-5, err_msg=f"{name} frame {t}")


def test_reference_is_independent_of_the_plan():
    """A wrong kernel must be caught: perturb a weight in the engine's arena only."""
    m = edgernn.load(CASES["lstm"](), time_axis=0)
    from edgernn.ops.lstm import F
    w_off, r_off = m.plan.prog[0, F.w], m.plan.prog[0, F.r]
    m.plan.consts[w_off:r_off] += 0.5  # every input weight (the W panels) of the LSTM
    s, ref = m.stream(), ReferenceStream(m)
    x = rand(I)
    got, want = s.step(x), ref.step(x)
    assert np.abs(got[0] - want[0]).max() > 1e-3


def test_int8_weights_are_int8_in_the_engine():
    """No dequantised float copy: the arena holds the matrices as int8 (a quarter the bytes)."""
    f32 = edgernn.load(CASES["lstm"](), time_axis=0)
    q = edgernn.load(CASES["lstm"](), time_axis=0, weights="int8")
    node = next(n for n in q.graph.nodes if n.op == "lstm")
    assert node.inputs[1].const.dtype == np.int8 and node.inputs[2].const.dtype == np.int8
    assert q.weight_bytes() < f32.weight_bytes()


@pytest.mark.parametrize("rows", [128, 5])
@pytest.mark.parametrize("batch", [None, 5])    # 5: a block of 4 rows (x86) and 1
@pytest.mark.parametrize("name,weights", [(n, w) for n in sorted(CASES) if n.split("_")[0] in ("lstm", "gru", "rnn")
                                          for w in ("float32", "int8")])
def test_chunk_runs_op_by_op_and_equals_steps(name, weights, batch, rows, monkeypatch):
    """Stream.run takes the sequence path (engine.run_chunk: W x for the whole chunk, state
    carried row to row) for these models, and it gives bit for bit what T steps give; also
    when the chunk is longer than one pass (SEQUENCE_ROWS = 5 < 17 frames)."""
    monkeypatch.setattr(edgernn.stream, "SEQUENCE_ROWS", rows)
    m = edgernn.load(CASES[name](), time_axis=0, weights=weights)
    assert m.plan.sequence_ok
    B = 1 if batch is None else batch
    frames = rand(17, *((B,) if batch else ()), *m.inputs[0].frame_shape, scale=1.5)
    s_run, s_step = m.stream(batch=batch), m.stream(batch=batch)
    for _ in range(2):          # twice: the second chunk starts from the state the first left
        ran = s_run.run(frames)
        stepped = [s_step.step(f) for f in frames]
        for k, got in enumerate(ran if isinstance(ran, tuple) else (ran,)):
            want = np.stack([st[k] if isinstance(st, tuple) else st for st in stepped])
            np.testing.assert_array_equal(got, want)
        for key, v in s_run.state.items():
            np.testing.assert_array_equal(v, s_step.state[key])


@pytest.mark.parametrize("batch", [None, 5])    # 5: a block of 4 rows (x86) and 1
def test_step_takes_non_contiguous_frames(batch):
    """The fast path reads frames flat: a strided view must give what its copy gives."""
    m = edgernn.load(CASES["gru_lbr1_clip"](), time_axis=0)
    B = 1 if batch is None else batch
    big = rand(B, *m.inputs[0].frame_shape, 2)
    view = big[..., 0] if batch else big[0, ..., 0]
    assert not view.flags.c_contiguous
    a, b = m.stream(batch=batch), m.stream(batch=batch)
    for _ in range(3):
        np.testing.assert_array_equal(a.step(view), b.step(np.ascontiguousarray(view)))


def _unusual_layouts(frame):
    """The same values as strided, read-only, misaligned, byte-swapped and Fortran arrays."""
    strided = np.stack([frame, frame], axis=-1)[..., 0]
    readonly = frame.copy()
    readonly.flags.writeable = False
    raw = np.zeros(frame.nbytes + 1, np.uint8)
    misaligned = np.frombuffer(raw[1:].data, np.float32).reshape(frame.shape)
    misaligned[...] = frame
    swapped = frame.astype(frame.dtype.newbyteorder(">"))
    out = [strided, readonly, misaligned, swapped]
    if frame.ndim == 2:
        out.append(np.asfortranarray(frame))
    return out


@pytest.mark.parametrize("batch", [None, 5])    # 5: a block of 4 rows (x86) and 1
def test_step_gives_the_same_for_every_array_layout(batch):
    """Stream.step calls the compiled kernel without Numba's dispatch for aligned C-contiguous
    float32 frames once it has seen one; any other array must still take the checked path
    and give what its contiguous copy gives."""
    m = edgernn.load(CASES["lstm_wide"](), time_axis=0)
    B = 1 if batch is None else batch
    a, b = m.stream(batch=batch), m.stream(batch=batch)
    for t in range(4):
        frame = rand(*((B,) if batch else ()), *m.inputs[0].frame_shape)
        np.testing.assert_array_equal(a.step(frame), b.step(frame.copy()))    # the direct call
        for odd in _unusual_layouts(frame):
            assert not (odd.flags.c_contiguous and odd.flags.aligned and odd.dtype == np.float32
                        and odd.dtype.isnative) or odd.flags.writeable is False
            np.testing.assert_array_equal(a.step(odd), b.step(frame.copy()), err_msg=str(odd.flags))


@pytest.mark.parametrize("weights", ["float32", "int8"])
def test_a_batch_gives_each_stream_what_it_gets_alone(weights):
    """Streams stepped together share each weight load (blocks of rows in ops/matvec.py);
    every output's sum keeps its order, so each stream's result is bit for bit its own."""
    m = edgernn.load(CASES["gru_lbr0_wide"](), time_axis=0, weights=weights)
    B = 7
    together, alone = m.stream(batch=B), [m.stream() for _ in range(B)]
    for _ in range(5):
        frames = rand(B, *m.inputs[0].frame_shape, scale=1.5)
        got = together.step(frames)
        got = got[0] if isinstance(got, tuple) else got
        for b in range(B):
            want = alone[b].step(frames[b])
            np.testing.assert_array_equal(got[b], want[0] if isinstance(want, tuple) else want)


@pytest.mark.parametrize("name", ["lstm_wide", "gru_lbr0_wide"])
def test_threads_split_the_batch_and_change_nothing(name):
    """threads=2 steps two blocks of streams on two of Numba's threads; each stream's result
    is bit for bit what one thread gives, step by step and chunk by chunk."""
    m = edgernn.load(CASES[name](), time_axis=0)
    one, two = m.stream(batch=5), m.stream(batch=5, threads=2)
    frames = rand(9, 5, *m.inputs[0].frame_shape)
    for f in frames:
        for a, b in zip(*(r if isinstance(r, tuple) else (r,) for r in (one.step(f), two.step(f)))):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(*(r if isinstance(r, tuple) else (r,) for r in (one.run(frames), two.run(frames)))):
        np.testing.assert_array_equal(a, b)
    for key, v in one.state.items():
        np.testing.assert_array_equal(v, two.state[key])


def test_threads_are_checked():
    import numba
    m = edgernn.load(CASES["lstm"](), time_axis=0)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            m.stream(batch=4, threads=bad)
    with pytest.raises(ValueError, match="needs batch >= 2"):
        m.stream(threads=2)
    with pytest.raises(ValueError, match="NUMBA_NUM_THREADS"):
        m.stream(batch=64, threads=numba.config.NUMBA_NUM_THREADS + 1)


def packed_matrix(n, k, int8):
    """A random [n, k] weight as the pack pass stores it (a panel Value, int8 with scales when
    asked) and the [k, n] float32 matrix it stands for."""
    from edgernn.ir.graph import Value
    from edgernn.ops.matvec import to_panels
    from edgernn.quant import dequantize, quantize_columns
    w = rand(n, k)
    packed = to_panels(Value("w", shape=w.shape, const=w))
    if int8:
        q, scale = quantize_columns(packed.const)
        packed = Value("w", shape=q.shape, dtype="int8", const=q, scale=scale, scale_axis=-1)
    P, _, L = packed.const.shape
    return packed, dequantize(packed).transpose(1, 0, 2).reshape(k, P * L)[:, :n]        # [k, n] as stored


@pytest.mark.parametrize("rows", [1, 6])          # 6 > ROWS: the panel-by-panel path
@pytest.mark.parametrize("n", [12, 200])          # NARROW panels; four PANEL panels, the last padded
@pytest.mark.parametrize("int8", [False, True])
def test_panel_order_changes_no_bit(rows, n, int8):
    """add_matvec over the panels last first (what a chunk's recurrent passes do every other
    frame) gives what the forward order gives, bit for bit, and both match float64 NumPy."""
    from edgernn.ops.matvec import add_matvec, compile_row_blocks, matvec_descriptor, panel_lanes
    K = 37
    packed, dense = packed_matrix(n, K, int8)
    consts = np.concatenate([packed.const.astype(np.float32).ravel() if not int8 else np.zeros(0, np.float32),
                             packed.scale if int8 else np.zeros(0, np.float32)])
    qconsts = packed.const.ravel() if int8 else np.zeros(1, np.int8)
    w_off, s_off = (0, 0) if int8 else (0, -1)
    work = rand(rows, K + n)
    out = {}
    for backward in (False, True):
        wk = work.copy()
        variant = matvec_descriptor(panel_lanes([n]), int8)
        compile_row_blocks(rows)
        add_matvec(variant, consts, qconsts, w_off, s_off, K, n, wk, 0, K, backward)
        out[backward] = wk[:, K:]
    np.testing.assert_array_equal(out[True], out[False])
    want = work[:, K:].astype(np.float64) + work[:, :K].astype(np.float64) @ dense.astype(np.float64)
    np.testing.assert_allclose(out[False], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n", [150, 30])          # three 64-lane panels, the last padded; two 16-lane ones
@pytest.mark.parametrize("int8", [False, True])
def test_row_block_parts_change_no_bit(n, int8):
    """The many-row matrix block reads a 64-output panel in passes of ``part`` outputs (16 on
    AVX2 and NEON, 64 on AVX-512: ops.matvec.ROW_BLOCK), and a 16-lane panel row after row
    when ``part`` < 64. Every part gives the one-row block's sums bit for bit, whichever
    machine runs the test, and matches float64 NumPy."""
    from edgernn.ops.matvec import _panel_block
    K = 45
    packed, dense = packed_matrix(n, K, int8)
    lanes = packed.const.shape[2]
    weights = packed.const.ravel()
    consts = packed.scale.astype(np.float32) if int8 else np.zeros(1, np.float32)
    s_off = 0 if int8 else -1
    work = rand(4, K + n)
    results = []
    for rows, part in ((1, 64), (4, 64), (4, 16), (4, 32)):
        wk = work.copy()
        for r0 in range(0, 4, rows):
            _panel_block(weights, 0, K, n, wk, r0, 0, K, consts, s_off, rows, lanes, part, False)
        results.append(wk[:, K:])
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])
    want = work[:, K:].astype(np.float64) + work[:, :K].astype(np.float64) @ dense.astype(np.float64)
    np.testing.assert_allclose(results[0], want, rtol=1e-5, atol=1e-5)


def run_child(script, tmp_path, **env):
    """Run ``script`` (argument: tmp_path) in a fresh interpreter with these environment
    variables and a Numba cache of its own (so it compiles every kernel itself); its result
    is returned, output captured."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), EDGERNN_QUIET="1", PYTHONPATH=str(root), **env)
    return subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, cwd=root, capture_output=True,
                          text=True, timeout=900)


AVX2_CHILD = r"""
import sys
import numpy as np
import onnx
import edgernn
from edgernn.ops.matvec import ROW_BLOCK
from edgernn.ops.matvec_dot import METHOD
from exporters.synthetic import named_model
onnx.save(named_model("gru2x128", state_io=True), sys.argv[1] + "/m.onnx")
frames = np.random.default_rng(3).standard_normal((6, 5, 40)).astype(np.float32)
out = {"part": ROW_BLOCK[1], "dot": METHOD}
for key, options in (("", {}), ("dot_", {"weights": "int8", "activations": "int8"})):
    m = edgernn.load(sys.argv[1] + "/m.onnx", **options)
    s = m.stream(batch=5)
    out[key + "steps"] = np.stack([s.step(f) for f in frames])
    out[key + "chunk"] = m.stream().run(frames[:, 0])
np.savez(sys.argv[1] + "/out.npz", **out)
"""


def test_avx2_block_gives_the_same_bits(tmp_path):
    """Compiled for an AVX2 core (NUMBA_CPU_NAME=haswell: 16 ymm registers, no AVX-512), the
    many-row block takes 4 rows x 16 outputs per pass, the block NEON runs too; on an x86 host
    it then runs natively. A batch of 5 streams (a block of 4 and one alone) and a chunk give
    what this process gives (AVX-512 here, or whatever the host is), bit for bit; so do they
    with int8 activations, which the child sums with LLVM's vpmaddwd code and this process
    with VNNI's vpdpbusd where the host has it (ops.matvec_dot)."""
    from pathlib import Path
    from edgernn.ops.matvec import ROW_BLOCK
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if " avx2 " not in flags or " fma " not in flags:
        pytest.skip("needs an x86-64 host with AVX2 and FMA")
    out = run_child(AVX2_CHILD, tmp_path, NUMBA_CPU_NAME="haswell",
                    NUMBA_CPU_FEATURES="+avx,+avx2,+fma,+f16c,+sse4.2,+popcnt")
    assert out.returncode == 0, out.stderr[-3000:]
    there = np.load(tmp_path / "out.npz")
    from edgernn.ops.simd import DOT_GENERIC
    assert int(there["part"]) == 16 and int(there["dot"]) == DOT_GENERIC          # no VNNI on haswell
    import onnx
    from exporters.synthetic import named_model
    onnx.save(named_model("gru2x128", state_io=True), tmp_path / "here.onnx")
    frames = np.random.default_rng(3).standard_normal((6, 5, 40)).astype(np.float32)
    for key, options in (("", {}), ("dot_", {"weights": "int8", "activations": "int8"})):
        m = edgernn.load(tmp_path / "here.onnx", **options)
        s = m.stream(batch=5)
        np.testing.assert_array_equal(np.stack([s.step(f) for f in frames]), there[key + "steps"])
        np.testing.assert_array_equal(m.stream().run(frames[:, 0]), there[key + "chunk"])
    assert ROW_BLOCK[0] == 4


BOUNDSCHECK_CHILD = r"""
import sys
import numpy as np
import onnx
import edgernn
from exporters.synthetic import named_model
for name in ("lstm2x128", "gru2x128"):
    onnx.save(named_model(name, state_io=True), sys.argv[1] + "/m.onnx")
    for weights, activations in (("float32", "float32"), ("int8", "float32"), ("int8", "int8")):
        m = edgernn.load(sys.argv[1] + "/m.onnx", weights=weights, activations=activations)
        frames = np.random.default_rng(4).standard_normal((6, 5, 40)).astype(np.float32)
        batch = m.stream(batch=5)
        together = np.stack([batch.step(f) for f in frames])
        for b in range(5):
            alone = m.stream()
            np.testing.assert_array_equal(np.stack([alone.step(f) for f in frames[:, b]]), together[:, b])
            np.testing.assert_array_equal(m.stream().run(frames[:, b]), together[:, b])
print("same bits")
"""


def test_batches_and_chunks_equal_steps_in_a_bounds_checked_build(tmp_path):
    """NUMBA_BOUNDSCHECK=1 (the fuzzers' build) compiles every kernel differently; a batch of 5
    (a 4-row block and one alone) and a chunk must still give each stream's steps bit for bit,
    float32, int8 and int8 with int8 activations. With the int8 scale applied as `o + scale * sum`, LLVM fused it in one
    variant and not in another there (ops.simd.multiply_add)."""
    out = run_child(BOUNDSCHECK_CHILD, tmp_path, NUMBA_BOUNDSCHECK="1")
    assert out.returncode == 0 and "same bits" in out.stdout, out.stderr[-3000:]
