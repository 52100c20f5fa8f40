"""Keras 3 sequence models with a causal Conv1D in front of the recurrent layer, converted to
TFLite: what edgernn's streaming pass (passes/pulse.py) meets in Keras files.

What it makes (in ``--out``, default ``tests/fixtures/tflite``); each takes x [1, T, 8] with
an open time axis and gives y [1, T, 4] (y [1, ceil(T / 2), 4] after the stride):

* ``k3_causal_conv_gru``: Conv1D(16, 3, padding='causal', ReLU) -> GRU(24,
  return_sequences) -> Dense(4). The converter writes the causal padding as PAD (zeros, two
  frames before the sequence) + EXPAND_DIMS + CONV_2D (VALID) + RESHAPE, and the GRU as a
  WHILE loop.
* ``k3_dilated_causal_conv_lstm``: Conv1D(16, 3, padding='causal', dilation_rate=2, ReLU) ->
  LSTM(24, return_sequences) -> Dense(4). With an open length the converter writes the dilation
  as SPACE_TO_BATCH_ND + EXPAND_DIMS + CONV_2D + RESHAPE + BATCH_TO_SPACE_ND, the paddings and
  crops one tensor computed from the length (SHAPE, FLOOR_MOD, ...); edgernn folds the chain
  into one dilated conv (formats/tflite_dilation.py).
* ``k3_dilated_same_conv_gru``: Conv1D(16, 3, padding='same', dilation_rate=3, ReLU) -> GRU:
  look-ahead (3 frames) through the same chain, the paddings (TensorFlow's SAME padding plus
  the rounding up) and crops two different tensors.
* ``k3_strided_causal_conv_gru``: Conv1D(16, 3, strides=2, padding='causal', ReLU) -> GRU: one
  output every second frame (the GRU's WHILE loop runs on those frames only).
* ``k3_dilated_conv2d_gru``: the sequence as [T, 8, 1] -> Conv2D(4, (3, 3), padding='same',
  dilation_rate=2, ReLU) over time x features -> Reshape to [T, 32] -> GRU: a 2-D block shape.

Each ``<name>.npz`` holds ``frames`` (200, 8), seeded normal, and ``keras_y`` (200, 4) or
(100, 4): the Keras model on the whole sequence. The tests run LiteRT (``ai-edge-litert``) themselves.
Weights: seeded (seed = crc32 of the name), N(0, 0.3^2). Run from the repo root with
TensorFlow's own environment (edgernn never needs TensorFlow)::

    /work/venv-tf/bin/python -m exporters.make_tflite_time_conv_fixtures [--out tests/fixtures/tflite]
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from .make_tflite_fixtures import N_FRAMES, save_npz, seed_of, seeded_weights  # noqa: E402

FEATURES, CHANNELS, HIDDEN, CLASSES = 8, 16, 24, 4
#: name: (convolution, padding, dilation, stride, recurrent layer)
FIXTURES = {"k3_causal_conv_gru": ("Conv1D", "causal", 1, 1, "GRU"),
            "k3_dilated_causal_conv_lstm": ("Conv1D", "causal", 2, 1, "LSTM"),
            "k3_dilated_same_conv_gru": ("Conv1D", "same", 3, 1, "GRU"),
            "k3_strided_causal_conv_gru": ("Conv1D", "causal", 1, 2, "GRU"),
            "k3_dilated_conv2d_gru": ("Conv2D", "same", 2, 1, "GRU")}


def build(name):
    import keras
    conv, padding, dilation, stride, rnn = FIXTURES[name]
    x = keras.Input((None, FEATURES), batch_size=1)
    if conv == "Conv2D":
        h = keras.layers.Reshape((-1, FEATURES, 1))(x)
        h = keras.layers.Conv2D(4, (3, 3), padding=padding, dilation_rate=dilation, activation="relu")(h)
        h = keras.layers.Reshape((-1, FEATURES * 4))(h)
    else:
        h = keras.layers.Conv1D(CHANNELS, 3, strides=stride, padding=padding, dilation_rate=dilation,
                                activation="relu")(x)
    h = getattr(keras.layers, rnn)(HIDDEN, return_sequences=True)(h)
    model = keras.Model(x, keras.layers.Dense(CLASSES)(h))
    seeded_weights(model, np.random.default_rng(seed_of(name)))
    return model


def make_one(name, out):
    import tensorflow as tf
    model = build(name)
    (out / f"{name}.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    frames = np.random.default_rng(seed_of(name) + 1).standard_normal((N_FRAMES, FEATURES)).astype(np.float32)
    save_npz(out / f"{name}.npz", frames=frames, keras_y=model(frames[None]).numpy()[0])
    print("wrote", out / f"{name}.tflite")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/fixtures/tflite")
    out = Path(ap.parse_args(argv).out)
    out.mkdir(parents=True, exist_ok=True)
    for name in FIXTURES:
        make_one(name, out)


if __name__ == "__main__":
    main()
