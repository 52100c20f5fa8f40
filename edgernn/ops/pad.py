"""pad: ONNX Pad. Grows (or, with negative pads, crops) each axis at both ends.

    y.shape[k] = x.shape[k] + begin[k] + end[k]
    y[i] = x[src(i)] where, per axis, j = i_k - begin[k] and n = x.shape[k]:
        constant  j outside [0, n): the constant value (whole element)
        edge      clamp(j, 0, n - 1)
        reflect   -j for j < 0, 2 (n - 1) - j for j >= n      (the border itself not repeated)
        wrap      j mod n

Inputs: x, pads (constant int [2 * len(axes)]: every axis' begin, then every axis' end),
constant_value (constant scalar, or absent: 0), axes (constant ints, or absent: every axis).
attrs: mode ("constant", "edge", "reflect" or "wrap").

Preconditions, checked by ``infer``: reflect needs begin, end < n and wrap begin, end <= n
(ONNX's rule; NumPy would repeat the reflection); edge, reflect and wrap need n >= 1; negative
pads (cropping) only in constant mode; no padding along the batch axis. Along the time axis
only zero padding in constant mode, which :mod:`edgernn.passes.pulse` folds into the
convolution it feeds (infer keeps the time axis as it is).
Row: :data:`ROW`, one element of y at a time, computed from its source coordinate per axis.
"""
import numpy as np

from ..config import jit, jit_inline
from ..errors import UnsupportedModelError
from ..ir.dims import has_batch, has_time, is_symbolic
from . import Op, register
from .layout import const_array, norm_axis, tidy
from .program import MAX_RANK, contiguous_strides, copy_into, pad as fill_to_rank
from .row import WORK, Extent, Field, RowLayout, element_count, fparam, ranked_dims, strided_span, work

CONSTANT, EDGE, REFLECT, WRAP = range(4)
MODES = {"constant": CONSTANT, "edge": EDGE, "reflect": REFLECT, "wrap": WRAP}


def _x_span(r):
    """The elements of x at coordinates [0, in_dims) with x_strides (first, count)."""
    if not 1 <= r.rank <= MAX_RANK:
        return 0, -1
    return strided_span(r.in_dims[:r.rank], r.x_strides[:r.rank])


ROW = RowLayout("pad", [
    Field("mode", "CONSTANT, EDGE, REFLECT or WRAP"),
    Field("x", "work offset of x [in_dims]", Extent(WORK, span=_x_span, optional=False)),
    Field("y", "work offset of y [dims] (contiguous)",
          work(lambda r: element_count(ranked_dims(r)), writes=True, optional=False)),
    Field("value", "index of the constant value in fparams", fparam(1)),
    Field("rank", "axes (1..6)"),
    Field("dims", "y's shape", count=MAX_RANK),
    Field("in_dims", "x's shape", count=MAX_RANK),
    Field("begins", "elements added before each axis (negative: cropped)", count=MAX_RANK),
    Field("x_strides", "x's stride per axis", count=MAX_RANK),
])
F = ROW.fields


@jit_inline
def _source_index(mode, j, n):
    """The index of x read for position j (j - begin) of an axis of x's size n, or -1 for
    the constant value. Precondition: n >= 1."""
    if 0 <= j < n:
        return j
    if mode == CONSTANT:
        return -1
    if mode == EDGE:
        j = 0 if j < 0 else n - 1
    elif mode == REFLECT:
        j = -j if j < 0 else 2 * (n - 1) - j
    else:
        j = j % n
    return min(max(j, 0), n - 1)      # a forged row stays inside x


@ROW.kernel
@jit
def pad_kernel(row, fparams, consts, qconsts, work, seq):
    """y over its shape ``dims``, run by run along the innermost axis: the outer axes give the
    run's source row in x (or the constant), the run copies x's row between its pads."""
    mode, xo, yo, rank = row[F.mode], row[F.x], row[F.y], row[F.rank]
    value = fparams[row[F.value]]
    dims = row[F.dims:F.dims + MAX_RANK]
    in_dims = row[F.in_dims:F.in_dims + MAX_RANK]
    begins = row[F.begins:F.begins + MAX_RANK]
    xstr = row[F.x_strides:F.x_strides + MAX_RANK]
    last = rank - 1
    inner, n_in, begin, step = dims[last], in_dims[last], begins[last], xstr[last]
    outer = 1
    for k in range(last):
        outer *= dims[k]
    for s in range(work.shape[0]):
        w = work[s]
        for o in range(outer):
            linear, off, inside = o, 0, n_in > 0
            for k in range(last - 1, -1, -1):
                j = _source_index(mode, linear % dims[k] - begins[k], in_dims[k]) if in_dims[k] > 0 else -1
                linear //= dims[k]
                if j < 0:
                    inside = False
                    break
                off += j * xstr[k]
            y0 = yo + o * inner
            if not inside:
                for i in range(inner):
                    w[y0 + i] = value
                continue
            lo, hi = min(max(begin, 0), inner), min(max(begin + n_in, 0), inner)
            if step == 1:                      # the copied middle: x's row, contiguous in y
                copy_into(w[y0 + lo:y0 + hi], w[xo + off + lo - begin:xo + off + hi - begin])
            else:
                for i in range(lo, hi):
                    w[y0 + i] = w[xo + off + (i - begin) * step]
            for i in range(lo):
                j = _source_index(mode, i - begin, n_in)
                w[y0 + i] = w[xo + off + j * step] if j >= 0 else value
            for i in range(hi, inner):
                j = _source_index(mode, i - begin, n_in)
                w[y0 + i] = w[xo + off + j * step] if j >= 0 else value


