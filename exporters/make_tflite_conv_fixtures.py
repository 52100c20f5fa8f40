"""Build small per-step Keras models of audio front ends (convolutions, normalisers), convert
them to TFLite and write the fixtures for the convolution, padding and reduction ops.

Why
---
Deployed audio models (keyword spotters, VAD front ends, denoisers) run a convolutional
encoder over a spectrogram patch per call, often behind a layer norm written out as
MEAN / SQUARED_DIFFERENCE / RSQRT / MUL, with padding and strided slicing; decoders use a
transposed convolution. The converter writes them as CONV_2D (Conv1D: EXPAND_DIMS + CONV_2D
+ RESHAPE), DEPTHWISE_CONV_2D, TRANSPOSE_CONV (BatchNorm folded into the filters and bias,
ReLU fused), PAD / PADV2 / MIRROR_PAD, MEAN / SUM / REDUCE_MAX, SQUARED_DIFFERENCE, RSQRT,
SQRT, POW, PACK / UNPACK and STRIDED_SLICE. Every model here is a *step* model: one call = one
frame (a patch), no state; edgernn loads them with ``step=True``.

What it makes (in ``--out``, default ``tests/fixtures/tflite``)
-------------------------------------------------------------
The encoders have a fixed batch of 1 (``Input(frame_shape, batch_size=1)``, how per-step
models are deployed): with an open batch the converter does not fold a dilated convolution's
SPACE_TO_BATCH_ND + CONV_2D + BATCH_TO_SPACE_ND into CONV_2D's dilation factors, which edgernn
does not translate. The normaliser and the decoder have an open batch axis (shape signature
``[-1, *frame]``; the decoder's TRANSPOSE_CONV output shape is then computed: SHAPE,
STRIDED_SLICE, PACK). Weights are seeded (seed = crc32 of the source model's name): kernels
N(0, 1/fan_in), BatchNorm gamma 1 + N(0, 0.1^2), beta and moving mean N(0, 0.1^2), moving
variance U(0.5, 1.5), biases N(0, 0.1^2).

* ``conv_encoder2d`` -- Keras 3, ``x [B, 12, 8, 2]`` (frequency x time patch, 2 channels):
  Conv2D(8, 3x3, 'same', strides (2, 1)) + BatchNorm + ReLU -> [6, 8, 8];
  Conv2D(16, 3x3, 'same', dilation 2) + ReLU6 -> [6, 8, 16] (1152 weights: big enough for
  dynamic-range quantisation);
  DepthwiseConv2D(3x3, 'valid', depth_multiplier 2, dilation (1, 2)) + BatchNorm + ReLU
  -> [4, 4, 32]; Conv2D(8, 1x1) -> Flatten -> Dense(5). float32.
* ``conv_encoder2d_dynrange`` -- the same model (same weights), dynamic-range quantised: the
  second Conv2D's filters (>= 1024 elements) are int8 with per-channel scales, LiteRT
  quantises its input on the fly; the other filters stay float32.
* ``conv_encoder2d_int8`` -- the same model, full integer (representative dataset of seeded
  patches): int8 filters (per-channel scales), int32 biases, int8 activations; float32 I/O
  with QUANTIZE / DEQUANTIZE around the integer graph.
* ``conv_encoder1d`` -- Keras 3, ``x [B, 16, 4]``: Conv1D(8, 3, 'same', strides 2) +
  BatchNorm + ReLU -> [8, 8]; Conv1D(8, 3, 'valid', dilation 2) + ReLU -> [4, 8];
  DepthwiseConv1D(3, 'same', depth_multiplier 2) + tanh -> [4, 16]; Flatten -> Dense(5).
  float32 (each conv is EXPAND_DIMS + CONV_2D / DEPTHWISE_CONV_2D + RESHAPE in the file).
* ``conv_normaliser`` -- tf_keras functional model of tf ops (each a TFOpLambda layer),
  ``x [B, 20, 3]`` (20 mel bins, 3 channels): a layer norm over the bins written out (MEAN,
  SQUARED_DIFFERENCE, MEAN, SUB, ADD, RSQRT, MUL, then gamma/beta MUL/ADD), MIRROR_PAD
  (REFLECT, 2 bins each side), PAD (zeros), PADV2 (value 0.5), STRIDED_SLICE
  ``[:, 1:-2:2, 1:]``, UNPACK along channels, SQRT(|a| + 1), POW(|b| + 1, 1.5), PACK, SUM over
  channels and REDUCE_MAX over bins, CONCATENATION -> [B, 16]. float32.
* ``conv_decoder2d`` -- Keras 3, ``x [B, 4, 3, 4]``: Conv2DTranspose(6, 3x3, strides 2,
  'same') + ReLU -> [8, 6, 6]; Conv2DTranspose(4, (3, 2), strides (1, 2), 'valid') ->
  [10, 12, 4]; Flatten -> Dense(5). float32.

Each ``<name>.npz`` holds ``frames`` (200, *frame), seeded normal, ``keras_y`` (200, out):
the Keras model called on each frame, and ``litert_y`` (200, out): TensorFlow's LiteRT
interpreter called once per frame. The tests re-run LiteRT (``ai-edge-litert``) themselves.
Run from the repo root with TensorFlow's own environment (edgernn never needs TensorFlow)::

    /work/venv-tf/bin/python -m exporters.make_tflite_conv_fixtures [--out tests/fixtures/tflite]
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from .make_tflite_fixtures import N_FRAMES, OUT, save_npz, seed_of, tflite_ops  # noqa: E402

CALIBRATION = 128              # representative patches of the full-integer file

#: name: (source model, quantisation, description)
FIXTURES = {
    "conv_encoder2d": ("encoder2d", "float", "Conv2D/DepthwiseConv2D/BatchNorm/ReLU encoder + Dense"),
    "conv_encoder2d_dynrange": ("encoder2d", "dynamic", "conv_encoder2d, dynamic-range int8 filters"),
    "conv_encoder2d_int8": ("encoder2d", "int8", "conv_encoder2d, full integer, float32 I/O"),
    "conv_encoder1d": ("encoder1d", "float", "Conv1D/DepthwiseConv1D/BatchNorm encoder + Dense"),
    "conv_normaliser": ("normaliser", "float", "layer norm written out, pads, strided slice, pack"),
    "conv_decoder2d": ("decoder2d", "float", "Conv2DTranspose x2 + Dense"),
}


# ---------------------------------------------------------------------------- models
def seed_weights(model, rng) -> None:
    """Seeded weights by role (module doc): a BatchNorm's variance must stay positive."""
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        if "batch_normalization" in layer.name:
            g, b, m, v = (w.shape for w in ws)
            ws = [1 + 0.1 * rng.normal(size=g), 0.1 * rng.normal(size=b), 0.1 * rng.normal(size=m),
                  rng.uniform(0.5, 1.5, size=v)]
        else:
            out = []
            for w in ws:
                if w.ndim == 1:
                    out.append(0.1 * rng.normal(size=w.shape))
                else:
                    fan_in = int(np.prod(w.shape[:-1])) if "transpose" not in layer.name else \
                        int(np.prod(w.shape[:-2]) * w.shape[-1])
                    if "depthwise" in layer.name:
                        fan_in = int(np.prod(w.shape[:-2]))
                    out.append(rng.normal(size=w.shape) / np.sqrt(fan_in))
            ws = out
        layer.set_weights([np.asarray(w, np.float32) for w in ws])


