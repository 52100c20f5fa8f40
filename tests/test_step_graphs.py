"""Step graphs: files whose one call is one step, with the state as explicit inputs and
outputs, constant inputs bound at load (If on a sample rate), and the importer's report of
every unsupported op.

Oracle: onnxruntime running the same file one call per step, feeding each call's state
outputs back as the next call's state inputs (the way silero-vad's own code calls it).
Models are built here with onnx.helper (GRU cell step graphs, If on ``sr``, shape tests).
"""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgernn
from edgernn.errors import UnsupportedModelError, UnsupportedOpError

from compare import max_err

I, H, K = 6, 8, 3
STEPS = 40
TOL = 1e-5


def _f32(name, arr):
    return numpy_helper.from_array(np.asarray(arr, np.float32), name)


def _i64(name, values):
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def gru_step_nodes(prefix, rng, x="x", state="state", y="y", state_out="stateN"):
    """x [B, I], state [1, B, H] -> y [B, K] (Gemm of the new h), stateN [1, B, H]."""
    inits = [_f32(f"{prefix}W", 0.5 * rng.standard_normal((1, 3 * H, I))),
             _f32(f"{prefix}R", 0.5 * rng.standard_normal((1, 3 * H, H))),
             _f32(f"{prefix}B", 0.3 * rng.standard_normal((1, 6 * H))),
             _f32(f"{prefix}Wd", rng.standard_normal((K, H))), _f32(f"{prefix}bd", rng.standard_normal(K)),
             _i64(f"{prefix}ax0", [0])]
    nodes = [helper.make_node("Unsqueeze", [x, f"{prefix}ax0"], [f"{prefix}x3"]),
             helper.make_node("GRU", [f"{prefix}x3", f"{prefix}W", f"{prefix}R", f"{prefix}B", "", state],
                              [f"{prefix}Y", state_out], hidden_size=H, linear_before_reset=1),
             helper.make_node("Squeeze", [state_out, f"{prefix}ax0"], [f"{prefix}h"]),
             helper.make_node("Gemm", [f"{prefix}h", f"{prefix}Wd", f"{prefix}bd"], [y], transB=1)]
    return nodes, inits


