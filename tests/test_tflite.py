"""TFLite files (tests/fixtures/tflite, made by exporters/make_tflite_fixtures.py) streamed by
edgernn one frame at a time for 200 frames, against LiteRT running the same files.

The oracle is LiteRT's interpreter (``ai-edge-litert``; ``tflite_runtime`` where only that
is installed, found at import time). How it sees the 200 frames depends on the file:

* dynamic-T files (all but two): the whole sequence in ONE ``invoke`` (inputs resized to
  [1, 200, F]) from a zero state; edgernn's 200 single steps are compared frame by frame;
* ``tk_lstm_t1`` (fixed T = 1): one frame per ``invoke``; LiteRT's fused LSTM carries its
  state from call to call in variable tensors;
* ``tk_lstm_state`` (inputs x, h0, c0; outputs y, h, c): one frame per ``invoke`` with the
  state carried by hand through LiteRT's inputs and outputs, which also gives the state
  after every frame to compare with edgernn's ``Stream.state``;
* ``*_last`` (Keras ``return_sequences=False``: the model outputs the last step only): frame
  t of edgernn's stream is compared with LiteRT on the prefix of frames 0..t (200 invokes).

A second oracle is the source framework: the Keras outputs the exporter recorded in the
fixtures' .npz files. ``python tests/test_tflite.py`` prints the measured errors.
"""
import functools
import json
from pathlib import Path

import numpy as np
import pytest

import edgernn
from compare import max_err
from edgernn.reference import ReferenceStream

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # pragma: no cover - NumPy 1 environments (older Raspberry Pi OS)
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        Interpreter = None

FIXTURES = Path(__file__).parent / "fixtures" / "tflite"
MANIFEST = {e["file"][:-len(".tflite")]: e for e in json.loads((FIXTURES / "manifest.json").read_text())}
REJECTED = [n for n in MANIFEST if "unsupported" in n]
FLOAT = [n for n, e in MANIFEST.items() if e["quantisation"] == "float" and n not in REJECTED]
QUANTISED = [n for n, e in MANIFEST.items() if e["quantisation"] != "float"]
TOL = 1e-5

# what each file runs on: its recurrent IR ops (the fast kernels), or none (per-step graph)
EXPECTED_CELLS = {
    "k3_lstm": {"lstm": 1}, "k3_gru": {"gru": 1}, "k3_simplernn": {"rnn": 1},
    "k3_stack": {"gru": 1, "lstm": 1}, "k3_custom_cell": {},
    "tk_lstm": {"lstm": 1}, "tk_lstm2": {"lstm": 2}, "tk_lstm_t1": {"lstm": 1},
    "tk_gru_ra0": {"gru": 1}, "tk_gru_ra1": {"gru": 1}, "tk_simplernn": {"rnn": 1},
    "tk_lstm_state": {"lstm": 1}, "tk_lstm_state_in": {"lstm": 1}, "schema_seq_rnn": {"rnn": 1},
    "k3_gru_last": {"gru": 1}, "tk_lstm_last": {"lstm": 1},
    "tk_lstm_int8": {"lstm": 1}, "tk_lstm_dynrange": {"lstm": 1},
}
LBR = {"k3_gru": 1, "tk_gru_ra1": 1, "tk_gru_ra0": 0, "k3_stack": 0}

needs_litert = pytest.mark.skipif(Interpreter is None, reason="needs ai-edge-litert (or tflite_runtime): "
                                                               "pip install 'edgernn[tflite]'")


# ---------------------------------------------------------------- helpers
@functools.lru_cache(maxsize=None)
def data(name):
    with np.load(FIXTURES / f"{name}.npz") as z:
        return {k: z[k] for k in z.files}


@functools.lru_cache(maxsize=None)
def model(name):
    return edgernn.load(FIXTURES / f"{name}.tflite")


def outs(y):
    return y if isinstance(y, tuple) else (y,)


def streamed(m, frames):
    """edgernn: every frame one step at a time; output 0 as (T, *frame_shape), final state."""
    s = m.stream()
    y = np.stack([outs(s.step(f))[0] for f in frames])
    return y, s.state


