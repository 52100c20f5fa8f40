"""Detections from class posteriors: a smoothed argmax with hysteresis, streamed.

A classifier that outputs a score per class every step (a keyword spotter, an activity
recogniser) is read the way users otherwise write by hand. With x_t the step's scores
(probabilities, or logits turned into probabilities by a softmax when ``logits``):

- s_t = the mean of x over the last ``smooth`` steps (of the steps so far, at the start);
- the top class is argmax s_t (the first on ties);
- a detection of class c starts at step t when c is the top class, c is not ignored
  (background classes such as ``_silence_`` or ``_unknown_``), s_t[c] >= ``threshold``, and no
  detection of c is open; a detection of another class that is open ends there. A new
  detection also needs ``min_gap`` steps since the last one started (0: none);
- the open detection of c ends at the first step with s_t[c] < ``threshold`` (so one spoken
  keyword, whose score rises and falls once, is one detection).

:meth:`Detector.update` returns the detections that start and end at each step, so a live
display prints a detection as soon as it is made (:class:`Detection` with ``end`` None) and
its end when it is known. Steps are counted in output steps; :class:`Detection` converts
them to seconds with the output period.
"""
from dataclasses import dataclass

import numpy as np

from ..errors import SignalArgumentError


@dataclass
class Detection:
    """Class ``label`` (index ``index``) from output step ``start`` to ``end`` (exclusive;
    None while open), its highest smoothed score ``peak``."""
    label: str
    index: int
    start: int
    end: int | None
    peak: float

    def to_dict(self, period):
        """JSON-ready, with times in seconds (``period``: seconds per output step; a step's
        time is the end of its window, as in the JSON lines)."""
        return {"label": self.label, "start_step": self.start, "end_step": self.end, "peak": round(self.peak, 6),
                "t": round((self.start + 1) * period, 6),
                "end_t": None if self.end is None else round(self.end * period, 6)}


class Detector:
    def __init__(self, labels, threshold=0.5, smooth=1, min_gap=0, ignore=(), logits=False):
        labels = [str(x) for x in labels]
        if not labels:
            raise SignalArgumentError("detections need the classes' labels (--labels A,B,... or an .ernn with labels)")
        if not 0.0 < threshold <= 1.0:
            raise SignalArgumentError(f"the detection threshold must be in (0, 1], got {threshold}")
        for name, v in (("smooth", smooth), ("min_gap", min_gap)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (1 if name == "smooth" else 0):
                raise SignalArgumentError(f"{name} must be a whole number of steps (smooth >= 1, min_gap >= 0), "
                                          f"got {v!r}")
        unknown = [x for x in ignore if x not in labels]
        if unknown:
            raise SignalArgumentError(f"cannot ignore {', '.join(map(repr, unknown))}: the labels are "
                                      f"{', '.join(labels)}")
        self.labels, self.threshold, self.smooth, self.min_gap = labels, float(threshold), int(smooth), int(min_gap)
        self.ignored = np.array([x in ignore for x in labels])
        self.logits = bool(logits)
        self.reset()

    def reset(self):
        self.steps = 0
        self._recent = np.zeros((self.smooth, len(self.labels)), np.float64)     # ring of the last scores
        self._open = None
        self._last_start = None

    def update(self, scores):
        """One output step's class scores (float [n_classes]); returns the detections that
        started or ended at this step (an ended one with its ``end`` set)."""
        x = np.asarray(scores, np.float64).ravel()
        if x.size != len(self.labels):
            raise SignalArgumentError(f"the output has {x.size} values per step but {len(self.labels)} labels were "
                                      "given; pass one label per class")
        if self.logits:
            x = np.exp(x - x.max())
            x /= x.sum()
        t = self.steps
        self._recent[t % self.smooth] = x
        self.steps += 1
        mean = self._recent[:min(self.steps, self.smooth)].mean(axis=0)
        out = []
        if self._open is not None and mean[self._open.index] < self.threshold:
            out.append(self._close(t))
        top = int(np.argmax(mean))
        if self.ignored[top] or mean[top] < self.threshold or not np.isfinite(mean[top]):
            return out
        if self._open is not None and self._open.index == top:
            self._open.peak = max(self._open.peak, float(mean[top]))
            return out
        if self._last_start is not None and t - self._last_start < self.min_gap:
            return out
        if self._open is not None:
            out.append(self._close(t))
        self._open = Detection(self.labels[top], top, t, None, float(mean[top]))
        self._last_start = t
        out.append(self._open)
        return out

    def finish(self):
        """End of the signal: the open detection, ended after the last step (or nothing)."""
        return [self._close(self.steps)] if self._open is not None else []

    def _close(self, t):
        done = Detection(self._open.label, self._open.index, self._open.start, t, self._open.peak)
        self._open = None
        return done


def add_detection_options(parser, labels=True):
    """``edgernn stream``'s options for detections (:func:`detector_from_args` reads them);
    ``labels``: with --labels."""
    parser.add_argument("--detect", action="store_true",
                        help="print detections from class scores (the --score output): a smoothed argmax above "
                             "--detect-threshold, one per rise of a class's score")
    if labels:
        parser.add_argument("--labels", default=None, metavar="A,B,..|FILE",
                            help="the classes' labels (default: the .ernn's labels)")
    parser.add_argument("--logits", action="store_true", help="the scores are logits: softmax them first")
    parser.add_argument("--detect-threshold", type=float, default=0.5, help="smoothed score to detect a class (0.5)")
    parser.add_argument("--smooth-steps", type=int, default=1, help="average the scores over this many steps (1)")
    parser.add_argument("--min-gap-steps", type=int, default=0,
                        help="steps from one detection's start to the next one's (0)")
    parser.add_argument("--ignore", default="", metavar="A,B,..",
                        help="classes never detected (background: e.g. _silence_,_unknown_)")


def detector_from_args(args, model):
    """A :class:`Detector` for ``edgernn stream``'s options, or None without ``--detect``."""
    if not args.detect:
        return None
    from ..convert import LABELS_KEY, parse_labels
    labels = parse_labels(getattr(args, "labels", None)) or model.metadata.get(LABELS_KEY)
    if not labels:
        raise SignalArgumentError("--detect needs the classes' labels: pass --labels A,B,... (one per output value) "
                                  "or convert the model with `edgernn convert --labels`")
    ignore = [x.strip() for x in args.ignore.split(",") if x.strip()]
    return Detector(labels, args.detect_threshold, args.smooth_steps, args.min_gap_steps, ignore, args.logits)
