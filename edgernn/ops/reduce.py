"""reduce_prod: the product of a tensor's elements over some axes.

    y = prod(x, axes)      keepdims (0/1) keeps the reduced axes with size 1

Converters use it on shape vectors (the number of rows a FULLY_CONNECTED sees is the product
of the leading dimensions), where it folds at load time, sizes T and B included. There is no
kernel: a product over computed tensors raises an error naming the node.
Inputs: x, axes (constant; absent = all axes). attrs: keepdims.
"""
import numpy as np

from ..errors import UnsupportedModelError
from ..ir.dims import is_symbolic, product
from . import Op, register
from .layout import const_array, norm_axis, tidy


@register
class ReduceProd(Op):
    name = "reduce_prod"

    def axes(self, node, rank):
        axes = const_array(node, 1, "axes")
        return sorted({norm_axis(a, rank, node) for a in np.ravel(axes)}) if axes is not None else list(range(rank))

    def infer(self, node):
        x = node.inputs[0]
        axes = self.axes(node, len(x.shape))
        if not x.is_const and any(is_symbolic(x.shape[a]) for a in axes):
            raise UnsupportedModelError(f"{node.describe()}: multiplies values along the time or batch axis")
        keep = node.attrs.get("keepdims", 0)
        shape = tuple(1 if a in axes else d for a, d in enumerate(x.shape) if keep or a not in axes)
        return [(shape, x.dtype)]

    def reference(self, node, x, _=None):
        x = np.asarray(x)
        axes = self.axes(node, x.ndim)
        keep = node.attrs.get("keepdims", 0)
        if x.dtype != object:
            return [np.prod(x, axis=tuple(axes), keepdims=bool(keep)).astype(x.dtype)]
        moved = np.moveaxis(x, axes, list(range(len(axes))))
        flat = moved.reshape((-1,) + moved.shape[len(axes):])
        out = np.empty(flat.shape[1:], dtype=object)
        for idx in np.ndindex(out.shape):
            out[idx] = product([flat[(k,) + idx] for k in range(flat.shape[0])])
        if keep:
            out = out.reshape(tuple(1 if a in axes else d for a, d in enumerate(x.shape)))
        return [tidy(out)]