def interpreter(source):
    kw = {"model_content": source} if isinstance(source, bytes) else {"model_path": str(source)}
    return Interpreter(num_threads=1, **kw)


def frame_input(it):
    """The frame input (rank 3); other inputs (initial states) are set to zero."""
    return next(d for d in it.get_input_details() if len(d["shape"]) == 3)


def zero_states(it):
    for d in it.get_input_details():
        if len(d["shape"]) != 3:
            it.set_tensor(d["index"], np.zeros(d["shape"], np.float32))


def litert_sequence(source, frames):
    """LiteRT on the whole sequence (1, T, F) in one invoke; its first output as (T, ...)."""
    it = interpreter(source)
    x = frame_input(it)
    it.resize_tensor_input(x["index"], [1, len(frames), frames.shape[1]])
    it.allocate_tensors()
    zero_states(it)
    it.set_tensor(x["index"], np.ascontiguousarray(frames[None], np.float32))
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])[0]


def litert_frames(source, frames):
    """LiteRT one frame (1, 1, F) per invoke; the file's variable tensors carry the state
    (for tk_lstm_state_in these are its h0/c0 inputs: set to zero once, then left alone)."""
    it = interpreter(source)
    x = frame_input(it)
    it.resize_tensor_input(x["index"], [1, 1, frames.shape[1]])
    it.allocate_tensors()
    zero_states(it)
    o = it.get_output_details()[0]["index"]
    ys = []
    for f in frames:
        it.set_tensor(x["index"], f[None, None])
        it.invoke()
        ys.append(it.get_tensor(o)[0, 0].copy())
    return np.stack(ys)


def litert_state_frames(source, frames, hidden):
    """tk_lstm_state in LiteRT, one frame per invoke, h and c carried through its signature:
    (y (T, out), [h after each frame], [c after each frame])."""
    run = interpreter(source).get_signature_runner()
    h = c = np.zeros((1, hidden), np.float32)
    ys, hs, cs = [], [], []
    for f in frames:
        r = run(x=f[None, None], h0=h, c0=c)
        h, c = r["h"], r["c"]
        ys.append(r["y"][0, 0])
        hs.append(h[0])
        cs.append(c[0])
    return np.stack(ys), hs, cs


def litert_oracle(name, source=None):
    source = source or FIXTURES / f"{name}.tflite"
    frames = data(name)["frames"]
    if name == "tk_lstm_t1":
        return litert_frames(source, frames)
    if name == "tk_lstm_state":
        return litert_state_frames(source, frames, 24)[0]
    if name.endswith("_last"):
        return np.stack([litert_sequence(source, frames[:t + 1]) for t in range(len(frames))])
    return litert_sequence(source, frames)


# ---------------------------------------------------------------- float models
@needs_litert
@pytest.mark.parametrize("name", FLOAT)
def test_float_model_matches_litert(name):
    y, _ = streamed(model(name), data(name)["frames"])
    assert max_err(y, litert_oracle(name)) <= TOL


@pytest.mark.parametrize("name", FLOAT)
def test_float_model_matches_keras(name):
    y, _ = streamed(model(name), data(name)["frames"])
    assert max_err(y, data(name)["keras_y"]) <= TOL


@needs_litert
def test_fixed_t1_file_also_matches_litert_on_the_whole_sequence():
    """The T = 1 file resized to T = 200 in LiteRT gives the same outputs as 200 invokes."""
    frames = data("tk_lstm_t1")["frames"]
    y, _ = streamed(model("tk_lstm_t1"), frames)
    assert max_err(y, litert_sequence(FIXTURES / "tk_lstm_t1.tflite", frames)) <= TOL


@pytest.mark.parametrize("name", [n
                                  for n in sorted(EXPECTED_CELLS)])
def test_standard_cells_run_on_recurrent_kernels(name):
    counts = model(name).op_counts()
    assert {k: v for k, v in counts.items() if k in ("lstm", "gru", "rnn")} == EXPECTED_CELLS[name], counts
    if name in LBR:
        lbr = {n.attrs["linear_before_reset"] for n in model(name).graph.nodes if n.op == "gru"}
        assert lbr == {LBR[name]}


