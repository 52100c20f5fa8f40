"""The unmutated model files the mutants are made from, and where the harness's files lie."""
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TESTS = Path(os.path.abspath(__file__)).parents[1]
REPO = TESTS.parent
ONNX_DIR = TESTS / "fixtures" / "onnx"
TFLITE_DIR = TESTS / "fixtures" / "tflite"
EXAMPLES = REPO / "examples"


@dataclass
class Seed:
    """An unmutated model file and, for the seed check, its frames and recorded outputs."""
    fmt: str
    path: Path
    frames: tuple          # (file, key or None)
    recorded: tuple        # (file, key or None): the source framework's outputs on those frames
    batch_first: bool = True
    step: bool = False     # a step graph: one call per frame, its state outputs fed back

    @property
    def name(self):
        return self.path.name

    def load_frames(self):
        return read_array(*self.frames)

    def load_recorded(self):
        return read_array(*self.recorded)


def read_array(path, key):
    """The array of an .npy file (key None) or of an .npz file's entry."""
    if key is None:
        return np.load(path)
    with np.load(path) as z:
        return z[key]


def _onnx_seed(name):
    entry = next(e for e in json.loads((ONNX_DIR / "manifest.json").read_text()) if e["file"] == name)
    npz = ONNX_DIR / name.replace(".onnx", ".npz")
    return Seed("onnx", ONNX_DIR / name, (npz, "frames"), (npz, "y"), entry["batch_first"])


def _tflite_seed(name):
    npz = TFLITE_DIR / f"{name}.npz"
    return Seed("tflite", TFLITE_DIR / f"{name}.tflite", (npz, "frames"), (npz, "keras_y"), True)


#: LSTM / GRU / RNN; TorchScript and dynamo exports; state passed or not; LayerNorm+ReLU heads;
#: the keyword-spotting example; a step graph with a convolution and state tensors
ONNX_SEEDS = [_onnx_seed(n) for n in ("lstm_l2_bf_state_lnrelu_ts.onnx", "gru_l1_bf_lin_dy.onnx",
                                      "rnn_tanh_l2_tf_state_lnrelu_ts.onnx", "gru_l2_tf_state_lnrelu_dy.onnx")]
ONNX_SEEDS.append(Seed("onnx", EXAMPLES / "kws_lstm.onnx", (EXAMPLES / "kws_frames.npy", None),
                       (EXAMPLES / "kws_expected_logits.npy", None), True))
#: a step graph (exporters/make_step_fixtures.py): Conv1d over a cache tensor, GRU, explicit state
ONNX_SEEDS.append(Seed("onnx", ONNX_DIR / "conv_gru_step_ts.onnx", (ONNX_DIR / "conv_gru_step_ts.npz", "frames"),
                       (ONNX_DIR / "conv_gru_step_ts.npz", "logits"), True, step=True))
#: sequence models convolving along time (exporters/make_time_conv_fixtures.py): a TCN with zero
#: Pads and residual adds (histories, the clock), a CRNN with a look-ahead and a pool (gated rows)
ONNX_SEEDS += [Seed("onnx", ONNX_DIR / f"{n}_ts.onnx", (ONNX_DIR / f"{n}.npz", "frames"), (ONNX_DIR / f"{n}.npz", "y"),
                    True) for n in ("tcn_lstm", "crnn_gru")]
#: Keras 3 WHILE loops (LSTM, GRU, a stack of both), the fused LSTM, its dynamic-range int8 form,
#: and a dilated 'same' Conv1D before a GRU (SPACE_TO_BATCH_ND chain, computed paddings, look-ahead)
TFLITE_SEEDS = [_tflite_seed(n) for n in ("k3_lstm", "k3_gru", "k3_stack", "tk_lstm", "tk_lstm_dynrange",
                                           "k3_dilated_same_conv_gru")]
#: the seeds of each format whose files have a runtime of their own (onnxruntime, LiteRT)
SEEDS = {"onnx": ONNX_SEEDS, "tflite": TFLITE_SEEDS}
#: the .ernn sources of tests/test_ernn_fuzz.py (used by benchmarks/fuzz.py)
ERNN_SOURCES = [("lstm_l2_bf_state_lnrelu_ts.onnx", "int8"), ("gru_l1_bf_lin_dy.onnx", "float32"),
                ("strided_conv_gru_ts.onnx", "float32"),           # histories, the clock and gated rows
                ("rnn_tanh_l2_tf_state_lnrelu_ts.onnx", "float16")]
