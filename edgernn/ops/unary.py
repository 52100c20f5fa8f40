"""Unary elementwise ops: y = f(x) for every element, one row each.

    relu, sigmoid, tanh     as :mod:`.activations`
    sqrt, exp, log, abs, neg, reciprocal, floor, ceil, softplus, softsign
    leaky_relu (alpha), hard_sigmoid (alpha, beta), elu (alpha), thresholded_relu (alpha)
    clip                    min(max(x, lo), hi); inputs x, lo, hi (constant scalars or absent)
    (and pow with a constant scalar exponent: :class:`~.elementwise.Pow` emits this row, code POW)

Computed inputs and outputs are float32; constants (shape vectors) fold with NumPy and keep
their integer dtype for abs, neg, clip, floor and ceil. Row: :data:`UNARY_ROW` (the codes of
:mod:`.activations`, with alpha and beta in fparams when the function takes them).
"""
import numpy as np

from ..config import jit, jit_inline
from ..errors import UnsupportedModelError
from ..ir.dims import Dim
from . import Op, register
from .activations import (ABS, CEIL, CLIP, ELU, EXP, FAST_ACTIVATIONS, FLOOR, HARD_SIGMOID, LEAKY_RELU, LOG, NEG,
                          PARAMETRISED, POW, RECIPROCAL, RELU, SIGMOID, SOFTPLUS, SOFTSIGN, SQRT, TANH,
                          THRESHOLDED_RELU, activate, activate_ref, fast_sigmoid, fast_tanh)
from .layout import const_array, tidy
from .row import Field, RowLayout, fparam, work


UNARY_ROW = RowLayout("unary", [
    Field("code", "activation code (:mod:`.activations`)"),
    Field("x", "work offset of x [n]", work(lambda r: r.n, optional=False)),
    Field("y", "work offset of y [n]", work(lambda r: r.n, writes=True, optional=False)),
    Field("n", "elements"),
    Field("params", "index of (alpha, beta) in fparams (-1: none, both 0)", fparam(2)),
])
U = UNARY_ROW.fields


@UNARY_ROW.kernel
@jit
def unary_kernel(row, fparams, consts, qconsts, work, seq):
    code, xo, yo, n, p = row[U.code], row[U.x], row[U.y], row[U.n], row[U.params]
    alpha = fparams[p] if p >= 0 else np.float32(0.0)
    beta = fparams[p + 1] if p >= 0 else np.float32(0.0)
    for s in range(work.shape[0]):
        _unary_run(code, work[s, xo:xo + n], work[s, yo:yo + n], alpha, beta)


@jit_inline
def _unary_run(code, x, y, alpha, beta):
    """y[i] = f(x[i]); the codes common in real models get a loop of their own (no branch in
    the loop, so it vectorises), the rest go through ``activate``."""
    n = x.shape[0]
    zero = np.float32(0.0)
    if code == RELU:
        for i in range(n):
            y[i] = x[i] if x[i] > zero else zero
    elif code == SIGMOID:
        for i in range(n):
            y[i] = fast_sigmoid(x[i])
    elif code == TANH:
        for i in range(n):
            y[i] = fast_tanh(x[i])
    elif code == SQRT:
        for i in range(n):
            y[i] = np.sqrt(x[i])
    elif code == POW and alpha == np.float32(2.0):
        for i in range(n):
            y[i] = x[i] * x[i]
    else:
        for i in range(n):
            y[i] = activate(code, x[i], alpha, beta)


def emit_unary(ctx, node, code, x, y, params=None):
    """One UNARY_ROW: y = f_code(x; alpha, beta), params = (alpha, beta) or None."""
    p = -1 if params is None else ctx.fparams(params)
    ctx.row(node, UNARY_ROW, code=code, x=ctx.work_off(x), y=ctx.work_off(y), n=y.size, params=p)


def dims_compare(pick):
    """Elementwise min/max of shape vectors: Dims (T, B) compare only with themselves."""
    def one(x, y):
        if isinstance(x, Dim) or isinstance(y, Dim):
            if x == y:
                return x
            raise UnsupportedModelError("compares the sequence length or batch size with a number "
                                        "(Min/Max of a shape); edgernn cannot stream that")
        return pick(x, y)
    return np.frompyfunc(one, 2, 1)


