"""Quantise packed float32 weight matrices to int8 (weights only, see :mod:`edgernn.quant`).

Runs after :mod:`.pack`: the panel matrices of dense and recurrent ops (inputs W, R) become
int8 with a float32 scale per output column. Biases, peepholes, norms and activations stay float32.
"""
from ..ir.graph import Value
from ..quant import quantize_columns

#: op -> input slots holding a packed weight matrix
MATRIX_SLOTS = {"dense": (1,), "lstm": (1, 2), "gru": (1, 2), "rnn": (1, 2)}


def quantize_weights(graph):
    """Replace every packed float matrix by its int8 form; returns the graph."""
    done = {}
    for n in graph.nodes:
        if not n.attrs.get("packed"):
            continue
        for slot in MATRIX_SLOTS.get(n.op, ()):
            v = n.input(slot)
            if v is None or v.scale is not None or v.const.ndim != 3:
                continue
            if id(v) not in done:
                q, scale = quantize_columns(v.const)
                done[id(v)] = Value(v.name, shape=q.shape, dtype="int8", const=q, scale=scale, scale_axis=-1)
            n.inputs[slot] = done[id(v)]
    return graph
