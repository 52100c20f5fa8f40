"""PyTorch -> streaming ONNX (exporters/torch_onnx.py): round trips and the self-check.

Oracle: the PyTorch module itself, run in the test on frames the test generates, as ONE
sequence from zero state. edgernn streams the exported file one Stream.step per frame and
must agree to 1e-5 (scaled: max abs error / max(1, max |torch|)). ONNX Runtime running the
whole sequence in one call checks that the time axis really is dynamic. Needs torch (skipped
without it; CI installs it).
"""
import os
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the PyTorch exporter tests need torch (pip install torch)")
onnx = pytest.importorskip("onnx", reason="the exporter tests need onnx")
from torch import nn  # noqa: E402

import edgernn  # noqa: E402
from exporters import ExportCheckError, ExportError, export_onnx  # noqa: E402
from exporters.check import scaled_error  # noqa: E402
from exporters.torch_onnx import check_export  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FEATURES, HIDDEN, CLASSES, FRAMES = 7, 11, 4, 40
TOL = 1e-5
RNN = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn_tanh": nn.RNN, "rnn_relu": nn.RNN}


def make_head(head):
    if head == "linear":
        return nn.Linear(HIDDEN, CLASSES)
    if head == "ln_relu_linear":
        return nn.Sequential(nn.LayerNorm(HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, CLASSES))
    return nn.Identity()


def make_rnn(kind, layers, batch_first):
    extra = {"nonlinearity": kind[4:]} if kind.startswith("rnn") else {}
    return RNN[kind](FEATURES, HIDDEN, num_layers=layers, batch_first=batch_first, **extra)


class Plain(nn.Module):
    """Calls its recurrent layer without a state: the exporter adds state I/O with hooks."""

    def __init__(self, kind, layers, batch_first, head):
        super().__init__()
        self.rnn = make_rnn(kind, layers, batch_first)
        self.head = make_head(head)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y)


class PassesState(nn.Module):
    """forward(x, h0[, c0]) -> (y, hT[, cT]): the module threads its own state."""

    def __init__(self, kind, layers, batch_first, head):
        super().__init__()
        self.lstm = kind == "lstm"
        self.rnn = make_rnn(kind, layers, batch_first)
        self.head = make_head(head)

    def forward(self, x, h0, c0=None):
        if self.lstm:
            y, (h, c) = self.rnn(x, (h0, c0))
            return self.head(y), h, c
        y, h = self.rnn(x, h0)
        return self.head(y), h


class PassesStateLSTM(PassesState):
    def forward(self, x, h0, c0):     # exactly two state arguments, so state='auto' picks forward
        return super().forward(x, h0, c0)


class PassesStateGRU(PassesState):
    def forward(self, x, h0):
        return super().forward(x, h0)


class TwoRecurrent(nn.Module):
    """GRU -> ReLU(Linear) -> LSTM -> Linear: two recurrent layers, each with its own state."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(FEATURES, HIDDEN, batch_first=True)
        self.mid = nn.Linear(HIDDEN, HIDDEN)
        self.lstm = nn.LSTM(HIDDEN, HIDDEN, num_layers=2, batch_first=True)
        self.out = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x):
        y, _ = self.gru(x)
        y, _ = self.lstm(torch.relu(self.mid(y)))
        return self.out(y)


FORMS = [  # (kind, layers, batch_first, head, state)
    ("lstm", 1, True, "linear", "hooks"),
    ("lstm", 2, False, "ln_relu_linear", "hooks"),
    ("lstm", 2, True, "ln_relu_linear", "forward"),
    ("lstm", 3, False, "none", "forward"),
    ("gru", 1, False, "linear", "hooks"),
    ("gru", 2, True, "ln_relu_linear", "hooks"),
    ("gru", 2, False, "linear", "forward"),
    ("gru", 1, True, "none", "forward"),
    ("rnn_tanh", 1, True, "linear", "hooks"),
    ("rnn_tanh", 2, False, "ln_relu_linear", "forward"),
    ("rnn_relu", 2, True, "ln_relu_linear", "hooks"),
    ("rnn_relu", 1, False, "linear", "forward"),
]


def build(kind, layers, batch_first, head, state):
    torch.manual_seed(zlib.crc32(repr((kind, layers, batch_first, head, state)).encode()))
    if state == "hooks":
        return Plain(kind, layers, batch_first, head).eval()
    cls = PassesStateLSTM if kind == "lstm" else PassesStateGRU
    return cls(kind, layers, batch_first, head).eval()


def torch_sequence(module, frames, batch_first, states):
    """Torch's per-frame outputs (T, ...) and final states [(layers, hidden)] for one sequence."""
    x = torch.from_numpy(frames)[None] if batch_first else torch.from_numpy(frames)[:, None]
    with torch.no_grad():
        out = module(x, *[torch.zeros(s) for s in states])
    out = out if isinstance(out, tuple) else (out,)
    y = out[0].numpy()
    return (y[0] if batch_first else y[:, 0]), [o.numpy()[:, 0] for o in out[1:]]


