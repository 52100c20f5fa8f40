"""Build small Keras models, convert them to TFLite and write the test fixtures.

Why
---
The TFLite converter emits very different graphs for the same recurrent layer, depending on
the Keras flavour and on quantisation:

* Keras 3 (``import keras``) converts LSTM, GRU and SimpleRNN to a ``WHILE`` loop whose body
  subgraph is one time step of the cell (FULLY_CONNECTED, SPLIT, LOGISTIC, TANH, MUL, ...),
  with the TensorList plumbing lowered to GATHER (read frame t) and SLICE/CONCATENATION
  (write output t);
* tf_keras (Keras 2) converts LSTM to the fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` (float,
  dynamic-range int8 weights, or full integer "8x8_16"), but GRU, SimpleRNN and an LSTM
  called with ``initial_state`` to ``WHILE``;
* no converter we have emits ``UNIDIRECTIONAL_SEQUENCE_RNN``; that file is written directly
  with the official flatbuffer schema (``schema_py_generated``) and runs in LiteRT.

Sequence length
---------------
Every converted model has batch 1 and a dynamic time axis (declared shape ``[1, 1, F]``,
shape signature ``[1, -1, F]``): the converter needs a static batch to lower the TensorList
ops of a ``WHILE`` RNN, and a dynamic T is what ``keras.Input((None, F))`` gives. One file then
serves both LiteRT runs the tests need (the whole 200-frame sequence in one ``invoke`` after
``resize_tensor_input``, or one frame per ``invoke``), and edgernn streams it one frame at a
time regardless. ``tk_lstm_t1`` is the streaming-friendly form instead: a fixed T = 1, where
LiteRT's fused LSTM keeps its state in variable tensors between ``invoke`` calls.

What it makes (in ``--out``, default ``tests/fixtures/tflite``)
-------------------------------------------------------------
* ``<name>.tflite`` -- the converted model;
* ``<name>.npz`` -- ``frames`` float32 (200, F), seeded normal noise (``h0``/``c0`` inputs of
  the state model are zero), and ``keras_y`` (200, out): the source Keras model's output for
  those frames run as one sequence (``*_last`` models, which return only the last step: row t
  is the output for frames 0..t; ``schema_seq_rnn``: its equations in NumPy). For
  ``*_unsupported*`` files (which edgernn must reject) only ``frames``;
* ``manifest.json`` -- one entry per file: name, framework, cells, form (``fused``,
  ``while`` or ``hand-built``), quantisation, time axis length (``dynamic`` or 1), sizes, the
  TFLite ops of every subgraph, and the max abs difference LiteRT vs Keras measured here.

Weights are seeded normal values (biases included, so every bias path is exercised), scaled
so that gates are neither saturated nor linear. Run from the repo root with TensorFlow's
own environment (TensorFlow is never needed by edgernn or its tests)::

    python -m venv /work/venvs/tf && /work/venvs/tf/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    /work/venvs/tf/bin/python -m exporters.make_tflite_fixtures [--out tests/fixtures/tflite]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import zipfile
import zlib
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

N_FRAMES = 200
F, H, OUT = 10, 24, 5          # features, hidden units, head outputs
WEIGHT_SCALE = 0.3


# ---------------------------------------------------------------------------- helpers
def seed_of(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def seeded_weights(model, rng) -> None:
    """Replace every weight (kernels, recurrent kernels, biases) with N(0, WEIGHT_SCALE^2)."""
    model.set_weights([rng.normal(0.0, WEIGHT_SCALE, w.shape).astype(np.float32)
                       for w in model.get_weights()])


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Like ``np.savez`` but byte-for-byte reproducible (fixed zip timestamps)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr, np.float32), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def tflite_ops(data: bytes) -> list[list[str]]:
    """Op names of every subgraph, in order."""
    from tensorflow.lite.python import schema_py_generated as s
    names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    m = s.ModelT.InitFromPackedBuf(data, 0)
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in m.operatorCodes]
    return [[names[codes[op.opcodeIndex]] for op in (g.operators or [])] for g in m.subgraphs]


def litert_sequence(data: bytes, feeds: dict) -> dict:
    """Run the file's signature once on whole sequences: {input name: array} -> {output: array}."""
    import tensorflow as tf
    it = tf.lite.Interpreter(model_content=data, num_threads=1)
    return it.get_signature_runner()(**feeds)


