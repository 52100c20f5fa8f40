""".ernn report: file sizes, int8/float16 error, load time and resident memory against ONNX.

    python benchmarks/ernn.py [--json benchmarks/results/ernn.json] [--loads 50]

1. Size of each .ernn (float32, float16, int8) as a share of the float32 ONNX file.
2. Error of float16 and int8 storage: max abs difference from PyTorch's outputs on every torch
   fixture (tests/fixtures/onnx, 200 frames each), and from float32 on the synthetic models;
   for the bundled example classifier (examples/japanese_vowels.onnx on its 370 held-out
   recordings, each streamed from a fresh state), how often the int8 and float16 models' top
   class agrees with float32's, frame by frame, and their accuracy. "int8 act": the int8
   file loaded with ``activations="int8"`` (int8 x int8 kernels, docs/quantization.md).
3. Load time and memory: in a fresh process per file (engine already compiled and cached by
   Numba, a warm-up load of another file first), the median time of ``edgernn.load`` and the
   growth of the resident set (VmRSS) from loading plus one step.
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import edgernn  # noqa: E402
from benchmarks.report import machine, write_json  # noqa: E402
from edgernn.convert import convert  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "onnx"
EXAMPLE = ROOT / "examples" / "kws_lstm.onnx"
EXAMPLE_FRAMES = ROOT / "examples" / "kws_frames.npy"
CLASSIFIER = ROOT / "examples" / "japanese_vowels.onnx"
CLASSIFIER_DATA = ROOT / "examples" / "data" / "japanese_vowels.npz"
SYNTHETIC = ("lstm2x128", "gru2x128", "lstm3x256")

LOAD_PROBE = r"""
import json, sys, time
import numpy as np
import edgernn

def rss_kb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))

warm, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = edgernn.load(warm)
m.stream().step(np.zeros(m.inputs[0].frame_shape, np.float32))
before = rss_kb()
t0 = time.perf_counter()
m = edgernn.load(path)
first = time.perf_counter() - t0
m.stream().step(np.zeros(m.inputs[0].frame_shape, np.float32))
grown = rss_kb() - before
times = []
for _ in range(n):
    t0 = time.perf_counter()
    edgernn.load(path)
    times.append(time.perf_counter() - t0)
print(json.dumps({"first_ms": first * 1e3, "median_ms": float(np.median(times)) * 1e3, "rss_growth_kb": grown}))
"""


def run(model, frames):
    s = model.stream()
    out = [s.step(f) for f in frames]
    return np.stack([o[0] if isinstance(o, tuple) else o for o in out])


def sizes_and_errors(tmp):
    import onnx
    from exporters.synthetic import SHAPES, named_model
    rows = []
    with np.load(CLASSIFIER_DATA) as z:
        vowel_frames = z["test_frames"][:200].astype(np.float32)
    sources = [(EXAMPLE.name, EXAMPLE, np.load(EXAMPLE_FRAMES)), (CLASSIFIER.name, CLASSIFIER, vowel_frames)]
    for name in SYNTHETIC:
        path = tmp / f"{name}.onnx"
        onnx.save(named_model(name), path)
        frames = np.random.default_rng(1).standard_normal((200, SHAPES[name][3])).astype(np.float32)
        sources.append((name, path, frames))
    for name, path, frames in sources:
        ref = run(edgernn.load(path), frames)
        row = {"model": name, "onnx_bytes": path.stat().st_size}
        for w in ("float32", "float16", "int8"):
            m = convert(path, tmp / f"{name}.{w}.ernn", weights=w)
            y = run(m, frames)
            row[f"{w}_bytes"] = m.file.file_bytes
            row[f"{w}_share"] = m.file.file_bytes / row["onnx_bytes"]
            row[f"{w}_max_abs_err_vs_float32"] = float(np.abs(y - ref).max())
        y = run(edgernn.load(tmp / f"{name}.int8.ernn", activations="int8"), frames)
        row["int8_act_max_abs_err_vs_float32"] = float(np.abs(y - ref).max())
        rows.append(row)
    return rows, sources


def classifier_agreement(tmp):
    """Per-frame top class of int8 / float16 against float32 on the example's test set."""
    with np.load(CLASSIFIER_DATA) as z:
        lengths, frames, labels = z["test_lengths"], z["test_frames"], z["test_labels"]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    recs = [frames[o:o + n].astype(np.float32) for o, n in zip(starts, lengths)]

    def predict(model):
        s, per_frame, last = model.stream(), [], []
        for r in recs:
            s.reset()
            p = [int(np.argmax(s.step(f))) for f in r]
            per_frame += p
            last.append(p[-1])
        return np.array(per_frame), np.array(last)

    ref, ref_last = predict(edgernn.load(CLASSIFIER))
    row = {"model": CLASSIFIER.name, "frames": int(len(ref)), "recordings": len(recs),
           "float32_accuracy": float(np.mean(ref_last == labels))}
    for w in ("float16", "int8", "int8_act"):
        model = edgernn.load(tmp / "clf.int8.ernn", activations="int8") if w == "int8_act" else \
            convert(CLASSIFIER, tmp / f"clf.{w}.ernn", weights=w)
        pf, last = predict(model)
        row[f"{w}_frame_agreement"] = float(np.mean(pf == ref))
        row[f"{w}_accuracy"] = float(np.mean(last == labels))
    return row


