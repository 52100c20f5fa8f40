"""conv_transpose: the ONNX ConvTranspose op over one or two spatial axes, within one frame.

Each input position i scatters its channels through the kernel into the output:

    Y[n, g*Mg + m, *o] = B[g*Mg + m] + sum X[n, g*Cg + c, *i] * W[g*Cg + c, m, *j]
                         over c < Cg and every (i, j) with o = i * strides + j * dilations - pads_begin

with Cg = C / group inputs and Mg = M / group outputs per group; positions o outside the
output are dropped. Per spatial axis of input size I, kernel k, stride s, dilation d and
output_padding a:

    O = s (I - 1) + a + d (k - 1) + 1 - pads_begin - pads_end                   (O >= 1)

Inputs: X float32 [N, C, *spatial] (spatial rank 1 or 2; N may be the time or batch axis, 1
per stream, or a concrete int the kernel loops over; C and the spatial sizes are concrete),
W constant [C, Mg, *kernel], B constant [M] or absent. Output Y float32 [N, M, *out].
Attributes (ONNX names): strides, dilations (default 1s), pads ([begin..., end...], default
0s; only with auto_pad NOTSET), output_padding (default 0s; each < max(stride, dilation)),
group (divides C), kernel_shape (optional, must equal W's), output_shape (spatial sizes),
auto_pad: NOTSET, VALID (no pads), SAME_UPPER / SAME_LOWER (O = I * s). When O is given
(output_shape, or SAME_*) ``pads`` is ignored: total = max(0, s (I - 1) + a + d (k - 1) + 1 - O)
is split with the odd one at the end for SAME_UPPER, at the beginning otherwise (the spec's
equations; onnxruntime's). Along the time axis the pointwise case runs as it is (kernel 1,
stride 1, no padding); with strides 1 everywhere, no output_padding/output_shape and pads no
wider than the kernel's span it equals a Conv (:meth:`ConvTranspose.as_conv`), which
:mod:`edgernn.passes.pulse` streams over a history of frames; a stride along time spreads a
frame over later ones (overlap-add) and is refused.

Kernel layout (pack pass): W as a panel matrix (:mod:`edgernn.ops.matvec`) of K = Cg inputs
and column groups [Mg * prod(kernel)] * group (columns in the order m, kernel rows, columns),
each group starting its own panel; attrs ``packed``, ``out_channels`` (M), ``kernel_shape``.
The kernel sets Y to the bias, then per group and block of BLOCK input positions gathers the
positions' Cg inputs into scratch, runs the matvec (the positions are its rows) giving each
position's Mg * prod(kernel) products, and adds each product to its output (col2im). With
fewer than DIRECT_BELOW columns per group (a panel would be mostly padding) it scatters each
weight times a run of inputs directly (:meth:`ConvTranspose.direct`), reading the same
panels. A 1-D op runs as a 2-D one of height 1. Row: :data:`ROW`.
"""
import math
from collections import namedtuple

import numpy as np

from ..config import jit, jit_inline
from ..errors import UnsupportedModelError
from ..ir.dims import concrete, has_time, is_symbolic
from ..ir.graph import Value
from ..quant import dequantize
from . import Op, expect_const, register
from .conv import (AUTO_PADS, MAX_GROUPS, as_height_width, checked_ints, positions_inside,    # Conv's rules
                   reaches_across_frames, spatial_fields)                                        # and fields
from .matvec import add_matvec, from_panels, lanes_for, panel_shape, to_panels
from .row import Field, RowLayout, element_count, work

DIRECT_BELOW = 8          # columns (Mg * prod(kernel)) per group below which the kernel scatters directly
BLOCK = 8                 # input positions one pass over the weights multiplies


def _group_inputs(r):
    """Cg of a row, -1 unless 1 <= groups <= channels."""
    return r.channels // r.groups if r.groups >= 1 and r.channels >= r.groups else -1


def _group_columns(r):
    """Mg * k_h * k_w of a row, -1 when any factor is not positive."""
    mg = r.m // r.groups if 1 <= r.groups <= r.m else -1
    return element_count((mg, r.k_h, r.k_w)) if min(mg, r.k_h, r.k_w) >= 1 else -1


