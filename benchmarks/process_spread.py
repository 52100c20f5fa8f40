"""How much the same step's time differs from one process to the next.

    python -m benchmarks.process_spread [gru1x37] [--processes 8] [--weights float32] [--source onnx]
    python -m benchmarks.process_spread --all [--processes 8] [--json PATH]     # issue 18's table

Starts ``--processes`` fresh Python processes one after another. Each loads the model (one of
exporters/synthetic.py's benchmark models, from its ONNX file, its TFLite file in
benchmarks/models/ or an .ernn file converted from the ONNX one) and measures
- ``step_us``: the p50 of ``Stream.step`` over 20,000 single-frame calls (after 2,000 warm-up
  calls), what benchmarks/perf.py reports as single;
- ``engine_us``: the program alone in a native loop (``edgernn.breakdown.time_rows``);
- ``floor_us``: numpy's sgemv over matrices of the model's weight shapes (benchmarks/perf.py's
  BLAS floor: the same bytes per call, in numpy's own arrays, one BLAS thread), the p50 of
  2,000 calls: when a process is fast or slow for edgernn and for this too, it is the machine
  (where the process's memory or core landed), not edgernn;
- whether its constant arena is on huge pages (``edgernn.memory``; an .ernn's is the mapped
  file, whose page-cache pages every process of the same file shares; ``--copies`` gives each
  process a new copy of the file, so pages of its own).
The report gives each process's figures, then min, median, max and max/min of each. ``--all``
runs every model x source x weights and says, per line, whether ``step_us``'s max/min is
within TARGET (1.05). ``EDGERNN_HUGE_PAGES=0`` in the environment shows the spread without
huge pages.

Within one process these figures repeat to a few per cent. If the spread across processes is
larger than an effect, then one A/B pair of runs cannot show that effect: compare the medians
of several processes per variant.
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

from exporters.synthetic import SHAPES  # noqa: E402

TARGET = 1.05
SOURCES = ("onnx", "tflite", "ernn")
TFLITE = ROOT / "benchmarks" / "models"


def model_path(model, source, weights, folder):
    """The file a process loads, and the weights option to load it with."""
    from exporters.synthetic import named_model
    if source == "tflite":
        return TFLITE / f"{model}{'_int8' if weights == 'int8' else ''}.tflite", "float32"
    if source == "ernn":
        from edgernn.convert import convert
        path = Path(folder) / f"{model}_{weights}.ernn"
        if not path.exists():
            convert(named_model(model).SerializeToString(), path, weights=weights)
        return path, "float32"
    path = Path(folder) / f"{model}.onnx"
    if not path.exists():
        path.write_bytes(named_model(model).SerializeToString())
    return path, weights


def measure(path, weights, model):
    """This process's figures for the model at ``path`` (``model``: its name, for the floor)."""
    import time

    import numpy as np

    import edgernn
    from benchmarks.perf import floor_runner
    from edgernn.breakdown import time_rows
    from edgernn.memory import huge_page_bytes_of
    m = edgernn.load(str(path), weights=weights)
    s = m.stream()
    xs = np.random.default_rng(1).standard_normal((22000,) + m.inputs[0].frame_shape).astype(np.float32)
    step, clock = s.step, time.perf_counter_ns
    for x in xs[:2000]:
        step(x)
    times = np.empty(20000)
    for i, x in enumerate(xs[2000:]):
        t0 = clock()
        step(x)
        times[i] = clock() - t0
    floor, _ = floor_runner(model)
    floor_times = np.empty(2000)
    for i in range(floor_times.size):
        t0 = clock()
        floor(None)
        floor_times[i] = clock() - t0
    huge, advised = huge_page_bytes_of(m.plan.consts)
    return {"step_us": float(np.median(times)) / 1e3, "floor_us": float(np.median(floor_times)) / 1e3,
            "engine_us": time_rows(m.plan, s._work.copy(), m.plan.prog) * 1e6,
            "weights_bytes": int(m.plan.consts.nbytes), "huge_page_bytes": huge, "advised": advised}


def spread(model, source, weights, processes, folder, copies=False):
    path, load_weights = model_path(model, source, weights, folder)
    runs = []
    for i in range(processes):
        if copies:                      # a new file: its bytes on page-cache pages of its own
            fresh = Path(folder) / f"copy{i}{path.suffix}"
            fresh.write_bytes(path.read_bytes())
        out = subprocess.run([sys.executable, "-m", "benchmarks.process_spread", "--one", str(fresh if copies else path),
                              "--weights", load_weights, model], cwd=ROOT, capture_output=True, text=True,
                             check=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                                                  MKL_NUM_THREADS="1")).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    summary = {"model": model, "source": source, "weights": weights, "runs": runs}
    for key in ("step_us", "engine_us", "floor_us"):
        v = [r[key] for r in runs]
        summary[key] = {"min": min(v), "median": statistics.median(v), "max": max(v), "max_over_min": max(v) / min(v)}
    summary["huge_pages"] = sum(r["huge_page_bytes"] > 0 for r in runs)
    return summary


def print_summary(s, processes):
    st, en, fl = s["step_us"], s["engine_us"], s["floor_us"]
    verdict = "steady" if st["max_over_min"] <= TARGET else "SPREAD"
    print(f"{s['model']:10s} {s['source']:6s} {s['weights']:7s} step p50 µs min {st['min']:6.2f} median "
          f"{st['median']:6.2f} max {st['max']:6.2f} max/min {st['max_over_min']:.3f} {verdict:6s} | engine median "
          f"{en['median']:6.2f} max/min {en['max_over_min']:.3f} | floor median {fl['median']:6.2f} max/min "
          f"{fl['max_over_min']:.3f} | huge pages in {s['huge_pages']}/{processes}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", default="gru1x37", choices=list(SHAPES))
    ap.add_argument("--processes", type=int, default=8)
    ap.add_argument("--weights", default="float32", choices=["float32", "int8"])
    ap.add_argument("--source", default="onnx", choices=SOURCES)
    ap.add_argument("--all", action="store_true", help="every model, source and weights")
    ap.add_argument("--copies", action="store_true",
                    help="each process loads its own new copy of the file (an .ernn's mapped weights then sit on "
                         "page-cache pages of their own instead of the pages every process shares)")
    ap.add_argument("--json", default=None, help="write the figures here")
    ap.add_argument("--one", default=None, metavar="PATH", help=argparse.SUPPRESS)   # a child process
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(measure(a.one, a.weights, a.model)))
        return 0
    combos = ([(m, src, w) for m in SHAPES for src in SOURCES for w in ("float32", "int8")] if a.all
              else [(a.model, a.source, a.weights)])
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for model, source, weights in combos:
            if source == "tflite" and not model_path(model, source, weights, folder)[0].exists():
                continue
            s = spread(model, source, weights, a.processes, folder, a.copies)
            print_summary(s, a.processes)
            if not a.all:
                print("  step  " + "  ".join(f"{r['step_us']:.3f}" for r in s["runs"]))
                print("  engine " + "  ".join(f"{r['engine_us']:.3f}" for r in s["runs"]))
                print("  floor  " + "  ".join(f"{r['floor_us']:.3f}" for r in s["runs"]))
            results.append(s)
    if a.all:
        steady = sum(s["step_us"]["max_over_min"] <= TARGET for s in results)
        print(f"{steady} of {len(results)} within max/min {TARGET} over {a.processes} processes")
    if a.json:
        Path(a.json).write_text(json.dumps({"processes": a.processes, "target": TARGET, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
