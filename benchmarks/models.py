"""Models the benchmarks time: the bundled example, two committed fixtures, and stacked
LSTMs built here with onnx.helper (random weights, no torch needed) for larger sizes.

    stacked_lstm(n_in=40, hidden=128, layers=2, n_out=12)   DESIGN.md's anchor: ~0.44 MFLOP, ~0.87 MB
    stacked_lstm(n_in=64, hidden=256, layers=3, n_out=12)   ~2.8 MFLOP, ~5.5 MB of weights
"""
import os
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "kws_lstm.onnx"
FIXTURES = ROOT / "tests" / "fixtures" / "onnx"


def stacked_lstm(n_in, hidden, layers, n_out, seed=0):
    """Path of an ONNX file: X [T, 1, n_in] -> `layers` x LSTM(hidden) -> Linear(n_out)."""
    from onnx import TensorProto, helper, numpy_helper, save
    rng = np.random.default_rng(seed)
    inits, nodes, x = [], [], "X"
    for k in range(layers):
        i = n_in if k == 0 else hidden
        s = 1 / np.sqrt(hidden)
        for name, shape in ((f"W{k}", (1, 4 * hidden, i)), (f"R{k}", (1, 4 * hidden, hidden)), (f"B{k}", (1, 8 * hidden))):
            inits.append(numpy_helper.from_array(rng.uniform(-s, s, shape).astype(np.float32), name))
        nodes.append(helper.make_node("LSTM", [x, f"W{k}", f"R{k}", f"B{k}"], [f"Y{k}"], hidden_size=hidden))
        nodes.append(helper.make_node("Squeeze", [f"Y{k}", "axis1"], [f"S{k}"]))
        x = f"S{k}"
    inits += [numpy_helper.from_array(np.array([1], np.int64), "axis1"),
              numpy_helper.from_array(rng.uniform(-0.1, 0.1, (hidden, n_out)).astype(np.float32), "Wo"),
              numpy_helper.from_array(np.zeros(n_out, np.float32), "bo")]
    nodes += [helper.make_node("MatMul", [x, "Wo"], ["mm"]), helper.make_node("Add", ["mm", "bo"], ["logits"])]
    graph = helper.make_graph(nodes, "stacked_lstm",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", 1, n_in])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["T", 1, n_out])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = os.path.join(tempfile.gettempdir(), f"edgernn_lstm_{n_in}x{hidden}x{layers}.onnx")
    save(model, path)
    return path


def benchmark_models():
    """(label, path, batch) of every model the calibration uses."""
    return [
        ("kws example 2xLSTM(64)", str(EXAMPLE), None),
        ("kws example, batch 8", str(EXAMPLE), 8),
        ("fixture lstm_l3_tf_lin (3xLSTM(37))", str(FIXTURES / "lstm_l3_tf_lin_ts.onnx"), None),
        ("fixture gru_l3_bf_state_lin (3xGRU(37))", str(FIXTURES / "gru_l3_bf_state_lin_ts.onnx"), None),
        ("2xLSTM(128) on 40", stacked_lstm(40, 128, 2, 12), None),
        ("3xLSTM(256) on 64", stacked_lstm(64, 256, 3, 12), None),
    ]