def _column_groups(r):
    cols = _group_columns(r)
    return [cols] * r.groups if cols >= 1 and r.groups <= MAX_GROUPS else []


ROW = RowLayout("conv_transpose", spatial_fields(
    "weight panels, channels/groups inputs -> m/groups * k_h * k_w columns per group", (_group_inputs, _column_groups),
    Field("columns", "scratch for a block of input positions of one group, [BLOCK, Cg + Mg k_h k_w]: each "
                     "row a position's inputs, then its products",
          work(lambda r: BLOCK * (_group_inputs(r) + _group_columns(r)) if min(_group_inputs(r), _group_columns(r)) > 0
               else -1, writes=True, optional=False)),
    ("output rows cropped at the top", "output columns cropped at the left"),
    "1: scatter each weight directly (few columns per group); 0: matvec + col2im"))
F = ROW.fields


@jit_inline
def _direct_scatter(row, consts, qconsts, work, x_n, y_n):
    """One sample, every stream, output channel by channel: for each weight W[c, m, i, j] in
    order, y_m[i_in * strides + (i, j) * dilations - pads] += W[c, m, i, j] * x_c[i_in] over
    the inputs whose output lies inside y (a run of outputs stride_w apart per input row)."""
    G, M, C = row[F.groups], row[F.m], row[F.channels]
    cg, mg = C // G, M // G
    in_h, in_w, out_h, out_w, k_h, k_w = row[F.in_h], row[F.in_w], row[F.out_h], row[F.out_w], row[F.k_h], row[F.k_w]
    sh, sw, dh, dw = row[F.stride_h], row[F.stride_w], row[F.dil_h], row[F.dil_w]
    w_off, s_off = row[F.w], row[F.w_scale]
    cols, in_size, out_size = mg * k_h * k_w, in_h * in_w, out_h * out_w
    lanes = lanes_for(cols)
    group_panels = (cols + lanes - 1) // lanes
    for s in range(work.shape[0]):
        for m in range(G * mg):
            g, j = m // mg, m % mg
            y = work[s, y_n + m * out_size:y_n + (m + 1) * out_size]
            x = work[s, x_n + g * cg * in_size:x_n + (g + 1) * cg * in_size]
            for c in range(cg):
                for i in range(k_h):
                    top = i * dh - row[F.pad_top]
                    h_lo, h_hi = positions_inside(top, sh, out_h, in_h)
                    for jj in range(k_w):
                        col = (j * k_h + i) * k_w + jj
                        p, lane = g * group_panels + col // lanes, col % lanes
                        at = w_off + (p * cg + c) * lanes + lane
                        wk = consts[at] if s_off < 0 else np.float32(qconsts[at]) * consts[s_off + p * lanes + lane]
                        left = jj * dw - row[F.pad_left]
                        w_lo, w_hi = positions_inside(left, sw, out_w, in_w)
                        if w_hi <= w_lo:
                            continue
                        for ih in range(h_lo, h_hi):       # slices: loop indices from 0, no wraparound
                            x_run = x[c * in_size + ih * in_w + w_lo:c * in_size + ih * in_w + w_hi]
                            y0 = (top + ih * sh) * out_w + left + w_lo * sw
                            y_run = y[y0:y0 + (w_hi - w_lo - 1) * sw + 1]
                            for q in range(w_hi - w_lo):
                                y_run[q * sw] += wk * x_run[q]


