"""Log compression of non-negative features (mel energies or spectra), frame by frame.

    y = scale * ln(max(floor, x + offset))

covers every per-frame-safe convention (:func:`log_parameters`):

- ``ln``:    ln(x + eps)          scale 1, offset eps, floor 0   (torchaudio ``MFCC(log_mels=True)``:
             eps = 1e-6; kaldi-style log-mel features)
- ``log10``: log10(x + eps)       scale 1 / ln 10, offset eps, floor 0
- ``db``:    10 log10(max(amin, x)) of a power feature, 20 log10(max(amin, x)) of a magnitude
             one: scale 10 / ln 10 or 20 / ln 10, offset 0, floor amin. librosa's
             ``power_to_db(S, ref=1.0, amin=1e-10, top_db=None)`` and ``amplitude_to_db(S,
             ref=1.0, amin=1e-5, top_db=None)``; torchaudio's ``AmplitudeToDB(top_db=None)``.
- ``none``:  no log.

Refused: ``top_db``. librosa and torchaudio clip to (the maximum over the whole input) -
top_db, a maximum a stream knows only at its end: a frame's features would depend on frames
that have not arrived. There is no ``ref`` (1.0) for the same reason (librosa's ``ref=np.max``);
a constant ref is a constant offset in dB, which the normalisation (:mod:`.normalize`) absorbs.
"""
import math

from ...config import jit_inline
from ...errors import SignalArgumentError

LOGS = ("none", "ln", "log10", "db")
DEFAULT_OFFSET = 1e-6                                   # ln, log10: log(x + 1e-6)
DEFAULT_AMIN = {"power": 1e-10, "magnitude": 1e-5}      # db: librosa's power_to_db / amplitude_to_db


def log_parameters(kind, of, offset=None, amin=None, top_db=None):
    """(enabled, scale, offset, floor) for the kernel; ``of`` is "power" or "magnitude" (what
    the values are: it sets dB's factor 10 or 20). SignalArgumentError for a setting that is not
    per-frame safe or cannot work."""
    if top_db is not None:
        raise SignalArgumentError(
            "top_db cannot stream: librosa's power_to_db and torchaudio's AmplitudeToDB clip to the maximum over "
            "the whole input minus top_db, a maximum a live stream knows only at its end; drop it (a model "
            "trained with top_db=80 on normal-level speech rarely sees the clip) or retrain without it")
    if kind not in LOGS:
        raise SignalArgumentError(f"unknown log {kind!r}; use one of {', '.join(LOGS)}")
    if kind in ("none", "db") and offset is not None:
        raise SignalArgumentError(f"--log-offset applies to --log ln and log10 (log(x + offset)); with --log {kind} "
                                  + ("use --amin, the floor of max(amin, x)" if kind == "db" else "leave it out"))
    if kind != "db" and amin is not None:
        raise SignalArgumentError(f"--amin applies to --log db (10 log10(max(amin, x))); with --log {kind} "
                                  + ("use --log-offset" if kind != "none" else "leave it out"))
    if kind == "none":
        return False, 0.0, 0.0, 0.0
    if kind == "db":
        amin = DEFAULT_AMIN[of] if amin is None else float(amin)
        if not amin > 0 or not math.isfinite(amin):
            raise SignalArgumentError(f"--amin must be a positive number (log(0) is -infinity), got {amin!r}")
        return True, (10.0 if of == "power" else 20.0) / math.log(10.0), 0.0, amin
    offset = DEFAULT_OFFSET if offset is None else float(offset)
    if not offset > 0 or not math.isfinite(offset):
        raise SignalArgumentError(f"--log-offset must be a positive number (log(0) is -infinity), got {offset!r}")
    return True, 1.0 if kind == "ln" else 1.0 / math.log(10.0), offset, 0.0


@jit_inline
def log_in_place(values, size, enabled, scale, offset, floor):
    """values[:size] = scale * ln(max(floor, values + offset)) when ``enabled``."""
    if not enabled:
        return
    for j in range(size):
        values[j] = scale * math.log(max(floor, values[j] + offset))
