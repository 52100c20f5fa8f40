"""Analysis and synthesis windows: periodic cosine sums, zero-padded centred to n_fft.

    w[n] = sum_k (-1)^k a_k cos(2 pi k n / L),   n = 0 .. L - 1   (L = win_length)

periodic (the DFT-even form: ``scipy.signal.get_window(name, L)``, ``torch.hann_window(L)``,
librosa's default), with the coefficients a_k of :data:`COSINE_SUMS`:

- ``hann``:        a = (0.5, 0.5)                 librosa/torchaudio/scipy's default
- ``hamming``:     a = (0.54, 0.46)               torch.hamming_window's defaults
- ``blackman``:    a = (0.42, 0.5, 0.08)
- ``rectangular``: a = (1,)                       scipy's ``boxcar``: the plain DFT of the frame

A window shorter than the FFT sits in its middle, where ``librosa.util.pad_center`` places
it: ``(n_fft - L) // 2`` zeros before, the rest after (:func:`centre_offset`).
Arrays are float64: the kernels work in float64 (see :mod:`.fourier`).
"""
import numpy as np

from ...errors import SignalArgumentError

COSINE_SUMS = {"hann": (0.5, 0.5), "hamming": (0.54, 0.46), "blackman": (0.42, 0.5, 0.08), "rectangular": (1.0,)}


def periodic_window(name, length):
    """float64 [length]: the periodic window ``name`` (a key of :data:`COSINE_SUMS`)."""
    if name not in COSINE_SUMS:
        raise SignalArgumentError(f"unknown window {name!r}; use one of {', '.join(COSINE_SUMS)}")
    n = np.arange(length)
    return sum((-1) ** k * a * np.cos(2 * np.pi * k * n / length) for k, a in enumerate(COSINE_SUMS[name]))


def centre_offset(n_fft, length):
    """Where a window of ``length`` samples starts inside an ``n_fft``-point frame (librosa's
    ``pad_center``: (n_fft - length) // 2 zeros before it)."""
    return (n_fft - length) // 2


def padded_window(name, length, n_fft):
    """float64 [n_fft]: :func:`periodic_window` placed at :func:`centre_offset`, zeros elsewhere
    (``librosa.filters.get_window`` followed by ``librosa.util.pad_center``)."""
    out = np.zeros(n_fft)
    start = centre_offset(n_fft, length)
    out[start:start + length] = periodic_window(name, length)
    return out
