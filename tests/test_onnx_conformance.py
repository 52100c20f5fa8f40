"""ONNX's own conformance cases for LSTM, GRU and RNN, streamed one frame at a time.

Oracle: the expected outputs shipped with the ``onnx`` package's backend node tests
(``onnx.backend.test.case.node``: test_lstm_*, test_gru_*, test_simple_rnn_*,
test_rnn_seq_length), i.e. ONNX's NumPy reference implementation of each op.

Every graph input except X is bound as an initializer (edgernn needs constant weights), X's
batch axis becomes B streams stepped together (``model.stream(batch=B)``) and its time axis is
fed one ``step`` per frame. Reverse / bidirectional cases need the whole sequence, so edgernn
must refuse them over time with UnsupportedModelError; as step graphs (the sequence inside
one call) they must give the expected outputs.
"""
import importlib

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import edgernn

PREFIXES = ("test_lstm", "test_gru", "test_simple_rnn", "test_rnn_seq_length")


def _collect():
    """The conformance cases, by name.

    ``collect_testcases()`` imports (and runs the exporters of) every ONNX op's test module,
    which takes seconds; the recurrent cases all live in the lstm/gru/rnn modules, whose import
    registers them in the same list ``collect_testcases`` returns. Fall back to the full
    collection if that internal list ever moves."""
    try:
        import onnx.backend.test.case.node as node_cases
        for mod in ("lstm", "gru", "rnn"):
            importlib.import_module(f"onnx.backend.test.case.node.{mod}")
        cases = list(node_cases._NodeTestCases)
    except (ImportError, AttributeError):  # pragma: no cover - depends on the onnx version
        cases = []
    if not any(c.name.startswith(PREFIXES) for c in cases):  # pragma: no cover
        from onnx.backend.test.case.node import collect_testcases
        cases = collect_testcases()
    return {c.name: c for c in cases if c.name.startswith(PREFIXES)}


CASES = _collect()
NAMES = sorted(CASES)
OUT_SLOT = {0: "Y", 1: "Y_h", 2: "Y_c"}


def _node(case):
    (node,) = case.model.graph.node
    return node


def _attr(case, name, default):
    for a in _node(case).attribute:
        if a.name == name:
            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def _direction(case):
    return _attr(case, "direction", "forward")


RUNNABLE = [n for n in NAMES if _direction(CASES[n]) == "forward"]
WHOLE_SEQUENCE = [n for n in NAMES if _direction(CASES[n]) != "forward"]


def test_cases_collected():
    assert len(NAMES) == 18, NAMES
    assert len(WHOLE_SEQUENCE) == 6, WHOLE_SEQUENCE


def _bind(case, arrays, output_shapes):
    """A copy of the case's model with every input but X an initializer.

    arrays: the values of all graph inputs (X first), in graph-input order; X's value only
    sets its declared shape. output_shapes: declared shape of each graph output."""
    m = onnx.ModelProto()
    m.CopyFrom(case.model)
    g = m.graph
    names = [i.name for i in g.input]
    for name, arr in zip(names[1:], arrays[1:]):
        g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
    x = helper.make_tensor_value_info(names[0], onnx.TensorProto.FLOAT, arrays[0].shape)
    outs = [helper.make_tensor_value_info(o.name, onnx.TensorProto.FLOAT, s)
            for o, s in zip(g.output, output_shapes)]
    del g.input[:]
    g.input.append(x)
    del g.output[:]
    g.output.extend(outs)
    onnx.checker.check_model(m)
    return m


def _per_stream(kind, arr, layout):
    """An expected output in stream coordinates: Y -> (T, B, 1, H); Y_h, Y_c -> (B, 1, H)."""
    if kind == "Y":
        return arr.transpose(0, 2, 1, 3) if layout == 0 else arr.transpose(1, 0, 2, 3)
    return arr.transpose(1, 0, 2) if layout == 0 else arr


def jobs(case):
    """[(model, X as (T, [B,] I), batch, {output name: expected in stream coordinates})].

    One job with batch=B, unless a bound initial state differs per batch row: edgernn's
    constant initial state is one for the whole batch, so then each row is its own model,
    streamed with batch=None."""
    inputs, outputs = case.data_sets[0]
    layout = _attr(case, "layout", 0)
    node = _node(case)
    present = [o for o in node.output]
    kinds = {name: OUT_SLOT[present.index(name)] for name in (o.name for o in case.model.graph.output)}
    names = [i.name for i in case.model.graph.input]
    by_name = dict(zip(names, inputs))
    X = inputs[0]
    b_axis = 1 if layout == 0 else 0
    B = X.shape[b_axis]
    x_stream = X if layout == 0 else X.transpose(1, 0, 2)          # (T, B, I)
    expected = {name: _per_stream(kinds[name], arr, layout)
                for name, arr in zip(kinds, outputs)}
    state_b_axis = 1 if layout == 0 else 0
    per_row = B > 1 and any(by_name.get(n) is not None and by_name[n].shape[state_b_axis] > 1
                            for n in node.input[5:7] if n)
    if not per_row:
        model = _bind(case, inputs, [o.shape for o in outputs])
        return [(model, x_stream, B, expected)]
    res = []
    for b in range(B):
        row = []
        for name, arr in zip(names, inputs):
            if name == names[0]:
                row.append(np.take(arr, [b], axis=b_axis))
            elif name in node.input[5:7]:
                row.append(np.take(arr, [b], axis=state_b_axis))
            elif name == node.input[4]:
                row.append(arr[b:b + 1])
            else:
                row.append(arr)
        out_shapes = []
        for n, o in zip(kinds, outputs):
            axis = (2 if layout == 0 else 0) if kinds[n] == "Y" else state_b_axis
            out_shapes.append(tuple(1 if a == axis else d for a, d in enumerate(o.shape)))
        model = _bind(case, row, out_shapes)
        exp = {n: (e[:, b] if kinds[n] == "Y" else e[b]) for n, e in expected.items()}
        res.append((model, x_stream[:, b], None, exp))
    return res


