"""Streaming feature front ends: STFT, log-mel, MFCC, normalisation, and ISTFT by overlap-add.

One module a stage, each stating its equations, shapes and which librosa/torchaudio/scipy
call it equals (docs/front-ends.md gathers them):

- :mod:`.windows`: periodic analysis windows (hann, hamming, blackman, rectangular), zero-padded
  centred to n_fft as librosa pads them;
- :mod:`.fourier`: the real DFT and its inverse in Numba, an iterative radix-2 FFT for
  power-of-two sizes, a folded DFT basis for the others (400 = 25 ms at 16 kHz);
- :mod:`.stft`: one window's magnitude, power or complex spectrum, and which offline STFT the
  streamed frames equal;
- :mod:`.mel`: the mel filterbank (HTK or Slaney scale, Slaney or no area normalisation);
- :mod:`.logscale`: ln(x + eps), log10(x + eps), dB (top_db refused: it is not streamable);
- :mod:`.dct`: MFCC, the orthonormal DCT-II;
- :mod:`.normalize`: (x - mean) / std with the training statistics;
- :mod:`.istft`: the inverse STFT by overlap-add, H finished samples a step;
- :mod:`.frontend`: :class:`FrontEndSpec` (the parameters, ``to_dict``/``from_dict``) and
  :class:`FrontEnd` (built: ``process(window) -> features`` in one native call,
  ``synthesize(output) -> samples``);
- :mod:`.options`: the ``edgernn stream`` options (``--features``, ``--n-mels``, ...,
  ``--wav-out``).

The device runtime needs only numpy and numba here too: librosa and scipy are the tests' oracles.
"""
from .frontend import FEATURES, FrontEnd, FrontEndSpec
from .options import add_frontend_options, spec_from_args

__all__ = ["FEATURES", "FrontEnd", "FrontEndSpec", "add_frontend_options", "spec_from_args"]
