"""Raw PCM samples on a byte stream (``arecord -t raw ... | edgernn stream MODEL - --pcm s16le``).

:class:`PcmSource` reads little-endian interleaved frames of ``channels`` samples in one of
:data:`ENCODINGS` as they arrive (whatever the pipe holds, up to :data:`READ_BYTES` at a time)
and yields float32 blocks [n] in [-1, 1) (integers scaled by their full scale, as
:func:`.wav.read_wav` scales a WAV's; the channels averaged). A stream that ends inside a frame
(a writer killed mid-sample) loses those bytes, and :meth:`PcmSource.report` says how many. A
float sample that is not finite (a NaN would stay in a recurrent state for good) is replaced
by 0 and counted. Raw PCM has no header: the rate is the caller's (``--rate``, or
``--source-rate`` when it differs from the model's).
"""
import numpy as np

from ..errors import AudioSourceError

#: encoding name -> (NumPy dtype of a stored sample, the value that is 1.0)
ENCODINGS = {"s16le": ("<i2", 32768.0), "s32le": ("<i4", 2147483648.0), "f32le": ("<f4", 1.0)}
#: the most bytes read in one call (a pipe gives what it holds, often less)
READ_BYTES = 16384


class PcmSource:
    """Float32 blocks [n] from raw PCM on ``stream`` (a binary file object; ``read1`` is used
    when it has one, so each block is what has arrived). ``samples`` counts the samples given;
    ``dropped_bytes`` the bytes of a last, partial frame; ``non_finite`` the float samples
    replaced by 0."""

    def __init__(self, stream, encoding, channels=1, name="stdin"):
        if encoding not in ENCODINGS:
            raise AudioSourceError(f"PCM encoding {encoding!r}: one of {', '.join(ENCODINGS)}")
        if channels < 1:
            raise AudioSourceError(f"PCM channels must be 1 or more, got {channels}")
        self.stream, self.encoding, self.channels, self.name = stream, encoding, int(channels), name
        dtype, self.full_scale = ENCODINGS[encoding]
        self.dtype = np.dtype(dtype)
        self.frame_bytes = self.dtype.itemsize * self.channels
        self.samples = self.dropped_bytes = self.non_finite = 0

    def __iter__(self):
        read = self.stream.read1 if hasattr(self.stream, "read1") else self.stream.read
        pending = b""
        while True:
            chunk = read(READ_BYTES)
            if not chunk:
                break
            pending += chunk
            whole = len(pending) // self.frame_bytes * self.frame_bytes
            if whole:
                block, pending = self.decode(pending[:whole]), pending[whole:]
                self.samples += len(block)
                yield block
        self.dropped_bytes = len(pending)

    def decode(self, data):
        """Whole frames of raw bytes -> float32 [frames]."""
        x = np.frombuffer(data, self.dtype).astype(np.float64) / self.full_scale
        if self.dtype.kind == "f":
            bad = ~np.isfinite(x)
            if bad.any():
                self.non_finite += int(bad.sum())
                x[bad] = 0.0
        return x.reshape(-1, self.channels).mean(axis=1).astype(np.float32)

    def report(self, out):
        """Say what was lost: a partial last frame, non-finite samples."""
        if self.dropped_bytes:
            print(f"edgernn: {self.name}: the PCM stream ended inside a frame ({self.dropped_bytes} of its "
                  f"{self.frame_bytes} bytes); that partial frame was dropped", file=out)
        if self.non_finite:
            print(f"edgernn: {self.name}: {self.non_finite} PCM sample(s) were not finite numbers and were "
                  "replaced by 0", file=out)
