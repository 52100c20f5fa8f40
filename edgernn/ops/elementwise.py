"""Binary elementwise ops, with NumPy broadcasting (the unary ones: :mod:`.unary`).

    add, sub, mul, div      a + b, a - b, a * b, a / b
    pow                     a ** b              (the output has a's dtype)
    min, max                min(x_0, ..., x_k)  variadic, every input broadcast to the output
    prelu                   x if x >= 0 else slope * x; slope broadcasts to x's shape
                            (ONNX unidirectional broadcasting: the output has x's shape)

Inputs and the output are float32 when computed; constants (shape vectors) fold with NumPy
and keep their integer dtype for min and max.

Rows: :data:`BINARY_ROW` (y contiguous; a stride of 0 broadcasts; a variadic min/max is a
chain of rows, the 2nd onwards reading y back). A pow with a constant scalar exponent
(x ** 2, x ** 0.5) is a :data:`~.unary.UNARY_ROW` (code POW).
"""
import numpy as np

from ..config import jit, jit_inline
from ..errors import UnsupportedModelError
from ..ir.dims import concrete, has_batch, has_time, is_symbolic
from ..ir.graph import Value
from . import Op, register
from .activations import POW
from .layout import emit_copy, tidy
from .unary import dims_compare, emit_unary
from .program import MAX_RANK, contiguous_strides, merge_axes, pad, strided_offset
from .row import REGION_CONST, Field, RowLayout, element_count, ranked_dims, ranked_fields, strided, work

ADD, SUB, MUL, DIV, POWER, MINIMUM, MAXIMUM, PRELU = range(8)


BINARY_ROW = RowLayout("binary", [
    Field("code", "ADD, SUB, MUL, DIV, POWER, MINIMUM, MAXIMUM or PRELU (a: x, b: slope)"),
    Field("a_region", "REGION_CONST or REGION_WORK"),
    Field("a", "offset of a", strided("a_region", "a_strides")),
    Field("b_region", "REGION_CONST or REGION_WORK"),
    Field("b", "offset of b", strided("b_region", "b_strides")),
    Field("y", "work offset of y (contiguous, the broadcast shape)",
          work(lambda r: element_count(ranked_dims(r)), writes=True, optional=False)),
    *ranked_fields(("a_strides", "a's stride (0: broadcast)"), ("b_strides", "b's stride (0: broadcast)")),
])
B = BINARY_ROW.fields


@jit_inline
def _binary_run(code, a, a0, a_step, b, b0, b_step, y, y0, n):
    """y[y0 + i] = a[a0 + i a_step] (code) b[b0 + i b_step] for i < n: one loop per code, so
    the loop over the innermost axis has no branch and vectorises."""
    zero = np.float32(0.0)
    if code == ADD:
        for i in range(n):
            y[y0 + i] = a[a0 + i * a_step] + b[b0 + i * b_step]
    elif code == SUB:
        for i in range(n):
            y[y0 + i] = a[a0 + i * a_step] - b[b0 + i * b_step]
    elif code == MUL:
        for i in range(n):
            y[y0 + i] = a[a0 + i * a_step] * b[b0 + i * b_step]
    elif code == DIV:
        for i in range(n):
            y[y0 + i] = a[a0 + i * a_step] / b[b0 + i * b_step]
    elif code == POWER:
        for i in range(n):
            y[y0 + i] = a[a0 + i * a_step] ** b[b0 + i * b_step]
    elif code == MINIMUM:
        for i in range(n):
            y[y0 + i] = min(a[a0 + i * a_step], b[b0 + i * b_step])
    elif code == MAXIMUM:
        for i in range(n):
            y[y0 + i] = max(a[a0 + i * a_step], b[b0 + i * b_step])
    else:                                       # PRELU
        for i in range(n):
            x = a[a0 + i * a_step]
            y[y0 + i] = x if x >= zero else b[b0 + i * b_step] * x


