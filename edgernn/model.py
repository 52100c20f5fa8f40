"""Model: a prepared graph, its plan and its shared weights; the entry point :func:`load`."""
from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Mapping, Sequence, Union

import numpy as np

from . import ops
from .errors import EdgeRNNError, ModelFormatError
from .passes import prepare
from .passes.pack import pack_weights
from .passes.pulse import Timing
from .ops.history import CLOCK_STATE
from .plan import ACTIVATION_TYPES, build_plan, is_alias

if TYPE_CHECKING:
    import onnx

    from .stream import Stream

log = logging.getLogger(__name__)

#: what :func:`load` takes: a path, the file's bytes, a binary file object or an onnx.ModelProto
ModelSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], "onnx.ModelProto"]


@dataclass
class TensorInfo:
    """A model input, output or state, per frame: its name, the shape of one frame (without a
    time or batch axis) and its dtype (every tensor a Stream takes or returns is float32)."""
    name: str
    frame_shape: tuple[int, ...]
    dtype: str = "float32"


class Model:
    """A model ready to stream. Create streams with :meth:`stream`; they share its weights.

    Attributes:
        source: the path it was loaded from, or ``<kind model>`` for bytes and file objects.
        inputs, outputs, states: lists of :class:`TensorInfo` (name, frame shape, dtype): the
            frames :meth:`Stream.step` takes and returns, and the state a stream keeps.
        delay: frames an output lags its input (look-ahead along time); step returns None
            for the first ``delay`` frames after a reset.
        output_stride: frames per output (strides along time); step returns None between.
        flush_steps: the most steps :meth:`Stream.flush` runs at the end of an utterance.
        metadata: an .ernn file's metadata (labels, frame period, ...); empty otherwise.
        file: the .ernn file's facts (see :meth:`file_facts`), or None.
        graph, plan: the prepared IR graph and its memory plan (internals, for inspection).
    """

    def __init__(self, graph, source: str = "", arena=None, metadata: Mapping[str, Any] | None = None,
                 file=None, activations: str = "float32") -> None:
        self.graph = graph
        self.source = source
        self.metadata = dict(metadata or {})     # .ernn metadata (labels, frame period, ...)
        self.file = file                         # the ErnnFile facts when read from .ernn
        pack_weights(graph)                      # idempotent: prepare() and .ernn files did it
        self.plan = build_plan(graph, arena)
        #: "int8" when the int8 matrices multiply activations quantised per call (see load)
        self.activations: str = "float32"
        _use_activations(self, activations)
        #: the frame inputs :meth:`Stream.step` takes, in order (bound constants are not among them)
        self.inputs: list[TensorInfo] = [TensorInfo(s.name, s.frame_shape) for s in self.plan.inputs]
        #: the outputs :meth:`Stream.step` returns, in order
        self.outputs: list[TensorInfo] = [TensorInfo(s.name, s.frame_shape) for s in self.plan.outputs]
        #: the state a Stream keeps between steps (:attr:`Stream.state` reads and restores it)
        self.states: list[TensorInfo] = [TensorInfo(s.name, s.frame_shape) for s in self.plan.states]
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
        self.delay: int = self.timing.delay
        #: frames per output (strides along time): Stream.step returns None between outputs
        self.output_stride: int = self.timing.stride
        #: the most steps Stream.flush runs at the end of an utterance
        self.flush_steps: int = self.timing.most_flush_steps()
        self._clock = next((s.offset for s in p.states if s.name == CLOCK_STATE), None)
        log.debug("%s: plan of %d program rows, %d weight bytes, %d work bytes and %d state bytes per stream",
                  source, p.prog.shape[0], p.arena.buffer.nbytes, p.work_size * 4, p.state_init.nbytes)

    def __repr__(self) -> str:
        def tensors(ts):
            return ", ".join(f"{t.name}: {t.dtype}{list(t.frame_shape)}" for t in ts)
        timing = "".join(f", {k}={v}" for k, v in (("delay", self.delay), ("output_stride", self.output_stride))
                         if v != (0 if k == "delay" else 1))
        return (f"<edgernn.Model {self.source!r} inputs ({tensors(self.inputs)}) -> "
                f"outputs ({tensors(self.outputs)}){timing}>")

    def stream(self, batch: int | None = None, threads: int = 1) -> Stream:
        """A new :class:`~edgernn.stream.Stream` starting from the initial state.

        batch=None: frames have the per-frame input shape. batch=B: B independent streams
        stepped together; frames have shape (B, *frame_shape). threads=N (batch >= N): the
        streams are split into N blocks stepped on N of Numba's threads (default 1: a Pi
        runs its audio stack on the other cores)."""
        from .stream import Stream
        return Stream(self, batch, threads)

    # ------------------------------------------------------------ facts for `edgernn info`
    def op_counts(self) -> dict[str, int]:
        """Ops that do work per step, by IR op (layout ops that only alias bytes are left out)."""
        counts = {}
        for n in self.graph.nodes:
            if not is_alias(n):
                counts[n.op] = counts.get(n.op, 0) + 1
        return counts

    def alias_count(self) -> int:
        """Layout ops (reshape, squeeze, ...) that cost nothing: their output shares their input."""
        return sum(1 for n in self.graph.nodes if is_alias(n))

    def flops_per_step(self) -> int:
        """Floating-point operations of one step of one stream (a multiply-add counts two), summed
        over the ops from their declared cost counts: what ``edgernn profile`` divides by time."""
        return int(sum(ops.get(n.op).flops(n) for n in self.graph.nodes))

    def parameter_count(self) -> int:
        """Parameters of the model as imported (biases counted before the pack pass sums any)."""
        return int(self.graph.meta.get("parameters", 0))

    def weight_bytes(self) -> int:
        """Bytes of the constant arena every stream of this model shares: weights in kernel
        layout (int8 ones at a byte each when quantised), biases and other constants, each
        64-byte aligned. For an .ernn file this is its mapped data section."""
        return int(self.plan.arena.buffer.nbytes)

    def state_bytes(self) -> int:
        """Bytes of one stream's state: recurrent states, state pairs, histories, the clock."""
        return int(self.plan.state_init.nbytes)

    def history_bytes(self) -> int:
        """Bytes of one stream's frames kept for convolutions along time (and delay lines)."""
        return int(sum(4 * n.inputs[1].size for n in self.graph.nodes if n.op == "history"))

    def describe(self) -> dict[str, Any]:
        """The facts ``edgernn info`` prints, as a JSON-ready dict: source, mode (sequence or
        step graph), bound constants, state pairs, inputs, outputs and states with their frame
        shapes, op counts, parameters, FLOPs per step, weight / state / history / work bytes,
        delay, output stride, flush steps, program rows, and for an .ernn its file facts."""
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

    def file_facts(self) -> dict[str, Any]:
        """What an .ernn file holds: format version, sizes, checksum, metadata, tensor table."""
        f = self.file
        meta = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.metadata.items()}
        return {"format_version": f.version, "file_bytes": f.file_bytes, "checksum": f.checksum,
                "weights_mapped_in_place": f.zero_copy, "metadata": meta,
                "tensors": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "offset": t.offset,
                             "bytes": t.nbytes} for t in f.tensors]}


