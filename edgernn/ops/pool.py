"""pool: ONNX MaxPool and AveragePool over one or two spatial axes.

Per spatial axis of input size I, kernel k, stride s, dilation d and pads pb, pe, output
position o reads the taps i = o * s - pb + j * d, j < k, that lie inside [0, I):

    max       Y[n, c, *o] = the largest X[n, c, *i] over those taps
    average   Y[n, c, *o] = their sum / their count        (count_include_pad 0)
                          = their sum / prod(kernel)        (count_include_pad 1: the padding
                                                             counts as zeros)
    O = floor((I + pb + pe - d (k - 1) - 1) / s) + 1

Inputs: X float32 [N, C, *spatial] (spatial rank 1 or 2; N may be the time or batch axis, 1 per
stream). attrs (ONNX names): mode ("max" or "average"), kernel_shape (required), strides,
dilations (default 1s), pads ([begins..., ends...], default 0s), auto_pad (NOTSET, VALID,
SAME_UPPER, SAME_LOWER), count_include_pad. Preconditions, checked by ``infer``: ceil_mode 0,
no Indices output, each pad smaller than the kernel's span (every window has a tap inside X).
Along the time axis: a 1-wide window with stride 1 and no padding pools each frame alone; a
wider or strided one with no padding along time (or average with count_include_pad 1)
streams over a history of frames (:mod:`edgernn.passes.pulse`), like a convolution.
Row: :data:`ROW`, one output at a time.
"""
from collections import namedtuple

import numpy as np

from ..config import jit
from ..errors import UnsupportedModelError
from ..ir.dims import concrete, has_time, is_symbolic, parts
from . import Op, register
from .conv import as_height_width, auto_pads, checked_ints, positions_inside, reaches_across_frames
from .row import Field, RowLayout, element_count, work

MAX, AVERAGE, AVERAGE_WITH_PADS = range(3)

ROW = RowLayout("pool", [
    Field("mode", "MAX, AVERAGE (divide by the taps inside x) or AVERAGE_WITH_PADS (by k_h k_w)"),
    Field("x", "work offset of x [planes, in_h, in_w] (strides and dilations >= 1)",
          work(lambda r: element_count((r.planes, r.in_h, r.in_w)) if min(r.stride_h, r.stride_w, r.dil_h, r.dil_w)
               >= 1 else -1, optional=False)),
    Field("y", "work offset of y [planes, out_h, out_w]",
          work(lambda r: element_count((r.planes, r.out_h, r.out_w)), writes=True, optional=False)),
    Field("planes", "N * C"), Field("in_h", "input height (1 for 1-D)"), Field("in_w", "input width"),
    Field("out_h"), Field("out_w"), Field("k_h"), Field("k_w"), Field("stride_h"), Field("stride_w"),
    Field("dil_h"), Field("dil_w"), Field("pad_top", "padding before the first row"),
    Field("pad_left", "padding before the first column"),
])
F = ROW.fields
Geometry = namedtuple("Geometry", "kernel strides dilations pads_begin pads_end in_sizes out_sizes")


@ROW.kernel
@jit
def pool_kernel(row, fparams, consts, qconsts, work, seq):
    """Every stream, plane and output: the taps inside x are a rectangle of the kernel, rows
    [i_lo, i_hi) by columns [j_lo, j_hi) (:func:`~edgernn.ops.conv.positions_inside`), read
    row by row in order; the mode's branch is taken once per output, outside the taps."""
    mode, planes = row[F.mode], row[F.planes]
    in_h, in_w, out_h, out_w, k_h, k_w = row[F.in_h], row[F.in_w], row[F.out_h], row[F.out_w], row[F.k_h], row[F.k_w]
    sh, sw, dh, dw, top, left = row[F.stride_h], row[F.stride_w], row[F.dil_h], row[F.dil_w], row[F.pad_top], \
        row[F.pad_left]
    window = np.float32(k_h * k_w)
    for s in range(work.shape[0]):
        x = work[s, row[F.x]:row[F.x] + planes * in_h * in_w]
        y = work[s, row[F.y]:row[F.y] + planes * out_h * out_w]
        for p in range(planes):
            for oh in range(out_h):
                i_lo, i_hi = positions_inside(oh * sh - top, dh, in_h, k_h)
                first_row = (p * in_h + oh * sh - top) * in_w
                for ow in range(out_w):
                    j_lo, j_hi = positions_inside(ow * sw - left, dw, in_w, k_w)
                    first = first_row + ow * sw - left
                    if mode == MAX:
                        acc = np.float32(-np.inf)
                        for i in range(i_lo, i_hi):
                            for j in range(j_lo, j_hi):
                                acc = max(acc, x[first + i * dh * in_w + j * dw])
                    else:
                        acc = np.float32(0.0)
                        for i in range(i_lo, i_hi):
                            for j in range(j_lo, j_hi):
                                acc += x[first + i * dh * in_w + j * dw]
                        acc = acc / (np.float32((i_hi - i_lo) * (j_hi - j_lo)) if mode == AVERAGE else window)
                    y[(p * out_h + oh) * out_w + ow] = acc


