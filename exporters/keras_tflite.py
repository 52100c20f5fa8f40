"""Keras (Keras 3 or tf_keras) -> TFLite that edgernn streams, self-checked.

    from exporters.keras_tflite import export_tflite
    report = export_tflite(model, "model.tflite", quantize=None)     # or "dynamic", "int8"
    print(report)

The model takes ``(batch, time, *frame_shape)`` and returns per-frame outputs
(``return_sequences=True``). The converter settings are the ones that give edgernn the most to
work with (docs/architecture.md, DESIGN.md's measured facts):
- the input is re-declared with batch 1 and a dynamic time axis: the converter needs a
  static batch to lower a Keras 3 RNN's TensorList ops into a ``WHILE`` loop, and a dynamic T
  lets the same file run a whole sequence in LiteRT. tf_keras LSTMs become the fused
  UNIDIRECTIONAL_SEQUENCE_LSTM; GRU, SimpleRNN and Keras 3 layers become ``WHILE`` loops,
  whose cells edgernn recognises and runs on its recurrent kernels;
- ``quantize="dynamic"``: int8 weights, float activations (edgernn's own int8 scheme);
  ``"int8"``: full integer with a representative dataset of seeded frames (LiteRT quantises
  activations too; edgernn keeps them float, so the check uses a wider tolerance).

The self-check runs the Keras model on seeded frames as one sequence and streams the file
through edgernn one ``Stream.step`` per frame (exporters/check.py); it raises
``ExportCheckError`` beyond the tolerance (1e-5 for float files, ``QUANTISED_TOLERANCE``
relative to the output scale for quantised ones). TensorFlow is imported only here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .check import DEFAULT_TOLERANCE, CheckReport, check_edgernn

CHECK_FRAMES = 64
CHECK_SEED = 0
#: scaled error allowed for quantised files: weight rounding (and, for "int8", activation
#: rounding in the source's own LiteRT semantics) moves outputs by about a percent of their scale
QUANTISED_TOLERANCE = 0.05


class KerasExportError(ValueError):
    """The Keras model cannot be exported as a streaming model; the message says why."""


@dataclass
class TFLiteExportReport:
    path: Path
    quantize: str | None
    check: CheckReport

    def __str__(self) -> str:
        return (f"wrote {self.path} ({self.path.stat().st_size:,} bytes, "
                f"{self.quantize or 'float32'}): {self.check.summary()}")


def _frame_shape(model):
    shape = tuple(model.inputs[0].shape)
    if len(model.inputs) != 1 or len(shape) < 3:
        raise KerasExportError("the model must take one input of shape (batch, time, *frame); models with "
                               "initial_state inputs: load the .tflite directly (edgernn pairs the state)")
    return tuple(int(d) for d in shape[2:])


def _batch1_dynamic_time(model):
    """The same layers, applied to an input declared (1, None, *frame)."""
    if type(model).__module__.startswith("tf_keras"):
        import tf_keras as keras
    else:
        import keras
    inp = keras.Input((None, *_frame_shape(model)), batch_size=1, name="x")
    return keras.Model(inp, model(inp))


def convert(model, quantize=None, frames=None) -> bytes:
    import tensorflow as tf
    conv = tf.lite.TFLiteConverter.from_keras_model(_batch1_dynamic_time(model))
    if quantize in ("dynamic", "int8"):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "int8":
        def representative():
            for k in range(0, len(frames), 16):
                yield [frames[None, k:k + 16]]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    elif quantize not in (None, "dynamic"):
        raise KerasExportError(f"quantize must be None, 'dynamic' or 'int8', got {quantize!r}")
    return conv.convert()


def export_tflite(model, path, quantize=None, check_frames=None, tolerance=None) -> TFLiteExportReport:
    """Convert ``model`` to ``path`` (.tflite) and check edgernn streams it like the model."""
    path = Path(path)
    frame_shape = _frame_shape(model)
    frames = (np.random.default_rng(CHECK_SEED).standard_normal((CHECK_FRAMES, *frame_shape)).astype(np.float32)
              if check_frames is None else np.asarray(check_frames, np.float32))
    path.write_bytes(convert(model, quantize, frames))
    import edgernn
    out = edgernn.load(path).outputs[0]
    want = np.asarray(model(frames[None]))[0].reshape((len(frames),) + out.frame_shape)   # one sequence
    tol = tolerance if tolerance is not None else (DEFAULT_TOLERANCE if quantize is None else QUANTISED_TOLERANCE)
    return TFLiteExportReport(path, quantize, check_edgernn(path, frames, {out.name: want}, None, tol))
