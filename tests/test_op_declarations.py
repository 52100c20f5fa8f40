"""The op declarations (docs/adding-an-op.md): registry, row layouts, docs and importers agree;
Plan.validate checks what the declared extents say the kernel reads; an op can own state.

The running-sum op below is a complete op written the way docs/adding-an-op.md says (row
layout, kernel, infer, reference, emit, owned state), registered only while its tests run.
Its oracle is NumPy's cumsum.
"""
import re
from pathlib import Path

import numpy as np
import pytest

import edgernn
from edgernn import ops
from edgernn.config import jit
from edgernn.errors import UnsupportedModelError
from edgernn.ir.dims import Dim
from edgernn.ir.graph import Graph, Node, Value
from edgernn.model import Model
from edgernn.ops.row import LAYOUTS, WIDTH, Field, RowLayout, check_row, work

ROOT = Path(__file__).resolve().parents[1]
OPS_MD = (ROOT / "docs" / "ops.md").read_text()


def _table_names(heading):
    """First-column names of the markdown table under ``heading`` in docs/ops.md."""
    section = OPS_MD.split(heading, 1)[1]
    names = []
    for line in section.splitlines()[1:]:
        if line.startswith("# "):
            break
        m = re.match(r"\|\s*([^|]+?)\s*\|", line)
        if m and not set(m.group(1)) <= set("-") and m.group(1) not in ("op", "TFLite op", "IR op"):
            names += [n.strip() for n in m.group(1).split(",")]
    return names


def test_every_layout_has_a_kernel_and_fits_a_row():
    assert LAYOUTS, "no row layouts registered"
    for name, layout in LAYOUTS.items():
        assert layout.kernel_function is not None, f"layout {name} has no kernel"
        cols = sorted(c for c, n in layout.columns.values() for c in range(c, c + n))
        assert cols == list(range(1, len(cols) + 1)) and cols[-1] < WIDTH, name


def test_registry_and_docs_list_the_same_ir_ops():
    documented = set(_table_names("# IR ops"))
    registered = {n for n in ops.OPS if not n.startswith("test_")}
    assert documented == registered, (f"in docs/ops.md only: {sorted(documented - registered)}; "
                                      f"registered only: {sorted(registered - documented)}")


def test_importers_supported_lists_match_docs():
    from edgernn.formats import onnx as onnx_importer
    from edgernn.formats import tflite_ops
    assert set(_table_names("# ONNX op coverage")) == set(onnx_importer.SUPPORTED)
    assert set(_table_names("# TFLite op coverage")) == set(tflite_ops.SUPPORTED)


def test_ir_table_names_each_ops_row_layout():
    """The IR table's second column names the row layouts an op emits; each exists."""
    section = OPS_MD.split("# IR ops", 1)[1].split("\n# ", 1)[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0] in ops.OPS:
            for layout in re.findall(r"`([a-z_]+)`", cells[1]):
                assert layout in LAYOUTS, f"docs/ops.md: {cells[0]} names unknown layout {layout}"


# ---------------------------------------------------------------- validation reads the declarations
@pytest.fixture(scope="module")
def kws():
    return edgernn.load(ROOT / "examples" / "kws_lstm.onnx")


def _sizes(plan):
    return {"consts": plan.consts.size, "qconsts": plan.qconsts.size, "work": plan.work_size,
            "fparams": plan.fparams.size}


@pytest.mark.parametrize("field, forged", [("hidden", 4096), ("p", None), ("b", None), ("gates", None),
                                           ("inputs", 10 ** 6), ("r", None), ("acts", None)])
def test_a_forged_lstm_row_is_refused(kws, field, forged):
    """Each field pushed past its arena (by the declared length, not any tensor's size)."""
    from edgernn.ops.lstm import F
    plan = kws.plan
    i = next(k for k, name in enumerate(plan.row_layouts) if name.startswith("lstm"))
    ROW = LAYOUTS[plan.row_layouts[i]]
    row = plan.prog[i].copy()
    check_row(ROW, row, _sizes(plan), "row")                       # the real row passes
    arena = {"p": "consts", "b": "consts", "r": "consts", "gates": "work", "acts": "fparams"}.get(field)
    row[getattr(F, field)] = forged if forged is not None else _sizes(plan)[arena] - 1
    with pytest.raises(UnsupportedModelError, match="reaches"):
        check_row(ROW, row, _sizes(plan), "row")


