"""Lower matmul and gemm with constant weights to dense, and fold a following bias Add.

- matmul(x, W[K, N])                       -> dense(x, W.T)
- gemm(A, B, C) with transA = 0            -> dense(A, alpha * B' as [N, K], beta * C as [N])
- dense(x, W, b) -> add(., c) with c a constant that broadcasts along the last axis only,
  when the Add is the dense output's only reader -> dense(x, W, b + c)
"""
import numpy as np

from ..errors import UnsupportedModelError
from ..ir.graph import Value


def _const(name, arr):
    a = np.ascontiguousarray(arr, dtype=np.float32)
    return Value(name, shape=a.shape, dtype="float32", const=a)


def _row_vector(c, n):
    """c as a [N] bias if it is numbers that broadcast only along the last axis, else None (a
    constant of symbolic sizes, folded from Shape ops, is no bias)."""
    if np.asarray(c).dtype.kind not in "fiub":
        return None
    a = np.asarray(c, dtype=np.float32)
    if a.size == n and (a.ndim == 0 or all(d == 1 for d in a.shape[:-1])) and (a.ndim == 0 or a.shape[-1] == n):
        return a.reshape(n)
    if a.size == 1:
        return np.full(n, a.reshape(()), np.float32)
    return None


def fuse_dense(graph):
    for node in graph.nodes:
        ins = node.inputs
        if node.op == "matmul" and not ins[0].is_const and ins[1].is_const and ins[1].const.ndim == 2:
            node.op, node.inputs = "dense", [ins[0], _const(ins[1].name, ins[1].const.T)]
        elif node.op == "gemm" and not ins[0].is_const:
            if node.attrs.get("transA", 0) or not ins[1].is_const:
                raise UnsupportedModelError(f"{node.describe()}: only Gemm(A, constant B) with transA=0 can stream")
            b = ins[1].const
            w = b if node.attrs.get("transB", 0) else b.T
            w = np.float32(node.attrs.get("alpha", 1.0)) * w
            new = [ins[0], _const(ins[1].name, w)]
            c = node.input(2)
            if c is not None:
                if not c.is_const:
                    raise UnsupportedModelError(f"{node.describe()}: C must be a constant")
                bias = _row_vector(c.const, w.shape[0])
                if bias is None:
                    raise UnsupportedModelError(f"{node.describe()}: C of shape {c.const.shape} is not a bias row")
                new.append(_const(c.name, np.float32(node.attrs.get("beta", 1.0)) * bias))
            node.op, node.inputs, node.attrs = "dense", new, {}
    consumers = graph.consumers()
    outputs = {id(v) for v in graph.outputs} | {id(s.next) for s in graph.states}
    for node in graph.nodes:
        if node.op != "add":
            continue
        a, b = node.inputs
        dyn, c = (a, b) if b.is_const else (b, a)
        if not c.is_const or dyn.is_const:
            continue
        prod = next((n for n in graph.nodes if dyn in n.outputs), None)
        if prod is None or prod.op != "dense" or len(consumers.get(id(dyn), [])) != 1 or id(dyn) in outputs:
            continue
        n_out = prod.inputs[1].const.shape[0]
        bias = _row_vector(c.const, n_out)
        if bias is None or len(c.const.shape) > len(dyn.shape):
            continue
        old = prod.input(2)
        total = bias + (old.const if old is not None else 0)
        prod.inputs = prod.inputs[:2] + [_const(c.name, total)]
        prod.outputs = [node.outputs[0]]
        node.op, node.inputs, node.outputs = "identity", [node.outputs[0]], []
    graph.nodes = [n for n in graph.nodes if n.outputs]
    return graph
