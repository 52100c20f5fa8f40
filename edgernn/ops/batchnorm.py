"""batch_norm: ONNX BatchNormalization in inference form, over channel axis 1.

    y[n, c, ...] = (x[n, c, ...] - mean[c]) / sqrt(var[c] + epsilon) * scale[c] + B[c]

Inputs: x [N, C, D1, ...] (rank >= 2; N and the D axes may be time or batch, C may not),
scale, B, mean, var (constants of shape [C]). attrs: epsilon. The training-mode outputs
(running and saved statistics) are not supported.

The pack pass folds the four vectors into a per-channel affine map, once, at load
(``attrs["packed"]``; inputs then x, scale' [C], bias' [C]):

    scale' = scale / sqrt(var + epsilon)        bias' = B - mean * scale'
    y[n, c, i] = x[n, c, i] * scale'[c] + bias'[c]

computed in float64 and stored as float32 (ONNX Runtime folds the same way in float32).
Row: :data:`ROW`, x seen as [outer, C, inner].
"""
import numpy as np

from ..config import jit
from ..errors import UnsupportedModelError
from ..ir.dims import is_symbolic
from ..ir.graph import Value
from . import Op, expect_const, register
from .row import Field, RowLayout, const, work

ROW = RowLayout("batch_norm", [
    Field("x", "work offset of x [outer, c, inner]", work(lambda r: r.outer * r.c * r.inner, optional=False)),
    Field("y", "work offset of y, x's shape",
          work(lambda r: r.outer * r.c * r.inner, writes=True, optional=False)),
    Field("scale", "folded scale [c] in consts", const(lambda r: r.c, optional=False)),
    Field("bias", "folded bias [c] in consts", const(lambda r: r.c, optional=False)),
    Field("outer", "product of the axes before the channel axis"),
    Field("c", "channels"),
    Field("inner", "product of the axes after it"),
])
F = ROW.fields


@ROW.kernel
@jit
def batchnorm_kernel(row, fparams, consts, qconsts, work, seq):
    xo, yo, so, bo = row[F.x], row[F.y], row[F.scale], row[F.bias]
    outer, c, inner = row[F.outer], row[F.c], row[F.inner]
    for s in range(work.shape[0]):
        w = work[s]
        for o in range(outer):
            for ch in range(c):
                k, b = consts[so + ch], consts[bo + ch]
                base = (o * c + ch) * inner
                for i in range(inner):
                    w[yo + base + i] = w[xo + base + i] * k + b


@register
class BatchNorm(Op):
    name = "batch_norm"

    def channels(self, node):
        x = node.inputs[0]
        if len(x.shape) < 2:
            raise UnsupportedModelError(f"{node.describe()}: x has shape {tuple(x.shape)}; BatchNormalization "
                                        "needs [N, C, ...]")
        c = x.shape[1]
        if is_symbolic(c):
            raise UnsupportedModelError(f"{node.describe()}: its channel axis 1 is the time or batch axis")
        return int(c)

    def affine(self, node):
        """(scale' [C], bias' [C]) float32, from the checked constants."""
        c = self.channels(node)
        if node.attrs.get("packed"):
            return tuple(expect_const(node, k, (c,), what).const.astype(np.float32).ravel()
                         for k, what in ((1, "folded scale"), (2, "folded bias")))
        scale, bias, mean, var = (expect_const(node, k, (c,), what).const.astype(np.float64).ravel()
                                  for k, what in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")))
        k = scale / np.sqrt(var + np.float64(np.float32(node.attrs.get("epsilon", 1e-5))))
        return k.astype(np.float32), (bias - mean * k).astype(np.float32)

    def infer(self, node):
        x = node.inputs[0]
        extra = [v.name for v in node.outputs[1:] if v is not None]
        if extra:
            raise UnsupportedModelError(f"{node.describe()}: has the training-mode outputs {extra} (running or "
                                        "saved mean and variance); only inference (one output) is supported")
        self.affine(node)
        return [(x.shape, "float32")]

    def reference(self, node, x, *_):
        scale, bias = self.affine(node)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return [(x.astype(np.float32) * scale.reshape(shape) + bias.reshape(shape)).astype(np.float32)]

    def pack(self, node):
        scale, bias = self.affine(node)
        node.inputs = [node.inputs[0], Value(f"{node.name}.scale", shape=scale.shape, const=scale),
                       Value(f"{node.name}.bias", shape=bias.shape, const=bias)]
        node.attrs["packed"] = True

    def emit(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        xs = x.concrete_shape
        c = self.channels(node)
        inner = int(np.prod(xs[2:], dtype=np.int64))
        ctx.row(node, ROW, x=ctx.work_off(x), y=ctx.work_off(y), scale=ctx.const_off(node.inputs[1]),
                bias=ctx.const_off(node.inputs[2]), outer=xs[0], c=c, inner=inner)

    def flops(self, node):
        return 2 * node.outputs[0].size