def test_custom_cell_runs_as_a_per_step_graph():
    m = model("k3_custom_cell")
    assert {"dense", "tanh", "sigmoid", "mul"} <= set(m.op_counts())
    assert [s.frame_shape for s in m.states] == [(1, 24)]


# ---------------------------------------------------------------- state
@needs_litert
def test_state_inputs_and_outputs_are_kept_inside_the_stream():
    m = model("tk_lstm_state")
    assert [i.name for i in m.inputs] == ["x"] and [o.name for o in m.outputs] == ["y"]
    assert sorted(s.name for s in m.states) == ["c0", "h0"]
    frames = data("tk_lstm_state")["frames"]
    want_y, hs, cs = litert_state_frames(FIXTURES / "tk_lstm_state.tflite", frames, 24)
    s = m.stream()
    for t, f in enumerate(frames):
        assert max_err(s.step(f), want_y[t]) <= TOL, t
        if t % 50 == 49:
            st = s.state
            assert max_err(st["h0"].ravel(), hs[t]) <= TOL and max_err(st["c0"].ravel(), cs[t]) <= TOL


@needs_litert
def test_variable_state_inputs_become_stream_state():
    """tk_lstm_state_in: the fused LSTM's state tensors are the model inputs h0, c0 (marked
    variable). LiteRT overwrites them with the final state at every invoke, so one frame per
    invoke carries the state; edgernn keeps it in the stream under the inputs' names."""
    m = model("tk_lstm_state_in")
    assert [i.name for i in m.inputs] == ["x"]
    assert sorted(s.name for s in m.states) == ["c0", "h0"]
    frames = data("tk_lstm_state_in")["frames"]
    y, _ = streamed(m, frames)
    assert max_err(y, litert_frames(FIXTURES / "tk_lstm_state_in.tflite", frames)) <= TOL


@pytest.mark.parametrize("name", ["k3_stack", "k3_custom_cell"])
def test_state_snapshot_restore_and_batch(name):
    m = model(name)
    frames = data(name)["frames"]
    s = m.stream()
    y_first, _ = streamed(m, frames[:80])
    for f in frames[:40]:
        s.step(f)
    snap = s.state
    a = np.stack([s.step(f) for f in frames[40:80]])
    s.state = snap
    b = np.stack([s.step(f) for f in frames[40:80]])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, y_first[40:])
    seqs = [frames, frames[::-1].copy()]
    sb = m.stream(batch=2)
    yb = np.stack([sb.step(np.stack([q[t] for q in seqs])) for t in range(len(frames))])
    for k, q in enumerate(seqs):
        assert max_err(yb[:, k], streamed(m, q)[0]) <= 1e-6
    assert max_err(m.stream().run(frames), streamed(m, frames)[0]) <= 1e-6


# ---------------------------------------------------------------- quantised models
def file_tensors(name):
    """{tensor name: (int array, scale, zero point)} of a file's quantised constants, read with
    the schema directly (independent of edgernn's importer)."""
    from ai_edge_litert import schema_py_generated as s
    m = s.ModelT.InitFromPackedBuf((FIXTURES / f"{name}.tflite").read_bytes(), 0)
    out = {}
    for t in m.subgraphs[0].tensors:
        q, buf = t.quantization, m.buffers[t.buffer].data
        if buf is not None and len(buf) and t.type == s.TensorType.INT8 and q is not None and q.scale is not None:
            arr = np.frombuffer(np.asarray(buf, np.uint8).tobytes(), np.int8).reshape(t.shape)
            out[t.name.decode()] = (arr, np.asarray(q.scale), np.asarray(q.zeroPoint))
    return out