@jit_inline
def _binary_slices(code, a, b, y):
    """y = a (code) b for ADD .. DIV over slices, b of y's length or of one element (broadcast):
    indexes from 0 inside a slice, so LLVM vectorises the loops (an offset index could be
    negative, and Numba's wraparound select per element keeps a loop scalar)."""
    n = y.shape[0]
    if b.shape[0] == 1:
        c = b[0]
        if code == ADD:
            for i in range(n):
                y[i] = a[i] + c
        elif code == SUB:
            for i in range(n):
                y[i] = a[i] - c
        elif code == MUL:
            for i in range(n):
                y[i] = a[i] * c
        else:
            for i in range(n):
                y[i] = a[i] / c
    elif code == ADD:
        for i in range(n):
            y[i] = a[i] + b[i]
    elif code == SUB:
        for i in range(n):
            y[i] = a[i] - b[i]
    elif code == MUL:
        for i in range(n):
            y[i] = a[i] * b[i]
    else:
        for i in range(n):
            y[i] = a[i] / b[i]


@BINARY_ROW.kernel
@jit
def binary_kernel(row, fparams, consts, qconsts, work, seq):
    """y = a (code) b over the broadcast shape ``dims``: each run along the innermost axis with
    constant strides, the start of each run from the outer axes' strides."""
    code, ar, ao, br, bo, yo, rank = row[B.code], row[B.a_region], row[B.a], row[B.b_region], row[B.b], \
        row[B.y], row[B.rank]
    dims = row[B.dims:B.dims + MAX_RANK]
    astr = row[B.a_strides:B.a_strides + MAX_RANK]
    bstr = row[B.b_strides:B.b_strides + MAX_RANK]
    inner = dims[rank - 1]
    outer = 1
    for k in range(rank - 1):
        outer *= dims[k]
    for s in range(work.shape[0]):
        a = consts if ar == REGION_CONST else work[s]
        b = consts if br == REGION_CONST else work[s]
        y = work[s]
        a_step, b_step = astr[rank - 1], bstr[rank - 1]
        for o in range(outer):
            a0 = ao + strided_offset(o, dims, astr, rank - 1)
            b0 = bo + strided_offset(o, dims, bstr, rank - 1)
            y0 = yo + o * inner
            if code <= DIV and a_step == 1 and (b_step == 1 or b_step == 0):
                _binary_slices(code, a[a0:a0 + inner], b[b0:b0 + (inner if b_step else 1)], y[y0:y0 + inner])
            else:
                _binary_run(code, a, a0, a_step, b, b0, b_step, y, y0, inner)


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


def emit_binary(ctx, node, code, a, b, y):
    """One BINARY_ROW: y = a (code) b, a and b broadcast to y's shape."""
    ys = y.concrete_shape
    ar, ao = ctx.addr(a)
    br, bo = ctx.addr(b)
    dims, (ast, bst, _) = merge_axes(ys, broadcast_strides(a.concrete_shape, ys),
                                     broadcast_strides(b.concrete_shape, ys), contiguous_strides(ys))
    ctx.row(node, BINARY_ROW, code=code, a_region=ar, a=ao, b_region=br, b=bo, y=ctx.work_off(y), rank=len(dims),
            dims=pad(dims), a_strides=pad(ast, fill=0), b_strides=pad(bst, fill=0))


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
        emit_binary(ctx, node, self.code, a, b, node.outputs[0])

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


