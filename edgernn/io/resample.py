"""Sample-rate conversion with soxr (libsoxr, "HQ" quality), for a source whose rate is not the
model's.

- :func:`resample`: a whole recording at once (a file): float32 [N] at ``rate_in`` Hz ->
  float32 [round(N rate_out / rate_in)] at ``rate_out`` Hz;
- :class:`ResampledSource`: a live source (an iterable of float32 [n] blocks at ``rate_in``),
  resampled block by block through ``soxr.ResampleStream`` as the blocks arrive; its blocks are
  float32 [m] at ``rate_out``, the filter's tail given when the source ends. soxr's streaming
  form gives the same samples as its one-shot form (tests/test_sources.py checks it on speech
  in odd block sizes).

Both keep soxr's delay compensation: sample k of the output is at time k / rate_out, as sample
k of the input is at k / rate_in. Without soxr installed, :func:`resampler` raises the
:class:`~edgernn.errors.AudioSourceError` a rate mismatch gave before resampling was built,
with the install command added.
"""
import numpy as np

from ..errors import AudioSourceError
from .extras import AUDIO_EXTRA, import_extra

#: soxr's quality recipe: "HQ" (20-bit precision, 91% of the band kept), its default
QUALITY = "HQ"


def resampler(source_name, rate_in, rate_out):
    """The soxr module, for resampling ``source_name`` from ``rate_in`` to ``rate_out`` Hz; without
    it, an AudioSourceError that says how to install it (or to convert the source)."""
    try:
        return import_extra("soxr", "soxr", "resampling")
    except AudioSourceError:
        raise AudioSourceError(f"{source_name} is sampled at {rate_in:g} Hz but the model takes {rate_out:g} Hz; "
                               f"resampling needs soxr: {AUDIO_EXTRA} (or convert it, e.g. "
                               f"`sox IN -r {rate_out:g} OUT.wav`)") from None


def describe(rate_in, rate_out):
    """The message a resampled source prints: 'resampling 48000 Hz -> 16000 Hz (soxr HQ)'."""
    return f"resampling {rate_in:g} Hz -> {rate_out:g} Hz (soxr {QUALITY})"


def resample(samples, rate_in, rate_out, source_name="the signal"):
    """A whole signal, float32 [N] at ``rate_in`` Hz, at ``rate_out`` Hz: float32 [M]."""
    soxr = resampler(source_name, rate_in, rate_out)
    x = np.ascontiguousarray(samples, np.float32)
    return np.asarray(soxr.resample(x, float(rate_in), float(rate_out), quality=QUALITY), np.float32)


class ResampledSource:
    """A live source's blocks (float32 [n] at ``rate_in`` Hz) resampled as they arrive: an
    iterable of float32 [m] blocks at ``rate_out`` Hz (m varies; a block may be empty and is
    then not given). ``samples`` counts the samples given so far; :meth:`report` passes on the
    source's own report (``source`` may have one: a microphone's overruns, a PCM stream's
    dropped bytes)."""

    def __init__(self, source, rate_in, rate_out, source_name="the signal"):
        self._soxr = resampler(source_name, rate_in, rate_out)
        self.source, self.rate_in, self.rate_out = source, float(rate_in), float(rate_out)
        self.samples = 0

    def __iter__(self):
        stream = self._soxr.ResampleStream(self.rate_in, self.rate_out, 1, dtype="float32", quality=QUALITY)
        for block in self.source:
            yield from self._counted(stream.resample_chunk(np.ascontiguousarray(block, np.float32)))
        yield from self._counted(stream.resample_chunk(np.zeros(0, np.float32), last=True))

    def _counted(self, block):
        if len(block):
            self.samples += len(block)
            yield block

    def report(self, out):
        if hasattr(self.source, "report"):
            self.source.report(out)
