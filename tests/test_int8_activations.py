"""int8 activations (``edgernn.load(..., weights="int8", activations="int8")``): the int8 x int8
matrix kernel (edgernn.ops.matvec_dot) against the equations of edgernn.quant, written out here
in NumPy with int64 sums; the models it runs against the float reference; its bits across
batches, chunks and steps; and what it refuses."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import numpy_helper  # noqa: E402

import edgernn  # noqa: E402
from edgernn.errors import EdgeRNNError  # noqa: E402
from edgernn.ops import matvec, matvec_dot  # noqa: E402
from edgernn.quant import QMAX, quantize_activations, quantize_columns  # noqa: E402
from edgernn.reference import ReferenceStream  # noqa: E402
from test_kernels import CASES, rand  # noqa: E402

INT8X8 = dict(weights="int8", activations="int8")


def test_activation_quantisation_follows_its_equations():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((50, 33)) * rng.uniform(1e-3, 1e3, (50, 1))).astype(np.float32)
    q, scale = quantize_activations(x)
    assert q.dtype == np.int8 and scale.dtype == np.float32 and scale.shape == (50,)
    amax = np.abs(x).max(axis=1)
    np.testing.assert_array_equal(scale, amax / np.float32(QMAX))
    np.testing.assert_array_equal(np.abs(q).max(axis=1), QMAX)          # the largest maps to +-127
    assert np.all(np.abs(q * scale[:, None].astype(np.float64) - x) <= scale[:, None] * (0.5 + 1e-6))
    zero, bad = quantize_activations(np.zeros((1, 4), np.float32)), quantize_activations(
        np.array([[1, np.inf, -2, 3], [np.nan, 1, 2, 3]], np.float32))
    assert not zero[0].any() and zero[1][0] == 0
    assert not bad[0].any() and np.isnan(bad[1]).all()


@pytest.mark.parametrize("method", ["DOT_GENERIC", "DOT_NEON", "DOT_NEON_PAIRS", "DOT_SDOT", "DOT_VNNI"])
def test_each_methods_layout_holds_the_same_weights(method):
    """dot_layout for each way of summing: a permutation of each run of 16 bytes (4 outputs x
    4 inputs), +128 for VNNI, the last K mod 4 rows untouched; DOT_NEON_PAIRS puts inputs 0, 1
    of the run's four outputs first, then inputs 2, 3."""
    from edgernn.ops import simd
    code = getattr(simd, method)
    panels = np.random.default_rng(3).integers(-127, 128, (2, 10, 16)).astype(np.int8)
    out = matvec_dot.dot_layout(panels, code).reshape(2, -1)
    plain = matvec_dot.interleave(panels).reshape(2, -1)
    unbiased = out ^ np.int8(-128) if matvec_dot.weight_bias(code) else out
    np.testing.assert_array_equal(out[:, 8 * 16:], panels[:, 8:].reshape(2, -1))     # the last K mod 4 rows
    runs, plain_runs = unbiased[:, :8 * 16].reshape(2, -1, 16), plain[:, :8 * 16].reshape(2, -1, 16)
    np.testing.assert_array_equal(np.sort(runs, axis=2), np.sort(plain_runs, axis=2))
    if code == simd.DOT_NEON_PAIRS:
        for o in range(4):
            for q in range(4):
                np.testing.assert_array_equal(runs[:, :, (q // 2) * 8 + o * 2 + q % 2], plain_runs[:, :, o * 4 + q])
    else:
        np.testing.assert_array_equal(runs, plain_runs)


def test_interleave_puts_four_inputs_of_an_output_side_by_side():
    panels = np.arange(2 * 10 * 16, dtype=np.int64).reshape(2, 10, 16).astype(np.int8)
    out = matvec_dot.interleave(panels).reshape(2, -1)
    for p in range(2):
        for k in range(8):                                  # two groups of four rows
            for j in range(16):
                assert out[p, (k // 4) * 64 + j * 4 + k % 4] == panels[p, k, j]
        np.testing.assert_array_equal(out[p, 8 * 16:], panels[p, 8:].ravel())     # the last K mod 4 rows


def _panel_matrix(K, N, lanes, seed):
    """Random int8 panels [P, K, lanes] with their scales, and the int8 [K, N] they hold."""
    w = np.random.default_rng(seed).standard_normal((K, N)).astype(np.float32)
    P = -(-N // lanes)
    panels = np.zeros((P, K, lanes), np.float32)
    for p in range(P):
        cols = w[:, p * lanes:(p + 1) * lanes]
        panels[p, :, :cols.shape[1]] = cols
    q, scale = quantize_columns(panels)
    return q, scale, q.transpose(1, 0, 2).reshape(K, P * lanes)[:, :N]


def _formula(dense_q, scale, x, before):
    """edgernn.quant's equations in NumPy: before + scale * (float32(sum q xq) * x_scale)."""
    xq, x_scale = quantize_activations(x)
    sums = (xq.astype(np.int64) @ dense_q.astype(np.int64)).astype(np.float32)
    return before + scale[:dense_q.shape[1]] * (sums * x_scale[:, None])


@pytest.mark.parametrize("K,N", [(1, 5), (8, 64), (37, 37), (255, 200), (1030, 70), (2053, 130)])
@pytest.mark.parametrize("rows", [1, 4, 6])             # 4: one block of rows; 6 > ROWS: panel by panel
def test_kernel_matches_the_equations(K, N, rows):
    """K mod 4 rows left plain, K above TILE (quantised per tile), 16- and 64-lane panels
    (N 5, 37 against 64, 200), and both panel orders, which give the same bits."""
    lanes = matvec.panel_lanes([N])
    q, scale, dense_q = _panel_matrix(K, N, lanes, seed=K + N)
    qconsts = matvec_dot.dot_layout(q).ravel()
    work = rand(rows, K + N, scale=2.0)
    variant = matvec.matvec_descriptor(lanes, matvec.INT8_DOT)
    matvec.compile_row_blocks(rows)
    results = []
    for backward in (False, True):
        wk = work.copy()
        matvec.add_matvec(variant, scale, qconsts, 0, 0, K, N, wk, 0, K, backward)
        results.append(wk[:, K:])
    np.testing.assert_array_equal(results[0], results[1])
    want = _formula(dense_q, scale, work[:, :K], work[:, K:])
    np.testing.assert_allclose(results[0], want, rtol=2e-6, atol=2e-6 * np.abs(want).max())


@pytest.mark.parametrize("rows", [1, 4])
def test_the_largest_matrix_sums_exactly(rows):
    """DOT_MAX_INPUTS inputs at full scale: the true sums reach 2^31 - 2^25, and the ways that
    sum with an offset (VNNI's w + 128) pass 2^31 on the way and must wrap back exactly."""
    from edgernn.quant import DOT_MAX_INPUTS
    K, N = DOT_MAX_INPUTS, 16
    w = np.ones((1, K, N), np.float32)
    w[0, :, 1::2] = -1.0                                # outputs of either sign
    w[0, 1::3, 2] = 0.5
    q, scale = quantize_columns(w)
    work = np.ones((rows, K + N), np.float32)
    work[:, K:] = 0.0
    matvec.compile_row_blocks(rows)
    matvec.add_matvec(matvec.matvec_descriptor(16, matvec.INT8_DOT), scale, matvec_dot.dot_layout(q).ravel(), 0, 0,
                      K, N, work, 0, K, False)
    want = _formula(q[0], scale, np.ones((rows, K), np.float32), np.zeros((rows, N), np.float32))
    assert abs(int(q[0].astype(np.int64).sum(axis=0).max()) * QMAX) > 2 ** 30
    np.testing.assert_allclose(work[:, K:], want, rtol=2e-6)

def test_non_finite_inputs_make_non_finite_outputs():
    K, N = 12, 64
    q, scale, _ = _panel_matrix(K, N, 64, seed=2)
    work = np.zeros((3, K + N), np.float32)
    work[0, :K], work[1, :K], work[1, 3], work[2, :K] = 1.0, 1.0, np.nan, 1.0
    work[2, 5] = -np.inf
    matvec.add_matvec(matvec.matvec_descriptor(64, matvec.INT8_DOT), scale, matvec_dot.dot_layout(q).ravel(), 0, 0,
                      K, N, work, 0, K, False)
    assert np.isfinite(work[0, K:]).all() and np.isnan(work[1:, K:]).all()


def _initializer(proto, name):
    return next(numpy_helper.to_array(t) for t in proto.graph.initializer if t.name == name)


def test_a_dense_layer_computes_the_equations():
    proto = CASES["dense_wide"]()
    m = edgernn.load(proto, time_axis=0, **INT8X8)
    s = m.stream()
    w, b = _initializer(proto, "Wm"), _initializer(proto, "b")
    q, scale = quantize_columns(w)
    for _ in range(5):
        x = rand(1, 6, scale=3.0)
        want = _formula(q, scale, x, b[None])
        np.testing.assert_allclose(s.step(x.reshape(m.inputs[0].frame_shape)).ravel(), want.ravel(), rtol=2e-6,
                                   atol=2e-6)
    assert m.plan.dot_offsets                                   # the matrix took int8 activations


RECURRENT = ["lstm_wide", "gru_lbr0_wide", "gru_lbr1_wide", "rnn_wide", "lstm_peepholes_clip"]


@pytest.mark.parametrize("name", RECURRENT)
def test_recurrent_models_stay_close_to_float(name):
    """Against the float reference: within what 8-bit activations allow (|error| well under
    5 % of the output range over 25 frames), and not the weights-only int8 result (the
    activations really are quantised)."""
    proto = CASES[name]()
    f = edgernn.load(proto, time_axis=0)
    weights_only = edgernn.load(proto, time_axis=0, weights="int8").stream()
    both = edgernn.load(proto, time_axis=0, **INT8X8)
    s, ref = both.stream(), ReferenceStream(f)
    worst, differs, span = 0.0, False, 0.0
    for _ in range(25):
        x = rand(*both.inputs[0].frame_shape, scale=1.5)
        got, want, other = (np.ravel(v[0] if isinstance(v, tuple) else v)
                            for v in (s.step(x), ref.step(x), weights_only.step(x)))
        worst, span = max(worst, np.abs(got - want).max()), max(span, np.abs(want).max())
        differs |= not np.array_equal(got, other)
    assert differs and both.plan.dot_offsets
    assert worst <= 0.05 * span, (worst, span)


@pytest.mark.parametrize("batch", [None, 5])
@pytest.mark.parametrize("name", ["lstm_wide", "gru_lbr0_wide", "rnn_tanh"])
def test_chunks_and_batches_equal_steps_bit_for_bit(name, batch):
    m = edgernn.load(CASES[name](), time_axis=0, **INT8X8)
    B = 1 if batch is None else batch
    frames = rand(17, *((B,) if batch else ()), *m.inputs[0].frame_shape, scale=1.5)
    ran = m.stream(batch=batch).run(frames)
    stepper = m.stream(batch=batch)
    stepped = [stepper.step(f) for f in frames]
    for k, got in enumerate(ran if isinstance(ran, tuple) else (ran,)):
        want = np.stack([st[k] if isinstance(st, tuple) else st for st in stepped])
        np.testing.assert_array_equal(got, want)
        for b in range(B if batch else 0):
            alone = m.stream()
            mine = [alone.step(f) for f in frames[:, b]]
            np.testing.assert_array_equal(np.stack([st[k] if isinstance(st, tuple) else st for st in mine]),
                                          want[:, b])


def test_a_matrix_with_too_many_inputs_keeps_the_weights_only_kernel(monkeypatch):
    """Above DOT_MAX_INPUTS inputs the int32 sums could overflow: such a matrix runs as
    weights-only int8, bit for bit."""
    monkeypatch.setattr(matvec_dot, "DOT_MAX_INPUTS", 5)       # the dense case has 6 inputs
    proto = CASES["dense_wide"]()
    both = edgernn.load(proto, time_axis=0, **INT8X8)
    plain = edgernn.load(proto, time_axis=0, weights="int8")
    x = rand(*both.inputs[0].frame_shape, scale=2.0)
    np.testing.assert_array_equal(both.stream().step(x), plain.stream().step(x))
    assert not both.plan.dot_offsets


def test_convolution_weights_keep_their_layout():
    """Conv kernels read their panels directly: their matrices are left out (weights-only int8),
    the GRU after the convolution takes int8 activations, and the model stays close to float."""
    from pathlib import Path
    path = Path(__file__).parent / "fixtures" / "onnx" / "conv_gru_step_ts.onnx"
    both = edgernn.load(path, **INT8X8)
    plain = edgernn.load(path, weights="int8")
    s, p = both.stream(), plain.stream()
    kinds = set()
    from edgernn.ops.row import LAYOUTS, matvec_variant
    both.plan.link()
    for name, row in zip(both.plan.row_layouts, both.plan.prog):
        kinds |= {(name, kind) for _, lanes, kind in matvec_variant(LAYOUTS[name], row, both.plan.dot_offsets) if lanes}
    assert ("conv", matvec.INT8) in kinds or all(name != "conv" for name, _ in kinds)
    assert any(kind == matvec.INT8_DOT for _, kind in kinds)
    for _ in range(5):
        frames = [rand(*i.frame_shape) for i in both.inputs]
        got, other = s.step(*frames), p.step(*frames)
        got, other = (np.ravel(v[0] if isinstance(v, tuple) else v) for v in (got, other))
        assert np.abs(got - other).max() <= 0.05 * max(np.abs(other).max(), 1e-3)


def test_ernn_files_take_int8_activations(tmp_path):
    from edgernn.convert import convert
    proto = CASES["gru_lbr0_wide"]()
    for weights in ("int8", "float32"):
        convert(proto, tmp_path / f"{weights}.ernn", weights=weights, time_axis=0)
    m = edgernn.load(tmp_path / "int8.ernn", activations="int8")
    loaded = edgernn.load(proto, time_axis=0, **INT8X8)
    x = rand(5, *m.inputs[0].frame_shape, scale=1.5)
    np.testing.assert_array_equal(m.stream().run(x), loaded.stream().run(x))
    with pytest.raises(EdgeRNNError, match="weights='int8'"):
        edgernn.load(tmp_path / "float32.ernn", activations="int8")


def test_what_it_refuses():
    with pytest.raises(EdgeRNNError, match="this model has none"):
        edgernn.load(CASES["lstm"](), time_axis=0, activations="int8")
    with pytest.raises(EdgeRNNError, match="activations must be one of float32, int8"):
        edgernn.load(CASES["lstm"](), time_axis=0, weights="int8", activations="int4")


def test_the_dot_product_follows_the_cores_features():
    from edgernn.ops.simd import DOT_GENERIC, DOT_NEON, DOT_NEON_PAIRS, DOT_SDOT, DOT_VNNI
    method = matvec_dot.dot_method
    assert method("x86_64", "haswell", "+avx2,+fma", True) == DOT_GENERIC
    assert method("x86_64", "skylake-avx512", "+avx512f,+avx2,+fma,-avx512vnni", True) == DOT_GENERIC
    assert method("x86_64", "icelake-server", "+avx512f,+avx512vnni,+avx2", True) == DOT_VNNI
    # a Pi 5: LLVM's host features on Linux do not list the dot product; the core's name does
    assert method("aarch64", "cortex-a76", "+aes,+crc,+fp-armv8,+lse,+neon,-rand,+sha2,-sve", True) == DOT_SDOT
    assert method("aarch64", "cortex-a72", "+crc,+fp-armv8,+neon", False) == DOT_NEON_PAIRS         # a Pi 4
    assert method("aarch64", "cortex-a53", "+crc,+fp-armv8,+neon", False) == DOT_NEON     # a Pi 3: in order
    assert method("aarch64", "generic", "+neon,+dotprod", True) == DOT_SDOT
    assert method("aarch64", "cortex-a76", "+neon,-dotprod", True) == DOT_NEON_PAIRS   # told not to
    assert method("aarch64", "cortex-a76", "+neon", False) == DOT_NEON_PAIRS   # compiled for an A76, run elsewhere


def test_an_emulated_pi5_runs_sdot():
    """Under devices/aarch64-qemu.sh with NUMBA_CPU_NAME=cortex-a76 the Pi 5's cpuinfo lists
    the dot product, so this process's kernels (every test above) run ``sdot``."""
    import os
    import platform
    if platform.machine() != "aarch64" or os.environ.get("NUMBA_CPU_NAME") != "cortex-a76":
        pytest.skip("only under emulation as a Pi 5 (devices/aarch64-qemu.sh, NUMBA_CPU_NAME=cortex-a76)")
    from edgernn.ops.simd import DOT_SDOT
    assert matvec_dot.METHOD == DOT_SDOT


def test_convert_stores_the_choice_and_the_cli_takes_it(tmp_path):
    """`edgernn convert --weights int8 --activations int8` records quant.activations; loading
    the file then takes int8 activations unless told otherwise; `edgernn run --activations`
    picks either for any file."""
    from edgernn.cli import main
    proto = CASES["gru_lbr0_wide"]()
    onnx.save(proto, tmp_path / "m.onnx")
    frames = rand(6, *edgernn.load(proto, time_axis=0).inputs[0].frame_shape, scale=1.5)
    np.save(tmp_path / "x.npy", frames)
    assert main(["convert", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "m.ernn"), "--weights", "int8",
                 "--activations", "int8", "--time-axis", "0"]) == 0
    m = edgernn.load(tmp_path / "m.ernn")
    assert m.metadata["quant.activations"] == "int8" and m.activations == "int8"
    assert edgernn.load(tmp_path / "m.ernn", activations="float32").activations == "float32"
    both = edgernn.load(proto, time_axis=0, **INT8X8)
    plain = edgernn.load(proto, time_axis=0, weights="int8")
    for flag, model in (("int8", both), ("float32", plain)):
        assert main(["run", str(tmp_path / "m.ernn"), str(tmp_path / "x.npy"), "-o", str(tmp_path / f"{flag}.npz"),
                     "--activations", flag]) == 0
        saved, ran = np.load(tmp_path / f"{flag}.npz"), model.stream().run(frames)
        assert len(saved.files) == len(ran) == 2
        for name, want in zip(saved.files, ran if isinstance(ran, tuple) else (ran,)):   # one array per output
            np.testing.assert_array_equal(saved[name], want)


def test_the_profile_counts_the_interleaved_copy(tmp_path):
    """`edgernn profile --activations int8` reports the int8 matrices' copy among the arenas
    (docs/quantization.md, Memory): as many bytes as the model's int8 panels hold."""
    from edgernn.profile import profile
    proto = CASES["lstm_wide"]()
    m = edgernn.load(proto, time_axis=0, **INT8X8)
    r = profile(m, frames=50, warmup=5)
    panels = sum(v.const.nbytes for n in m.graph.nodes for v in n.inputs
                 if v is not None and v.is_const and v.const.dtype == np.int8)
    assert r.memory["int8_activation_copy_bytes"] == panels > 0
