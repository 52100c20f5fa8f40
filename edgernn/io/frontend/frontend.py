"""A streaming feature front end: one window of samples in, one feature vector out, in one native call.

    window x float32 [W] -> STFT (:mod:`.stft`) -> [mel filterbank (:mod:`.mel`)] -> [log
    (:mod:`.logscale`)] -> [DCT-II (:mod:`.dct`)] -> [(x - mean) / std (:mod:`.normalize`)]
    -> features float32 [F]

``features`` picks the stages (:data:`FEATURES`): ``magnitude``, ``power`` or ``complex``
spectra [K or 2K], ``mel`` energies [n_mels] (no log), ``logmel`` [n_mels], ``mfcc``
[n_mfcc]; ``log`` may also compress a magnitude, power or mel feature. W = ``win_length`` is
the window the :class:`~edgernn.io.framing.Framer` gives each step (``--window``), H = ``hop``,
zero-padded centred to ``n_fft`` >= W. Every stage's arrays and scratch are made when the
:class:`FrontEnd` is built; :func:`features_of_window` (the Numba kernel, compiled once for
every setting) allocates nothing.

Streamed features equal librosa's offline ones on the same frames (:mod:`.stft` states which:
``librosa.stft(np.concatenate([np.zeros(P), s]), center=False, ...)``, P = (n_fft - W) // 2 +
W - H); with ``synthesis`` the model's output goes back to audio (:mod:`.istft`, P samples of
latency).

:class:`FrontEndSpec` is the parameters alone (checked, JSON-able: ``to_dict``/``from_dict``,
what a ``.ernn`` file can store); :class:`FrontEnd` is a spec built at a sample rate.
"""
import dataclasses
import math
import numbers
from dataclasses import dataclass

import numpy as np

from ...config import jit
from ...errors import SignalArgumentError
from ..framing import check_window
from .dct import apply_dct, dct_matrix
from .fourier import FourierTables
from .istft import SYNTHESES, OverlapAdd, check_overlap, output_size
from .logscale import log_in_place, log_parameters
from .mel import MelFilterbank, apply_filterbank
from .normalize import check_statistics, normalize_into
from .stft import LAYOUTS, SPECTRA, analyse, complex_positions, spectrum_values
from .windows import COSINE_SUMS, centre_offset, padded_window, periodic_window

FEATURES = ("magnitude", "power", "complex", "mel", "logmel", "mfcc")
MEL_FEATURES = ("mel", "logmel", "mfcc")
#: the dict format's version (to_dict / from_dict)
VERSION = 1


