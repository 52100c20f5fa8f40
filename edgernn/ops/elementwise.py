"""Elementwise ops: add, sub, mul, div (NumPy broadcasting) and relu, sigmoid, tanh.

Binary row: [OP_BINARY, code, a_region, a_off, b_region, b_off, y_off, rank, dims[6],
a_strides[6], b_strides[6]]; y is contiguous and a stride of 0 broadcasts.
Unary row:  [OP_UNARY, activation code, x_off, y_off, n]  (codes of :mod:`.activations`).
"""
import numpy as np

from ..config import jit
from ..errors import UnsupportedModelError
from ..ir.dims import concrete, has_batch, has_time, is_symbolic
from . import Op, register
from .activations import RELU, SIGMOID, TANH, activate, activate_ref
from .program import OP_BINARY, OP_UNARY, REGION_CONST, contiguous_strides, merge_axes, pad, strided_offset

ADD, SUB, MUL, DIV = range(4)


@jit
def binary_kernel(row, consts, work):
    code, ar, ao, br, bo, yo, rank = row[1], row[2], row[3], row[4], row[5], row[6], row[7]
    dims, astr, bstr = row[8:14], row[14:20], row[20:26]
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


@jit
def unary_kernel(row, consts, work):
    code, xo, yo, n = row[1], row[2], row[3], row[4]
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
        ctx.row(node, OP_BINARY, [self.code, ar, ao, br, bo, yo, len(dims), *pad(dims),
                                  *pad(ast, fill=0), *pad(bst, fill=0)],
                reads=[(ar, ao, a.size), (br, bo, b.size)], writes=[(yo, y.size)])

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
        ctx.row(node, OP_UNARY, [self.code, xo, yo, y.size], reads=[(1, xo, x.size)], writes=[(yo, y.size)])

    def flops(self, node):
        return node.outputs[0].size


@register
class Relu(Unary):
    name, code = "relu", RELU


@register
class Sigmoid(Unary):
    name, code = "sigmoid", SIGMOID


@register
class Tanh(Unary):
    name, code = "tanh", TANH
