"""The int8 x int8 matrix kernel: int8 weights times activations quantised on the fly.

With ``edgernn.load(..., weights="int8", activations="int8")`` each int8 matrix's input
vector is quantised to int8 on every call (symmetric, one scale per vector: the equations are
in :mod:`edgernn.quant`, :func:`~edgernn.quant.quantize_activations` states them in NumPy),
and the products are summed exactly in int32 by the machine's int8 dot product
(:func:`~edgernn.ops.simd.add_dot4_run`): ``sdot`` on ARMv8.2 cores with the dot-product
extension (Raspberry Pi 5's Cortex-A76), NEON widening multiplies on other ARM cores (``smull``
+ ``smlal2`` on Pi 4's A72, two ``smull`` on the in-order A53s), AVX-512 VNNI's ``vpdpbusd`` on
x86 cores that have it, LLVM's own code elsewhere (``vpmaddwd``). One ``sdot`` does 16
multiply-adds where a float32 ``fmla`` does 4 and the weights-only int8 kernel needs a
conversion per 4 weights. The integer sums are exact, so every machine, every blocking of
rows and every way of summing gives the same bits.

Layout (:func:`interleave`): the panels of :mod:`edgernn.ops.matvec` ([P, K, L], int8), each
run of four rows 4m .. 4m+3 stored output-major, [L, 4]: the four inputs of one output are
side by side, as ``sdot`` reads them. The bytes of each group stay in place, so the panel
offsets, sizes and extents are those of the plain layout; the last K mod 4 rows stay plain.
With VNNI the grouped bytes hold w + 128 (:func:`weight_bias`: ``vpdpbusd`` takes one operand
unsigned); with DOT_NEON_PAIRS each run of four outputs holds their inputs 0, 1, then 2, 3.
The plan makes this copy of the int8 constants when it is linked (``Plan.link``,
:func:`dot_layout`).

Kernel (:func:`dot_block`, the same arguments as ``matvec._panel_block``): for each row
(stream, or frame of a chunk) x is quantised into a stack buffer of :data:`TILE` inputs at a
time (once per call when K <= TILE, else once per tile and pass), then per panel and pass over
``part`` outputs:

    acc[r, j] = sum_k q[k, j] * xq_r[k]                  (int32, exact)
    out_r[j] += scale[j] * (float32(acc[r, j]) * x_scale_r)    (one fused multiply-add)

With VNNI the sums run over (q + 128) xq, passing 2^31 for the largest matrices, and 128 times
the row's sum of xq (a few adds per input, once per call) is taken back from each: the int32
arithmetic wraps, so the difference is exact, as the true sum fits.
"""
import platform

import numpy as np
from numba import literally, types

from ..config import jit, jit_inline, numba_target
from ..quant import DOT_MAX_INPUTS, QMAX
from .simd import (DOT_GENERIC, DOT_NEON, DOT_NEON_PAIRS, DOT_SDOT, DOT_VNNI, add_dot4_run, multiply_add,
                   prefer_wide_vectors, stack_bytes, stack_doubles, stack_floats, stack_ints)

#: inputs quantised at a time into a stack buffer (a multiple of 4): per row of the 4-row block
#: a 1 KiB buffer; a longer vector is quantised again per tile, at one multiply and one
#: conversion per input against ``part`` multiply-adds
TILE = 1024
PANEL, NARROW = 64, 16      # matvec.PANEL and NARROW (matvec imports this module)


#: LLVM's names of the AArch64 cores with the dot product (ARMv8.2 cores that have it, and the
#: ARMv8.4 and later ones, where it is part of the architecture). LLVM's host features on
#: Linux do not list it, so the core's name says whether LLVM may emit ``sdot``.
DOT_PRODUCT_CORES = frozenset(
    ["cortex-a55", "cortex-a65", "cortex-a65ae", "cortex-a75", "cortex-a76", "cortex-a76ae", "cortex-a77",
     "cortex-a78", "cortex-a78ae", "cortex-a78c", "cortex-a510", "cortex-a520", "cortex-a710", "cortex-a715",
     "cortex-a720", "cortex-x1", "cortex-x1c", "cortex-x2", "cortex-x3", "cortex-x4", "neoverse-e1",
     "neoverse-n1", "neoverse-n2", "neoverse-v1", "neoverse-v2", "neoverse-512tvb", "carmel", "ampere1",
     "ampere1a", "apple-m1", "apple-m2", "apple-m3", "apple-a14", "apple-a15", "apple-a16", "apple-a17"])


