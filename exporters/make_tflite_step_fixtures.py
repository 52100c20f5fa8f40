"""Build Keras models with explicit state, convert them to TFLite and write the step fixtures.

Why
---
A streaming Keras model is often exported as *one step*: the recurrent cell is called once
per call (``tf.keras.layers.LSTMCell`` / ``GRUCell``), the state is an explicit input and an
explicit output, and the caller feeds each call's state output back as the next call's
state input. The converter unrolls the cell into plain ops (FULLY_CONNECTED, SPLIT,
LOGISTIC, TANH, MUL, ADD, SUB; UNPACK/PACK when the state is one stacked tensor) with no
``WHILE`` loop and no fused sequence op. edgernn loads such files as *step graphs*
(docs/streaming-models.md): the state pairs become stream state.

What it makes (in ``--out``, default ``tests/fixtures/tflite``)
-------------------------------------------------------------
Every model has a dynamic batch axis (Keras ``Input((F,))``: shape signature ``[-1, F]``),
F = 16 features, H = 32 hidden units, a Dense(5) head; weights are seeded normal values
(``make_tflite_fixtures.seeded_weights``, seed = crc32 of the fixture name).

* ``tk_lstm_step`` -- tf_keras functional model, the state stacked as one tensor (the usual
  tf_keras form, ``tf.unstack`` / ``tf.stack``):
  ``input_1 [B, 16], input_2 [B, 2, 32] (h, c) -> dense [B, 5], tf.stack [B, 2, 32]``; float32.
  edgernn pairs ``input_2 -> tf.stack`` by shape (one candidate).
* ``tk_lstm_step_dynrange`` -- the same model (same weights), dynamic-range quantised
  (``optimizations=[DEFAULT]`` without a representative dataset): the cell's two weight
  matrices (16 x 128 and 32 x 128, >= 1024 elements) are int8 with per-row scales, the head
  (160 elements) stays float32, activations float32.
* ``tk_lstm_step_int8`` -- the same model, full integer (representative dataset): int8 weights,
  int32 biases, int8 activations; inputs and outputs stay float32 with QUANTIZE / DEQUANTIZE
  around the integer graph.
* ``k3_lstm_step`` -- Keras 3 functional model with h and c as separate inputs:
  ``x [B, 16], h [B, 32], c [B, 32] -> output_0 [B, 5] (y), output_1 (h'), output_2 (c')``;
  float32. The output names say nothing, and h', c' both depend on h and c: edgernn needs
  ``states={"h": "output_1", "c": "output_2"}``.
* ``k3_lstm_step_int8`` -- the same Keras 3 model, full integer (as tk_lstm_step_int8).
* ``k3_gru_step`` -- Keras 3 ``GRUCell`` (reset_after=True): ``x [B, 16], h [B, 32] ->
  output_0 [B, 5], output_1 [B, 32]``; float32; pairs ``h -> output_1`` by shape.
* ``tk_lstm_step_hardsig`` -- tk_lstm_step with ``recurrent_activation="hard_sigmoid"`` (the
  Keras 2 default): the converter writes hard_sigmoid as MUL, ADD, MINIMUM, RELU; float32.
* ``k3_lstm_step_hardsig`` -- k3_lstm_step with ``recurrent_activation="hard_sigmoid"``:
  Keras 3 writes it as relu6(x + 3) / 6, an ADD with a fused RELU6; float32.

The representative dataset of the full-integer files is what a step model sees in use:
seeded frames with the states the float Keras model reaches on them (256 steps).

Each ``<name>.npz`` holds ``frames`` (200, 16), seeded normal, ``batch_frames`` (200, 3, 16)
(three streams), ``keras_y`` (200, 5): the Keras model called once per frame with its
state fed back from zeros, and ``litert_y`` (200, 5) / ``litert_state`` (200, *state): LiteRT
(TensorFlow's interpreter) called the same way. The tests re-run LiteRT (``ai-edge-litert``)
themselves; the stored arrays are the source framework's record. Run from the repo root with
TensorFlow's own environment (edgernn and its tests never need TensorFlow)::

    python -m venv /work/venv-tf && /work/venv-tf/bin/pip install tensorflow==2.21.0 tf-keras==2.21.0
    /work/venv-tf/bin/python -m exporters.make_tflite_step_fixtures [--out tests/fixtures/tflite]
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from .make_tflite_fixtures import N_FRAMES, OUT, save_npz, seed_of, seeded_weights, tflite_ops  # noqa: E402

F, H = 16, 32                  # features, hidden units (the cell's matrices reach 1024 elements)
BATCH = 3                      # streams in batch_frames
CALIBRATION_STEPS = 256

#: name: (source model, quantisation, description)
FIXTURES = {
    "tk_lstm_step": ("tk_lstm_stacked", "float", "tf_keras LSTMCell(32), state stacked [B, 2, 32]"),
    "tk_lstm_step_dynrange": ("tk_lstm_stacked", "dynamic", "tk_lstm_step, dynamic-range int8 weights"),
    "tk_lstm_step_int8": ("tk_lstm_stacked", "int8", "tk_lstm_step, full integer, float32 I/O"),
    "k3_lstm_step": ("k3_lstm_hc", "float", "Keras 3 LSTMCell(32), inputs x, h, c"),
    "k3_lstm_step_int8": ("k3_lstm_hc", "int8", "k3_lstm_step, full integer, float32 I/O"),
    "k3_gru_step": ("k3_gru_h", "float", "Keras 3 GRUCell(32, reset_after=True), inputs x, h"),
    "tk_lstm_step_hardsig": ("tk_lstm_stacked_hardsig", "float", "tk_lstm_step with hard_sigmoid gates"),
    "k3_lstm_step_hardsig": ("k3_lstm_hc_hardsig", "float", "k3_lstm_step with hard_sigmoid gates"),
}


# ---------------------------------------------------------------------------- models
def build(source: str):
    """(Keras model, [state input names in the Keras model's input order], state output indices)."""
    rng = np.random.default_rng(seed_of(source))
    gates = "hard_sigmoid" if source.endswith("_hardsig") else "sigmoid"
    source = source.removesuffix("_hardsig")
    if source == "tk_lstm_stacked":
        import tensorflow as tf
        import tf_keras as keras
        L = keras.layers
        keras.backend.clear_session()                 # default names restart: input_1, input_2, dense
        keras.utils.set_random_seed(seed_of(source))
        x, state = keras.Input((F,)), keras.Input((2, H))
        h, c = tf.unstack(state, axis=1)
        out, (h2, c2) = L.LSTMCell(H, recurrent_activation=gates)(x, [h, c])
        model = keras.Model([x, state], [L.Dense(OUT)(out), tf.stack([h2, c2], axis=1)])
    else:
        import keras
        L = keras.layers
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed_of(source))
        x, h = keras.Input((F,), name="x"), keras.Input((H,), name="h")
        if source == "k3_lstm_hc":
            c = keras.Input((H,), name="c")
            out, (h2, c2) = L.LSTMCell(H, recurrent_activation=gates)(x, [h, c])
            model = keras.Model([x, h, c], [L.Dense(OUT)(out), h2, c2])
        elif source == "k3_gru_h":
            out, h2 = L.GRUCell(H)(x, h)
            h2 = h2[0] if isinstance(h2, (list, tuple)) else h2
            model = keras.Model([x, h], [L.Dense(OUT)(out), h2])
        else:
            raise ValueError(source)
    seeded_weights(model, rng)
    return model


def keras_steps(model, frames: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The Keras model called once per frame (frames (T, B, F)), its state outputs fed back
    from zeros: (outputs (T, B, OUT), [states (T, B, ...) per state input])."""
    states = [np.zeros((frames.shape[1],) + tuple(i.shape[1:]), np.float32) for i in model.inputs[1:]]
    ys, seen = [], [[] for _ in states]
    for f in frames:
        res = [np.asarray(r) for r in model([f] + states)]
        ys.append(res[0])
        states = res[1:]
        for k, s in enumerate(states):
            seen[k].append(s)
    return np.stack(ys), [np.stack(s) for s in seen]


def convert(model, quant: str, calibration) -> bytes:
    import tensorflow as tf
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if quant in ("dynamic", "int8"):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if quant == "int8":
        def representative():                        # by signature input name: the file's input
            for feeds in calibration:                  # order is not the Keras model's
                yield feeds
        conv.representative_dataset = representative
    return conv.convert()


def signature_names(model) -> list[str]:
    """The names the converted file's signature gives the Keras model's inputs."""
    return [i.name.split(":")[0] for i in model.inputs]


def calibration_set(model, rng) -> list[dict]:
    """Seeded frames with the states the float model reaches on them, one dict per step."""
    frames = rng.normal(size=(CALIBRATION_STEPS, 1, F)).astype(np.float32)
    _, states = keras_steps(model, frames)
    names = signature_names(model)
    prev = [np.concatenate([np.zeros_like(s[:1]), s[:-1]]) for s in states]    # the state each step reads
    return [dict(zip(names, [frames[t]] + [p[t] for p in prev])) for t in range(CALIBRATION_STEPS)]


def litert_steps(data: bytes, names: list[str], frames: np.ndarray, pairs: dict):
    """TensorFlow's LiteRT interpreter called once per frame (frames (T, B, F)), state fed back."""
    import tensorflow as tf
    it = tf.lite.Interpreter(model_content=data, num_threads=1)
    run = it.get_signature_runner()
    details = run.get_input_details()
    state = {i: np.zeros([frames.shape[1]] + list(details[i]["shape_signature"][1:]), np.float32) for i in pairs}
    ys, seen = [], []
    for f in frames:
        res = run(**{names[0]: f}, **state)
        state = {i: res[o] for i, o in pairs.items()}
        ys.append(next(v for k, v in sorted(res.items()) if k not in pairs.values()))
        seen.append(np.concatenate([state[i] for i in pairs], axis=-1))
    return np.stack(ys), np.stack(seen)


def state_pairs(source: str) -> dict:
    """{state input: state output} as the converted file's signature names them."""
    source = source.removesuffix("_hardsig")
    return {"tk_lstm_stacked": {"input_2": "tf.stack"},
            "k3_lstm_hc": {"h": "output_1", "c": "output_2"},
            "k3_gru_h": {"h": "output_1"}}[source]


def make_one(name: str, out: Path) -> dict:
    source, quant, what = FIXTURES[name]
    model = build(source)
    rng = np.random.default_rng(seed_of(name))
    frames = np.random.default_rng(seed_of(name) + 1).normal(size=(N_FRAMES, F)).astype(np.float32)
    batch_frames = np.random.default_rng(seed_of(name) + 2).normal(size=(N_FRAMES, BATCH, F)).astype(np.float32)
    data = convert(model, quant, calibration_set(model, rng) if quant == "int8" else None)
    (out / f"{name}.tflite").write_bytes(data)
    keras_y, _ = keras_steps(model, frames[:, None])
    pairs = state_pairs(source)
    lite_y, lite_state = litert_steps(data, signature_names(model), frames[:, None], pairs)
    save_npz(out / f"{name}.npz", frames=frames, batch_frames=batch_frames, keras_y=keras_y[:, 0],
             litert_y=lite_y[:, 0], litert_state=lite_state[:, 0])
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
              f"{e['what']}\n    ops {e['ops']}")


if __name__ == "__main__":
    main()