def stream(path, frames):
    s = edgernn.load(path).stream()
    ys = np.stack([s.step(f) for f in frames])
    return ys, s.state


def frames_for(seed):
    return np.random.default_rng(seed).standard_normal((FRAMES, FEATURES)).astype(np.float32)


@pytest.mark.parametrize("form", FORMS, ids=["-".join(map(str, f)) for f in FORMS])
def test_round_trip_agrees_with_torch(form, tmp_path):
    kind, layers, batch_first, head, state = form
    module = build(*form)
    path = tmp_path / "m.onnx"
    report = export_onnx(module, path, FEATURES)
    assert report.signature.state_mode == state
    assert report.check.worst("edgernn") <= TOL

    names = [("h0", "hT")] + ([("c0", "cT")] if kind == "lstm" else [])
    m = onnx.load(str(path))
    assert [i.name for i in m.graph.input] == ["x"] + [a for a, _ in names]
    assert [o.name for o in m.graph.output] == ["y"] + [b for _, b in names]
    t_axis = 1 if batch_first else 0
    assert m.graph.input[0].type.tensor_type.shape.dim[t_axis].dim_param == "T"

    frames = frames_for(7)
    shapes = [(layers, 1, HIDDEN)] * len(names) if state == "forward" else []
    want_y, want_states = torch_sequence(module, frames, batch_first, shapes)
    if state == "hooks":   # the plain module returns no state: take it from the torch layer itself
        x = torch.from_numpy(frames)[None] if batch_first else torch.from_numpy(frames)[:, None]
        with torch.no_grad():
            _, st = module.rnn(x)
        want_states = [t.numpy()[:, 0] for t in (st if isinstance(st, tuple) else (st,))]
    got_y, got_state = stream(path, frames)
    assert scaled_error(got_y, want_y) <= TOL
    for (name, _), want in zip(names, want_states):
        assert scaled_error(got_state[name], want) <= TOL, name


@pytest.mark.parametrize("form", [FORMS[1], FORMS[6], FORMS[10]], ids=["lstm", "gru", "rnn"])
def test_onnxruntime_takes_any_length(form, tmp_path):
    """The time axis stays dynamic: ORT runs the whole sequence in one call and matches torch."""
    ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime")
    kind, layers, batch_first, head, state = form
    module = build(*form)
    path = tmp_path / "m.onnx"
    export_onnx(module, path, FEATURES)
    frames = frames_for(3)
    x = frames[None] if batch_first else frames[:, None]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"x": x, **{i.name: np.zeros((layers, 1, HIDDEN), np.float32) for i in sess.get_inputs()[1:]}}
    y = sess.run(None, feeds)[0]
    shapes = [(layers, 1, HIDDEN)] * (len(sess.get_inputs()) - 1) if state == "forward" else []
    want_y, _ = torch_sequence(module, frames, batch_first, shapes)
    assert scaled_error(y[0] if batch_first else y[:, 0], want_y) <= TOL


def test_two_recurrent_layers_get_numbered_states(tmp_path):
    torch.manual_seed(5)
    module = TwoRecurrent().eval()
    path = tmp_path / "m.onnx"
    report = export_onnx(module, path, FEATURES, output_names=["logits"])
    assert [(s.input_name, s.output_name) for s in report.signature.states] == [
        ("h0_0", "hT_0"), ("h0_1", "hT_1"), ("c0_1", "cT_1")]
    frames = frames_for(11)
    with torch.no_grad():
        want = module(torch.from_numpy(frames)[None])[0].numpy()
    got, state = stream(path, frames)
    assert scaled_error(got, want) <= TOL
    assert set(state) == {"h0_0", "h0_1", "c0_1"}


def test_training_mode_is_restored_and_check_runs_in_eval(tmp_path):
    torch.manual_seed(2)
    module = Plain("gru", 2, True, "linear")
    module.rnn.dropout = 0.5          # would make train-mode outputs random
    module.train()
    export_onnx(module, tmp_path / "m.onnx", FEATURES)
    assert module.training


