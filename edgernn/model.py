"""Model: a prepared graph, its plan and its shared weights; the entry point :func:`load`."""
import os
from dataclasses import dataclass

import numpy as np

from . import ops
from .errors import EdgeRNNError, ModelFormatError
from .passes import prepare
from .passes.pack import pack_weights
from .passes.pulse import Timing
from .ops.history import CLOCK_STATE
from .plan import build_plan, is_alias


@dataclass
class TensorInfo:
    name: str
    frame_shape: tuple


class Model:
    """A model ready to stream. Create streams with :meth:`stream`; they share its weights."""

    def __init__(self, graph, source="", arena=None, metadata=None, file=None):
        self.graph = graph
        self.source = source
        self.metadata = dict(metadata or {})     # .ernn metadata (labels, frame period, ...)
        self.file = file                         # the ErnnFile facts when read from .ernn
        pack_weights(graph)                      # idempotent: prepare() and .ernn files did it
        self.plan = build_plan(graph, arena)
        self.inputs = [TensorInfo(s.name, s.frame_shape) for s in self.plan.inputs]
        self.outputs = [TensorInfo(s.name, s.frame_shape) for s in self.plan.outputs]
        self.states = [TensorInfo(s.name, s.frame_shape) for s in self.plan.states]
        p = self.plan
        col = np.cumsum([0] + [s.size for s in p.inputs])
        self._in_map = np.array([[c, s.offset, s.size] for c, s in zip(col, p.inputs)], np.int64).reshape(-1, 3)
        col = np.cumsum([0] + [s.size for s in p.outputs])
        self._out_map = np.array([[c, s.offset, s.size] for c, s in zip(col, p.outputs)], np.int64).reshape(-1, 3)
        self._in_width = int(sum(s.size for s in p.inputs))
        self._out_width = int(sum(s.size for s in p.outputs))
        self.timing = Timing(graph)
        #: frames an output lags its input (look-ahead along time: passes/pulse.py); Stream.step
        #: returns None for the first ``delay`` frames after a reset
        self.delay = self.timing.delay
        #: frames per output (strides along time): Stream.step returns None between outputs
        self.output_stride = self.timing.stride
        #: the most steps Stream.flush runs at the end of an utterance
        self.flush_steps = self.timing.most_flush_steps()
        self._clock = next((s.offset for s in p.states if s.name == CLOCK_STATE), None)

    def stream(self, batch=None, threads=1):
        """A new :class:`~edgernn.stream.Stream` starting from the initial state.

        batch=None: frames have the per-frame input shape. batch=B: B independent streams
        stepped together; frames have shape (B, *frame_shape). threads=N (batch >= N): the
        streams are split into N blocks stepped on N of Numba's threads (default 1: a Pi
        runs its audio stack on the other cores)."""
        from .stream import Stream
        return Stream(self, batch, threads)

    # ------------------------------------------------------------ facts for `edgernn info`
    def op_counts(self):
        """Ops that do work per step, by IR op (layout ops that only alias bytes are left out)."""
        counts = {}
        for n in self.graph.nodes:
            if not is_alias(n):
                counts[n.op] = counts.get(n.op, 0) + 1
        return counts

    def alias_count(self):
        """Layout ops (reshape, squeeze, ...) that cost nothing: their output shares their input."""
        return sum(1 for n in self.graph.nodes if is_alias(n))

    def flops_per_step(self):
        return int(sum(ops.get(n.op).flops(n) for n in self.graph.nodes))

    def parameter_count(self):
        """Parameters of the model as imported (biases counted before the pack pass sums any)."""
        return int(self.graph.meta.get("parameters", 0))

    def weight_bytes(self):
        return int(self.plan.arena.buffer.nbytes)

    def state_bytes(self):
        """Bytes of one stream's state: recurrent states, state pairs, histories, the clock."""
        return int(self.plan.state_init.nbytes)

    def history_bytes(self):
        """Bytes of one stream's frames kept for convolutions along time (and delay lines)."""
        return int(sum(4 * n.inputs[1].size for n in self.graph.nodes if n.op == "history"))

    def describe(self):
        states = {s.name: s for s in self.graph.states}
        internal = {CLOCK_STATE} | {v.name for n in self.graph.nodes if n.op == "history" for v in n.inputs[1::2]}
        return {
            "source": self.source,
            "mode": self.graph.meta.get("mode", "sequence"),
            "bound_constants": dict(self.graph.meta.get("bound_constants") or {}),
            "state_pairs": {name: s.next.name for name, s in states.items() if s.next is not None
                            and name not in internal},
            "inputs": [(t.name, t.frame_shape) for t in self.inputs],
            "outputs": [(t.name, t.frame_shape) for t in self.outputs],
            "states": [(t.name, t.frame_shape) for t in self.states],
            "ops": self.op_counts(),
            "free_layout_ops": self.alias_count(),
            "parameters": self.parameter_count(),
            "flops_per_step": self.flops_per_step(),
            "weight_bytes": self.weight_bytes(),
            "state_bytes_per_stream": self.state_bytes(),
            "history_bytes_per_stream": self.history_bytes(),
            "delay": self.delay,
            "output_stride": self.output_stride,
            "flush_steps": self.flush_steps,
            "work_bytes_per_stream": int(self.plan.work_size * 4),
            "program_rows": int(self.plan.prog.shape[0]),
            **({"file": self.file_facts()} if self.file is not None else {}),
        }

    def file_facts(self):
        """What an .ernn file holds: format version, sizes, checksum, metadata, tensor table."""
        f = self.file
        meta = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.metadata.items()}
        return {"format_version": f.version, "file_bytes": f.file_bytes, "checksum": f.checksum,
                "weights_mapped_in_place": f.zero_copy, "metadata": meta,
                "tensors": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "offset": t.offset,
                             "bytes": t.nbytes} for t in f.tensors]}