@register
class Pad(Op):
    name = "pad"

    def mode(self, node):
        mode = node.attrs.get("mode", "constant")
        if mode not in MODES:
            raise UnsupportedModelError(f"{node.describe()}: mode {mode!r} is not one of {sorted(MODES)}")
        return mode

    def begins_ends(self, node, rank):
        """([begin per axis], [end per axis]) from the pads and axes inputs."""
        pads = const_array(node, 1, "pads")
        if pads is None:
            raise UnsupportedModelError(f"{node.describe()}: has no pads")
        pads = [int(p) for p in np.ravel(pads)]
        axes = const_array(node, 3, "axes")
        axes = list(range(rank)) if axes is None else [norm_axis(a, rank, node) for a in np.ravel(axes)]
        if len(set(axes)) != len(axes):
            raise UnsupportedModelError(f"{node.describe()}: axes {axes} repeat an axis")
        if len(pads) != 2 * len(axes):
            raise UnsupportedModelError(f"{node.describe()}: has {len(pads)} pads for {len(axes)} axes; "
                                        f"Pad needs 2 per axis ({2 * len(axes)})")
        begins, ends = [0] * rank, [0] * rank
        for k, a in enumerate(axes):
            begins[a], ends[a] = pads[k], pads[len(axes) + k]
        return begins, ends

    def value(self, node):
        v = const_array(node, 2, "constant_value")
        if v is None or np.size(v) == 0:
            return 0
        if np.size(v) != 1:
            raise UnsupportedModelError(f"{node.describe()}: its constant_value has {np.size(v)} elements, not one")
        return np.ravel(v)[0]

    def infer(self, node):
        x = node.inputs[0]
        mode = self.mode(node)
        self.value(node)
        begins, ends = self.begins_ends(node, len(x.shape))
        out = []
        for a, (d, b, e) in enumerate(zip(x.shape, begins, ends)):
            if b == 0 and e == 0:
                out.append(d)
                continue
            if has_time(d) and not has_batch(d) and mode == "constant" and min(b, e) >= 0:
                out.append(d)       # folded into the convolution it feeds (passes/pulse.py)
                continue
            if is_symbolic(d):
                what = "time" if has_time(d) else "batch"
                raise UnsupportedModelError(
                    f"{node.describe()}: pads axis {a}, the {what} axis, by ({b}, {e}) in mode {mode}; along time "
                    "edgernn streams constant (zero) padding in front of a convolution only"
                    if what == "time" else f"{node.describe()}: pads the batch axis {a}")
            if mode != "constant" and min(b, e) < 0:
                raise UnsupportedModelError(f"{node.describe()}: crops axis {a} (pads {b}, {e}) in mode {mode}; "
                                            "negative pads are supported in constant mode only")
            if mode != "constant" and d == 0:
                raise UnsupportedModelError(f"{node.describe()}: pads the empty axis {a} in mode {mode}")
            if mode == "reflect" and max(b, e) >= d:
                raise UnsupportedModelError(f"{node.describe()}: reflect-pads axis {a} of size {d} by ({b}, {e}); "
                                            "ONNX needs each pad < the axis size")
            if mode == "wrap" and max(b, e) > d:
                raise UnsupportedModelError(f"{node.describe()}: wrap-pads axis {a} of size {d} by ({b}, {e}); "
                                            "each pad must be <= the axis size")
            if d + b + e < 0:
                raise UnsupportedModelError(f"{node.describe()}: crops axis {a} of size {d} by {-(b + e)}")
            out.append(d + b + e)
        return [(tuple(out), x.dtype)]

    def reference(self, node, x, *_):
        mode = self.mode(node)
        begins, ends = self.begins_ends(node, x.ndim)
        crop = tuple(slice(max(-b, 0), x.shape[a] - max(-e, 0)) for a, (b, e) in enumerate(zip(begins, ends)))
        x = x[crop]
        widths = [(max(b, 0), max(e, 0)) for b, e in zip(begins, ends)]
        if mode == "constant":
            value = self.value(node)
            if x.dtype == object:
                out = np.full([d + b + e for d, (b, e) in zip(x.shape, widths)], value, dtype=object)
                out[tuple(slice(b, b + d) for d, (b, _) in zip(x.shape, widths))] = x
                return [tidy(out)]
            return [np.pad(x, widths, mode="constant", constant_values=np.asarray(value).astype(x.dtype))]
        return [tidy(np.pad(x, widths, mode=mode))]

    def time_pads(self, node):
        """(axis, begin, end) of a pad along the time axis, or None."""
        x = node.inputs[0]
        begins, ends = self.begins_ends(node, len(x.shape))
        return next(((a, b, e) for a, (d, b, e) in enumerate(zip(x.shape, begins, ends))
                     if has_time(d) and (b or e)), None)

    def emit(self, node, ctx):
        if self.time_pads(node) is not None:
            raise UnsupportedModelError(f"{node.describe()}: pads the time axis, and no convolution along time "
                                        "reads it (edgernn streams zero padding in front of one only)")
        x, y = node.inputs[0], node.outputs[0]
        xs = x.concrete_shape
        begins, _ = self.begins_ends(node, len(xs))
        if len(xs) > MAX_RANK:
            raise UnsupportedModelError(f"{node.describe()}: pads a tensor of rank {len(xs)}; at most "
                                        f"{MAX_RANK} axes are supported")
        rank = max(len(xs), 1)
        ys = y.concrete_shape or (1,)
        ctx.row(node, ROW, mode=MODES[self.mode(node)], x=ctx.work_off(x), y=ctx.work_off(y),
                value=ctx.fparam(self.value(node)), rank=rank, dims=fill_to_rank(ys),
                in_dims=fill_to_rank(xs or (1,)), begins=fill_to_rank(begins or [0], fill=0),
                x_strides=fill_to_rank(contiguous_strides(xs or (1,)), fill=0))
