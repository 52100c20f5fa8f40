"""softmax and log_softmax.

    softmax(x)_i     = exp(x_i - max x) / sum_j exp(x_j - max x)
    log_softmax(x)_i = x_i - max x - log(sum_j exp(x_j - max x))

attrs: axis, coerce_2d. With coerce_2d (ONNX opset < 13) the input is seen as 2-D
[prod(shape[:axis]), prod(shape[axis:])] and normalised over the second axis; otherwise over
the single axis `axis`. Either way the kernel sees [outer, n, inner] and normalises over n.
Row: :data:`ROW`.
"""
import numpy as np

from ..config import jit
from ..errors import UnsupportedModelError
from ..ir.dims import is_symbolic
from . import Op, register
from .layout import norm_axis
from .row import Field, RowLayout, work

ROW = RowLayout("softmax", [
    Field("x", "work offset of x [outer, n, inner]", work(lambda r: r.outer * r.n * r.inner, optional=False)),
    Field("y", "work offset of y, x's shape", work(lambda r: r.outer * r.n * r.inner, writes=True, optional=False)),
    Field("outer", "product of the axes before the normalised one"),
    Field("n", "size of the normalised axis"),
    Field("inner", "product of the axes after it"),
    Field("log", "1: log_softmax, 0: softmax"),
])
F = ROW.fields


@ROW.kernel
@jit
def softmax_kernel(row, fparams, consts, qconsts, work, seq):
    xo, yo, outer, n, inner, log = row[F.x], row[F.y], row[F.outer], row[F.n], row[F.inner], row[F.log]
    for s in range(work.shape[0]):
        w = work[s]
        for o in range(outer):
            for i in range(inner):
                base = o * n * inner + i
                mx = w[xo + base]
                for j in range(1, n):
                    mx = max(mx, w[xo + base + j * inner])
                total = np.float32(0.0)
                for j in range(n):
                    total += np.exp(w[xo + base + j * inner] - mx)
                if log:
                    lt = np.log(total)
                    for j in range(n):
                        w[yo + base + j * inner] = w[xo + base + j * inner] - mx - lt
                else:
                    for j in range(n):
                        w[yo + base + j * inner] = np.exp(w[xo + base + j * inner] - mx) / total


class SoftmaxBase(Op):
    log = 0

    def split(self, node, shape):
        a = norm_axis(node.attrs.get("axis", -1), len(shape), node)
        reduced = shape[a:] if node.attrs.get("coerce_2d") else shape[a:a + 1]
        if any(is_symbolic(d) for d in reduced):
            raise UnsupportedModelError(
                f"{node.describe()}: normalises over the time or batch axis; that mixes frames")
        outer = int(np.prod([int(d) if not is_symbolic(d) else d.n for d in shape[:a]], dtype=np.int64))
        n = int(np.prod(reduced, dtype=np.int64))
        inner = 1 if node.attrs.get("coerce_2d") else int(np.prod(shape[a + 1:], dtype=np.int64))
        return outer, n, inner

    def infer(self, node):
        x = node.inputs[0]
        self.split(node, x.shape)
        return [(x.shape, "float32")]

    def reference(self, node, x):
        outer, n, inner = self.split(node, x.shape)
        v = x.reshape(outer, n, inner).astype(np.float32)
        z = v - v.max(axis=1, keepdims=True)
        e = np.exp(z)
        out = z - np.log(e.sum(axis=1, keepdims=True)) if self.log else e / e.sum(axis=1, keepdims=True)
        return [out.reshape(x.shape).astype(np.float32)]

    def emit(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        outer, n, inner = self.split(node, x.concrete_shape)
        xo, yo = ctx.work_off(x), ctx.work_off(y)
        ctx.row(node, ROW, x=xo, y=yo, outer=outer, n=n, inner=inner, log=self.log)

    def flops(self, node):
        return 4 * node.outputs[0].size


@register
class Softmax(SoftmaxBase):
    name, log = "softmax", 0


@register
class LogSoftmax(SoftmaxBase):
    name, log = "log_softmax", 1
