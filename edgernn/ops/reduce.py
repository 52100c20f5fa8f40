"""Reductions over some axes of a tensor:

    reduce_sum         y = sum(x)                reduce_mean   y = sum(x) / n
    reduce_max         y = max(x)                reduce_min    y = min(x)
    reduce_prod        y = prod(x)               reduce_l1     y = sum(|x|)
    reduce_l2          y = sqrt(sum(x^2))        reduce_sum_square  y = sum(x^2)

each over the axes given (n: the elements reduced into one output). Inputs: x, axes (a
constant int vector; absent: every axis). attrs: keepdims (0/1; 1 keeps each reduced axis
with size 1), noop_with_empty_axes (0/1; with an *empty* axes vector, 1 reduces nothing and
0 every axis; default 1, TensorFlow's rule: the ONNX importer always sets it).

Converters use reduce_prod on shape vectors (the number of rows a FULLY_CONNECTED sees is the
product of the leading dimensions), where it folds at load time, sizes T and B included; the
others fold on constants too. A computed tensor is reduced by :data:`ROW` over its
non-symbolic axes only: reducing over the time or batch axis would mix frames or streams.

The row iterates x with its axes permuted so the kept ones come first (merged where
contiguous): element i of that order contributes to y[i // n].
"""
import numpy as np

from ..config import jit
from ..errors import UnsupportedModelError
from ..ir.dims import has_time, is_symbolic, product
from . import Op, register
from .layout import const_array, norm_axis, tidy
from .program import MAX_RANK, contiguous_strides, merge_axes, pad, strided_offset
from .row import Field, RowLayout, element_count, ranked_dims, ranked_fields, strided, work, WORK

SUM, MEAN, MAX, MIN, PROD, L1, L2, SUM_SQUARE = range(8)

