"""Passes over the IR, in the order :func:`edgernn.passes.prepare` runs them:

1. :mod:`.streaming` binds the time and batch axes of the inputs, which also runs
   :mod:`.infer` (symbolic shapes + constant folding), then turns recurrent initial states,
   state inputs/outputs and ``sequence_lens`` into per-stream :class:`StateVar` s;
2. :mod:`.pulse` streams convolutions along time (history windows, delays, the clock);
3. :mod:`.unroll` unrolls recurrent ops whose whole sequence lies inside the frame (reverse,
   bidirectional, or over an axis of the frame) into one-position nodes;
4. :mod:`.cells` replaces the ops of a recognised LSTM/GRU/RNN cell (a TFLite WHILE body
   run per frame) by one recurrent node;
5. :mod:`.fuse` lowers matmul/gemm with constant weights (and a following bias Add) to dense;
6. :mod:`.narrow` makes a convolution compute only the positions its readers (slices) keep;
7. :mod:`.pack` lays every weight out for its kernel;
8. with ``weights="int8"``, :mod:`.quantize` makes the packed weight matrices int8.
"""
from ..errors import EdgeRNNError
from .cells import recognise_cells
from .fuse import fuse_dense
from .infer import infer_graph
from .narrow import narrow_convolutions
from .pack import pack_weights
from .pulse import stream_time_ops
from .quantize import quantize_weights
from .streaming import bind_streaming
from .unroll import unroll_whole_sequences

WEIGHT_TYPES = ("float32", "int8")


def prepare(graph, time_axis=None, weights="float32", step=None, shapes=None, states=None):
    if weights not in WEIGHT_TYPES:
        raise EdgeRNNError(f"weights must be one of {', '.join(WEIGHT_TYPES)}, got {weights!r}")
    bind_streaming(graph, time_axis, step=step, shapes=shapes, states=states)
    if any(n.op == "clock" for n in stream_time_ops(graph).nodes):
        infer_graph(graph)
    unroll_whole_sequences(graph)
    recognise_cells(graph)
    fuse_dense(graph)
    narrow_convolutions(graph)
    infer_graph(graph)
    graph.prune()
    graph.meta["parameters"] = parameter_count(graph)
    pack_weights(graph)
    if weights == "int8":
        quantize_weights(graph)
    return graph


def parameter_count(graph):
    """Float parameters of the live nodes as imported (before packing merges any biases)."""
    seen, total = set(), 0
    for n in graph.nodes:
        for v in n.inputs:
            if v is not None and v.is_const and id(v) not in seen and v.const.dtype.kind in "fi" \
                    and (v.const.dtype.kind == "f" or v.scale is not None):
                seen.add(id(v))
                total += int(v.const.size)
    return total
