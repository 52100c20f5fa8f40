"""layer_norm: normalise over the trailing axes from `axis`, then scale and shift.

    mean = mean(x[r, :]);  var = mean((x[r, :] - mean)^2)
    y[r, j] = (x[r, j] - mean) / sqrt(var + epsilon) * scale[j] + bias[j]

with x seen as [rows, n], n = prod(shape[axis:]). attrs: axis, epsilon. Inputs: x, scale
(constant, broadcastable to shape[axis:]), bias (constant or absent). Statistics are
accumulated in float32 like ONNX Runtime's default stash_type=1 path. The pack pass
(attr ``packed``) broadcasts scale and bias to [n] so the kernel reads them as they are.
Row: [OP_LAYERNORM, x_off, y_off, scale_off, bias_off (-1: none), rows, n, eps_index].
"""
import numpy as np

from ..config import jit
from ..errors import UnsupportedModelError
from ..ir.dims import is_symbolic
from ..ir.graph import Value
from . import Op, register
from .layout import const_array, norm_axis
from .program import OP_LAYERNORM, REGION_WORK


@jit
def layernorm_kernel(row, fparams, consts, work):
    xo, yo, so, bo, rows, n, ei = row[1], row[2], row[3], row[4], row[5], row[6], row[7]
    eps = fparams[ei]
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
        x = node.inputs[0]
        a, n = self.split(node, x.concrete_shape)
        norm_shape = x.concrete_shape[a:]
        scale = const_array(node, 1, "scale")
        bias = const_array(node, 2, "bias")
        scale = np.broadcast_to(scale, norm_shape).astype(np.float32).ravel()
        bias = None if bias is None else np.broadcast_to(bias, norm_shape).astype(np.float32).ravel()
        return n, scale, bias

    def infer(self, node):
        x = node.inputs[0]
        self.split(node, x.shape)
        try:
            self.params(node)
        except ValueError as e:
            raise UnsupportedModelError(f"{node.describe()}: scale/bias do not broadcast: {e}") from None
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
        reads = [(REGION_WORK, xo, x.size)]
        ctx.row(node, OP_LAYERNORM, [xo, yo, so, bo, x.size // n, n, ctx.fparam(node.attrs.get("epsilon", 1e-5))],
                reads=reads, writes=[(yo, y.size)])

    def flops(self, node):
        return 8 * node.outputs[0].size
