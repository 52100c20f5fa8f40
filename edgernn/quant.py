"""Weights-only int8 quantisation: symmetric, one float32 scale per output unit.

    scale[j] = max_k |W[k, j]| / 127        (1.0 for an all-zero column)
    q[k, j]  = round(W[k, j] / scale[j])    in [-127, 127]
    W ~ q * scale                           |error| <= scale[j] / 2 per weight

Activations stay float32: a kernel computes ``scale[j] * sum_k q[k, j] * x[k] + b[j]``, so a
step reads a quarter of the weight bytes of float32.

With ``activations="int8"`` (``edgernn.load``) the input vector of each int8 matrix is
quantised too, on every call, symmetric over the whole vector (dynamic-range quantisation, as
TFLite's hybrid kernels and onnxruntime's dynamic quantisation do):

    amax     = max_k |x[k]|                                  (float32)
    xq[k]    = clip(rint(float64(x[k]) * (127.0 / float64(amax))), -127, 127)    (int8)
    x_scale  = float32(amax) / 127                           (float32 division)
    y[j]     = scale[j] * (float32(sum_k q[k, j] * xq[k]) * x_scale) + b[j]

The integer sum is exact (int32; :data:`DOT_MAX_INPUTS` bounds k), so its order does not
matter and every machine's kernel gives the same bits. An all-zero x gives xq = 0 and
x_scale 0; an x holding an infinity or NaN gives xq = 0 and x_scale NaN, so the matrix's
outputs are NaN, as float arithmetic would make them. :func:`quantize_activations` is the
NumPy statement of it; ``edgernn.ops.matvec_dot`` is the kernel. The matrices quantised here are the
panel matrices [P, K, 64] the pack pass makes (:mod:`edgernn.ops.matvec`): output j of panel p
is column (p, j), and its scale is scale[p * 64 + j]. Padding columns are all zero: scale 1.
"""
import numpy as np

QMAX = 127


def quantize_columns(w):
    """float [..., K, N] -> (int8 [..., K, N], float32 scale [... * N]): one scale per column,
    over axis -2 (a [K, N] matrix, or panels [P, K, 64])."""
    w = np.asarray(w, np.float32)
    amax = np.abs(w).max(axis=-2, keepdims=True) if w.shape[-2] else np.zeros_like(w[..., :1, :])
    scale = np.where(amax > 0, amax / QMAX, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale), -QMAX, QMAX).astype(np.int8)
    return q, scale.reshape(-1)


def dequantize(v):
    """The float32 array a constant Value stands for (its ``const`` unless it is int8)."""
    if v.scale is None:
        return v.const
    if v.const.ndim == 3 and v.scale_axis == -1:       # a panel matrix
        P, _, lanes = v.const.shape
        return v.const.astype(np.float32) * v.scale.reshape(P, 1, lanes)
    shape = [1] * v.const.ndim
    shape[v.scale_axis] = v.scale.size
    return v.const.astype(np.float32) * v.scale.reshape(shape)


#: the most inputs (k) of a matrix whose products are summed in int32 with int8 activations:
#: k * 128 * 127 (int8 weights reach -128 in a file) stays below 2**31
DOT_MAX_INPUTS = 131072


def quantize_activations(x):
    """float32 [..., K] -> (int8 [..., K], float32 scale [...]): each vector over the last axis
    quantised as the int8 x int8 kernels do (module doc)."""
    x = np.asarray(x, np.float32)
    bits = x.view(np.int32) & 0x7FFFFFFF                     # |x| as ordered integers; inf, NaN above
    top = bits.max(axis=-1, keepdims=True) if x.shape[-1] else np.zeros(x.shape[:-1] + (1,), np.int32)
    finite, zero = top < 0x7F800000, top == 0
    amax = top.view(np.float32)
    inv = np.where(finite & ~zero, 127.0 / np.where(zero, 1.0, amax.astype(np.float64)), 0.0)
    q = np.clip(np.rint(np.where(finite, x, 0).astype(np.float64) * inv), -QMAX, QMAX).astype(np.int8)
    scale = np.where(finite, amax / np.float32(QMAX), np.float32(np.nan)).astype(np.float32)
    return q, scale[..., 0]
