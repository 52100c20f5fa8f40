"""Streaming inverse STFT by overlap-add: a model's spectrum or mask back to audio, H samples a step.

What the model's output is taken to be (``synthesis``, one output of one frame, float32):

- ``mask``:         g [K] real gains on the analysed window's spectrum:   Y[k] = g[k] X[k]
- ``complex_mask``: M [2K] complex gains (the ``complex_layout`` of :mod:`.stft`): Y[k] = M[k] X[k]
- ``spectrum``:     Y [2K] the output spectrum itself, in the same layout

(K = n_fft // 2 + 1; X the STFT of the window that step analysed, :mod:`.stft`). Then, with w
the analysis window zero-padded centred to n_fft (librosa's ``ifft_window``):

    y_t = irfft(Y_t, n_fft) * w                     (:mod:`.fourier`)
    acc[t H + n] += y_t[n],  wss[t H + n] += w[n]^2     n < n_fft
    sample j = acc[j] / wss[j]  (acc[j] itself where wss[j] <= tiny, as librosa leaves it)

After frame t no later frame reaches samples [t H, t H + H): :func:`synthesize_frame` emits
them, H finished samples per step, and shifts its two accumulators [n_fft] by H;
:meth:`OverlapAdd.finish` gives the last n_fft - H. The T steps' samples followed by finish()
equal ``librosa.istft(Y, hop_length=H, win_length=W, n_fft=n_fft, window=name, center=False)``
(n_fft + (T - 1) H samples); ``scipy.signal.istft`` (boundary=False) is the same sum, its
window scaled by scipy's convention.

Latency: the streamed STFT frames are those of [zeros(P), s] (:mod:`.stft`, P = (n_fft - W)
// 2 + W - H), so an identity mask gives back that signal: after each step, the output has
reached input sample j - P when the input has reached sample j. P = n_fft - H when W = n_fft
(384 samples, 24 ms, for n_fft 512 and hop 128 at 16 kHz).

The window must overlap-add to a sum that is nowhere 0 (scipy's NOLA condition, checked by
:func:`check_overlap`): a periodic Hann window with H = W is 0 at each frame's first sample,
which no frame then covers.
"""
import numpy as np

from ...config import jit, jit_inline
from ...errors import SignalArgumentError
from .fourier import inverse_real_fft

#: output kinds, as the kernel's ``mode`` takes them
MASK, COMPLEX_MASK, SPECTRUM = 0, 1, 2
SYNTHESES = {"mask": MASK, "complex_mask": COMPLEX_MASK, "spectrum": SPECTRUM}
TINY = float(np.finfo(np.float64).tiny)
NOLA_TOLERANCE = 1e-10                          # scipy.signal.check_NOLA's default


def check_overlap(window, hop, name):
    """SignalArgumentError when the squared window, overlap-added at ``hop``, is <= 1e-10
    somewhere (the samples there could not be divided back out)."""
    n = len(window)
    sums = np.zeros(hop)
    for start in range(0, n, hop):
        part = window[start:start + hop] ** 2
        sums[:len(part)] += part
    if sums.min() <= NOLA_TOLERANCE:
        where = int(sums.argmin())
        raise SignalArgumentError(f"the {name} window overlap-added every {hop} samples is 0 at offset {where} of each "
                                  f"hop: those samples cannot be resynthesised; use a smaller --hop (e.g. half the "
                                  "window) or another --window-type")


def output_size(mode, bins):
    """The values per step a model's output must hold for ``mode``: K for a mask, else 2K."""
    return bins if mode == MASK else 2 * bins


@jit_inline
def output_spectrum(output, mode, im_start, stride, x_re, x_im, y_re, y_im):
    """Y (y_re, y_im float64 [K]) from the model's ``output`` float32 and the analysed X."""
    for k in range(y_re.shape[0]):
        if mode == MASK:
            y_re[k] = output[k] * x_re[k]
            y_im[k] = output[k] * x_im[k]
        else:
            a = output[k * stride]
            b = output[im_start + k * stride]
            if mode == SPECTRUM:
                y_re[k] = a
                y_im[k] = b
            else:
                y_re[k] = a * x_re[k] - b * x_im[k]
                y_im[k] = a * x_im[k] + b * x_re[k]


@jit
def synthesize_frame(output, synthesis, x_re, x_im, tables, window, scratch, acc, wss, out):
    """One step of overlap-add (module docstring): ``synthesis`` = (mode, im_start, stride);
    x_re, x_im float64 [K] the analysed spectrum; ``window`` float64 [n_fft] padded;
    ``scratch`` = (y_re, y_im float64 [K], frame float64 [n_fft], work_re, work_im float64
    [n_fft // 2 + 1]); acc, wss float64 [n_fft] the running sums; out float32 [H] receives the
    finished samples."""
    mode, im_start, stride = synthesis
    y_re, y_im, frame, work_re, work_im = scratch
    output_spectrum(output, mode, im_start, stride, x_re, x_im, y_re, y_im)
    inverse_real_fft(y_re, y_im, tables, frame, work_re, work_im)
    n = frame.shape[0]
    hop = out.shape[0]
    for j in range(n):
        acc[j] += frame[j] * window[j]
        wss[j] += window[j] * window[j]
    for j in range(hop):
        out[j] = acc[j] / wss[j] if wss[j] > TINY else acc[j]
    for j in range(n - hop):
        acc[j] = acc[j + hop]
        wss[j] = wss[j + hop]
    for j in range(n - hop, n):
        acc[j] = 0.0
        wss[j] = 0.0


class OverlapAdd:
    """The synthesis state of one stream: the accumulators and scratch, all made here.

    ``push(output, x_re, x_im)`` -> float32 [H] (its own buffer, overwritten by the next push);
    ``finish()`` -> float32 [n_fft - H], the samples still in the accumulators; ``reset()``."""

    def __init__(self, mode, complex_positions, tables, window, hop):
        if mode not in SYNTHESES:
            raise SignalArgumentError(f"unknown synthesis {mode!r}; use one of {', '.join(SYNTHESES)}")
        self.mode = SYNTHESES[mode]
        self.tables, self.window, self.hop = tables, window, hop
        n, bins = len(window), tables.bins
        self.synthesis = (self.mode,) + tuple(complex_positions)
        self.scratch = (np.zeros(bins), np.zeros(bins), np.zeros(n), np.zeros(tables.scratch_length),
                        np.zeros(tables.scratch_length))
        self.acc, self.wss = np.zeros(n), np.zeros(n)
        self.out = np.zeros(hop, np.float32)

    def reset(self):
        self.acc[:] = 0.0
        self.wss[:] = 0.0

    def push(self, output, x_re, x_im):
        synthesize_frame(output, self.synthesis, x_re, x_im, self.tables.arrays, self.window, self.scratch,
                         self.acc, self.wss, self.out)
        return self.out

    def finish(self):
        rest = len(self.window) - self.hop
        acc, wss = self.acc[:rest], self.wss[:rest]
        tail = np.where(wss > TINY, acc / np.where(wss > TINY, wss, 1.0), acc).astype(np.float32)
        self.reset()
        return tail
