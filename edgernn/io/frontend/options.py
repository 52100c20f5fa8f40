"""The front end's command-line options for ``edgernn stream`` and their translation to a spec.

:func:`add_frontend_options` adds them to the stream parser (one group); :func:`spec_from_args`
makes the :class:`~.frontend.FrontEndSpec` they describe (None without ``--features``: the
model then takes the window's samples, as before). ``--window W`` is the analysis window's
length (librosa's ``win_length``) and ``--hop H`` its hop; the rest is here.
"""
from ...errors import SignalArgumentError
from ...links import doc
from .frontend import FEATURES, FrontEndSpec
from .istft import SYNTHESES
from .logscale import LOGS
from .mel import NORMS, SCALES
from .normalize import load_statistics
from .stft import LAYOUTS
from .windows import COSINE_SUMS


def add_frontend_options(parser):
    g = parser.add_argument_group(
        "front end", f"features computed from each window in the stream ({doc('front-ends.md')}); the model then takes "
                     "the features instead of the samples. --window W is the analysis window (librosa's win_length), "
                     "--hop H its hop")
    g.add_argument("--features", choices=FEATURES, default=None,
                   help="STFT magnitude or power [n_fft/2+1], complex STFT [2 x (n_fft/2+1)], mel energies, log-mel "
                        "[n_mels] or MFCC [n_mfcc] (default: none, the raw window)")
    g.add_argument("--n-fft", type=int, default=None, metavar="N",
                   help="FFT size; the window is zero-padded centred to it (default: W)")
    g.add_argument("--window-type", choices=tuple(COSINE_SUMS), default="hann",
                   help="periodic analysis (and synthesis) window (default: hann)")
    g.add_argument("--n-mels", type=int, default=128, metavar="M", help="mel filters (default: 128, librosa's)")
    g.add_argument("--fmin", type=float, default=0.0, metavar="HZ", help="lowest mel filter edge (default: 0)")
    g.add_argument("--fmax", type=float, default=None, metavar="HZ", help="highest mel filter edge (default: rate/2)")
    g.add_argument("--mel-scale", choices=SCALES, default="slaney",
                   help="mel scale (default: slaney, librosa's; torchaudio's default is htk)")
    g.add_argument("--mel-norm", choices=NORMS, default="slaney",
                   help="filter area normalisation (default: slaney, librosa's; torchaudio's default is none)")
    g.add_argument("--mel-spectrum", choices=("power", "magnitude"), default="power",
                   help="the spectrum the mel filters sum (default: power, librosa's and torchaudio's power=2)")
    g.add_argument("--log", choices=LOGS, default=None,
                   help="log of the features: ln(x + offset), log10(x + offset), or db: 10 log10(max(amin, x)) "
                        "(20 for magnitudes, librosa's power_to_db/amplitude_to_db with ref=1, top_db=None) "
                        "(default: db for logmel and mfcc, none otherwise)")
    g.add_argument("--log-offset", type=float, default=None, metavar="EPS",
                   help="the offset of --log ln and log10 (default: 1e-6)")
    g.add_argument("--amin", type=float, default=None, metavar="A",
                   help="the floor of --log db (default: 1e-10 for power, 1e-5 for magnitude, librosa's)")
    g.add_argument("--top-db", type=float, default=None, metavar="DB",
                   help="refused, with the reason: librosa's top_db clips to the whole input's maximum, which a "
                        "stream does not know")
    g.add_argument("--n-mfcc", type=int, default=20, metavar="C", help="MFCC coefficients (default: 20, librosa's)")
    g.add_argument("--complex-layout", choices=LAYOUTS, default="stacked",
                   help="complex values (features, or --wav-from spectrum/complex-mask): all real parts then all "
                        "imaginary ones [2, K], or interleaved [K, 2] (default: stacked)")
    g.add_argument("--normalize", default=None, metavar="FILE",
                   help="(x - mean) / std per feature, the training statistics: .npy [2, F], .npz with mean and std, "
                        "or .json {\"mean\": [...], \"std\": [...]}")
    g.add_argument("--wav-out", default=None, metavar="PATH",
                   help="resynthesise the model's first output (see --wav-from) by inverse STFT and overlap-add into "
                        "a 16-bit PCM WAV, aligned with the input")
    g.add_argument("--wav-from", choices=[s.replace("_", "-") for s in SYNTHESES], default="mask",
                   help="what that output is: mask: n_fft/2+1 real gains on the window's STFT; complex-mask: complex "
                        "gains; spectrum: the output STFT itself (--complex-layout) (default: mask)")


def spec_from_args(args, window, hop):
    """The FrontEndSpec of the parsed options (rate still open), or None without --features."""
    if args.features is None:
        given = [flag for flag, value in (("--wav-out", args.wav_out), ("--normalize", args.normalize),
                                          ("--n-fft", args.n_fft), ("--log", args.log), ("--top-db", args.top_db),
                                          ("--log-offset", args.log_offset), ("--amin", args.amin),
                                          ("--fmax", args.fmax)) if value is not None]
        if given:
            raise SignalArgumentError(f"{given[0]} needs a front end: pass --features (e.g. --features "
                                      f"{'magnitude' if given[0] == '--wav-out' else 'logmel'})")
        return None
    mean = std = None
    if args.normalize is not None:
        mean, std = load_statistics(args.normalize)
    return FrontEndSpec(
        win_length=window, hop=hop, features=args.features, n_fft=args.n_fft, window=args.window_type,
        mel_spectrum=args.mel_spectrum, n_mels=args.n_mels, fmin=args.fmin, fmax=args.fmax,
        mel_scale=args.mel_scale, mel_norm=args.mel_norm, log=args.log, log_offset=args.log_offset,
        amin=args.amin, top_db=args.top_db, n_mfcc=args.n_mfcc, complex_layout=args.complex_layout,
        mean=mean, std=std, synthesis=None if args.wav_out is None else args.wav_from.replace("-", "_"))
