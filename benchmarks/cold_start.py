"""Cold and cached start: a new process loads a model and steps one frame.

    python -m benchmarks.cold_start [MODEL] [--runs N] [--python EXE] [--against DIR] [--json PATH]

MODEL defaults to the JapaneseVowels example (examples/japanese_vowels.onnx) converted to
.ernn in a temporary folder. Each measured run is a fresh Python process that imports numpy,
then imports edgernn, loads the model, makes a stream and steps one frame. It reports the time
from ``import edgernn`` to the end of that step (numpy, which the caller has imported anyway,
excluded, as benchmarks/perf.py's start-up figure) and its peak resident memory by then (its
own ``ru_maxrss``); the parent adds the whole process's wall time (interpreter start-up
included). "cold": the child gets an empty ``NUMBA_CACHE_DIR``, so every kernel the model
uses is compiled; "cached": the next children reuse that folder.

The edgernn package under test is byte-compiled first (``compileall``), as ``pip install``
does: with PYTHONDONTWRITEBYTECODE set and no .pyc files, every process would spend ~0.12 s
compiling edgernn's sources, which no installed copy does. ``--python`` runs the children
with another interpreter, e.g. a virtual environment holding only numpy and numba, as a
device has (scipy, when installed, adds ~0.2 s: Numba imports it on its first load to look
for BLAS). ``--against DIR`` measures another checkout's edgernn too (e.g. the engine before a
change), in the same run: both cold, then their cached runs taking turns, so a noisy
neighbour slows both alike.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import time, sys
import numpy as np
t0 = time.perf_counter()
import edgernn
m = edgernn.load(sys.argv[1])
s = m.stream()
s.step(np.zeros(m.inputs[0].frame_shape, np.float32))
first = time.perf_counter() - t0
import resource
peak_first = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
more = []
if len(sys.argv) > 2:                 # the other entry points' first calls, in the same process
    frame = np.zeros(m.inputs[0].frame_shape, np.float32)
    for call in (lambda: s.run(np.stack([frame] * 10)),
                 lambda: m.stream(batch=4, threads=2).run(np.stack([np.stack([frame] * 4)] * 10))):
        t = time.perf_counter()
        call()
        more.append(time.perf_counter() - t)
print(first, peak_first, *more, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


NUMBA_FLOOR = """
import time
import numpy
t0 = time.perf_counter()
import numba
from numba.core.registry import cpu_target
cpu_target.target_context.refresh()
print(time.perf_counter() - t0)
"""


def numba_floor(python, runs):
    """Seconds of ``import numba`` and its first use (the registries every first compile or
    cache load initialises), in fresh processes: what any cached start costs before edgernn."""
    return sorted(float(subprocess.run([python, "-c", NUMBA_FLOOR], capture_output=True, text=True, check=True)
                        .stdout.split()[-1]) for _ in range(runs))


def child_run(model, cache_dir, python, checkout, entry_points=False):
    """(seconds from the child's ``import edgernn`` to its first step's end, wall seconds of
    the whole process seen by the parent, the child's peak RSS in MB by then, [seconds of the
    first ``Stream.run`` and of the first threaded batch run, peak RSS at the end] when
    ``entry_points``)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    env.pop("EDGERNN_NO_CACHE", None)
    env["PYTHONPATH"] = str(checkout)              # that checkout's edgernn, whatever is installed
    t = time.perf_counter()
    os.makedirs(cache_dir, exist_ok=True)
    out = subprocess.run([python, "-c", CHILD, str(model)] + (["entry-points"] if entry_points else []), env=env,
                         capture_output=True, text=True,
                         cwd=tempfile.gettempdir())
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(f"the child failed:\n{out.stderr[-2000:]}")
    seconds, peak_mb, *more = out.stdout.strip().splitlines()[-1].split()
    return float(seconds), wall, float(peak_mb), [float(x) for x in more]


def default_model(folder):
    from edgernn.convert import convert
    path = Path(folder) / "japanese_vowels.ernn"
    convert(ROOT / "examples" / "japanese_vowels.onnx", path)
    return path


def byte_compile(python, package):
    subprocess.run([python, "-m", "compileall", "-q", str(package)], check=True, capture_output=True)


def measure(model, runs, python, checkouts):
    """{checkout: figures}: each checkout cold once (its own empty cache), then ``runs``
    cached runs of each, taking turns."""
    for c in checkouts:
        byte_compile(python, Path(c) / "edgernn")
    with tempfile.TemporaryDirectory() as caches:
        dirs = {c: Path(caches) / str(k) for k, c in enumerate(checkouts)}
        cold = {c: child_run(model, dirs[c], python, c, entry_points=True) for c in checkouts}
        cached = {c: [] for c in checkouts}
        for _ in range(runs):
            for c in checkouts:
                cached[c].append(child_run(model, dirs[c], python, c))
    return {str(c): {"cold_s": cold[c][0], "cold_wall_s": cold[c][1], "cold_peak_mb": cold[c][2],
                     "cold_first_run_s": cold[c][3][0], "cold_first_threaded_run_s": cold[c][3][1],
                     "cold_peak_after_entry_points_mb": cold[c][3][2],
                     "cached_s": sorted(r[0] for r in cached[c]), "cached_wall_s": sorted(r[1] for r in cached[c]),
                     "cached_peak_mb": max(r[2] for r in cached[c])} for c in checkouts}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", help="a model file (default: JapaneseVowels as .ernn)")
    ap.add_argument("--runs", type=int, default=5, help="cached runs after the cold one")
    ap.add_argument("--against", help="another checkout's root, measured in the same run (before/after)")
    ap.add_argument("--python", default=sys.executable, help="the interpreter of the children (default: this one)")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        model = Path(a.model) if a.model else default_model(folder)
        checkouts = [ROOT] + ([Path(a.against).resolve()] if a.against else [])
        report = measure(model, a.runs, a.python, checkouts)
    model_name = str(a.model or "examples/japanese_vowels.onnx as .ernn")
    print(f"{model_name}, children run by {a.python}")
    for checkout, r in report.items():
        mid = len(r["cached_s"]) // 2
        print(f"edgernn from {checkout}")
        print(f"  cold (empty Numba cache): {r['cold_s']:.2f} s from import edgernn to the first step's end "
              f"({r['cold_wall_s']:.2f} s whole process, entry points below included), peak RSS {r['cold_peak_mb']:.0f} MB")
        print(f"    then, in the same process: first Stream.run {r['cold_first_run_s']:.2f} s, first run of a batch "
              f"of 4 streams on 2 threads {r['cold_first_threaded_run_s']:.2f} s; peak RSS then "
              f"{r['cold_peak_after_entry_points_mb']:.0f} MB")
        print(f"  cached, {a.runs} runs: {r['cached_s'][0]:.2f}-{r['cached_s'][-1]:.2f} s, median {r['cached_s'][mid]:.2f} s "
              f"({r['cached_wall_s'][mid]:.2f} s whole process), peak RSS {r['cached_peak_mb']:.0f} MB")
    floor = numba_floor(a.python, a.runs)
    print(f"import numba + its first use (every start pays it): {floor[0]:.2f}-{floor[-1]:.2f} s, "
          f"median {floor[len(floor) // 2]:.2f} s")
    r = {"model": model_name, "python": a.python, "checkouts": report, "numba_floor_s": floor}
    if a.json:
        Path(a.json).write_text(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
