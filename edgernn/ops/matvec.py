"""The weight-times-vector kernel every dense and recurrent op uses, and its weight layout.

Layout (the pack pass, :func:`to_panels`): a weight matrix W [N, K] (N outputs, K inputs) is
stored in panels of L outputs, a constant [P, K, L]: panel p, row k holds input k's weight
for outputs p*L .. p*L + L-1, so one panel is a contiguous stream of K rows. L is 64
(``PANEL``), or 16 (``NARROW``) for a matrix whose narrowest column group has fewer than 64
outputs (a classifier head: less padding, a smaller file). The outputs may be split into
column groups that each start a new panel (GRU's [z r | h] when R_h is applied to r * h);
the last panel of a group is padded with zero weights. Weights are float32 in ``consts``, or
int8 in ``qconsts`` with a float32 scale per output, [P * L] (padding: scale 1;
:mod:`edgernn.quant`). With int8 activations the int8 panels are multiplied by
:mod:`.matvec_dot` instead, from an interleaved copy (a variant of kind INT8_DOT).

Kernel (:func:`add_matvec`), per panel and per block of ``ROWS`` rows of ``work`` (streams, or
the frames of a chunk): the outputs of each row are held in registers (a stack array that
LLVM promotes, :func:`stack_floats`) for a whole pass over the panel, so the inner loop does
one weight load per vector and ROWS fused multiply-adds with it, nothing else:

    acc[r, j] = 0;  acc[r, j] += W[p][k, j] * v_r[k]   for k = 0 .. K-1 in order
    float: out_r[j] += acc[r, j]        int8: out_r[j] += scale[j] * acc[r, j]

Every output has its own chain of K FMAs, whatever the blocking of rows: results are the same
for any batch size, and a chunk equals its steps, bit for bit. The multiply-adds are written
as vector intrinsics (:func:`~edgernn.ops.simd.add_scaled_run`, 16 lanes each), not left to
LLVM's vectorisers, which fused them in some variants and not in others.

One row (a single stream) takes a 64-output panel in one pass: 4 AVX-512 or 16 NEON
accumulators, enough independent chains to hide the FMA latency. The many-row block
(:data:`ROW_BLOCK`, :func:`_row_block`) takes 4 rows, each weight load feeding 4 FMAs: on
AVX-512, 4 x 64 outputs in 16 zmm registers; on AVX2 (16 ymm registers) and NEON (32 of 4
lanes), 4 x 16 outputs per pass, four passes per panel (4 x 64 would take every register and
spill). The block asks LLVM for the widest vectors
(:func:`~edgernn.ops.simd.prefer_wide_vectors`): by default LLVM uses 256-bit ones on AVX-512
cores, and the 4 x 64 accumulators then filled all 32 ymm registers and spilled to the stack
in the inner loop. ``python -m benchmarks.kernel_asm --x86`` shows the x86 loops,
``python -m benchmarks.kernel_asm`` the AArch64 ones.
"""
import platform

import numpy as np
from numba import literally, types

from ..config import jit, jit_inline, numba_target
from ..ir.graph import Value
from ..limits import check_elements
from ..native import address_call, array_at, compiled_address
from .matvec_dot import METHOD, dot_block, dot_args
from .simd import add_scaled_run, multiply_add, prefer_wide_vectors, stack_floats

PANEL = 64
NARROW = 16


def _host_has_avx512():
    """Whether Numba compiles for a core with AVX-512 (:func:`~edgernn.config.numba_target`'s
    features, whatever NUMBA_CPU_NAME says)."""
    return "+avx512f" in numba_target()[1]


#: (rows, part) of the many-row block (:func:`_panel_block`), rows x part float32 accumulators:
#: on AVX-512, 4 x 64 = 16 of the 32 zmm registers; on AVX2 (16 ymm) and NEON (32 registers of
#: 4 lanes), 4 x 16, 8 ymm or 16 NEON registers, a PANEL panel read in four passes (64
#: outputs per row would take all registers there and spill)
WIDE_BLOCK = (4, PANEL)
NARROW_BLOCK = (4, NARROW)


def _row_block():
    """The many-row block of this machine: WIDE_BLOCK with AVX-512, else NARROW_BLOCK."""
    if platform.machine().lower() in ("x86_64", "amd64") and _host_has_avx512():
        return WIDE_BLOCK
    return NARROW_BLOCK


