"""``edgernn stream MODEL SOURCE``: a recording through a model, one window per step.

    edgernn stream silero_vad.onnx speech.wav --window 576 --hop 512 --constant sr=16000 \\
        --jsonl out.jsonl --segments

Reads the source (an audio file, ``-`` for sensor lines or raw PCM on stdin, ``mic[:DEVICE]``, ``serial:PORT``:
:mod:`.sources`), frames it (``--window W --hop H``, the first
window after W - H zeros: :mod:`.framing`), steps the model once per window
(:mod:`.run`; ``--realtime`` plays the file at its rate), writes one JSON line per output step (``--jsonl PATH``, ``-`` for stdout),
prints speech segments from a probability output (``--segments``: silero-vad's rules,
:mod:`.segments`) and, at the end (also on Ctrl-C), the step latency percentiles, the
real-time factor and the steps that took longer than their hop (deadline misses).
A model whose input size is open (silero-vad) gets it from ``--window``.
"""
import sys
import time

import numpy as np

from ..errors import EdgeRNNError, SignalArgumentError, UnsupportedModelError
from .detections import add_detection_options, detector_from_args
from .framing import check_window
from .frontend import FrontEnd, add_frontend_options, spec_from_args
from .run import StepStats, stream_signal
from .segments import SpeechSegmenter
from .settings import apply_stored_settings
from .sources import SOURCE_HELP, add_source_options, open_source
from .wav_out import WavWriter


def add_stream_parser(sub, model_args):
    sp = sub.add_parser("stream", help="stream a recording through a model, window by window (JSON lines, "
                                       "speech segments, latency against the hop)",
                        description=__doc__.split("\n\n")[2].replace("\n", " "))
    model_args(sp)                                  # MODEL and the loading options
    sp.add_argument("source", metavar="SOURCE", help=SOURCE_HELP)
    add_stream_settings(sp)                         # what an .ernn can store (edgernn convert --stream)
    sp.add_argument("--realtime", action="store_true", help="play the file at its real rate (one step per hop "
                                                            "of wall time)")
    sp.add_argument("--jsonl", default=None, metavar="PATH", help="one JSON object per output step ('-': stdout)")
    add_source_options(sp)                          # --pcm, --channels, --baud, --list-devices, ...
    sp.set_defaults(func=cmd_stream, stream_parser=sp)
    return sp


def add_stream_settings(parser, labels=True):
    """The options of ``edgernn stream`` that describe the model's signal and events (window,
    rate, front end, segments, detections): what ``edgernn convert --stream`` stores in an .ernn
    (:mod:`.settings`). ``labels``: include --labels (convert has its own)."""
    parser.add_argument("--window", type=int, default=None, metavar="W",
                        help="samples (lines) per step's window (required, unless the .ernn stores it)")
    parser.add_argument("--fields", type=int, default=None, metavar="F",
                        help="numbers per line of a line source (default: the model's input size / W)")
    parser.add_argument("--hop", type=int, default=None, metavar="H", help="new samples per step (default: W)")
    parser.add_argument("--rate", type=float, default=None, metavar="HZ",
                        help="the sample rate the model takes (audio at another rate is resampled with soxr); for "
                             "lines, their rate (default: the .ernn's frame period, else t counts lines)")
    parser.add_argument("--score", default=None, metavar="NAME",
                        help="the output holding the speech probability or class scores (default: the first output)")
    parser.add_argument("--segments", action="store_true", help="print speech segments from a probability output "
                                                                "(its first value)")
    parser.add_argument("--threshold", type=float, default=0.5, help="speech starts at a probability >= this (0.5)")
    parser.add_argument("--neg-threshold", type=float, default=None,
                        help="and ends below this (default: threshold - 0.15, at least 0.01)")
    parser.add_argument("--min-speech-ms", type=float, default=250, help="shorter segments are dropped (250)")
    parser.add_argument("--min-silence-ms", type=float, default=100, help="silence that ends a segment (100)")
    parser.add_argument("--speech-pad-ms", type=float, default=30, help="padding on each side of a segment (30)")
    parser.add_argument("--max-speech-s", type=float, default=float("inf"),
                        help="cut longer segments at a silence inside them (default: no limit)")
    parser.add_argument("--min-silence-at-max-speech-ms", type=float, default=98,
                        help="the silences a cut may use are longer than this (98)")
    parser.add_argument("--cut-at-last-silence", action="store_true",
                        help="cut at the last such silence, not the longest (silero-vad's "
                             "use_max_poss_sil_at_max_speech=False)")
    add_detection_options(parser, labels)           # --detect, --labels, --smooth-steps, ...
    add_frontend_options(parser)                    # --features, --n-fft, --n-mels, ..., --wav-out


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
    stored = _apply_stored_settings(args)                      # an .ernn's settings, for options left unset
    if args.window is None:
        raise SignalArgumentError("--window W is required (the samples, or lines, of each step's window), unless "
                                  "the model is an .ernn that stores it (edgernn convert --stream)")
    window, hop = check_window(args.window, args.hop if args.hop is not None else args.window)
    spec = spec_from_args(args, window, hop)                    # the front end; None: the model takes the window
    if spec is None and stored is not None:
        if (stored.win_length, stored.hop) != (window, hop):
            raise SignalArgumentError(f"the .ernn's front end takes windows of {stored.win_length} samples every "
                                      f"{stored.hop}, not --window {window} --hop {hop}; drop those options")
        spec = stored
    if spec is not None:                 # compiled before a live source (a microphone) starts to queue samples
        try:
            FrontEnd(spec.at_rate(args.rate or 48000.0)).warm_up()
        except SignalArgumentError:      # a setting this rate cannot take: said below, at the signal's rate
            pass
    model, samples, rate, fields, live = _open_source(args, load_options(args), window)
    frontend = None if spec is None else FrontEnd(spec.at_rate(rate))
    wav_out = None
    names = [o.name for o in model.outputs]
    score = args.score if args.score is not None else names[0]
    if score not in names:
        raise EdgeRNNError(f"--score {score!r}: the model's outputs are {', '.join(names)}")
    segmenter = SpeechSegmenter(rate, hop * model.output_stride, args.threshold, args.neg_threshold,
                                args.min_speech_ms, args.min_silence_ms, args.speech_pad_ms, args.max_speech_s,
                                args.min_silence_at_max_speech_ms, not args.cut_at_last_silence) \
        if args.segments else None
    detector = detector_from_args(args, model)                  # --detect: class detections, printed live
    output_period = model.output_stride * hop / rate
    sink = None if args.jsonl is None else sys.stdout if args.jsonl == "-" else open(args.jsonl, "w")
    report = sys.stderr if args.jsonl == "-" else sys.stdout
    stats = StepStats(hop / rate)
    started, total = None, 0
    try:
        steps = stream_signal(model, samples, rate, window, hop, stats, realtime=args.realtime, fields=fields,
                              frontend=frontend)
        for step in steps:
            started = started or time.monotonic() - step.t          # the signal's start on the wall clock
            if sink is not None:
                sink.write(step.to_json() + "\n")
                sink.flush() if live is not None else None           # a live source: each step as it comes
            if segmenter is not None:
                for seg in segmenter.update(float(np.ravel(step.outputs[score])[0])):
                    _print_segment(seg, report)
            if detector is not None:
                for det in detector.update(step.outputs[score]):
                    _print_detection(det, output_period, report)
            if step.audio is not None:                               # --wav-out: aligned with the input
                wav_out = wav_out or WavWriter(args.wav_out, rate, skip=frontend.latency)
                wav_out.write(step.audio, len(samples) if live is None else live.samples)
        total = len(samples) if live is None else live.samples
        if wav_out is not None:
            wav_out.write(frontend.finish(), total)
        if segmenter is not None:
            for seg in segmenter.finish(total):
                _print_segment(seg, report)
        if detector is not None:
            for det in detector.finish():
                _print_detection(det, output_period, report)
    except KeyboardInterrupt:
        print("edgernn: interrupted; the figures so far:", file=sys.stderr)
    finally:
        if sink is not None and sink is not sys.stdout:
            sink.close()
        if wav_out is not None:
            wav_out.close()
        seconds = len(samples) / rate if live is None else len(stats.times) * hop / rate
        _print_stats(stats.report(seconds), report)
        if live is not None:
            live.report(sys.stderr)                                  # skipped lines, dropped bytes, overruns
        if args.realtime and started is not None:
            print(f"wall time {time.monotonic() - started:.3f} s for {seconds:.3f} s of signal", file=report)
    return 0


