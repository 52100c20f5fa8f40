"""scatter_nd: ONNX ScatterND with constant indices (how exporters write cache updates).

    y = copy(data);  y[indices[i_0, .., i_{q-2}]] = updates[i_0, .., i_{q-2}]     (in index order)

Inputs: data [r axes], indices (constant int, [..., k] with k <= r), updates
[indices.shape[:-1] + data.shape[k:]]. attrs: reduction ("none" only: add/mul/max/min scatter
arithmetic is refused). Each index tuple selects a slice data[idx] of data.shape[k:]; negative
indices count from the end, as in ONNX; an index outside data is an error naming the node.
Repeated indices: the later update wins (ONNX leaves the order undefined; onnxruntime writes in
order). The indexed axes may not include the time axis; on the batch axis the index must be 0 (each
stream runs the graph as a batch of one).

Lowered to ``copy`` rows (:func:`edgernn.ops.layout.emit_copy`): data into y, then one row per
index tuple moving that update's slice into place, at most MAX_UPDATES of them.
"""
import numpy as np

from ..errors import UnsupportedModelError
from ..ir.dims import concrete, has_time
from . import Op, register
from .layout import const_array, emit_copy, tidy
from .program import contiguous_strides

MAX_UPDATES = 4096


@register
class ScatterND(Op):
    name = "scatter_nd"

    def targets(self, node, shape):
        """[(flat offset of the slice in y, index of the update slice)], checked; and the slice size."""
        where = node.describe()
        if node.attrs.get("reduction", "none") != "none":
            raise UnsupportedModelError(f"{where}: reduction={node.attrs['reduction']!r} is not supported "
                                        "(only plain assignment, reduction='none')")
        idx = const_array(node, 1, "indices")
        if idx is None or idx.dtype.kind not in "iu" or idx.ndim < 1:
            raise UnsupportedModelError(f"{where}: indices must be a constant integer tensor")
        k = idx.shape[-1]
        if not 1 <= k <= len(shape):
            raise UnsupportedModelError(f"{where}: indices address {k} axes of data with {len(shape)}")
        if any(has_time(d) for d in shape[:k]):
            raise UnsupportedModelError(f"{where}: scatters along the time axis; a stream holds one frame")
        tuples = idx.reshape(-1, k).astype(np.int64)
        if len(tuples) > MAX_UPDATES:
            raise UnsupportedModelError(f"{where}: {len(tuples)} index tuples; edgernn lowers at most "
                                        f"{MAX_UPDATES} (one copy row each)")
        lead = np.array([concrete(d) for d in shape[:k]], np.int64)      # the batch axis: 1 per stream
        if np.any(tuples < -lead) or np.any(tuples >= lead):
            raise UnsupportedModelError(f"{where}: an index lies outside data's axes {lead.tolist()} (on the "
                                        "batch axis only 0: each stream is a batch of one)")
        tuples = np.where(tuples < 0, tuples + lead, tuples)
        inner = int(np.prod([concrete(d) for d in shape[k:]], dtype=np.int64))
        strides = contiguous_strides([int(d) for d in lead])
        return [(int(np.dot(t, strides)) * inner, i) for i, t in enumerate(tuples)], inner

    def infer(self, node):
        data, _, updates = node.inputs
        targets, inner = self.targets(node, data.shape)
        idx = const_array(node, 1, "indices")
        want = tuple(int(d) for d in idx.shape[:-1]) + tuple(concrete(d) for d in data.shape[idx.shape[-1]:])
        if tuple(updates.concrete_shape) != want and updates.size != len(targets) * inner:
            raise UnsupportedModelError(f"{node.describe()}: updates has shape {list(updates.concrete_shape)}, "
                                        f"expected {list(want)}")
        return [(data.shape, data.dtype)]

    def reference(self, node, data, indices, updates):
        y = np.array(data, copy=True)
        targets, inner = self.targets(node, data.shape)
        flat, upd = y.reshape(-1), np.asarray(updates).reshape(-1)
        for off, i in targets:
            flat[off:off + inner] = upd[i * inner:(i + 1) * inner]
        return [tidy(flat.reshape(y.shape))]

    def emit(self, node, ctx):
        data, _, updates = node.inputs
        y = node.outputs[0]
        n = y.size
        emit_copy(ctx, data, 0, y, 0, [n], [1], [1], node)
        targets, inner = self.targets(node, data.concrete_shape)
        for off, i in targets:
            emit_copy(ctx, updates, i * inner, y, off, [inner], [1], [1], node)

    def flops(self, node):
        return 0
