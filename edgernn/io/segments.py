"""Speech segments from a speech probability per hop: silero-vad's rules, streamed.

Step i covers samples [i H, (i + 1) H) (H the hop). With p_i the step's probability:

- speech starts at i H on the first step with p_i >= ``threshold``;
- while in speech, a step with p_i < ``neg_threshold`` (default max(threshold - 0.15, 0.01))
  marks a possible end at its start (kept while later steps stay below ``threshold``); once
  the silence since that mark lasts ``min_silence_ms`` (measured at a step's start, as
  silero-vad does), the segment ends at the mark; a step with p >= threshold clears the mark;
- a segment no longer than ``min_speech_ms`` is dropped; at the end of the signal an open
  segment ends there (if longer than ``min_speech_ms``);
- each segment is then padded by ``speech_pad_ms`` on both sides, but two neighbours closer
  than twice the pad split the gap between them, and nothing reaches past the signal.

These are the rules of silero-vad's ``get_speech_timestamps`` (silero-vad 6.2) without its
``max_speech_duration_s`` split (not built: segments are as long as the speech). A segment's
final bounds are known once the next one starts or the signal ends (the padding depends on
the gap), so :meth:`SpeechSegmenter.update` returns segments one segment late;
:meth:`SpeechSegmenter.started` tells a live display that speech is on now.
"""
from dataclasses import dataclass

from ..errors import SignalArgumentError


@dataclass
class Segment:
    """Samples [start, end) of speech (``rate`` to convert to seconds)."""
    start: int
    end: int
    rate: int

    def seconds(self):
        return self.start / self.rate, self.end / self.rate

    def to_dict(self):
        return {"start": self.start, "end": self.end, "start_s": self.start / self.rate, "end_s": self.end / self.rate}


class SpeechSegmenter:
    def __init__(self, rate, hop, threshold=0.5, neg_threshold=None, min_speech_ms=250, min_silence_ms=100,
                 speech_pad_ms=30):
        if not 0.0 < threshold <= 1.0:
            raise SignalArgumentError(f"the speech threshold must be in (0, 1], got {threshold}")
        for name, ms in (("min_speech_ms", min_speech_ms), ("min_silence_ms", min_silence_ms),
                         ("speech_pad_ms", speech_pad_ms)):
            if not ms >= 0:
                raise SignalArgumentError(f"{name} must be 0 or more milliseconds, got {ms}")
        self.rate, self.hop, self.threshold = int(rate), int(hop), float(threshold)
        self.neg_threshold = max(threshold - 0.15, 0.01) if neg_threshold is None else float(neg_threshold)
        self.min_speech = rate * min_speech_ms / 1000
        self.min_silence = rate * min_silence_ms / 1000
        self.pad = rate * speech_pad_ms / 1000
        self.reset()

    def reset(self):
        self.steps = 0
        self._start = None               # sample where the open segment started
        self._mark = 0                   # a possible end (0: none, as silero-vad's temp_end)
        self._pending = None             # the last closed raw segment, its end padding not yet known
        self._first = True

    @property
    def started(self):
        """Whether a segment is open (speech now, by the rules so far)."""
        return self._start is not None

    def update(self, prob):
        """The next step's probability; returns the segments whose bounds are now final."""
        at = self.steps * self.hop
        self.steps += 1
        if prob >= self.threshold and self._mark:
            self._mark = 0
        if prob >= self.threshold and self._start is None:
            self._start = at
            return []
        if prob < self.neg_threshold and self._start is not None:
            if not self._mark:
                self._mark = at
            if at - self._mark < self.min_silence:
                return []
            raw = (self._start, self._mark)
            self._start, self._mark = None, 0
            if raw[1] - raw[0] > self.min_speech:
                return self._closed(raw)
        return []

    def finish(self, total_samples):
        """End of the signal (``total_samples`` long): the segments still to give."""
        out = []
        if self._start is not None and total_samples - self._start > self.min_speech:
            out += self._closed((self._start, total_samples))
        self._start, self._mark = None, 0
        if self._pending is not None:
            s, e = self._pending
            out.append(Segment(int(s), int(min(total_samples, e + self.pad)), self.rate))
            self._pending = None
        return out

    def _closed(self, raw):
        """A raw segment has closed: the one before it gets its final end."""
        start, end = raw
        if self._first:
            start, self._first = int(max(0, start - self.pad)), False
        out = []
        if self._pending is not None:
            s, e = self._pending
            gap = start - e
            if gap < 2 * self.pad:
                e += int(gap // 2)
                start = int(max(0, start - gap // 2))
            else:
                e = int(e + self.pad)
                start = int(max(0, start - self.pad))
            out.append(Segment(int(s), int(e), self.rate))
        self._pending = (start, end)
        return out