@pytest.mark.parametrize("name", QUANTISED)
def test_int8_weights_stay_int8_with_per_row_scales(name):
    """The IR convention: int8 const, zero point 0, one float32 scale per output row (axis 1
    of a recurrent W [1, G*H, I]); the LSTM's per-gate tensors stacked in ONNX order i, o, f, c.
    (Checked on the imported IR, before the pack pass lays the weights out for the kernels.)"""
    from edgernn.formats import tflite
    g = tflite.import_tflite(FIXTURES / f"{name}.tflite")
    lstm = next(n for n in g.nodes if n.op == "lstm")
    H = lstm.attrs["hidden_size"]
    stored = [v for v in file_tensors(name).values() if v[0].ndim == 2 and v[0].shape[0] == H]
    gate_rows = [(a.astype(np.float32) * sc[0]) for a, sc, _ in stored]          # dequantised per gate
    for w in (lstm.inputs[1], lstm.inputs[2]):
        assert w.dtype == "int8" and w.const.dtype == np.int8 and w.scale.dtype == np.float32
        assert w.const.shape[:2] == (1, 4 * H) and w.scale.shape == (4 * H,)
        deq = w.const[0].astype(np.float32) * w.scale[:, None]
        for k in range(4):                                  # each ONNX gate block is one stored tensor
            block = deq[k * H:(k + 1) * H]
            assert any(a.shape == block.shape and np.array_equal(a, block) for a in gate_rows), k
    head = next(n for n in g.nodes if n.op == "dense")
    if name == "tk_lstm_int8":
        w = head.inputs[1]
        arr, scale, zp = next(v for v in file_tensors(name).values() if v[0].shape == w.const.shape)
        assert w.dtype == "int8" and np.array_equal(w.const, arr) and np.array_equal(w.scale, scale)
    else:                                   # the converter keeps tensors under 1024 elements float
        assert head.inputs[1].dtype == "float32"




def quant_scale(name, tensor_name):
    from ai_edge_litert import schema_py_generated as s
    m = s.ModelT.InitFromPackedBuf((FIXTURES / f"{name}.tflite").read_bytes(), 0)
    t = next(t for t in m.subgraphs[0].tensors if t.name.decode() == tensor_name)
    return float(t.quantization.scale[0]), int(t.quantization.zeroPoint[0])


def hidden_tolerance(name, frames):
    """How far edgernn's LSTM state h may be from LiteRT's, in the file's quantisation steps.

    edgernn runs the same int8 weights as LiteRT but keeps activations in float32; LiteRT
    rounds them, so the two differ by LiteRT's activation rounding:
    * LiteRT rounds h_t to its grid (step s_h) and feeds the rounded h_{t-1} back: 1/2 + 1/2
      step = s_h;
    * it rounds the input x to its grid (step s_x) before the gate products: each
      pre-activation moves by sum_k W[r, k] e_k with |e_k| <= s_x / 2 (typically
      ||W_r||_2 s_x / sqrt(12), about 0.3 s_x for these weights), passes gate slopes <= 1 and,
      through c, a few steps: budget s_x.
    So tol_h = s_h + s_x, where
    * full int8: s_x and s_h are the scales of the LSTM's input and output tensors;
    * dynamic range: LiteRT quantises x_t and h_{t-1} on the fly, symmetric, with step
      max|v| / 127: s_x = max_t max|x_t| / 127 and s_h = 1 / 127 (|h| <= 1).
    """
    if MANIFEST[name]["quantisation"] == "int8":
        return quant_scale(name, "tfl.unidirectional_sequence_lstm")[0] + quant_scale(name, "tfl.quantize")[0]
    return 1 / 127 + float(np.abs(frames).max()) / 127


def head_weights(name):
    """The head's FULLY_CONNECTED weights [N, K] as float, read from the file with the schema."""
    from ai_edge_litert import schema_py_generated as s
    m = s.ModelT.InitFromPackedBuf((FIXTURES / f"{name}.tflite").read_bytes(), 0)
    g = m.subgraphs[0]
    fc = next(op for op in g.operators
              if m.operatorCodes[op.opcodeIndex].builtinCode == s.BuiltinOperator.FULLY_CONNECTED)
    t = g.tensors[fc.inputs[1]]
    raw = np.asarray(m.buffers[t.buffer].data, np.uint8).tobytes()
    if t.type == s.TensorType.INT8:
        return np.frombuffer(raw, np.int8).reshape(t.shape) * np.asarray(t.quantization.scale)[:, None]
    return np.frombuffer(raw, np.float32).reshape(t.shape)