def frame_shape(source: str) -> tuple:
    return {"encoder2d": (12, 8, 2), "encoder1d": (16, 4), "normaliser": (20, 3), "decoder2d": (4, 3, 4)}[source]


def build(source: str):
    rng = np.random.default_rng(seed_of(source))
    if source == "normaliser":
        import tensorflow as tf
        import tf_keras as keras
        keras.backend.clear_session()
        x = keras.Input(frame_shape(source), name="x")
        gamma = (1 + 0.1 * rng.normal(size=(1, 1, 3))).astype(np.float32)
        beta = (0.1 * rng.normal(size=(1, 1, 3))).astype(np.float32)
        m = tf.reduce_mean(x, axis=1, keepdims=True)
        v = tf.reduce_mean(tf.math.squared_difference(x, m), axis=1, keepdims=True)
        y = (x - m) * tf.math.rsqrt(v + 1e-3)
        y = y * gamma + beta
        y = tf.pad(y, [[0, 0], [2, 2], [0, 0]], mode="REFLECT")              # [24, 3]
        y = tf.pad(y, [[0, 0], [1, 0], [0, 1]])                              # [25, 4]
        y = tf.pad(y, [[0, 0], [0, 1], [1, 0]], constant_values=0.5)         # [26, 5]
        s = y[:, 1:-2:2, 1:]                                                 # [12, 4]
        a, b, c, d = tf.unstack(s, axis=2)
        p = tf.stack([tf.sqrt(tf.abs(a) + 1.0), tf.pow(tf.abs(b) + 1.0, 1.5), c, d], axis=-1)
        z = tf.concat([tf.reduce_sum(p, axis=2), tf.reduce_max(p, axis=1)], axis=1)      # [16]
        return keras.Model(x, z)
    import keras
    L = keras.layers
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed_of(source))
    # the encoders have a fixed batch of 1 (as deployed): with an open batch the converter writes a
    # dilated convolution as SPACE_TO_BATCH_ND + CONV_2D + BATCH_TO_SPACE_ND instead of dilation factors
    x = keras.Input(frame_shape(source), name="x", batch_size=None if source == "decoder2d" else 1)
    if source == "encoder2d":
        y = L.Conv2D(8, 3, padding="same", strides=(2, 1))(x)
        y = L.ReLU()(L.BatchNormalization()(y))
        y = L.Conv2D(16, 3, padding="same", dilation_rate=2, activation="relu6")(y)
        y = L.DepthwiseConv2D(3, padding="valid", depth_multiplier=2, dilation_rate=(1, 2))(y)
        y = L.ReLU()(L.BatchNormalization()(y))
        y = L.Conv2D(8, 1)(y)
    elif source == "encoder1d":
        y = L.Conv1D(8, 3, padding="same", strides=2)(x)
        y = L.ReLU()(L.BatchNormalization()(y))
        y = L.Conv1D(8, 3, padding="valid", dilation_rate=2, activation="relu")(y)
        y = L.DepthwiseConv1D(3, padding="same", depth_multiplier=2, activation="tanh")(y)
    elif source == "decoder2d":
        y = L.Conv2DTranspose(6, 3, strides=2, padding="same", activation="relu")(x)
        y = L.Conv2DTranspose(4, (3, 2), strides=(1, 2), padding="valid")(y)
    else:
        raise ValueError(source)
    model = keras.Model(x, L.Dense(OUT)(L.Flatten()(y)))
    seed_weights(model, rng)
    return model


