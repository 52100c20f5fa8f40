"""Matrix products: matmul and gemm as imported, and dense, the one kernel they lower to.

dense:  y[..., n] = sum_k x[..., k] * W[n, k] + b[n]
        inputs: x (dynamic, [..., K]), W (constant [N, K], row n = output n), b (constant [N]
        or absent). The pass :mod:`edgernn.passes.fuse` turns matmul/gemm with constant
        weights (and a following Add of a bias) into dense.
matmul: NumPy matmul semantics.  gemm: alpha * A' @ B' + beta * C (A' = A.T if transA ...).
Row: [OP_DENSE, x_off, y_off, w_off, b_off (-1: none), M, K, N] with M = rows of x.
"""
import numpy as np

from ..config import jit
from ..errors import UnsupportedModelError
from ..ir.dims import concrete, has_time, is_symbolic
from . import Op, register
from .elementwise import broadcast_shapes
from .program import OP_DENSE, REGION_CONST, REGION_WORK


@jit
def dense_kernel(row, consts, work):
    xo, yo, wo, bo, m_rows, k_in, n_out = row[1], row[2], row[3], row[4], row[5], row[6], row[7]
    for s in range(work.shape[0]):
        w = work[s]
        for m in range(m_rows):
            x0 = xo + m * k_in
            y0 = yo + m * n_out
            for n in range(n_out):
                acc = consts[bo + n] if bo >= 0 else np.float32(0.0)
                r0 = wo + n * k_in
                for k in range(k_in):
                    acc += consts[r0 + k] * w[x0 + k]
                w[y0 + n] = acc


def _contraction_check(node, dim):
    if is_symbolic(dim):
        raise UnsupportedModelError(
            f"{node.describe()}: contracts over the time or batch axis; that mixes frames")


@register
class Dense(Op):
    name = "dense"

    def infer(self, node):
        x, w = node.inputs[0], node.inputs[1]
        _contraction_check(node, x.shape[-1])
        if concrete(x.shape[-1]) != w.const.shape[1]:
            raise UnsupportedModelError(f"{node.describe()}: input size {x.shape[-1]} != weight columns {w.const.shape[1]}")
        return [(tuple(x.shape[:-1]) + (w.const.shape[0],), "float32")]

    def reference(self, node, x, w, b=None):
        y = x.astype(np.float32) @ w.T
        return [(y + b if b is not None else y).astype(np.float32)]

    def emit(self, node, ctx):
        x, w, b = node.inputs[0], node.inputs[1], node.input(2)
        y = node.outputs[0]
        n_out, k_in = w.const.shape
        m_rows = x.size // k_in
        xo, yo = ctx.work_off(x), ctx.work_off(y)
        wo = ctx.const_off(w)
        bo = ctx.const_off(b) if b is not None else -1
        reads = [(REGION_WORK, xo, x.size), (REGION_CONST, wo, w.const.size)]
        if b is not None:
            reads.append((REGION_CONST, bo, n_out))
        ctx.row(node, OP_DENSE, [xo, yo, wo, bo, m_rows, k_in, n_out], reads=reads, writes=[(yo, y.size)])

    def flops(self, node):
        return 2 * node.outputs[0].size * node.inputs[1].const.shape[1]


@register
class MatMul(Op):
    name = "matmul"

    def infer(self, node):
        a, b = node.inputs
        if len(a.shape) < 1 or len(b.shape) < 1:
            raise UnsupportedModelError(f"{node.describe()}: scalar operand")
        _contraction_check(node, a.shape[-1])
        k_b = b.shape[0] if len(b.shape) == 1 else b.shape[-2]
        if concrete(a.shape[-1]) != concrete(k_b) or has_time(k_b):
            raise UnsupportedModelError(f"{node.describe()}: inner sizes {a.shape[-1]!r} and {k_b!r} differ")
        if len(b.shape) == 1:
            return [(tuple(a.shape[:-1]), "float32")]
        if len(a.shape) == 1:
            return [(tuple(b.shape[:-2]) + (b.shape[-1],), "float32")]
        batch = broadcast_shapes(node, a.shape[:-2], b.shape[:-2])
        return [(tuple(batch) + (a.shape[-2], b.shape[-1]), "float32")]

    def reference(self, node, a, b):
        return [np.matmul(a, b).astype(np.float32)]


@register
class Gemm(Op):
    """attrs: alpha, beta, transA, transB. Inputs: A, B, C (optional)."""
    name = "gemm"

    def infer(self, node):
        a, b = node.inputs[0], node.inputs[1]
        at = node.attrs.get("transA", 0)
        bt = node.attrs.get("transB", 0)
        m, k = (a.shape[1], a.shape[0]) if at else (a.shape[0], a.shape[1])
        _contraction_check(node, k)
        n = b.shape[0] if bt else b.shape[1]
        return [((m, n), "float32")]

    def reference(self, node, a, b, c=None):
        a = a.T if node.attrs.get("transA", 0) else a
        b = b.T if node.attrs.get("transB", 0) else b
        y = np.float32(node.attrs.get("alpha", 1.0)) * (a @ b)
        if c is not None:
            y = y + np.float32(node.attrs.get("beta", 1.0)) * c
        return [y.astype(np.float32)]