@ROW.kernel
@jit
def conv_transpose_kernel(row, fparams, consts, qconsts, work, seq):
    """Every stream (row of ``work``), every sample n: Y = B, then every input position's
    products W^T x added to the outputs they reach. The matvec path multiplies a block of
    BLOCK positions per pass over a group's weights (the positions are the panel kernel's
    rows); each product is the same chain of Cg multiply-adds whatever the blocking."""
    G, M, C = row[F.groups], row[F.m], row[F.channels]
    cg, mg = C // G, M // G
    in_h, in_w, out_h, out_w, k_h, k_w = row[F.in_h], row[F.in_w], row[F.out_h], row[F.out_w], row[F.k_h], row[F.k_w]
    sh, sw, dh, dw = row[F.stride_h], row[F.stride_w], row[F.dil_h], row[F.dil_w]
    top, left = row[F.pad_top], row[F.pad_left]
    w_off, s_off, b_off, columns = row[F.w], row[F.w_scale], row[F.b], row[F.columns]
    cols, in_size, out_size = mg * k_h * k_w, in_h * in_w, out_h * out_w
    lanes = lanes_for(cols)
    group_panels = (cols + lanes - 1) // lanes
    width = cg + cols                               # one position's row in the column block
    for n in range(row[F.samples]):
        x_n, y_n = row[F.x] + n * C * in_size, row[F.y] + n * M * out_size
        for s in range(work.shape[0]):
            for m in range(G * mg):
                y = work[s, y_n + m * out_size:y_n + (m + 1) * out_size]
                bias = consts[b_off + m] if b_off >= 0 else np.float32(0.0)
                for o in range(out_size):
                    y[o] = bias
        if row[F.direct]:
            _direct_scatter(row, consts, qconsts, work, x_n, y_n)
            continue
        for g in range(G):
            p0 = g * group_panels
            x_g = x_n + g * cg * in_size
            for first in range(0, in_size, BLOCK):
                count = min(BLOCK, in_size - first)
                for s in range(work.shape[0]):
                    for q in range(count):
                        pos = work[s, columns + q * width:columns + (q + 1) * width]
                        for c in range(cg):
                            pos[c] = work[s, x_g + c * in_size + first + q]
                        for k in range(cols):
                            pos[cg + k] = np.float32(0.0)
                    block = work[s, columns:columns + count * width].reshape((count, width))
                    add_matvec(row[F.w_matvec], consts, qconsts, w_off + p0 * cg * lanes,
                               s_off + p0 * lanes if s_off >= 0 else -1, cg, cols, block, 0, cg, False)
                    for q in range(count):           # col2im: each product to the output it reaches
                        ih, iw = (first + q) // in_w, (first + q) % in_w
                        products = work[s, columns + q * width + cg:columns + (q + 1) * width]
                        for m in range(mg):
                            y = work[s, y_n + (g * mg + m) * out_size:y_n + (g * mg + m + 1) * out_size]
                            for i in range(k_h):
                                oh = ih * sh + i * dh - top
                                if 0 <= oh < out_h:
                                    for jj in range(k_w):
                                        ow = iw * sw + jj * dw - left
                                        if 0 <= ow < out_w:
                                            y[oh * out_w + ow] += products[(m * k_h + i) * k_w + jj]


Geometry = namedtuple("Geometry", "N C M group kernel strides dilations pads_begin pads_end in_sizes out_sizes")


