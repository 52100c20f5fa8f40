"""Shape inference and constant folding in one forward sweep.

Every node's output shapes come from its op's ``infer``; a node whose inputs are all constant
(or, for ``shape``, whose input's shape is known) is computed at load time with the op's NumPy
reference; an op with an ``expand`` method (``if``) may replace itself by other nodes first,
once its inputs are known. Computed tensors must keep T and B on axes of their own (sizes T, B or T*B): an
axis of size 5*T would mean frames were merged into features.
"""
import numpy as np

from ..errors import EdgeRNNError, UnsupportedModelError
from ..ir.dims import Dim, concrete, concrete_shape, fmt_shape
from ..limits import check_elements
from .. import ops


def reset(graph):
    for n in graph.nodes:
        for v in n.outputs:
            if v is not None:
                v.shape, v.const = None, None


def infer_graph(graph):
    reset(graph)
    i = 0
    while i < len(graph.nodes):
        node = graph.nodes[i]
        expand = getattr(ops.get(node.op), "expand", None)
        replacement = expand(node) if expand is not None else None
        if replacement is not None:     # an If with a constant condition: the branch takes its place
            graph.nodes[i:i + 1] = replacement
            continue
        i += 1
        for v in node.inputs:
            if v is not None and v.shape is None:
                raise UnsupportedModelError(f"{node.describe()}: input '{v.name}' has no known shape")
        op = ops.get(node.op)
        try:
            results = op.infer(node)
            extra = [v.name for v in node.outputs[len(results):] if v is not None]
            if extra:
                raise UnsupportedModelError(f"{node.describe()}: gives {len(results)} output(s), but the file reads "
                                            f"more from it ({', '.join(extra)})")
            for v, (shape, dtype) in zip(node.outputs, results):
                if v is not None:
                    v.shape, v.dtype = tuple(shape), dtype
            fold = getattr(op, "folds_on_shape", False) or (
                op.foldable and all(v is None or v.is_const for v in node.inputs))
            if fold:
                for v in node.outputs:          # before NumPy allocates it: a tiny file can ask for GBs
                    if v is not None:
                        itemsize = np.dtype(v.dtype).itemsize if v.dtype != "object" else 8
                        check_elements([concrete(d) for d in v.shape], itemsize,
                                       f"{node.describe()}: the constant '{v.name}' {fmt_shape(v.shape)}")
                arrays = op.reference(node, *[v.const if v is not None else None for v in node.inputs])
                for v, a in zip(node.outputs, arrays):
                    if v is not None:
                        if tuple(a.shape) != concrete_shape(v.shape):
                            raise UnsupportedModelError(
                                f"folded shape {a.shape} disagrees with inferred {fmt_shape(v.shape)}")
                        v.const = a
        except EdgeRNNError:
            raise
        except Exception as e:  # a NumPy error while folding: report the node
            raise UnsupportedModelError(f"{node.describe()}: {type(e).__name__}: {e}") from e
        for v in node.outputs:
            if v is not None and not v.is_const:
                bad = [d for d in v.shape if isinstance(d, Dim) and d.n != 1]
                if bad:
                    raise UnsupportedModelError(
                        f"{node.describe()}: output '{v.name}' has shape {fmt_shape(v.shape)}, which merges "
                        "the time or batch axis with feature values; that cannot run one frame at a time")
    return graph
