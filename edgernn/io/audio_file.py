"""Audio files of any format libsndfile reads (FLAC, OGG/Vorbis, Opus, AIFF, ...), told apart by
their content, not their name.

:func:`read_audio` reads a WAV with the standard library (:func:`.wav.read_wav`: nothing to
install) and anything else through the ``soundfile`` package (libsndfile), when installed: a
``.wav`` that holds FLAC, or a ``.flac`` that holds a WAV, is read as what it is. A WAV the
standard library cannot decode (float, A-law, ADPCM) is tried with soundfile too. Both return
an :class:`~.wav.Audio`: float32 samples [N] in [-1, 1) (the channels averaged), the rate in Hz.

A file that stops decoding part way (a truncated download, a corrupt block: libsndfile's "lost
sync") is read up to there, ``Audio.truncated`` saying so; one that decodes nothing is an
:class:`~edgernn.errors.AudioSourceError`.
"""
import os

import numpy as np

from ..errors import AudioSourceError
from .extras import AUDIO_EXTRA, import_extra
from .wav import Audio, read_wav

#: the first 4 bytes of a RIFF container, the WAV's (a WAV with a broken header too)
RIFF_MAGIC = (b"RIFF", b"RIFX", b"RF64")
#: the frames soundfile decodes per read: a truncated file keeps every whole block before the cut
READ_BLOCK = 4096


def looks_like_wav(head):
    """Whether a file's first bytes ``head`` open a RIFF container: a WAV, or a broken one
    (which :func:`.wav.read_wav` then explains)."""
    return head[:4] in RIFF_MAGIC


def read_audio(path):
    """The recording at ``path`` as :class:`~.wav.Audio` (see the module docstring)."""
    where = os.fspath(path)
    try:
        with open(where, "rb") as f:
            head = f.read(4)
    except OSError:
        return read_wav(where)        # it says what is wrong (no file, a directory) in its own words
    if looks_like_wav(head):
        try:
            return read_wav(where)
        except AudioSourceError:
            if not _have_soundfile():
                raise
            try:
                return read_soundfile(where)
            except AudioSourceError:
                pass
            raise                     # the standard library's reason (with its ffmpeg command)
    if not _have_soundfile():
        raise AudioSourceError(f"{where!r} is not a WAV file (it starts with {head!r}); FLAC, OGG, AIFF and the "
                               f"other formats libsndfile reads need the soundfile package: {AUDIO_EXTRA}")
    return read_soundfile(where)


def _soundfile():
    return import_extra("soundfile", "soundfile", "reading FLAC and the other non-WAV formats")


def _have_soundfile():
    try:
        _soundfile()
    except AudioSourceError:
        return False
    return True


def read_soundfile(path):
    """The recording at ``path`` through soundfile (libsndfile), as :class:`~.wav.Audio`: float32
    [N] in [-1, 1), channels averaged; read up to the first block that does not decode."""
    sf = _soundfile()
    where = os.fspath(path)
    try:
        f = sf.SoundFile(where)
    except (RuntimeError, TypeError, ValueError) as e:     # LibsndfileError is a RuntimeError
        raise AudioSourceError(f"{where!r} is not an audio file libsndfile can read ({_reason(e)}); convert it, "
                               "e.g. `ffmpeg -i IN -acodec pcm_s16le OUT.wav`") from None
    blocks, truncated = [], False
    with f:
        rate, channels, declared = f.samplerate, f.channels, f.frames
        while True:
            try:
                block = f.read(READ_BLOCK, dtype="float64", always_2d=True)
            except (RuntimeError, ValueError):
                truncated = True
                break
            if not len(block):
                break
            blocks.append(block)
    if channels < 1 or rate < 1:
        raise AudioSourceError(f"{where!r} declares {channels} channel(s) at {rate} Hz; the header is corrupt")
    frames = np.concatenate(blocks) if blocks else np.zeros((0, channels))
    truncated = truncated or (0 < declared < 2 ** 62 and len(frames) < declared)   # unknown: 2**63 - 1
    if truncated and not len(frames):
        raise AudioSourceError(f"{where!r}: no audio could be decoded (a corrupt or truncated file)")
    return Audio(frames.mean(axis=1).astype(np.float32), int(rate), int(channels), truncated)


def _reason(error):
    """libsndfile's message without soundfile's "Error opening '<path>': " prefix."""
    text = str(error)
    return text.split("': ", 1)[1] if text.startswith("Error opening '") and "': " in text else text
