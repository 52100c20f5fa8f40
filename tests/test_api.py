"""The Python API as a user of ONNX Runtime or LiteRT meets it (issue 17): format detection by
content and ``load`` from a path, bytes or a file object for every format; typed errors at the
API; TensorInfo's dtype and the reprs; ``Stream.step`` with a dict of named inputs and with
``out=``; type hints, ``py.typed``, the package's logger and ``help()`` texts.

Oracles: PyTorch's and Keras's recorded outputs in the fixtures' .npz files, NumPy for the
small graphs built here, and tracemalloc for "nothing allocated"."""
import gc
import inspect
import io
import logging
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import edgernn
from edgernn import (EdgeRNNError, FrameShapeError, ModelFormatError, StateError, StreamArgumentError,
                     TensorInfo)

ROOT = Path(__file__).resolve().parents[1]
ONNX_DIR = ROOT / "tests" / "fixtures" / "onnx"
TFLITE_DIR = ROOT / "tests" / "fixtures" / "tflite"
GRU = ONNX_DIR / "gru_l1_bf_lin_dy.onnx"            # x [13] -> y [5], PyTorch's outputs recorded
STRIDED = ONNX_DIR / "strided_conv_gru_ts.onnx"     # delay 2, output stride 2
TOL = 1e-5


def recorded(path, key="y"):
    """(frames, the exporter's outputs) of a fixture (``name.npz``, or ``stem.npz`` for ``stem_ts.onnx``)."""
    npz = path.with_suffix(".npz")
    if not npz.exists():
        npz = path.with_name(path.name.replace("_ts.onnx", ".npz"))
    with np.load(npz) as z:
        return z["frames"], z[key]


def max_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a.astype(np.float64) - b)))


def stepped(step, frames, **kw):
    return np.stack([step(x, **kw) for x in frames])


@pytest.fixture(scope="module")
def ernn_file(tmp_path_factory):
    from edgernn.convert import convert
    path = tmp_path_factory.mktemp("api") / "gru.ernn"
    convert(GRU, path)
    return path


@pytest.fixture(scope="module")
def gru():
    return edgernn.load(GRU)


def two_in_two_out():
    """A step graph with two inputs and two outputs, and its NumPy oracle: p = a @ W,
    q = (a + b) @ V."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(3)
    W = rng.standard_normal((4, 3)).astype(np.float32)
    V = rng.standard_normal((4, 2)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "W"], ["p"]), helper.make_node("Add", ["a", "b"], ["s"]),
         helper.make_node("MatMul", ["s", "V"], ["q"])], "two",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in ("a", "b")],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, [1, 3]),
         helper.make_tensor_value_info("q", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(V, "V")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return edgernn.load(model.SerializeToString(), step=True), lambda a, b: (a @ W, (a + b) @ V)


# ---------------------------------------------------------------- 1. format by content; path, bytes, file object
def test_every_format_loads_from_a_path_bytes_bytesio_and_an_open_file(ernn_file):
    """``edgernn.load`` takes a path, bytes, a memoryview, io.BytesIO or an open binary file for
    ONNX, TFLite and .ernn alike (BytesIO and open files were sent to the ONNX reader, which
    refused them), and each gives the exporter's outputs."""
    pytest.importorskip("onnx")
    pytest.importorskip("ai_edge_litert")
    cases = [(GRU, recorded(GRU)), (ernn_file, recorded(GRU)),
             (TFLITE_DIR / "k3_gru.tflite", recorded(TFLITE_DIR / "k3_gru.tflite", "keras_y"))]
    for path, (frames, want) in cases:
        data = path.read_bytes()
        with open(path, "rb") as f:
            sources = {"path": path, "str": str(path), "bytes": data, "bytearray": bytearray(data),
                       "memoryview": memoryview(data), "BytesIO": io.BytesIO(data), "open file": f}
            for how, source in sources.items():
                model = edgernn.load(source)
                got = stepped(model.stream().step, frames[:40])
                assert max_err(got, want[:40]) <= TOL, (path.name, how)


def test_the_content_decides_the_format_and_the_suffix_only_breaks_ties(tmp_path, ernn_file):
    """A model saved under another format's suffix loads by its content (an ONNX file named
    .tflite went to the TFLite reader)."""
    pytest.importorskip("onnx")
    pytest.importorskip("ai_edge_litert")
    tflite = TFLITE_DIR / "k3_gru.tflite"
    for src, name, (frames, want) in ((GRU, "model.tflite", recorded(GRU)), (GRU, "model.ernn", recorded(GRU)),
                                      (ernn_file, "model.onnx", recorded(GRU)),
                                      (tflite, "model.onnx", recorded(tflite, "keras_y"))):
        (tmp_path / name).write_bytes(src.read_bytes())
        model = edgernn.load(tmp_path / name)
        assert max_err(stepped(model.stream().step, frames[:20]), want[:20]) <= TOL, (src.name, name)


