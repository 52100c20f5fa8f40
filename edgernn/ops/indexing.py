"""Indexing ops: slice, concat, gather. Constant inputs fold at load time; a computed input
lowers to strided copies (:func:`edgernn.ops.layout.emit_copy`). None of them may cut or join
along the time or batch axis: that would mix frames or streams. One exception: a slice that
keeps only the last element along time (``x[-1:]``; Keras ``return_sequences=False``, torch
``y[:, -1]``) is the current frame at every step, so such a model gives, at each frame, its
output for the sequence so far. And a slice that trims frames off the start or end of the time
axis (``x[:, :, a:-b]``, a torch "chomp" after a padded convolution) keeps the time axis here;
:mod:`edgernn.passes.pulse` turns it into a delay and a shorter flush."""
import numpy as np

from ..errors import UnsupportedModelError
from ..ir.dims import concrete, has_batch, has_time, is_symbolic, same
from . import Op, register
from .layout import const_array, emit_copy, norm_axis, tidy
from .program import contiguous_strides


def _forbid_symbolic_axis(node, dim, axis, what):
    if has_time(dim):
        raise UnsupportedModelError(
            f"{node.describe()}: {what} along axis {axis}, the time axis; that mixes frames and "
            "cannot run one frame at a time (a torch dynamo export of nn.RNN unrolls the loop "
            "like this: export with dynamo=False, or use nn.GRU/nn.LSTM)")
    if has_batch(dim):
        raise UnsupportedModelError(f"{node.describe()}: {what} along the batch axis {axis}")


def _time_trim(d, start, end, step):
    """x[a:-b] along the time axis (a >= 0 frames dropped at the start, b >= 0 at the end): a
    stream drops the first a outputs and the last b (passes/pulse.py)."""
    return has_time(d) and not has_batch(d) and d.n == 1 and int(step) == 1 and 0 <= int(start) < 2 ** 31 - 1 \
        and (int(end) >= 2 ** 31 - 1 or -2 ** 31 < int(end) < 0)


def _last_frame(d, start, end, step):
    """x[-1:] along the time axis: at every step that is the current frame (T = 1)."""
    return has_time(d) and not has_batch(d) and d.n == 1 and int(start) == -1 and int(step) == 1 \
        and int(end) >= 2 ** 31 - 1


@register
class Slice(Op):
    """Inputs: data, starts, ends, axes (optional), steps (optional); all but data constant.
    ONNX semantics (negative indices count from the end; out-of-range values clamp)."""
    name = "slice"

    def slices(self, node):
        x = node.inputs[0]
        rank = len(x.shape)
        starts = np.ravel(const_array(node, 1, "starts"))
        ends = np.ravel(const_array(node, 2, "ends"))
        axes = const_array(node, 3, "axes")
        steps = const_array(node, 4, "steps")
        axes = range(len(starts)) if axes is None else np.ravel(axes)
        steps = [1] * len(starts) if steps is None else np.ravel(steps)
        out = [slice(None)] * rank
        keep_symbolic = set()
        for s, e, a, st in zip(starts, ends, axes, steps):
            a = norm_axis(a, rank, node)
            d = x.shape[a]
            if int(st) == 0:
                raise UnsupportedModelError(f"{node.describe()}: slice step 0")
            if is_symbolic(d):
                full = int(s) == 0 and int(st) == 1 and (int(e) >= 2 ** 31 - 1 or (has_batch(d) and not has_time(d) and int(e) >= 1))
                if not full and _last_frame(d, s, e, st):
                    out[a] = slice(0, 1, 1)
                    continue
                if not full and _time_trim(d, s, e, st):
                    keep_symbolic.add(a)
                    continue
                if not full:
                    _forbid_symbolic_axis(node, d, a, "slices")
                keep_symbolic.add(a)
                continue
            start, stop, step = slice(int(s), int(e), int(st)).indices(int(d))
            out[a] = slice(start, None if stop < 0 else stop, step)   # stop -1: before index 0 (step < 0)
        return out, keep_symbolic

    def time_trim(self, node):
        """(axis, frames dropped at the start, frames dropped at the end) of a slice that trims
        the time axis, or None."""
        x = node.inputs[0]
        starts, ends = np.ravel(const_array(node, 1, "starts")), np.ravel(const_array(node, 2, "ends"))
        axes = const_array(node, 3, "axes")
        steps = const_array(node, 4, "steps")
        axes = range(len(starts)) if axes is None else np.ravel(axes)
        steps = [1] * len(starts) if steps is None else np.ravel(steps)
        for s, e, a, st in zip(starts, ends, axes, steps):
            a = norm_axis(a, len(x.shape), node)
            full = int(s) == 0 and int(e) >= 2 ** 31 - 1
            if not full and _time_trim(x.shape[a], s, e, st):
                return a, int(s), 0 if int(e) >= 2 ** 31 - 1 else -int(e)
        return None

    def infer(self, node):
        x = node.inputs[0]
        sl, keep = self.slices(node)
        shape = tuple(d if (i in keep or not isinstance(sl[i], slice) or sl[i] == slice(None))
                      else len(range(*sl[i].indices(concrete(d))))
                      for i, d in enumerate(x.shape))
        return [(shape, x.dtype)]

    def reference(self, node, x, *_):
        sl, _ = self.slices(node)
        return [tidy(x[tuple(sl)])]

    def emit(self, node, ctx):
        if self.time_trim(node) is not None:
            raise UnsupportedModelError(f"{node.describe()}: internal: a trim of the time axis reached the plan "
                                        "(passes/pulse.py removes it)")
        x, y = node.inputs[0], node.outputs[0]
        sl, _ = self.slices(node)
        xs = x.concrete_shape
        strides = contiguous_strides(xs)
        base, src_strides = 0, []
        for i, d in enumerate(xs):
            start, _, step = sl[i].indices(d)
            base += start * strides[i]
            src_strides.append(step * strides[i])
        emit_copy(ctx, x, base, y, 0, y.concrete_shape, src_strides,
                  contiguous_strides(y.concrete_shape), node)


