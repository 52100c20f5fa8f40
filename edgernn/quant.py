"""Weights-only int8 quantisation: symmetric, one float32 scale per output unit.

    scale[j] = max_k |W[k, j]| / 127        (1.0 for an all-zero column)
    q[k, j]  = round(W[k, j] / scale[j])    in [-127, 127]
    W ~ q * scale                           |error| <= scale[j] / 2 per weight

Activations stay float32: a kernel computes ``scale[j] * sum_k q[k, j] * x[k] + b[j]``, so a
step reads a quarter of the weight bytes of float32. The matrices quantised here are the
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
