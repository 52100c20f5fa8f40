"""Lay the weights out for the kernels that read them, once, at load time.

Each op with a ``pack`` method rewrites its constant inputs to its kernel's layout and sets
``attrs["packed"]`` (dense and the recurrent ops: panel matrices, gates in kernel order,
see :mod:`edgernn.ops.matvec`; layer_norm: scale and bias broadcast to the normalised size).
After this pass, planning derives no constant: every array a kernel reads is a value of the
graph, so an .ernn file can hold it as it is and the engine can read it in place.
"""
from .. import ops


def pack_weights(graph):
    for n in graph.nodes:
        op = ops.get(n.op)
        if hasattr(op, "pack") and not n.attrs.get("packed"):
            op.pack(n)
    return graph
