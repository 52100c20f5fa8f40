"""PyTorch ``nn.Module`` -> streaming-ready ONNX, checked against edgernn before it is returned.

Supported modules: any module whose recurrent layers are ``nn.LSTM``, ``nn.GRU`` or ``nn.RNN``
(unidirectional, no LSTM ``proj_size``), with per-frame layers around them (``nn.Linear``,
``nn.LayerNorm``, ``nn.ReLU``, element-wise arithmetic such as input normalisation ...). The
module's input is one tensor ``x`` of shape ``(B, T, *frame_shape)`` (``batch_first``) or
``(T, B, *frame_shape)``; each output keeps the same two leading axes.

What the file looks like (why: docs/exporters.md):

* written by the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``) at opset 18,
  with a dynamic time axis ``T`` on the input and every output. The dynamo exporter of
  torch 2.13 bakes the example's T into the graph (ONNX Runtime then refuses other lengths)
  and unrolls ``nn.RNN`` into one cell per example frame, so its files cannot stream;
* explicit state: every recurrent layer's initial state is a graph input (``h0`` / ``c0``,
  shape ``(num_layers, B, hidden)``) and its final state a graph output (``hT`` / ``cT``).
  A stateless runtime (ONNX Runtime) streams such a file one frame per call by feeding each
  call's ``hT`` into the next call's ``h0``; edgernn pairs them and keeps the state inside
  its ``Stream``. With several recurrent layers the names get an index: ``h0_1``, ``hT_1``.

How the state gets into the graph (``state=``):

* ``"forward"``: the module already passes state through ``forward(x, h0[, c0] ...)`` and
  returns ``(*outputs, *final_states)``; one state argument per state tensor, in the order of
  the recurrent layers (h before c). Its argument names become the graph input names.
* ``"hooks"``: the module calls its recurrent layers without a state (``self.rnn(x)``); the
  exporter wraps it so each recurrent layer takes its initial state from a new graph input
  and its final state becomes a new graph output (forward hooks, so the module's own code is
  unchanged). Each recurrent layer must run exactly once per forward.
* ``"auto"`` (default): ``"forward"`` when ``forward`` has exactly as many parameters after
  ``x`` as there are state tensors, otherwise ``"hooks"``.
"""
from __future__ import annotations

import contextlib
import inspect
import io
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .check import DEFAULT_TOLERANCE, CheckReport, check_edgernn, check_onnxruntime

OPSET = 18
EXPORT_FRAMES = 5           # T of the example input traced by the exporter (T stays dynamic)
CHECK_FRAMES = 64
CHECK_SEED = 0


class ExportError(ValueError):
    """The module cannot be exported as a streaming model; the message says why and what to do."""


@dataclass(frozen=True)
class StateTensor:
    """One state tensor of the exported graph: initial value in, final value out."""
    input_name: str
    output_name: str
    shape: tuple            # (num_layers, batch=1, hidden), torch's layout for h and c


@dataclass(frozen=True)
class StreamingSignature:
    """The graph's interface: x -> outputs, plus state pairs (see the module docstring)."""
    input_name: str
    frame_shape: tuple
    batch_first: bool
    output_names: tuple
    states: tuple           # of StateTensor
    state_mode: str         # "forward" | "hooks"

    def example_input(self, frames: np.ndarray):
        """(T, *frame_shape) numpy frames -> a batch-1 torch tensor in the module's layout."""
        import torch
        x = torch.from_numpy(np.ascontiguousarray(frames, np.float32))
        return x[None] if self.batch_first else x[:, None]

    def zero_states(self):
        import torch
        return [torch.zeros(s.shape) for s in self.states]


@dataclass
class ExportReport:
    path: Path
    signature: StreamingSignature
    opset: int
    check: CheckReport

    def __str__(self) -> str:
        sig = self.signature
        states = ", ".join(f"{s.input_name}->{s.output_name} {s.shape}" for s in sig.states)
        axes = ("B", "T") if sig.batch_first else ("T", "B")
        x_shape = "(" + ", ".join([*axes, *map(str, sig.frame_shape)]) + ")"
        return (f"wrote {self.path} (opset {self.opset}, {self.path.stat().st_size:,} bytes): "
                f"{sig.input_name} {x_shape} -> {', '.join(sig.output_names)}; state "
                f"({sig.state_mode}): {states}\n{self.check.summary()}")