#: ModelProto's fields (onnx.proto) and their protobuf wire types (0 varint, 2 length-delimited)
_ONNX_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
_HEAD = 4096                                  # bytes of a file read to tell its format


def _varint(buf, i):
    """(value, next index) of the protobuf varint at ``buf[i]``; (None, i) when it runs past
    the buffer or past 10 bytes."""
    value = 0
    for k in range(10):
        if i + k >= len(buf):
            return None, i
        value |= (buf[i + k] & 0x7F) << (7 * k)
        if buf[i + k] < 0x80:
            return value, i + k + 1
    return None, i


def _looks_like_onnx(head, size):
    """Whether ``head``, the first bytes of ``size``, parses as the start of an ONNX ModelProto
    (protobuf has no magic number): every top-level field tag in it is one of ModelProto's
    fields with its wire type, and every length fits in ``size``. Text, zeros, an .ernn or a
    TFLite file with damaged magic bytes fail at their first or second field."""
    i, fields = 0, 0
    while i < len(head):
        tag, j = _varint(head, i)
        if tag is not None and _ONNX_FIELDS.get(tag >> 3) != tag & 7:
            return False
        value, k = (None, j) if tag is None else _varint(head, j)
        if value is None:                     # cut off by the end of the head (or malformed)
            return fields > 0 and len(head) < size
        i = k + (value if tag & 7 == 2 else 0)
        if i > size:
            return False
        fields += 1
    return fields > 0


