"""The ``edgernn`` command line: info and run on the example model, and its error handling.

The oracle for ``run`` is ``examples/kws_expected_logits.npy``, written by PyTorch
(``python -m exporters.make_example``), not by edgernn.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgernn.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MODEL = EXAMPLES / "kws_lstm.onnx"
FRAMES = EXAMPLES / "kws_frames.npy"
EXPECTED = EXAMPLES / "kws_expected_logits.npy"

# nn.LSTM(40, 64, num_layers=2) + nn.Linear(64, 12), counted by hand from torch's layout:
# layer 0: W_ih 256x40, W_hh 256x64, b_ih 256, b_hh 256; layer 1: W_ih 256x64, W_hh 256x64,
# two biases; head: 12x64 + 12.
TORCH_PARAMS = (256 * 40 + 256 * 64 + 2 * 256) + (256 * 64 + 256 * 64 + 2 * 256) + (12 * 64 + 12)

pytestmark = pytest.mark.skipif(not MODEL.exists(), reason="run `python -m exporters.make_example` first")


def _error(capsys, argv):
    """Run main(argv), expect exit status 2 and one 'edgernn: error:' line; return the message."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert err.startswith("edgernn: error: "), err
    return err


# ---------------------------------------------------------------- help
def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "info" in out and "run" in out