def gru_step_model(names=("x", "state", "y", "stateN"), batch="batch"):
    x, state, y, state_out = names
    nodes, inits = gru_step_nodes("g_", np.random.default_rng(0), x, state, y, state_out)
    g = helper.make_graph(nodes, "gru_step",
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, [batch, I]),
                           helper.make_tensor_value_info(state, TensorProto.FLOAT, [1, batch, H])],
                          [helper.make_tensor_value_info(y, TensorProto.FLOAT, [batch, K]),
                           helper.make_tensor_value_info(state_out, TensorProto.FLOAT, [1, batch, H])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def sr_model():
    """x [B, I], state [1, B, H], sr (int64 scalar) -> y, stateN; If(sr == 16000) picks one of
    two GRU step graphs with different weights (as silero-vad picks its 16k or 8k model)."""
    rng = np.random.default_rng(1)
    branches = []
    for tag in ("k16", "k8"):
        nodes, inits = gru_step_nodes(f"{tag}_", rng, "x", "state", f"{tag}_y", f"{tag}_stateN")
        nodes = [helper.make_node("Constant", [], [i.name], value=i) for i in inits] + nodes
        branches.append(helper.make_graph(nodes, tag, [], [
            helper.make_tensor_value_info(f"{tag}_y", TensorProto.FLOAT, None),
            helper.make_tensor_value_info(f"{tag}_stateN", TensorProto.FLOAT, None)]))
    nodes = [helper.make_node("Equal", ["sr", "k16"], ["is16"]),
             helper.make_node("If", ["is16"], ["y", "stateN"], then_branch=branches[0], else_branch=branches[1])]
    g = helper.make_graph(nodes, "sr_step",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", I]),
                           helper.make_tensor_value_info("state", TensorProto.FLOAT, [1, "batch", H]),
                           helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", K]),
                           helper.make_tensor_value_info("stateN", TensorProto.FLOAT, [1, "batch", H])],
                          [_i64("k16", 16000)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def ort_steps(model, frames, state_pairs, extra=None):
    """Outputs of onnxruntime called once per frame, state outputs fed back."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    shapes = {i.name: [d.dim_value or 1 for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    state = {i: np.zeros(shapes[i], np.float32) for i in state_pairs}
    names = [o.name for o in sess.get_outputs()]
    outs = []
    for f in frames:
        res = dict(zip(names, sess.run(None, {"x": f[None], **state, **(extra or {})})))
        state = {i: res[o] for i, o in state_pairs.items()}
        outs.append([res[n] for n in names if n not in state_pairs.values()])
    return outs


def frames(n=STEPS, seed=3):
    return np.random.default_rng(seed).standard_normal((n, I)).astype(np.float32)


def test_gru_step_graph_pairs_state_and_matches_ort_step_by_step():
    model = gru_step_model()
    m = edgernn.load(model.SerializeToString())
    assert [t.name for t in m.states] == ["state"] and [t.name for t in m.inputs] == ["x"]
    assert m.inputs[0].frame_shape == (I,) and m.states[0].frame_shape == (1, H)
    xs = frames()
    want = ort_steps(model, xs, {"state": "stateN"})
    s = m.stream()
    for x, w in zip(xs, want):
        assert max_err(s.step(x), w[0][0]) < TOL
    s.reset()
    assert max_err(s.run(xs), np.stack([w[0][0] for w in want])) < TOL


def test_step_graph_batch_snapshot_and_reset():
    model = gru_step_model()
    m = edgernn.load(model.SerializeToString())
    streams = [frames(seed=k) for k in range(3)]
    want = [ort_steps(model, xs, {"state": "stateN"}) for xs in streams]
    s = m.stream(batch=3)
    got = np.stack([s.step(np.stack([xs[t] for xs in streams])) for t in range(STEPS)])
    for b in range(3):
        assert max_err(got[:, b], np.stack([w[0][0] for w in want[b]])) < TOL
    one = m.stream()
    for x in streams[0][:10]:
        one.step(x)
    saved = one.state
    first = [one.step(x) for x in streams[0][10:]]
    one.state = saved
    again = [one.step(x) for x in streams[0][10:]]
    assert max_err(np.stack(first), np.stack(again)) == 0.0


@pytest.mark.parametrize("names", [("input_3", "h_in", "out", "tf_op_layer_stack_2"),
                                   ("frame", "h", "logits", "hn")])
def test_state_pairing_by_shape_or_name(names):
    model = gru_step_model(names)
    m = edgernn.load(model.SerializeToString())
    assert [t.name for t in m.states] == [names[1]]
    want = ort_steps_named(model, names)
    s = m.stream()
    got = np.stack([s.step(x) for x in frames()])
    assert max_err(got, want) < TOL


def ort_steps_named(model, names):
    x, state, y, state_out = names
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    h = np.zeros((1, 1, H), np.float32)
    out = []
    for f in frames():
        yv, h = sess.run([y, state_out], {x: f[None], state: h})
        out.append(yv[0])
    return np.stack(out)


def test_if_on_a_bound_sample_rate_picks_the_branch_ort_picks():
    model = sr_model()
    xs = frames()
    for sr in (16000, 8000):
        m = edgernn.load(model.SerializeToString(), constants={"sr": sr})
        assert [t.name for t in m.inputs] == ["x"]
        want = ort_steps(model, xs, {"state": "stateN"}, {"sr": np.array(sr, np.int64)})
        s = m.stream()
        assert max_err(np.stack([s.step(x) for x in xs]), np.stack([w[0][0] for w in want])) < TOL


def test_unbound_setting_input_and_unknown_constant_are_typed_errors():
    model = sr_model().SerializeToString()
    with pytest.raises(UnsupportedModelError, match="constants="):
        edgernn.load(model)
    with pytest.raises(UnsupportedModelError, match="not inputs"):
        edgernn.load(model, constants={"sr": 16000, "rate": 1})
    with pytest.raises(UnsupportedModelError, match="not a int64"):
        edgernn.load(model, constants={"sr": "fast"})


def test_ambiguous_state_pairing_lists_candidates_and_states_resolves_it():
    """Two state inputs of the same shape whose outputs do not follow their names."""
    rng = np.random.default_rng(5)
    n1, i1 = gru_step_nodes("a_", rng, "x", "s1", "y1", "o1")
    n2, i2 = gru_step_nodes("b_", rng, "x", "s2", "y2", "o2")
    info = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
    g = helper.make_graph(n1 + n2, "two", [info("x", [1, I]), info("s1", [1, 1, H]), info("s2", [1, 1, H])],
                          [info("y1", [1, K]), info("o1", [1, 1, H]), info("y2", [1, K]), info("o2", [1, 1, H])],
                          i1 + i2)
    # a cross dependency makes o1 and o2 both candidates of both inputs
    g.node.append(helper.make_node("Add", ["o1", "o2"], ["mix"]))
    g.node.append(helper.make_node("Add", ["mix", "s1"], ["p1"]))
    g.node.append(helper.make_node("Add", ["mix", "s2"], ["p2"]))
    del g.output[:]
    g.output.extend([info("y1", [1, K]), info("p1", [1, 1, H]), info("y2", [1, K]), info("p2", [1, 1, H])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    with pytest.raises(UnsupportedModelError, match="states="):
        edgernn.load(model)
    m = edgernn.load(model, states={"s1": "p1", "s2": "p2"})
    assert sorted(t.name for t in m.states) == ["s1", "s2"]
    with pytest.raises(UnsupportedModelError, match="inputs are"):
        edgernn.load(model, states={"s1": "nope"})


def test_every_unsupported_op_is_listed_at_once():
    info = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
    nodes = [helper.make_node("Erf", ["x"], ["a"], name="e1"), helper.make_node("Erf", ["a"], ["b"], name="e2"),
             helper.make_node("Det", ["b"], ["c"], name="d1"), helper.make_node("Relu", ["c"], ["y"])]
    g = helper.make_graph(nodes, "bad", [info("x", [1, 4, 4])], [info("y", [1])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    with pytest.raises(UnsupportedOpError) as e:
        edgernn.load(model)
    msg = str(e.value)
    assert "Erf x2 (e1, e2)" in msg and "Det x1 (d1)" in msg


def test_unsupported_op_in_the_branch_not_taken_is_harmless():
    model = sr_model()
    bad = next(a.g for a in model.graph.node[1].attribute if a.name == "else_branch")    # 8 kHz
    bad.node.insert(0, helper.make_node("Erf", ["x"], ["unused"], name="e8k"))
    data = model.SerializeToString()
    edgernn.load(data, constants={"sr": 16000})
    with pytest.raises(UnsupportedOpError, match="Erf"):
        edgernn.load(data, constants={"sr": 8000})


def test_step_graph_with_open_sizes_asks_for_shapes():
    info = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "open", [info("x", ["b", "n"])],
                          [info("y", ["b", "n"])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    with pytest.raises(UnsupportedModelError, match="shapes="):
        edgernn.load(model, step=True)
    m = edgernn.load(model, shapes={"x": [5]})
    assert m.inputs[0].frame_shape == (5,)
    x = np.linspace(-1, 1, 5, dtype=np.float32)
    assert max_err(m.stream().step(x), np.maximum(x, 0)) == 0.0


# ------------------------------------------------------------ real torch exports
FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures" / "onnx"


def ort_conv_gru(path, frames):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    cache, h = np.zeros((1, 40, 2), np.float32), np.zeros((1, 1, 32), np.float32)
    out = []
    for f in frames:
        y, cache, h = sess.run(None, {"x": f[None], "conv_cache": cache, "h": h})
        out.append(y[0])
    return np.stack(out)


@pytest.mark.parametrize("tag", ["ts", "dy"])
def test_torch_conv_gru_step_graph_with_cache_tensors(tag, tmp_path):
    """exporters/make_step_fixtures.py: a Conv1d over a cache of past frames + GRU, one call
    per step, against PyTorch (recorded) and onnxruntime, alone and in a batch, and from
    its int8 .ernn."""
    path = FIXTURES / f"conv_gru_step_{tag}.onnx"
    data = np.load(FIXTURES / f"conv_gru_step_{tag}.npz")
    xs, torch_logits = data["frames"], data["logits"]
    want = ort_conv_gru(path, xs)
    assert max_err(want, torch_logits) < 1e-4
    m = edgernn.load(path)
    assert sorted(t.name for t in m.states) == ["conv_cache", "h"]
    s = m.stream()
    assert max_err(np.stack([s.step(x) for x in xs]), want) < TOL
    s.reset()
    assert max_err(s.run(xs), want) < TOL
    batch = m.stream(batch=2)
    got = np.stack([batch.step(np.stack([x, -x])) for x in xs])
    assert max_err(got[:, 0], want) < TOL
    assert max_err(got[:, 1], ort_conv_gru(path, -xs)) < TOL
    ernn = tmp_path / "step.ernn"
    from edgernn.convert import convert
    convert(path, ernn, weights="int8")
    q = edgernn.load(ernn).stream()
    got8 = np.stack([q.step(x) for x in xs])
    assert max_err(got8, want) < 0.05 * np.abs(want).max()


# ------------------------------------------------------------ recurrent ops inside the frame
BANDS, FEAT, HID = 7, 4, 5


def band_model(op, direction, layout=0, state=False):
    """x [B, BANDS, FEAT] -> a GRU/LSTM across the bands (direction, layout) -> Y, Y_h.
    With state=True the op's initial h is a graph input h [D, B, HID] and Y_h its output."""
    rng = np.random.default_rng(11)
    G = {"GRU": 3, "LSTM": 4}[op]
    D = 2 if direction == "bidirectional" else 1
    inits = [_f32("W", 0.6 * rng.standard_normal((D, G * HID, FEAT))),
             _f32("R", 0.6 * rng.standard_normal((D, G * HID, HID))),
             _f32("B", 0.3 * rng.standard_normal((D, 2 * G * HID)))]
    info = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
    perm = [1, 0, 2] if layout == 0 else [0, 1, 2]
    rec_in = ["xt", "W", "R", "B", "", "h" if state else ""]
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=perm),
             helper.make_node(op, rec_in, outs, hidden_size=HID, direction=direction, layout=layout,
                              **({"linear_before_reset": 1} if op == "GRU" else {}))]
    h_shape = [D, "batch", HID] if layout == 0 else ["batch", D, HID]
    y_shape = [BANDS, D, "batch", HID] if layout == 0 else ["batch", BANDS, D, HID]
    g = helper.make_graph(nodes, "bands", [info("x", ["batch", BANDS, FEAT])] + ([info("h", h_shape)] if state else []),
                          [info("Y", y_shape), info("Y_h", h_shape)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_a_forged_in_frame_sequence_length_is_a_typed_error_not_a_hang():
    """A GRU across an in-frame axis of 2^20 positions (a fuzzed file declared 2^63): one node per
    position would never finish building, so the unroll pass refuses it by name."""
    model = band_model("GRU", "bidirectional")
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 1 << 20
    with pytest.raises(UnsupportedModelError, match="unrolls at most"):
        edgernn.load(model.SerializeToString(), step=True)


@pytest.mark.parametrize("op,direction,layout", [("GRU", "bidirectional", 0), ("GRU", "reverse", 0),
                                                 ("LSTM", "bidirectional", 0), ("GRU", "forward", 1),
                                                 ("LSTM", "bidirectional", 1)])
def test_recurrent_op_across_an_axis_of_the_frame(op, direction, layout):
    """ONNX Runtime has no layout=1 kernels: layout 1 is checked against the same weights in
    layout 0 (per stream, the frames of Y and Y_h are the same arrays). step=True: a forward
    op over the fixed band axis could also be a sequence model whose exporter baked T = 7."""
    m = edgernn.load(band_model(op, direction, layout).SerializeToString(), step=True)
    oracle = band_model(op, direction, 0)
    sess = ort.InferenceSession(oracle.SerializeToString(), providers=["CPUExecutionProvider"])
    xs = np.random.default_rng(2).standard_normal((20, BANDS, FEAT)).astype(np.float32)
    s = m.stream()
    for x in xs:
        y, yh = s.step(x)
        want_y, want_h = sess.run(None, {"x": x[None]})
        assert max_err(y, want_y.reshape(y.shape)) < TOL
        assert max_err(yh, want_h.reshape(yh.shape)) < TOL


def test_bidirectional_gru_in_a_step_graph_with_state():
    """The op's final h is the next call's initial h (a step graph's state)."""
    model = band_model("GRU", "bidirectional", state=True)
    m = edgernn.load(model.SerializeToString())
    assert [t.name for t in m.states] == ["h"]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    h = np.zeros((2, 1, HID), np.float32)
    s = m.stream(batch=2)
    for x in np.random.default_rng(4).standard_normal((15, BANDS, FEAT)).astype(np.float32):
        y = s.step(np.stack([x, x]))
        want, h = sess.run(None, {"x": x[None], "h": h})
        assert max_err(y[0], want.reshape(y[0].shape)) < TOL and max_err(y[1], y[0]) == 0.0


def test_reverse_recurrent_op_over_time_is_still_refused():
    model = band_model("GRU", "reverse")
    with pytest.raises(UnsupportedModelError, match="whole sequence"):
        edgernn.load(model.SerializeToString(), time_axis=1)


def test_cli_info_and_convert_bind_the_sample_rate(tmp_path, capsys):
    """--constant and --state on the command line; convert stores the constant in the .ernn,
    whose program already has it folded in (it loads with no options)."""
    from edgernn.cli import main
    src = tmp_path / "sr.onnx"
    src.write_bytes(sr_model().SerializeToString())
    assert main(["info", str(src), "--constant", "sr=8000", "--state", "state=stateN"]) == 0
    out = capsys.readouterr().out
    assert "step graph" in out and "sr=8000" in out and "state -> stateN" in out
    ernn = tmp_path / "sr.ernn"
    assert main(["convert", str(src), "-o", str(ernn), "--constant", "sr=8000"]) == 0
    m = edgernn.load(ernn)
    assert m.describe()["file"]["metadata"]["model.constants.sr"] == 8000
    xs = frames()
    want = ort_steps(sr_model(), xs, {"state": "stateN"}, {"sr": np.array(8000, np.int64)})
    s = m.stream()
    assert max_err(np.stack([s.step(x) for x in xs]), np.stack([w[0][0] for w in want])) < TOL


def ort_band_gru(path, frames):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    h, out = np.zeros((1, 1, 16), np.float32), []
    for f in frames:
        y, h = sess.run(None, {"x": f[None], "h": h})
        out.append(y[0])
    return np.stack(out)


@pytest.mark.parametrize("tag", ["ts", "dy"])
def test_torch_bidirectional_gru_across_bands_in_a_step_graph(tag, tmp_path):
    """exporters/make_step_fixtures.py: a bidirectional GRU over the frame's 8 bands feeding a
    GRU step over time, against PyTorch (recorded) and onnxruntime, alone, in a batch, and
    from its int8 .ernn."""
    path = FIXTURES / f"band_gru_step_{tag}.onnx"
    data = np.load(FIXTURES / f"band_gru_step_{tag}.npz")
    xs = data["frames"]
    want = ort_band_gru(path, xs)
    assert max_err(want, data["y"]) < 1e-5
    m = edgernn.load(path)
    assert [t.name for t in m.states] == ["h"] and m.inputs[0].frame_shape == (8, 4)
    s = m.stream()
    assert max_err(np.stack([s.step(x) for x in xs]), want) < TOL
    batch = m.stream(batch=2)
    got = np.stack([batch.step(np.stack([x, x[::-1]])) for x in xs])
    assert max_err(got[:, 0], want) < TOL
    assert max_err(got[:, 1], ort_band_gru(path, xs[:, ::-1].copy())) < TOL
    from edgernn.convert import convert
    ernn = tmp_path / "band.ernn"
    convert(path, ernn, weights="int8")
    q = edgernn.load(ernn).stream()
    assert max_err(np.stack([q.step(x) for x in xs]), want) < 0.05 * np.abs(want).max()


def test_step_graph_ernn_runs_without_onnx(tmp_path):
    """The device side: a step graph's .ernn loads and steps in a process that never imports
    onnx (nor onnxruntime)."""
    import subprocess
    import sys
    from edgernn.convert import convert
    ernn = tmp_path / "conv_gru.ernn"
    convert(FIXTURES / "conv_gru_step_ts.onnx", ernn, weights="int8")
    code = ("import sys, numpy as np, edgernn\n"
            f"m = edgernn.load({str(ernn)!r})\n"
            "s = m.stream(); [s.step(np.ones((1, 40), np.float32)) for _ in range(3)]\n"
            "print(sorted(k for k in ('onnx', 'onnxruntime') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_profile_compares_a_step_graph_with_onnxruntime(tmp_path):
    """edgernn.profile on a step graph with a bound sample rate: ONNX Runtime runs with the
    same constant and its state fed back, and agrees with edgernn's outputs."""
    src = tmp_path / "sr.onnx"
    src.write_bytes(sr_model().SerializeToString())
    r = edgernn.profile(str(src), frames=300, warmup=20, compare=True, breakdown=False,
                        load_options={"constants": {"sr": 8000}})
    ort_row = next(c for c in r.compare if c["runtime"] == "onnxruntime" and "skipped" not in c)
    assert ort_row["state_carried"] and ort_row["max_abs_diff"] < TOL, ort_row.get("mode")


def test_short_state_names_are_not_matched_inside_other_names():
    from edgernn.passes.step_graph import _names_match
    assert _names_match("h", "hn") and _names_match("state", "stateN") and _names_match("conv_cache", "conv_cache_out")
    assert _names_match("cache", "new_cache_1")
    assert not _names_match("c", "conv_cache_out") and not _names_match("h", "h")