def _sniff(source):
    """'ernn', 'tflite' or 'onnx': by the file's magic bytes, else by its suffix (so a damaged
    .ernn or .tflite file is reported by its own reader), else ONNX (protobuf has no magic)."""
    in_memory = isinstance(source, (bytes, bytearray))
    name = "the model bytes" if in_memory else f"the file {os.fspath(source)!r}"
    if in_memory:
        head = bytes(source[:8])
    elif os.path.isdir(source):
        raise ModelFormatError(f"{name} is a directory; pass the path of a model file")
    else:
        with open(source, "rb") as f:
            head = f.read(8)
    if not head:
        raise ModelFormatError(f"{name} {'are empty' if in_memory else 'is an empty file'} (0 bytes), not an ONNX, "
                               "TFLite or .ernn model; export or copy the model again")
    if not in_memory and not os.path.isfile(source):
        raise ModelFormatError(f"{name} is not a regular file (a device or a pipe); pass a model file or its bytes")
    if head[4:8] == b"TFL3":
        return "tflite"
    if head[:4] == b"ERNN":
        return "ernn"
    suffix = "" if in_memory else os.path.splitext(os.fspath(source))[1].lower()
    return {".ernn": "ernn", ".tflite": "tflite"}.get(suffix, "onnx")


def _load_ernn(source, verify):
    from .formats.ernn import read_ernn
    from .passes.infer import infer_graph
    f = read_ernn(source, verify)
    name = "<.ernn bytes>" if isinstance(source, (bytes, bytearray)) else os.fspath(source)
    try:
        infer_graph(f.graph)
        return Model(f.graph, source=name, arena=f.arena, metadata=f.metadata, file=f)
    except EdgeRNNError as e:
        raise ModelFormatError(f"{name!r}: its program does not check out: {e}") from None
    except Exception as e:  # a forged attribute of the right JSON type but the wrong meaning
        raise ModelFormatError(f"{name!r}: its program is corrupt ({type(e).__name__}: {e}); "
                               "re-create it with `edgernn convert`") from None


def load(source, time_axis=None, weights="float32", verify=True, constants=None, step=None, shapes=None,
         states=None):
    """Load a model and prepare it for streaming.

    source: a path to an ONNX, TFLite or .ernn file, the file's bytes, or an ``onnx.ModelProto``.
    time_axis: the axis of the frame input that is time, when edgernn cannot find it by
    tracing the recurrent op's sequence axis back to the input.
    weights: "float32", or "int8" to quantise the weight matrices at load (see edgernn.quant).
    verify: for .ernn files, check the data checksum (False skips it on a slow device).
    constants: {input name: value} binds inputs that are settings, not signals (silero-vad's
    ``sr``: ``constants={"sr": 16000}``); they are folded at load, If branches included.
    step: True: the file is one step, its state explicit inputs and outputs (a *step graph*,
    docs/streaming-models.md); False: a sequence graph with a time axis; None decides (a step
    graph when no input axis can be time).
    shapes: {input name: sizes} for a step graph's inputs whose sizes the file leaves open,
    e.g. ``{"input": [576]}`` (the frame) or ``[None, 576]`` (None marks the batch axis).
    states: {state input: state output} pairs of a step graph, when the automatic pairing
    (same shape, computed from the input, names such as h -> hn) is ambiguous.
    An .ernn file is used as it was converted (the other arguments do not apply).
    """
    kind = "onnx"
    if isinstance(source, (str, os.PathLike)):
        if not os.path.exists(source):
            raise FileNotFoundError(f"no model file at {os.fspath(source)!r}")
        kind = _sniff(source)
    elif isinstance(source, (bytes, bytearray)):
        kind = _sniff(source)
    if kind == "ernn":
        return _load_ernn(source, verify)
    if kind == "tflite":
        from .formats.tflite import import_tflite
        if constants:
            raise EdgeRNNError("constants= is supported for ONNX files only (TFLite models take no setting inputs)")
        graph = import_tflite(source)
    else:
        from .formats.onnx import import_onnx
        graph = import_onnx(source, constants=constants)
    prepare(graph, time_axis, weights, step=step, shapes=shapes, states=states)
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"<{kind} model>"
    return Model(graph, source=name)
