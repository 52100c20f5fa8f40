"""The streaming front ends' cost per window: docs/front-ends.md's table.

    python benchmarks/front_ends.py [--windows 2000] [--json PATH]

Each setting's FrontEnd (edgernn/io/frontend) processes the windows of the bundled ARCTIC
recording (16 kHz, 10 ms hop) one at a time, each call timed with perf_counter_ns; with a
synthesis, each window's spectrum is also turned back into audio (an all-ones mask). The table
gives the median per window (features, plus resynthesis where named), after a warm-up pass.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import machine, write_json  # noqa: E402
from edgernn.io.framing import frame_signal  # noqa: E402
from edgernn.io.frontend import FrontEnd  # noqa: E402
from edgernn.io.wav import read_wav  # noqa: E402

RATE, HOP = 16000, 160
SETTINGS = [
    ("logmel, n_fft 512, W 400, 40 mels", 400, dict(features="logmel", n_fft=512, n_mels=40)),
    ("mfcc, n_fft 512, W 400, 40 mels, 13 coefficients", 400, dict(features="mfcc", n_fft=512, n_mels=40, n_mfcc=13)),
    ("logmel, n_fft 400 (DFT basis), 40 mels", 400, dict(features="logmel", n_fft=400, n_mels=40)),
    ("power, n_fft 512, + mask resynthesis", 512, dict(features="power", n_fft=512, synthesis="mask")),
    ("power, n_fft 400, + mask resynthesis", 400, dict(features="power", n_fft=400, synthesis="mask")),
]


def per_window_us(fe, windows):
    ones = None if not fe.synthesizes else np.ones(fe.synthesis_size, np.float32)
    clock, times = time.perf_counter_ns, np.empty(len(windows))
    for k in range(2):                                   # the first pass warms up
        fe.reset()
        for i, w in enumerate(windows):
            t0 = clock()
            fe.process(w)
            if ones is not None:
                fe.synthesize(ones)
            times[i] = clock() - t0
    return float(np.median(times)) / 1e3


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--windows", type=int, default=2000)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    signal = read_wav(ROOT / "tests" / "fixtures" / "audio" / "arctic_a0007.wav").samples
    rows = []
    print("| front end | per window, µs |\n|---|---|")
    for name, window, options in SETTINGS:
        windows = frame_signal(signal, window, HOP)
        windows = np.resize(windows, (a.windows, window)).astype(np.float32)
        fe = FrontEnd.from_options(RATE, window, HOP, **options)
        us = per_window_us(fe, windows)
        rows.append({"front_end": name, "per_window_us": us})
        print(f"| {name} | {us:.1f} |")
    if a.json:
        write_json({"machine": machine(), "rows": rows}, a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
