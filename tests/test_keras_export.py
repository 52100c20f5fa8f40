"""Keras -> TFLite -> edgernn, and Keras -> .ernn (exporters/keras_tflite.py, ernn_export.py).

Oracle: the Keras model itself, run in the test on one sequence of frames the test generates.
Needs tensorflow and tf_keras (skipped without them; CI has neither: the committed TFLite
fixtures of tests/test_tflite.py cover the importer there). Run with a TensorFlow venv:
``PYTHONPATH=. /path/to/tf-venv/bin/python -m pytest tests/test_keras_export.py``.
"""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="the Keras exporter tests need tensorflow")
tf_keras = pytest.importorskip("tf_keras", reason="the Keras exporter tests need tf_keras")

import edgernn  # noqa: E402
from exporters.check import scaled_error  # noqa: E402
from exporters.ernn_export import TOLERANCE, export_ernn_keras  # noqa: E402
from exporters.keras_tflite import export_tflite  # noqa: E402

F, H, OUT = 6, 16, 3


def keras_model(cell, lib):
    L = lib.layers
    lib.utils.set_random_seed(4)
    inp = lib.Input((None, F))
    layer = {"lstm": L.LSTM, "gru": L.GRU, "simplernn": L.SimpleRNN}[cell]
    y = layer(H, return_sequences=True)(inp)
    return lib.Model(inp, L.Dense(OUT)(y))


def libraries():
    import keras
    return {"tf_keras": tf_keras, "keras3": keras}


@pytest.mark.parametrize("lib", ["tf_keras", "keras3"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "simplernn"])
def test_tflite_export_streams_like_keras(cell, lib, tmp_path):
    model = keras_model(cell, libraries()[lib])
    report = export_tflite(model, tmp_path / "m.tflite")
    assert report.check.worst() <= 1e-5
    frames = np.random.default_rng(9).standard_normal((50, F)).astype(np.float32)
    want = np.asarray(model(frames[None]))[0]
    s = edgernn.load(tmp_path / "m.tflite").stream()
    got = np.stack([s.step(f) for f in frames])
    assert scaled_error(got, want.reshape(got.shape)) <= 1e-5


@pytest.mark.parametrize("weights", ["float32", "int8"])
def test_ernn_export_streams_like_keras(weights, tmp_path):
    model = keras_model("lstm", tf_keras)
    report = export_ernn_keras(model, tmp_path / "m.ernn", weights=weights, frame_period=0.01)
    assert report.worst() <= TOLERANCE[weights]
    m = edgernn.load(tmp_path / "m.ernn")
    assert m.metadata["model.frame_period_s"] == 0.01


def test_quantised_tflite_export_is_checked_within_its_tolerance(tmp_path):
    report = export_tflite(keras_model("lstm", tf_keras), tmp_path / "m.tflite", quantize="dynamic")
    assert report.check.worst() <= report.check.tolerance
