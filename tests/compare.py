"""Helpers the oracle tests share."""
import numpy as np


def max_err(a, b):
    """max |a - b| in float64; the shapes must match."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a.astype(np.float64) - b)))
