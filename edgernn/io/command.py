"""``edgernn stream MODEL SOURCE``: a recording through a model, one window per step.

    edgernn stream silero_vad.onnx speech.wav --window 576 --hop 512 --constant sr=16000 \\
        --jsonl out.jsonl --segments

Reads the source (a PCM WAV file: :mod:`.wav`; ``-``: sensor lines on stdin, :mod:`.lines`), frames it (``--window W --hop H``, the first
window after W - H zeros: :mod:`.framing`), steps the model once per window
(:mod:`.run`; ``--realtime`` plays the file at its rate), writes one JSON line per output step (``--jsonl PATH``, ``-`` for stdout),
prints speech segments from a probability output (``--segments``: silero-vad's rules,
:mod:`.segments`) and, at the end (also on Ctrl-C), the step latency percentiles, the
real-time factor and the steps that took longer than their hop (deadline misses).
A model whose input size is open (silero-vad) gets it from ``--window``.
"""
import io
import sys
import time

import numpy as np

from ..errors import AudioSourceError, EdgeRNNError, UnsupportedModelError
from .framing import check_window
from .lines import LineSource
from .run import StepStats, stream_signal
from .segments import SpeechSegmenter
from .wav import read_wav


def add_stream_parser(sub, model_args):
    sp = sub.add_parser("stream", help="stream a recording through a model, window by window (JSON lines, "
                                       "speech segments, latency against the hop)",
                        description=__doc__.split("\n\n")[2].replace("\n", " "))
    model_args(sp)                                  # MODEL and the loading options
    sp.add_argument("source", metavar="SOURCE", help="a PCM WAV file (mono, or channels averaged), or - for sensor "
                                                     "lines on standard input (CSV: one sample of F numbers a line)")
    sp.add_argument("--window", type=int, required=True, metavar="W", help="samples (lines) per step's window")
    sp.add_argument("--fields", type=int, default=None, metavar="F",
                    help="numbers per line of a line source (default: the model's input size / W)")
    sp.add_argument("--hop", type=int, default=None, metavar="H", help="new samples per step (default: W)")
    sp.add_argument("--rate", type=float, default=None, metavar="HZ",
                    help="the sample rate the model takes (a WAV at another rate is refused); for lines, their "
                         "rate (default: the .ernn's frame period, else t counts lines)")
    sp.add_argument("--realtime", action="store_true", help="play the file at its real rate (one step per hop "
                                                            "of wall time)")
    sp.add_argument("--jsonl", default=None, metavar="PATH", help="one JSON object per output step ('-': stdout)")
    sp.add_argument("--segments", action="store_true", help="print speech segments from a probability output")
    sp.add_argument("--score", default=None, metavar="NAME", help="the output holding the probability "
                                                                  "(default: the first output; its first value)")
    sp.add_argument("--threshold", type=float, default=0.5, help="speech starts at a probability >= this (0.5)")
    sp.add_argument("--neg-threshold", type=float, default=None,
                    help="and ends below this (default: threshold - 0.15, at least 0.01)")
    sp.add_argument("--min-speech-ms", type=float, default=250, help="shorter segments are dropped (250)")
    sp.add_argument("--min-silence-ms", type=float, default=100, help="silence that ends a segment (100)")
    sp.add_argument("--speech-pad-ms", type=float, default=30, help="padding on each side of a segment (30)")
    sp.set_defaults(func=cmd_stream)
    return sp


def _load_for_window(path, opts, window):
    """edgernn.load, giving a model whose signal input size is open the window as its size."""
    from .. import load
    try:
        return load(path, **opts)
    except UnsupportedModelError as e:
        if "shapes=" not in str(e) or opts.get("shapes"):
            raise
        name = _open_input(path, opts.get("constants") or {})
        if name is None:
            raise
        return load(path, **{**opts, "shapes": {name: [window]}})


def _open_input(path, constants):
    """The first ONNX graph input that is not bound by a constant (the signal), or None."""
    try:
        import onnx
        g = onnx.load(str(path), load_external_data=False).graph
    except Exception:          # noqa: BLE001 -- not ONNX or no onnx package: keep the first error
        return None
    stored = {t.name for t in g.initializer}
    names = [i.name for i in g.input if i.name not in stored and i.name not in constants]
    return names[0] if names else None


