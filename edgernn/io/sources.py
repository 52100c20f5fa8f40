"""The source of ``edgernn stream MODEL SOURCE``, chosen from SOURCE, at the model's rate.

=====================  ==================================================================
SOURCE                 read by
=====================  ==================================================================
a file                 :func:`.audio_file.read_audio`: WAV (standard library), FLAC, OGG,
                       AIFF, ... (soundfile), told apart by content
``-``                  sensor lines on stdin (:class:`.lines.LineSource`)
``-`` with ``--pcm``   raw PCM on stdin (:class:`.pcm.PcmSource`)
``mic[:DEVICE]``       a microphone (:class:`.mic.Microphone`, sounddevice/PortAudio)
``serial:PORT``        sensor lines from a serial port (:mod:`.serial_lines`, pyserial)
=====================  ==================================================================

:func:`open_source` gives (model, signal, rate, fields, live): the signal is a float32 array
[N] (a file, read whole) or, for a live source, ``live`` itself: an iterable of float32 blocks
([n] audio, [1, F] for lines of F fields) as they arrive, with ``live.samples`` (the samples
given so far) and ``live.report(out)`` (what was lost: garbled lines, dropped bytes, overruns).
Audio at another rate than ``--rate`` is resampled with soxr (:mod:`.resample`): a file at
once, a live source block by block. soundfile, soxr, sounddevice and pyserial are imported
only by the source that needs them (the ``edgernn[audio]`` extra).
"""
import argparse
import io
import sys

import numpy as np

from ..errors import AudioSourceError, EdgeRNNError
from .audio_file import read_audio
from .lines import LineSource
from .mic import QUEUE_SECONDS, Microphone, capture_settings, describe_devices, find_input_device, input_devices
from .pcm import ENCODINGS, PcmSource
from .resample import ResampledSource, describe, resample
from .serial_lines import BAUD, open_serial_lines

#: the help of SOURCE
SOURCE_HELP = ("an audio file (WAV; FLAC, OGG, ... with soundfile: by content), - for sensor lines (CSV: one sample "
               "of F numbers a line) or raw PCM (--pcm) on standard input, mic or mic:DEVICE (a microphone: an index "
               "or part of a name, --list-devices), or serial:PORT (sensor lines from a serial port)")
MIC, SERIAL = "mic", "serial:"
#: each kind of source, as the messages name it
KINDS = {"file": "an audio file", "lines": "sensor lines on standard input (-)",
         "pcm": "raw PCM on standard input (- --pcm)", "mic": "a microphone (mic[:DEVICE])",
         "serial": "a serial port (serial:PORT)"}
#: each option of :func:`add_source_options` (its argparse name) -> the kinds of source it is for
OPTION_KINDS = {"pcm": ("pcm",), "channels": ("pcm", "mic"), "source_rate": ("pcm", "mic"), "seconds": ("mic",),
                "queue_seconds": ("mic",), "baud": ("serial",)}


def add_source_options(sp):
    """The options of the live sources, on the ``edgernn stream`` parser ``sp``."""
    g = sp.add_argument_group("live sources (microphone, raw PCM on stdin, serial port)")
    g.add_argument("--pcm", choices=tuple(ENCODINGS), default=None,
                   help="SOURCE - is raw PCM of this encoding (interleaved frames), not text lines")
    g.add_argument("--channels", type=int, default=None, metavar="N",
                   help="channels of raw PCM (default 1) or to capture from a microphone (default 1, else 2); "
                        "averaged into one")
    g.add_argument("--source-rate", type=float, default=None, metavar="HZ",
                   help="the rate of raw PCM (default: --rate), or to capture a microphone at (default: --rate if "
                        "the device takes it, else its own); resampled to --rate with soxr")
    g.add_argument("--seconds", type=float, default=None, metavar="S",
                   help="stop a microphone after S seconds of audio (default: at Ctrl-C)")
    g.add_argument("--queue-seconds", type=float, default=None, metavar="S",
                   help="audio a microphone may buffer while the model catches up; beyond it blocks are dropped "
                        f"and counted as overruns (default {QUEUE_SECONDS:g})")
    g.add_argument("--baud", type=int, default=None, help=f"speed of a serial port (default {BAUD})")
    g.add_argument("--list-devices", action=ListInputDevices, nargs=0,
                   help="list the microphones (PortAudio's input devices) and exit")