#: LLVM's names of the in-order ARMv8.0 cores: there LLVM unrolls the DOT_NEON_PAIRS loop until
#: it spills (``python -m benchmarks.kernel_asm --dot``), and the two-``smull`` form runs
IN_ORDER_CORES = frozenset(["cortex-a53", "cortex-a35", "cortex-a34"])


def _cpu_has_dot_product():
    """Whether the running core executes the dot product: ``asimddp`` in /proc/cpuinfo's
    features (None where that file is missing, e.g. macOS)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = {word for line in f if line.lower().startswith("features")
                     for word in line.split(":", 1)[1].split()}
    except OSError:
        return None
    return "asimddp" in flags


def dot_method(machine=None, cpu=None, features=None, runs_dot_product=None):
    """How :func:`~edgernn.ops.simd.add_dot4_run` computes here: DOT_SDOT on AArch64 when LLVM
    compiles for a core with the dot product (``cpu`` in DOT_PRODUCT_CORES, or ``+dotprod`` in
    ``features``, and not ``-dotprod``) and the running core executes it (``runs_dot_product``:
    /proc/cpuinfo, True when unknown); on other AArch64 cores DOT_NEON for IN_ORDER_CORES, else
    DOT_NEON_PAIRS; DOT_VNNI on x86-64 when
    the features Numba compiles with hold AVX-512 VNNI (``+avx512f`` and ``+avx512vnni``: on
    x86 LLVM lists every feature of the host); DOT_GENERIC elsewhere. Arguments left None are
    this process's (Numba's target, the host)."""
    machine = (machine or platform.machine()).lower()
    if machine not in ("aarch64", "arm64", "x86_64", "amd64"):
        return DOT_GENERIC
    if cpu is None or features is None:
        numba_cpu, numba_features = numba_target()
        cpu, features = cpu or numba_cpu, ",".join(numba_features) if features is None else features
    flags = features.split(",")
    if machine in ("x86_64", "amd64"):
        return DOT_VNNI if "+avx512f" in flags and "+avx512vnni" in flags else DOT_GENERIC
    compiles = "-dotprod" not in flags and ("+dotprod" in flags or cpu.lower() in DOT_PRODUCT_CORES)
    runs = _cpu_has_dot_product() if runs_dot_product is None else runs_dot_product
    if compiles and runs is not False:
        return DOT_SDOT
    return DOT_NEON if cpu.lower() in IN_ORDER_CORES else DOT_NEON_PAIRS


METHOD = dot_method()


def weight_bias(method):
    """What the layout of ``method`` adds to every interleaved weight: 128 for DOT_VNNI, whose
    ``vpdpbusd`` multiplies unsigned bytes by signed ones (the weights are stored as w + 128,
    w XOR 0x80, and the kernel subtracts 128 times the sum of the quantised inputs from each
    output's sum), 0 for the others."""
    return 128 if method == DOT_VNNI else 0


_kernel_weight_bias = jit_inline(weight_bias)      # the same, for dot_block


def interleave(panels):
    """int8 panels [P, K, L] -> the same bytes with each group of four rows output-major (module
    doc): group m's bytes [4, L] become [L, 4]; the last K mod 4 rows are unchanged."""
    P, K, L = panels.shape
    out = panels.copy()
    full = K - K % 4
    out[:, :full] = panels[:, :full].reshape(P, full // 4, 4, L).transpose(0, 1, 3, 2).reshape(P, full, L)
    return out


def dot_layout(panels, method=METHOD):
    """int8 panels [P, K, L] as :func:`dot_block` reads them with ``method``: :func:`interleave`d;
    for DOT_NEON_PAIRS each run of 4 outputs (16 bytes, [4 outputs, 4 inputs]) reordered as
    [2 halves, 4 outputs, 2 inputs]: inputs 0, 1 of the four outputs, then inputs 2, 3, so that
    ``smull`` of the low halves and ``smlal2`` of the high ones sum two products of the same
    output per int16 lane; for DOT_VNNI the bytes plus :func:`weight_bias` (XOR 0x80, read as
    unsigned). The last K mod 4 rows stay as they are."""
    out = interleave(panels)
    P, K, L = panels.shape
    grouped = K - K % 4
    if method == DOT_NEON_PAIRS:
        runs = out[:, :grouped].reshape(P, grouped // 4, L // 4, 4, 2, 2)
        out[:, :grouped] = runs.transpose(0, 1, 2, 4, 3, 5).reshape(P, grouped, L)
    if weight_bias(method):
        out[:, :grouped] ^= np.int8(-128)
    return out


def interleaved_constants(prog, layouts, qconsts):
    """For a plan run with int8 activations: (offsets, bytes, copied). ``bytes``: an int8 array
    the size of ``qconsts`` (``copied`` of them written, the rest untouched zero pages) holding
    every int8 matrix of the program, those at ``offsets`` in the dot product's layout
    (:func:`dot_layout`), the others as they are; the kernels read it in place of qconsts
    (only matrices are read from qconsts). ``offsets``: the int8 matrices whose kernel reads
    them only through ``add_matvec``, with at most DOT_MAX_INPUTS inputs, overlapping no other
    matrix; the others keep the weights-only kernel. (frozenset(), None, 0) when none qualifies.
    ``prog`` and ``layouts``: a validated program and its rows' RowLayouts."""
    from ..memory import zeroed
    from .row import matrix_uses
    shapes, excluded = {}, set()
    for row, layout in zip(prog, layouts):
        for use in matrix_uses(layout, row):
            if not (use.int8 and use.lanes):
                continue
            shape = (use.panels, use.k, use.lanes)
            if use.reads_bytes or use.k > DOT_MAX_INPUTS or shapes.get(use.offset, shape) != shape:
                excluded.add(use.offset)
            shapes[use.offset] = shape
    ranges = sorted((offset, offset + int(np.prod(shape))) for offset, shape in shapes.items())
    for (start, end), (next_start, next_end) in zip(ranges, ranges[1:]):
        if next_start < end:                             # overlapping matrices: keep both plain
            excluded.update((start, next_start))
    chosen = frozenset(shapes) - excluded
    if not chosen:
        return frozenset(), None, 0
    out, copied = zeroed(qconsts.size, np.int8), 0
    for offset, shape in shapes.items():
        size = int(np.prod(shape))
        panels = qconsts[offset:offset + size].reshape(shape)
        out[offset:offset + size] = (dot_layout(panels) if offset in chosen else panels).reshape(-1)
        copied += size
    return chosen, out, copied


@jit_inline
def _vector_scale(x, bits):
    """(127 / amax as float64, amax / 127 as float32) of the vector x (quant's equations), with
    (0, 0) for an all-zero x and (0, NaN) for one holding an infinity or NaN. ``bits``: a
    one-element float32 stack array (reinterprets the integer maximum as the float)."""
    top = np.int32(0)
    as_int = x.view(np.int32)
    for k in range(as_int.shape[0]):        # |x| as ordered integers: an integer maximum vectorises
        top = max(top, as_int[k] & 0x7FFFFFFF)
    if top >= 0x7F800000:
        return 0.0, np.float32(np.nan)
    if top == 0:
        return 0.0, np.float32(0.0)
    bits.view(np.int32)[0] = top
    amax = bits[0]
    return 127.0 / np.float64(amax), amax / np.float32(QMAX)


@jit_inline
def _quantise(x, first, count, inverse, out, out_at):
    """out[out_at + i] = clip(rint(x[first + i] * inverse), -127, 127) for i < count, then zeros
    up to a multiple of 4 (a group's missing inputs); all zeros when ``inverse`` is 0."""
    o = out[out_at:out_at + (count + 3) // 4 * 4]
    if inverse == 0.0:
        for i in range(o.shape[0]):
            o[i] = 0
        return
    v = x[first:first + count]
    for i in range(count):
        o[i] = np.int8(min(max(np.rint(np.float64(v[i]) * inverse), -127.0), 127.0))
    for i in range(count, o.shape[0]):
        o[i] = 0


@jit_inline
def _sum_bytes(values, first, count):
    """The sum of values[first:first + count] (int8) as an integer (0 when count <= 0)."""
    total = 0
    for i in range(first, first + max(count, 0)):
        total += np.int32(values[i])
    return total


@jit
def dot_block(w, w_off, k_in, n, work, r0, v_off, out_off, consts, s_off, rows, lanes, part, backward, method):
    """work[r, out_off + j] += (W v_r)[j], j < n, for the ``rows`` rows r0 .. of ``work``, the
    interleaved int8 panels of ``lanes`` outputs at w[w_off:] with their scales at
    consts[s_off:], v_r quantised (module doc); panels last first when ``backward``.
    Literals: ``rows``, ``lanes``, ``part`` (outputs per pass: divides ``lanes``, at most
    ``lanes``) and ``method`` (simd.DOT_*). Preconditions: the extents of
    ``matvec._panel_block``; k_in <= DOT_MAX_INPUTS."""
    literally(rows)
    literally(lanes)
    literally(part)
    literally(method)
    prefer_wide_vectors()
    bias = _kernel_weight_bias(method)
    acc = stack_ints(rows, PANEL)
    quantised = stack_bytes(rows, TILE)
    bits = stack_floats(1, 1)
    x_scale = stack_floats(rows, 1)
    inverses = stack_doubles(rows, 1)
    corrections = stack_ints(rows, 1)
    n_tiles = (k_in + TILE - 1) // TILE
    grouped = k_in - k_in % 4
    for r in range(rows):
        # a row taken as work[r, a:b] is contiguous; a row of a 2-D slice is not, and LLVM made
        # the quantising loop a gather
        x = work[r0 + r, v_off:v_off + k_in]
        inverses[r], x_scale[r] = _vector_scale(x, bits)
        corrections[r] = 0
        if n_tiles == 1 or bias:
            for k0 in range(0, k_in, TILE):     # one tile: quantised here for every pass; several
                                                # (VNNI only): here for the bias's sum, then per pass
                _quantise(x, k0, min(TILE, k_in - k0), inverses[r], quantised, r * TILE)
                if bias:
                    corrections[r] += bias * _sum_bytes(quantised, r * TILE, min(TILE, grouped - k0))
    n_panels = (n + lanes - 1) // lanes
    for q in range(n_panels):
        p = n_panels - 1 - q if backward else q
        panel = w[w_off + p * k_in * lanes:w_off + (p + 1) * k_in * lanes]
        width = min(lanes, n - p * lanes)
        for first in range(0, lanes, part):
            for j in range(rows * part):
                acc[j] = 0
            for t in range(n_tiles):
                k0 = t * TILE
                count = min(TILE, k_in - k0)
                if n_tiles > 1:
                    for r in range(rows):
                        _quantise(work[r0 + r, v_off:v_off + k_in], k0, count, inverses[r], quantised, r * TILE)
                for m in range(count // 4):
                    for r in range(rows):
                        for j in range(0, part, NARROW):    # 16-output runs, as in matvec: one run of
                                                            # 64 loads all 16 weight vectors first, and spills
                            add_dot4_run(acc, r * part + j, panel, (k0 + 4 * m) * lanes + 4 * (first + j), quantised,
                                         r * TILE + 4 * m, NARROW, method)
                for k in range(k0 + count - count % 4, k0 + count):    # the plain last rows
                    for r in range(rows):
                        xk = np.int32(quantised[r * TILE + k - k0])
                        for j in range(part):
                            acc[r * part + j] += np.int32(panel[k * lanes + first + j]) * xk
            for r in range(rows):
                at = out_off + p * lanes + first
                o = work[r0 + r, at:at + max(min(part, width - first), 0)]
                scales = consts[s_off + p * lanes + first:s_off + p * lanes + first + o.shape[0]]
                for j in range(o.shape[0]):
                    total = np.int32(acc[r * part + j] - corrections[r])    # wraps back: the true sum fits
                    o[j] = multiply_add(scales[j], np.float32(total) * x_scale[r], o[j])


def dot_args(rows, lanes, part, method):
    """:func:`dot_block`'s argument types for literal rows, lanes, part and method."""
    vector = types.Array(types.float32, 1, "C")
    return (types.Array(types.int8, 1, "C"), types.int64, types.int64, types.int64,
            types.Array(types.float32, 2, "C"), types.int64, types.int64, types.int64, vector, types.int64,
            types.IntegerLiteral(rows), types.IntegerLiteral(lanes), types.IntegerLiteral(part), types.boolean,
            types.IntegerLiteral(method))
