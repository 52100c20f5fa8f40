"""Convolutions and pools along the time axis, streamed one frame at a time (passes/pulse.py).

Oracle: onnxruntime (one thread) running the whole sequence at once on small models built here
with onnx.helper (x [1, C, T] or [1, C, T, F], the time axis bound with ``time_axis``), and the
PyTorch models of ``exporters/make_time_conv_fixtures.py`` (onnxruntime on the exported file and
PyTorch's own output saved beside it). edgernn steps the sequence one frame at a time: the
outputs that are due (none for the first ``Model.delay`` frames), then ``Stream.flush()``, must
equal the offline sequence to 1e-5, frame for frame. Batches of streams, chunked ``run``,
reset and a second utterance, snapshots, the NumPy reference and ``.ernn`` files give the same.
"""
import copy
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import edgernn  # noqa: E402
from edgernn.errors import UnsupportedModelError  # noqa: E402
from compare import assert_close  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "onnx"

TOL = 1e-5
BIG = 2 ** 62


def _ints(name, xs):
    return numpy_helper.from_array(np.array(xs, np.int64), name)


def graph_model(nodes, inits, x_shape, outputs=("y",), opset=17):
    graph = helper.make_graph(nodes, "time_conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
                              initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def weights(name, shape, seed):
    return numpy_helper.from_array(np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32), name)