def step_all(model, x_stream, batch):
    """Step every frame; returns {output name: (T, [B,] *frame_shape)}."""
    s = model.stream(batch=batch)
    names = [o.name for o in model.outputs]
    got = {n: [] for n in names}
    for t in range(x_stream.shape[0]):
        y = s.step(np.ascontiguousarray(x_stream[t], dtype=np.float32))
        y = y if isinstance(y, tuple) else (y,)
        for n, a in zip(names, y):
            got[n].append(a)
    return {n: np.stack(v) for n, v in got.items()}


def _close(got, want, what):
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    if err > 1e-5:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=what)


@pytest.mark.parametrize("name", NAMES)
def test_conformance(name):
    case = CASES[name]
    if name in WHOLE_SEQUENCE:
        pytest.skip(f"needs the whole sequence (direction={_direction(case)})")
    for model, x_stream, batch, expected in jobs(case):
        m = edgernn.load(model)
        assert [o.name for o in m.outputs] == list(expected)
        got = step_all(m, x_stream, batch)
        for n, want in expected.items():
            if n == "Y":
                _close(got[n], want, f"{name}: {n}")
            else:   # Y_h / Y_c: the state after the last frame = that frame's step output
                _close(got[n][-1], want, f"{name}: {n}")


@pytest.mark.parametrize("name", WHOLE_SEQUENCE)
def test_whole_sequence_direction_is_refused_over_time(name):
    case = CASES[name]
    model = _bind(case, case.data_sets[0][0], [o.shape for o in case.data_sets[0][1]])
    with pytest.raises(edgernn.UnsupportedModelError, match="direction"):
        edgernn.load(model, step=False)


@pytest.mark.parametrize("name", WHOLE_SEQUENCE)
def test_whole_sequence_direction_runs_inside_one_step(name):
    """The same cases as step graphs (step=True): the op's whole sequence is inside the one
    call, run reverse or both ways (passes/unroll.py). One model per batch row (a stream is
    one sequence), its initial state rows bound with it."""
    case = CASES[name]
    inputs, outputs = case.data_sets[0]
    layout = _attr(case, "layout", 0)
    node = _node(case)
    names = [i.name for i in case.model.graph.input]
    per_row = {names[0]} | {n for n in node.input[5:7] if n}
    kinds = [OUT_SLOT[list(node.output).index(o.name)] for o in case.model.graph.output]
    x_b, state_b = (1, 1) if layout == 0 else (0, 0)
    y_b = 2 if layout == 0 else 0
    for b in range(inputs[0].shape[x_b]):
        row_in = [np.take(a, [b], axis=state_b if n != names[0] else x_b) if n in per_row else a
                  for a, n in zip(inputs, names)]
        row_out = [np.take(o, [b], axis=y_b if k == "Y" else state_b) for o, k in zip(outputs, kinds)]
        m = edgernn.load(_bind(case, row_in, [o.shape for o in row_out]), step=True)
        got = m.stream().step(row_in[0].reshape(m.inputs[0].frame_shape))
        got = got if isinstance(got, tuple) else (got,)
        for k, (g, want) in enumerate(zip(got, row_out)):
            _close(g, want.reshape(g.shape), f"{name}: batch row {b}, output {kinds[k]}")


@pytest.mark.parametrize("name", RUNNABLE)
def test_run_equals_steps(name):
    for model, x_stream, batch, _ in jobs(CASES[name]):
        m = edgernn.load(model)
        stepped = step_all(m, x_stream, batch)
        ran = m.stream(batch=batch).run(np.ascontiguousarray(x_stream, dtype=np.float32))
        ran = ran if isinstance(ran, tuple) else (ran,)
        for o, r in zip(m.outputs, ran):
            np.testing.assert_array_equal(r, stepped[o.name], err_msg=f"{name}: {o.name}")


@pytest.mark.parametrize("name", RUNNABLE)
def test_conformance_through_an_ernn_file(name, tmp_path):
    """The same cases converted to .ernn (float32): ONNX's expected outputs, and within 1e-6 of
    the model loaded from ONNX directly."""
    from edgernn.convert import convert
    for k, (model, x_stream, batch, expected) in enumerate(jobs(CASES[name])):
        m = convert(model, tmp_path / f"{k}.ernn")
        got = step_all(m, x_stream, batch)
        direct = step_all(edgernn.load(model), x_stream, batch)
        for n, want in expected.items():
            _close(got[n] if n == "Y" else got[n][-1], want, f"{name}: {n}")
            assert np.abs(got[n] - direct[n]).max() <= 1e-6
