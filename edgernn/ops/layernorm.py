"""layer_norm: normalise over the trailing axes from `axis`, then scale and shift.

    mean = mean(x[r, :]);  var = mean((x[r, :] - mean)^2)
    y[r, j] = (x[r, j] - mean) / sqrt(var + epsilon) * scale[j] + bias[j]

with x seen as [rows, n], n = prod(shape[axis:]). attrs: axis, epsilon. Inputs: x, scale
(constant of shape shape[axis:]), bias (constant of that shape, or absent): onnxruntime
refuses other sizes too. Statistics are accumulated in float32 like ONNX Runtime's default
stash_type=1 path. The pack pass (attr ``packed``) flattens scale and bias to [n].
Row: :data:`ROW`.
"""
import numpy as np

from ..config import jit
from ..errors import UnsupportedModelError
from ..ir.dims import is_symbolic
from ..ir.graph import Value
from . import Op, expect_const, register
from .layout import norm_axis
from .row import Field, RowLayout, const, fparam, work

ROW = RowLayout("layer_norm", [
    Field("x", "work offset of x [rows, n]", work(lambda r: r.rows * r.n, optional=False)),
    Field("y", "work offset of y [rows, n]", work(lambda r: r.rows * r.n, writes=True, optional=False)),
    Field("scale", "scale [n] in consts", const(lambda r: r.n, optional=False)),
    Field("bias", "bias [n] in consts (-1: none)", const(lambda r: r.n)),
    Field("rows", "rows of x"),
    Field("n", "elements normalised together"),
    Field("epsilon", "index of epsilon in fparams", fparam(1)),
])
F = ROW.fields


@ROW.kernel
@jit
def layernorm_kernel(row, fparams, consts, qconsts, work, seq):
    xo, yo, so, bo, rows, n = row[F.x], row[F.y], row[F.scale], row[F.bias], row[F.rows], row[F.n]
    eps = fparams[row[F.epsilon]]
    inv_n = np.float32(1.0) / np.float32(n)
    for s in range(work.shape[0]):
        w = work[s]
        for r in range(rows):
            x0 = xo + r * n
            y0 = yo + r * n
            mean = np.float32(0.0)
            for j in range(n):
                mean += w[x0 + j]
            mean *= inv_n
            var = np.float32(0.0)
            for j in range(n):
                d = w[x0 + j] - mean
                var += d * d
            var *= inv_n
            inv = np.float32(1.0) / np.sqrt(var + eps)
            for j in range(n):
                v = (w[x0 + j] - mean) * inv * consts[so + j]
                w[y0 + j] = v + consts[bo + j] if bo >= 0 else v


@register
class LayerNorm(Op):
    name = "layer_norm"

    def split(self, node, shape):
        a = norm_axis(node.attrs.get("axis", -1), len(shape), node)
        if any(is_symbolic(d) for d in shape[a:]):
            raise UnsupportedModelError(f"{node.describe()}: normalises over the time or batch axis")
        n = int(np.prod(shape[a:], dtype=np.int64))
        return a, n

    def params(self, node):
        """(n, scale [n], bias [n] or None) as float32, checked against the normalised shape."""
        x = node.inputs[0]
        a, n = self.split(node, x.concrete_shape)
        norm_shape = (n,) if node.attrs.get("packed") else x.concrete_shape[a:]
        scale = expect_const(node, 1, norm_shape, "scale")
        bias = expect_const(node, 2, norm_shape, "bias", required=False)
        return n, scale.const.astype(np.float32).ravel(), None if bias is None else bias.const.astype(np.float32).ravel()

    def infer(self, node):
        x = node.inputs[0]
        self.split(node, x.shape)
        self.params(node)
        return [(x.shape, "float32")]

    def reference(self, node, x, *_):
        n, scale, bias = self.params(node)
        v = x.reshape(-1, n).astype(np.float32)
        mean = v.mean(axis=1, keepdims=True)
        var = ((v - mean) ** 2).mean(axis=1, keepdims=True)
        y = (v - mean) / np.sqrt(var + np.float32(node.attrs.get("epsilon", 1e-5))) * scale
        if bias is not None:
            y = y + bias
        return [y.reshape(x.shape).astype(np.float32)]

    def pack(self, node):
        n, scale, bias = self.params(node)
        node.inputs = [node.inputs[0]] + [None if a is None else Value(f"{node.name}.{what}", shape=(n,), const=a)
                                          for a, what in ((scale, "scale"), (bias, "bias"))]
        node.attrs["packed"] = True

    def emit(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        n = self.params(node)[0]
        xo, yo = ctx.work_off(x), ctx.work_off(y)
        so = ctx.const_off(node.inputs[1])
        bo = ctx.const_off(node.inputs[2]) if node.input(2) is not None else -1
        ctx.row(node, ROW, x=xo, y=yo, scale=so, bias=bo, rows=x.size // n, n=n,
                epsilon=ctx.fparam(node.attrs.get("epsilon", 1e-5)))

    def flops(self, node):
        return 8 * node.outputs[0].size