NONE = "not an ONNX, TFLite or .ernn model:"            # the message of bytes that are no format


def damaged_files(tmp_path, ernn_file):
    """{file name: (bytes, what the error says of the file, what it says of its bytes)}."""
    ernn = ernn_file.read_bytes()
    tfl = (TFLITE_DIR / "k3_gru.tflite").read_bytes()
    files = {
        "bad_magic.ernn": (b"XXXX" + ernn[4:], "is not an .ernn file", NONE),
        "truncated.ernn": (ernn[:30], "too short", "too short"),
        "zeros.ernn": (bytes(4096), "is not an .ernn file", NONE),
        "bad_identifier.tflite": (tfl[:4] + b"XXXX" + tfl[8:], "is not a TFLite model", NONE),
        "text.tflite": (b"this is not a model\n" * 10, "is not a TFLite model", NONE),
        "empty.onnx": (b"", "empty", "empty"),
        "text.onnx": (b"hello, world: not a model at all\n" * 10, NONE, NONE),
        "zeros.onnx": (bytes(1000), NONE, NONE),
        "noise": (np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(), NONE, NONE),
    }
    for name, (data, _, _) in files.items():
        (tmp_path / name).write_bytes(data)
    return files


def test_damaged_files_get_their_own_formats_typed_error(tmp_path, ernn_file):
    """A damaged .ernn or .tflite is reported by its own reader, bytes or a file that are no
    format at all say so; none gets an ONNX reader's message (text, zeros and noise got "not a
    readable ONNX model")."""
    for name, (data, of_file, of_bytes) in damaged_files(tmp_path, ernn_file).items():
        for source, want in ((tmp_path / name, of_file), (data, of_bytes), (io.BytesIO(data), of_bytes)):
            with pytest.raises(ModelFormatError) as e:
                edgernn.load(source)
            message = str(e.value)
            assert want in message and "ONNX model (" not in message and "onnx package" not in message, \
                (name, type(source).__name__, message)
    with pytest.raises(ModelFormatError, match="empty"):
        edgernn.load("/dev/null")
    with pytest.raises(ModelFormatError, match="directory"):
        edgernn.load(tmp_path)
    with pytest.raises(ModelFormatError, match="binary mode"):
        with open(tmp_path / "text.onnx") as f:             # text mode: str, not bytes
            edgernn.load(f)
    with pytest.raises(ModelFormatError, match="got int"):
        edgernn.load(17)


def test_without_the_onnx_package_a_non_onnx_file_is_not_sent_to_the_onnx_reader(tmp_path, ernn_file):
    """On a device without the onnx package (the default install), damaged or foreign files
    got "reading ONNX files needs the onnx package"; an .ernn still loads from bytes."""
    damaged_files(tmp_path, ernn_file)
    script = f"""
import sys
sys.modules["onnx"] = None                      # as if the onnx package were not installed
import edgernn
from pathlib import Path
tmp = Path({str(tmp_path)!r})
for name in ("text.onnx", "zeros.onnx", "noise", "bad_magic.ernn", "text.tflite"):
    for source in (tmp / name, (tmp / name).read_bytes()):
        try:
            edgernn.load(source)
        except edgernn.ModelFormatError as e:
            assert "onnx package" not in str(e), (name, str(e))
        else:
            raise AssertionError(name)
m = edgernn.load(Path({str(ernn_file)!r}).read_bytes())
print("ok", m.inputs[0].name)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "EDGERNN_QUIET": "1"})
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


# ---------------------------------------------------------------- 2. typed errors at the API
def test_stream_arguments_raise_typed_errors(gru):
    for kw in (dict(batch=0), dict(batch=-1), dict(threads=0), dict(batch=2, threads=4), dict(batch=1.5)):
        with pytest.raises(StreamArgumentError) as e:
            gru.stream(**kw)
        assert isinstance(e.value, EdgeRNNError)


def test_an_unknown_keyword_to_step_names_steps_real_parameters(gru):
    """``s.step(y=...)`` raised Python's TypeError naming ``Stream._bind_fast_step.<locals>.step``;
    it now names ``Stream.step`` (still a TypeError: catching keywords would cost every step a dict)."""
    model, _ = two_in_two_out()
    x = np.zeros(13, np.float32)
    for step, args in ((gru.stream().step, (x,)), (gru.stream(batch=2).step, (np.zeros((2, 13), np.float32),)),
                       (model.stream().step, (np.zeros(4, np.float32),) * 2)):
        with pytest.raises(TypeError) as e:
            step(*args, y=x)
        message = str(e.value)
        assert "'y'" in message and "Stream.step()" in message and "<locals>" not in message


def test_a_float64_frame_gets_the_dtype_message_after_its_stream_is_gone(gru):
    """``step = model.stream().step``; the Stream is collected; a float64 frame said "this step
    function's Stream no longer exists" instead of what is wrong with the frame."""
    frames, want = recorded(GRU)
    step = gru.stream().step
    gc.collect()
    with pytest.raises(FrameShapeError, match=r"must be float32, got float64.*x\.astype\(np\.float32\)"):
        step(frames[0].astype(np.float64))
    with pytest.raises(FrameShapeError, match=r"has shape \(12,\); expected \(13,\)"):
        step(frames[0][:12])
    with pytest.raises(TypeError, match=r"Stream\.step\(\) got an unexpected keyword argument 'y'"):
        step(frames[0], y=1)
    with pytest.raises(FrameShapeError, match="out for output 'y'"):
        step(frames[0], out=np.empty(5, np.float64))
    with pytest.raises(StateError, match="no longer exists"):     # valid, but needs the stream's conversions
        step(frames[0].astype(">f4"))
    assert max_err(stepped(step, frames[:10]), want[:10]) <= TOL  # nothing above stepped the state