def whole(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass
class FrontEndSpec:
    """The parameters of a front end (module docstring), checked and completed when made: every
    setting that cannot work raises SignalArgumentError saying what to change. ``n_fft`` None:
    W; ``log`` None: ``db`` for logmel and mfcc, ``none`` otherwise (``log_offset`` and
    ``amin`` None: their defaults, :mod:`.logscale`); ``fmax`` None: rate / 2; ``top_db`` must
    stay None (it cannot stream); ``rate`` may stay None until :meth:`at_rate` (a spectrum
    needs none, a mel filterbank does)."""
    win_length: int
    hop: int
    features: str = "logmel"
    n_fft: int | None = None
    rate: float | None = None
    window: str = "hann"
    mel_spectrum: str = "power"
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    mel_scale: str = "slaney"
    mel_norm: str = "slaney"
    log: str | None = None
    log_offset: float | None = None
    amin: float | None = None
    top_db: float | None = None
    n_mfcc: int = 20
    complex_layout: str = "stacked"
    mean: tuple | None = None
    std: tuple | None = None
    synthesis: str | None = None

    def __post_init__(self):
        self.win_length, self.hop = check_window(self.win_length, self.hop)
        win = self.win_length
        n_fft = win if self.n_fft is None else self.n_fft
        if not whole(n_fft):
            raise SignalArgumentError(f"n_fft must be a whole number of samples, got {n_fft!r}")
        if n_fft < win:
            raise SignalArgumentError(f"n_fft {n_fft!r} is shorter than the window of {win} samples: the FFT must "
                                      f"hold the whole window; pass --n-fft {win} or more (e.g. "
                                      f"{1 << (win - 1).bit_length()}, a power of two)")
        self.n_fft = int(n_fft)
        if self.rate is not None and (not isinstance(self.rate, numbers.Real) or not 0 < self.rate < math.inf):
            raise SignalArgumentError(f"the sample rate must be a positive number of Hz, got {self.rate!r}")
        for name, value, allowed in (("features", self.features, FEATURES), ("window", self.window, COSINE_SUMS),
                                     ("mel_spectrum", self.mel_spectrum, ("power", "magnitude")),
                                     ("complex_layout", self.complex_layout, LAYOUTS),
                                     ("synthesis", self.synthesis, (None,) + tuple(SYNTHESES))):
            if value not in allowed:
                raise SignalArgumentError(f"unknown {name} {value!r}; use one of "
                                          f"{', '.join(str(a) for a in allowed if a is not None)}")
        for name in ("n_mels", "n_mfcc"):
            if not whole(getattr(self, name)) or getattr(self, name) < 1:
                raise SignalArgumentError(f"{name} must be a positive whole number, got {getattr(self, name)!r}")
        for name in ("fmin", "fmax"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, numbers.Real) or not math.isfinite(value)):
                raise SignalArgumentError(f"{name} must be a frequency in Hz, got {value!r}")
        log = self.log if self.log is not None else "db" if self.features in ("logmel", "mfcc") else "none"
        if self.features == "complex" and log != "none":
            raise SignalArgumentError("a complex spectrum has no log (its parts can be negative); use --features "
                                      "magnitude or power with --log")
        if self.features in ("logmel", "mfcc") and log == "none":
            raise SignalArgumentError(f"--features {self.features} takes a log (ln, log10 or db); for mel energies "
                                      "without one use --features mel")
        _, _, offset, floor = log_parameters(log, self.values_of, self.log_offset, self.amin, self.top_db)
        self.log = log
        self.log_offset = offset if log in ("ln", "log10") else None
        self.amin = floor if log == "db" else None
        if self.features == "mfcc":
            dct_matrix(self.n_mfcc, self.n_mels)            # checks n_mfcc against n_mels
        if (self.mean is None) != (self.std is None):
            raise SignalArgumentError("normalisation needs both the mean and the std")
        if self.mean is not None:
            mean, std = check_statistics(self.mean, self.std, self.feature_size, self.describe())
            self.mean, self.std = tuple(mean.tolist()), tuple(std.tolist())

    @property
    def values_of(self):
        """What the values the log sees measure, power or magnitude (dB's factor: 10 or 20)."""
        return self.mel_spectrum if self.features in MEL_FEATURES else "magnitude" if self.features == "magnitude" \
            else "power"

    @property
    def spectrum_kind(self):
        """The STFT values the later stages start from: magnitude, power or complex."""
        return self.mel_spectrum if self.features in MEL_FEATURES else self.features

    @property
    def bins(self):
        return self.n_fft // 2 + 1

    @property
    def feature_size(self):
        """F, the values :meth:`FrontEnd.process` gives per window."""
        return {"magnitude": self.bins, "power": self.bins, "complex": 2 * self.bins, "mel": self.n_mels,
                "logmel": self.n_mels, "mfcc": self.n_mfcc}[self.features]

    @property
    def latency(self):
        """P = (n_fft - W) // 2 + W - H: the zeros the streamed frames see before the signal, and
        the delay (in samples) of resynthesised audio behind the input."""
        return centre_offset(self.n_fft, self.win_length) + self.win_length - self.hop

    def describe(self):
        """The options that set the feature size, as a user would write them."""
        if self.features in ("mel", "logmel"):
            return f"--features {self.features} --n-mels {self.n_mels}"
        if self.features == "mfcc":
            return f"--features mfcc --n-mfcc {self.n_mfcc}"
        return f"--features {self.features} --n-fft {self.n_fft}"

    def options_for_size(self, size):
        """What to pass for a model that takes ``size`` values per step, or None."""
        if self.features in ("mel", "logmel"):
            return f"--n-mels {size}"
        if self.features == "mfcc":
            return f"--n-mfcc {size}" + ("" if size <= self.n_mels else f" --n-mels {size} (or more)")
        bins = size // 2 if self.features == "complex" else size
        if bins >= 2 and (self.features != "complex" or size % 2 == 0):
            return f"--n-fft {2 * (bins - 1)} (or {2 * bins - 1})"
        return None

    def at_rate(self, rate):
        """This spec for a signal at ``rate`` Hz (SignalArgumentError if another rate is stored)."""
        if self.rate is not None and float(self.rate) != float(rate):
            raise SignalArgumentError(f"the front end was made for {self.rate:g} Hz but the signal is at {rate:g} Hz; "
                                      "resample the signal or rebuild the front end")
        return dataclasses.replace(self, rate=float(rate))

    def to_dict(self):
        """The parameters as a JSON-able dict (defaults resolved, ``version`` added)."""
        d = dataclasses.asdict(self)
        d.pop("top_db")
        d["mean"] = None if self.mean is None else list(self.mean)
        d["std"] = None if self.std is None else list(self.std)
        return {"version": VERSION, **d}

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        if d.pop("version", VERSION) != VERSION:
            raise SignalArgumentError(f"front end parameters of another version; this edgernn reads version {VERSION}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise SignalArgumentError(f"unknown front end parameter(s) {', '.join(unknown)}")
        return cls(**d)


@jit
def features_of_window(x, analysis, spectrum, mel, log, dct, norm, scratch, out):
    """One window x float32 [W] -> out float32 [F] through the stages (module docstring).

    analysis = (window float64 [W], offset L, Fourier tables); spectrum = (kind, im_start,
    stride); mel = (weights [n_mels, K], first, stop) or empty; log = (enabled, scale, offset,
    floor); dct float64 [n_mfcc, n_mels] or [0, 0]; norm = (mean, std) float64 [F] or empty;
    scratch = (frame [n_fft], re, im [K], work_re, work_im [n_fft // 2 + 1], a, b [max(2K,
    n_mels)]) float64. re, im keep the window's spectrum after the call (for a mask's resynthesis)."""
    window, offset, tables = analysis
    kind, im_start, stride = spectrum
    weights, first, stop = mel
    enabled, scale, log_offset, floor = log
    mean, std = norm
    frame, re, im, work_re, work_im, a, b = scratch
    analyse(x, window, offset, tables, frame, re, im, work_re, work_im)
    size = spectrum_values(re, im, kind, im_start, stride, a)
    if weights.shape[0] > 0:
        size = apply_filterbank(a, weights, first, stop, b)
        a, b = b, a
    log_in_place(a, size, enabled, scale, log_offset, floor)
    if dct.shape[0] > 0:
        size = apply_dct(a, size, dct, b)
        a, b = b, a
    normalize_into(a, size, mean, std, out)


class FrontEnd:
    """A :class:`FrontEndSpec` built at its sample rate: tables, filterbank, scratch.

    ``process(window)``: float32 [W] -> float32 [F] (``feature_size``), the front end's own
    buffer, overwritten by the next call. ``synthesize(output)`` (with a ``synthesis``): the
    model's output for that window -> float32 [H] finished samples (own buffer);
    ``finish()`` the last n_fft - H; ``reset()`` clears the synthesis (the analysis keeps no
    state: the Framer holds the context). ``to_dict()``/``from_dict()``: the parameters."""

    def __init__(self, spec):
        if spec.rate is None:
            raise SignalArgumentError("a front end needs the signal's sample rate (FrontEndSpec.at_rate(rate))")
        self.spec = spec
        n_fft, win = spec.n_fft, spec.win_length
        self.window_length, self.hop, self.n_fft, self.feature_size = win, spec.hop, n_fft, spec.feature_size
        self.latency = spec.latency
        self.tables = FourierTables(n_fft)
        bins = self.tables.bins
        positions = complex_positions(spec.complex_layout, bins)
        self.analysis = (periodic_window(spec.window, win), centre_offset(n_fft, win), self.tables.arrays)
        self.spectrum = (SPECTRA[spec.spectrum_kind],) + positions
        if spec.features in MEL_FEATURES:
            self.mel = MelFilterbank(spec.rate, n_fft, spec.n_mels, spec.fmin, spec.fmax, spec.mel_scale,
                                     spec.mel_norm).arrays
        else:
            self.mel = (np.zeros((0, bins)), np.zeros(0, np.int64), np.zeros(0, np.int64))
        self.log = log_parameters(spec.log, spec.values_of, spec.log_offset, spec.amin)
        self.dct = dct_matrix(spec.n_mfcc, spec.n_mels) if spec.features == "mfcc" else np.zeros((0, 0))
        self.norm = (np.zeros(0), np.zeros(0)) if spec.mean is None else (np.array(spec.mean), np.array(spec.std))
        width = max(2 * bins, spec.n_mels)
        self.spectrum_re, self.spectrum_im = np.zeros(bins), np.zeros(bins)     # the last window's STFT
        self.scratch = (np.zeros(n_fft), self.spectrum_re, self.spectrum_im, np.zeros(self.tables.scratch_length),
                        np.zeros(self.tables.scratch_length), np.zeros(width), np.zeros(width))
        self.out = np.zeros(self.feature_size, np.float32)
        self.overlap_add = self.synthesis_size = None
        if spec.synthesis is not None:
            synthesis_window = padded_window(spec.window, win, n_fft)
            check_overlap(synthesis_window, spec.hop, spec.window)
            self.overlap_add = OverlapAdd(spec.synthesis, positions, self.tables, synthesis_window, spec.hop)
            self.synthesis_size = output_size(self.overlap_add.mode, bins)

    @classmethod
    def from_options(cls, rate, win_length, hop, **options):
        """A front end at ``rate`` Hz for windows of ``win_length`` samples every ``hop``;
        ``options`` are :class:`FrontEndSpec`'s other fields."""
        return cls(FrontEndSpec(win_length=win_length, hop=hop, rate=rate, **options))

    @classmethod
    def from_dict(cls, d):
        return cls(FrontEndSpec.from_dict(d))

    def to_dict(self):
        return self.spec.to_dict()

    @property
    def synthesizes(self):
        """Whether :meth:`synthesize` turns the model's outputs back into audio."""
        return self.overlap_add is not None

    def warm_up(self):
        """Compile the kernels (or load them from the cache) now, not in the first timed step."""
        self.process(np.zeros(self.window_length, np.float32))
        if self.synthesizes:
            self.synthesize(np.zeros(self.synthesis_size, np.float32))
        self.reset()

    def process(self, window):
        x = np.ascontiguousarray(window, np.float32)
        if x.shape != (self.window_length,):
            raise SignalArgumentError(f"the front end takes windows of {self.window_length} samples, got shape "
                                      f"{x.shape}")
        features_of_window(x, self.analysis, self.spectrum, self.mel, self.log, self.dct, self.norm, self.scratch,
                           self.out)
        return self.out

    def synthesize(self, output):
        """Resynthesise the window :meth:`process` analysed last from the model's ``output`` for
        it (module docstring of :mod:`.istft`): float32 [H]."""
        if not self.synthesizes:
            raise SignalArgumentError("this front end was made without a synthesis (synthesis='mask', "
                                      "'complex_mask' or 'spectrum')")
        y = np.ascontiguousarray(output, np.float32).reshape(-1)
        if y.shape[0] != self.synthesis_size:
            raise SignalArgumentError(self.synthesis_mismatch(y.shape[0]))
        return self.overlap_add.push(y, self.spectrum_re, self.spectrum_im)

    def synthesis_mismatch(self, size):
        """The message for a model output of ``size`` values that this synthesis cannot take."""
        bins = self.tables.bins
        if size == bins:
            hint = "use --wav-from mask"
        elif size == 2 * bins:
            hint = "use --wav-from spectrum or complex-mask"
        else:
            hint = (f"a mask of {size} bins needs --n-fft {2 * (size - 1)}" if size >= 2 else "this model cannot be "
                    "resynthesised")
        return (f"--wav-from {self.spec.synthesis.replace('_', '-')} takes {self.synthesis_size} values per step from "
                f"the model's output (n_fft {self.n_fft}: {bins} bins{'' if self.synthesis_size == bins else ' x 2'}),"
                f" but it gives {size}; {hint}")

    def finish(self):
        """float32 [n_fft - H]: the synthesis' last samples (the accumulators are then cleared)."""
        return self.overlap_add.finish() if self.synthesizes else np.zeros(0, np.float32)

    def reset(self):
        if self.synthesizes:
            self.overlap_add.reset()