class Unary(Op):
    """y = f(x) elementwise. ``alpha``, ``beta``: the attrs' defaults of functions that take them
    (:data:`~.activations.PARAMETRISED`). ``exact``: the NumPy function used to fold constants
    that are not float32 (integer shape vectors keep their dtype); None: fold in float32."""
    code = RELU
    alpha = beta = 0.0
    exact = None

    def params(self, node):
        return (float(node.attrs.get("alpha", self.alpha)), float(node.attrs.get("beta", self.beta)))

    def infer(self, node):
        x = node.inputs[0]
        return [(x.shape, x.dtype)]

    def reference(self, node, x, *_):
        if self.exact is not None and x.dtype != np.float32:
            return [tidy(self.exact(x))]
        return [activate_ref(self.code, x, *self.params(node))]

    def emit(self, node, ctx):
        params = self.params(node) if self.code in PARAMETRISED else None
        emit_unary(ctx, node, self.code, node.inputs[0], node.outputs[0], params)

    def flops(self, node):
        return node.outputs[0].size

    def activations(self, node):
        return node.outputs[0].size if self.code in FAST_ACTIVATIONS else 0


def _abs(x):
    if x.dtype == object:
        return np.frompyfunc(lambda e: e if isinstance(e, Dim) else abs(e), 1, 1)(x)
    return np.abs(x)


def _unary(ir_name, code, alpha=0.0, beta=0.0, exact=None, doc=""):
    cls = type(ir_name.title().replace("_", ""), (Unary,), dict(
        name=ir_name, code=code, alpha=alpha, beta=beta, exact=staticmethod(exact) if exact else None, __doc__=doc))
    return register(cls)


Relu = _unary("relu", RELU)
Sigmoid = _unary("sigmoid", SIGMOID)
Tanh = _unary("tanh", TANH)
Sqrt = _unary("sqrt", SQRT, exact=np.sqrt)
Exp = _unary("exp", EXP, exact=np.exp)
Log = _unary("log", LOG, exact=np.log)
Abs = _unary("abs", ABS, exact=_abs)
Neg = _unary("neg", NEG, exact=np.negative, doc="-x; folding -T (a negated time size) is refused")
Reciprocal = _unary("reciprocal", RECIPROCAL, exact=lambda x: 1 / x)
Floor = _unary("floor", FLOOR, exact=lambda x: x if x.dtype.kind in "iuO" else np.floor(x))
Ceil = _unary("ceil", CEIL, exact=lambda x: x if x.dtype.kind in "iuO" else np.ceil(x))
Softplus = _unary("softplus", SOFTPLUS)
Softsign = _unary("softsign", SOFTSIGN)
LeakyRelu = _unary("leaky_relu", LEAKY_RELU, alpha=0.01, doc="attrs: alpha (0.01)")
HardSigmoid = _unary("hard_sigmoid", HARD_SIGMOID, alpha=0.2, beta=0.5, doc="attrs: alpha (0.2), beta (0.5)")
Elu = _unary("elu", ELU, alpha=1.0, doc="attrs: alpha (1.0)")
ThresholdedRelu = _unary("thresholded_relu", THRESHOLDED_RELU, alpha=1.0, doc="attrs: alpha (1.0)")


@register
class Clip(Unary):
    """Inputs: x, lo, hi (each a constant scalar, or absent: no bound)."""
    name, code = "clip", CLIP

    def bounds(self, node):
        out = []
        for slot, what, default in ((1, "min", -np.inf), (2, "max", np.inf)):
            v = const_array(node, slot, what)
            if v is not None and np.size(v) != 1:
                raise UnsupportedModelError(f"{node.describe()}: its {what} has shape {list(np.shape(v))}; "
                                            "Clip takes a scalar")
            out.append(default if v is None else np.ravel(v)[0])
        return out

    def params(self, node):
        return tuple(float(b) for b in self.bounds(node))

    def infer(self, node):
        self.bounds(node)
        return super().infer(node)

    def reference(self, node, x, *_):
        lo, hi = self.bounds(node)
        if x.dtype == np.float32:
            return [activate_ref(CLIP, x, lo, hi)]
        if x.dtype != object:
            return [np.minimum(np.maximum(x, lo), hi).astype(x.dtype)]
        if lo != -np.inf:
            x = dims_compare(max)(x, lo)
        if hi != np.inf:
            x = dims_compare(min)(x, hi)
        return [tidy(x)]
