"""A WAV sink: float samples written as they come, 16-bit PCM mono, through the standard library's ``wave``.

:class:`WavWriter` takes blocks of float samples in [-1, 1] (values beyond are clipped; a
value that is not finite is written as 0) and stores round(x * 32768) clipped to
[-32768, 32767] (the inverse of :func:`~edgernn.io.wav.read_wav`'s scaling, so a 16-bit input
passed through unchanged is written back bit for bit). ``skip`` drops the stream's first
samples (a synthesis' latency: the output then lines up with the input) and each write is
capped at the input samples there are. ``wave`` patches the header's lengths on close.
"""
import wave

import numpy as np

from ..errors import AudioSourceError


class WavWriter:
    """``write(samples, available)`` appends the stream's next samples; ``available`` (None: no
    cap) is how many input samples there are so far: stream position p is input sample p - skip,
    and positions past the input (a last hop's zero padding, a synthesis tail) are not written."""

    def __init__(self, path, rate, skip=0):
        try:
            self._file = wave.open(str(path), "wb")
        except OSError as e:
            raise AudioSourceError(f"cannot write the WAV file {str(path)!r}: {e.strerror or e}") from None
        self._file.setnchannels(1)
        self._file.setsampwidth(2)
        self._file.setframerate(int(round(rate)))
        self.skip = int(skip)
        self.position = 0                        # samples of the stream seen, skipped ones included
        self.written = 0

    def write(self, samples, available=None):
        x = np.asarray(samples, np.float64).reshape(-1)
        start = max(0, self.skip - self.position)
        self.position += len(x)
        x = x[start:]
        if available is not None:
            x = x[:max(0, available - self.written)]
        if len(x):
            ints = np.clip(np.round(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0) * 32768.0), -32768, 32767)
            self._file.writeframes(ints.astype("<i2").tobytes())
            self.written += len(x)

    def close(self):
        self._file.close()