def cmd_stream(args):
    from ..cli import load_options
    window, hop = check_window(args.window, args.hop if args.hop is not None else args.window)
    model, samples, rate, fields, lines = _open_source(args, load_options(args), window)
    names = [o.name for o in model.outputs]
    score = args.score if args.score is not None else names[0]
    if score not in names:
        raise EdgeRNNError(f"--score {score!r}: the model's outputs are {', '.join(names)}")
    segmenter = SpeechSegmenter(rate, hop * model.output_stride, args.threshold, args.neg_threshold,
                                args.min_speech_ms, args.min_silence_ms, args.speech_pad_ms) if args.segments else None
    sink = None if args.jsonl is None else sys.stdout if args.jsonl == "-" else open(args.jsonl, "w")
    report = sys.stderr if args.jsonl == "-" else sys.stdout
    stats = StepStats(hop / rate)
    started, total = None, 0
    try:
        steps = stream_signal(model, samples, rate, window, hop, stats, realtime=args.realtime, fields=fields)
        for step in steps:
            started = started or time.monotonic() - step.t          # the signal's start on the wall clock
            if sink is not None:
                sink.write(step.to_json() + "\n")
                sink.flush() if lines is not None else None          # a live source: each line as it comes
            if segmenter is not None:
                for seg in segmenter.update(float(np.ravel(step.outputs[score])[0])):
                    _print_segment(seg, report)
        total = len(samples) if lines is None else lines.lines - lines.skipped
        if segmenter is not None:
            for seg in segmenter.finish(total):
                _print_segment(seg, report)
    except KeyboardInterrupt:
        print("edgernn: interrupted; the figures so far:", file=sys.stderr)
    finally:
        if sink is not None and sink is not sys.stdout:
            sink.close()
        seconds = len(samples) / rate if lines is None else len(stats.times) * hop / rate
        _print_stats(stats.report(seconds), report)
        if lines is not None and lines.skipped:
            line, why = lines.first_bad
            print(f"edgernn: skipped {lines.skipped} of {lines.lines} input lines (the first: line {line}, {why})",
                  file=sys.stderr)
        if args.realtime and started is not None:
            print(f"wall time {time.monotonic() - started:.3f} s for {seconds:.3f} s of signal", file=report)
    return 0


def _open_source(args, opts, window):
    """(model, samples or a live iterable, rate, fields or None, the LineSource or None)."""
    if args.source == "-":
        model = _load_for_window(args.model, opts, window)
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
        text = io.TextIOWrapper(sys.stdin.buffer, errors="replace", newline=None)   # bytes that are not text: skipped lines
        lines = LineSource(text, fields)
        return model, lines, rate, fields, lines
    audio = read_wav(args.source)
    if args.rate is not None and audio.rate != args.rate:
        raise AudioSourceError(f"{args.source!r} is sampled at {audio.rate} Hz but the model takes {args.rate:g} Hz; "
                               "resampling is not built yet: convert it, e.g. `sox IN -r RATE OUT.wav`")
    if audio.channels > 1:
        print(f"edgernn: {args.source}: {audio.channels} channels, averaged to one", file=sys.stderr)
    if audio.truncated:
        print(f"edgernn: {args.source}: the data ends inside a frame (a truncated file); read up to its last whole "
              "frame", file=sys.stderr)
    return _load_for_window(args.model, opts, window), audio.samples, audio.rate, None, None


def _print_segment(seg, out):
    start, end = seg.seconds()
    print(f"speech {start:8.3f} s - {end:8.3f} s  (samples {seg.start}-{seg.end})", file=out, flush=True)


def _print_stats(r, out):
    if not r.get("steps"):
        print("no steps were run", file=out)
        return
    print(f"{r['steps']} steps over {r['signal_s']:.2f} s of signal; step latency p50 {r['p50_us']:.1f} µs, "
          f"p90 {r['p90_us']:.1f}, p99 {r['p99_us']:.1f}, max {r['max_us']:.1f}; real-time factor "
          f"{r['real_time_factor']:.4f}; deadline {r['deadline_us']:.0f} µs per hop, "
          f"{r['deadline_misses']} missed", file=out)
