"""LiteRT models for benchmarks/perf.py: the same shapes as exporters/synthetic.py, from tf_keras.

    /path/to/tf-venv/bin/python -m exporters.make_benchmark_tflite [--out benchmarks/models]

Needs tensorflow and tf_keras (2.21 was used); the files are committed, so the benchmark runs
without TensorFlow. Each model is converted in the form that is fastest for LiteRT to stream
one frame per ``invoke`` (DESIGN.md: its strongest peer):

- LSTM stacks (lstm2x128, lstm3x256): batch 1 and a fixed time axis of 1; tf_keras converts
  each layer to the fused UNIDIRECTIONAL_SEQUENCE_LSTM, which keeps h and c in variable
  tensors between ``invoke`` calls, so a call is one step with the state carried inside.
- GRU stacks (gru1x37, gru2x128): tf_keras converts a GRU to a WHILE loop that starts from its
  ``initial_state`` each call, so the state is a model input and output (``h0_<l>`` in,
  ``h_<l>`` out) fed back through the call, as for ONNX Runtime.

``<name>.tflite`` has float32 weights; ``<name>_int8.tflite`` is the dynamic-range conversion
(int8 weights, float32 activations: edgernn's int8 scheme). Weights are seeded random, the
same distribution as the ONNX models (uniform +-1/sqrt(H)), not the same values.
"""
import argparse
from pathlib import Path

import numpy as np

SHAPES = {      # as exporters/synthetic.py: cell, layers, hidden, inputs, dense outputs (0: none)
    "gru1x37": ("gru", 1, 37, 13, 0),
    "lstm2x128": ("lstm", 2, 128, 40, 12),
    "gru2x128": ("gru", 2, 128, 40, 12),
    "lstm3x256": ("lstm", 3, 256, 64, 12),
}


def keras_model(name, seed=0):
    import tf_keras as keras
    L = keras.layers
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    cell, layers, hidden, inputs, dense = SHAPES[name]
    x = keras.Input((1, inputs), batch_size=1, name="x")
    y, ins, outs = x, [x], []
    for k in range(layers):
        if cell == "lstm":
            y = L.LSTM(hidden, return_sequences=True, name=f"lstm_{k}")(y)
        else:
            h0 = keras.Input((hidden,), batch_size=1, name=f"h0_{k}")
            y, h = L.GRU(hidden, return_sequences=True, return_state=True, reset_after=True, name=f"gru_{k}")(
                y, initial_state=h0)
            ins.append(h0)
            outs.append(L.Activation("linear", name=f"h_{k}")(h))
    y = L.Dense(dense, name="y")(y) if dense else L.Activation("linear", name="y")(y)
    model = keras.Model(ins, [y] + outs)
    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(hidden)
    model.set_weights([rng.uniform(-bound, bound, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def convert(model, int8):
    import tensorflow as tf
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]      # no dataset: dynamic range
    return conv.convert()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "benchmarks" / "models"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in SHAPES:
        model = keras_model(name)
        for int8 in (False, True):
            path = out / f"{name}{'_int8' if int8 else ''}.tflite"
            path.write_bytes(convert(model, int8))
            print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
