"""Detections from class scores (edgernn/io/detections.py): planted keywords found where a
moving average (NumPy's convolution) says, a real classifier's detections against
onnxruntime's scores, and `edgernn stream --detect` end to end."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgernn.errors import SignalArgumentError
from edgernn.io.detections import Detector

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["_silence_", "yes", "no", "up"]


def planted(rng, steps, bursts):
    """Scores [steps, 4]: background mostly silence; each burst (class, first step, length)
    rises to ~0.9 for that class."""
    x = np.full((steps, 4), 0.05) + rng.uniform(0, 0.05, (steps, 4))
    x[:, 0] += 0.7
    for c, first, length in bursts:
        x[first:first + length] = 0.03
        x[first:first + length, c] = 0.91
    return x / x.sum(axis=1, keepdims=True)


def moving_average(x, k):
    """Mean of the last k rows at each step (of the rows so far at the start), by cumsum."""
    c = np.cumsum(np.vstack([np.zeros((1, x.shape[1])), x]), axis=0)
    t = np.arange(1, len(x) + 1)
    lo = np.maximum(0, t - k)
    return (c[t] - c[lo]) / (t - lo)[:, None]


def run(detector, scores):
    out = [d for x in scores for d in detector.update(x) if d.end is not None] + detector.finish()
    return [(d.label, d.start, d.end) for d in out]


@pytest.mark.parametrize("smooth", [1, 3, 8])
def test_planted_keywords_are_detected_where_the_moving_average_crosses(smooth):
    rng = np.random.default_rng(smooth)
    bursts = [(1, 20, 15), (2, 60, 12), (3, 100, 20), (1, 150, 9)]
    scores = planted(rng, 200, bursts)
    avg = moving_average(scores, smooth)
    want = []
    for c, first, length in bursts:              # the class's average is >= 0.5 over one run of steps
        above = np.flatnonzero(avg[:, c] >= 0.5)
        run_steps = above[(above >= first) & (above < first + length + smooth)]
        want.append((LABELS[c], int(run_steps[0]), int(run_steps[-1]) + 1))
    got = run(Detector(LABELS, 0.5, smooth, ignore=["_silence_"]), scores)
    assert got == want


def test_logits_are_softmaxed_and_background_is_never_detected():
    from scipy.special import softmax
    rng = np.random.default_rng(0)
    probs = planted(rng, 120, [(2, 30, 10), (3, 70, 10)])
    logits = np.log(probs) + rng.normal(0, 3, (120, 1))        # softmax(log p + c) = p
    a = run(Detector(LABELS, 0.5, 2, ignore=["_silence_"], logits=True), logits)
    b = run(Detector(LABELS, 0.5, 2, ignore=["_silence_"]), softmax(logits, axis=1))
    assert a == b and [x[0] for x in a] == ["no", "up"]
    with_background = run(Detector(LABELS, 0.5, 2), probs)
    assert [x[0] for x in with_background] == ["_silence_", "no", "_silence_", "up", "_silence_"]


def test_min_gap_suppresses_a_second_detection_too_soon():
    probs = planted(np.random.default_rng(1), 100, [(1, 10, 5), (2, 16, 3), (3, 40, 5)])
    assert [x[0] for x in run(Detector(LABELS, 0.5, 1, 0, ["_silence_"]), probs)] == ["yes", "no", "up"]
    assert [x[0] for x in run(Detector(LABELS, 0.5, 1, 10, ["_silence_"]), probs)] == ["yes", "up"]


@pytest.mark.parametrize("kwargs,match", [
    (dict(labels=[]), "labels"), (dict(threshold=0), "threshold"), (dict(smooth=0), "smooth"),
    (dict(min_gap=-1), "min_gap"), (dict(ignore=["maybe"]), "cannot ignore"), (dict(smooth=1.5), "smooth")])
def test_bad_settings_are_typed_errors(kwargs, match):
    args = dict(labels=LABELS) | kwargs
    with pytest.raises(SignalArgumentError, match=match):
        Detector(**args)


def test_scores_of_the_wrong_size_say_so():
    with pytest.raises(SignalArgumentError, match="4 labels"):
        Detector(LABELS).update(np.zeros(3))


def basic_motions_sequence():
    """Three BasicMotions test recordings back to back: standing, walking, running."""
    d = np.load(ROOT / "examples" / "data" / "basic_motions.npz")
    starts = np.concatenate([[0], np.cumsum(d["test_lengths"])])
    classes = [str(c) for c in d["classes"]]
    picks = [next(k for k in range(40) if classes[d["test_labels"][k]] == name) for name in ("standing", "walking", "running")]
    return np.concatenate([d["test_frames"][starts[k]:starts[k + 1]] for k in picks]).astype(np.float32), classes


def test_stream_detect_on_a_real_classifier_matches_onnxruntimes_scores():
    """`edgernn stream --detect` on sensor lines: the detections printed are the runs of
    onnxruntime's softmax argmax above 0.5 over the whole sequence (smooth 1)."""
    import onnxruntime as ort
    from scipy.special import softmax
    frames, classes = basic_motions_sequence()
    sess = ort.InferenceSession(str(ROOT / "examples" / "basic_motions.onnx"), providers=["CPUExecutionProvider"])
    logits = sess.run(["logits"], {"x": frames[None], "h0": np.zeros((1, 1, 32), np.float32)})[0][0]
    p = softmax(logits, axis=1)
    top, ok = p.argmax(axis=1), p.max(axis=1) >= 0.5
    want = [classes[top[t]] for t in range(len(p)) if ok[t] and (t == 0 or not ok[t - 1] or top[t] != top[t - 1])]
    lines = "acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n" + "\n".join(",".join(f"{v:.9g}" for v in row) for row in frames)
    r = subprocess.run([sys.executable, "-m", "edgernn", "stream", str(ROOT / "examples" / "basic_motions.onnx"), "-",
                        "--window", "1", "--rate", "10", "--detect", "--logits", "--labels", ",".join(classes)],
                       input=lines, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    got = [line.split("'")[1] for line in r.stdout.splitlines() if line.startswith("detected")]
    assert got == want and len(set(got)) >= 2, got


def test_stream_detect_without_labels_says_how_to_give_them():
    r = subprocess.run([sys.executable, "-m", "edgernn", "stream", str(ROOT / "examples" / "basic_motions.onnx"), "-",
                        "--window", "1", "--detect"], input="1,2,3,4,5,6\n", capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and "--labels" in r.stderr and "Traceback" not in r.stderr
