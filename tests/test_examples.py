"""The trained example models (examples/*.onnx) streamed over their real test recordings.

Oracle: PyTorch. ``python -m exporters.train_examples`` recorded, in examples/<name>.json,
torch's argmax class at every frame of every test recording (each recording run alone from
zero state). edgernn must give the same class at every frame, streaming one Stream.step per
frame with Stream.reset() between recordings, and hence the same accuracy. Runs without torch.
"""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgernn

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

def _example_module():
    spec = importlib.util.spec_from_file_location("stream_recordings", EXAMPLES / "stream_recordings.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_EXAMPLE = _example_module()
recordings, stream_all = _EXAMPLE.recordings, _EXAMPLE.stream_all

NAMES = ["japanese_vowels", "basic_motions"]
SPLITS = {"japanese_vowels": (270, 370, 12, 9), "basic_motions": (40, 40, 6, 4)}


def card(name):
    return json.loads((EXAMPLES / f"{name}.json").read_text())


@pytest.mark.parametrize("name", NAMES)
def test_data_files_hold_the_published_splits(name):
    n_train, n_test, features, classes = SPLITS[name]
    with np.load(EXAMPLES / "data" / f"{name}.npz") as z:
        for split, n in (("train", n_train), ("test", n_test)):
            assert len(z[f"{split}_lengths"]) == len(z[f"{split}_labels"]) == n
            assert z[f"{split}_frames"].shape == (int(z[f"{split}_lengths"].sum()), features)
            assert z[f"{split}_frames"].dtype == np.float32
        assert len(z["classes"]) == classes
        assert set(np.unique(z["test_labels"])) == set(range(classes))


@pytest.mark.parametrize("name", NAMES)
def test_streamed_predictions_equal_torch_frame_for_frame(name):
    c = card(name)
    recs, labels = recordings(EXAMPLES / c["data"])
    preds, _ = stream_all(edgernn.load(EXAMPLES / f"{name}.onnx"), recs)
    want = c["torch_frame_predictions"]
    assert len(preds) == len(want) == c["n_test"]
    mismatched = [k for k, (p, q) in enumerate(zip(preds, want)) if p != q]
    assert not mismatched, f"recordings whose per-frame predictions differ from torch: {mismatched[:10]}"
    acc = float(np.mean([p[-1] == y for p, y in zip(preds, labels)]))
    assert acc == pytest.approx(c["torch_test_accuracy"], abs=1e-12)


def test_japanese_vowels_model_meets_the_target_accuracy():
    assert card("japanese_vowels")["torch_test_accuracy"] >= 0.95


def test_main_job_command():
    # the repository's edgernn whether or not it is pip-installed (e.g. the aarch64 emulation run)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    r = subprocess.run([sys.executable, str(EXAMPLES / "stream_recordings.py"), "--show", "errors"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600, env=env)
    assert r.returncode == 0, r.stderr
    c = card("japanese_vowels")
    n_frames = sum(len(p) for p in c["torch_frame_predictions"])
    assert f"PyTorch {c['torch_test_accuracy']:.2%}" in r.stdout
    assert f"same prediction as PyTorch: {n_frames}/{n_frames} frames, 370/370 recordings" in r.stdout
    assert "p50" in r.stdout and "p99" in r.stdout and "real-time factor" in r.stdout
    wrong = [ln for ln in r.stdout.splitlines() if "WRONG" in ln]
    assert len(wrong) == round(370 * (1 - c["torch_test_accuracy"]))