@register
class Pool(Op):
    name = "pool"

    def mode(self, node):
        mode = node.attrs.get("mode")
        if mode == "max":
            return MAX
        if mode == "average":
            return AVERAGE_WITH_PADS if node.attrs.get("count_include_pad", 0) else AVERAGE
        raise UnsupportedModelError(f"{node.describe()}: pool mode {mode!r} is not 'max' or 'average'")

    def geometry(self, node):
        where, attrs = node.describe(), node.attrs
        x = node.inputs[0]
        rank = len(x.shape) - 2
        if rank not in (1, 2):
            raise UnsupportedModelError(f"{where}: input {list(x.shape)} has {rank} spatial axes; edgernn pools "
                                        "over 1 or 2 (X [N, C, L] or [N, C, H, W])")
        self.mode(node)
        if attrs.get("ceil_mode", 0):
            raise UnsupportedModelError(f"{where}: ceil_mode 1 (a last window past the padding) is not supported; "
                                        "export with ceil_mode=False")
        if len(node.outputs) > 1 and node.outputs[1] is not None:
            raise UnsupportedModelError(f"{where}: MaxPool's Indices output is not supported")
        kernel = checked_ints(node, attrs, "kernel_shape", rank, None, 1)
        strides = checked_ints(node, attrs, "strides", rank, 1, 1)
        dilations = checked_ints(node, attrs, "dilations", rank, 1, 1)
        pads = checked_ints(node, attrs, "pads", 2 * rank, 0, 0)
        if is_symbolic(x.shape[1]):
            raise UnsupportedModelError(f"{where}: its channel axis is the time or batch axis")
        timed = [has_time(d) for d in x.shape[2:]]
        if any(timed) and attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise UnsupportedModelError(f"{where}: auto_pad {attrs['auto_pad']} along the time axis; export with "
                                        "explicit pads")
        in_sizes = [int(concrete(d)) for d in x.shape[2:]]
        begin, end = auto_pads(node, attrs.get("auto_pad", "NOTSET"), in_sizes, kernel, strides, dilations, pads)
        for a, d in enumerate(x.shape[2:]):
            if has_time(d) and parts(d) != (1, 1, 0):
                raise UnsupportedModelError(f"{where}: axis {a + 2} merges time with other axes")
            if is_symbolic(d) and not has_time(d):
                raise UnsupportedModelError(f"{where}: axis {a + 2} of its input is the batch axis")
            if max(begin[a], end[a]) > dilations[a] * (kernel[a] - 1):
                raise UnsupportedModelError(f"{where}: pads {begin + end} reach past the kernel's span on axis "
                                            f"{a + 2}; a window would hold padding only")
        out = [1 if t else (i + b + e - d * (k - 1) - 1) // s + 1
               for i, b, e, k, s, d, t in zip(in_sizes, begin, end, kernel, strides, dilations, timed)]
        if min(out) < 1:
            raise UnsupportedModelError(f"{where}: the window {kernel} does not fit the padded input {in_sizes}")
        out_dims = [d if has_time(d) else o for d, o in zip(x.shape[2:], out)]
        return Geometry(kernel, strides, dilations, begin, end, in_sizes, out_dims)

    def time_axis(self, node):
        """The axis of X that is the time axis when the window reaches across frames, else None."""
        return reaches_across_frames(node.inputs[0], self.geometry(node))

    def infer(self, node):
        x = node.inputs[0]
        return [((x.shape[0], x.shape[1]) + tuple(self.geometry(node).out_sizes), "float32")]

    def reference(self, node, x):
        g, mode = self.geometry(node), self.mode(node)
        rank = len(g.kernel)
        out = np.empty(x.shape[:2] + tuple(int(concrete(d)) for d in g.out_sizes), np.float32)
        for o in np.ndindex(*out.shape[2:]):
            taps = [[o[a] * g.strides[a] - g.pads_begin[a] + j * g.dilations[a] for j in range(g.kernel[a])
                     if 0 <= o[a] * g.strides[a] - g.pads_begin[a] + j * g.dilations[a] < x.shape[2 + a]]
                    for a in range(rank)]
            window = x[(slice(None), slice(None)) + np.ix_(*taps)].reshape(x.shape[0], x.shape[1], -1)
            if mode == MAX:
                out[(slice(None), slice(None)) + o] = window.max(axis=2)
            else:
                divisor = window.shape[2] if mode == AVERAGE else int(np.prod(g.kernel))
                out[(slice(None), slice(None)) + o] = window.sum(axis=2) / np.float32(divisor)
        return [out]

    def emit(self, node, ctx):
        if self.time_axis(node) is not None:
            raise UnsupportedModelError(f"{node.describe()}: internal: a pool along time reached the plan without "
                                        "its history (passes/pulse.py)")
        g = self.geometry(node)
        x = node.inputs[0]
        hw = as_height_width                              # 1-D as height 1
        (in_h, in_w), (out_h, out_w), (k_h, k_w) = hw(g.in_sizes, 1), hw([concrete(d) for d in g.out_sizes], 1), hw(g.kernel, 1)
        (sh, sw), (dh, dw), (top, left) = hw(g.strides, 1), hw(g.dilations, 1), hw(g.pads_begin, 0)
        ctx.row(node, ROW, mode=self.mode(node), x=ctx.work_off(x), y=ctx.work_off(node.outputs[0]),
                planes=concrete(x.shape[0]) * int(x.shape[1]), in_h=in_h, in_w=in_w, out_h=out_h, out_w=out_w,
                k_h=k_h, k_w=k_w, stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=top, pad_left=left)

    def flops(self, node):
        return int(np.prod(node.outputs[0].concrete_shape)) * int(np.prod(self.geometry(node).kernel))