def litert_frames(data: bytes, frames: np.ndarray) -> np.ndarray:
    """Run a fixed T = 1 file one frame per invoke (its variable tensors carry the state)."""
    import tensorflow as tf
    it = tf.lite.Interpreter(model_content=data, num_threads=1)
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    ys = []
    for f in frames:
        it.set_tensor(i, f[None, None])
        it.invoke()
        ys.append(it.get_tensor(o)[0, 0])
    return np.stack(ys)


def convert(model, quant: str = "float", rng=None, features: int = F) -> bytes:
    import tensorflow as tf
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if quant in ("int8", "dynamic"):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if quant == "int8":
        def representative():
            for _ in range(16):
                yield [rng.normal(size=(1, 100, features)).astype(np.float32)]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return conv.convert()


# ---------------------------------------------------------------------------- Keras 3 models
def keras3_model(name: str, rng):
    import keras
    from keras import layers as L, ops

    class GatedCell(keras.layers.Layer):
        """Not a standard cell: h' = g * a + (1 - g) * 0.5 * h with a = tanh(W x + R h + b),
        g = sigmoid(U x). Made of supported ops (edgernn runs it as a per-step graph), or, with
        ``sine=True``, of an op edgernn lacks (SIN)."""

        def __init__(self, units, sine=False, **kw):
            super().__init__(**kw)
            self.units, self.sine = units, sine
            self.state_size = units
            self.output_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], 2 * self.units), name="kernel")
            self.rec = self.add_weight(shape=(self.units, self.units), name="rec")
            self.bias = self.add_weight(shape=(self.units,), name="bias")

        def call(self, x, states):
            h = states[0]
            zx = ops.matmul(x, self.kernel)
            a = ops.tanh(zx[:, :self.units] + ops.matmul(h, self.rec) + self.bias)
            if self.sine:
                a = ops.sin(a)
            g = ops.sigmoid(zx[:, self.units:])
            h2 = g * a + (1.0 - g) * 0.5 * h
            return h2, [h2]

    keras.backend.clear_session()          # layer names (hence tensor names) restart per file
    keras.utils.set_random_seed(seed_of(name))
    inp = keras.Input((None, F), batch_size=1, name="x")
    if name == "k3_lstm":
        y = L.LSTM(H, return_sequences=True)(inp)
    elif name == "k3_gru":
        y = L.GRU(H, return_sequences=True)(inp)                      # reset_after=True
    elif name == "k3_simplernn":
        y = L.SimpleRNN(H, return_sequences=True)(inp)
    elif name == "k3_stack":
        y = L.Dense(16, activation="relu")(inp)
        y = L.GRU(H, return_sequences=True, reset_after=False)(y)
        y = L.LSTM(20, return_sequences=True)(y)
    elif name == "k3_gru_last":
        y = L.GRU(H)(inp)                                             # return_sequences=False
        return _classifier(keras, L, inp, y, rng)
    elif name == "k3_custom_cell":
        y = L.RNN(GatedCell(H), return_sequences=True)(inp)
    elif name == "k3_unsupported_cell":
        y = L.RNN(GatedCell(H, sine=True), return_sequences=True)(inp)
    else:
        raise ValueError(name)
    model = keras.Model(inp, L.Dense(OUT)(y))
    seeded_weights(model, rng)
    return model


def _classifier(keras, L, inp, last, rng):
    """A keyword-spotter-shaped head on the last step's output: Dense(OUT, softmax)."""
    model = keras.Model(inp, L.Dense(OUT, activation="softmax")(last))
    seeded_weights(model, rng)
    return model


