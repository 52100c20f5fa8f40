"""Real PyTorch exports (tests/fixtures/onnx, made by exporters/make_onnx_fixtures.py) streamed
frame by frame.

Oracles:
* PyTorch: each fixture's .npz holds torch's outputs for its 200 frames run as ONE sequence
  (batch 1, zero initial state): ``y`` and, for state-passing models, the final ``hT``/``cT``.
* onnxruntime running the same .onnx file on the whole sequence. TorchScript exports take any
  T, so ORT runs all 200 frames at once. The dynamo exporter baked T=5 into its files, so ORT
  runs 5-frame chunks: state-passing models carry hT/cT into the next chunk's h0/c0 (an oracle
  for all 200 frames); stateless ones are checked on their first 5 frames only.
Plus self-consistency of the stream API: run == steps, batch == separate streams, state
snapshot/restore and reset.
"""
import copy
import functools
import gc
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import edgernn
from compare import max_err

FIXTURES = Path(__file__).parent / "fixtures" / "onnx"
MANIFEST = {e["file"]: e for e in json.loads((FIXTURES / "manifest.json").read_text())}
UNROLLED = "rnn_unrolled_dy.onnx"
STREAMABLE = [f for f in MANIFEST if f != UNROLLED]
STATE_REF = {"h0": "hT", "c0": "cT"}    # graph state input -> npz key of its final value
TOL = 1e-5


def entry(name):
    return MANIFEST[name]


@functools.lru_cache(maxsize=None)
def reference(name):
    with np.load(FIXTURES / name.replace(".onnx", ".npz")) as z:
        return {k: z[k] for k in z.files}


@functools.lru_cache(maxsize=None)
def model(name):
    return edgernn.load(FIXTURES / name)


def _outs(y):
    return y if isinstance(y, tuple) else (y,)


def step_frames(stream, frames):
    """Step every frame; the first output (y) as (T, *frame_shape)."""
    return np.stack([_outs(stream.step(f))[0] for f in frames])


@functools.lru_cache(maxsize=None)
def stepped(name):
    """(y over the fixture's 200 frames, final state), one step at a time on a fresh stream."""
    s = model(name).stream()
    y = step_frames(s, reference(name)["frames"])
    return y, s.state


# ---------------------------------------------------------------- onnxruntime oracle
def session(name):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(FIXTURES / name), so, providers=["CPUExecutionProvider"])


def _time_axis(name):
    return 1 if entry(name)["batch_first"] else 0


def ort_chunk_length(sess, name):
    """The sequence length ORT accepts, read from the declared shapes: None if any length
    works, else the length the exporter baked into x (or into y when only x is dynamic)."""
    t = _time_axis(name)
    for v in (sess.get_inputs()[0], sess.get_outputs()[0]):
        d = v.shape[t]
        if isinstance(d, int):
            return d
    return None


def ort_sequence(sess, name, frames, state=None):
    """Run frames (T, 13) as one batch-1 sequence; returns y (T, *frame) and {output: state}."""
    x = frames[None] if entry(name)["batch_first"] else frames[:, None]
    feeds = {sess.get_inputs()[0].name: np.ascontiguousarray(x, np.float32)}
    for inp in sess.get_inputs()[1:]:
        shape = [d if isinstance(d, int) else 1 for d in inp.shape]   # (layers, 1, hidden)
        feeds[inp.name] = np.zeros(shape, np.float32) if state is None else state[inp.name]
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    y = outs.pop("y")
    y = y[0] if entry(name)["batch_first"] else y[:, 0]
    return y, outs


def ort_oracle(name, frames):
    """(y for the frames ORT can cover, final state {h0/c0: (layers, hidden)} or None)."""
    sess = session(name)
    chunk = ort_chunk_length(sess, name)
    if entry(name)["exporter"] == "torchscript":
        assert chunk is None, "TorchScript fixtures export a dynamic T"
        y, st = ort_sequence(sess, name, frames)
    elif not entry(name)["state"]:
        y, st = ort_sequence(sess, name, frames[:chunk])
    else:
        assert len(frames) % chunk == 0
        state, ys = None, []
        for k in range(0, len(frames), chunk):
            y, st = ort_sequence(sess, name, frames[k:k + chunk], state)
            ys.append(y)
            state = {"h0": st["hT"], **({"c0": st["cT"]} if "cT" in st else {})}
        y = np.concatenate(ys)
    final = {k: v[:, 0] for k, v in (("h0", st.get("hT")), ("c0", st.get("cT"))) if v is not None}
    return y, (final or None)


# ---------------------------------------------------------------- a. torch reference
@pytest.mark.parametrize("name", STREAMABLE)
def test_steps_match_torch(name):
    ref = reference(name)
    y, state = stepped(name)
    assert max_err(y, ref["y"]) <= TOL
    if entry(name)["state"]:
        want = {k for k in STATE_REF if STATE_REF[k] in ref}
        assert want <= set(state), sorted(state)
        for k in want:
            assert max_err(state[k], ref[STATE_REF[k]]) <= TOL, k
    else:
        assert not {"h0", "c0"} & set(state)