# ---------------------------------------------------------------- inspecting the module
def recurrent_layers(module) -> list:
    """[(qualified name, layer)] of every nn.LSTM/GRU/RNN in registration order, checked to be
    streamable."""
    from torch import nn

    layers = [(name, m) for name, m in module.named_modules() if isinstance(m, (nn.LSTM, nn.GRU, nn.RNN))]
    if not layers:
        raise ExportError("the module has no nn.LSTM, nn.GRU or nn.RNN layer; edgernn streams "
                          "recurrent models (export other models with torch.onnx.export directly)")
    for name, m in layers:
        if m.bidirectional:
            raise ExportError(f"recurrent layer '{name}' is bidirectional: its backward direction needs "
                              "the whole sequence before the first output, so it cannot stream")
        if getattr(m, "proj_size", 0):
            raise ExportError(f"LSTM '{name}' has proj_size={m.proj_size}; the ONNX LSTM op has no "
                              "projection, so export without proj_size")
    return layers


def _state_count(layer) -> int:
    from torch import nn
    return 2 if isinstance(layer, nn.LSTM) else 1


def _state_shape(layer) -> tuple:
    return (layer.num_layers, 1, layer.hidden_size)


def _forward_state_params(module) -> list:
    """Names of forward's parameters after x (positional, not *args/**kwargs)."""
    params = list(inspect.signature(module.forward).parameters.values())
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in params[1:] if p.kind in kinds]


def _final_name(name: str) -> str:
    """State output name for a state input name: h0 -> hT, h0_1 -> hT_1, hidden -> hidden_out."""
    m = re.fullmatch(r"(.+?)0(_\d+)?", name)
    return f"{m.group(1)}T{m.group(2) or ''}" if m else f"{name}_out"


def streaming_signature(module, frame_shape, state: str = "auto", batch_first: bool | None = None,
                        input_name: str = "x", output_names=None) -> StreamingSignature:
    """Work out how ``module`` streams: its layout, state tensors and graph names.

    frame_shape: per-frame input shape (an int for a feature vector). batch_first: the layout of
    x; default: that of the first recurrent layer."""
    layers = recurrent_layers(module)
    frame_shape = (int(frame_shape),) if np.isscalar(frame_shape) else tuple(int(d) for d in frame_shape)
    if batch_first is None:
        batch_first = bool(layers[0][1].batch_first)
    shapes = [_state_shape(m) for _, m in layers for _ in range(_state_count(m))]
    extra = _forward_state_params(module)
    if state == "auto":
        state = "forward" if len(extra) == len(shapes) else "hooks"
    if state == "forward":
        if len(extra) < len(shapes):
            raise ExportError(
                f"state='forward' needs forward(x, <{len(shapes)} state tensors>) for the recurrent "
                f"layers {[n for n, _ in layers]}; forward takes {['x'] + extra}. Use state='hooks' "
                "when the module calls its recurrent layers without a state")
        in_names = extra[:len(shapes)]
    elif state == "hooks":
        many = len(layers) > 1
        in_names = [f"{k}0" + (f"_{i}" if many else "")
                    for i, (_, m) in enumerate(layers) for k in ("h", "c")[:_state_count(m)]]
    else:
        raise ExportError(f"state must be 'auto', 'forward' or 'hooks', not {state!r}")
    states = tuple(StateTensor(n, _final_name(n), s) for n, s in zip(in_names, shapes))

    sig = StreamingSignature(input_name, frame_shape, batch_first, (), states, state)
    outs = run_module(module, sig, np.zeros((EXPORT_FRAMES,) + frame_shape, np.float32))[0]
    if output_names is None:
        output_names = ("y",) if len(outs) == 1 else tuple(f"y{i}" for i in range(len(outs)))
    output_names = tuple(output_names)
    if len(output_names) != len(outs):
        raise ExportError(f"the module returns {len(outs)} output(s) besides its state; "
                          f"got {len(output_names)} output names {list(output_names)}")
    names = [input_name, *output_names, *in_names, *(st.output_name for st in states)]
    if len(set(names)) != len(names):
        raise ExportError(f"graph names collide: input {input_name!r}, outputs {list(output_names)}, "
                          f"states {[(st.input_name, st.output_name) for st in states]}; pass other names")
    return StreamingSignature(input_name, frame_shape, batch_first, output_names, states, state)


