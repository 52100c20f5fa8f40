"""The ``edgernn`` command line: info and run on the example model, and its error handling.

The oracle for ``run`` is ``examples/kws_expected_logits.npy``, written by PyTorch
(``python -m exporters.make_example``), not by edgernn.
"""
import json
import re
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


# ---------------------------------------------------------------- first use (issue 17)
VOWELS = EXAMPLES / "japanese_vowels.onnx"
VOWELS_DATA = EXAMPLES / "data" / "japanese_vowels.npz"


@pytest.mark.parametrize("argv", [
    ["profile", str(MODEL), "--frames", "10", "--period", "-5ms"],
    ["profile", str(MODEL), "--frames", "10", "--period=-5ms"],
    ["profile", str(MODEL), "--frames", "10", "--period", "0ms"],
    ["profile", str(MODEL), "--frames", "10", "--period", "-0.01"],
    ["convert", str(MODEL), "-o", "x.ernn", "--frame-period", "-5ms"],
    ["convert", str(MODEL), "-o", "x.ernn", "--frame-period", "0Hz"]])
def test_negative_or_zero_period_says_must_be_positive(capsys, argv):
    err = _error(capsys, argv)
    assert "must be positive" in err and "expected one argument" not in err


@pytest.mark.parametrize("argv", [["profile", str(MODEL), "--period", "soon"],
                                  ["convert", str(MODEL), "-o", "x.ernn", "--frame-period", "soon"]])
def test_unreadable_period_names_the_forms(capsys, argv):
    err = _error(capsys, argv)
    for form in ("10ms", "0.01s", "500us", "100Hz"):
        assert form in err


def test_convert_takes_the_period_forms_profile_takes(tmp_path, capsys):
    """One parser: --frame-period 100Hz (refused before) stores 0.01 s, as --period 100Hz reads it."""
    from edgernn.profile import parse_period
    out = tmp_path / "k.ernn"
    assert main(["convert", str(MODEL), "-o", str(out), "--frame-period", "100Hz"]) == 0
    import edgernn
    assert edgernn.load(str(out)).metadata["model.frame_period_s"] == pytest.approx(0.01)
    assert parse_period("100Hz") == pytest.approx(0.01)


def test_profile_takes_the_period_an_ernn_stores(tmp_path, capsys):
    out = tmp_path / "k.ernn"
    assert main(["convert", str(MODEL), "-o", str(out), "--frame-period", "10ms"]) == 0
    capsys.readouterr()
    assert main(["profile", str(out), "--frames", "50", "--warmup", "0", "--json", str(tmp_path / "p.json")]) == 0
    text = capsys.readouterr().out
    assert "deadline misses" in text and "model.frame_period_s" in text
    d = json.loads((tmp_path / "p.json").read_text())
    assert d["period_us"] == pytest.approx(10_000) and d["period_source"] == "model.frame_period_s"
    assert main(["profile", str(out), "--frames", "50", "--warmup", "0", "--period", "2ms",
                 "--json", str(tmp_path / "q.json")]) == 0          # --period overrides the file
    d = json.loads((tmp_path / "q.json").read_text())
    assert d["period_us"] == pytest.approx(2_000) and d["period_source"] == "argument"


def test_info_and_profile_format_bytes_alike(capsys):
    """One byte formatter, IEC units: info said '18.8 KB' where profile said '18.8 KiB'."""
    import edgernn
    from edgernn.units import format_bytes
    model = edgernn.load(str(MODEL))
    weights = format_bytes(model.weight_bytes())
    assert "KiB" in weights
    assert main(["info", str(MODEL)]) == 0
    info = capsys.readouterr().out
    report = edgernn.profile(model, frames=20, warmup=0, breakdown=False).report()
    assert weights in info and weights in report
    assert not re.search(r"\d (KB|MB)\b", info + report)
    assert format_bytes(19_200) == "19,200 B (18.8 KiB)"


