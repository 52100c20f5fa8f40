"""The front end's Numba kernels against NumPy alone (no librosa), so they also run where
only numpy is installed, e.g. on emulated aarch64 (devices/aarch64-qemu.sh); the front end's
conventions against librosa and scipy are tests/test_frontend.py's."""
from pathlib import Path

import numpy as np
import pytest

from edgernn.io.frontend import FrontEnd
from edgernn.io.frontend.mel import MelFilterbank
from edgernn.io.wav import read_wav

RATE = 16000
AUDIO = Path(__file__).parent / "fixtures" / "audio" / "arctic_a0007.wav"


@pytest.mark.parametrize("n", [2, 8, 256, 512, 1024, 5, 320, 400, 401])
def test_fft_kernel_equals_numpy_rfft_and_irfft(n):
    """A rectangular window of n_fft samples makes the complex features the plain rfft of the
    window, and a hop of n_fft the synthesis the plain irfft: both kernels (radix-2 and the DFT
    basis) against numpy; irfft's handling of the imaginary parts of bins 0 and n/2 included."""
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(np.float32)
    fe = FrontEnd.from_options(RATE, n, n, features="complex", window="rectangular", synthesis="spectrum")
    k = n // 2 + 1
    got = fe.process(x)
    want = np.fft.rfft(x.astype(np.float64))
    assert np.abs(got[:k] + 1j * got[k:] - want).max() <= 1e-6 * np.abs(want).max()
    spectrum = (rng.standard_normal(k) + 1j * rng.standard_normal(k)).astype(np.complex64)
    samples = fe.synthesize(np.concatenate([spectrum.real, spectrum.imag]))
    assert np.abs(samples - np.fft.irfft(spectrum.astype(np.complex128), n)).max() <= 1e-6


@pytest.mark.parametrize("n_fft,win", [(512, 400), (400, 400)])
def test_logmel_and_mfcc_kernel_equal_numpy_on_real_audio(n_fft, win):
    """One window of speech through the whole kernel (window, FFT, power, mel, ln, DCT-II)
    against the same equations in NumPy (np.fft, the Hann window, the filterbank's weights,
    an orthonormal DCT-II), float64, to 1e-5 of the frame's largest value."""
    x = read_wav(AUDIO).samples[20000:20000 + win]
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)                # periodic
    framed = np.zeros(n_fft)
    framed[(n_fft - win) // 2:(n_fft - win) // 2 + win] = x * hann
    power = np.abs(np.fft.rfft(framed)) ** 2
    mel = MelFilterbank(RATE, n_fft, 40).weights @ power
    logmel = np.log(mel + 1e-6)
    fe = FrontEnd.from_options(RATE, win, 160, features="logmel", n_fft=n_fft, n_mels=40, log="ln", log_offset=1e-6)
    got = fe.process(x)
    assert np.abs(got - logmel).max() <= 1e-5 * np.abs(logmel).max()
    n = np.arange(40)
    dct = np.sqrt(2 / 40) * np.cos(np.pi * (n[None, :] + 0.5) * np.arange(13)[:, None] / 40)
    dct[0] /= np.sqrt(2)
    fe = FrontEnd.from_options(RATE, win, 160, features="mfcc", n_fft=n_fft, n_mels=40, n_mfcc=13, log="ln",
                               log_offset=1e-6)
    want = dct @ logmel
    assert np.abs(fe.process(x) - want).max() <= 1e-5 * np.abs(want).max()
