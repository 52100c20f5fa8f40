"""An .ernn carries its stream settings (edgernn/io/settings.py): `edgernn stream model.ernn
SOURCE` with no other options does what the source model does with all of them."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_frontend import AUDIO, training_statistics, write_gru

import edgernn
from edgernn.errors import SignalArgumentError
from edgernn.io.settings import FRONTEND_KEY, OPTIONS_KEY, settings_metadata
from edgernn.io.wav import read_wav

LABELS = [f"class{k}" for k in range(8)]


def edgernn_cli(*args):
    return subprocess.run([sys.executable, "-m", "edgernn", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A GRU over 40 normalised log-mel features, as ONNX and as an .ernn with the settings."""
    folder = tmp_path_factory.mktemp("settings")
    onnx_path, stats = folder / "gru.onnx", folder / "stats.npz"
    write_gru(onnx_path, 40, 8)
    _, mean, std = training_statistics(read_wav(AUDIO).samples)
    np.savez(stats, mean=mean, std=std)
    options = ["--window", "400", "--hop", "160", "--rate", "16000", "--n-fft", "512", "--features", "logmel",
               "--n-mels", "40", "--normalize", str(stats), "--detect", "--logits", "--detect-threshold", "0.3",
               "--smooth-steps", "3"]
    ernn = folder / "gru.ernn"
    r = edgernn_cli("convert", onnx_path, "-o", ernn, "--labels", ",".join(LABELS), "--stream=" + " ".join(options))
    assert r.returncode == 0, r.stderr
    return onnx_path, ernn, options


def test_the_ernn_streams_with_its_stored_settings_like_the_source_with_all_options(models):
    onnx_path, ernn, options = models
    stored = edgernn.load(ernn).metadata
    assert json.loads(stored[OPTIONS_KEY])["detect"] is True and "normalize" not in stored[OPTIONS_KEY]
    assert len(json.loads(stored[FRONTEND_KEY])["mean"]) == 40          # the statistics travel in the file
    explicit = edgernn_cli("stream", onnx_path, AUDIO, *options, "--labels", ",".join(LABELS), "--jsonl", "-")
    bare = edgernn_cli("stream", ernn, AUDIO, "--jsonl", "-")
    assert explicit.returncode == 0 and bare.returncode == 0, (explicit.stderr, bare.stderr)
    want = [json.loads(line) for line in explicit.stdout.splitlines()]
    got = [json.loads(line) for line in bare.stdout.splitlines()]
    assert len(got) == len(want) > 100
    assert np.abs(np.array([g["h"] for g in got]) - np.array([w["h"] for w in want])).max() < 1e-5
    detections = [line for line in bare.stderr.splitlines() if line.startswith(("detected", "  '"))]
    assert detections and detections == [line for line in explicit.stderr.splitlines()
                                         if line.startswith(("detected", "  '"))]
    assert "the .ernn's stream settings" in bare.stderr and "--window 400" in bare.stderr


def test_an_option_given_when_streaming_wins_over_the_stored_one(models):
    _, ernn, _ = models
    r = edgernn_cli("stream", ernn, AUDIO, "--detect-threshold", "0.99", "--jsonl", "-")
    assert r.returncode == 0, r.stderr
    assert not any(line.startswith("detected") for line in r.stderr.splitlines())
    mismatch = edgernn_cli("stream", ernn, AUDIO, "--window", "512")
    assert mismatch.returncode != 0 and "front end takes windows of 400" in mismatch.stderr
    assert "Traceback" not in mismatch.stderr


@pytest.mark.parametrize("text,match", [
    ("--jsonl out.jsonl", "not a stream setting"), ("--wav-out x.wav --features magnitude --window 512",
                                                     "one run"),
    ("--features logmel --rate 16000", "needs --window"), ("--window 400 --features logmel --n-mels 9999 --rate 16000",
                                                            "mel"),
    ("--window nine", "invalid int")])
def test_settings_that_cannot_work_are_refused_at_convert_time(text, match):
    with pytest.raises(SignalArgumentError, match=match):
        settings_metadata(text)


def test_streaming_a_model_without_settings_still_needs_the_window(tmp_path):
    write_gru(tmp_path / "g.onnx", 40, 8)
    r = edgernn_cli("stream", tmp_path / "g.onnx", AUDIO)
    assert r.returncode != 0 and "--window W is required" in r.stderr and "Traceback" not in r.stderr


def test_the_settings_keys_are_documented():
    text = (Path(__file__).resolve().parents[1] / "docs" / "format.md").read_text()
    assert f"`{OPTIONS_KEY}`" in text and f"`{FRONTEND_KEY}`" in text