def test_info_shows_time_axis_and_state_pairs(capsys):
    stateful = ROOT / "tests" / "fixtures" / "onnx" / "lstm_l1_tf_state_lin_ts.onnx"   # x (T, B, 13); h0 -> hT
    assert main(["info", str(stateful)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"time axis: axis 0 of input 'x' \(T, B, 13\)", out), out
    assert re.search(r"h0\s+-> hT", out) and re.search(r"c0\s+-> cT", out), out
    assert main(["info", str(MODEL)]) == 0                                        # features (B, T, 40)
    assert "time axis: axis 1 of input 'features' (B, T, 40)" in capsys.readouterr().out
    step = ROOT / "tests" / "fixtures" / "onnx" / "conv_gru_step_ts.onnx"
    assert main(["info", str(step)]) == 0
    out = capsys.readouterr().out
    assert "time axis: none" in out and re.search(r"conv_cache\s+-> conv_cache_out", out)
    assert main(["info", str(stateful), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["time_axis"] == 0 and d["batch_axis"] == 1 and d["state_pairs"] == {"h0": "hT", "c0": "cT"}


def test_run_reads_an_npz_member_with_key(tmp_path, capsys):
    out = tmp_path / "o.npy"
    assert main(["run", str(VOWELS), str(VOWELS_DATA), "--key", "test_frames", "-o", str(out)]) == 0
    with np.load(VOWELS_DATA) as z:
        frames = z["test_frames"][:200]
    import edgernn
    want = edgernn.load(str(VOWELS)).stream().run(frames)
    np.testing.assert_allclose(np.load(out)[:200], want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("key, needle", [(None, "choose the frames with --key"), ("nope", "no array 'nope'")])
def test_run_npz_without_a_usable_key_lists_the_arrays(tmp_path, capsys, key, needle):
    err = _error(capsys, ["run", str(VOWELS), str(VOWELS_DATA), "-o", str(tmp_path / "o.npy")]
                 + (["--key", key] if key else []))
    assert needle in err and "test_frames (5687, 12) float32" in err and "train_frames" in err


def test_run_npz_with_one_array_needs_no_key(tmp_path, capsys):
    np.savez(tmp_path / "one.npz", frames=np.load(FRAMES))
    assert main(["run", str(MODEL), str(tmp_path / "one.npz"), "-o", str(tmp_path / "o.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), np.load(EXPECTED), rtol=0, atol=1e-5)


def test_run_stdin_to_stdout(tmp_path):
    """`edgernn run MODEL - -o -`: .npy bytes in, .npy bytes out, no file named '-.npy'."""
    import io
    buf = io.BytesIO()
    np.save(buf, np.load(FRAMES))
    r = subprocess.run([sys.executable, "-m", "edgernn", "run", str(MODEL), "-", "-o", "-"], input=buf.getvalue(),
                       capture_output=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr.decode()
    y = np.load(io.BytesIO(r.stdout))
    np.testing.assert_allclose(y, np.load(EXPECTED), rtol=0, atol=1e-5)
    assert b"100 frames" in r.stderr and list(tmp_path.iterdir()) == []


def test_run_empty_stdin_is_an_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "edgernn", "run", str(MODEL), "-", "-o", str(tmp_path / "o.npy")],
                       input=b"", capture_output=True, timeout=600)
    assert r.returncode == 2 and b"no frames on standard input" in r.stderr


def _all_help(parser=None):
    """The --help text of the command and of every subcommand."""
    import argparse
    from edgernn.cli import build_parser
    parser = parser or build_parser()
    texts = [parser.format_help()]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sp in action.choices.values():
                texts += _all_help(sp)
    return texts


def test_help_links_docs_by_url():
    from edgernn.links import DOCS
    text = "\n".join(_all_help())
    paths = re.findall(r"\S*docs/[\w.-]+\.md", text)
    assert paths, "the help texts link no docs page"
    assert all(p.lstrip("(").startswith(DOCS) for p in paths), paths