# ---------------------------------------------------------------- 3. dtype and repr
def test_tensor_info_has_a_dtype_and_every_object_a_repr(gru):
    assert gru.inputs == [TensorInfo("x", (13,), "float32")] and gru.outputs[0].dtype == "float32"
    assert repr(gru.inputs[0]) == "TensorInfo(name='x', frame_shape=(13,), dtype='float32')"
    text = repr(gru)
    assert text.startswith("<edgernn.Model") and str(GRU) in text and "x: float32[13]" in text
    assert "y: float32[5]" in text and "delay" not in text
    strided = repr(edgernn.load(STRIDED))
    assert "delay=2" in strided and "output_stride=2" in strided
    s = repr(gru.stream(batch=3))
    assert s.startswith("<edgernn.Stream") and str(GRU) in s and "batch=3" in s and "threads=1" in s
    assert "object at 0x" not in text + strided + s


# ---------------------------------------------------------------- 4. a dict of named inputs
def test_step_takes_a_dict_of_named_inputs_and_returns_a_dict():
    model, oracle = two_in_two_out()
    rng = np.random.default_rng(0)
    s = model.stream()
    for _ in range(3):
        a, b = rng.standard_normal((2, 4)).astype(np.float32)
        p, q = oracle(a, b)
        got = s.step({"b": b, "a": a})
        assert isinstance(got, dict) and list(got) == ["p", "q"]
        assert max_err(got["p"], p) <= TOL and max_err(got["q"], q) <= TOL
        positional = s.step(a, b)
        assert isinstance(positional, tuple) and max_err(positional[1], q) <= TOL
    frames, want = recorded(GRU)
    one = edgernn.load(GRU).stream()
    got = np.stack([one.step({"x": x})["y"] for x in frames[:20]])
    assert max_err(got, want[:20]) <= TOL
    with pytest.raises(FrameShapeError, match=r"inputs are \['a', 'b'\].*lacks \['b'\]"):
        s.step({"a": a})
    with pytest.raises(FrameShapeError, match=r"unknown names \['h'\]"):
        s.step({"a": a, "b": b, "h": a})
    with pytest.raises(FrameShapeError, match=r"inputs are \['x'\]"):
        one.step({"input": frames[0]})


# ---------------------------------------------------------------- 5. out=
def test_step_writes_into_the_callers_arrays():
    frames, want = recorded(GRU)
    s = edgernn.load(GRU).stream()
    y = np.full(5, np.nan, np.float32)
    got = []
    for x in frames[:50]:
        r = s.step(x, out=y)
        assert r is y
        got.append(y.copy())
    assert max_err(np.stack(got), want[:50]) <= TOL
    batched = edgernn.load(GRU).stream(batch=3)                # out of shape (3, 5): a 2-D array
    yb = np.empty((3, 5), np.float32)
    got = [batched.step(np.stack([x, x, x]), out=yb).copy() for x in frames[:20]]
    assert max_err(np.stack(got), np.repeat(want[:20, None], 3, axis=1)) <= TOL
    model, oracle = two_in_two_out()
    a, b = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    outs = (np.empty(3, np.float32), np.empty(2, np.float32))
    assert model.stream().step(a, b, out=outs) is outs
    assert all(max_err(o, w) <= TOL for o, w in zip(outs, oracle(a, b)))
    named = {"p": np.empty(3, np.float32), "q": np.empty(2, np.float32)}
    assert model.stream().step({"a": a, "b": b}, out=named) is named
    assert max_err(named["q"], oracle(a, b)[1]) <= TOL


