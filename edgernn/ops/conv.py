"""conv: the ONNX Conv op over one or two spatial axes, within one frame.

    Y[n, m, *o] = B[m] + sum_{c, *j} X_pad[n, g*Cg + c, *(o * strides + j * dilations)] * W[m, c, *j]

with g = m // Mg the group of output channel m, Cg = C / group inputs and Mg = M / group
outputs per group, X_pad = X with ``pads_begin`` zeros before and ``pads_end`` zeros after
each spatial axis, and, per spatial axis of input size I, kernel k, stride s, dilation d:

    O = floor((I + pads_begin + pads_end - d * (k - 1) - 1) / s) + 1        (O >= 1)

Inputs: X float32 [N, C, *spatial] (spatial rank 1 or 2; N may be the time or batch axis, 1
per stream, or a concrete int the kernel loops over; C and the spatial sizes are concrete),
W constant [M, Cg, *kernel], B constant [M] or absent. Output Y float32 [N, M, *out].
Attributes (ONNX names): strides, dilations (default 1s), pads ([begin..., end...], default
0s), group (divides C and M), kernel_shape (optional, must equal W's), auto_pad: NOTSET
(``pads``), VALID (no padding), SAME_UPPER / SAME_LOWER (O = ceil(I / s), total padding
max(0, (O - 1) s + d (k - 1) + 1 - I), the odd one at the end / at the beginning).
A convolution along the time axis (explicit pads there) infers with the time axis kept and is
rewritten by :mod:`edgernn.passes.pulse` to run over a window of the frames before
(:mod:`edgernn.ops.history`), once every ``stride`` frames; a pointwise one (kernel 1, stride
1, no padding along time) sees each frame alone and runs as it is.

Kernel layout (pack pass): W as a panel matrix (:mod:`edgernn.ops.matvec`) of K = Cg * prod(kernel)
inputs (order c, then kernel rows, then columns) and column groups [Mg] * group, each group
starting its own panel; attrs ``packed``, ``out_channels`` (M) and ``kernel_shape``. Per output
position and group the kernel gathers the input patch (zeros in the padding) into scratch and
runs the matvec on it, a block of positions per pass over the weights; when Mg <
``DIRECT_BELOW`` (a depthwise conv: Mg = 1) a panel would be mostly padding, so with at least
``DIRECT_BELOW`` positions each output is summed directly over its taps, reading the same
panels (:meth:`Conv.direct`): x is copied once into the scratch with its padding as zeros, and
each tap adds one vector of POSITIONS inputs, times each of the group's weights, to
accumulators held in registers (:mod:`edgernn.ops.simd`).
A 1-D conv runs as a 2-D one of height 1. Row: :data:`ROW`.
"""
import math
from collections import namedtuple

import numpy as np

from ..config import jit, jit_inline
from ..errors import UnsupportedModelError
from ..ir.dims import concrete, has_time, is_symbolic, parts
from ..ir.graph import Value
from ..quant import dequantize
from . import Op, expect_const, register
from .matvec import add_matvec, from_panels, lanes_for, panel_shape, panels_for, set_bias, to_panels
from .program import quotient
from .simd import add_scaled_run, stack_floats
from .row import Field, RowLayout, const, element_count, matrix, work

DIRECT_BELOW = 8          # outputs per group (and positions) for the direct path: Conv.direct
BLOCK = 8                 # output positions whose patches one pass over the weights multiplies
POSITIONS = 8             # outputs along a row the direct path sums together, in registers
MAX_GROUPS = 1 << 16      # bounds the column-group list a (forged) row's extents build
AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


def _group_inputs(r):
    """K = Cg * k_h * k_w of a row, -1 when any factor is not positive."""
    cg = r.channels // r.groups if r.groups >= 1 else -1
    return element_count((cg, r.k_h, r.k_w)) if min(cg, r.k_h, r.k_w) >= 1 else -1