def output_tolerance(name, dh):
    """Per frame and output: y = W_head h + b, so given the measured |h_edgernn - h_LiteRT|
    (dh, (T, H)), |dy| <= |W_head| @ dh, plus in the full-int8 file LiteRT's rounding of the
    head's product (s_d / 2) and of y (s_y / 2), plus 1e-5 for float summation order."""
    rounding = 0.0
    if MANIFEST[name]["quantisation"] == "int8":
        rounding = quant_scale(name, "model/dense/Tensordot")[0] / 2 + quant_scale(name, "StatefulPartitionedCall:01")[0] / 2
    return dh @ np.abs(head_weights(name)).T + rounding + 1e-5


def litert_hidden(name, frames):
    """LiteRT's LSTM output h for every frame (its intermediate tensor, dequantised)."""
    it = Interpreter(model_path=str(FIXTURES / f"{name}.tflite"), num_threads=1,
                     experimental_preserve_all_tensors=True)
    x = it.get_input_details()[0]
    it.resize_tensor_input(x["index"], [1, len(frames), frames.shape[1]])
    it.allocate_tensors()
    it.set_tensor(x["index"], frames[None])
    it.invoke()
    d = next(d for d in it.get_tensor_details() if d["name"] == "tfl.unidirectional_sequence_lstm")
    h = it.get_tensor(d["index"])[0].astype(np.float32)
    scale, zp = d["quantization"]
    return (h - zp) * scale if scale else h


@needs_litert
@pytest.mark.parametrize("name", QUANTISED)
def test_quantised_model_matches_litert_within_its_quantisation_steps(name):
    frames = data(name)["frames"]
    m = model(name)
    h_state = next(s.name for s in m.states if s.name.endswith("/h"))
    s = m.stream()
    y, h = [], []
    for f in frames:
        y.append(s.step(f))
        h.append(s.state[h_state].ravel())
    dh = np.abs(np.stack(h) - litert_hidden(name, frames))
    assert dh.max() <= hidden_tolerance(name, frames)
    dy = np.abs(np.stack(y) - litert_sequence(FIXTURES / f"{name}.tflite", frames))
    assert np.all(dy <= output_tolerance(name, dh))


# ---------------------------------------------------------------- cell clip (TFLite's LSTM option)
def with_cell_clip(clip):
    """tk_lstm with its LSTM's cell_clip set to `clip` (schema object API; LiteRT is the oracle)."""
    from ai_edge_litert import schema_py_generated as s
    import flatbuffers
    m = s.ModelT.InitFromPackedBuf((FIXTURES / "tk_lstm.tflite").read_bytes(), 0)
    m.subgraphs[0].operators[0].builtinOptions.cellClip = clip
    b = flatbuffers.Builder(1 << 16)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


@needs_litert
def test_cell_clip_is_applied_like_litert():
    frames = data("tk_lstm")["frames"]
    clipped_file = with_cell_clip(0.25)
    m = edgernn.load(clipped_file)
    y, _ = streamed(m, frames)
    assert max_err(y, litert_sequence(clipped_file, frames)) <= TOL
    assert max_err(y, streamed(model("tk_lstm"), frames)[0]) > 1e-2      # the clip was active
    ref = ReferenceStream(m)
    assert max_err(np.stack([ref.step(f) for f in frames[:50]]), y[:50]) <= 2e-6


# ---------------------------------------------------------------- kernels vs references
@pytest.mark.parametrize("name", ["k3_custom_cell", "k3_stack", "schema_seq_rnn"])
def test_engine_matches_numpy_reference(name):
    """The compiled step against each op's NumPy reference on the same prepared IR (this
    covers take_frame/put_frame and the per-step graph of a WHILE body)."""
    m = model(name)
    frames = data(name)["frames"][:60]
    ref = ReferenceStream(m)
    want = np.stack([outs(ref.step(f))[0] for f in frames])
    assert max_err(streamed(m, frames)[0], want) <= 2e-6


