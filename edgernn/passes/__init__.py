"""Passes over the IR, in the order :func:`edgernn.passes.prepare` runs them:

1. :mod:`.streaming` binds the time and batch axes of the inputs, which also runs
   :mod:`.infer` (symbolic shapes + constant folding), then turns recurrent initial states,
   state inputs/outputs and ``sequence_lens`` into per-stream :class:`StateVar` s;
2. :mod:`.cells` replaces the ops of a recognised LSTM/GRU/RNN cell (a TFLite WHILE body
   run per frame) by one recurrent node;
3. :mod:`.fuse` lowers matmul/gemm with constant weights (and a following bias Add) to dense.
"""
from .cells import recognise_cells
from .fuse import fuse_dense
from .infer import infer_graph
from .streaming import bind_streaming


def prepare(graph, time_axis=None):
    bind_streaming(graph, time_axis)
    recognise_cells(graph)
    fuse_dense(graph)
    infer_graph(graph)
    graph.prune()
    return graph
