"""A trained model straight to an .ernn file for a device, self-checked against the model.

    from exporters.ernn_export import export_ernn_torch, export_ernn_keras
    export_ernn_torch(module, "model.ernn", frame_shape=12, weights="int8", labels=[...])
    export_ernn_keras(keras_model, "model.ernn", weights="int8")

The model goes through the streaming file its framework exports best (PyTorch: ONNX via
exporters/torch_onnx.py; Keras: TFLite via exporters/keras_tflite.py, each already checked at
1e-5), then ``edgernn.convert`` writes the .ernn with the requested weight storage and
deployment metadata. The .ernn is then streamed one ``Stream.step`` per frame against the
source model itself, within the tolerance of its weight storage (TOLERANCE: float32 1e-5;
float16 and int8 about 3x the worst error measured on the torch fixtures, docs/format.md).
The intermediate file is not kept.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .check import check_edgernn

TOLERANCE = {"float32": 1e-5, "float16": 2e-3, "int8": 3e-2}


def _convert(src, path, weights, metadata):
    from edgernn.convert import convert
    if weights not in TOLERANCE:
        raise ValueError(f"weights must be one of {', '.join(TOLERANCE)}, got {weights!r}")
    return convert(src, path, weights=weights, **metadata)


def export_ernn_torch(module, path, frame_shape, weights="float32", check_frames=None, **metadata):
    """nn.Module -> .ernn. metadata: labels, frame_period (s), mean, std, description."""
    from .torch_onnx import check_frames_for, export_onnx, run_module
    with tempfile.TemporaryDirectory() as d:
        onnx_report = export_onnx(module, Path(d) / "model.onnx", frame_shape, check_frames=check_frames)
        _convert(onnx_report.path, path, weights, metadata)
    sig = onnx_report.signature
    frames = check_frames_for(sig) if check_frames is None else np.asarray(check_frames, np.float32)
    was_training = module.training
    module.eval()
    try:
        outs, finals = run_module(module, sig, frames)
    finally:
        module.train(was_training)
    return check_edgernn(path, frames, dict(zip(sig.output_names, outs)),
                         {s.input_name: f for s, f in zip(sig.states, finals)}, TOLERANCE[weights])


def export_ernn_keras(model, path, weights="float32", check_frames=None, **metadata):
    """Keras model (batch, time, *frame) -> .ernn, through a float TFLite file."""
    import edgernn
    from .keras_tflite import CHECK_FRAMES, CHECK_SEED, _frame_shape, export_tflite
    frames = (np.random.default_rng(CHECK_SEED).standard_normal((CHECK_FRAMES, *_frame_shape(model))).astype(np.float32)
              if check_frames is None else np.asarray(check_frames, np.float32))
    with tempfile.TemporaryDirectory() as d:
        tfl = export_tflite(model, Path(d) / "model.tflite", check_frames=frames)
        _convert(tfl.path, path, weights, metadata)
    out = edgernn.load(path).outputs[0]
    want = np.asarray(model(frames[None]))[0].reshape((len(frames),) + out.frame_shape)
    return check_edgernn(path, frames, {out.name: want}, None, TOLERANCE[weights])