# ---------------------------------------------------------------- running the module
def with_state_io(module):
    """The wrapper used by state='hooks': forward(x, *initial states) -> (*outputs, *final
    states). Defined here, not at import time, so importing this module needs no torch."""
    from torch import nn

    class StateThreaded(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.layers = recurrent_layers(inner)

        def forward(self, x, *states):
            finals = {}
            handles = []
            pos = 0
            for name, layer in self.layers:
                n = _state_count(layer)
                init = tuple(states[pos:pos + n]) if n == 2 else states[pos]
                pos += n

                def pre(mod, args, kwargs, init=init, name=name):
                    if len(args) > 1 or kwargs.get("hx") is not None:
                        raise ExportError(f"recurrent layer '{name}' is called with a state; the "
                                          "module passes state itself, export it with state='forward'")
                    return (args[0], init), {}

                def post(mod, args, output, name=name):
                    if name in finals:
                        raise ExportError(f"recurrent layer '{name}' runs more than once per forward; "
                                          "state='hooks' needs each layer to run exactly once")
                    finals[name] = output[1]

                handles.append(layer.register_forward_pre_hook(pre, with_kwargs=True))
                handles.append(layer.register_forward_hook(post))
            try:
                out = self.inner(x)
            finally:
                for h in handles:
                    h.remove()
            missing = [n for n, _ in self.layers if n not in finals]
            if missing:
                raise ExportError(f"recurrent layer(s) {missing} did not run in forward")
            outs = out if isinstance(out, tuple) else (out,)
            flat = []
            for name, _ in self.layers:
                f = finals[name]
                flat.extend(f if isinstance(f, tuple) else (f,))
            return (*outs, *flat)

    # same mode as the module: the exporter's eval()/train() restore on the wrapper recurses into it
    return StateThreaded(module).train(module.training)


def graph_module(module, sig: StreamingSignature):
    """The module whose forward(x, *states) -> (*outputs, *final states) is exported."""
    return module if sig.state_mode == "forward" else with_state_io(module)


def run_module(module, sig: StreamingSignature, frames: np.ndarray) -> tuple:
    """Run frames (T, *frame_shape) as ONE batch-1 sequence from zero state (eval mode, no grad):
    (outputs as numpy (T, *out_frame_shape), final states as numpy (num_layers, hidden))."""
    import torch

    g = graph_module(module, sig)
    n_states = len(sig.states)
    x = sig.example_input(frames)
    with torch.no_grad():
        res = g(x, *sig.zero_states())
    res = res if isinstance(res, tuple) else (res,)
    if len(res) <= n_states:
        raise ExportError(f"forward returned {len(res)} tensor(s); expected the outputs followed by "
                          f"{n_states} final state tensor(s)")
    outs, finals = res[:len(res) - n_states], res[len(res) - n_states:]
    for s, f in zip(sig.states, finals):
        if tuple(f.shape) != s.shape:
            raise ExportError(f"final state for {s.input_name!r} has shape {tuple(f.shape)}, expected "
                              f"{s.shape}: forward must return (*outputs, *final states) in the order "
                              "of its state arguments")
    per_frame = []
    for o in outs:
        if not isinstance(o, torch.Tensor) or o.dim() < 2 or o.shape[:2] != x.shape[:2]:
            raise ExportError(f"an output has shape {tuple(getattr(o, 'shape', ()))}; streaming needs one "
                              "output per frame with the input's (batch, time) leading axes")
        a = o.numpy().astype(np.float32)
        per_frame.append(a[0] if sig.batch_first else a[:, 0])
    return tuple(per_frame), tuple(f.numpy()[:, 0].astype(np.float32) for f in finals)


# ---------------------------------------------------------------- export + check
@contextlib.contextmanager
def _quiet():
    """Silence exporter chatter (deprecation warnings, progress prints, logging)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._dynamo", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def write_onnx(module, sig: StreamingSignature, path, opset: int = OPSET) -> None:
    """Export with the TorchScript exporter (dynamic T, explicit state), then strip per-node
    metadata so the file is small and deterministic."""
    import torch

    from .onnx_utils import strip_metadata

    t_axis = 1 if sig.batch_first else 0
    frames = np.zeros((EXPORT_FRAMES,) + sig.frame_shape, np.float32)
    args = (sig.example_input(frames), *sig.zero_states())
    in_names = [sig.input_name] + [s.input_name for s in sig.states]
    out_names = list(sig.output_names) + [s.output_name for s in sig.states]
    dynamic = {n: {t_axis: "T"} for n in [sig.input_name, *sig.output_names]}
    with _quiet():
        torch.onnx.export(graph_module(module, sig), args, str(path), dynamo=False, opset_version=opset,
                          input_names=in_names, output_names=out_names, dynamic_axes=dynamic,
                          external_data=False)
    strip_metadata(Path(path))


def check_frames_for(sig: StreamingSignature, n: int = CHECK_FRAMES, seed: int = CHECK_SEED) -> np.ndarray:
    """Generated check frames: seeded standard normal, (n, *frame_shape) float32."""
    return np.random.default_rng(seed).standard_normal((n,) + sig.frame_shape).astype(np.float32)


def check_export(module, path, sig: StreamingSignature, frames: np.ndarray | None = None,
                 tolerance: float = DEFAULT_TOLERANCE) -> CheckReport:
    """Run the module (one sequence) and stream the file through edgernn (one Stream.step per
    frame) and, when installed, ONNX Runtime (one call per frame, state fed back) on the same
    frames; raise ExportCheckError if any output or final state differs beyond tolerance."""
    frames = check_frames_for(sig) if frames is None else np.asarray(frames, np.float32)
    outs, finals = run_module(module, sig, frames)
    want = dict(zip(sig.output_names, outs))
    want_state = {s.input_name: f for s, f in zip(sig.states, finals)}
    report = check_edgernn(path, frames, want, want_state, tolerance)
    pairs = [(s.input_name, s.output_name, s.shape, 1) for s in sig.states]
    return check_onnxruntime(path, frames, sig.input_name, pairs, want, want_state, tolerance, report)


def export_onnx(module, path, frame_shape, *, state: str = "auto", batch_first: bool | None = None,
                input_name: str = "x", output_names=None, opset: int = OPSET,
                check_frames: np.ndarray | None = None, tolerance: float = DEFAULT_TOLERANCE) -> ExportReport:
    """Export ``module`` to a streaming-ready ONNX file at ``path`` and check it.

    frame_shape: the per-frame input shape (int or tuple), e.g. 12 for 12 features a frame.
    state: "auto" | "forward" | "hooks" (see the module docstring). batch_first: layout of x
    (default: the first recurrent layer's). output_names: names of the module's outputs
    (default y, or y0, y1, ...). check_frames: frames (T, *frame_shape) for the self-check
    (default: 64 seeded standard-normal frames).

    Raises ExportError when the module cannot stream, and exporters.check.ExportCheckError when
    edgernn (or ONNX Runtime) streaming the file disagrees with the module beyond tolerance.
    The module is put in eval mode for the export and restored afterwards."""
    path = Path(path)
    was_training = module.training
    module.eval()
    try:
        sig = streaming_signature(module, frame_shape, state, batch_first, input_name, output_names)
        write_onnx(module, sig, path, opset)
        report = check_export(module, path, sig, check_frames, tolerance)
    finally:
        module.train(was_training)
    return ExportReport(path, sig, opset, report)