def _sniff(source, name=None):
    """'ernn', 'tflite' or 'onnx', by content: the .ernn magic, the TFLite identifier, else an
    ONNX protobuf's first fields; when the content is none of these, a ``.ernn`` or ``.tflite``
    suffix sends the file to its own reader (which names the damage); otherwise a
    ModelFormatError. ``source``: a path, or the model's bytes (``name``: where they came from)."""
    in_memory = isinstance(source, bytes)
    if in_memory:
        name = f"the model bytes{f' read from {name}' if name else ''}"
        head, size = source[:_HEAD], len(source)
    else:
        path = os.fspath(source)
        name = f"the file {path!r}"
        if os.path.isdir(path):
            raise ModelFormatError(f"{name} is a directory; pass the path of a model file")
        if stat.S_ISFIFO(os.stat(path).st_mode):
            raise ModelFormatError(f"{name} is a pipe; pass a model file, or read the pipe and pass its bytes")
        with open(path, "rb") as f:
            head = f.read(_HEAD)
        size = os.path.getsize(path) if os.path.isfile(path) else len(head)
    if not head:
        raise ModelFormatError(f"{name} {'are empty' if in_memory else 'is an empty file'} (0 bytes), not an ONNX, "
                               "TFLite or .ernn model; export or copy the model again")
    if not in_memory and not os.path.isfile(path):
        raise ModelFormatError(f"{name} is not a regular file (a device or a pipe); pass a model file or its bytes")
    if head[:4] == b"ERNN":
        kind, how = "ernn", "its magic 'ERNN'"
    elif head[4:8] == b"TFL3":
        kind, how = "tflite", "its identifier 'TFL3'"
    elif _looks_like_onnx(head, size):
        kind, how = "onnx", "its first fields, those of an ONNX ModelProto"
    else:
        suffix = "" if in_memory else os.path.splitext(path)[1].lower()
        kind = {".ernn": "ernn", ".tflite": "tflite"}.get(suffix)
        if kind is None:
            raise ModelFormatError(
                f"{name} is not an ONNX, TFLite or .ernn model: it has no .ernn magic ('ERNN' at byte 0), no "
                "TFLite identifier ('TFL3' at byte 4), and its first bytes do not parse as an ONNX protobuf "
                f"(first bytes {bytes(head[:8])!r}); check that it is a complete copy of an exported model")
        how = f"its suffix {suffix!r} (its content matches no format: its own reader says what is wrong)"
    log.debug("%s: %s model, by %s", name, kind, how)
    return kind


