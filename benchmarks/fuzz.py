"""Fuzz campaigns over ONNX, TFLite and .ernn files, and the figures table of docs.

    python benchmarks/fuzz.py [--format onnx|tflite|ernn|all] [--cases N] [--seed S]
                              [--minutes M] [--family F[,F]] [--json benchmarks/results/fuzz.json]
    python benchmarks/fuzz.py --format onnx --seed S --case I [--family F]    # one case, in full

Each case is a seeded mutant of a real model file (tests/fuzzing/seeds.py: ONNX_SEEDS,
TFLITE_SEEDS, and for .ernn the sources and mutators of tests/test_ernn_fuzz.py), loaded and
stepped in a persistent bounds-checked worker process (NUMBA_BOUNDSCHECK=1, private Numba
cache). It ends as
- a typed error (an ``edgernn.EdgeRNNError``),
- loaded and stepped (3 frames on one stream and on a batch of 2, and a 3-frame run; a model
  with int8 weights once more with int8 activations), or
- anything else: another exception (including Numba's IndexError for an out-of-bounds
  index), a crash of the worker, a hang, or external data read from outside the model's
  directory. Each distinct failure (kind, exception type, where raised) is listed with its
  first case, the one mutation of that case that fails the same way alone (when the case
  stacks several), and the path of the kept mutant.
The same harness runs a bounded count in the test suite (tests/test_onnx_fuzz.py,
tests/test_tflite_fuzz.py); this script runs long campaigns (``--minutes`` stops early) and
checks first that the unmutated seeds step like onnxruntime / LiteRT. The table is printed and
written to the JSON file (merged per format, so formats can be run separately). Exit status 1
when anything else occurred. ``EDGERNN_FUZZ_NUMBA_CACHE=DIR`` keeps the checked build between
runs (per source hash), so a rerun or a single ``--case`` does not compile again.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(os.path.abspath(__file__)).parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import fuzzing  # noqa: E402

FORMATS = ("onnx", "tflite", "ernn")
COLUMNS = ("format", "cases", "typed errors", "loaded and stepped", "anything else")


def table(rows):
    lines = [f"{COLUMNS[0]:<8}{COLUMNS[1]:>9}{COLUMNS[2]:>15}{COLUMNS[3]:>21}{COLUMNS[4]:>16}"]
    for r in rows:
        lines.append(f"{r['format']:<8}{r['cases']:>9,}{r['typed']:>15,}{r['ran']:>21,}{r['anything_else']:>16,}")
    return "\n".join(lines)


def markdown(rows):
    out = ["| " + " | ".join(COLUMNS) + " |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['format']} | {r['cases']:,} | {r['typed']:,} | {r['ran']:,} | {r['anything_else']} |")
    return "\n".join(out)


def reproduce(args, families):
    sess = fuzzing.session()
    mut = sess.generator(args.format).make(args.seed, args.case, families)
    print(f"{args.format} seed {args.seed} case {args.case}: {mut.seed}, family {mut.family}, via {mut.via}"
          f"{', must be refused' if mut.must_refuse else ''}\n  {mut.what}")
    res = fuzzing.run_campaign(args.format, 1, args.seed, families, sess=sess, start=args.case, timeout=args.timeout)
    kind = next(k for k, v in res.counts.items() if v)
    print(f"result: {kind}")
    for f in res.failures:
        for key in ("type", "message", "where", "raised_at", "phase", "minimal", "traceback", "stderr", "saved"):
            if f.get(key):
                print(f"{key}: {f[key]}")
    return 1 if res.failures else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--format", default="all", choices=FORMATS + ("all",))
    ap.add_argument("--cases", type=int, default=None, help="cases per format (default: the test suite's count)")
    ap.add_argument("--seed", type=int, default=fuzzing.CI_SEED)
    families = "; ".join(f + ": " + ",".join(v) for f, v in fuzzing.FAMILIES.items())
    ap.add_argument("--family", default=None, help=f"only these mutation families, comma-separated ({families})")
    ap.add_argument("--minutes", type=float, default=None, help="stop each format's campaign after this long")
    ap.add_argument("--case", type=int, default=None, help="run this one case and print everything about it")
    ap.add_argument("--timeout", type=float, default=fuzzing.CASE_TIMEOUT, help="seconds per case before a hang")
    ap.add_argument("--no-seed-check", action="store_true", help="skip stepping the seeds against onnxruntime/LiteRT")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "fuzz.json"))
    ap.add_argument("--log", default=None, help="append one JSON line per case (mutation, outcome) to this file")
    args = ap.parse_args(argv)
    families = args.family.split(",") if args.family else None
    if args.case is not None:
        if args.format == "all":
            ap.error("--case needs one --format")
        return reproduce(args, families)

    from benchmarks.report import machine, write_json
    formats = FORMATS if args.format == "all" else (args.format,)
    sess = fuzzing.session()
    t0 = time.perf_counter()
    rows, seed_checks = [], {}
    for fmt in formats:
        n = args.cases if args.cases is not None else fuzzing.CI_CASES.get(fmt, 1000)
        print(f"{fmt}: {n} cases, seed {args.seed}" + (f", families {families}" if families else ""), flush=True)
        res = fuzzing.run_campaign(fmt, n, args.seed, families, sess=sess, minutes=args.minutes,
                                   progress=max(100, n // 10), timeout=args.timeout, log=args.log)
        print(res.summary(), flush=True)
        if fmt != "ernn" and not args.no_seed_check and not families:
            seed_checks[fmt] = fuzzing.check_seeds(fmt, sess)
            for r in seed_checks[fmt]:
                print(f"  seed {r['seed']:<38} {r['frames']} frames: max |edgernn - {r['runtime']}| = "
                      f"{r['err_runtime']:.1e} over {r['runtime_frames']} frames (tol {r['tol']:.0e}), "
                      f"max |edgernn - recorded| = {r['err_recorded']:.1e}  {'ok' if r['ok'] else 'DIFFERS'}")
        rows.append(res)
    figures = [r.figures() for r in rows]
    print("\n" + table(figures))
    print(f"\n(wall time {time.perf_counter() - t0:.0f} s, worker warm-up included; the session's files are in "
          f"{sess.dir})")
    for r in rows:
        if r.failures:
            print("\n" + r.report(limit=None))
    report = {}
    if os.path.exists(args.json):
        try:
            with open(args.json) as f:
                report = json.load(f)
        except (OSError, ValueError):
            report = {}
    report.setdefault("formats", {})
    shown = []                          # the command, less the options that do not change the figures
    for a in (sys.argv[1:] if argv is None else argv):
        if shown and shown[-1] in ("--log", "--json"):
            shown.pop()
        else:
            shown.append(a)
    for fig in figures:
        fig = dict(fig, date=time.strftime("%Y-%m-%d"), command=" ".join(["python benchmarks/fuzz.py"] + shown))
        if fig["format"] in seed_checks:
            fig["seed_checks"] = seed_checks[fig["format"]]
        key = fig["format"] + (f"[{','.join(families)}]" if families else "")   # the table uses whole campaigns
        report["formats"][key] = fig
    report["machine"] = machine()
    report["table_markdown"] = markdown([report["formats"][f] for f in FORMATS if f in report["formats"]])
    write_json(report, args.json)
    bad = any(r.anything_else for r in rows) or any(not c["ok"] for v in seed_checks.values() for c in v)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
