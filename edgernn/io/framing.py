"""Windows of a sample stream: W samples every H samples, as a streaming model takes them.

A sample is one value (audio) or one row of F values (a sensor line of F fields: a window is
then W rows, [W, F]).

The first window is W - H zeros followed by the first H samples, so each step sees H new
samples after the context of the W - H before them (zeros at the start). That is
silero-vad's convention (64 samples of context + 512 new at 16 kHz: W = 576, H = 512) and,
for W = H, plain blocks. W < H (a gap between windows) is refused. At the end of a source, a
last partial hop is completed with zeros (as silero-vad's ``get_speech_timestamps`` pads its
last chunk); a source that ends exactly on a hop gets no extra window.

:class:`Framer` is the streaming form: :meth:`Framer.push` takes samples as they arrive (any
block size) and returns the windows now complete; :meth:`Framer.finish` the padded last one.
:func:`frame_signal` frames a whole recording the same way.
"""
import numpy as np

from ..errors import SignalArgumentError


def check_window(window, hop):
    for name, v in (("window", window), ("hop", hop)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise SignalArgumentError(f"{name} must be a positive number of samples, got {v!r}")
    if hop > window:
        raise SignalArgumentError(f"hop {hop} is longer than the window {window}: samples between windows would be "
                           "skipped; use a window of at least the hop")
    return int(window), int(hop)


class Framer:
    """Streaming windows of a 1-D float32 signal (see the module docstring).

    ``push(samples)`` -> float32 [k, W] (or [k, W, F] for rows of F fields), the k windows
    completed by these samples (k >= 0); ``finish()`` -> [0 or 1, W(, F)], the last partial
    hop padded with zeros. ``hops`` counts the windows given so far. ``fields``: None for
    scalar samples, F for rows of F values."""

    def __init__(self, window, hop, fields=None):
        self.window, self.hop = check_window(window, hop)
        self.row = () if fields is None else (int(fields),)
        self.reset()

    def reset(self):
        self._buffer = np.zeros((self.window - self.hop,) + self.row, np.float32)   # context before the first hop
        self.hops = 0

    def push(self, samples):
        samples = np.asarray(samples, np.float32).reshape((-1,) + self.row)
        buf = np.concatenate([self._buffer, samples])
        k = max(0, (len(buf) - (self.window - self.hop)) // self.hop)
        if k == 0:
            self._buffer = buf
            return np.zeros((0, self.window) + self.row, np.float32)
        starts = np.arange(k) * self.hop
        out = buf[starts[:, None] + np.arange(self.window)]
        self._buffer = buf[k * self.hop:]
        self.hops += k
        return out

    def finish(self):
        """The last window, when samples of an unfinished hop are waiting (zeros after them)."""
        pending = len(self._buffer) - (self.window - self.hop)
        if pending <= 0:
            return np.zeros((0, self.window) + self.row, np.float32)
        return self.push(np.zeros((self.hop - pending,) + self.row, np.float32))


def frame_signal(samples, window, hop):
    """Every window of a whole signal, as a :class:`Framer` gives them: float32 [n, W] (or
    [n, W, F] for samples [N, F])."""
    samples = np.asarray(samples, np.float32)
    f = Framer(window, hop, None if samples.ndim == 1 else samples.shape[1])
    return np.concatenate([f.push(samples), f.finish()])
