"""Does `edgernn.profile`'s p50 agree with a plain loop that times Stream.step by itself?

    python -m benchmarks.profile_agreement [--frames 20000] [--rounds 3]

For each model, alternately: (a) a plain loop written here, on its own loaded model and its
own random frames, timing every ``Stream.step`` with ``time.perf_counter`` and taking the
median; (b) ``edgernn.profile(...).latency_us["p50"]``. Each is run ``rounds`` times and the
median of the rounds is compared. Agreement means |profile / plain - 1| <= 20 %.
Prints a table and writes benchmarks/results/profile_agreement.json.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

import edgernn
from benchmarks.models import benchmark_models

OUT = Path(__file__).resolve().parent / "results" / "profile_agreement.json"


def plain_loop_p50_us(path, batch, frames, warmup=200, seed=123):
    model = edgernn.load(path)
    lead = () if batch is None else (batch,)
    rng = np.random.default_rng(seed)
    xs = [[rng.standard_normal(lead + t.frame_shape).astype(np.float32) for t in model.inputs] for _ in range(256)]
    s = model.stream(batch=batch)
    for i in range(warmup):
        s.step(*xs[i % 256])
    times = []
    for i in range(frames):
        x = xs[i % 256]
        t0 = time.perf_counter()
        s.step(*x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for label, path, batch in benchmark_models():
        plain, prof = [], []
        for _ in range(args.rounds):
            plain.append(plain_loop_p50_us(path, batch, args.frames))
            prof.append(edgernn.profile(path, frames=args.frames, batch=batch, breakdown=False,
                                        progress=False).latency_us["p50"])
        p, q = float(np.median(plain)), float(np.median(prof))
        rows.append({"model": label, "batch": batch, "profile_p50_us": q, "plain_loop_p50_us": p,
                     "ratio": q / p, "within_20pct": abs(q / p - 1) <= 0.2,
                     "rounds_plain": plain, "rounds_profile": prof})
        print(f"{label:<42} profile p50 {q:9.2f} us   plain loop p50 {p:9.2f} us   ratio {q / p:5.3f}"
              f"   {'OK' if abs(q / p - 1) <= 0.2 else 'DISAGREE'}", flush=True)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"frames": args.frames, "rounds": args.rounds, "rows": rows}, indent=2) + "\n")
    print(f"wrote {OUT}")
    return 0 if all(r["within_20pct"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