class ListInputDevices(argparse.Action):
    """``--list-devices``: print the input devices and exit (MODEL and SOURCE not needed)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from ..cli import EXIT_ERROR
        try:
            text = describe_devices(input_devices())
        except AudioSourceError as e:
            parser.exit(EXIT_ERROR, f"edgernn: error: {e}\n")
        print(text)
        parser.exit(0)


def open_source(args, window, load_model):
    """(model, signal, rate, fields or None, live or None) for ``args.source`` (see the module
    docstring); ``load_model()`` loads the model, which a file source calls after reading the
    file and a microphone before opening the device."""
    source, kind = args.source, source_kind(args.source, args.pcm)
    for option, kinds in OPTION_KINDS.items():
        if getattr(args, option) is not None and kind not in kinds:
            raise AudioSourceError(f"--{option.replace('_', '-')} is for {' or '.join(KINDS[k] for k in kinds)}, "
                                   f"not {KINDS[kind]} ({source!r})")
    for option, value in (("--channels", args.channels), ("--source-rate", args.source_rate), ("--baud", args.baud)):
        if value is not None and not value > 0:
            raise AudioSourceError(f"{option} must be more than 0, got {value:g}")
    if kind == "lines":
        text = io.TextIOWrapper(sys.stdin.buffer, errors="replace", newline=None)   # bytes that are not text: skipped
        return _lines(args, window, load_model(), lambda fields: LineSource(text, fields))
    if kind == "serial":
        baud = args.baud or BAUD
        return _lines(args, window, load_model(), lambda fields: _serial(source[len(SERIAL):], fields, baud))
    if kind == "pcm":
        return _raw_pcm(args, load_model)
    if kind == "mic":
        return _microphone(args, window, load_model, source[len(MIC) + 1:] or None)
    return _audio_file(args, load_model)


def source_kind(source, pcm=None):
    """Which of :data:`KINDS` the SOURCE string ``source`` names (``pcm``: the --pcm encoding)."""
    if source == "-":
        return "lines" if pcm is None else "pcm"
    if source == MIC or source.startswith(MIC + ":"):
        return "mic"
    return "serial" if source.startswith(SERIAL) else "file"


def _serial(port, fields, baud):
    lines = open_serial_lines(port, fields, baud)
    print(f"edgernn: reading lines from the serial port {port} at {baud} baud", file=sys.stderr, flush=True)
    return lines


def _lines(args, window, model, open_lines):
    """A line source: F fields a line (``--fields``, or the model's input size / W) at ``--rate``
    (or the .ernn's frame period; else ``t`` counts lines)."""
    size = int(np.prod(model.inputs[0].frame_shape)) if len(model.inputs) == 1 else 0
    fields = args.fields or (size // window if size % window == 0 and size else None)
    if not fields:
        raise EdgeRNNError(f"--fields: how many numbers a line holds cannot follow from the model's input "
                           f"({size} values) and --window {window}; pass --fields F")
    from ..profile import stored_period
    period = stored_period(model)
    rate = args.rate or (1.0 / period if period else 1.0)
    if args.rate is None and not period:
        print("edgernn: no --rate for the lines: t counts lines", file=sys.stderr)
    lines = open_lines(fields)
    return model, lines, rate, fields, lines


def _audio_file(args, load_model):
    audio = read_audio(args.source)
    name = args.source
    if audio.channels > 1:
        print(f"edgernn: {name}: {audio.channels} channels, averaged to one", file=sys.stderr)
    if audio.truncated:
        print(f"edgernn: {name}: the data ends early (a truncated or corrupt file); read the "
              f"{audio.seconds:.3f} s before that", file=sys.stderr)
    samples, rate = audio.samples, audio.rate
    if args.rate is not None and rate != args.rate:
        samples = resample(samples, rate, args.rate, repr(name))
        print(f"edgernn: {name}: {describe(rate, args.rate)}", file=sys.stderr)
        rate = args.rate
    return load_model(), samples, rate, None, None


def _at_model_rate(live, rate, model_rate, name):
    """(the live source at the model's rate, that rate): resampled block by block when the two
    differ."""
    if model_rate is None or model_rate == rate:
        return live, rate
    resampled = ResampledSource(live, rate, model_rate, name)
    print(f"edgernn: {name}: {describe(rate, model_rate)}", file=sys.stderr)
    return resampled, model_rate


def _raw_pcm(args, load_model):
    rate = args.source_rate or args.rate
    if rate is None:
        raise AudioSourceError("raw PCM has no header to give its rate: pass --rate HZ (and --source-rate HZ when the "
                               "stream's rate is not the model's)")
    model = load_model()
    pcm = PcmSource(sys.stdin.buffer, args.pcm, 1 if args.channels is None else args.channels, "stdin")
    live, rate = _at_model_rate(pcm, rate, args.rate, "stdin")
    return model, live, rate, None, live


def _compile(model):
    """Step the model once on zeros, on a throwaway stream, so that its kernels are compiled (or
    loaded from the cache) before a live device opens and its samples start to queue."""
    if len(model.inputs) == 1:                  # else stream_signal says what to bind, later
        signal = model.inputs[0]
        model.stream().step(np.zeros(signal.frame_shape, signal.dtype))


def _microphone(args, window, load_model, device_spec):
    device = find_input_device(device_spec)                      # a wrong name fails before the model loads
    model = load_model()
    rate, channels = capture_settings(device, args.rate, args.channels, args.source_rate)
    _compile(model)
    hop = args.hop or window
    block = max(1, round(hop * rate / (args.rate or rate)))       # about one hop of the model per block
    queue_seconds = QUEUE_SECONDS if args.queue_seconds is None else args.queue_seconds
    mic = Microphone(device, rate, channels, block, queue_seconds, args.seconds)
    averaged = f", {channels} channels averaged" if channels > 1 else ""
    print(f"edgernn: listening to {mic.name} at {rate:g} Hz{averaged}", file=sys.stderr, flush=True)
    live, rate = _at_model_rate(mic, rate, args.rate, mic.name)
    return model, live, rate, None, live
