"""Replay a BasicMotions test recording as sensor lines on stdout, paced like a live sensor.

    python examples/replay_sensor.py [--recording 0] [--rate 50] | \\
        edgernn stream examples/basic_motions.onnx - --window 1 --hop 1 --rate 50 --jsonl -

One CSV line per sample (a header, then acc_x, acc_y, acc_z, gyr_x, gyr_y, gyr_z), written
and flushed at ``--rate`` lines per second (0: as fast as the pipe takes them) on the
monotonic clock (sample i at start + i / rate, so the pace does not drift). The recordings
(examples/data/basic_motions.npz, the UEA BasicMotions test split: a smart watch at 10 Hz)
are replayed at 50 Hz by default to stand for a faster sensor; the model does not know time.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data" / "basic_motions.npz"
HEADER = "acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z"


def recording(k):
    d = np.load(DATA)
    lengths = d["test_lengths"]
    start = int(np.sum(lengths[:k]))
    return d["test_frames"][start:start + int(lengths[k])], int(d["test_labels"][k])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recording", type=int, default=0, help="index of the test recording (0-39)")
    ap.add_argument("--rate", type=float, default=50.0, help="lines per second (0: no pacing)")
    args = ap.parse_args(argv)
    frames, _ = recording(args.recording)
    out = sys.stdout
    out.write(HEADER + "\n")
    start = time.monotonic()
    for i, row in enumerate(frames):
        if args.rate > 0:
            wait = start + i / args.rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        out.write(",".join(repr(float(v)) for v in row) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