#: (rows, part): rows of work per weight load in the many-row block, and outputs per pass
ROW_BLOCK = _row_block()
ROWS = ROW_BLOCK[0]


def input_major(v, rows=None):
    """A constant weight [..., N, K] (leading axes of size 1; float, or int8 with one scale per
    row N) as [K, N] arrays: (weights, scales or None), its rows (outputs) reordered by
    ``rows`` when given."""
    w = v.const.reshape(v.const.shape[-2:])
    scale = None if v.scale is None else v.scale.reshape(-1)
    if rows is not None:
        w = w[rows]
        scale = None if scale is None else scale[rows]
    return w.T, scale


def _lanes_for(narrowest):
    """L, the outputs per panel, of a matrix whose narrowest column group has this many."""
    return PANEL if narrowest >= PANEL else NARROW


#: the same for the kernels (the Python one keeps loading a model free of Numba's compiler)
lanes_for = jit(_lanes_for)


@jit_inline
def panels_for(n, lanes):
    """ceil(n / lanes), the panels of n outputs (lanes PANEL or NARROW), by shifts: a 64-bit
    division by a value known only at run time costs tens of cycles."""
    return (n + PANEL - 1) // PANEL if lanes == PANEL else (n + NARROW - 1) // NARROW


def panel_lanes(groups):
    return _lanes_for(min(groups))