# ---------------------------------------------------------------------------- tf_keras models
def tf_keras_model(name: str, rng, features: int = F, hidden: int = H):
    import tf_keras as keras
    L = keras.layers
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed_of(name))
    T = 1 if name == "tk_lstm_t1" else None
    inp = keras.Input((T, features), batch_size=1, name="x")
    if name == "tk_lstm_state":
        h0 = keras.Input((hidden,), batch_size=1, name="h0")
        c0 = keras.Input((hidden,), batch_size=1, name="c0")
        seq, h, c = L.LSTM(hidden, return_sequences=True, return_state=True)(inp, initial_state=[h0, c0])
        named = [L.Dense(OUT, name="y")(seq), L.Activation("linear", name="h")(h),
                 L.Activation("linear", name="c")(c)]      # output names of the signature
        model = keras.Model([inp, h0, c0], named)
        seeded_weights(model, rng)
        return model
    if name == "tk_lstm_state_in":
        h0 = keras.Input((hidden,), batch_size=1, name="h0")
        c0 = keras.Input((hidden,), batch_size=1, name="c0")
        seq = L.LSTM(hidden, return_sequences=True)(inp, initial_state=[h0, c0])
        model = keras.Model([inp, h0, c0], L.Dense(OUT)(seq))
        seeded_weights(model, rng)
        return model
    if name in ("tk_lstm", "tk_lstm_t1", "tk_lstm_int8", "tk_lstm_dynrange"):
        y = L.LSTM(hidden, return_sequences=True)(inp)
    elif name == "tk_lstm_last":
        return _classifier(keras, L, inp, L.LSTM(hidden)(inp), rng)
    elif name == "tk_lstm2":
        y = L.LSTM(hidden, return_sequences=True)(inp)
        y = L.LSTM(20, return_sequences=True)(y)
    elif name == "tk_gru_ra0":
        y = L.GRU(hidden, return_sequences=True, reset_after=False)(inp)
    elif name == "tk_gru_ra1":
        y = L.GRU(hidden, return_sequences=True, reset_after=True)(inp)
    elif name == "tk_simplernn":
        y = L.SimpleRNN(hidden, return_sequences=True)(inp)
    elif name == "tk_unsupported_op":
        y = L.LSTM(hidden, return_sequences=True)(inp)
        y = L.Lambda(lambda t: keras.backend.sin(t))(y)
    else:
        raise ValueError(name)
    model = keras.Model(inp, L.Dense(OUT)(y))
    seeded_weights(model, rng)
    return model


def sequence_model(model, features=F):
    """The T = 1 LSTM model's weights in a dynamic-T twin, to run Keras on the whole sequence."""
    import tf_keras as keras
    L = keras.layers
    inp = keras.Input((None, features), batch_size=1)
    y = L.LSTM(model.layers[1].units, return_sequences=True)(inp)
    seq = keras.Model(inp, L.Dense(OUT)(y))
    seq.set_weights(model.get_weights())
    return seq