def test_python_dash_m_help():
    r = subprocess.run([sys.executable, "-m", "edgernn", "--help"], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "info" in r.stdout and "run" in r.stdout


def test_no_command_prints_usage(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


# ---------------------------------------------------------------- info
def test_info_report(capsys):
    assert main(["info", str(MODEL)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any("features" in ln and "(40,)" in ln for ln in lines), out
    assert any("logits" in ln and "(12,)" in ln for ln in lines), out
    assert "lstm" in out.lower()
    assert "MFLOP" in out
    assert "parameters" in out


def test_info_json_matches_onnx_initializers(capsys):
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(MODEL))
    init_total = sum(int(numpy_helper.to_array(t).size) for t in m.graph.initializer)
    # the exported file holds exactly the torch parameters as initializers (the TorchScript
    # exporter keeps b_ih/b_hh concatenated in B, so the count is unchanged)
    assert init_total == TORCH_PARAMS == 61196

    assert main(["info", str(MODEL), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["inputs"] == [["features", [40]]]
    assert d["outputs"] == [["logits", [12]]]
    assert d["ops"].get("lstm") == 2
    assert d["parameters"] == init_total


# ---------------------------------------------------------------- run
@pytest.mark.parametrize("chunk", [False, True], ids=["step", "chunk"])
def test_run_matches_torch(tmp_path, capsys, chunk):
    out = tmp_path / "out.npy"
    argv = ["run", str(MODEL), str(FRAMES), "-o", str(out)] + (["--chunk"] if chunk else [])
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert "100 frames" in stdout
    y = np.load(out)
    expected = np.load(EXPECTED)
    assert y.shape == expected.shape == (100, 12)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-5)


def test_run_converts_float64_with_note(tmp_path, capsys):
    frames = tmp_path / "f64.npy"
    np.save(frames, np.load(FRAMES).astype(np.float64))
    out = tmp_path / "out.npy"
    assert main(["run", str(MODEL), str(frames), "-o", str(out)]) == 0
    assert "float64" in capsys.readouterr().err
    np.testing.assert_allclose(np.load(out), np.load(EXPECTED), rtol=0, atol=1e-5)


def test_run_multiple_outputs_writes_npz(tmp_path, capsys):
    """A GRU whose Y and Y_h are both graph outputs; onnxruntime on the whole sequence is the oracle."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    n_in, hidden = 6, 8
    inits = [numpy_helper.from_array((rng.standard_normal(s) * 0.5).astype(np.float32), n)
             for n, s in (("W", (1, 3 * hidden, n_in)), ("R", (1, 3 * hidden, hidden)), ("B", (1, 6 * hidden)))]
    graph = helper.make_graph(
        [helper.make_node("GRU", ["x", "W", "R", "B"], ["a", "b"], hidden_size=hidden, linear_before_reset=1)],
        "two", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, n_in])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("a", "b")], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    path = tmp_path / "two.onnx"
    path.write_bytes(model.SerializeToString())
    frames = rng.standard_normal((20, n_in)).astype(np.float32)
    np.save(tmp_path / "f.npy", frames)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y, y_h = sess.run(None, {"x": frames[:, None, :]})
    capsys.readouterr()

    assert main(["run", str(path), str(tmp_path / "f.npy"), "-o", str(tmp_path / "o.npy")]) == 0
    assert ".npz" in capsys.readouterr().err
    with np.load(tmp_path / "o.npz") as z:
        assert sorted(z.files) == ["a", "b"]
        np.testing.assert_allclose(z["a"], y.reshape(20, 1, hidden), rtol=0, atol=1e-5)
        np.testing.assert_allclose(z["b"][-1], y_h.reshape(1, hidden), rtol=0, atol=1e-5)


# ---------------------------------------------------------------- errors
def test_missing_model(tmp_path, capsys):
    err = _error(capsys, ["info", str(tmp_path / "nope.onnx")])
    assert "nope.onnx" in err


def test_missing_model_run(tmp_path, capsys):
    err = _error(capsys, ["run", str(tmp_path / "nope.onnx"), str(FRAMES), "-o", str(tmp_path / "o.npy")])
    assert "nope.onnx" in err


def test_missing_frames(tmp_path, capsys):
    err = _error(capsys, ["run", str(MODEL), str(tmp_path / "nope.npy"), "-o", str(tmp_path / "o.npy")])
    assert "nope.npy" in err


def test_not_onnx(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\xffthis is not an onnx model\x13\x37" * 7)
    err = _error(capsys, ["info", str(bad)])
    assert "bad.onnx" in err and "ONNX" in err
    err = _error(capsys, ["run", str(bad), str(FRAMES), "-o", str(tmp_path / "o.npy")])
    assert "bad.onnx" in err


def test_frames_not_npy(tmp_path, capsys):
    bad = tmp_path / "frames.npy"
    bad.write_bytes(b"garbage garbage garbage")
    err = _error(capsys, ["run", str(MODEL), str(bad), "-o", str(tmp_path / "o.npy")])
    assert "frames.npy" in err


@pytest.mark.parametrize("chunk", [False, True], ids=["step", "chunk"])
def test_wrong_feature_size(tmp_path, capsys, chunk):
    frames = tmp_path / "f39.npy"
    np.save(frames, np.zeros((10, 39), np.float32))
    out = tmp_path / "o.npy"
    err = _error(capsys, ["run", str(MODEL), str(frames), "-o", str(out)] + (["--chunk"] if chunk else []))
    assert "(10, 39)" in err
    assert "40" in err and "features" in err
    assert not out.exists()


def test_multi_input_model_is_refused(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    # y = LSTM(x) over a time-first input, plus a second per-frame input added to the output
    H, F = 3, 4
    rng = np.random.default_rng(0)
    W = helper.make_tensor("W", TensorProto.FLOAT, [1, 4 * H, F], rng.standard_normal(4 * H * F).tolist())
    R = helper.make_tensor("R", TensorProto.FLOAT, [1, 4 * H, H], rng.standard_normal(4 * H * H).tolist())
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("LSTM", ["x", "W", "R"], ["Y"], hidden_size=H),
        helper.make_node("Squeeze", ["Y", "axes"], ["Ys"]),
        helper.make_node("Add", ["Ys", "z"], ["y"]),
    ]
    g = helper.make_graph(
        nodes, "two_inputs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, F]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, ["T", 1, H])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["T", 1, H])],
        initializer=[W, R, axes])
    path = tmp_path / "two_inputs.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))

    import edgernn
    try:
        n_inputs = len(edgernn.load(str(path)).inputs)
    except edgernn.EdgeRNNError as e:  # pragma: no cover - depends on the engine's support
        pytest.skip(f"edgernn does not load the hand-made two-input model: {e}")
    assert n_inputs == 2

    err = _error(capsys, ["run", str(path), str(FRAMES), "-o", str(tmp_path / "o.npy")])
    assert "one input" in err and "'x'" in err and "'z'" in err