def fixture_errors(tmp):
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    rows = []
    for e in manifest:
        if e["file"] == "rnn_unrolled_dy.onnx":
            continue
        with np.load(FIXTURES / e["file"].replace(".onnx", ".npz")) as z:
            frames, y = z["frames"], z["y"]
        row = {"fixture": e["file"]}
        for w in ("float32", "float16", "int8"):
            m = convert(FIXTURES / e["file"], tmp / f"fx.{w}.ernn", weights=w)
            row[w] = float(np.abs(run(m, frames).reshape(y.shape) - y).max())
        m = edgernn.load(tmp / "fx.int8.ernn", activations="int8")
        row["int8_act"] = float(np.abs(run(m, frames).reshape(y.shape) - y).max())
        rows.append(row)
    return rows


def load_times(tmp, sources, n):
    rows = []
    warm = tmp / "warm.ernn"
    convert(EXAMPLE, warm)
    for name, path, _ in sources:
        for label, p in (("onnx", path), ("ernn float32", tmp / f"{name}.float32.ernn"),
                         ("ernn int8", tmp / f"{name}.int8.ernn")):
            out = subprocess.run([sys.executable, "-c", LOAD_PROBE, str(warm), str(p), str(n)], check=True,
                                 capture_output=True, text=True, cwd=ROOT).stdout
            rows.append({"model": name, "file": label, "bytes": p.stat().st_size, **json.loads(out)})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "ernn.json"))
    ap.add_argument("--loads", type=int, default=50, help="timed loads per file")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sizes, sources = sizes_and_errors(tmp)
        classifier = classifier_agreement(tmp)
        fixtures = fixture_errors(tmp)
        loads = load_times(tmp, sources, args.loads)
    report = {"machine": machine(),
              "sizes": sizes, "classifier": classifier, "fixture_errors": fixtures, "loads": loads}

    print(f"machine: {report['machine']}\n")
    print(f"{'model':<22}{'onnx':>11}{'f32 .ernn':>11}{'f16':>8}{'int8':>8}   int8 max|err| vs f32   "
          f"int8 act   f16 max|err|")
    for r in sizes:
        print(f"{r['model']:<22}{r['onnx_bytes']:>11,}{r['float32_share']:>10.1%} {r['float16_share']:>7.1%} "
              f"{r['int8_share']:>7.1%}   {r['int8_max_abs_err_vs_float32']:>20.2e}   "
              f"{r['int8_act_max_abs_err_vs_float32']:.2e}   {r['float16_max_abs_err_vs_float32']:.2e}")
    c = classifier
    print(f"\n{c['model']} on {c['recordings']} test recordings ({c['frames']} frames, each recording from a "
          f"fresh state): top class agrees with float32 on {c['int8_frame_agreement']:.2%} of frames (int8), "
          f"{c['int8_act_frame_agreement']:.2%} (int8 act), {c['float16_frame_agreement']:.2%} (float16); "
          f"accuracy float32 {c['float32_accuracy']:.2%}, int8 {c['int8_accuracy']:.2%}, int8 act "
          f"{c['int8_act_accuracy']:.2%}, float16 {c['float16_accuracy']:.2%}")
    worst = {w: max(fixtures, key=lambda r: r[w]) for w in ("float32", "float16", "int8", "int8_act")}
    print(f"\ntorch fixtures ({len(fixtures)}), max abs error against PyTorch:")
    for w, r in worst.items():
        print(f"  {w:<8} worst {r[w]:.2e} ({r['fixture']}), median {np.median([x[w] for x in fixtures]):.2e}")
    print(f"\nload (fresh process, engine compiled; median of {args.loads}) and resident memory growth:")
    print(f"{'model':<22}{'file':<14}{'bytes':>11}{'first ms':>10}{'median ms':>11}{'RSS +KB':>9}")
    for r in loads:
        print(f"{r['model']:<22}{r['file']:<14}{r['bytes']:>11,}{r['first_ms']:>10.2f}{r['median_ms']:>11.2f}"
              f"{r['rss_growth_kb']:>9,}")
    write_json(report, args.json)


if __name__ == "__main__":
    main()
