"""Activation and unary math functions, by code: the one place their math lives.

Codes follow the ONNX recurrent-op list; the elementwise unary ops (:mod:`.elementwise`) use the
same codes, and the codes after SOFTPLUS, which no recurrent op takes. ``alpha``/``beta`` are
ignored by functions that take none.

The kernels compute tanh (and sigmoid, SCALED_TANH) with :func:`fast_tanh`, a rational
approximation (max abs error 3.9e-7; sigmoid 2.6e-7) that LLVM vectorises on x86 and ARM,
where np.tanh / np.exp stay scalar library calls. Its coefficients and error come from
``python benchmarks/fit_tanh.py``. The NumPy references (:func:`activate_ref`) stay exact:
they are the oracle the kernels are tested against.

    SIGMOID          1 / (1 + exp(-x))
    TANH             tanh(x)
    RELU             max(0, x)
    AFFINE           alpha * x + beta
    LEAKY_RELU       x if x >= 0 else alpha * x
    THRESHOLDED_RELU x if x > alpha else 0
    SCALED_TANH      alpha * tanh(beta * x)
    HARD_SIGMOID     min(max(alpha * x + beta, 0), 1)
    ELU              x if x >= 0 else alpha * (exp(x) - 1)
    SOFTSIGN         x / (1 + |x|)
    SOFTPLUS         log(1 + exp(x))
    SQRT             sqrt(x)              (NaN for x < 0)
    EXP              exp(x)
    LOG              log(x)               (-inf at 0, NaN for x < 0)
    ABS              |x|
    NEG              -x
    RECIPROCAL       1 / x
    FLOOR            floor(x)
    CEIL             ceil(x)
    CLIP             min(max(x, alpha), beta)
    POW              x ** alpha
"""
import numpy as np

from ..config import jit, jit_inline

SIGMOID, TANH, RELU, AFFINE, LEAKY_RELU, THRESHOLDED_RELU, SCALED_TANH, HARD_SIGMOID, ELU, \
    SOFTSIGN, SOFTPLUS = range(11)
#: unary math codes (elementwise ops only; not ONNX recurrent activations)
SQRT, EXP, LOG, ABS, NEG, RECIPROCAL, FLOOR, CEIL, CLIP, POW = range(11, 21)

#: the codes computed with :func:`fast_tanh` (the device model's per-activation cost)
FAST_ACTIVATIONS = (SIGMOID, TANH, SCALED_TANH)

#: ONNX name -> (code, default alpha, default beta)
ONNX_ACTIVATIONS = {
    "sigmoid": (SIGMOID, 0.0, 0.0),
    "tanh": (TANH, 0.0, 0.0),
    "relu": (RELU, 0.0, 0.0),
    "affine": (AFFINE, 1.0, 0.0),
    "leakyrelu": (LEAKY_RELU, 0.01, 0.0),
    "thresholdedrelu": (THRESHOLDED_RELU, 1.0, 0.0),
    "scaledtanh": (SCALED_TANH, 1.0, 1.0),
    "hardsigmoid": (HARD_SIGMOID, 0.2, 0.5),
    "elu": (ELU, 1.0, 0.0),
    "softsign": (SOFTSIGN, 0.0, 0.0),
    "softplus": (SOFTPLUS, 0.0, 0.0),
}
#: how many of (alpha, beta) each function consumes from an ONNX activation_alpha/beta list
USES_ALPHA = {AFFINE, LEAKY_RELU, THRESHOLDED_RELU, SCALED_TANH, HARD_SIGMOID, ELU}
USES_BETA = {AFFINE, SCALED_TANH, HARD_SIGMOID}
#: the codes whose function reads alpha (and beta): a unary row passes them as fparams
PARAMETRISED = USES_ALPHA | USES_BETA | {CLIP, POW}

_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)
_HALF = np.float32(0.5)
_TWO = np.float32(2.0)

# tanh(x) ~ x P(x^2) / Q(x^2) for |x| <= 9 (benchmarks/fit_tanh.py)
_CLAMP = np.float32(9.0)
_P0, _P1, _P2 = np.float32(0.9999997615814209), np.float32(0.12918180227279663), np.float32(0.0029200061690062284)
_P3, _P4, _P5 = np.float32(9.267197128792759e-06), np.float32(-1.2802982674031682e-08), np.float32(1.8366566947869423e-11)
_Q1, _Q2, _Q3 = np.float32(0.4625142514705658), np.float32(0.02375909686088562), np.float32(0.0002280418702866882)


