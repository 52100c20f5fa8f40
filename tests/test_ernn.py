""".ernn files: conversion of every supported ONNX model, int8/float16 error, metadata, the
mapped-in-place load, the checksum and the device-side imports.

Oracles: PyTorch's outputs stored with each fixture (tests/fixtures/onnx/*.npz), the NumPy
reference evaluator over the ONNX-loaded IR, and onnxruntime on the synthetic models.
"""
import json
import mmap
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import edgernn  # noqa: E402
from edgernn.convert import convert  # noqa: E402
from edgernn.errors import EdgeRNNError, ModelFormatError  # noqa: E402
from edgernn.reference import ReferenceStream  # noqa: E402
from exporters.synthetic import named_model  # noqa: E402

from test_kernels import CASES  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "onnx"
MANIFEST = {e["file"]: e for e in json.loads((FIXTURES / "manifest.json").read_text())}
STREAMABLE = sorted(f for f in MANIFEST if f != "rnn_unrolled_dy.onnx")


def fixture_data(name):
    with np.load(FIXTURES / name.replace(".onnx", ".npz")) as z:
        return z["frames"], z["y"]


def first(y):
    return y[0] if isinstance(y, tuple) else y


def stepped(model, frames):
    s = model.stream()
    return np.stack([first(s.step(f)) for f in frames])


@pytest.mark.parametrize("name", STREAMABLE)
def test_float32_file_streams_like_torch_and_like_the_onnx_file(name, tmp_path):
    frames, y_torch = fixture_data(name)
    src = edgernn.load(FIXTURES / name)
    m = convert(FIXTURES / name, tmp_path / "m.ernn")
    got = stepped(m, frames)
    assert np.abs(got - stepped(src, frames)).max() <= 1e-6
    assert np.abs(got.reshape(y_torch.shape) - y_torch).max() <= 1e-5
    assert m.file.zero_copy and m.file.checksum == "ok"


def outputs(y):
    return y if isinstance(y, tuple) else (y,)


@pytest.mark.parametrize("weights", ["float32", "int8"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_kernel_case_round_trips(name, weights, tmp_path):
    """The single-op models of test_kernels (every op edgernn imports): the file's program
    gives the NumPy reference's outputs (int8: the reference of the int8-quantised IR), and
    within 1e-6 what the same model loaded from ONNX gives."""
    proto = CASES[name]()
    m = convert(proto, tmp_path / "m.ernn", weights=weights, time_axis=0)
    direct = edgernn.load(proto, time_axis=0, weights=weights)
    s, s_direct, ref = m.stream(), direct.stream(), ReferenceStream(direct)
    rng = np.random.default_rng(5)
    for _ in range(10):
        x = rng.standard_normal(m.inputs[0].frame_shape).astype(np.float32)
        for g, d, w in zip(outputs(s.step(x)), outputs(s_direct.step(x)), outputs(ref.step(x))):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=2e-6)
            assert np.abs(g - d).max() <= 1e-6


# ---------------------------------------------------------------- quantised storage
#: measured by benchmarks/ernn.py and written in docs/format.md (worst fixture: int8 9.9e-3,
#: float16 6.1e-4); the bounds here have about 3x margin over those
INT8_TOL = 0.03
FLOAT16_TOL = 2e-3


@pytest.mark.parametrize("name", STREAMABLE)
def test_int8_and_float16_error_against_torch(name, tmp_path):
    frames, y_torch = fixture_data(name)
    for weights, tol in (("int8", INT8_TOL), ("float16", FLOAT16_TOL)):
        m = convert(FIXTURES / name, tmp_path / f"{weights}.ernn", weights=weights)
        err = np.abs(stepped(m, frames).reshape(y_torch.shape) - y_torch).max()
        assert err <= tol, f"{weights}: max abs error {err}"


def test_int8_file_of_lstm_2x128_is_at_most_27_percent_of_the_float_onnx(tmp_path):
    onnx.save(named_model("lstm2x128"), tmp_path / "m.onnx")
    convert(tmp_path / "m.onnx", tmp_path / "m.ernn", weights="int8")
    ratio = os.path.getsize(tmp_path / "m.ernn") / os.path.getsize(tmp_path / "m.onnx")
    assert ratio <= 0.27, ratio


def test_int8_weights_are_int8_in_the_file_and_in_the_engine(tmp_path):
    m = convert(FIXTURES / STREAMABLE[0], tmp_path / "m.ernn", weights="int8")
    types = {t.dtype for t in m.file.tensors}
    assert "int8" in types
    mats = [v for n in m.graph.nodes for v in n.inputs if v is not None and v.is_const and v.const.ndim == 3]
    assert mats and all(v.const.dtype == np.int8 for v in mats)


# ---------------------------------------------------------------- mapped in place
def test_weights_are_read_from_the_mapped_file_not_copied(tmp_path):
    m = convert(FIXTURES / STREAMABLE[0], tmp_path / "m.ernn", weights="int8")
    base = m.plan.arena.buffer
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)
    w = next(v for n in m.graph.nodes for v in n.inputs if v is not None and v.is_const and v.const.ndim == 3)
    assert np.shares_memory(w.const, m.plan.qconsts)


def test_float16_file_is_decoded_into_an_owned_arena(tmp_path):
    m = convert(FIXTURES / STREAMABLE[0], tmp_path / "m.ernn", weights="float16")
    assert not m.file.zero_copy
    assert any(t.dtype == "float16" for t in m.file.tensors)


