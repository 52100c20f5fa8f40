"""Weights-only int8 quantisation (edgernn.quant) against its defining equations."""
import numpy as np
import pytest

from edgernn.ir.graph import Value
from edgernn.quant import dequantize, quantize_columns


@pytest.mark.parametrize("shape", [(7, 5), (1, 3), (40, 12)])
def test_round_trip_error_is_at_most_half_a_step(shape):
    w = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    q, scale = quantize_columns(w)
    assert q.dtype == np.int8 and scale.dtype == np.float32 and scale.shape == (shape[1],)
    assert np.abs(q).max() <= 127
    assert np.all(np.abs(q.astype(np.float32) * scale - w) <= scale / 2 + 1e-7)
    # each column's largest magnitude maps to +-127 exactly
    assert np.all(np.abs(q).max(axis=0) == 127)


def test_zero_column_gets_unit_scale_and_zero_codes():
    w = np.zeros((4, 2), np.float32)
    w[:, 1] = [1, -2, 0.5, 0]
    q, scale = quantize_columns(w)
    assert scale[0] == 1.0 and not q[:, 0].any()


def test_dequantize_uses_the_scale_axis():
    q = np.array([[1, 2], [3, 4]], np.int8)
    cols = Value("w", dtype="int8", const=q, scale=np.array([10, 100], np.float32), scale_axis=-1)
    rows = Value("w", dtype="int8", const=q, scale=np.array([10, 100], np.float32), scale_axis=-2)
    np.testing.assert_array_equal(dequantize(cols), [[10, 200], [30, 400]])
    np.testing.assert_array_equal(dequantize(rows), [[10, 20], [300, 400]])
