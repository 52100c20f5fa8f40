"""MFCC: the orthonormal DCT-II of the log-mel features, the first n_mfcc coefficients.

    c[q] = s_q sum_{m=0}^{M-1} x[m] cos(pi q (2m + 1) / (2M)),   q < n_mfcc <= M = n_mels
    s_0 = sqrt(1 / M),  s_q = sqrt(2 / M) (q > 0)

``scipy.fft.dct(x, type=2, norm='ortho')[:n_mfcc]``, as ``librosa.feature.mfcc(S=log_mel,
n_mfcc=..., dct_type=2, norm='ortho')`` and ``torchaudio.transforms.MFCC(norm='ortho')``
(``torchaudio.functional.create_dct``) compute it. Note that both libraries' defaults take
the log with top_db=80, which cannot stream (:mod:`.logscale`): the streamed MFCC equals
them on log-mel features made without it. The matrix D float64 [n_mfcc, n_mels] is built
once; a frame costs n_mfcc x n_mels multiply-adds.
"""
import numpy as np

from ...config import jit_inline
from ...errors import SignalArgumentError


def dct_matrix(n_mfcc, n_mels):
    """D float64 [n_mfcc, n_mels], the first rows of the orthonormal DCT-II (module docstring)."""
    if isinstance(n_mfcc, bool) or not isinstance(n_mfcc, (int, np.integer)) or not 1 <= n_mfcc <= n_mels:
        raise SignalArgumentError(f"n_mfcc must be between 1 and n_mels ({n_mels}), got {n_mfcc!r}: an MFCC has at "
                                  "most as many coefficients as mel bands")
    q = np.arange(n_mfcc)[:, None]
    m = np.arange(n_mels)[None, :]
    d = np.cos(np.pi * q * (2 * m + 1) / (2 * n_mels)) * np.sqrt(2.0 / n_mels)
    d[0] /= np.sqrt(2.0)
    return d


@jit_inline
def apply_dct(values, size, matrix, out):
    """out[q] = sum_m matrix[q, m] values[m] (m < size = matrix.shape[1]); returns n_mfcc."""
    for q in range(matrix.shape[0]):
        total = 0.0
        for m in range(size):
            total += matrix[q, m] * values[m]
        out[q] = total
    return matrix.shape[0]
