"""Activation functions, by code: the one place their math lives.

Codes follow the ONNX recurrent-op list; unary ops (Relu, Sigmoid, Tanh) use the same codes.
``alpha``/``beta`` are ignored by functions that take none.

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
"""
import numpy as np

from ..config import jit

SIGMOID, TANH, RELU, AFFINE, LEAKY_RELU, THRESHOLDED_RELU, SCALED_TANH, HARD_SIGMOID, ELU, \
    SOFTSIGN, SOFTPLUS = range(11)

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

_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)


@jit
def activate(code, x, alpha, beta):
    """Scalar activation `code` of float32 `x`."""
    if code == SIGMOID:
        return _ONE / (_ONE + np.exp(-x))
    if code == TANH:
        return np.tanh(x)
    if code == RELU:
        return x if x > _ZERO else _ZERO
    if code == AFFINE:
        return alpha * x + beta
    if code == LEAKY_RELU:
        return x if x >= _ZERO else alpha * x
    if code == THRESHOLDED_RELU:
        return x if x > alpha else _ZERO
    if code == SCALED_TANH:
        return alpha * np.tanh(beta * x)
    if code == HARD_SIGMOID:
        return min(max(alpha * x + beta, _ZERO), _ONE)
    if code == ELU:
        return x if x >= _ZERO else alpha * (np.exp(x) - _ONE)
    if code == SOFTSIGN:
        return x / (_ONE + abs(x))
    return np.log(_ONE + np.exp(x))  # SOFTPLUS


def activate_ref(code, x, alpha=0.0, beta=0.0):
    """NumPy reference of :func:`activate` over a float32 array."""
    x = np.asarray(x, dtype=np.float32)
    a, b = np.float32(alpha), np.float32(beta)
    with np.errstate(over="ignore"):
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
        }[code](), dtype=np.float32)
