"""Models the profiling benchmarks time: the bundled example, two committed fixtures, and
stacked LSTMs from exporters/synthetic.py (random weights, no torch needed) for larger sizes.

    stacked_lstm(n_in=40, hidden=128, layers=2, n_out=12)   DESIGN.md's anchor: ~0.44 MFLOP, ~0.87 MB
    stacked_lstm(n_in=64, hidden=256, layers=3, n_out=12)   ~2.8 MFLOP, ~5.5 MB of weights
"""
import os
import tempfile
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "kws_lstm.onnx"
FIXTURES = ROOT / "tests" / "fixtures" / "onnx"


def stacked_lstm(n_in, hidden, layers, n_out, seed=0):
    """Path of an ONNX file: X [T, 1, n_in] -> `layers` x LSTM(hidden) -> Linear(n_out), made by
    exporters/synthetic.py (torch-style random weights)."""
    from onnx import save

    from exporters.synthetic import recurrent_model
    path = os.path.join(tempfile.gettempdir(), f"edgernn_lstm_{n_in}x{hidden}x{layers}.onnx")
    save(recurrent_model("lstm", layers, hidden, n_in, n_out, seed=seed), path)
    return path


def call_floor_model(n_in):
    """An ONNX model of one Relu on ``n_in`` inputs ([T, 1, n_in], time axis 0): a step of it
    is almost all call (benchmarks/perf.py's call floor, benchmarks/call_parts.py)."""
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "floor",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, n_in])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


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