@jit_inline
def fast_tanh(x):
    x = min(max(x, -_CLAMP), _CLAMP)
    s = x * x
    p = ((((_P5 * s + _P4) * s + _P3) * s + _P2) * s + _P1) * s + _P0
    q = ((_Q3 * s + _Q2) * s + _Q1) * s + _ONE
    return x * p / q


@jit_inline
def fast_sigmoid(x):
    return _HALF + _HALF * fast_tanh(_HALF * x)


@jit
def activate(code, x, alpha, beta):
    """Scalar activation `code` of float32 `x`."""
    if code == SIGMOID:
        return fast_sigmoid(x)
    if code == TANH:
        return fast_tanh(x)
    if code == RELU:
        return x if x > _ZERO else _ZERO
    if code == AFFINE:
        return alpha * x + beta
    if code == LEAKY_RELU:
        return x if x >= _ZERO else alpha * x
    if code == THRESHOLDED_RELU:
        return x if x > alpha else _ZERO
    if code == SCALED_TANH:
        return alpha * fast_tanh(beta * x)
    if code == HARD_SIGMOID:
        return min(max(alpha * x + beta, _ZERO), _ONE)
    if code == ELU:
        return x if x >= _ZERO else alpha * (np.exp(x) - _ONE)
    if code == SOFTSIGN:
        return x / (_ONE + abs(x))
    if code == SOFTPLUS:
        return np.log(_ONE + np.exp(x))
    return unary_math(code, x, alpha, beta)


@jit_inline
def unary_math(code, x, alpha, beta):
    """The codes after SOFTPLUS; an unknown code gives x unchanged."""
    if code == SQRT:
        return np.sqrt(x)
    if code == EXP:
        return np.exp(x)
    if code == LOG:
        return np.log(x)
    if code == ABS:
        return abs(x)
    if code == NEG:
        return -x
    if code == RECIPROCAL:
        return _ONE / x
    if code == FLOOR:
        return np.floor(x)
    if code == CEIL:
        return np.ceil(x)
    if code == CLIP:
        return min(max(x, alpha), beta)
    if code == POW:
        return x * x if alpha == _TWO else x ** alpha
    return x


@jit
def activate_inplace(code, v, alpha, beta):
    """v[j] = activation(v[j]) over a contiguous slice; the common codes get loops of their
    own so they vectorise."""
    n = v.shape[0]
    if code == SIGMOID:
        for j in range(n):
            v[j] = fast_sigmoid(v[j])
    elif code == TANH:
        for j in range(n):
            v[j] = fast_tanh(v[j])
    else:
        for j in range(n):
            v[j] = activate(code, v[j], alpha, beta)


def activate_ref(code, x, alpha=0.0, beta=0.0):
    """NumPy reference of :func:`activate` over a float32 array."""
    x = np.asarray(x, dtype=np.float32)
    a, b = np.float32(alpha), np.float32(beta)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return np.asarray({
            SIGMOID: lambda: 1 / (1 + np.exp(-x)),
            TANH: lambda: np.tanh(x),
            RELU: lambda: np.maximum(x, 0),
            AFFINE: lambda: a * x + b,
            LEAKY_RELU: lambda: np.where(x >= 0, x, a * x),
            THRESHOLDED_RELU: lambda: np.where(x > a, x, 0),
            SCALED_TANH: lambda: a * np.tanh(b * x),
            HARD_SIGMOID: lambda: np.clip(a * x + b, 0, 1),
            ELU: lambda: np.where(x >= 0, x, a * (np.exp(x) - 1)),
            SOFTSIGN: lambda: x / (1 + np.abs(x)),
            SOFTPLUS: lambda: np.log(1 + np.exp(x)),
            SQRT: lambda: np.sqrt(x),
            EXP: lambda: np.exp(x),
            LOG: lambda: np.log(x),
            ABS: lambda: np.abs(x),
            NEG: lambda: -x,
            RECIPROCAL: lambda: 1 / x,
            FLOOR: lambda: np.floor(x),
            CEIL: lambda: np.ceil(x),
            CLIP: lambda: np.minimum(np.maximum(x, a), b),
            POW: lambda: np.power(x, a),
        }[code](), dtype=np.float32)