def _apply_stored_settings(args):
    """Take an .ernn's stream settings (:mod:`.settings`) for the options ``args`` left at their
    defaults; returns its stored front end or None."""
    from ..formats.ernn import MAGIC, read_ernn
    try:
        with open(args.model, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                return None
    except OSError:
        return None                     # loading the model says what is wrong with the path
    spec, taken = apply_stored_settings(args, read_ernn(args.model, verify=False).metadata, args.stream_parser)
    if taken or spec is not None:
        what = taken + ([f"front end {spec.describe()}"] if spec is not None and args.features is None else [])
        print(f"edgernn: the .ernn's stream settings: {', '.join(what)}", file=sys.stderr)
    return spec


def _open_source(args, opts, window):
    """(model, samples or a live iterable of blocks, rate, fields or None, the live source or None):
    :func:`.sources.open_source` picks the source from SOURCE."""
    return open_source(args, window, lambda: _load_for_window(args.model, opts, window))


def _print_segment(seg, out):
    start, end = seg.seconds()
    print(f"speech {start:8.3f} s - {end:8.3f} s  (samples {seg.start}-{seg.end})", file=out, flush=True)


def _print_detection(det, period, out):
    d = det.to_dict(period)
    if det.end is None:
        print(f"detected {det.label!r} at {d['t']:8.3f} s  (step {det.start}, score {det.peak:.3f})", file=out, flush=True)
    else:
        print(f"  {det.label!r} ended at {d['end_t']:8.3f} s  (step {det.end}, peak score {det.peak:.3f})", file=out,
              flush=True)


def _print_stats(r, out):
    if not r.get("steps"):
        print("no steps were run", file=out)
        return
    print(f"{r['steps']} steps over {r['signal_s']:.2f} s of signal; step latency p50 {r['p50_us']:.1f} µs, "
          f"p90 {r['p90_us']:.1f}, p99 {r['p99_us']:.1f}, max {r['max_us']:.1f}; real-time factor "
          f"{r['real_time_factor']:.4f}; deadline {r['deadline_us']:.0f} µs per hop, "
          f"{r['deadline_misses']} missed", file=out)
    if "frontend_p50_us" in r:
        print(f"of which the front end (features, resynthesis): p50 {r['frontend_p50_us']:.1f} µs, max "
              f"{r['frontend_max_us']:.1f}", file=out)
