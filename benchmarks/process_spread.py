"""How much the same step's engine time differs from one process to the next.

    python -m benchmarks.process_spread [gru1x37] [--processes 6] [--weights float32]

Starts ``--processes`` fresh Python processes one after another. Each loads the model (one of
exporters/synthetic.py's benchmark models) and times its program in a native loop, with no
Python in between (``edgernn.breakdown.time_rows``, as ``benchmarks/perf.py``'s ``engine_us``).
The report gives each process's time, then min, median, max and max/min.

Within one process this figure repeats to a few per cent. If the spread across processes is
larger than an effect, then one A/B pair of runs cannot show that effect: compare the medians
of several processes per variant.
"""
import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exporters.synthetic import SHAPES  # noqa: E402


def engine_us(model, weights):
    """This process's engine time of one step (µs)."""
    import edgernn
    from edgernn.breakdown import time_rows
    from exporters.synthetic import named_model
    m = edgernn.load(named_model(model), weights=weights)
    s = m.stream()
    return time_rows(m.plan, s._work.copy(), m.plan.prog) * 1e6


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", default="gru1x37", choices=list(SHAPES))
    ap.add_argument("--processes", type=int, default=6)
    ap.add_argument("--weights", default="float32", choices=["float32", "int8"])
    ap.add_argument("--one", action="store_true", help="time this process only and print the figure")
    a = ap.parse_args(argv)
    if a.one:
        print(f"{engine_us(a.model, a.weights):.4f}")
        return 0
    times = []
    for _ in range(a.processes):
        out = subprocess.run([sys.executable, "-m", "benchmarks.process_spread", a.model, "--weights", a.weights,
                              "--one"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        times.append(float(out.split()[-1]))
    print(f"{a.model} ({a.weights} weights): engine µs per step in {a.processes} processes")
    print("  " + "  ".join(f"{t:.3f}" for t in times))
    print(f"  min {min(times):.3f}  median {statistics.median(times):.3f}  max {max(times):.3f}  "
          f"max/min {max(times) / min(times):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
