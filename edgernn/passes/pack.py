"""Lay the weights out for the kernels that read them, once, at load time.

Each op with a ``pack`` method rewrites its constant inputs to its kernel's layout and sets
``attrs["packed"]`` (dense and the recurrent ops: panel matrices, gates in kernel order,
see :mod:`edgernn.ops.matvec`; layer_norm: scale and bias broadcast to the normalised size).
After this pass, planning derives no constant: every array a kernel reads is a value of the
graph, so an .ernn file can hold it as it is and the engine can read it in place.
"""
import hashlib

import numpy as np

from .. import ops


def pack_weights(graph):
    packed = False
    for n in graph.nodes:
        op = ops.get(n.op)
        if hasattr(op, "pack") and not n.attrs.get("packed"):
            op.pack(n)
            packed = True
    if packed:              # a graph read from .ernn was packed (and shared) when it was written
        share_constants(graph)
    return graph


def share_constants(graph):
    """Nodes that read equal constants read one Value (one copy in the arena): an unrolled
    recurrent op's positions each pack the same weights. Only constants of the same dtype and
    shape are compared, by content (no copy of the data is made)."""
    groups = {}
    for n in graph.nodes:
        for v in n.inputs:
            if v is not None and v.is_const and v.const.dtype != object:
                groups.setdefault((v.const.dtype.str, v.const.shape, v.scale_axis), {})[id(v)] = v
    canonical = {}
    for values in groups.values():
        if len(values) < 2:
            continue
        seen = {}
        for v in values.values():
            digest = hashlib.sha1(np.ascontiguousarray(v.const).data)
            if v.scale is not None:
                digest.update(np.ascontiguousarray(v.scale).data)
            canonical[id(v)] = seen.setdefault(digest.hexdigest(), v)
    for n in graph.nodes:
        n.inputs = [canonical.get(id(v), v) if v is not None else None for v in n.inputs]