def convert(model, quant: str, calibration) -> bytes:
    import tensorflow as tf
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if quant in ("dynamic", "int8"):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if quant == "int8":
        def representative():
            for f in calibration:
                yield [f[None]]
        conv.representative_dataset = representative
    return conv.convert()


def litert_frames(data: bytes, frames: np.ndarray) -> np.ndarray:
    """TensorFlow's LiteRT interpreter called once per frame (batch 1)."""
    import tensorflow as tf
    it = tf.lite.Interpreter(model_content=data, num_threads=1)
    run = it.get_signature_runner()
    name = next(iter(run.get_input_details()))
    return np.stack([next(iter(run(**{name: f[None]}).values()))[0] for f in frames])


def make_one(name: str, out: Path) -> dict:
    source, quant, what = FIXTURES[name]
    model = build(source)
    shape = frame_shape(source)
    frames = np.random.default_rng(seed_of(name) + 1).normal(size=(N_FRAMES,) + shape).astype(np.float32)
    calibration = np.random.default_rng(seed_of(source) + 3).normal(size=(CALIBRATION,) + shape).astype(np.float32)
    data = convert(model, quant, calibration)
    (out / f"{name}.tflite").write_bytes(data)
    keras_y = np.asarray(model(frames)).reshape(N_FRAMES, -1)
    lite_y = litert_frames(data, frames).reshape(N_FRAMES, -1)
    save_npz(out / f"{name}.npz", frames=frames, keras_y=keras_y, litert_y=lite_y)
    return dict(name=name, what=what, bytes=len(data), ops=tflite_ops(data),
                litert_vs_keras=float(np.abs(lite_y - keras_y).max()))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="tests/fixtures/tflite", type=Path)
    p.add_argument("--only", nargs="*", default=None, help="make only these fixtures")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or FIXTURES:
        e = make_one(name, args.out)
        print(f"{e['name'] + '.tflite':<28} {e['bytes']:>7} B  LiteRT vs Keras {e['litert_vs_keras']:.2e}  "
              f"{e['what']}\n    ops {e['ops']}", flush=True)


if __name__ == "__main__":
    main()
