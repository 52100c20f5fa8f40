"""Elementwise ops: add, sub, mul, div (NumPy broadcasting) and relu, sigmoid, tanh.

Rows: :data:`BINARY_ROW` (y contiguous; a stride of 0 broadcasts) and :data:`UNARY_ROW`
(codes of :mod:`.activations`).
"""
import numpy as np

from ..config import jit
from ..errors import UnsupportedModelError
from ..ir.dims import concrete, has_batch, has_time, is_symbolic
from . import Op, register
from .activations import FAST_ACTIVATIONS, RELU, SIGMOID, TANH, activate, activate_ref
from .program import MAX_RANK, contiguous_strides, merge_axes, pad, strided_offset
from .row import REGION_CONST, Field, RowLayout, element_count, ranked_dims, ranked_fields, strided, work

ADD, SUB, MUL, DIV = range(4)


BINARY_ROW = RowLayout("binary", [
    Field("code", "ADD, SUB, MUL or DIV"),
    Field("a_region", "REGION_CONST or REGION_WORK"),
    Field("a", "offset of a", strided("a_region", "a_strides")),
    Field("b_region", "REGION_CONST or REGION_WORK"),
    Field("b", "offset of b", strided("b_region", "b_strides")),
    Field("y", "work offset of y (contiguous, the broadcast shape)",
          work(lambda r: element_count(ranked_dims(r)), writes=True, optional=False)),
    *ranked_fields(("a_strides", "a's stride (0: broadcast)"), ("b_strides", "b's stride (0: broadcast)")),
])
B = BINARY_ROW.fields


@BINARY_ROW.kernel
@jit
def binary_kernel(row, fparams, consts, qconsts, work, seq):
    code, ar, ao, br, bo, yo, rank = row[B.code], row[B.a_region], row[B.a], row[B.b_region], row[B.b], \
        row[B.y], row[B.rank]
    dims = row[B.dims:B.dims + MAX_RANK]
    astr = row[B.a_strides:B.a_strides + MAX_RANK]
    bstr = row[B.b_strides:B.b_strides + MAX_RANK]
    total = 1
    for k in range(rank):
        total *= dims[k]
    for s in range(work.shape[0]):
        a = consts if ar == REGION_CONST else work[s]
        b = consts if br == REGION_CONST else work[s]
        y = work[s]
        for i in range(total):
            x1 = a[ao + strided_offset(i, dims, astr, rank)]
            x2 = b[bo + strided_offset(i, dims, bstr, rank)]
            if code == ADD:
                y[yo + i] = x1 + x2
            elif code == SUB:
                y[yo + i] = x1 - x2
            elif code == MUL:
                y[yo + i] = x1 * x2
            else:
                y[yo + i] = x1 / x2


UNARY_ROW = RowLayout("unary", [
    Field("code", "activation code (:mod:`.activations`)"),
    Field("x", "work offset of x [n]", work(lambda r: r.n, optional=False)),
    Field("y", "work offset of y [n]", work(lambda r: r.n, writes=True, optional=False)),
    Field("n", "elements"),
])
U = UNARY_ROW.fields


@UNARY_ROW.kernel
@jit
def unary_kernel(row, fparams, consts, qconsts, work, seq):
    code, xo, yo, n = row[U.code], row[U.x], row[U.y], row[U.n]
    zero = np.float32(0.0)
    for s in range(work.shape[0]):
        x, y = work[s, xo:xo + n], work[s, yo:yo + n]
        for i in range(n):
            y[i] = activate(code, x[i], zero, zero)


def broadcast_shapes(node, a, b):
    """NumPy broadcasting of symbolic shapes; a concrete 1 matches anything."""
    ra, rb = list(a)[::-1], list(b)[::-1]
    out = []
    for i in range(max(len(ra), len(rb))):
        x = ra[i] if i < len(ra) else 1
        y = rb[i] if i < len(rb) else 1
        if x == y or (not is_symbolic(y) and y == 1):
            out.append(x)
        elif not is_symbolic(x) and x == 1:
            out.append(y)
        elif concrete(x) == concrete(y) and (has_batch(x) or has_batch(y)) and not (has_time(x) or has_time(y)):
            out.append(x if is_symbolic(x) else y)
        else:
            raise UnsupportedModelError(f"{node.describe()}: shapes {tuple(a)} and {tuple(b)} do not broadcast")
    return tuple(out[::-1])


def broadcast_strides(shape, out_shape):
    """Strides reading a contiguous tensor of `shape` as `out_shape` (0 on broadcast axes)."""
    shape = [1] * (len(out_shape) - len(shape)) + list(shape)
    st = contiguous_strides(shape)
    return [0 if d == 1 and o != 1 else s for d, s, o in zip(shape, st, out_shape)]


class Binary(Op):
    code = ADD
    fn = staticmethod(np.add)

    def infer(self, node):
        a, b = node.inputs
        dtype = a.dtype if a.dtype == b.dtype else "float32"
        return [(broadcast_shapes(node, a.shape, b.shape), dtype)]

    def reference(self, node, a, b):
        if a.dtype == object or b.dtype == object or (np.issubdtype(a.dtype, np.integer) and self.code == DIV):
            return [np.asarray(a // b if self.code == DIV else self.fn(a, b))]
        return [np.asarray(self.fn(a, b)).astype(np.result_type(a, b), copy=False)]

    def emit(self, node, ctx):
        a, b = node.inputs
        y = node.outputs[0]
        ys = y.concrete_shape
        ar, ao = ctx.addr(a)
        br, bo = ctx.addr(b)
        yo = ctx.work_off(y)
        dims, (ast, bst, _) = merge_axes(ys, broadcast_strides(a.concrete_shape, ys),
                                         broadcast_strides(b.concrete_shape, ys), contiguous_strides(ys))
        ctx.row(node, BINARY_ROW, code=self.code, a_region=ar, a=ao, b_region=br, b=bo, y=yo, rank=len(dims),
                dims=pad(dims), a_strides=pad(ast, fill=0), b_strides=pad(bst, fill=0))

    def flops(self, node):
        return node.outputs[0].size


@register
class Add(Binary):
    name, code, fn = "add", ADD, staticmethod(np.add)


@register
class Sub(Binary):
    name, code, fn = "sub", SUB, staticmethod(np.subtract)


@register
class Mul(Binary):
    name, code, fn = "mul", MUL, staticmethod(np.multiply)


@register
class Div(Binary):
    name, code, fn = "div", DIV, staticmethod(np.divide)


class Unary(Op):
    code = RELU

    def infer(self, node):
        x = node.inputs[0]
        return [(x.shape, x.dtype)]

    def reference(self, node, x):
        return [activate_ref(self.code, x)]

    def emit(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        xo, yo = ctx.work_off(x), ctx.work_off(y)
        ctx.row(node, UNARY_ROW, code=self.code, x=xo, y=yo, n=y.size)

    def flops(self, node):
        return node.outputs[0].size

    def activations(self, node):
        return node.outputs[0].size if self.code in FAST_ACTIVATIONS else 0


@register
class Relu(Unary):
    name, code = "relu", RELU


@register
class Sigmoid(Unary):
    name, code = "sigmoid", SIGMOID


@register
class Tanh(Unary):
    name, code = "tanh", TANH
