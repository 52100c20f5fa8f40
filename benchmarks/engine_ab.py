"""This checkout's engine against another checkout's (e.g. the engine before a change), same
models, same machine, processes interleaved.

    python -m benchmarks.engine_ab OTHER_CHECKOUT [--rounds 4] [--frames 20000] [--weights "int8 act"] [--json PATH]

For each benchmark model (exporters/synthetic.py) and each round, one fresh process per
checkout, taking turns, loads the ONNX file (float32 weights, or ``--weights``: a key of
benchmarks/perf.py's EDGERNN_WEIGHTS, "int8" or "int8 act"), and measures
- ``step_us``: the p50 of ``Stream.step`` over --frames single-frame calls (perf_counter_ns
  around each call, after 2000 warm-up calls): what benchmarks/perf.py reports as single;
- ``engine_us``: the program alone in a native loop (edgernn.breakdown.time_rows).
The report gives each checkout's median and best over the rounds and the ratios this /
other: the process-to-process spread (benchmarks/process_spread.py; bimodal on some models,
which pages a process gets) is why one pair of runs is not enough, and why the best of each
side is printed beside the medians. Both checkouts keep their own Numba cache (warmed by an untimed first process).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.perf import EDGERNN_WEIGHTS  # noqa: E402
from exporters.synthetic import SHAPES, named_model  # noqa: E402

CHILD = r"""
import json, sys, time
import numpy as np
import edgernn
from edgernn.breakdown import time_rows
path, frames = sys.argv[1], int(sys.argv[2])
m = edgernn.load(path, **json.loads(sys.argv[3]))
s = m.stream()
xs = np.random.default_rng(1).standard_normal((frames + 2000,) + m.inputs[0].frame_shape).astype(np.float32)
step, clock = s.step, time.perf_counter_ns
for x in xs[:2000]:
    step(x)
t = np.empty(frames)
for i in range(frames):
    x = xs[2000 + i]
    t0 = clock()
    step(x)
    t[i] = clock() - t0
engine = time_rows(m.plan, s._work.copy(), m.plan.prog)
print(json.dumps({"step_us": float(np.median(t)) / 1e3, "engine_us": engine * 1e6}))
"""


def run_child(checkout, model_path, frames, load=None):
    env = dict(os.environ, PYTHONPATH=str(checkout), OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", CHILD, str(model_path), str(frames), json.dumps(load or {})],
                         cwd=checkout, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{checkout}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("other", help="the other checkout's root folder")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--models", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    ap.add_argument("--weights", default="float32", choices=list(EDGERNN_WEIGHTS),
                    help="what both checkouts load the models with")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args(argv)
    load = EDGERNN_WEIGHTS[a.weights]
    checkouts = {"this": ROOT, "other": Path(a.other).resolve()}
    report = {"other": str(checkouts["other"]), "weights": a.weights, "models": {}}
    with tempfile.TemporaryDirectory() as d:
        for model in a.models:
            path = Path(d) / f"{model}.onnx"
            path.write_bytes(named_model(model).SerializeToString())
            runs = {k: [] for k in checkouts}
            for k, c in checkouts.items():             # untimed: fills each checkout's cache
                run_child(c, path, 100, load)
            for _ in range(a.rounds):
                for k, c in checkouts.items():
                    runs[k].append(run_child(c, path, a.frames, load))
            med = {k: {m: statistics.median(r[m] for r in v) for m in ("step_us", "engine_us")}
                   for k, v in runs.items()}
            best = {k: {m: min(r[m] for r in v) for m in ("step_us", "engine_us")} for k, v in runs.items()}
            report["models"][model] = {"runs": runs, "median": med, "best": best}
    print(f"this checkout ({ROOT}) against {checkouts['other']}, {a.rounds} processes each, weights {a.weights}")
    print(f"{'model':<12}{'':<8}{'step this':>11}{'step other':>12}{'ratio':>8}{'engine this':>13}{'engine other':>14}"
          f"{'ratio':>8}")
    for model, r in report["models"].items():
        for label in ("median", "best"):
            m = r[label]
            print(f"{model if label == 'median' else '':<12}{label:<8}{m['this']['step_us']:>9.2f}µs"
                  f"{m['other']['step_us']:>10.2f}µs{m['this']['step_us'] / m['other']['step_us']:>8.3f}"
                  f"{m['this']['engine_us']:>11.2f}µs{m['other']['engine_us']:>12.2f}µs"
                  f"{m['this']['engine_us'] / m['other']['engine_us']:>8.3f}")
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
