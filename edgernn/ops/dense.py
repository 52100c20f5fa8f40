"""Matrix products: matmul and gemm as imported, and dense, the one kernel they lower to.

dense:  y[..., n] = sum_k x[..., k] * W[n, k] + b[n]
        inputs: x (dynamic, [..., K]), W (constant [N, K], row n = output n; float32 or int8
        with a scale per row), b (constant [N] or absent). The pass :mod:`edgernn.passes.fuse`
        turns matmul/gemm with constant weights (and a following Add of a bias) into dense;
        the pack pass (attr ``packed``) stores W as a panel matrix for the kernel
        (:mod:`edgernn.ops.matvec`) and N as attr ``units``.
matmul: NumPy matmul semantics.  gemm: alpha * A' @ B' + beta * C (A' = A.T if transA ...).
Row: :data:`ROW` below (M = rows of x).
"""
import numpy as np

from ..config import jit
from ..errors import UnsupportedModelError
from ..ir.dims import concrete, has_time, is_symbolic
from . import Op, expect_const, register
from ..quant import dequantize
from .elementwise import broadcast_shapes
from .matvec import add_matvec, from_panels, panel_shape, set_bias, to_panels
from .row import Field, RowLayout, const, matrix, work

ROW = RowLayout("dense", [
    Field("x", "work offset of x [rows, k]", work(lambda r: r.rows * r.k)),
    Field("y", "work offset of y [rows, n]", work(lambda r: r.rows * r.n, writes=True)),
    Field("w", "weight panels, k inputs -> n outputs", matrix("k", lambda r: [r.n], "w_scale", "w_matvec")),
    Field("w_scale", "offset of the int8 weights' scales in consts (-1: float32 weights)"),
    Field("w_matvec", "native address of W's matvec variant (written at link)"),
    Field("b", "bias [n] in consts (-1: none)", const(lambda r: r.n)),
    Field("rows", "rows of x (the product of its leading axes)"),
    Field("k", "inputs"),
    Field("n", "outputs"),
])
F = ROW.fields


@ROW.kernel
@jit
def dense_kernel(row, fparams, consts, qconsts, work, seq):
    n_out, k_in = row[F.n], row[F.k]
    for m in range(row[F.rows]):
        y0 = row[F.y] + m * n_out
        set_bias(consts, row[F.b], n_out, work, y0)
        add_matvec(row[F.w_matvec], consts, qconsts, row[F.w], row[F.w_scale], k_in, n_out, work,
                   row[F.x] + m * k_in, y0, False)


def _contraction_check(node, dim):
    if is_symbolic(dim):
        raise UnsupportedModelError(
            f"{node.describe()}: contracts over the time or batch axis; that mixes frames")


@register
class Dense(Op):
    name = "dense"
    matrix_slots = (1,)

    def sizes(self, node):
        """(K, N) of the weight, whichever layout it is in."""
        shape = node.inputs[1].const.shape
        if not node.attrs.get("packed"):
            return tuple(shape[::-1])
        units = node.attrs.get("units")
        if not isinstance(units, int) or units < 1 or len(shape) != 3 or shape != panel_shape(shape[1], [units]):
            raise UnsupportedModelError(f"{node.describe()}: packed weight {list(shape)} is not a panel "
                                        f"matrix for {units!r} outputs")
        w = node.inputs[1]
        if w.scale is not None and w.scale.shape != (shape[0] * shape[2],):
            raise UnsupportedModelError(f"{node.describe()}: packed weight has {w.scale.size} scales")
        return shape[1], units

    def infer(self, node):
        x = node.inputs[0]
        _contraction_check(node, x.shape[-1])
        K, N = self.sizes(node)
        if concrete(x.shape[-1]) != K:
            raise UnsupportedModelError(f"{node.describe()}: input size {x.shape[-1]} != weight inputs {K}")
        expect_const(node, 2, (N,), "bias", required=False)
        return [(tuple(x.shape[:-1]) + (N,), "float32")]

    def reference(self, node, x, w, b=None):
        if node.attrs.get("packed"):
            w = from_panels(node.inputs[1], [node.attrs["units"]])
        else:
            w = dequantize(node.inputs[1]).astype(np.float32).T
        y = x.astype(np.float32) @ w
        return [(y + b if b is not None else y).astype(np.float32)]

    def pack(self, node):
        if node.attrs.get("packed"):
            return
        N = self.sizes(node)[1]
        node.inputs = [node.inputs[0], to_panels(node.inputs[1])] + list(node.inputs[2:])
        node.attrs["units"] = int(N)
        node.attrs["packed"] = True

    def emit(self, node, ctx):
        x, b = node.inputs[0], node.input(2)
        y = node.outputs[0]
        k_in, n_out = self.sizes(node)
        m_rows = x.size // k_in
        xo, yo = ctx.work_off(x), ctx.work_off(y)
        wo, ws = ctx.matrix(node.inputs[1])
        bo = ctx.const_off(b) if b is not None else -1
        ctx.row(node, ROW, x=xo, y=yo, w=wo, w_scale=ws, w_matvec=0, b=bo, rows=m_rows, k=k_in, n=n_out)

    def flops(self, node):
        return 2 * node.outputs[0].size * self.sizes(node)[0]

    def macs(self, node):
        """The kernel's multiply-adds, panel padding included, once per row of x."""
        w = node.inputs[1]
        return [(w, int(w.const.size) * (node.inputs[0].size // self.sizes(node)[0]))]


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