@register
class ConvTranspose(Op):
    name = "conv_transpose"
    matrix_slots = (1,)

    def geometry(self, node):
        """Every size of the op, checked (module doc); raises UnsupportedModelError naming the
        node. Constant operands and attributes are checked before the input's axes."""
        where, attrs = node.describe(), node.attrs
        if not 2 <= len(node.inputs) <= 3 or node.inputs[0] is None:
            raise UnsupportedModelError(f"{where}: takes X, W and an optional B, got {len(node.inputs)} inputs")
        x = node.inputs[0]
        rank = len(x.shape) - 2
        if rank not in (1, 2):
            raise UnsupportedModelError(f"{where}: input {list(x.shape)} has {rank} spatial axes; edgernn runs "
                                        "1-D and 2-D transposed convolutions (X [N, C, L] or [N, C, H, W])")
        group, M, Cg, kernel = self._weight_sizes(node, rank)
        strides = checked_ints(node, attrs, "strides", rank, 1, 1)
        dilations = checked_ints(node, attrs, "dilations", rank, 1, 1)
        pads = checked_ints(node, attrs, "pads", 2 * rank, 0, 0)
        extra = checked_ints(node, attrs, "output_padding", rank, 0, 0)
        if any(a >= max(s, d) for a, s, d in zip(extra, strides, dilations)):
            raise UnsupportedModelError(f"{where}: output_padding {extra} must be below max(stride, dilation) "
                                        f"per axis (strides {strides}, dilations {dilations})")
        mode = attrs.get("auto_pad", "NOTSET")
        if mode not in AUTO_PADS:
            raise UnsupportedModelError(f"{where}: auto_pad {mode!r} is not one of {', '.join(AUTO_PADS)}")
        if mode != "NOTSET" and any(pads):
            raise UnsupportedModelError(f"{where}: pads {pads} given with auto_pad {mode}; ONNX allows only one")
        wanted = attrs.get("output_shape")
        if wanted is not None:
            if not isinstance(wanted, (list, tuple)) or len(wanted) != rank \
                    or not all(isinstance(o, int) and o >= 1 for o in wanted):
                raise UnsupportedModelError(f"{where}: output_shape {wanted!r} must be {rank} positive integers "
                                            "(the spatial sizes)")
            wanted = [int(o) for o in wanted]
        if is_symbolic(x.shape[1]):
            raise UnsupportedModelError(f"{where}: its channel axis is the time or batch axis; that mixes frames")
        pointwise = [k == 1 and st == 1 and pads[a] == pads[a + rank] == extra[a] == 0 and wanted is None
                     and mode in ("NOTSET", "VALID") for a, (k, st) in enumerate(zip(kernel, strides))]
        as_conv = max(strides) == 1 and max(extra) == 0 and wanted is None and mode in ("NOTSET", "VALID") \
            and all(max(pads[a], pads[a + rank]) <= d * (k - 1) for a, (k, d) in enumerate(zip(kernel, dilations)))
        for axis, d in enumerate(x.shape[2:], 2):
            if has_time(d) and not pointwise[axis - 2] and not as_conv:
                raise UnsupportedModelError(
                    f"{where}: axis {axis} of its input is the time axis; a transposed convolution along time "
                    "streams when it equals a convolution: strides 1 on every axis, no output_padding or "
                    "output_shape, explicit pads no wider than the kernel's span (a stride spreads each frame over "
                    "later ones: overlap-add, not streamed yet). Run it within a frame or pass time_axis=")
            if is_symbolic(d) and not has_time(d):
                raise UnsupportedModelError(f"{where}: axis {axis} of its input is the batch axis; "
                                            "it would mix streams")
        C, in_sizes = int(x.shape[1]), [int(concrete(d)) for d in x.shape[2:]]
        if C != Cg * group:
            raise UnsupportedModelError(f"{where}: weight W has {Cg * group} input channels ({group} groups of "
                                        f"{Cg}); X has {C}")
        full = [s * (i - 1) + a + d * (k - 1) + 1
                for i, s, a, d, k in zip(in_sizes, strides, extra, dilations, kernel)]
        if mode in ("SAME_UPPER", "SAME_LOWER") and wanted is None:
            wanted = [i * s for i, s in zip(in_sizes, strides)]
        if wanted is not None:
            total = [max(0, f - o) for f, o in zip(full, wanted)]
            upper = mode == "SAME_UPPER"
            begin = [t // 2 if upper else t - t // 2 for t in total]
            end = [t - b for t, b in zip(total, begin)]
            out = wanted
        else:
            begin, end = ([0] * rank, [0] * rank) if mode == "VALID" else (pads[:rank], pads[rank:])
            out = [f - b - e for f, b, e in zip(full, begin, end)]
        out = [1 if has_time(d) else o for d, o in zip(x.shape[2:], out)]      # streamed: passes/pulse.py
        if min(out) < 1:
            raise UnsupportedModelError(f"{where}: pads {begin + end} crop the whole output {full}: "
                                        f"output size {out}")
        out_dims = [d if has_time(d) else o for d, o in zip(x.shape[2:], out)]
        return Geometry(x.shape[0], C, M, group, kernel, strides, dilations, begin, end, in_sizes, out_dims)

    def time_axis(self, node):
        """The axis of X that is the time axis when the kernel reaches across frames, else None."""
        return reaches_across_frames(node.inputs[0], self.geometry(node))

    def as_conv(self, node):
        """(W, attrs) of the Conv this stride-1 transposed convolution equals (geometry checked
        it): y[o] = sum_j x[o + pb - j d] W[c, m, j] = sum_j' x[o - (d (k - 1) - pb) + j' d] W[c, m, k - 1 - j'],
        so W' [M, C/group, *kernel] is W's channels swapped per group and its taps reversed, and
        each axis's pads become d (k - 1) - pads."""
        g = self.geometry(node)
        if node.attrs.get("packed"):
            raise UnsupportedModelError(f"{node.describe()}: internal: a packed weight cannot be turned over")
        w = node.inputs[1].const
        rank, Cg, Mg = len(g.kernel), g.C // g.group, g.M // g.group
        w = w.reshape((g.group, Cg, Mg) + tuple(g.kernel)).swapaxes(1, 2).reshape((g.M, Cg) + tuple(g.kernel))
        w = np.ascontiguousarray(np.flip(w, axis=tuple(range(2, 2 + rank))))
        span = [d * (k - 1) for k, d in zip(g.kernel, g.dilations)]
        pads = [s - p for s, p in zip(span, g.pads_begin)] + [s - p for s, p in zip(span, g.pads_end)]
        return w, {"group": g.group, "dilations": list(g.dilations), "pads": pads, "auto_pad": "NOTSET"}

    def _weight_sizes(self, node, rank):
        """(group, M, Cg, kernel) from the attributes and W (raw [C, Mg, *kernel] or packed),
        checked against each other and the bias B [M]; C is checked against X by geometry."""
        where, attrs = node.describe(), node.attrs
        group = attrs.get("group", 1)
        if not isinstance(group, int) or not 1 <= group <= MAX_GROUPS:
            raise UnsupportedModelError(f"{where}: group {group!r} must be an integer from 1 to {MAX_GROUPS}")
        w = node.input(1)
        if w is None or not w.is_const:
            expect_const(node, 1, (), "weight W")                 # raises: missing or computed
        if attrs.get("packed"):
            M, kernel = attrs.get("out_channels"), checked_ints(node, attrs, "kernel_shape", rank, None, 1)
            if not isinstance(M, int) or M < 1 or M % group:
                raise UnsupportedModelError(f"{where}: out_channels {M!r} is not a positive multiple of group {group}")
            shape = w.const.shape
            Cg = int(shape[1]) if len(shape) == 3 else -1
            want = panel_shape(max(Cg, 0), [M // group * math.prod(kernel)] * group)
            if tuple(shape) != want or Cg < 1 or (w.scale is not None and w.scale.shape != (want[0] * want[2],)):
                raise UnsupportedModelError(f"{where}: packed weight {list(shape)} is not a panel matrix "
                                            f"{list(want)} for {M} outputs x kernel {kernel} in {group} groups")
        else:
            if w.const.ndim != rank + 2:
                raise UnsupportedModelError(f"{where}: weight W '{w.name}' has shape {list(w.const.shape)}, "
                                            f"expected [C, M/group, *kernel] with {rank} kernel axes")
            C, Mg, kernel = int(w.const.shape[0]), int(w.const.shape[1]), [int(k) for k in w.const.shape[2:]]
            declared = attrs.get("kernel_shape")
            if declared is not None and list(declared) != kernel:
                raise UnsupportedModelError(f"{where}: kernel_shape {declared!r} disagrees with W's {kernel}")
            if min(kernel + [Mg, C]) < 1:
                raise UnsupportedModelError(f"{where}: weight W {list(w.const.shape)} has an empty axis")
            if C % group:
                raise UnsupportedModelError(f"{where}: group {group} does not divide W's {C} input channels")
            M, Cg = Mg * group, C // group
        expect_const(node, 2, (M,), "bias B", required=False)
        return group, M, Cg, kernel

    def infer(self, node):
        g = self.geometry(node)
        return [((g.N, g.M) + tuple(g.out_sizes), "float32")]

    def reference(self, node, x, w, b=None):
        """Plain loops over the input positions and kernel taps: each input times its
        weights added at o = i * strides + j * dilations - pads_begin, when inside."""
        g = self.geometry(node)
        cg, mg, out = g.C // g.group, g.M // g.group, [concrete(d) for d in g.out_sizes]
        if node.attrs.get("packed"):                       # [Cg, group * Mg * taps] -> [C, Mg * taps]
            w = np.concatenate(np.split(from_panels(node.inputs[1], [mg * math.prod(g.kernel)] * g.group), g.group, 1))
        else:
            w = dequantize(node.inputs[1])
        w, x = w.astype(np.float32).reshape([g.C, mg] + g.kernel), x.astype(np.float32)
        y = np.zeros((x.shape[0], g.M, *out), np.float32)
        for i in np.ndindex(*x.shape[2:]):
            for j in np.ndindex(*g.kernel):
                o = tuple(p * s + t * d - pb for p, s, t, d, pb in zip(i, g.strides, j, g.dilations, g.pads_begin))
                if not all(0 <= v < n for v, n in zip(o, out)):
                    continue
                for grp in range(g.group):
                    xs = x[(slice(None), slice(grp * cg, (grp + 1) * cg)) + i]          # [N, Cg]
                    ws = w[(slice(grp * cg, (grp + 1) * cg), slice(None)) + j]          # [Cg, Mg]
                    y[(slice(None), slice(grp * mg, (grp + 1) * mg)) + o] += xs @ ws
        if b is not None:
            y += b.reshape([1, g.M] + [1] * len(out)).astype(np.float32)
        return [y]

    def pack(self, node):
        if node.attrs.get("packed"):
            return
        g = self.geometry(node)
        w = node.inputs[1]
        cg, cols = g.C // g.group, g.M // g.group * math.prod(g.kernel)
        if w.scale is not None:        # scales along W's output channels: the panels' columns are (m, tap)
            w = Value(w.name, shape=w.shape, const=dequantize(w).astype(np.float32))
        per_group = w.const.reshape(g.group, cg, cols).transpose(0, 2, 1).reshape(g.group * cols, cg)
        flat = Value(w.name, shape=per_group.shape, dtype=w.dtype, const=np.ascontiguousarray(per_group))
        node.inputs = [node.inputs[0], to_panels(flat, groups=[cols] * g.group)] + list(node.inputs[2:])
        node.attrs.update(kernel_shape=list(g.kernel), out_channels=g.M, packed=True)

    def emit(self, node, ctx):
        if self.time_axis(node) is not None:
            raise UnsupportedModelError(f"{node.describe()}: internal: a transposed convolution along time reached "
                                        "the plan (passes/pulse.py turns it into a convolution)")
        g = self.geometry(node)
        out_sizes = [concrete(d) for d in g.out_sizes]
        hw = as_height_width                              # 1-D as height 1
        (in_h, in_w), (out_h, out_w), (k_h, k_w) = hw(g.in_sizes, 1), hw(out_sizes, 1), hw(g.kernel, 1)
        (sh, sw), (dh, dw), (top, left) = hw(g.strides, 1), hw(g.dilations, 1), hw(g.pads_begin, 0)
        wo, ws = ctx.matrix(node.inputs[1])
        b = node.input(2)
        cg, cols = g.C // g.group, g.M // g.group * k_h * k_w
        ctx.row(node, ROW, x=ctx.work_off(node.inputs[0]), y=ctx.work_off(node.outputs[0]), w=wo, w_scale=ws,
                w_matvec=0, b=ctx.const_off(b) if b is not None else -1, columns=ctx.scratch(BLOCK * (cg + cols)),
                samples=concrete(g.N), channels=g.C, groups=g.group, m=g.M, in_h=in_h, in_w=in_w, out_h=out_h,
                out_w=out_w, k_h=k_h, k_w=k_w, stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=top,
                pad_left=left, direct=int(self.direct(g)))

    @staticmethod
    def direct(g):
        """Whether the kernel scatters each weight directly: fewer than DIRECT_BELOW columns
        per group (a panel of them would be mostly padding)."""
        return g.M // g.group * math.prod(g.kernel) < DIRECT_BELOW

    def matvec_rows(self, node):
        g = self.geometry(node)
        return 1 if self.direct(g) else min(BLOCK, math.prod(g.in_sizes))

    def flops(self, node):
        g = self.geometry(node)
        return 2 * node.inputs[0].size * (g.M // g.group) * math.prod(g.kernel)

    def macs(self, node):
        """The kernel's multiply-adds: the matvec's per input position, panel padding included,
        or on the direct path those of the op itself (taps falling outside included)."""
        g = self.geometry(node)
        w = node.inputs[1]
        if self.direct(g):
            return [(w, self.flops(node) // 2)]
        return [(w, int(w.const.size) * (node.inputs[0].size // g.C))]