def conv1d(C=3, M=4, k=3, pads=(2, 0), dilation=1, group=1, stride=1):
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["y"], dilations=[dilation], pads=list(pads), group=group,
                              strides=[stride])]
    return graph_model(nodes, [weights("W", (M, C // group, k), 0), weights("B", (M,), 1)], [1, C, "T"])


def conv2d(C=2, M=3, kernel=(3, 3), pads=(1, 1, 1, 1), strides=(1, 1), F=6):
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"], pads=list(pads), strides=list(strides))]
    return graph_model(nodes, [weights("W", (M, C) + tuple(kernel), 2)], [1, C, "T", F])


def padded_conv(time_pads=(2, 0), freq_pads=(1, 1)):
    """Pad (zeros) along time and frequency, then an unpadded 2-D Conv (a torch F.pad + Conv)."""
    pads = [0, 0, time_pads[0], freq_pads[0], 0, 0, time_pads[1], freq_pads[1]]
    nodes = [helper.make_node("Pad", ["x", "p"], ["xp"]), helper.make_node("Conv", ["xp", "W"], ["y"], dilations=[2, 1])]
    return graph_model(nodes, [_ints("p", pads), weights("W", (3, 2, 2, 3), 3)], [1, 2, "T", 5])


def chomped_conv(first=0, last=2, pads=(2, 2)):
    """Conv with padding on both sides, then x[:, :, first:-last] along time (a torch chomp)."""
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=list(pads)),
             helper.make_node("Slice", ["c", "s", "e", "a"], ["y"])]
    return graph_model(nodes, [weights("W", (4, 3, 3), 4), _ints("s", [first]), _ints("e", [-last if last else BIG]),
                               _ints("a", [2])], [1, 3, "T"])


def residual_centred():
    """y = relu(centred conv(x)) + x: the skip path is delayed to meet the conv's look-ahead."""
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Add", ["r", "x"], ["y"])]
    return graph_model(nodes, [weights("W", (3, 3, 3), 5)], [1, 3, "T"])


def two_outputs():
    """A causal and a look-ahead conv of the same input: both outputs lag by the larger delay."""
    nodes = [helper.make_node("Conv", ["x", "W1"], ["y"], pads=[2, 0]),
             helper.make_node("Conv", ["x", "W2"], ["z"], pads=[2, 2], dilations=[2])]
    return graph_model(nodes, [weights("W1", (2, 3, 3), 6), weights("W2", (4, 3, 3), 7)], [1, 3, "T"],
                       outputs=("y", "z"))


def conv_transpose(C=3, M=4, kernel=(3,), pads=(0, 0), dilations=(1,), group=1, F=None):
    """A stride-1 ConvTranspose along time (a decoder's smoothing layer): streams as the Conv it equals."""
    spatial = ["T"] + ([F] if F else [])
    nodes = [helper.make_node("ConvTranspose", ["x", "W", "B"], ["y"], pads=list(pads), dilations=list(dilations),
                              group=group)]
    return graph_model(nodes, [weights("W", (C, M // group) + tuple(kernel), 10), weights("B", (M,), 11)],
                       [1, C] + spatial)


def two_strides():
    """A causal conv with stride 2, then an average pool of 2 with stride 2: one output every 4 frames."""
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[2, 0], strides=[2]),
             helper.make_node("AveragePool", ["c"], ["y"], kernel_shape=[2], strides=[2])]
    return graph_model(nodes, [weights("W", (4, 3, 3), 12)], [1, 3, "T"], opset=19)


def strided_then_centred():
    """A stride-2 causal conv, then a centred conv at the lower rate (its history shifts every 2nd frame)."""
    nodes = [helper.make_node("Conv", ["x", "W1"], ["c"], pads=[2, 0], strides=[2]),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("Conv", ["r", "W2"], ["y"], pads=[1, 1])]
    return graph_model(nodes, [weights("W1", (4, 3, 3), 13), weights("W2", (2, 4, 3), 14)], [1, 3, "T"])


def pool(op, **attrs):
    return graph_model([helper.make_node(op, ["x"], ["y"], **attrs)], [], [1, 3, "T"], opset=19)


def stacked():
    """Two convolutions along time, the second one's look-ahead on the first one's."""
    nodes = [helper.make_node("Conv", ["x", "W1"], ["a"], pads=[1, 1]), helper.make_node("Tanh", ["a"], ["t"]),
             helper.make_node("Conv", ["t", "W2"], ["y"], pads=[3, 1], dilations=[2])]
    return graph_model(nodes, [weights("W1", (5, 3, 3), 8), weights("W2", (2, 5, 3), 9)], [1, 3, "T"])


MODELS = {
    "causal": (conv1d, {}, 0, 0),
    "causal_dilated_groups": (conv1d, dict(C=4, M=6, pads=(4, 0), dilation=2, group=2), 0, 0),
    "centred": (conv1d, dict(pads=(1, 1)), 1, 1),
    "look_ahead_only": (conv1d, dict(k=4, pads=(0, 3)), 3, 3),
    "valid": (conv1d, dict(pads=(0, 0)), 2, 0),
    "both_sides_extra": (conv1d, dict(pads=(2, 2)), 0, 2),
    "conv2d_time_freq": (conv2d, {}, 1, 1),
    "conv2d_strided_freq": (conv2d, dict(kernel=(2, 3), pads=(1, 0, 0, 1), strides=(1, 2)), 0, 0),
    "pad_op_folded": (padded_conv, {}, 0, 0),
    "pad_op_look_ahead": (padded_conv, dict(time_pads=(1, 1)), 1, 1),
    "chomp": (chomped_conv, {}, 0, 0),
    "chomp_both_ends": (chomped_conv, dict(first=1, last=1), 1, 1),
    "residual_centred": (residual_centred, {}, 1, 1),
    "two_outputs": (two_outputs, {}, 2, 2),
    "stacked": (stacked, {}, 2, 2),
    "conv_transpose": (conv_transpose, {}, 0, 2),
    "conv_transpose_centred_dilated_groups": (conv_transpose, dict(C=4, M=6, pads=(2, 2), dilations=(2,), group=2),
                                              2, 2),
    "conv_transpose_2d": (conv_transpose, dict(kernel=(2, 3), pads=(1, 1, 0, 2), dilations=(1, 1), F=5), 1, 1),
    "strided_causal": (conv1d, dict(stride=2), 0, 0),
    "strided_centred": (conv1d, dict(stride=2, pads=(1, 1)), 1, 1),
    "strided_pointwise": (conv1d, dict(k=1, pads=(0, 0), stride=3), 0, 0),
    "avg_pool_strided": (pool, dict(op="AveragePool", kernel_shape=[2], strides=[2]), 1, 0),
    "max_pool_strided_3": (pool, dict(op="MaxPool", kernel_shape=[3], strides=[3]), 2, 0),
    "two_strides": (two_strides, {}, 2, 0),
    "strided_then_centred": (strided_then_centred, {}, 2, 2),
    "max_pool": (pool, dict(op="MaxPool", kernel_shape=[3]), 2, 0),
    "avg_pool_dilated": (pool, dict(op="AveragePool", kernel_shape=[2], dilations=[3]), 3, 0),
    "avg_pool_padded": (pool, dict(op="AveragePool", kernel_shape=[3], pads=[1, 1], count_include_pad=1), 1, 1),
}


def build(name):
    make, kw, _, _ = MODELS[name]
    return make(**kw)


def offline(model, x):
    """onnxruntime on the whole sequence x [T, *frame] (time at axis 2): [T', *frame_out] per output."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    outs = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(
        None, {"x": np.moveaxis(x, 0, 1)[None]})
    return [np.moveaxis(o[0], 1, 0) for o in outs]


def frames_for(model, n, seed=1, batch=()):
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    frame = tuple(dims[1:2] + dims[3:])
    return np.random.default_rng(seed).standard_normal((n,) + tuple(batch) + frame).astype(np.float32)


def streamed(stream, x):
    """Step every frame, keep the due outputs, then flush: [T', ...] per output."""
    got = [stream.step(f) for f in x]
    got = [g if isinstance(g, tuple) else (g,) for g in got if g is not None]
    tail = stream.flush()
    tail = tail if isinstance(tail, tuple) else (tail,)
    per_output = list(zip(*got)) if got else [[] for _ in tail]
    return [np.concatenate([np.stack(o) if len(o) else t[:0], t]) for o, t in zip(per_output, tail)]


STRIDES = {"strided_causal": 2, "strided_centred": 2, "strided_pointwise": 3, "avg_pool_strided": 2,
           "max_pool_strided_3": 3, "two_strides": 4, "strided_then_centred": 2}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_stream_equals_the_whole_sequence(name):
    model = build(name)
    m = edgernn.load(model, time_axis=2)
    assert (m.delay, m.flush_steps, m.output_stride) == MODELS[name][2:] + (STRIDES.get(name, 1),), name
    s = m.stream()
    for T in (40, 37, 5):                 # utterances of lengths every stride divides or not, and short ones
        x = frames_for(model, T, seed=T)
        s.reset()
        got = streamed(s, x)
        try:
            want = offline(model, x)
        except ort_errors() as e:        # onnxruntime refuses an input shorter than a kernel: no output
            assert all(len(g) == 0 for g in got), (name, T, str(e)[:100])
            continue
        for g, w in zip(got, want):
            assert_close(g.reshape(w.shape), w, TOL, f"{name}, {T} frames")


def ort_errors():
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument, RuntimeException
    return (Fail, InvalidArgument, RuntimeException)


def due_steps(m, n):
    """The steps among the first n after a reset that give outputs."""
    return [k for k in range(n) if k >= m.delay and (k - m.delay) % m.output_stride == 0]


@pytest.mark.parametrize("name", ["centred", "conv2d_time_freq", "residual_centred", "two_outputs", "max_pool",
                                  "strided_then_centred", "two_strides"])
def test_batches_chunks_reset_snapshot_and_reference(name):
    from edgernn.reference import ReferenceStream
    model = build(name)
    m = edgernn.load(model, time_axis=2)
    x = frames_for(model, 30, seed=2, batch=(3,))
    want = [offline(model, x[:, b]) for b in range(3)]
    s = m.stream(batch=3)
    for got_all in [streamed(s, x)]:
        for b in range(3):
            for got, w in zip(got_all, want[b]):
                assert_close(got[:, b].reshape(w.shape), w, TOL, f"{name} stream {b}")
    s.reset()                                         # a second utterance, in chunks
    parts = [s.run(x[:7]), s.run(x[7:8]), s.run(x[8:]), s.flush()]
    parts = [p if isinstance(p, tuple) else (p,) for p in parts]
    for k, w in enumerate(want[0]):
        got = np.concatenate([p[k] for p in parts])
        assert_close(got[:, 0].reshape(w.shape), w, TOL, f"{name} run")
    one = m.stream()
    for f in x[:12, 1]:
        one.step(f)
    twin = copy.copy(one)                              # a snapshot mid-utterance
    rest = [twin.step(f) for f in x[12:, 1]] + [None]
    tail = twin.flush()
    got = [r for r in rest if r is not None]
    first = lambda r: r[0] if isinstance(r, tuple) else r
    w = want[1][0][len(due_steps(m, 12)):]             # the offline frames the twin still owes
    assert_close(np.concatenate([np.stack([first(r) for r in got])] + ([first(tail)] if len(first(tail)) else []))
                 .reshape(w.shape), w, TOL, f"{name} snapshot")
    ref = ReferenceStream(m)                           # the NumPy reference of the rewritten graph
    ref_out = [ref.step(f) for f in x[:, 0]]
    due = due_steps(m, 30)
    assert_close(np.stack([first(ref_out[k]) for k in due]).reshape(want[0][0][:len(due)].shape),
                 want[0][0][:len(due)], TOL, f"{name} reference")


def test_ernn_round_trip_keeps_the_delay(tmp_path):
    from edgernn.convert import convert
    model = build("stacked")
    path = tmp_path / "stacked.onnx"
    onnx.save(model, str(path))
    convert(str(path), str(tmp_path / "stacked.ernn"), time_axis=2)
    m = edgernn.load(str(tmp_path / "stacked.ernn"))
    assert (m.delay, m.flush_steps) == (2, 2)
    x = frames_for(model, 25)
    assert_close(streamed(m.stream(), x)[0], offline(model, x)[0], TOL, ".ernn")
    info = m.describe()
    assert info["history_bytes_per_stream"] == 4 * (3 * 2 + 5 * 4)      # (w - 1) frames of C values per conv


def test_step_returns_none_until_the_first_output_is_due():
    m = edgernn.load(build("look_ahead_only"), time_axis=2)
    s = m.stream()
    x = frames_for(build("look_ahead_only"), 5)
    assert [s.step(f) is None for f in x] == [True, True, True, False, False]
    s.reset()
    assert s.step(x[0]) is None
    assert len(s.flush()) == 1                         # one frame in: one output, from the flush


TORCH = ["causal_conv_gru", "tcn_lstm", "centred_conv_lstm", "crnn_gru", "strided_conv_gru", "avgpool_gru"]
#: (delay, most flush steps, output stride)
TORCH_TIMING = {"causal_conv_gru": (0, 0, 1), "tcn_lstm": (0, 0, 1), "centred_conv_lstm": (2, 2, 1),
                "crnn_gru": (1, 1, 1), "strided_conv_gru": (2, 1, 2), "avgpool_gru": (3, 0, 4)}


@pytest.mark.parametrize("name", TORCH)
def test_torch_models_stream_like_onnxruntime_and_torch(name):
    path = FIXTURES / f"{name}_ts.onnx"
    data = np.load(FIXTURES / f"{name}.npz")
    x, torch_y = data["frames"], data["y"]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    want = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {"x": x[None]})[0][0]
    assert_close(torch_y, want, TOL, f"{name}: the file against torch")
    m = edgernn.load(str(path))
    assert (m.delay, m.flush_steps, m.output_stride) == TORCH_TIMING[name]
    s = m.stream()
    got = [s.step(f) for f in x]
    got = np.concatenate([np.stack([g for g in got if g is not None]), s.flush()])
    assert_close(got, want, TOL, name)
    b = m.stream(batch=2)
    both = np.stack([x, x[::-1]], axis=1)
    ran = np.concatenate([b.run(both), b.flush()])
    assert_close(ran[:, 0], want, TOL, f"{name} batch")


BAD = {
    "pad_wider_than_kernel": (lambda: conv1d(k=2, pads=(2, 0)), "more than its kernel spans"),
    "max_pool_padded_along_time": (lambda: pool("MaxPool", kernel_shape=[3], pads=[1, 1]), "count_include_pad"),
    "different_rates": (lambda: graph_model(
        [helper.make_node("Conv", ["x", "W"], ["c"], pads=[2, 0], strides=[2]),
         helper.make_node("Conv", ["x", "W"], ["d"], pads=[2, 0]), helper.make_node("Add", ["c", "d"], ["y"])],
        [weights("W", (3, 3, 3), 0)], [1, 3, "T"]), "different rates"),
    "phases_apart": (lambda: graph_model(
        [helper.make_node("Conv", ["x", "W"], ["c"], pads=[2, 0], strides=[2]),
         helper.make_node("Conv", ["x", "W"], ["d"], pads=[1, 1], strides=[2]), helper.make_node("Add", ["c", "d"], ["y"])],
        [weights("W", (3, 3, 3), 0)], [1, 3, "T"]), "not a multiple of their stride"),
    "conv_transpose_strided_over_time": (lambda: graph_model(
        [helper.make_node("ConvTranspose", ["x", "W"], ["y"], strides=[2])], [weights("W", (3, 2, 3), 0)],
        [1, 3, "T"]), "overlap-add"),
    "nonzero_pad_along_time": (lambda: graph_model(
        [helper.make_node("Pad", ["x", "p", "v"], ["xp"]), helper.make_node("Conv", ["xp", "W"], ["y"])],
        [_ints("p", [0, 0, 2, 0, 0, 0]), numpy_helper.from_array(np.array(1.0, np.float32), "v"),
         weights("W", (2, 3, 3), 0)], [1, 3, "T"]), "only zero padding"),
    "trim_past_the_end": (lambda: graph_model(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Slice", ["r", "s", "e", "a"], ["y"])],
        [_ints("s", [0]), _ints("e", [-1]), _ints("a", [2])], [1, 3, "T"]), "ends before the stream's does"),
    "pad_read_by_another_op": (lambda: graph_model(
        [helper.make_node("Pad", ["x", "p"], ["xp"]), helper.make_node("Relu", ["xp"], ["y"])],
        [_ints("p", [0, 0, 2, 0, 0, 0])], [1, 3, "T"]), "in front of a convolution"),
    "inputs_of_different_lengths": (lambda: graph_model(
        [helper.make_node("Conv", ["x", "W"], ["c"], pads=[2, 2]), helper.make_node("Conv", ["x", "W"], ["d"], pads=[2, 0]),
         helper.make_node("Add", ["c", "d"], ["y"])], [weights("W", (3, 3, 3), 0)], [1, 3, "T"]), "differ in length"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_what_stays_offline_is_a_typed_error(name):
    make, message = BAD[name]
    with pytest.raises(UnsupportedModelError, match=message):
        edgernn.load(make(), time_axis=2)


def test_cli_run_writes_the_whole_utterance_and_profile_compares_aligned(tmp_path, capsys):
    """`edgernn run` on a look-ahead model writes every offline frame (the due steps, then the
    flush), equal to onnxruntime; `edgernn info` shows the delay; the profiler's comparison with
    onnxruntime lines our frame t - delay up with its frame t."""
    from edgernn.cli import main
    from edgernn.profile import profile
    path = FIXTURES / "centred_conv_lstm_ts.onnx"
    x = np.load(FIXTURES / "centred_conv_lstm.npz")["frames"][:30]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    want = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {"x": x[None]})[0][0]
    np.save(tmp_path / "x.npy", x)
    for extra in ([], ["--chunk"]):
        assert main(["run", str(path), str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")] + extra) == 0
        assert_close(np.load(tmp_path / "y.npy"), want, TOL, f"edgernn run {extra}")
    assert main(["info", str(path)]) == 0
    assert "lag the input by 2 frame(s)" in capsys.readouterr().out
    result = profile(str(path), frames=300, compare=True, breakdown=False)
    chunked = [r for r in result.compare if r.get("max_abs_diff") is not None]
    assert chunked and max(r["max_abs_diff"] for r in chunked) <= TOL