def _source_bytes(source):
    """The model bytes of a bytes-like object or a binary file object, and a name for messages
    (None when there is none); (None, None) for anything else."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), None
    if callable(getattr(source, "read", None)):
        data = source.read()
        where = getattr(source, "name", None)
        where = repr(where) if isinstance(where, (str, bytes)) else f"a {type(source).__name__}"
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ModelFormatError(f"{where} gave {type(data).__name__}, not bytes: open the model file in binary "
                                   "mode (open(path, 'rb'))")
        return bytes(data), where
    return None, None


def _use_activations(model, activations):
    """Set how the model's int8 matrices multiply (load's ``activations``), before it is linked."""
    if activations not in ACTIVATION_TYPES:
        raise EdgeRNNError(f"activations must be one of {', '.join(ACTIVATION_TYPES)}, got {activations!r}")
    if activations == "int8" and not model.plan.int8_matrices():
        raise EdgeRNNError(f"{model.source or 'the model'}: activations='int8' quantises the inputs of int8 "
                           "weight matrices, and this model has none: load it with weights='int8' as well (or "
                           "convert it with `edgernn convert --weights int8`)")
    model.plan.activations = model.activations = activations


def _load_ernn(source, verify, name, activations):
    from .formats.ernn import read_ernn
    from .passes.infer import infer_graph
    f = read_ernn(source, verify)
    if activations is None:
        activations = f.metadata.get("quant.activations", "float32")
        if activations not in ACTIVATION_TYPES:
            raise ModelFormatError(f"{name!r}: its metadata says quant.activations is {activations!r}, not one of "
                                   f"{', '.join(ACTIVATION_TYPES)}; re-create it with `edgernn convert`, or pass "
                                   "activations= to edgernn.load")
    try:
        infer_graph(f.graph)
        model = Model(f.graph, source=name, arena=f.arena, metadata=f.metadata, file=f)
    except EdgeRNNError as e:
        raise ModelFormatError(f"{name!r}: its program does not check out: {e}") from None
    except Exception as e:  # a forged attribute of the right JSON type but the wrong meaning
        raise ModelFormatError(f"{name!r}: its program is corrupt ({type(e).__name__}: {e}); "
                               "re-create it with `edgernn convert`") from None
    _use_activations(model, activations)
    return model


def load(source: ModelSource, time_axis: int | None = None, weights: str = "float32", verify: bool = True,
         constants: Mapping[str, Any] | None = None, step: bool | None = None,
         shapes: Mapping[str, Sequence[int | None]] | None = None,
         states: Mapping[str, str] | None = None, activations: str | None = None) -> Model:
    """Load a model and prepare it for streaming.

    source: an ONNX, TFLite or .ernn model as a path, the file's bytes (bytes, bytearray,
    memoryview), a binary file object (``open(path, "rb")``, ``io.BytesIO``: read to its end), or
    an ``onnx.ModelProto``. The format is told by content (the .ernn magic, the TFLite
    identifier, else an ONNX protobuf), the suffix only when the content is damaged. An .ernn
    path is mapped, not read (its weights are used in place).
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
    activations: "float32", or "int8" to quantise the input vector of every int8 weight
    matrix on each call and multiply in int8 (``sdot`` on Cortex-A76; exact int32 sums, one
    scale per vector: edgernn.quant, docs/quantization.md). Needs int8 weights (weights="int8",
    or an int8 .ernn file); outputs move by the activations' rounding, as in TFLite's hybrid
    kernels. None: an .ernn file's choice at conversion (``quant.activations``), else
    "float32".
    An .ernn file is used as it was converted (the other arguments except ``activations``
    and ``verify`` do not apply).
    """
    started = time.perf_counter()
    if isinstance(source, (str, os.PathLike)):
        if not os.path.exists(source):
            raise FileNotFoundError(f"no model file at {os.fspath(source)!r}")
        kind = _sniff(source)
        name = os.fspath(source)
    else:
        data, where = _source_bytes(source)
        if data is not None:
            source, kind = data, _sniff(data, where)
            name = f"<{kind} model{f' from {where}' if where else ''}>"
        elif hasattr(source, "SerializeToString") and hasattr(source, "graph"):
            kind, name = "onnx", "<onnx model>"                 # an onnx.ModelProto
        else:
            raise ModelFormatError(f"edgernn.load takes a model's path, its bytes, a binary file object or an "
                                   f"onnx.ModelProto; got {type(source).__name__}")
    if kind == "ernn":
        model = _load_ernn(source, verify, name, activations)
        log.info("loaded %s: .ernn format version %s, %d weight bytes", model.source, model.file.version,
                 model.weight_bytes())
        return model
    if kind == "tflite":
        from .formats.tflite import import_tflite
        if constants:
            raise EdgeRNNError("constants= is supported for ONNX files only (TFLite models take no setting inputs)")
        graph = import_tflite(source)
    else:
        from .formats.onnx import import_onnx
        graph = import_onnx(source, constants=constants)
    imported = time.perf_counter()
    prepare(graph, time_axis, weights, step=step, shapes=shapes, states=states)
    log.debug("%s: imported in %.1f ms, passes done in %.1f ms (%d nodes)", name, 1e3 * (imported - started),
              1e3 * (time.perf_counter() - imported), len(graph.nodes))
    model = Model(graph, source=name, activations=activations or "float32")
    log.info("loaded %s: %s model, %s mode, %d weight bytes, %d state bytes per stream", name, kind,
             graph.meta.get("mode", "sequence"), model.weight_bytes(), model.state_bytes())
    return model