def test_out_returns_none_when_the_step_is_not_due():
    """With delay 2 and output stride 2, step(x, out=y) returns None between outputs and y when
    due; the due outputs (and flush) are PyTorch's sequence outputs."""
    frames, want = recorded(STRIDED)
    s = edgernn.load(STRIDED).stream()
    y = np.empty(3, np.float32)
    got, due = [], []
    for x in frames:
        r = s.step(x, out=y)
        due.append(r is not None)
        if r is not None:
            assert r is y
            got.append(y.copy())
    assert due[:6] == [False, False, True, False, True, False]
    assert max_err(np.concatenate([np.stack(got), s.flush()]), want) <= TOL


def test_a_wrong_out_is_refused_before_the_step_runs():
    frames, want = recorded(GRU)
    s = edgernn.load(GRU).stream()
    read_only = np.empty(5, np.float32)
    read_only.flags.writeable = False
    bad = [np.empty(5, np.float64), np.empty(6, np.float32), np.empty((1, 5), np.float32),
           np.empty(10, np.float32)[::2], read_only, np.empty(5, ">f4"), [0.0] * 5, (np.empty(5, np.float32),)]
    for out in bad:
        with pytest.raises(FrameShapeError, match="out"):
            s.step(frames[0], out=out)
    model, _ = two_in_two_out()
    x = np.zeros(4, np.float32)
    for out in (np.empty(3, np.float32), (np.empty(3, np.float32),), {"p": np.empty(3, np.float32)}):
        with pytest.raises(FrameShapeError, match="out"):
            model.stream().step(x, x, out=out)
    with pytest.raises(FrameShapeError, match="dict"):
        model.stream().step({"a": x, "b": x}, out=(np.empty(3, np.float32), np.empty(2, np.float32)))
    y = np.empty(5, np.float32)
    assert s.step(frames[0], out=y) is y and max_err(y, want[0]) <= TOL    # the refused calls stepped nothing


def _peak_bytes(run):
    run()                                     # warm: the first call checks the out array
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_step_with_out_allocates_no_array():
    """The fast path with out= allocates no result array: its peak traced memory over 200 steps
    is below that of step(x), which allocates one array per call."""
    frames = list(recorded(GRU)[0])
    step = edgernn.load(GRU).stream().step
    y = np.empty(5, np.float32)

    def with_out():
        for x in frames:
            step(x, out=y)

    def without():
        for x in frames:
            step(x)
    assert _peak_bytes(with_out) + 64 <= _peak_bytes(without)


# ---------------------------------------------------------------- 6. types, py.typed, logging
def test_the_package_is_typed_and_logs_quietly(caplog, tmp_path, ernn_file):
    assert (Path(edgernn.__file__).parent / "py.typed").is_file()
    if sys.version_info >= (3, 11):
        import tomllib
        with open(ROOT / "pyproject.toml", "rb") as f:
            assert "py.typed" in tomllib.load(f)["tool"]["setuptools"]["package-data"]["edgernn"]
    for fn in (edgernn.load, edgernn.Model.stream, edgernn.Stream.step, edgernn.Stream.run, edgernn.Stream.flush,
               edgernn.Model.describe, edgernn.Model.flops_per_step, edgernn.Model.weight_bytes):
        assert "return" in fn.__annotations__, fn.__qualname__
    assert set(inspect.signature(edgernn.load).parameters) <= set(edgernn.load.__annotations__)
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("edgernn").handlers)
    with caplog.at_level(logging.DEBUG, logger="edgernn"):
        edgernn.load(GRU)
        edgernn.load(ernn_file.read_bytes())
    text = caplog.text
    assert "onnx model, by its first fields" in text and "ernn model, by its magic" in text
    assert "passes done" in text and "program rows" in text and "loaded" in text


# ---------------------------------------------------------------- 7. help() texts
def test_help_shows_a_docstring_for_every_public_method():
    from edgernn.profile import ProfileResult
    for cls in (edgernn.Model, edgernn.Stream):
        for name, member in inspect.getmembers(cls):
            if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property)):
                assert (member.__doc__ or "").strip(), f"{cls.__name__}.{name}"
    for fn in (ProfileResult.report, ProfileResult.to_dict, ProfileResult.to_json, TensorInfo):
        assert (fn.__doc__ or "").strip(), fn.__qualname__
    assert "Returns" in edgernn.load(GRU).stream().step.__doc__