# ---------------------------------------------------------------- b. onnxruntime oracle
@pytest.mark.parametrize("name", STREAMABLE)
def test_steps_match_onnxruntime(name):
    frames = reference(name)["frames"]
    want_y, want_state = ort_oracle(name, frames)
    y, state = stepped(name)
    n = len(want_y)
    if entry(name)["exporter"] == "torchscript" or entry(name)["state"]:
        assert n == len(frames)
    assert max_err(y[:n], want_y) <= TOL
    if want_state is not None:
        for k, v in want_state.items():
            assert max_err(state[k], v) <= TOL, k


# ---------------------------------------------------------------- c. run == steps
@pytest.mark.parametrize("name", STREAMABLE)
def test_run_equals_steps(name):
    y_steps, state_steps = stepped(name)
    s = model(name).stream()
    y_run = _outs(s.run(reference(name)["frames"]))[0]
    assert max_err(y_run, y_steps) <= 1e-6
    for k, v in s.state.items():
        assert max_err(v, state_steps[k]) <= 1e-6, k


# ---------------------------------------------------------------- d. unrolled dynamo RNN
def test_unrolled_dynamo_rnn_is_refused():
    with pytest.raises(edgernn.UnsupportedModelError, match="(?i)dynamo"):
        edgernn.load(FIXTURES / UNROLLED)


# ---------------------------------------------------------------- e. batch streams
@pytest.mark.parametrize("name", ["lstm_l2_bf_state_lnrelu_ts.onnx", "gru_l2_tf_state_lnrelu_dy.onnx"])
def test_batch_equals_separate_streams(name):
    frames = reference(name)["frames"]
    seqs = [frames, frames[::-1].copy(),
            np.random.default_rng(7).standard_normal(frames.shape).astype(np.float32)]
    m = model(name)
    sb = m.stream(batch=3)
    y_batch = np.stack([_outs(sb.step(np.stack([q[t] for q in seqs])))[0] for t in range(len(frames))])
    assert y_batch.shape == (len(frames), 3) + m.outputs[0].frame_shape
    batch_state = sb.state
    for b, q in enumerate(seqs):
        s = m.stream()
        y = step_frames(s, q)
        assert max_err(y_batch[:, b], y) <= 1e-6, f"stream {b}"
        for k, v in s.state.items():
            assert max_err(batch_state[k][b], v) <= 1e-6, f"stream {b} state {k}"
    # the rows really are different sequences
    assert max_err(y_batch[:, 0], y_batch[:, 2]) > 1e-3


# ---------------------------------------------------------------- f. state snapshot / reset
@pytest.mark.parametrize("name", ["lstm_l3_bf_state_nohead_ts.onnx", "gru_l1_bf_lin_dy.onnx",
                                  "rnn_tanh_l2_tf_state_lnrelu_ts.onnx"])
def test_state_snapshot_and_reset(name):
    frames = reference(name)["frames"]
    s = model(name).stream()
    first = step_frames(s, frames[:50])
    snap = s.state
    a = step_frames(s, frames[50:100])
    after_a = s.state
    s.state = snap
    assert all(np.array_equal(v, snap[k]) for k, v in s.state.items())
    b = step_frames(s, frames[50:100])
    np.testing.assert_array_equal(a, b)
    for k, v in s.state.items():
        np.testing.assert_array_equal(v, after_a[k], err_msg=k)
    s.reset()
    again = step_frames(s, frames)
    y, _ = stepped(name)
    np.testing.assert_array_equal(again, y)
    np.testing.assert_array_equal(again[:50], first)


@pytest.mark.parametrize("how", [copy.copy, copy.deepcopy])
@pytest.mark.parametrize("batch", [None, 3])
def test_a_copied_stream_steps_on_its_own(how, batch):
    """copy.copy / copy.deepcopy of a stream: a new stream from the same state. Stepping the
    original leaves the copy's state alone, and the copy then gives the original's outputs
    bit for bit, and PyTorch's recorded ones within 1e-5."""
    name = "gru_l1_bf_lin_dy.onnx"
    frames = reference(name)["frames"]
    if batch:
        frames = np.repeat(frames[:, None], batch, axis=1)
    s = model(name).stream(batch=batch)
    step_frames(s, frames[:40])
    twin = how(s)
    before = twin.state
    rest_s = step_frames(s, frames[40:])
    for k, v in twin.state.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    rest_twin = step_frames(twin, frames[40:])
    np.testing.assert_array_equal(rest_twin, rest_s)
    y = reference(name)["y"][40:]
    want = y if batch is None else np.repeat(y[:, None], batch, axis=1)
    assert max_err(rest_twin, want) <= 1e-5


def test_a_step_outlives_its_stream():
    """``step = model.stream().step`` keeps working after the stream object is gone: the native
    step reads the stream's arrays by address, so the step function must keep them alive
    (freed and reused memory would give wrong outputs, or crash). Checked against PyTorch's
    recorded outputs, with allocations in between that would reuse freed memory."""
    name = "gru_l1_bf_lin_dy.onnx"
    frames = reference(name)["frames"]
    step = model(name).stream().step
    gc.collect()
    junk = [np.full(n, 7.0, np.float32) for n in range(1, 4000, 7)]
    y = np.stack([step(f) for f in frames])
    del junk
    assert max_err(y, reference(name)["y"]) <= 1e-5
    with pytest.raises(edgernn.FrameShapeError, match="must be float32"):
        step(frames[0].astype(np.float64))              # checked without the stream (tests/test_api.py)
    with pytest.raises(edgernn.StateError, match="no longer exists"):
        step(frames[0].astype(">f4"))                   # valid, but its conversion needs the stream