# ---------------------------------------------------------------- metadata
def test_metadata_round_trips_and_normalisation_runs_in_the_program(tmp_path):
    src = FIXTURES / STREAMABLE[0]
    frames, _ = fixture_data(STREAMABLE[0])
    n_in = frames.shape[-1]
    n_out = edgernn.load(src).outputs[0].frame_shape[-1]
    mean = np.linspace(-1, 1, n_in).astype(np.float32)
    std = np.linspace(0.5, 2, n_in).astype(np.float32)
    labels = [f"class {k}" for k in range(n_out)]
    m = convert(src, tmp_path / "m.ernn", labels=labels, frame_period=0.01, mean=mean, std=std,
                description="a test model")
    md = edgernn.load(tmp_path / "m.ernn").metadata
    assert md["model.labels"] == labels and md["model.frame_period_s"] == 0.01
    assert md["general.description"] == "a test model"
    np.testing.assert_array_equal(md["model.input.mean"], mean)
    np.testing.assert_array_equal(md["model.input.std"], std)
    raw = frames * std + mean           # so that (raw - mean) / std gives back the fixture frames
    want = stepped(edgernn.load(src), ((raw - mean) / std).astype(np.float32))
    np.testing.assert_allclose(stepped(m, raw.astype(np.float32)), want, atol=1e-5)


def test_bad_convert_options_are_typed_errors(tmp_path):
    src = FIXTURES / STREAMABLE[0]
    for kwargs in ({"labels": ["a"]}, {"frame_period": -1.0}, {"mean": np.zeros(3)}, {"std": [0.0]},
                   {"weights": "int4"}):
        with pytest.raises(EdgeRNNError):
            convert(src, tmp_path / "m.ernn", **kwargs)


# ---------------------------------------------------------------- checks at load
def _rewrite(path, pos, data):
    b = bytearray(path.read_bytes())
    b[pos:pos + len(data)] = data
    path.write_bytes(bytes(b))


def test_checksum_catches_a_flipped_weight_byte_unless_skipped(tmp_path):
    p = tmp_path / "m.ernn"
    convert(FIXTURES / STREAMABLE[0], p, weights="int8")
    size = p.stat().st_size
    b = bytearray(p.read_bytes())
    b[size - 200] ^= 0x40                 # inside the data section (the last tensors)
    p.write_bytes(bytes(b))
    with pytest.raises(ModelFormatError, match="data checksum"):
        edgernn.load(p)
    assert edgernn.load(p, verify=False).file.checksum == "not checked"


def test_wrong_magic_version_and_truncation_are_typed_errors(tmp_path):
    p = tmp_path / "m.ernn"
    convert(FIXTURES / STREAMABLE[0], p)
    good = p.read_bytes()
    _rewrite(p, 4, (99).to_bytes(4, "little"))
    with pytest.raises(ModelFormatError, match="version 99"):
        edgernn.load(p)
    p.write_bytes(good[:100])
    with pytest.raises(ModelFormatError):
        edgernn.load(p)
    p.write_bytes(b"ERNN")
    with pytest.raises(ModelFormatError, match="too short"):
        edgernn.load(p)


def test_device_side_load_imports_no_onnx_tensorflow_litert_or_torch(tmp_path):
    p = tmp_path / "m.ernn"
    convert(FIXTURES / STREAMABLE[0], p, weights="int8")
    code = "; ".join([
        "import sys, numpy as np, edgernn",
        f"m = edgernn.load({str(p)!r})",
        "m.stream().step(np.zeros(m.inputs[0].frame_shape, np.float32))",
        "bad = [k for k in ('onnx', 'onnxruntime', 'tensorflow', 'ai_edge_litert', 'tflite_runtime', 'torch')"
        " if k in sys.modules]",
        "assert not bad, bad"])
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_cli_convert_then_info(tmp_path, capsys):
    from edgernn.cli import main
    out = tmp_path / "m.ernn"
    assert main(["convert", str(FIXTURES / STREAMABLE[0]), "-o", str(out), "--weights", "int8",
                 "--frame-period", "10ms", "--description", "demo"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["info", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["file"]["metadata"]["model.frame_period_s"] == 0.01
    assert d["file"]["checksum"] == "ok"
    assert main(["convert", str(FIXTURES / STREAMABLE[0]), "-o", str(out), "--frame-period", "soon"]) == 2
    assert "10ms" in capsys.readouterr().err


TFLITE = Path(__file__).parent / "fixtures" / "tflite"
TFLITE_MODELS = sorted(e["file"] for e in json.loads((TFLITE / "manifest.json").read_text())
                       if "unsupported" not in e["file"])


@pytest.mark.parametrize("name", TFLITE_MODELS)
def test_tflite_files_convert_and_stream_like_the_tflite_file(name, tmp_path):
    """`edgernn convert x.tflite`: the file streams like the .tflite loaded directly (which
    tests/test_tflite.py holds against LiteRT), int8 weights included."""
    pytest.importorskip("ai_edge_litert")
    with np.load(TFLITE / name.replace(".tflite", ".npz")) as z:
        frames = z["frames"][:60]
    direct = edgernn.load(TFLITE / name)
    m = convert(TFLITE / name, tmp_path / "m.ernn")
    s, s_direct = m.stream(), direct.stream()
    for f in frames:
        for g, d in zip(outputs(s.step(f)), outputs(s_direct.step(f))):
            assert np.abs(g - d).max() <= 1e-6
