"""The mel filterbank: triangular filters over the STFT bins, built in numpy, applied in Numba.

    mel[m] = sum_k F[m, k] S[k],     m < n_mels, k < K = n_fft // 2 + 1

S the power (|X|^2, the default, librosa's and torchaudio's ``power=2.0``) or magnitude
(``power=1.0``) spectrum of :mod:`.stft`. F float64 [n_mels, K] is ``librosa.filters.mel``:
n_mels + 2 edge frequencies f_0 .. f_{n_mels+1} evenly spaced on the mel scale from fmin to
fmax, bin k at frequency k rate / n_fft, filter m rising from f_m to f_{m+1} and falling to
f_{m+2}:

    F[m, k] = max(0, min((f(k) - f_m) / (f_{m+1} - f_m), (f_{m+2} - f(k)) / (f_{m+2} - f_{m+1})))

times 2 / (f_{m+2} - f_m) with ``norm='slaney'`` (each filter's area constant), nothing with
``norm=None``. Mel scales (:func:`hz_to_mel`):

- ``htk``:    mel = 2595 log10(1 + f / 700)
- ``slaney``: mel = 3 f / 200 below 1 kHz, 15 + 27 ln(f / 1000) / ln(6.4) above (Slaney's
  Auditory Toolbox)

librosa's defaults are slaney/slaney (``htk=False, norm='slaney'``); torchaudio's
``MelSpectrogram`` defaults are ``mel_scale='htk', norm=None`` and its filters are the same
(it spaces the bins as linspace(0, rate // 2, K), equal for an even rate). Kernel arguments
(:attr:`MelFilterbank.arrays`): F and, per filter, the first and one-past-last bin it covers,
so a frame costs the triangles' bins (~2K multiply-adds), not n_mels x K.
"""
import numpy as np

from ...config import jit_inline
from ...errors import SignalArgumentError
from ...limits import check_bytes

SCALES = ("slaney", "htk")
NORMS = ("slaney", "none")


def hz_to_mel(hz, scale):
    hz = np.asarray(hz, np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    linear = 3.0 * hz / 200.0
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1000.0) / 1000.0) / (np.log(6.4) / 27.0), linear)


def mel_to_hz(mel, scale):
    mel = np.asarray(mel, np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    return np.where(mel >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (mel - 15.0)), 200.0 * mel / 3.0)


def mel_weights(rate, n_fft, n_mels, fmin, fmax, scale, norm):
    """F float64 [n_mels, n_fft // 2 + 1] (module docstring); checks nothing."""
    freqs = np.arange(n_fft // 2 + 1) * rate / n_fft
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin, scale), hz_to_mel(fmax, scale), n_mels + 2), scale)
    widths = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights


class MelFilterbank:
    """A checked filterbank: ``weights`` float64 [n_mels, K]; ``arrays`` = (weights, first,
    stop), first/stop int64 [n_mels] the bins each filter covers. SignalArgumentError, saying
    what to change, for a setting that cannot work (an unknown scale or norm, fmin/fmax outside
    [0, rate/2], a filter that falls between two bins and would always give 0)."""

    def __init__(self, rate, n_fft, n_mels, fmin=0.0, fmax=None, scale="slaney", norm="slaney"):
        if scale not in SCALES:
            raise SignalArgumentError(f"unknown mel scale {scale!r}; use one of {', '.join(SCALES)}")
        if norm not in NORMS:
            raise SignalArgumentError(f"unknown mel norm {norm!r}; use one of {', '.join(NORMS)}")
        nyquist = rate / 2
        fmax = nyquist if fmax is None else float(fmax)
        if not 0 <= fmin < fmax:
            raise SignalArgumentError(f"the mel filters need 0 <= fmin < fmax, got fmin {fmin:g} Hz, fmax {fmax:g} Hz")
        if fmax > nyquist:
            raise SignalArgumentError(f"fmax {fmax:g} Hz is above the Nyquist frequency {nyquist:g} Hz of a {rate:g} "
                                      f"Hz signal: pass --fmax {nyquist:g} or less (or leave it out)")
        if isinstance(n_mels, bool) or not isinstance(n_mels, (int, np.integer)) or n_mels < 1:
            raise SignalArgumentError(f"n_mels must be a positive whole number, got {n_mels!r}")
        self.n_mels, self.fmin, self.fmax = int(n_mels), float(fmin), fmax
        check_bytes(8 * (self.n_mels + 2) * (n_fft // 2 + 1), f"a filterbank of {self.n_mels} mel filters")
        self.weights = mel_weights(rate, n_fft, self.n_mels, self.fmin, fmax, scale, norm)
        empty = np.flatnonzero(self.weights.max(axis=1) <= 0)
        if len(empty):
            most = largest_without_empty_filters(rate, n_fft, self.n_mels, self.fmin, fmax, scale)
            raise SignalArgumentError(
                f"{self.n_mels} mel filters are too many for n_fft {n_fft} at {rate:g} Hz between {self.fmin:g} and "
                f"{fmax:g} Hz: filter(s) {', '.join(map(str, empty[:5]))} fall between two FFT bins and would always "
                f"be 0; use --n-mels {most} or fewer, or a larger --n-fft")
        covered = self.weights > 0
        self.first = covered.argmax(axis=1).astype(np.int64)
        self.stop = (covered.shape[1] - covered[:, ::-1].argmax(axis=1)).astype(np.int64)
        self.arrays = (self.weights, self.first, self.stop)


def largest_without_empty_filters(rate, n_fft, n_mels, fmin, fmax, scale):
    """The largest filter count below ``n_mels`` whose filters all cover a bin (bisection: more
    filters only make them narrower)."""
    low, high = 0, n_mels                    # low works (0 filters), high does not
    while high - low > 1:
        mid = (low + high) // 2
        if mel_weights(rate, n_fft, mid, fmin, fmax, scale, "none").max(axis=1).min() > 0:
            low = mid
        else:
            high = mid
    return low


@jit_inline
def apply_filterbank(spectrum, weights, first, stop, out):
    """out[m] = sum_k weights[m, k] spectrum[k] over the bins filter m covers; spectrum float64
    [K], out float64 [>= n_mels]; returns n_mels."""
    for m in range(weights.shape[0]):
        total = 0.0
        for k in range(first[m], stop[m]):
            total += weights[m, k] * spectrum[k]
        out[m] = total
    return weights.shape[0]