ROW = RowLayout("reduce", [
    Field("code", "SUM, MEAN, MAX, MIN, PROD, L1, L2 or SUM_SQUARE"),
    Field("x", "work offset of x", strided(WORK, "x_strides")),
    Field("y", "work offset of y [ceil(total / n)]",
          work(lambda r: -(-element_count(ranked_dims(r)) // r.n) if r.n >= 1 else -1, writes=True, optional=False)),
    Field("n", "elements reduced into each output (the trailing axes of dims)"),
    *ranked_fields(("x_strides", "x's stride, kept axes first")),
])
F = ROW.fields


@ROW.kernel
@jit
def reduce_kernel(row, fparams, consts, qconsts, work, seq):
    code, xo, yo, n, rank = row[F.code], row[F.x], row[F.y], row[F.n], row[F.rank]
    dims = row[F.dims:F.dims + MAX_RANK]
    xstr = row[F.x_strides:F.x_strides + MAX_RANK]
    total = 1
    for k in range(rank):
        total *= dims[k]
    for s in range(work.shape[0]):
        w = work[s]
        for o in range((total + n - 1) // n):
            acc = w[xo + strided_offset(o * n, dims, xstr, rank)]
            if code == L1:
                acc = abs(acc)
            elif code == L2 or code == SUM_SQUARE:
                acc = acc * acc
            for i in range(o * n + 1, min(o * n + n, total)):
                v = w[xo + strided_offset(i, dims, xstr, rank)]
                if code == MAX:
                    acc = max(acc, v)
                elif code == MIN:
                    acc = min(acc, v)
                elif code == PROD:
                    acc *= v
                elif code == L1:
                    acc += abs(v)
                elif code == L2 or code == SUM_SQUARE:
                    acc += v * v
                else:
                    acc += v
            if code == MEAN:
                acc /= np.float32(n)
            elif code == L2:
                acc = np.sqrt(acc)
            w[yo + o] = acc


def _python_fold(code, items):
    """One output of a reduction over a list of shape values (ints or Dims: only products of
    Dims and max/min of equal ones are expressible)."""
    if code == PROD:
        return product(items)
    if code in (MAX, MIN):
        if len(set(map(repr, items))) == 1:
            return items[0]
        if any(is_symbolic(d) for d in items):
            raise UnsupportedModelError("compares the sequence length or batch size with a number")
        return (max if code == MAX else min)(items)
    if any(is_symbolic(d) for d in items):
        raise UnsupportedModelError("adds up the sequence length or batch size; only products of T and B "
                                    "with constants can be streamed")
    return int(np.asarray(_NUMPY[code](np.array(items, np.int64))))


_NUMPY = {
    SUM: lambda x, **k: np.sum(x, **k),
    MEAN: lambda x, **k: np.mean(x, **k),
    MAX: lambda x, **k: np.max(x, **k),
    MIN: lambda x, **k: np.min(x, **k),
    PROD: lambda x, **k: np.prod(x, **k),
    L1: lambda x, **k: np.sum(np.abs(x), **k),
    L2: lambda x, **k: np.sqrt(np.sum(np.square(x), **k)),
    SUM_SQUARE: lambda x, **k: np.sum(np.square(x), **k),
}


class Reduce(Op):
    code = SUM

    def axes(self, node, rank):
        axes = const_array(node, 1, "axes")
        if axes is None:
            return list(range(rank))
        if np.size(axes) == 0:
            return [] if node.attrs.get("noop_with_empty_axes", 1) else list(range(rank))
        normed = [norm_axis(a, rank, node) for a in np.ravel(axes)]
        if len(set(normed)) != len(normed):
            raise UnsupportedModelError(f"{node.describe()}: axes {np.ravel(axes).tolist()} repeat an axis")
        return sorted(normed)

    def out_shape(self, node, shape):
        axes = self.axes(node, len(shape))
        keep = node.attrs.get("keepdims", 1 if self.name != "reduce_prod" else 0)
        return tuple(1 if a in axes else d for a, d in enumerate(shape) if keep or a not in axes)

    def infer(self, node):
        x = node.inputs[0]
        axes = self.axes(node, len(x.shape))
        if not x.is_const:
            for a in axes:
                if is_symbolic(x.shape[a]):
                    where = "time" if has_time(x.shape[a]) else "batch"
                    raise UnsupportedModelError(
                        f"{node.describe()}: reduces over axis {a}, the {where} axis; that needs the whole "
                        "sequence (or mixes streams) and cannot run one frame at a time")
                if x.shape[a] == 0:
                    raise UnsupportedModelError(f"{node.describe()}: reduces over axis {a}, which is empty")
        return [(self.out_shape(node, x.shape), x.dtype)]

    def reference(self, node, x, _=None):
        x = np.asarray(x)
        axes = self.axes(node, x.ndim)
        shape = tuple(int(d) for d in self.out_shape(node, x.shape))
        if x.dtype != object:
            with np.errstate(over="ignore"):
                return [np.asarray(_NUMPY[self.code](x, axis=tuple(axes))).astype(x.dtype).reshape(shape)]
        moved = np.moveaxis(x, axes, list(range(len(axes))))
        flat = moved.reshape((-1,) + moved.shape[len(axes):])
        out = np.empty(flat.shape[1:], dtype=object)
        for idx in np.ndindex(out.shape):
            out[idx] = _python_fold(self.code, [flat[(k,) + idx] for k in range(flat.shape[0])])
        return [tidy(out.reshape(shape))]

    def emit(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        xs = x.concrete_shape
        axes = self.axes(node, len(xs))
        order = [a for a in range(len(xs)) if a not in axes] + axes
        xstr = contiguous_strides(xs)
        n = int(np.prod([xs[a] for a in axes], dtype=np.int64))
        dims, (st,) = merge_axes([xs[a] for a in order], [xstr[a] for a in order])
        ctx.row(node, ROW, code=self.code, x=ctx.work_off(x), y=ctx.work_off(y), n=max(n, 1), rank=len(dims),
                dims=pad(dims), x_strides=pad(st, fill=0))

    def flops(self, node):
        return 2 * node.inputs[0].size


def _reduction(ir_name, code):
    return register(type(ir_name.title().replace("_", ""), (Reduce,), dict(name=ir_name, code=code)))


ReduceSum = _reduction("reduce_sum", SUM)
ReduceMean = _reduction("reduce_mean", MEAN)
ReduceMax = _reduction("reduce_max", MAX)
ReduceMin = _reduction("reduce_min", MIN)
ReduceProd = _reduction("reduce_prod", PROD)          # keepdims defaults to 0 (TFLite's REDUCE_PROD)
ReduceL1 = _reduction("reduce_l1", L1)
ReduceL2 = _reduction("reduce_l2", L2)
ReduceSumSquare = _reduction("reduce_sum_square", SUM_SQUARE)