def test_dense_row_extent_follows_the_rule_not_the_tensor(kws):
    """A dense bias must be n floats: a row whose b sits 1 float before the arena's end is refused."""
    from edgernn.ops.dense import F, ROW
    plan = kws.plan
    row = plan.prog[plan.row_layouts.index("dense")].copy()
    row[F.b] = plan.consts.size - 1
    with pytest.raises(UnsupportedModelError, match="field b"):
        check_row(ROW, row, _sizes(plan), "row")


# ---------------------------------------------------------------- an op that owns state
SUM_ROW = RowLayout("test_running_sum", [
    Field("x", "work offset of x [n]", work(lambda r: r.n, optional=False)),
    Field("y", "work offset of y [n]", work(lambda r: r.n, writes=True, optional=False)),
    Field("total", "work offset of the owned running total [n]", work(lambda r: r.n, writes=True, optional=False)),
    Field("n", "elements"),
])
S = SUM_ROW.fields


@SUM_ROW.kernel
@jit
def running_sum_kernel(row, fparams, consts, qconsts, work, seq):
    """y = total = total + x; in sequence mode row t starts from row t-1's total."""
    x, y, total, n = row[S.x], row[S.y], row[S.total], row[S.n]
    for s in range(work.shape[0]):
        for j in range(n):
            before = work[s - 1, total + j] if seq and s > 0 else work[s, total + j]
            work[s, total + j] = before + work[s, x + j]
            work[s, y + j] = work[s, total + j]


class RunningSum(ops.Op):
    name = "test_running_sum"
    foldable = False
    carries_state_in_sequence = True

    def infer(self, node):
        return [(node.inputs[0].shape, "float32")]

    def reference(self, node, x):
        raise NotImplementedError("stateful: the test's oracle is np.cumsum")

    def state(self, node):
        return [ops.OwnedState("total", node.inputs[0].concrete_shape, init=0.5)]

    def emit(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        ctx.row(node, SUM_ROW, x=ctx.work_off(x), y=ctx.work_off(y), total=ctx.state_off(node, "total"), n=x.size)


@pytest.fixture
def running_sum_model():
    ops.register(RunningSum)
    try:
        B = Dim(1, b=1)
        x, y = Value("x", shape=(B, 3)), Value("y", shape=(B, 3))
        yield Model(Graph(nodes=[Node("test_running_sum", "acc", [x], [y])], inputs=[x], outputs=[y]))
    finally:
        del ops.OPS["test_running_sum"]


def test_owned_state_steps_runs_resets_and_snapshots(running_sum_model):
    m = running_sum_model
    assert [t.name for t in m.states] == ["acc.total"] and m.plan.sequence_ok
    frames = np.random.default_rng(0).standard_normal((7, 3)).astype(np.float32)
    want = 0.5 + np.cumsum(frames.astype(np.float64), axis=0)
    s = m.stream()
    stepped = np.array([s.step(f).reshape(3) for f in frames])
    np.testing.assert_allclose(stepped, want, rtol=1e-6)
    snapshot = s.state
    np.testing.assert_allclose(snapshot["acc.total"].reshape(3), want[-1], rtol=1e-6)
    s.reset()
    ran = s.run(frames[:, None, :] if m.inputs[0].frame_shape == (1, 3) else frames)
    np.testing.assert_array_equal(np.asarray(ran).reshape(7, 3), stepped)     # chunk == steps
    s.state = snapshot
    np.testing.assert_allclose(s.step(frames[0]).reshape(3), want[-1] + frames[0], rtol=1e-6)
    batch = m.stream(batch=2)
    out = batch.step(np.stack([frames[0], 2 * frames[0]]))
    np.testing.assert_allclose(np.asarray(out).reshape(2, 3), 0.5 + np.stack([frames[0], 2 * frames[0]]), rtol=1e-6)
