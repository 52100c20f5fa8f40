"""Speech segments from a speech probability per hop: silero-vad's rules, streamed.

Step i covers samples [i H, (i + 1) H) (H the hop). With p_i the step's probability:

- speech starts at i H on the first step with p_i >= ``threshold``;
- while in speech, a step with p_i < ``neg_threshold`` (default max(threshold - 0.15, 0.01))
  marks a possible end at its start (kept while later steps stay below ``threshold``); once
  the silence since that mark lasts ``min_silence_ms`` (measured at a step's start, as
  silero-vad does), the segment ends at the mark; a step with p >= threshold clears the mark;
- a segment no longer than ``min_speech_ms`` is dropped; at the end of the signal an open
  segment ends there (if longer than ``min_speech_ms``);
- a segment that grows longer than ``max_speech_s`` (less one hop and twice the pad, as
  silero-vad counts it) is cut: at the longest silence inside it that lasted more than
  ``min_silence_at_max_speech_ms`` (the next segment starting where that silence ended, if
  it has), or with ``use_max_possible_silence=False`` at the last such silence; without one,
  where it stands. A cut segment is kept whatever its length;
- each segment is then padded by ``speech_pad_ms`` on both sides, but two neighbours closer
  than twice the pad split the gap between them, and nothing reaches past the signal.

These are the rules of silero-vad's ``get_speech_timestamps`` (silero-vad 6.2,
``get_speech_timestamps_from_probs``), step for step; ``tests/test_stream_io.py`` checks them
against it on random probability sequences and on silero-vad itself. A segment's
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
                 speech_pad_ms=30, max_speech_s=float("inf"), min_silence_at_max_speech_ms=98,
                 use_max_possible_silence=True):
        if not 0.0 < threshold <= 1.0:
            raise SignalArgumentError(f"the speech threshold must be in (0, 1], got {threshold}")
        for name, ms in (("min_speech_ms", min_speech_ms), ("min_silence_ms", min_silence_ms),
                         ("speech_pad_ms", speech_pad_ms), ("min_silence_at_max_speech_ms", min_silence_at_max_speech_ms)):
            if not ms >= 0:
                raise SignalArgumentError(f"{name} must be 0 or more milliseconds, got {ms}")
        if not max_speech_s > 0:
            raise SignalArgumentError(f"max_speech_s must be a positive number of seconds, got {max_speech_s}")
        self.rate, self.hop, self.threshold = int(rate), int(hop), float(threshold)
        self.neg_threshold = max(threshold - 0.15, 0.01) if neg_threshold is None else float(neg_threshold)
        self.min_speech = rate * min_speech_ms / 1000
        self.min_silence = rate * min_silence_ms / 1000
        self.pad = rate * speech_pad_ms / 1000
        self.max_speech = rate * max_speech_s - hop - 2 * self.pad
        self.min_silence_at_max = rate * min_silence_at_max_speech_ms / 1000
        self.use_max_possible_silence = bool(use_max_possible_silence)
        self.reset()

    def reset(self):
        self.steps = 0
        self._start = None               # sample where the open segment started (silero's triggered)
        self._mark = 0                   # a possible end (0: none, as silero-vad's temp_end)
        self._prev_end = self._next_start = 0    # the last silence's bounds, for a cut at max_speech_s
        self._silences = []              # (start, length) of the silences inside the open segment
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
        out = []
        if prob >= self.threshold and self._mark:
            if at - self._mark > self.min_silence_at_max:
                self._silences.append((self._mark, at - self._mark))
            self._mark = 0
            if self._next_start < self._prev_end:
                self._next_start = at
        if prob >= self.threshold and self._start is None:
            self._start = at
            return out
        if self._start is not None and at - self._start > self.max_speech:
            cut, here = self._cut(at)
            out += cut
            if here:                     # cut where it stands: the step ends here
                return out
        if prob < self.neg_threshold and self._start is not None:
            if not self._mark:
                self._mark = at
            if not self.use_max_possible_silence and at - self._mark > self.min_silence_at_max:
                self._prev_end = self._mark
            if at - self._mark < self.min_silence:
                return out
            raw = (self._start, self._mark)
            self._end_segment()
            if raw[1] - raw[0] > self.min_speech:
                out += self._closed(raw)
        return out

    def _cut(self, at):
        """The open segment has reached max_speech_s at sample ``at``: close it at a silence
        inside it, or at ``at`` when it has none. Returns (the segments now final, whether it
        was cut at ``at``)."""
        start = self._start
        if self.use_max_possible_silence and self._silences:
            end, length = max(self._silences, key=lambda s: s[1])     # the first of the longest
            self._next_start = end + length
            self._start = self._next_start if self._next_start < end + at else None
        elif self._prev_end:
            end = self._prev_end
            self._start = None if self._next_start < end else self._next_start
        else:
            self._end_segment()
            return self._closed((start, at)), True
        self._prev_end = self._next_start = self._mark = 0
        self._silences = []
        return self._closed((start, end)), False

    def _end_segment(self):
        self._start, self._mark, self._prev_end, self._next_start, self._silences = None, 0, 0, 0, []

    def finish(self, total_samples):
        """End of the signal (``total_samples`` long): the segments still to give."""
        out = []
        if self._start is not None and total_samples - self._start > self.min_speech:
            out += self._closed((self._start, total_samples))
        self._end_segment()
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