# ---------------------------------------------------------------------------- hand-built RNN
def sequence_rnn_file(rng) -> tuple[bytes, dict]:
    """A TFLite file with UNIDIRECTIONAL_SEQUENCE_RNN (tanh) and a FULLY_CONNECTED head with
    a fused RELU and keep_num_dims, written with the official schema; returns (bytes, weights)."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as s

    w = {"W": rng.normal(0, WEIGHT_SCALE, (H, F)), "R": rng.normal(0, WEIGHT_SCALE, (H, H)),
         "b": rng.normal(0, WEIGHT_SCALE, H), "Wo": rng.normal(0, WEIGHT_SCALE, (OUT, H)),
         "bo": rng.normal(0, WEIGHT_SCALE, OUT)}
    w = {k: v.astype(np.float32) for k, v in w.items()}
    model = s.ModelT()
    model.version = 3
    model.description = b"edgernn fixture: hand-built UNIDIRECTIONAL_SEQUENCE_RNN"
    model.buffers = [s.BufferT()]
    g = s.SubGraphT()
    g.name = b"main"
    g.tensors = []

    def tensor(name, shape, signature=None, data=None, variable=False):
        t = s.TensorT()
        t.name, t.type, t.shape = name.encode(), s.TensorType.FLOAT32, list(shape)
        t.shapeSignature = list(signature) if signature is not None else None
        t.isVariable = variable
        t.buffer = 0
        if data is not None:
            b = s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data, "<f4").tobytes(), np.uint8)
            model.buffers.append(b)
            t.buffer = len(model.buffers) - 1
        g.tensors.append(t)
        return len(g.tensors) - 1

    x = tensor("x", [1, 1, F], [1, -1, F])
    tw, tr, tb = tensor("rnn/W", (H, F), data=w["W"]), tensor("rnn/R", (H, H), data=w["R"]), tensor("rnn/b", (H,), data=w["b"])
    th = tensor("rnn/h", (1, H), variable=True)
    seq = tensor("rnn/y", [1, 1, H], [1, -1, H])
    two, tbo = tensor("head/W", (OUT, H), data=w["Wo"]), tensor("head/b", (OUT,), data=w["bo"])
    y = tensor("y", [1, 1, OUT], [1, -1, OUT])

    def code(op, version):
        c = s.OperatorCodeT()
        c.builtinCode, c.deprecatedBuiltinCode, c.version = op, min(op, 127), version
        return c

    model.operatorCodes = [code(s.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_RNN, 1),
                           code(s.BuiltinOperator.FULLY_CONNECTED, 5)]
    rnn = s.OperatorT()
    rnn.opcodeIndex, rnn.inputs, rnn.outputs = 0, [x, tw, tr, tb, th], [seq]
    rnn.builtinOptionsType = s.BuiltinOptions.SequenceRNNOptions
    rnn.builtinOptions = s.SequenceRNNOptionsT()
    rnn.builtinOptions.timeMajor = False
    rnn.builtinOptions.fusedActivationFunction = s.ActivationFunctionType.TANH
    fc = s.OperatorT()
    fc.opcodeIndex, fc.inputs, fc.outputs = 1, [seq, two, tbo], [y]
    fc.builtinOptionsType = s.BuiltinOptions.FullyConnectedOptions
    fc.builtinOptions = s.FullyConnectedOptionsT()
    fc.builtinOptions.fusedActivationFunction = s.ActivationFunctionType.RELU
    fc.builtinOptions.keepNumDims = True
    g.operators, g.inputs, g.outputs = [rnn, fc], [x], [y]
    model.subgraphs = [g]
    sig = s.SignatureDefT()
    sig.signatureKey, sig.subgraphIndex = b"serving_default", 0
    sig.inputs, sig.outputs = [s.TensorMapT()], [s.TensorMapT()]
    sig.inputs[0].name, sig.inputs[0].tensorIndex = b"x", x
    sig.outputs[0].name, sig.outputs[0].tensorIndex = b"y", y
    model.signatureDefs = [sig]
    b = flatbuffers.Builder(4096)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output()), w


def sequence_rnn_reference(w, frames):
    """NumPy: h_t = tanh(W x_t + R h_{t-1} + b), y_t = relu(Wo h_t + bo)."""
    h = np.zeros(H, np.float64)
    ys = []
    for x in frames.astype(np.float64):
        h = np.tanh(w["W"] @ x + w["R"] @ h + w["b"])
        ys.append(np.maximum(w["Wo"] @ h + w["bo"], 0))
    return np.stack(ys).astype(np.float32)


# ---------------------------------------------------------------------------- fixtures
FIXTURES = {
    # name: (framework, cells, form, quantisation, notes)
    "k3_lstm": ("keras3", "LSTM(24)", "while", "float", ""),
    "k3_gru": ("keras3", "GRU(24, reset_after=True)", "while", "float", ""),
    "k3_simplernn": ("keras3", "SimpleRNN(24)", "while", "float", ""),
    "k3_stack": ("keras3", "Dense(16, relu) > GRU(24, reset_after=False) > LSTM(20)", "while", "float",
                 "two WHILE loops in a row"),
    "k3_gru_last": ("keras3", "GRU(24) > Dense(5, softmax), return_sequences=False", "while", "float",
                    "the output for frame t is the model's output for frames 0..t"),
    "k3_custom_cell": ("keras3", "RNN(GatedCell(24))", "while", "float",
                       "not a standard cell: runs as a per-step graph"),
    "k3_unsupported_cell": ("keras3", "RNN(GatedCell(24, sine=True))", "while", "float",
                            "cell uses SIN: edgernn must reject it naming the body subgraph"),
    "tk_lstm": ("tf_keras", "LSTM(24)", "fused", "float", ""),
    "tk_lstm_last": ("tf_keras", "LSTM(24) > Dense(5, softmax), return_sequences=False", "fused", "float",
                     "the output for frame t is the model's output for frames 0..t"),
    "tk_lstm2": ("tf_keras", "LSTM(24) > LSTM(20)", "fused", "float", ""),
    "tk_lstm_t1": ("tf_keras", "LSTM(24)", "fused", "float",
                   "fixed T=1: LiteRT keeps the state in variable tensors between invokes"),
    "tk_gru_ra0": ("tf_keras", "GRU(24, reset_after=False)", "while", "float", ""),
    "tk_gru_ra1": ("tf_keras", "GRU(24, reset_after=True)", "while", "float", ""),
    "tk_simplernn": ("tf_keras", "SimpleRNN(24)", "while", "float", ""),
    "tk_lstm_state": ("tf_keras", "LSTM(24, initial_state=[h0, c0], return_state=True)", "while", "float",
                      "inputs x, h0, c0; outputs y, h, c"),
    "tk_lstm_state_in": ("tf_keras", "LSTM(24, initial_state=[h0, c0])", "fused", "float",
                         "inputs x, h0, c0, no state outputs: the fused LSTM's state tensors are the h0/c0 "
                         "inputs, marked variable; LiteRT overwrites them with the final state"),
    "tk_lstm_int8": ("tf_keras", "LSTM(24)", "fused", "int8",
                     "full integer (8x8_16 LSTM) with float input/output: QUANTIZE/DEQUANTIZE around"),
    "tk_lstm_dynrange": ("tf_keras", "LSTM(32) on 32 features", "fused", "dynamic",
                         "dynamic-range: int8 weights (the converter quantises tensors of >= 1024 "
                         "elements, hence 32x32), float activations"),
    "tk_unsupported_op": ("tf_keras", "LSTM(24) > sin", "fused", "float",
                          "SIN in the main graph: edgernn must reject it"),
    "schema_seq_rnn": ("schema", "UNIDIRECTIONAL_SEQUENCE_RNN(24, tanh) > FC(relu)", "hand-built", "float",
                       "written with schema_py_generated; no converter emits this op"),
}
DYNRANGE_SIZE = 32


def make_one(name: str, out: Path) -> dict:
    framework, cells, form, quant, notes = FIXTURES[name]
    rng = np.random.default_rng(seed_of(name))
    features = DYNRANGE_SIZE if name == "tk_lstm_dynrange" else F
    hidden = DYNRANGE_SIZE if name == "tk_lstm_dynrange" else H
    frames = np.random.default_rng(seed_of(name) + 1).normal(size=(N_FRAMES, features)).astype(np.float32)
    entry = dict(file=f"{name}.tflite", framework=framework, cells=cells, form=form, quantisation=quant,
                 time_steps="1" if name == "tk_lstm_t1" else "dynamic", input_size=features,
                 output_size=OUT, notes=notes)
    arrays = {"frames": frames}
    if framework == "schema":
        data, w = sequence_rnn_file(rng)
        keras_y = sequence_rnn_reference(w, frames)
    else:
        model = keras3_model(name, rng) if framework == "keras3" else tf_keras_model(name, rng, features, hidden)
        data = convert(model, quant, rng, features)
        if name.endswith("_last"):
            keras_y = np.stack([np.asarray(model(frames[None, :t + 1]))[0] for t in range(N_FRAMES)])
        elif name == "tk_lstm_t1":
            keras_y = sequence_model(model).predict(frames[None], verbose=0)[0]
        elif name in ("tk_lstm_state", "tk_lstm_state_in"):
            zero = np.zeros((1, hidden), np.float32)
            keras_y = model.predict([frames[None], zero, zero], verbose=0)
            keras_y = (keras_y[0] if name == "tk_lstm_state" else keras_y)[0]
        else:
            keras_y = model.predict(frames[None], verbose=0)[0]
    (out / entry["file"]).write_bytes(data)
    entry["bytes"] = len(data)
    entry["ops"] = tflite_ops(data)
    if "unsupported" not in name:
        arrays["keras_y"] = keras_y
        if name.endswith("_last"):
            lite_y = np.stack([next(iter(litert_sequence(data, {"x": frames[None, :t + 1]}).values()))[0]
                               for t in range(N_FRAMES)])
        elif name == "tk_lstm_t1":
            lite_y = litert_frames(data, frames)
        elif name in ("tk_lstm_state", "tk_lstm_state_in"):
            zero = np.zeros((1, hidden), np.float32)
            outs = litert_sequence(data, {"x": frames[None], "h0": zero, "c0": zero})
            lite_y = (outs["y"] if "y" in outs else next(iter(outs.values())))[0]
        else:
            outs = litert_sequence(data, {"x": frames[None]})
            lite_y = next(iter(outs.values()))[0]
        entry["litert_vs_keras_max_abs"] = float(np.abs(lite_y.astype(np.float64) - keras_y).max())
    save_npz(out / f"{name}.npz", **arrays)
    return entry


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="tests/fixtures/tflite", type=Path)
    p.add_argument("--only", nargs="*", default=None, help="make only these fixtures")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "manifest.json"
    old = {e["file"]: e for e in json.loads(manifest_path.read_text())} if manifest_path.exists() else {}
    for name in args.only or FIXTURES:
        e = make_one(name, args.out)
        old[e["file"]] = e
        err = e.get("litert_vs_keras_max_abs")
        print(f"{e['file']:<28} {e['bytes']:>7} B  {e['quantisation']:<8} "
              f"LiteRT vs Keras {'-' if err is None else f'{err:.2e}'}  ops {e['ops']}")
    order = [f"{n}.tflite" for n in FIXTURES]
    manifest = [old[f] for f in order if f in old]
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
