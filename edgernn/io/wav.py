"""WAV files as float32 samples, through the standard library's ``wave`` module.

:func:`read_wav` returns (samples, rate): samples float32 [N] in [-1, 1), the channels averaged
when there are several (a model listening to one signal gets their mix; the caller is told
through ``channels``). PCM with 8-bit (unsigned), 16-, 24- or 32-bit (signed little-endian)
samples; other encodings (float, A-law, compressed) are refused with what to do. A file
whose data chunk is cut short is read up to its last whole frame, and ``truncated`` says so.
"""
import os
import struct
import wave
from dataclasses import dataclass

import numpy as np

from ..errors import AudioSourceError

#: bytes per sample -> (NumPy dtype of the stored integers, the value that is 1.0)
PCM = {1: ("u1", 128.0), 2: ("<i2", 32768.0), 4: ("<i4", 2147483648.0)}


@dataclass
class Audio:
    """A decoded recording: ``samples`` float32 [N] (channels averaged), ``rate`` in Hz,
    the file's channel count, and whether its data ended inside a frame."""
    samples: np.ndarray
    rate: int
    channels: int
    truncated: bool = False

    @property
    def seconds(self):
        return len(self.samples) / self.rate


def read_wav(path):
    """The recording at ``path`` as :class:`Audio`; AudioSourceError when it is no PCM WAV."""
    where = os.fspath(path)
    try:
        with wave.open(where, "rb") as w:
            channels, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            data = w.readframes(n)
    except FileNotFoundError:
        raise AudioSourceError(f"no audio file at {where!r}") from None
    except IsADirectoryError:
        raise AudioSourceError(f"{where!r} is a directory, not an audio file") from None
    except (wave.Error, EOFError, RuntimeError, ValueError, OverflowError, struct.error) as e:
        # the standard library's reader raises RuntimeError (a chunk that seeks past the file)
        # or struct.error (a header cut short) on corrupt files, besides wave.Error
        why = str(e) or f"{type(e).__name__}: a chunk size or header field is corrupt"
        raise AudioSourceError(f"{where!r} is not a PCM WAV file edgernn can read ({why}); convert it, e.g. "
                               "`ffmpeg -i IN -acodec pcm_s16le OUT.wav`") from None
    if channels < 1 or rate < 1:
        raise AudioSourceError(f"{where!r} declares {channels} channel(s) at {rate} Hz; the header is corrupt")
    frame_bytes = channels * width
    whole = len(data) // frame_bytes
    truncated = whole < n or len(data) % frame_bytes != 0
    data = data[:whole * frame_bytes]
    if width == 3:                                   # 24-bit: widen to 32 by a zero low byte
        raw = np.frombuffer(data, np.uint8).reshape(-1, 3)
        wide = np.zeros((len(raw), 4), np.uint8)
        wide[:, 1:] = raw
        ints, full = wide.view("<i4").ravel(), 2147483648.0
    elif width in PCM:
        dtype, full = PCM[width]
        ints = np.frombuffer(data, dtype)
    else:
        raise AudioSourceError(f"{where!r} has {8 * width}-bit samples; edgernn reads 8-, 16-, 24- and 32-bit PCM")
    x = ints.astype(np.float64)
    if width == 1:
        x -= 128.0
    samples = (x / full).reshape(-1, channels).mean(axis=1).astype(np.float32)
    return Audio(samples, rate, channels, truncated)
