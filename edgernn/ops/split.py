"""split: ONNX Split. Cuts x along one axis into consecutive pieces, one per output.

    y_k = x[..., start_k : start_k + size_k, ...]      start_k = size_0 + ... + size_{k-1}

Inputs: x, split (constant int sizes, one per output, summing to the axis' size; or absent).
attrs: axis, num_outputs (ONNX opset 18; or absent). Without sizes the axis is cut into as
many pieces as there are outputs: equal ones (the size must divide evenly), or with
num_outputs ceil(size / num_outputs) each and a smaller last one.

Not along the time or batch axis (that would mix frames or streams). Each computed output is
one strided copy row (:func:`edgernn.ops.layout.emit_copy`); constants fold.
"""
import numpy as np

from ..errors import UnsupportedModelError
from ..ir.dims import has_time, is_symbolic
from . import Op, register
from .layout import const_array, emit_copy, norm_axis, tidy
from .program import contiguous_strides


@register
class Split(Op):
    name = "split"

    def sizes(self, node, shape):
        """(axis, [size of each output])."""
        rank = len(shape)
        a = norm_axis(node.attrs.get("axis", 0), rank, node)
        d = shape[a]
        if is_symbolic(d):
            raise UnsupportedModelError(
                f"{node.describe()}: splits axis {a}, the {'time' if has_time(d) else 'batch'} axis; that mixes "
                "frames or streams and cannot run one frame at a time")
        count = len(node.outputs)
        given = const_array(node, 1, "split")
        num = node.attrs.get("num_outputs")
        if given is not None and np.size(given):
            sizes = [int(s) for s in np.ravel(given)]
            if len(sizes) != count or min(sizes) < 0 or sum(sizes) != d:
                raise UnsupportedModelError(f"{node.describe()}: split sizes {sizes} do not cut axis {a} of size "
                                            f"{d} into its {count} outputs")
            return a, sizes
        if num is not None:
            if num != count or num < 1:
                raise UnsupportedModelError(f"{node.describe()}: num_outputs is {num} but it has {count} outputs")
            chunk = -(-d // num)
            sizes = [chunk] * (num - 1) + [d - chunk * (num - 1)]
            if sizes[-1] < 0:
                raise UnsupportedModelError(f"{node.describe()}: axis {a} of size {d} cannot be cut into "
                                            f"{num} pieces of {chunk}")
            return a, sizes
        if d % count:
            raise UnsupportedModelError(f"{node.describe()}: axis {a} of size {d} does not split evenly into "
                                        f"{count} outputs; give the sizes")
        return a, [d // count] * count

    def infer(self, node):
        x = node.inputs[0]
        a, sizes = self.sizes(node, x.shape)
        return [(tuple(x.shape[:a]) + (s,) + tuple(x.shape[a + 1:]), x.dtype) for s in sizes]

    def reference(self, node, x, _=None):
        a, sizes = self.sizes(node, x.shape)
        bounds = np.cumsum([0] + sizes)
        return [tidy(np.take(x, np.arange(lo, hi), axis=a)) for lo, hi in zip(bounds[:-1], bounds[1:])]

    def emit(self, node, ctx):
        x = node.inputs[0]
        xs = x.concrete_shape
        a, sizes = self.sizes(node, xs)
        xstr = contiguous_strides(xs)
        start = 0
        for y, size in zip(node.outputs, sizes):
            if y is not None and not y.is_const:
                ys = y.concrete_shape
                emit_copy(ctx, x, start * xstr[a], y, 0, ys, xstr, contiguous_strides(ys), node)
            start += size
