"""Stream held-out recordings through edgernn one frame at a time, as a device would.

    python examples/stream_recordings.py [MODEL.onnx] [--show all|errors|none]

MODEL defaults to examples/japanese_vowels.onnx (name the speaker of a Japanese vowel
utterance from 12 LPC cepstrum coefficients per 6.4 ms frame); examples/basic_motions.onnx
names a smart-watch activity from 6 channels at 10 Hz. Next to each model, <model>.json (made
by ``python -m exporters.train_examples``) names its data file, classes and frame period, and
holds PyTorch's per-frame predictions on the same recordings.

For every test recording the script resets one stream (``Stream.reset()``: a fresh state, as
when a new utterance starts), feeds its frames one ``Stream.step`` at a time, and reads the
running prediction (argmax of the logits) after every frame. It prints one line per recording
(the running prediction run-length encoded: ``3(2) 7(15)`` = class 3 for 2 frames, then 7
for 15), then the accuracy (prediction at each recording's last frame) next to PyTorch's, whether
every frame's prediction equals PyTorch's, and the per-frame latency: p50/p99 of the wall time
of each ``Stream.step`` call, and the real-time factor (step time / frame period; below 1
keeps up with the sensor).

Needs only NumPy, Numba and edgernn with its ONNX extra (no torch). Exit status 1 if any
frame's prediction differs from PyTorch's.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import edgernn

HERE = Path(__file__).resolve().parent


def recordings(data_file: Path, split: str = "test"):
    """([frames (T_k, F) float32 per recording], labels (N,) int) of one split."""
    with np.load(data_file) as z:
        lengths, frames, labels = z[f"{split}_lengths"], z[f"{split}_frames"], z[f"{split}_labels"]
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return [frames[o:o + n] for o, n in zip(offsets, lengths)], labels


def run_length(preds, classes) -> str:
    """[2, 2, 6, 6, 6] -> '3(2) 7(3)': class names, each with its number of frames."""
    runs, start = [], 0
    for t in range(1, len(preds) + 1):
        if t == len(preds) or preds[t] != preds[start]:
            runs.append(f"{classes[preds[start]]}({t - start})")
            start = t
    return " ".join(runs)


def stream_all(model, recs):
    """Stream each recording from a fresh state, one step per frame: (per-frame predictions
    per recording, step wall times in seconds, shape (total frames,))."""
    s = model.stream()
    preds, times = [], []
    clock = time.perf_counter
    for frames in recs:
        s.reset()
        p = []
        for frame in frames:
            t0 = clock()
            logits = s.step(frame)
            times.append(clock() - t0)
            p.append(int(np.argmax(logits)))
        preds.append(p)
    return preds, np.array(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=str(HERE / "japanese_vowels.onnx"),
                    help="a model with a <model>.json card beside it (default: %(default)s)")
    ap.add_argument("--show", choices=("all", "errors", "none"), default="all",
                    help="which recordings get a line (default: %(default)s)")
    args = ap.parse_args(argv)

    model_path = Path(args.model)
    card_path = model_path.with_suffix(".json")
    if not card_path.exists():
        print(f"error: no {card_path} beside the model; it names the data, classes and frame period "
              "(made by python -m exporters.train_examples)", file=sys.stderr)
        return 2
    card = json.loads(card_path.read_text())
    classes, period = card["classes"], float(card["frame_period_s"])
    recs, labels = recordings(card_path.parent / card["data"])

    t0 = time.perf_counter()
    model = edgernn.load(model_path)
    model.stream().step(recs[0][0])               # compile, or load Numba's cache, untimed
    t_ready = time.perf_counter() - t0

    preds, times = stream_all(model, recs)

    torch_preds = card.get("torch_frame_predictions")
    w = len(str(len(recs)))
    cw = max(len(c) for c in classes)
    for k, (p, y) in enumerate(zip(preds, labels)):
        ok = p[-1] == y
        if args.show == "all" or (args.show == "errors" and not ok):
            print(f"#{k:<{w}} true {classes[y]:<{cw}} pred {classes[p[-1]]:<{cw}} "
                  f"{'ok   ' if ok else 'WRONG'} {len(p):>3} frames: {run_length(p, classes)}")

    n, n_frames = len(recs), int(sum(len(r) for r in recs))
    correct = sum(p[-1] == y for p, y in zip(preds, labels))
    us = "µs" if (sys.stdout.encoding or "").lower().startswith("utf") else "us"
    p50, p99 = np.percentile(times, [50, 99]) * 1e6
    print(f"\n{model_path.name}: {card['model']}")
    print(f"{n} test recordings, {n_frames} frames, one Stream.step per frame, Stream.reset() "
          f"before each recording; load + compile {t_ready:.2f} s (not timed below)")
    line = f"accuracy (prediction at the last frame): edgernn {correct / n:.2%} ({correct}/{n})"
    if "torch_test_accuracy" in card:
        line += f", PyTorch {card['torch_test_accuracy']:.2%} (recorded in {card_path.name})"
    print(line)
    status = 0
    if torch_preds is not None:
        same_frames = sum(a == b for p, q in zip(preds, torch_preds) for a, b in zip(p, q))
        same_recs = sum(p == q for p, q in zip(preds, torch_preds))
        print(f"same prediction as PyTorch: {same_frames}/{n_frames} frames, {same_recs}/{n} recordings")
        status = 0 if same_recs == n and len(torch_preds) == n else 1
    print(f"latency per frame (Stream.step wall time, this machine): p50 {p50:.1f} {us}, "
          f"p99 {p99:.1f} {us}, max {times.max() * 1e6:.1f} {us}")
    print(f"real-time factor at one frame per {period * 1e3:g} ms: p50 {p50 * 1e-6 / period:.2g}, "
          f"p99 {p99 * 1e-6 / period:.2g} (step time / frame period; p50 {period / (p50 * 1e-6):,.0f}x "
          "faster than real time)")
    print(f"frame period: {card['source']}")
    return status


if __name__ == "__main__":
    sys.exit(main())