# ---------------------------------------------------------------- the self-check fails loudly
def test_self_check_catches_a_corrupted_weight(tmp_path):
    module = build("lstm", 2, True, "ln_relu_linear", "hooks")
    path = tmp_path / "m.onnx"
    report = export_onnx(module, path, FEATURES)
    m = onnx.load(str(path))
    from onnx import numpy_helper
    big = max(m.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    w = numpy_helper.to_array(big).copy()
    w.flat[0] += 0.05
    big.CopyFrom(numpy_helper.from_array(w, big.name))
    onnx.save(m, str(path))
    with pytest.raises(ExportCheckError, match=r"(?s)disagrees with the source model.*do not deploy"):
        check_export(module, path, report.signature)


# ---------------------------------------------------------------- what cannot stream
def test_bidirectional_is_refused(tmp_path):
    module = Plain("gru", 1, False, "none")
    module.rnn = nn.GRU(FEATURES, HIDDEN, bidirectional=True)
    with pytest.raises(ExportError, match="bidirectional"):
        export_onnx(module, tmp_path / "m.onnx", FEATURES)


def test_layer_called_twice_is_refused(tmp_path):
    class Twice(Plain):
        def forward(self, x):
            y, _ = self.rnn(x)
            y, _ = self.rnn(y[..., :FEATURES])
            return y

    with pytest.raises(ExportError, match="more than once"):
        export_onnx(Twice("gru", 1, True, "none").eval(), tmp_path / "m.onnx", FEATURES)


def test_forward_state_needs_the_state_arguments(tmp_path):
    with pytest.raises(ExportError, match="state='hooks'"):
        export_onnx(Plain("lstm", 1, True, "linear").eval(), tmp_path / "m.onnx", FEATURES, state="forward")


# ---------------------------------------------------------------- command line
def test_cli_exports_and_checks(tmp_path):
    (tmp_path / "my_models.py").write_text(textwrap.dedent(f"""
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM({FEATURES}, {HIDDEN}, batch_first=True)
                self.out = nn.Linear({HIDDEN}, {CLASSES})

            def forward(self, x):
                return self.out(self.lstm(x)[0])

        def build():
            torch.manual_seed(0)
            return Net()
    """))
    out = tmp_path / "net.onnx"
    r = subprocess.run([sys.executable, "-m", "exporters", "torch-onnx", "my_models:build", "-o", str(out),
                        "--frame-shape", str(FEATURES)], capture_output=True, text=True, timeout=300,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "self-check" in r.stdout and "edgernn max scaled error" in r.stdout
    assert edgernn.load(out).inputs[0].frame_shape == (FEATURES,)
    bad = subprocess.run([sys.executable, "-m", "exporters", "torch-onnx", "no_colon", "-o", str(out),
                          "--frame-shape", "3"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert bad.returncode == 2 and "package.module:name" in bad.stderr


# ---------------------------------------------------------------- straight to .ernn
@pytest.mark.parametrize("weights", ["float32", "float16", "int8"])
@pytest.mark.parametrize("form", [FORMS[1], FORMS[5], FORMS[9]], ids=lambda f: "-".join(map(str, f)))
def test_export_ernn_torch_streams_like_torch(form, weights, tmp_path):
    """nn.Module -> .ernn: the exporter's own check passes, and the test's own torch run of one
    sequence agrees with the file streamed step by step within the weight type's tolerance."""
    from exporters.ernn_export import TOLERANCE, export_ernn_torch
    kind, layers, batch_first, head, state = form
    module = build(*form)
    path = tmp_path / "m.ernn"
    report = export_ernn_torch(module, path, FEATURES, weights=weights, labels=[f"c{k}" for k in range(CLASSES)]
                               if head != "none" else None, description="test")
    assert report.worst() <= TOLERANCE[weights]
    m = edgernn.load(path)
    assert m.metadata["quant.weights"] == weights and m.file.zero_copy == (weights != "float16")
    frames = frames_for(11)
    y_torch, _ = torch_sequence(module, frames, batch_first,
                                [(layers, 1, HIDDEN)] * (2 if kind == "lstm" and state == "forward" else
                                                         1 if state == "forward" else 0))
    y, _ = stream(path, frames)
    assert scaled_error(y, y_torch.reshape(y.shape)) <= TOLERANCE[weights]