@pytest.mark.parametrize("keepdims, shape", [(0, ()), (1, (1,))])
def test_reduce_prod_folds_symbolic_sizes(keepdims, shape):
    """Converters compute FULLY_CONNECTED's row count as REDUCE_PROD(SHAPE(x)[:2]) = B * T."""
    from edgernn import ops
    from edgernn.ir.dims import B, T
    from edgernn.ir.graph import Node, Value
    x = Value("dims", shape=(2,), dtype="int64", const=np.array([B, T], dtype=object))
    axes = Value("axes", shape=(1,), dtype="int64", const=np.array([0]))
    node = Node("reduce_prod", "p", [x, axes], [Value("y")], {"keepdims": keepdims})
    op = ops.get("reduce_prod")
    assert op.infer(node) == [(shape, "int64")]
    (y,) = op.reference(node, x.const, axes.const)
    assert y.shape == shape and y.ravel()[0] == B * T
    (n,) = op.reference(node, np.array([3, 4, 5]), np.array([0]))
    assert int(np.ravel(n)[0]) == 60


# ---------------------------------------------------------------- errors
def test_unsupported_op_names_subgraph_op_and_alternatives():
    with pytest.raises(edgernn.UnsupportedOpError) as e:
        edgernn.load(FIXTURES / "tk_unsupported_op.tflite")
    msg = str(e.value)
    assert "subgraph 0 ('main')" in msg and "SIN" in msg and "FULLY_CONNECTED" in msg


def test_unrecognisable_while_body_with_unsupported_ops_names_body_and_ops():
    with pytest.raises(edgernn.UnsupportedOpError) as e:
        edgernn.load(FIXTURES / "k3_unsupported_cell.tflite")
    msg = str(e.value)
    assert "while_body" in msg and "subgraph 2" in msg and "SIN" in msg
    assert "not a recognisable LSTM/GRU/RNN cell" in msg and "WHILE" in msg


@pytest.mark.parametrize("cut", [0.05, 0.3, 0.6, 0.9, 0.99])
def test_truncated_file_is_a_format_error(tmp_path, cut):
    raw = (FIXTURES / "k3_gru.tflite").read_bytes()
    p = tmp_path / "cut.tflite"
    p.write_bytes(raw[:max(8, int(len(raw) * cut))])
    with pytest.raises(edgernn.ModelFormatError):
        edgernn.load(p)


def test_garbage_after_the_identifier_is_a_format_error(tmp_path):
    p = tmp_path / "bad.tflite"
    p.write_bytes(b"\x18\x00\x00\x00TFL3" + bytes(range(256)) * 4)
    with pytest.raises(edgernn.ModelFormatError):
        edgernn.load(p)


@pytest.mark.parametrize("name", ["tk_lstm_int8", "k3_gru"])
def test_mutated_files_give_typed_errors_or_load(name):
    """1-3 random bytes changed, 150 times: edgernn either loads the file or raises an
    EdgeRNNError; never another exception."""
    raw = (FIXTURES / f"{name}.tflite").read_bytes()
    rng = np.random.default_rng(11)
    for _ in range(150):
        b = bytearray(raw)
        for i in rng.integers(8, len(b), size=rng.integers(1, 4)):
            b[i] = rng.integers(0, 256)
        try:
            edgernn.load(bytes(b))
        except edgernn.EdgeRNNError:
            pass


# ---------------------------------------------------------------- CLI
@needs_litert
def test_cli_info_and_run_on_a_tflite_file(tmp_path, capsys):
    from edgernn.cli import main
    assert main(["info", str(FIXTURES / "k3_lstm.tflite")]) == 0
    out = capsys.readouterr().out
    assert "lstm" in out and "(10,)" in out and "(5,)" in out
    frames = data("k3_lstm")["frames"]
    np.save(tmp_path / "frames.npy", frames)
    assert main(["run", str(FIXTURES / "k3_lstm.tflite"), str(tmp_path / "frames.npy"),
                 "-o", str(tmp_path / "y.npy")]) == 0
    assert max_err(np.load(tmp_path / "y.npy"), litert_oracle("k3_lstm")) <= TOL


if __name__ == "__main__":   # the measured errors quoted in the docs
    for name in FLOAT + QUANTISED:
        y, _ = streamed(model(name), data(name)["frames"])
        lite = litert_oracle(name)
        print(f"{name:<18} {MANIFEST[name]['quantisation']:<8} {MANIFEST[name]['bytes']:>6} B  "
              f"ops {model(name).op_counts()}  max|edgernn - LiteRT| = {max_err(y, lite):.2e}  "
              f"max|edgernn - Keras| = {max_err(y, data(name)['keras_y']):.2e}")