@register
class Concat(Op):
    """attrs: axis. Inputs of equal rank, equal sizes except along `axis`."""
    name = "concat"

    def infer(self, node):
        xs = [v for v in node.inputs if v is not None]
        rank = len(xs[0].shape)
        a = norm_axis(node.attrs["axis"], rank, node)
        dims = list(xs[0].shape)
        total = 0
        for v in xs:
            if len(v.shape) != rank:
                raise UnsupportedModelError(f"{node.describe()}: inputs have different ranks")
            for i in range(rank):
                if i == a:
                    if is_symbolic(v.shape[i]):
                        _forbid_symbolic_axis(node, v.shape[i], i, "concatenates")
                    total += v.shape[i]
                elif not same(dims[i], v.shape[i]):
                    raise UnsupportedModelError(
                        f"{node.describe()}: input sizes differ on axis {i}: {dims[i]!r} vs {v.shape[i]!r}")
                elif is_symbolic(v.shape[i]):
                    dims[i] = v.shape[i]
        dims[a] = total
        return [(tuple(dims), xs[0].dtype)]

    def reference(self, node, *xs):
        xs = [x for x in xs if x is not None]
        a = norm_axis(node.attrs["axis"], xs[0].ndim, node)
        return [tidy(np.concatenate(xs, axis=a))]

    def emit(self, node, ctx):
        y = node.outputs[0]
        ys = y.concrete_shape
        a = norm_axis(node.attrs["axis"], len(ys), node)
        ystr = contiguous_strides(ys)
        at = 0
        for v in node.inputs:
            if v is None:
                continue
            vs = v.concrete_shape
            emit_copy(ctx, v, 0, y, at * ystr[a], vs, contiguous_strides(vs), ystr, node)
            at += vs[a]


@register
class Gather(Op):
    """attrs: axis. Inputs: data, indices (constant). out = take(data, indices, axis)."""
    name = "gather"

    def infer(self, node):
        x = node.inputs[0]
        idx = const_array(node, 1, "indices")
        a = norm_axis(node.attrs.get("axis", 0), len(x.shape), node)
        if is_symbolic(x.shape[a]):
            _forbid_symbolic_axis(node, x.shape[a], a, "gathers")
        n = int(x.shape[a])
        if np.any((np.asarray(idx) < -n) | (np.asarray(idx) >= n)):
            raise UnsupportedModelError(f"{node.describe()}: an index is out of range for size {n}")
        return [(tuple(x.shape[:a]) + tuple(np.shape(idx)) + tuple(x.shape[a + 1:]), x.dtype)]

    def reference(self, node, x, idx):
        a = norm_axis(node.attrs.get("axis", 0), x.ndim, node)
        return [tidy(np.take(x, np.asarray(idx, dtype=np.int64), axis=a))]

    def emit(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        xs = x.concrete_shape
        a = norm_axis(node.attrs.get("axis", 0), len(xs), node)
        idx = np.ravel(node.inputs[1].const).astype(np.int64) % xs[a]
        xstr = contiguous_strides(xs)
        piece = list(xs[:a]) + list(xs[a + 1:])
        inner = int(np.prod(xs[a + 1:], dtype=np.int64))
        dst_strides = _gather_dst_strides(xs, a, len(idx))
        for k, i in enumerate(idx):
            emit_copy(ctx, x, int(i) * xstr[a], y, k * inner, piece,
                      xstr[:a] + xstr[a + 1:], dst_strides, node)


def _gather_dst_strides(xs, a, n_idx):
    """Strides of y = [xs[:a], n_idx, xs[a+1:]] restricted to the axes of xs without `a`."""
    ys = list(xs[:a]) + [n_idx] + list(xs[a + 1:])
    ystr = contiguous_strides(ys)
    return ystr[:a] + ystr[a + 1:]
