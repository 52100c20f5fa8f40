"""Quantise packed float32 weight matrices to int8 (weights only, see :mod:`edgernn.quant`).

Runs after :mod:`.pack`: the panel matrices (each op's ``matrix_slots``: dense W, recurrent W and R) become
int8 with a float32 scale per output column. Biases, peepholes, norms and activations stay float32.
"""
from .. import ops
from ..ir.graph import Value
from ..quant import quantize_columns


def quantize_weights(graph):
    """Replace every packed float matrix by its int8 form; returns the graph."""
    done = {}
    for n in graph.nodes:
        if not n.attrs.get("packed"):
            continue
        for slot in ops.get(n.op).matrix_slots:
            v = n.input(slot)
            if v is None or v.scale is not None or v.const.ndim != 3:
                continue
            if id(v) not in done:
                q, scale = quantize_columns(v.const)
                done[id(v)] = Value(v.name, shape=q.shape, dtype="int8", const=q, scale=scale, scale_axis=-1)
            n.inputs[slot] = done[id(v)]
    return graph
