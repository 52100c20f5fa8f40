"""Stream settings stored in an .ernn file: what ``edgernn stream`` needs besides the model.

    edgernn convert kws.onnx -o kws.ernn --labels labels.txt \\
        --stream="--window 400 --hop 160 --rate 16000 --features logmel --n-mels 40 --log ln \\
                  --normalize stats.npz --detect --logits --smooth-steps 5 --ignore _silence_"
    edgernn stream kws.ernn mic            # on the device: nothing else to pass

``--stream="OPTIONS"`` takes ``edgernn stream``'s signal and event options
(:func:`~edgernn.io.command.add_stream_settings`: window, hop, rate, fields, score, the
front end, segments, detections), checks them as ``edgernn stream`` would, and stores:

- ``stream.options``: JSON, {option: value} for the options in OPTIONS other than the front
  end's (``window``, ``hop``, ``rate``, ``detect``, ``smooth_steps``, ...);
- ``stream.frontend``: JSON, the front end's parameters at the stored rate
  (:meth:`FrontEndSpec.to_dict <edgernn.io.frontend.FrontEndSpec.to_dict>`), normalisation
  statistics inline (the file read at convert time is not needed on the device).

The labels stay in ``model.labels`` (``--labels``). ``edgernn stream MODEL.ernn SOURCE`` then
takes each stored option that was left at its default on its command line (an option given
there wins), and the stored front end when no ``--features`` is given; it prints what it took.
Sinks and sources (``--jsonl``, ``--wav-out``, ``--realtime``, ``--pcm``, ...) are not stored:
they belong to a run, not to the model.
"""
import argparse
import json
import shlex

from ..errors import SignalArgumentError

OPTIONS_KEY = "stream.options"
FRONTEND_KEY = "stream.frontend"
#: the front end's own options, stored as its spec (``stream.frontend``), not one by one
FRONTEND_OPTIONS = ("features", "n_fft", "window_type", "mel_spectrum", "n_mels", "fmin", "fmax", "mel_scale",
                    "mel_norm", "log", "log_offset", "amin", "top_db", "n_mfcc", "complex_layout", "normalize",
                    "wav_out", "wav_from")


def _settings_parser():
    from .command import add_stream_settings
    parser = argparse.ArgumentParser(prog="edgernn convert --stream", add_help=False, exit_on_error=False)
    add_stream_settings(parser, labels=False)
    return parser


def settings_metadata(text):
    """The metadata entries for ``--stream`` options ``text`` (SignalArgumentError if they
    cannot be parsed or do not work together)."""
    from .frontend import FrontEnd, spec_from_args
    parser = _settings_parser()
    try:
        args, extra = parser.parse_known_args(shlex.split(text))
    except (argparse.ArgumentError, ValueError) as e:
        raise SignalArgumentError(f"--stream {text!r}: {e}") from None
    if extra:
        raise SignalArgumentError(f"--stream: {' '.join(extra)} is not a stream setting (the settings are the window, "
                                  "rate, front end, segment and detection options of `edgernn stream`; sources and "
                                  "sinks are given when streaming)")
    if args.wav_out is not None:
        raise SignalArgumentError("--stream: --wav-out names a file of one run; pass it to `edgernn stream`")
    options = {name: value for name, value in vars(args).items()
               if name not in FRONTEND_OPTIONS and value != parser.get_default(name)}
    meta = {OPTIONS_KEY: json.dumps(options)} if options else {}
    if args.features is not None:
        if args.window is None:
            raise SignalArgumentError("--stream: a front end needs --window (its analysis window) and --rate")
        spec = spec_from_args(args, args.window, args.hop or args.window)
        if args.rate is not None:
            spec = spec.at_rate(args.rate)
            FrontEnd(spec)                   # builds its tables: the settings that only fail there fail now
        meta[FRONTEND_KEY] = json.dumps(spec.to_dict())
    return meta


def stored_settings(metadata):
    """(options dict, FrontEndSpec or None) an .ernn's metadata holds (empty when none)."""
    from .frontend import FrontEndSpec
    try:
        options = json.loads(metadata.get(OPTIONS_KEY, "{}"))
        frontend = metadata.get(FRONTEND_KEY)
        spec = None if frontend is None else FrontEndSpec.from_dict(json.loads(frontend))
    except (ValueError, TypeError) as e:
        raise SignalArgumentError(f"the .ernn's stream settings cannot be read ({e}); convert the model again") from None
    if not isinstance(options, dict):
        raise SignalArgumentError("the .ernn's stream settings are not a JSON object; convert the model again")
    return options, spec


def apply_stored_settings(args, metadata, parser):
    """Set every stored option that ``args`` left at ``parser``'s default; returns the stored
    front end (or None) and the names of the options taken, for a message."""
    options, spec = stored_settings(metadata)
    taken = []
    for name, value in options.items():
        default = parser.get_default(name)
        if hasattr(args, name) and getattr(args, name) == default and value != default:
            setattr(args, name, value)
            taken.append(f"--{name.replace('_', '-')} {value}" if not isinstance(value, bool) else
                         f"--{name.replace('_', '-')}")
    return spec, taken