@register
class Pow(Binary):
    """Inputs: base, exponent. The output has the base's dtype; a computed base with a constant
    scalar exponent is a unary row (POW), anything else a binary row."""
    name, code = "pow", POWER

    def infer(self, node):
        a, b = node.inputs
        shape = broadcast_shapes(node, a.shape, b.shape)
        if not (a.is_const and b.is_const) and not a.dtype.startswith("float"):
            raise UnsupportedModelError(f"{node.describe()}: raises an integer base ({a.dtype}) to a computed "
                                        "power; the engine computes in float32 only")
        return [(shape, a.dtype)]

    def reference(self, node, a, b):
        if a.dtype == object or b.dtype == object:
            return [tidy(np.power(a, b))]
        if a.dtype.kind in "iu":
            return [np.power(a, b.astype(a.dtype)).astype(a.dtype)]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return [np.power(a, b.astype(a.dtype)).astype(a.dtype, copy=False)]

    def scalar_exponent(self, node):
        a, b = node.inputs
        return float(np.ravel(b.const)[0]) if b.is_const and b.const.size == 1 and not a.is_const else None

    def pack(self, node):
        """A constant exponent the binary row reads must be float32 (ONNX allows integers)."""
        b = node.inputs[1]
        if b.is_const and b.const.size > 1 and b.const.dtype.kind != "f":
            node.inputs = [node.inputs[0], Value(f"{node.name}.exponent", shape=b.shape,
                                                 const=b.const.astype(np.float32))]

    def emit(self, node, ctx):
        a, b = node.inputs
        e = self.scalar_exponent(node)
        if e is not None:
            emit_unary(ctx, node, POW, a, node.outputs[0], (e, 0.0))
        else:
            emit_binary(ctx, node, POWER, a, b, node.outputs[0])


class Variadic(Op):
    """min, max: every input broadcast to the output; a chain of binary rows."""
    code, fn, pick = MINIMUM, staticmethod(np.minimum), staticmethod(min)

    def infer(self, node):
        xs = [v for v in node.inputs if v is not None]
        if not xs:
            raise UnsupportedModelError(f"{node.describe()}: has no input")
        shape = xs[0].shape
        for v in xs[1:]:
            shape = broadcast_shapes(node, shape, v.shape)
        dtypes = {v.dtype for v in xs}
        return [(shape, xs[0].dtype if len(dtypes) == 1 else "float32")]

    def reference(self, node, *xs):
        xs = [x for x in xs if x is not None]
        out = xs[0]
        for x in xs[1:]:
            if out.dtype == object or x.dtype == object:
                out = tidy(dims_compare(self.pick)(out, x))
            else:
                out = self.fn(out, x)
        shape = tuple(concrete(d) for d in node.outputs[0].shape)
        return [tidy(np.broadcast_to(out, shape).copy()) if out.dtype == object
                else np.broadcast_to(out, shape).astype(np.result_type(*xs))]

    def emit(self, node, ctx):
        xs = [v for v in node.inputs if v is not None]
        y = node.outputs[0]
        ys = y.concrete_shape
        if len(xs) == 1:
            emit_copy(ctx, xs[0], 0, y, 0, ys, broadcast_strides(xs[0].concrete_shape, ys),
                      contiguous_strides(ys), node)
            return
        emit_binary(ctx, node, self.code, xs[0], xs[1], y)
        for v in xs[2:]:
            emit_binary(ctx, node, self.code, y, v, y)

    def flops(self, node):
        return node.outputs[0].size * max(1, len([v for v in node.inputs if v is not None]) - 1)


@register
class Min(Variadic):
    name, code, fn, pick = "min", MINIMUM, staticmethod(np.minimum), staticmethod(min)


@register
class Max(Variadic):
    name, code, fn, pick = "max", MAXIMUM, staticmethod(np.maximum), staticmethod(max)


@register
class PRelu(Binary):
    """Inputs: x, slope; slope broadcasts to x's shape (ONNX unidirectional broadcasting)."""
    name, code = "prelu", PRELU

    def infer(self, node):
        x, slope = node.inputs
        shape = broadcast_shapes(node, x.shape, slope.shape)
        if len(shape) != len(x.shape) or tuple(map(concrete, shape)) != x.concrete_shape:
            raise UnsupportedModelError(f"{node.describe()}: slope of shape {tuple(slope.shape)} does not broadcast "
                                        f"to x's shape {tuple(x.shape)} (ONNX unidirectional broadcasting)")
        return [(x.shape, x.dtype)]

    def reference(self, node, x, slope):
        return [np.where(x >= 0, x, slope * x).astype(x.dtype)]