def padded_columns(groups):
    """Columns (outputs, with each group's last panel padded) of a panel matrix with these
    column groups: its panels times L. Negative or empty groups count as none."""
    if not groups or min(groups) < 1:
        return 0
    L = panel_lanes(groups)
    return sum(-(-int(g) // L) for g in groups) * L


def panel_shape(k, groups):
    """The [P, K, L] shape of a panel matrix with k inputs and these column groups."""
    L = panel_lanes(groups)
    return (sum(-(-int(g) // L) for g in groups), int(k), L)


def to_panels(v, rows=None, groups=None):
    """A constant weight [..., N, K] as the kernel reads it: a Value [P, K, L] (module doc).

    rows: output reorder. groups: sizes of the column groups (sum N), each starting a panel;
    default one group."""
    K, N = v.const.shape[-1], v.const.shape[-2]
    groups = [N] if groups is None else list(groups)
    check_elements((K, padded_columns(groups)), 4, f"the packed weight '{v.name}'")   # before any copy
    wt, scale = input_major(v, rows)
    L = panel_lanes(groups)
    const = np.zeros((sum(-(-g // L) for g in groups), K, L), wt.dtype)      # filled in place: one copy
    scales = None if scale is None else np.ones(const.shape[0] * L, np.float32)
    p0, c0 = 0, 0
    for g in groups:
        full, rest = divmod(g, L)
        const[p0:p0 + full] = wt[:, c0:c0 + full * L].reshape(K, full, L).transpose(1, 0, 2)
        if rest:
            const[p0 + full, :, :rest] = wt[:, c0 + full * L:c0 + g]
        if scales is not None:
            scales[p0 * L:p0 * L + g] = scale[c0:c0 + g]
        p0, c0 = p0 + full + (rest > 0), c0 + g
    return Value(v.name, shape=const.shape, dtype=v.dtype, const=const, scale_axis=-1, scale=scales)


def from_panels(v, groups):
    """float32 [K, N] (input-major, dequantised) from a panel Value and its column groups."""
    P, K, L = v.const.shape
    w = v.const.astype(np.float32)
    if v.scale is not None:
        w = w * v.scale.reshape(P, 1, L)
    cols, p0 = [], 0
    for g in groups:
        n = -(-g // L)
        cols.append(w[p0:p0 + n].transpose(1, 0, 2).reshape(K, n * L)[:, :g])
        p0 += n
    return np.concatenate(cols, axis=1)


@jit
def _panel_block(w, w_off, k_in, n, work, r0, v_off, out_off, consts, s_off, rows, lanes, part, backward):
    """work[r, out_off + j] += (W v_r)[j], j < n, for the ``rows`` rows r0 .. of ``work``: the
    panels of ``lanes`` outputs from w[w_off:] that hold those n outputs, one after another,
    last first when ``backward`` (``rows``, ``lanes``, ``part``: literals), int8 scales at
    consts[s_off:] when s_off >= 0.

    A PANEL panel is read in PANEL / ``part`` passes over its k, each for ``part`` of its
    outputs (``part`` divides PANEL): ``rows`` x ``part`` accumulators must fit the vector
    registers with room for the weights (:data:`ROW_BLOCK`). Each pass reads its own 64-byte
    line of every weight row (``part`` 16), so the passes between them read the panel once.
    A NARROW panel with ``part`` < PANEL is read row after row (its 64 accumulators per row
    would not fit for 4 rows at once).

    A NARROW panel is read as 64-wide rows of four k at a time (x[4m + q] times the q-th 16
    lanes): each output has four independent sums (k = q mod 4), added at the end in the order
    q = 0, 1, 2, 3 (a remainder of k_in mod 4 rows goes to q = 0), four FMA chains per row
    where one 16-lane accumulator would wait on its own latency every k."""
    literally(rows)
    literally(lanes)
    literally(part)
    prefer_wide_vectors()
    acc = stack_floats(rows, PANEL)
    xs = work[r0:r0 + rows, v_off:v_off + k_in]   # taken once: xs[r, k] indices from 0 need no
    n_panels = (n + lanes - 1) // lanes            # negative-index checks in the loops
    for q in range(n_panels):
        p = n_panels - 1 - q if backward else q
        panel = w[w_off + p * k_in * lanes:w_off + (p + 1) * k_in * lanes]   # taken once per panel
        width = min(lanes, n - p * lanes)
        if lanes == PANEL:
            for first in range(0, PANEL, part):
                for j in range(rows * part):
                    acc[j] = np.float32(0.0)
                for k in range(k_in):
                    for r in range(rows):
                        for j in range(0, part, NARROW):    # 16-lane runs: one 64-lane run loads
                                                            # all 16 NEON weight vectors first, and spills
                            add_scaled_run(acc, r * part + j, panel, k * PANEL + first + j, xs[r, k], NARROW)
                _add_outputs(acc, rows, part, min(part, width - first), work, r0, out_off + p * lanes + first,
                             consts, s_off + p * lanes + first if s_off >= 0 else -1, 1)
            continue
        for j in range(rows * PANEL):             # NARROW: four k per 64-wide row (docstring)
            acc[j] = np.float32(0.0)
        together = rows if part == PANEL else 1   # rows whose 64 accumulators each fit together
        for first_row in range(0, rows, together):
            for m in range(k_in // 4):
                for r in range(first_row, first_row + together):
                    for q in range(4):
                        add_scaled_run(acc, r * PANEL + q * NARROW, panel, m * PANEL + q * NARROW, xs[r, 4 * m + q],
                                       NARROW)
            for k in range(k_in - k_in % 4, k_in):
                for r in range(first_row, first_row + together):
                    add_scaled_run(acc, r * PANEL, panel, k * NARROW, xs[r, k], NARROW)
        _add_outputs(acc, rows, PANEL, width, work, r0, out_off + p * lanes, consts,
                     s_off + p * lanes if s_off >= 0 else -1, 4)


@jit_inline
def _add_outputs(acc, rows, stride, count, work, r0, out_at, consts, s_at, sums):
    """work[r0 + r, out_at + j] += (scale[j] *) the sum of output j, j < count (none when
    count <= 0), for each of ``rows`` rows whose accumulators start at acc[r * stride]: one
    accumulator (``sums`` 1), or a NARROW panel's four partial sums at j, 16 + j, 32 + j,
    48 + j, added in that order (``sums`` 4). Scales at consts[s_at:] when s_at >= 0, the
    scaled sum added as one :func:`~edgernn.ops.simd.multiply_add` in every variant."""
    for r in range(rows):
        o = work[r0 + r, out_at:out_at + max(count, 0)]
        a = acc[r * stride:(r + 1) * stride]
        for j in range(o.shape[0]):
            total = a[j] if sums == 1 else ((a[j] + a[NARROW + j]) + a[2 * NARROW + j]) + a[3 * NARROW + j]
            o[j] = o[j] + total if s_at < 0 else multiply_add(consts[s_at + j], total, o[j])


def _block_args(weight_dtype, rows, lanes, part=PANEL):
    """:func:`_panel_block`'s argument types for weights of ``weight_dtype`` and literal rows,
    lanes and part."""
    vector = types.Array(types.float32, 1, "C")
    return (types.Array(weight_dtype, 1, "C"), types.int64, types.int64, types.int64,
            types.Array(types.float32, 2, "C"), types.int64, types.int64, types.int64, vector, types.int64,
            types.IntegerLiteral(rows), types.IntegerLiteral(lanes), types.IntegerLiteral(part), types.boolean)


_call_float_block = address_call(_block_args(types.float32, 1, PANEL))
_call_int8_block = address_call(_block_args(types.int8, 1, PANEL))
_call_dot_block = address_call(dot_args(1, PANEL, PANEL, METHOD))

#: what a matrix holds and how it is multiplied: float32 weights; int8 weights times float32
#: activations; int8 weights (interleaved, :mod:`.matvec_dot`) times activations quantised
#: to int8 per call
FLOAT32, INT8, INT8_DOT = 0, 1, 2
KIND_WORDS = ("float32 weights", "int8 weights", "int8 weights and activations")

#: one row per variant (lanes, kind): the addresses of its ROWS-row and 1-row panel blocks
#: (0: not compiled yet), its lanes and its kind. A matrix's row field holds the address of
#: its variant's row; rows are never moved or freed.
VARIANTS = np.zeros((6, 4), np.int64)
_BLOCK, _SINGLE, _LANES, _KIND = 0, 1, 2, 3


def _variant(lanes, kind):
    if lanes not in (PANEL, NARROW) or kind not in (FLOAT32, INT8, INT8_DOT):
        raise ValueError(f"internal: no matvec for {lanes} lanes of kind {kind}")
    return (lanes == PANEL) * 3 + kind


def _compile_block(lanes, kind, rows):
    part = PANEL if rows == 1 else ROW_BLOCK[1]
    if kind == INT8_DOT:
        return compiled_address(dot_block, dot_args(rows, lanes, min(part, lanes), METHOD))
    return compiled_address(_panel_block, _block_args(types.int8 if kind == INT8 else types.float32, rows, lanes,
                                                      part))


def matvec_descriptor(lanes, kind):
    """The address of the VARIANTS row of the matvec for panels of ``lanes`` (PANEL or NARROW)
    of this ``kind`` (FLOAT32, INT8, INT8_DOT), its one-row block compiled (or loaded from
    Numba's cache) on first use. A program row holds it beside its matrix (written when the
    plan is linked), so a kernel compiles without the matrix code and a model compiles only
    the variants its matrices need."""
    v = _variant(lanes, kind)
    if not VARIANTS[v, _SINGLE]:
        VARIANTS[v, _LANES], VARIANTS[v, _KIND] = lanes, kind
        VARIANTS[v, _SINGLE] = _compile_block(lanes, kind, 1)
        if ROWS == 1:
            VARIANTS[v, _BLOCK] = VARIANTS[v, _SINGLE]
        else:
            _WITHOUT_ROW_BLOCKS.add(v)
    return VARIANTS.ctypes.data + v * VARIANTS.strides[0]


def matvec_compiled(lanes, kind):
    """Whether this process has the one-row block of that variant (:func:`matvec_descriptor`)."""
    return bool(VARIANTS[_variant(lanes, kind), _SINGLE])


def matrix_label(lanes, kind, rows=None):
    """The variant in words, for the compile message (edgernn.compiler)."""
    return f"matrix kernel ({lanes} lanes, {KIND_WORDS[kind]}" + (f", {rows} rows)" if rows else ")")


_WITHOUT_ROW_BLOCKS = set()       # variants in use whose ROWS-row block is not compiled yet


def compile_row_blocks(rows):
    """Before running ``rows`` rows of work at once (a batch of streams, a chunk's frames):
    compile the ROWS-row blocks of every variant in use, if ``rows`` reaches ROWS. Without
    them every row runs the one-row block, with the same sums, bit for bit, only slower."""
    if rows < ROWS or not _WITHOUT_ROW_BLOCKS:
        return
    from .. import compiler
    pending = sorted(_WITHOUT_ROW_BLOCKS)
    labels = [matrix_label(int(VARIANTS[v, _LANES]), int(VARIANTS[v, _KIND]), ROWS) for v in pending]
    with compiler.job(f"the {', '.join(labels)}", len(pending)) as job:
        for v, label in zip(pending, labels):
            with job.item(label):
                VARIANTS[v, _BLOCK] = _compile_block(int(VARIANTS[v, _LANES]), int(VARIANTS[v, _KIND]), ROWS)
            _WITHOUT_ROW_BLOCKS.discard(v)


@jit_inline
def _run_block(address, kind, w, qw, w_off, k_in, n, work, r0, v_off, out_off, consts, s_off, backward):
    if kind == FLOAT32:
        _call_float_block(address, (w, w_off, k_in, n, work, r0, v_off, out_off, consts, s_off, 0, 0, 0, backward))
    elif kind == INT8:
        _call_int8_block(address, (qw, w_off, k_in, n, work, r0, v_off, out_off, consts, s_off, 0, 0, 0, backward))
    else:
        _call_dot_block(address, (qw, w_off, k_in, n, work, r0, v_off, out_off, consts, s_off, 0, 0, 0, backward, 0))


@jit_inline
def add_matvec(variant, consts, qconsts, w_off, s_off, k_in, n, work, v_off, out_off, backward):
    """For every row (stream) of ``work``: out[j] += (W v)[j] for j < n, v at ``v_off`` and out
    at ``out_off`` in the row. ``s_off`` < 0: float32 panels at consts[w_off]; else int8 panels
    at qconsts[w_off] (a byte offset) with scales at consts[s_off]. ``w_off`` and ``s_off``
    point at the first panel used (a column group's). ``variant``: the address of the matrix's
    VARIANTS row (:func:`matvec_descriptor`; a program row's field).

    Up to ROWS rows: each block of ROWS rows (then single rows) runs every panel in one
    :func:`_panel_block` call (one call per matrix for a single stream). More rows: panel by
    panel, each panel's rows back to back, so a panel is read from memory once and then from
    cache (a matrix larger than the cache would otherwise stream from memory once per block
    of rows); except with int8 activations (INT8_DOT), where a call quantises its rows'
    inputs, so each block of rows takes every panel in one call, as for up to ROWS rows (the
    int8 matrix, a quarter of the float32 bytes, is read once per block of rows).

    ``backward``: the panels in reverse order (the sums are the same, bit for bit). A
    recurrent pass over a chunk alternates direction from frame to frame, so each pass
    starts with the panels the previous one read last, still in L1 and L2: on LSTM 3x256's
    1 MiB R, 10.2 µs a pass instead of 11.2 on the development machine
    (``python -m benchmarks.chunk_parts lstm3x256``)."""
    backward = bool(backward)
    d = array_at(variant, (4,), np.int64)
    block, single, lanes, kind = d[_BLOCK], d[_SINGLE], d[_LANES], d[_KIND]
    rows = work.shape[0]
    blocked = rows - rows % ROWS if block != 0 else 0
    n_panels = panels_for(n, lanes)
    one_pass = rows <= ROWS or kind == INT8_DOT     # int8 x int8: each block of rows quantises its
                                                   # inputs once per call, so it takes every panel
    for q in range(1 if one_pass else n_panels):
        p = n_panels - 1 - q if backward else q
        if one_pass:
            p0, s0, width, o0 = w_off, s_off, n, out_off
        else:
            p0, s0 = w_off + p * k_in * lanes, s_off + p * lanes if s_off >= 0 else -1
            width, o0 = min(lanes, n - p * lanes), out_off + p * lanes
        for r in range(0, blocked, ROWS):
            _run_block(block, kind, consts, qconsts, p0, k_in, width, work, r, v_off, o0, consts, s0, backward)
        for r in range(blocked, rows):
            _run_block(single, kind, consts, qconsts, p0, k_in, width, work, r, v_off, o0, consts, s0, backward)


@jit_inline
def set_bias(consts, b_off, n, work, out_off):
    """work[s, out_off + j] = b[j] (b_off >= 0) or 0, for every stream s."""
    for s in range(work.shape[0]):
        o = work[s, out_off:out_off + n]
        if b_off >= 0:
            b = consts[b_off:b_off + n]
            for j in range(n):
                o[j] = b[j]
        else:
            for j in range(n):
                o[j] = np.float32(0.0)