def _direct_padded(out_h, out_w, k_h, k_w, stride_h, stride_w, dil_h, dil_w):
    """(rows, cols) of the direct path's zero-padded copy of one input channel: the rows the
    out_h outputs read, and the columns out_w outputs rounded up to POSITIONS read."""
    blocks = (out_w + POSITIONS - 1) // POSITIONS
    return (out_h - 1) * stride_h + (k_h - 1) * dil_h + 1, (blocks * POSITIONS - 1) * stride_w + (k_w - 1) * dil_w + 1


#: the same for the kernels (the Python one keeps loading a model free of Numba's compiler)
direct_padded = jit(_direct_padded)


def scratch_elements(direct, channels, groups, m, k_h, k_w, out_h, out_w, stride_h, stride_w, dil_h, dil_w):
    """The row's scratch (field ``patch``): the direct path's padded copy of x [channels, rows,
    cols], else a block of BLOCK patches and outputs [BLOCK, K + m / groups]; -1 when a size
    is not positive."""
    if min(channels, groups, m, k_h, k_w, out_h, out_w, stride_h, stride_w, dil_h, dil_w) < 1 or channels % groups:
        return -1
    if direct and m // groups >= DIRECT_BELOW:        # the direct kernel's registers hold fewer outputs
        return -1
    if direct:
        return element_count((channels,) + _direct_padded(out_h, out_w, k_h, k_w, stride_h, stride_w, dil_h, dil_w))
    return BLOCK * (channels // groups * k_h * k_w + m // groups)


def _column_groups(r):
    if not 1 <= r.groups <= MAX_GROUPS or r.m < r.groups:
        return []
    return [r.m // r.groups] * r.groups


def spatial_fields(weight_doc, weight_groups, scratch, crop_docs, direct_doc):
    """The fields of a Conv or ConvTranspose row: x, y and their geometry, the packed weight
    (``weight_groups``: its inputs and column groups from the row), bias, the op's ``scratch``
    Field, and what pad_top/pad_left (``crop_docs``) and direct mean for the op."""
    inputs, groups = weight_groups
    return [
        Field("x", "work offset of x [samples, channels, in_h, in_w] (strides and dilations >= 1)",
              work(lambda r: element_count((r.samples, r.channels, r.in_h, r.in_w))
                   if min(r.stride_h, r.stride_w, r.dil_h, r.dil_w) >= 1 else -1)),
        Field("y", "work offset of y [samples, m, out_h, out_w]",
              work(lambda r: element_count((r.samples, r.m, r.out_h, r.out_w)), writes=True)),
        Field("w", weight_doc, matrix(inputs, groups, "w_scale", "w_matvec", reads_bytes=True)),   # direct paths
        Field("w_scale", "offset of the int8 weights' scales in consts (-1: float32 weights)"),
        Field("w_matvec", "native address of W's matvec variant (written at link)"),
        Field("b", "bias [m] in consts (-1: none)", const(lambda r: r.m)),
        scratch,
        Field("samples", "N, the leading axis of x (1 per stream for a time or batch axis)"),
        Field("channels", "C"), Field("groups", "group"), Field("m", "M, output channels"),
        Field("in_h", "input height (1 for a 1-D op)"), Field("in_w", "input width"),
        Field("out_h", "output height"), Field("out_w", "output width"),
        Field("k_h", "kernel height"), Field("k_w", "kernel width"),
        Field("stride_h"), Field("stride_w"), Field("dil_h"), Field("dil_w"),
        Field("pad_top", crop_docs[0]), Field("pad_left", crop_docs[1]),
        Field("direct", direct_doc),
    ]


ROW = RowLayout("conv", spatial_fields(
    "weight panels, K = channels/groups * k_h * k_w inputs -> m outputs in groups", (_group_inputs, _column_groups),
    Field("patch", "scratch: the direct path's zero-padded copy of x, else a block of positions' patches and "
                   "outputs (scratch_elements)",
          work(lambda r: scratch_elements(r.direct, r.channels, r.groups, r.m, r.k_h, r.k_w, r.out_h, r.out_w,
                                          r.stride_h, r.stride_w, r.dil_h, r.dil_w), writes=True, optional=False)),
    ("zeros before the first row", "zeros before the first column"),
    "1: sum each output over its taps (few outputs per group); 0: patch + matvec"))
F = ROW.fields


@jit_inline
def _gather_patch(work, x0, patch, cg, in_h, in_w, k_h, k_w, top, left, dil_h, dil_w):
    """work[s, patch + (c * k_h + i) * k_w + j] = x[c, top + i dil_h, left + j dil_w] (0 outside
    x), x the group's channels [cg, in_h, in_w] at x0, for every stream s. The inner loop runs
    the longer way: over the channels of each tap (k_h k_w runs of cg) when there are more
    channels than taps in a kernel row (silero's 129 channels x 3 taps: 3 runs, not 129), else
    over each kernel row's taps inside x (cg k_h runs, [j_lo, j_hi) found once per patch)."""
    zero = np.float32(0.0)
    taps, plane = k_h * k_w, in_h * in_w
    if cg > k_w:
        for s in range(work.shape[0]):
            for i in range(k_h):
                ih = top + i * dil_h
                for j in range(k_w):
                    iw = left + j * dil_w
                    dst = patch + i * k_w + j
                    if ih < 0 or ih >= in_h or iw < 0 or iw >= in_w:
                        for c in range(cg):
                            work[s, dst + c * taps] = zero
                    else:
                        src = x0 + ih * in_w + iw
                        for c in range(cg):
                            work[s, dst + c * taps] = work[s, src + c * plane]
        return
    j_lo, j_hi = positions_inside(left, dil_w, in_w, k_w)
    for s in range(work.shape[0]):
        p = patch
        for c in range(cg):
            for i in range(k_h):
                ih = top + i * dil_h
                if ih < 0 or ih >= in_h:
                    for j in range(k_w):
                        work[s, p + j] = zero
                else:
                    src = x0 + (c * in_h + ih) * in_w + left
                    for j in range(j_lo):
                        work[s, p + j] = zero
                    for j in range(j_lo, j_hi):
                        work[s, p + j] = work[s, src + j * dil_w]
                    for j in range(j_hi, k_w):
                        work[s, p + j] = zero
                p += k_w


@jit_inline
def positions_inside(start, step, size, count):
    """[lo, hi): the outputs o < count whose input start + o * step lies in [0, size) (step >= 1).
    Step 1 (most convolutions) needs no 64-bit division, which costs tens of cycles; the
    direct path asks once per tap and output channel."""
    if step == 1:
        lo = max(0, -start)
        return lo, max(lo, min(count, size - start))
    lo = max(0, (step - 1 - start) // step)
    hi = min(count, (size - 1 - start) // step + 1)
    return lo, max(lo, hi)


@jit_inline
def _pad_input(work, s, x0, dst, channels, in_h, in_w, rows, cols, top, left):
    """work[s, dst + (c * rows + r) * cols + q] = x[c, r - top, q - left] (0 outside x), x
    [channels, in_h, in_w] at x0 in stream s's row of ``work``."""
    zero = np.float32(0.0)
    q_lo, q_hi = positions_inside(-left, 1, in_w, cols)
    for c in range(channels):
        for r in range(rows):
            ih = r - top
            out = work[s, dst + (c * rows + r) * cols:dst + (c * rows + r + 1) * cols]
            if ih < 0 or ih >= in_h:
                for q in range(cols):
                    out[q] = zero
                continue
            src = work[s, x0 + (c * in_h + ih) * in_w + q_lo - left:x0 + (c * in_h + ih) * in_w + q_hi - left]
            for q in range(q_lo):
                out[q] = zero
            for q in range(q_hi - q_lo):
                out[q_lo + q] = src[q]
            for q in range(q_hi, cols):
                out[q] = zero


@jit       # compiled apart, not inlined: inlined, its unrolled blocks made conv_kernel's other path slower
def _direct_conv(row, consts, qconsts, work, x_n, y_n):
    """One sample, every stream: x copied once into scratch with its padding as zeros
    (:func:`_pad_input`, sizes :func:`direct_padded`), then per group and output row, a block
    of POSITIONS outputs of each of the group's m / groups (< DIRECT_BELOW) channels held in
    registers: acc[m, q] = b[m], then acc[m, q] += W[m, c, i, j] * x_pad[c, oh sh + i dh,
    (ow + q) sw + j dw] for each tap (c, i, j) in order, one input vector per tap for all m
    (the group's weights of a tap are one panel row). A tap in the padding adds W * 0."""
    G, M, C = row[F.groups], row[F.m], row[F.channels]
    cg, mg = quotient(C, G), quotient(M, G)
    in_h, in_w, out_h, out_w, k_h, k_w = row[F.in_h], row[F.in_w], row[F.out_h], row[F.out_w], row[F.k_h], row[F.k_w]
    sh, sw, dh, dw = row[F.stride_h], row[F.stride_w], row[F.dil_h], row[F.dil_w]
    w_off, s_off, b_off, xp = row[F.w], row[F.w_scale], row[F.b], row[F.patch]
    K, lanes, out_size = cg * k_h * k_w, lanes_for(mg), out_h * out_w      # mg < lanes: one panel a group
    rows, cols = direct_padded(out_h, out_w, k_h, k_w, sh, sw, dh, dw)
    for s in range(work.shape[0]):
        _pad_input(work, s, x_n, xp, C, in_h, in_w, rows, cols, row[F.pad_top], row[F.pad_left])
        padded = work[s, xp:xp + C * rows * cols]
        for g in range(G):
            panel, scales = w_off + g * K * lanes, s_off + g * lanes
            for oh in range(out_h):
                for ow in range(0, out_w, POSITIONS):
                    acc = stack_floats(DIRECT_BELOW, POSITIONS)      # constant indices only: registers
                    for m in range(DIRECT_BELOW):
                        bias = consts[b_off + g * mg + m] if b_off >= 0 and m < mg else np.float32(0.0)
                        for q in range(POSITIONS):
                            acc[m * POSITIONS + q] = bias
                    for c in range(cg):
                        for i in range(k_h):
                            start = ((g * cg + c) * rows + oh * sh + i * dh) * cols + ow * sw
                            for j in range(k_w):
                                tap, x0 = panel + ((c * k_h + i) * k_w + j) * lanes, start + j * dw
                                for m in range(DIRECT_BELOW):
                                    if m < mg:
                                        wk = consts[tap + m] if s_off < 0 else \
                                            np.float32(qconsts[tap + m]) * consts[scales + m]
                                        if sw == 1:
                                            add_scaled_run(acc, m * POSITIONS, padded, x0, wk, POSITIONS)
                                        else:
                                            for q in range(POSITIONS):
                                                acc[m * POSITIONS + q] += wk * padded[x0 + q * sw]
                    for m in range(DIRECT_BELOW):
                        if m < mg:
                            y = work[s, y_n + (g * mg + m) * out_size + oh * out_w:y_n + (g * mg + m) * out_size + (oh + 1) * out_w]
                            for q in range(POSITIONS):
                                if q < out_w - ow:
                                    y[ow + q] = acc[m * POSITIONS + q]


@ROW.kernel
@jit
def conv_kernel(row, fparams, consts, qconsts, work, seq):
    """Every stream (row of ``work``), every sample n, every output position: Y = B + W * patch.
    The matvec path multiplies a block of BLOCK positions per pass over a group's weights (the
    positions are the rows the panel kernel runs together); each output is the same chain of
    K multiply-adds whatever the blocking. A single position with one group (a conv along
    time after the pulse pass) multiplies every stream's patch at once into y, and reads x
    itself when the patch is x in the same order (no padding or dilation, a kernel as large
    as x)."""
    G, M, C = row[F.groups], row[F.m], row[F.channels]
    cg, mg = quotient(C, G), quotient(M, G)
    in_h, in_w, out_h, out_w, k_h, k_w = row[F.in_h], row[F.in_w], row[F.out_h], row[F.out_w], row[F.k_h], row[F.k_w]
    sh, sw, dh, dw = row[F.stride_h], row[F.stride_w], row[F.dil_h], row[F.dil_w]
    w_off, s_off, b_off, patch = row[F.w], row[F.w_scale], row[F.b], row[F.patch]
    K, in_size, out_size = cg * k_h * k_w, in_h * in_w, out_h * out_w
    lanes = lanes_for(mg)
    group_panels = panels_for(mg, lanes)
    width = K + mg                                  # one position's row in the patch block
    for n in range(row[F.samples]):
        x_n, y_n = row[F.x] + n * C * in_size, row[F.y] + n * M * out_size
        if row[F.direct]:
            _direct_conv(row, consts, qconsts, work, x_n, y_n)
            continue
        if out_size == 1 and G == 1:                # one position (a conv along time, after the pulse pass)
            top, left = row[F.pad_top], row[F.pad_left]
            patch_is_x = in_h == k_h and in_w == k_w and top == 0 and left == 0 and (k_h == 1 or dh == 1) and \
                (k_w == 1 or dw == 1)               # the patch's order (c, i, j) is x's own
            if not patch_is_x:
                _gather_patch(work, x_n, patch, C, in_h, in_w, k_h, k_w, -top, -left, dh, dw)
            set_bias(consts, b_off, M, work, y_n)   # y = b + W patch, every stream a row of the matvec
            add_matvec(row[F.w_matvec], consts, qconsts, w_off, s_off, K, M, work, x_n if patch_is_x else patch,
                       y_n, False)
            continue
        for g in range(G):
            p0 = g * group_panels
            oh, ow = 0, 0                           # the next position's row and column (no division)
            for first in range(0, out_size, BLOCK):
                count = min(BLOCK, out_size - first)
                for q in range(count):
                    _gather_patch(work, x_n + g * cg * in_size, patch + q * width, cg, in_h, in_w, k_h, k_w,
                                  oh * sh - row[F.pad_top], ow * sw - row[F.pad_left], dh, dw)
                    set_bias(consts, b_off + g * mg if b_off >= 0 else -1, mg, work, patch + q * width + K)
                    ow += 1
                    if ow == out_w:
                        oh, ow = oh + 1, 0
                for s in range(work.shape[0]):      # the block's positions are the matvec's rows
                    block = work[s, patch:patch + count * width].reshape((count, width))
                    add_matvec(row[F.w_matvec], consts, qconsts, w_off + p0 * K * lanes,
                               s_off + p0 * lanes if s_off >= 0 else -1, K, mg, block, 0, K, False)
                    for q in range(count):
                        out = patch + q * width + K
                        for m in range(mg):
                            work[s, y_n + (g * mg + m) * out_size + first + q] = work[s, out + m]


Geometry = namedtuple("Geometry", "N C M group kernel strides dilations pads_begin pads_end in_sizes out_sizes")


def as_height_width(values, fill):
    """Per-axis values of a 1-D op as those of a 2-D one of height 1 (``fill`` for the height)."""
    return [fill] + list(values) if len(values) == 1 else list(values)


def reaches_across_frames(x, g):
    """The axis of X (2 or 3) that is the time axis where a windowed op with geometry ``g``
    (kernel, strides, dilations, pads_begin, pads_end per spatial axis) does more than map each
    frame alone (a kernel wider than one frame, pads, or a stride); None when there is none.
    Conv, ConvTranspose and pool use it; such an op is streamed by passes/pulse.py."""
    for a, d in enumerate(x.shape[2:]):
        if has_time(d) and (g.dilations[a] * (g.kernel[a] - 1) > 0 or g.pads_begin[a] or g.pads_end[a]
                            or g.strides[a] > 1):
            return a + 2
    return None


def checked_ints(node, attrs, name, count, default, low):
    """Attribute ``name``: ``count`` ints >= ``low`` (``default`` each when absent), or an
    UnsupportedModelError naming the node (Conv's and ConvTranspose's attribute rule)."""
    v = attrs.get(name)
    v = [default] * count if v is None else v
    if not isinstance(v, (list, tuple)) or len(v) != count or not all(isinstance(x, int) and x >= low for x in v):
        per_axis = "one per spatial axis" + (", begins then ends" if name == "pads" else "")
        raise UnsupportedModelError(f"{node.describe()}: {name} {v!r} must be {count} integer"
                                    f"{'s' * (count != 1)} >= {low} ({per_axis})")
    return [int(x) for x in v]


def auto_pads(node, mode, in_sizes, kernel, strides, dilations, pads):
    """(pads_begin, pads_end) per the ONNX spec for auto_pad ``mode``."""
    r = len(in_sizes)
    if mode == "NOTSET":
        return pads[:r], pads[r:]
    if mode == "VALID":
        return [0] * r, [0] * r
    if mode not in AUTO_PADS:
        raise UnsupportedModelError(f"{node.describe()}: auto_pad {mode!r} is not one of {', '.join(AUTO_PADS)}")
    begin, end = [], []
    for i, s, k, d in zip(in_sizes, strides, kernel, dilations):
        total = max(0, (-(-i // s) - 1) * s + d * (k - 1) + 1 - i)
        small, large = total // 2, total - total // 2
        begin.append(large if mode == "SAME_LOWER" else small)
        end.append(small if mode == "SAME_LOWER" else large)
    return begin, end


@register
class Conv(Op):
    name = "conv"
    matrix_slots = (1,)

    def geometry(self, node):
        """Every size of the conv, checked (module doc); raises UnsupportedModelError naming the
        node. The constant operands and attributes are checked before the input's axes, so
        their errors read the same whichever axes the streaming pass is trying."""
        where, attrs = node.describe(), node.attrs
        if not 2 <= len(node.inputs) <= 3 or node.inputs[0] is None:
            raise UnsupportedModelError(f"{where}: takes X, W and an optional B, got {len(node.inputs)} inputs")
        x = node.inputs[0]
        rank = len(x.shape) - 2
        if rank not in (1, 2):
            raise UnsupportedModelError(f"{where}: input {list(x.shape)} has {rank} spatial axes; edgernn runs "
                                        "1-D and 2-D convolutions (X [N, C, L] or [N, C, H, W])")
        group, M, kernel = self._weight_sizes(node, rank)
        strides = checked_ints(node, attrs, "strides", rank, 1, 1)
        dilations = checked_ints(node, attrs, "dilations", rank, 1, 1)
        pads = checked_ints(node, attrs, "pads", 2 * rank, 0, 0)
        if attrs.get("auto_pad", "NOTSET") not in AUTO_PADS:
            raise UnsupportedModelError(f"{where}: auto_pad {attrs.get('auto_pad')!r} is not one of "
                                        f"{', '.join(AUTO_PADS)}")
        if is_symbolic(x.shape[1]):
            raise UnsupportedModelError(f"{where}: its channel axis is the time or batch axis; that mixes frames")
        pointwise = [k == 1 and st == 1 and pads[a] == 0 and pads[a + rank] == 0 and attrs.get("auto_pad", "NOTSET")
                     in ("NOTSET", "VALID") for a, (k, st) in enumerate(zip(kernel, strides))]
        for axis, d in enumerate(x.shape[2:], 2):
            if has_time(d) and pointwise[axis - 2]:
                continue        # a 1-wide kernel with stride 1 along time: each frame alone
            if has_time(d) and parts(d) != (1, 1, 0):
                raise UnsupportedModelError(f"{where}: axis {axis} of its input merges time with other axes")
            if has_time(d):
                continue        # streamed with a history of the frames before (passes/pulse.py)
            if is_symbolic(d):
                raise UnsupportedModelError(f"{where}: axis {axis} of its input is the batch axis; "
                                            "it would mix streams")
        C, in_sizes = int(x.shape[1]), [int(concrete(d)) for d in x.shape[2:]]
        if C % group:
            raise UnsupportedModelError(f"{where}: group {group} does not divide the {C} input channels")
        w = node.inputs[1]
        if attrs.get("packed"):
            shape = panel_shape(C // group * math.prod(kernel), [M // group] * group)
            if tuple(w.const.shape) != shape or (w.scale is not None and w.scale.shape != (shape[0] * shape[2],)):
                raise UnsupportedModelError(f"{where}: packed weight {list(w.const.shape)} is not a panel matrix "
                                            f"{list(shape)} for {M} outputs in {group} groups")
        else:
            expect_const(node, 1, [M, C // group] + kernel, "weight W")
        timed = [has_time(d) for d in x.shape[2:]]
        if any(timed) and attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise UnsupportedModelError(f"{where}: auto_pad {attrs['auto_pad']} along the time axis; the padding "
                                        "depends on the sequence length. Export with explicit pads")
        begin, end = auto_pads(node, attrs.get("auto_pad", "NOTSET"), in_sizes, kernel, strides, dilations, pads)
        out = [1 if t else (i + b + e - d * (k - 1) - 1) // s + 1
               for i, b, e, k, s, d, t in zip(in_sizes, begin, end, kernel, strides, dilations, timed)]
        if min(out) < 1:
            raise UnsupportedModelError(f"{where}: the kernel {kernel} (dilations {dilations}) does not fit the "
                                        f"padded input {in_sizes} (pads {begin + end}): output size {out}")
        out_dims = [d if is_symbolic(d) else o for d, o in zip(x.shape[2:], out)]
        return Geometry(x.shape[0], C, M, group, kernel, strides, dilations, begin, end, in_sizes, out_dims)

    def _weight_sizes(self, node, rank):
        """(group, M, kernel) from the attributes and W (raw [M, Cg, *kernel] or packed), checked
        against each other and the bias B [M]; W's Cg is checked against X by geometry."""
        where, attrs = node.describe(), node.attrs
        group = attrs.get("group", 1)
        if not isinstance(group, int) or not 1 <= group <= MAX_GROUPS:
            raise UnsupportedModelError(f"{where}: group {group!r} must be an integer from 1 to {MAX_GROUPS}")
        w = node.input(1)
        if w is None or not w.is_const:
            expect_const(node, 1, (), "weight W")                 # raises: missing or computed
        if attrs.get("packed"):
            M, kernel = attrs.get("out_channels"), checked_ints(node, attrs, "kernel_shape", rank, None, 1)
        else:
            if w.const.ndim != rank + 2:
                raise UnsupportedModelError(f"{where}: weight W '{w.name}' has shape {list(w.const.shape)}, "
                                            f"expected [M, C/group, *kernel] with {rank} kernel axes")
            M, kernel = int(w.const.shape[0]), [int(k) for k in w.const.shape[2:]]
            declared = attrs.get("kernel_shape")
            if declared is not None and list(declared) != kernel:
                raise UnsupportedModelError(f"{where}: kernel_shape {declared!r} disagrees with W's {kernel}")
            if min(kernel) < 1:
                raise UnsupportedModelError(f"{where}: weight W {list(w.const.shape)} has an empty kernel axis")
        if not isinstance(M, int) or M < 1 or M % group:
            raise UnsupportedModelError(f"{where}: its {M!r} output channels are not a positive multiple of "
                                        f"group {group}")
        expect_const(node, 2, (M,), "bias B", required=False)
        return group, M, kernel

    def infer(self, node):
        g = self.geometry(node)
        return [((g.N, g.M) + tuple(g.out_sizes), "float32")]

    def reference(self, node, x, w, b=None):
        """Plain NumPy over the zero-padded input, one kernel tap at a time."""
        g = self.geometry(node)
        if node.attrs.get("packed"):
            w = from_panels(node.inputs[1], [g.M // g.group] * g.group).T.reshape([g.M, g.C // g.group] + g.kernel)
        else:
            w = dequantize(node.inputs[1]).astype(np.float32).reshape([g.M, g.C // g.group] + g.kernel)
        x = x.astype(np.float32)
        xp = np.pad(x, [(0, 0), (0, 0)] + list(zip(g.pads_begin, g.pads_end)))
        y = np.zeros((x.shape[0], g.M, *[concrete(d) for d in g.out_sizes]), np.float32)
        cg, mg = g.C // g.group, g.M // g.group
        for tap in np.ndindex(*g.kernel):
            window = tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                           for t, d, o, s in zip(tap, g.dilations, [concrete(d) for d in g.out_sizes], g.strides))
            xs = xp[(slice(None), slice(None)) + window]                  # [N, C, *out]
            for grp in range(g.group):
                wt = w[(slice(grp * mg, (grp + 1) * mg), slice(None)) + tap]     # [Mg, Cg]
                y[:, grp * mg:(grp + 1) * mg] += np.einsum("nc...,mc->nm...", xs[:, grp * cg:(grp + 1) * cg], wt)
        if b is not None:
            y += b.reshape([1, g.M] + [1] * len(g.kernel)).astype(np.float32)
        return [y.astype(np.float32)]

    def pack(self, node):
        if node.attrs.get("packed"):
            return
        g = self.geometry(node)
        w = node.inputs[1]
        K = g.C // g.group * math.prod(g.kernel)
        flat = Value(w.name, shape=(g.M, K), dtype=w.dtype, const=w.const.reshape(g.M, K),
                     scale=w.scale, scale_axis=-2)       # int8: one scale per output channel M
        node.inputs = [node.inputs[0], to_panels(flat, groups=[g.M // g.group] * g.group)] + list(node.inputs[2:])
        node.attrs.update(kernel_shape=list(g.kernel), out_channels=g.M, packed=True)

    def time_axis(self, node):
        """The axis of X (2 or 3) that is the time axis, when the conv reaches across frames
        there (a kernel wider than one frame, or pads); else None."""
        return reaches_across_frames(node.inputs[0], self.geometry(node))

    def emit(self, node, ctx):
        if self.time_axis(node) is not None:
            raise UnsupportedModelError(f"{node.describe()}: internal: a convolution along time reached the plan "
                                        "without its history (passes/pulse.py)")
        g = self.geometry(node)
        hw = as_height_width                              # 1-D as height 1
        (in_h, in_w), (out_h, out_w), (k_h, k_w) = hw(g.in_sizes, 1), hw([concrete(d) for d in g.out_sizes], 1), hw(g.kernel, 1)
        (sh, sw), (dh, dw), (top, left) = hw(g.strides, 1), hw(g.dilations, 1), hw(g.pads_begin, 0)
        wo, ws = ctx.matrix(node.inputs[1])
        b = node.input(2)
        direct = int(self.direct(g))
        scratch = scratch_elements(direct, g.C, g.group, g.M, k_h, k_w, out_h, out_w, sh, sw, dh, dw)
        ctx.row(node, ROW, x=ctx.work_off(node.inputs[0]), y=ctx.work_off(node.outputs[0]), w=wo, w_scale=ws,
                w_matvec=0, b=ctx.const_off(b) if b is not None else -1, patch=ctx.scratch(scratch),
                samples=concrete(g.N), channels=g.C, groups=g.group, m=g.M, in_h=in_h, in_w=in_w, out_h=out_h,
                out_w=out_w, k_h=k_h, k_w=k_w, stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=top,
                pad_left=left, direct=direct)

    @staticmethod
    def direct(g):
        """Whether the kernel sums taps directly: few outputs per group (a panel would be mostly
        padding) and enough output positions that each tap's run amortises its setup."""
        return g.M // g.group < DIRECT_BELOW and math.prod(concrete(d) for d in g.out_sizes) >= DIRECT_BELOW

    def matvec_rows(self, node):
        g = self.geometry(node)
        return 1 if self.direct(g) else min(BLOCK, math.prod(concrete(d) for d in g.out_sizes))

    def flops(self, node):
        g = self.geometry(node)
        return 2 * node.outputs[0].size * (g.C // g.group) * math.prod(g.kernel)

    def macs(self, node):
        """The kernel's multiply-adds: the matvec's, panel padding included, or on the direct
        path (few outputs per group) those of the convolution itself."""
        g = self.geometry(node)
        w = node.inputs[1]
        if self.direct(g):
            return [(w, self.flops(node) // 2)]
        return [(w, int(w.const.size) * (node.outputs[0].size // g.M))]
