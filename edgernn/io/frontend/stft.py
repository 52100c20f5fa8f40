"""The STFT of one window: windowed, zero-padded centred to n_fft, transformed.

For a window x float32 [W] (W = win_length, the samples :class:`~edgernn.io.framing.Framer`
gives a step) and the periodic analysis window w float64 [W] (:mod:`.windows`):

    frame[L + n] = x[n] w[n]  (n < W),  frame = 0 elsewhere,  L = (n_fft - W) // 2
    X = rfft(frame)                                  K = n_fft // 2 + 1 bins (:mod:`.fourier`)

and the spectrum values, float64:

- ``magnitude``: |X[k]|                                   [K]
- ``power``:     |X[k]|^2                                 [K]
- ``complex``:   Re X and Im X, in one of two layouts     [2K]
  ``stacked`` (the default): Re X[0..K-1], then Im X[0..K-1]  (``np.concatenate([X.real, X.imag])``,
  a [2, K] input: real and imaginary channels); ``interleaved``: Re X[0], Im X[0], Re X[1], ...
  (``torch.view_as_real(X)``, a [K, 2] input).

Streaming equals offline. With the Framer's convention (the first window is W - H zeros
and the first H samples), window i of a signal s covers s[i H - (W - H) : i H + H], so
streamed spectrum i equals column i of

    librosa.stft(np.concatenate([np.zeros(P), s]), n_fft=n_fft, hop_length=H, win_length=W,
                 window=name, center=False),     P = (n_fft - W) // 2 + W - H

(scipy.signal.stft differs only in scaling: it divides by the window's sum). For librosa's
default ``center=True`` (pad_mode='constant' since librosa 0.10: n_fft // 2 zeros before the
signal), streamed spectrum i equals center=True frame i - (P - n_fft // 2) / H when that is a
whole number: with W = n_fft and H = n_fft / 2, P = n_fft / 2 and the frames are the same
(center=True pads the end too, so its last frames have no streamed counterpart until the
stream ends). torchaudio's default pad_mode='reflect' needs samples that have not arrived
yet: no live stream can equal it at the start.
"""
import numpy as np

from ...config import jit_inline
from ...errors import SignalArgumentError
from .fourier import real_fft

#: spectrum kinds, as the kernel's ``kind`` argument takes them
MAGNITUDE, POWER, COMPLEX = 0, 1, 2
SPECTRA = {"magnitude": MAGNITUDE, "power": POWER, "complex": COMPLEX}
LAYOUTS = ("stacked", "interleaved")


def complex_positions(layout, bins):
    """(im_start, stride) of a complex layout: Re X[k] at k * stride, Im X[k] at im_start + k * stride."""
    if layout == "stacked":
        return bins, 1
    if layout == "interleaved":
        return 1, 2
    raise SignalArgumentError(f"unknown complex layout {layout!r}; use one of {', '.join(LAYOUTS)}")


@jit_inline
def analyse(x, window, offset, tables, frame, re, im, work_re, work_im):
    """The spectrum of one window: x float32 [W], window float64 [W], offset L -> re, im float64
    [K]; frame float64 [n_fft] and work_re/work_im float64 [n_fft // 2 + 1] are scratch."""
    frame[:] = 0.0
    for n in range(x.shape[0]):
        frame[offset + n] = x[n] * window[n]
    real_fft(frame, tables, re, im, work_re, work_im)


@jit_inline
def spectrum_values(re, im, kind, im_start, stride, out):
    """The values of spectrum ``kind`` (MAGNITUDE, POWER, COMPLEX) in out float64 [>= K or 2K];
    returns how many were written."""
    bins = re.shape[0]
    if kind == COMPLEX:
        for k in range(bins):
            out[k * stride] = re[k]
            out[im_start + k * stride] = im[k]
        return 2 * bins
    for k in range(bins):
        p = re[k] * re[k] + im[k] * im[k]
        out[k] = p if kind == POWER else np.sqrt(p)
    return bins
