"""Keras 3 sequence models with a causal Conv1D in front of the recurrent layer, converted to
TFLite: what edgernn's streaming pass (passes/pulse.py) meets in Keras files.

What it makes (in ``--out``, default ``tests/fixtures/tflite``); each takes x [1, T, 8] with
an open time axis and gives y [1, T, 4]:

* ``k3_causal_conv_gru``: Conv1D(16, 3, padding='causal', ReLU) -> GRU(24,
  return_sequences) -> Dense(4). The converter writes the causal padding as PAD (zeros, two
  frames before the sequence) + EXPAND_DIMS + CONV_2D (VALID) + RESHAPE, and the GRU as a
  WHILE loop.
* ``k3_dilated_causal_conv_lstm``: Conv1D(16, 3, padding='causal', dilation_rate=2, ReLU) ->
  LSTM(24, return_sequences) -> Dense(4). The converter writes the dilation as
  SPACE_TO_BATCH_ND + CONV_2D + BATCH_TO_SPACE_ND (with FLOOR_MOD on the length), which edgernn
  does not translate yet: the tests check that loading it names those ops.

Each ``<name>.npz`` holds ``frames`` (200, 8), seeded normal, and ``keras_y`` (200, 4): the
Keras model on the whole sequence. The tests run LiteRT (``ai-edge-litert``) themselves.
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
#: name: (dilation, recurrent layer)
FIXTURES = {"k3_causal_conv_gru": (1, "GRU"), "k3_dilated_causal_conv_lstm": (2, "LSTM")}


def build(name):
    import keras
    dilation, rnn = FIXTURES[name]
    x = keras.Input((None, FEATURES), batch_size=1)
    h = keras.layers.Conv1D(CHANNELS, 3, padding="causal", dilation_rate=dilation, activation="relu")(x)
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
