"""TFLite importer: translate a .tflite flatbuffer op by op into IR nodes.

This module reads the file and its tensors (constants, quantisation parameters, names) and
assembles the graph; :mod:`.tflite_ops` translates each op, :mod:`.tflite_while` the WHILE
loops. The flatbuffer is parsed with the official schema module ``schema_py_generated`` that
``ai-edge-litert`` ships (extra ``edgernn[tflite]``; TensorFlow's copy is used when only
TensorFlow is installed), imported lazily. Translation only: shapes, folding and streaming
analysis are passes. What maps to what:

- FULLY_CONNECTED -> dense (a reshape to [rows, K] first unless keep_num_dims); fused
  activations (RELU, TANH, RELU6, RELU_N1_TO_1) become a relu/tanh/clip node after the op;
- unrolled cells (a Keras ``LSTMCell``/``GRUCell`` called once per call, the state explicit
  inputs and outputs) are plain ops: FULLY_CONNECTED, SPLIT, LOGISTIC, TANH, MUL, ADD, SUB,
  UNPACK/PACK, and MINIMUM + RELU (tf_keras ``hard_sigmoid``) or ADD with a fused RELU6
  (Keras 3 ``hard_sigmoid``). The importer gives every input its declared per-step shape
  (``graph.declared``: the shape signature, -1 = open); binding such a *step graph* and
  pairing its state inputs with outputs is :mod:`edgernn.passes.step_graph`'s;
- UNIDIRECTIONAL_SEQUENCE_LSTM -> lstm with ONNX semantics: TFLite's per-gate tensors (i, f,
  c, o) are stacked in ONNX gate order i, o, f, c into W [1, 4H, I], R [1, 4H, H], B [1, 8H]
  (recurrent half zero), peepholes into P [1, 3H] (i, o, f); layout 1 for batch-major input,
  0 for time_major; cell_clip kept; the state tensors (variables in the file) become the
  stream's state. Projection, layer norm, CIFG and diagonal recurrent weights are rejected;
- UNIDIRECTIONAL_SEQUENCE_RNN -> rnn (activation from the fused activation);
- WHILE -> its body's ops, run once per frame (see :mod:`.tflite_while`);
- SPACE_TO_BATCH_ND -> CONV_2D -> BATCH_TO_SPACE_ND (a dilated convolution over an open
  length) -> one dilated conv (see :mod:`.tflite_dilation`);
- layout and shape ops (RESHAPE, SQUEEZE, EXPAND_DIMS, TRANSPOSE, SHAPE, GATHER, SLICE,
  STRIDED_SLICE, SPLIT, SPLIT_V, PACK, UNPACK, CONCATENATION, FILL, REDUCE_PROD, CAST) -> the IR's
  layout ops (STRIDED_SLICE and SPLIT become slice (+ squeeze), PACK unsqueeze + concat);
- QUANTIZE / DEQUANTIZE -> identity: edgernn computes activations in float32. Quantised
  constants are read with their scales and zero points: int8 weights of dense and recurrent
  ops stay int8 (see :func:`Scope.weight`), every other quantised constant is dequantised.
  The scales of int8 *activation* tensors (a full-integer file's FULLY_CONNECTED outputs,
  gates, states) are not used: edgernn does not round activations to LiteRT's int8 grid, so
  such a file runs as int8 weights with float32 activations (closer to the float source
  model than LiteRT's integer run; tests/test_tflite_step.py measures both). Inputs and
  outputs must be float32 (QUANTIZE/DEQUANTIZE around the integer graph, the converter's
  default).
"""
import os
import struct

import numpy as np

from ..errors import ModelFormatError, ResourceLimitError, UnsupportedModelError, UnsupportedOpError
from ..ir.graph import Graph, Node, Value
from ..limits import check_elements

INT_MAX = 2 ** 31 - 1


def schema():
    """The TFLite flatbuffer schema module (lazily imported)."""
    try:
        from ai_edge_litert import schema_py_generated
        return schema_py_generated
    except ImportError:  # pragma: no cover - depends on the environment
        pass
    try:  # pragma: no cover
        from tensorflow.lite.python import schema_py_generated
        return schema_py_generated
    except ImportError:  # pragma: no cover
        raise ModelFormatError("reading TFLite files needs the ai-edge-litert package: "
                               "pip install 'edgernn[tflite]'") from None


def read_model(source):
    """(schema module, ModelT, file bytes) from a path or bytes."""
    s = schema()
    if isinstance(source, (bytes, bytearray)):
        data, where = bytes(source), "<tflite bytes>"
    else:
        where = os.fspath(source)
        with open(where, "rb") as f:
            data = f.read()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelFormatError(f"{where!r} is not a TFLite model (no 'TFL3' identifier at byte 4); it is "
                               "damaged or not a TFLite file: convert the model again")
    try:
        model = s.ModelT.InitFromPackedBuf(data, 0)
    except Exception as e:
        raise ModelFormatError(f"{where!r} is not a readable TFLite model, it may be truncated "
                               f"({type(e).__name__}: {e})") from None
    if not model.subgraphs or not model.operatorCodes:
        raise ModelFormatError(f"{where!r} is not a readable TFLite model: it has no subgraph or no ops")
    check_tables(model, len(data))
    return s, model, data


# ---------------------------------------------------------------- the file's tables, checked once
MAX_NESTING = 32              # subgraphs calling subgraphs (a loop in a loop ...): real models use 1 or 2


def _corrupt(what):
    return ModelFormatError(f"the TFLite model is corrupt: {what}; re-convert the model")


def _ints(arr):
    return [] if arr is None else [int(x) for x in arr]


def _index(i, n, what, table, lowest=0):
    if not lowest <= i < n:
        raise _corrupt(f"{what} is {table} {i}, but there are {table}s 0..{n - 1}")


def _called_subgraphs(op):
    """Subgraph indices an op's options name (WHILE body/cond, IF branches, CALL_ONCE, ...)."""
    out = []
    for opts in (op.builtinOptions, getattr(op, "builtinOptions2", None)):
        for key, v in (vars(opts).items() if opts is not None else ()):
            if key.endswith("SubgraphIndex") or key == "subgraph":
                out.append(int(v))
            elif key.endswith("SubgraphIndices"):
                out += _ints(v)
    return out


def check_tables(m, file_size):
    """Every index in the file (tensor, buffer, opcode, subgraph) within its table, every buffer
    within the file, and no subgraph calling itself: afterwards the importer can index freely."""
    n_buf, n_codes, n_sub = len(m.buffers or []), len(m.operatorCodes), len(m.subgraphs)
    for b, buf in enumerate(m.buffers or []):
        if buf.offset > 1 and buf.offset + buf.size > file_size:
            raise _corrupt(f"buffer {b} ends at byte {buf.offset + buf.size}, past the {file_size}-byte file")
    calls = {}
    for gi, g in enumerate(m.subgraphs):
        n = len(g.tensors or [])
        for kind in ("input", "output"):
            for k, ti in enumerate(_ints(getattr(g, kind + "s"))):
                _index(ti, n, f"subgraph {gi} {kind} {k}", "tensor")
        for k, t in enumerate(g.tensors or []):
            _index(t.buffer, max(n_buf, 1), f"subgraph {gi} tensor {k}'s buffer", "buffer")
        calls[gi] = set()
        for k, op in enumerate(g.operators or []):
            where = f"subgraph {gi} op {k}"
            _index(op.opcodeIndex, n_codes, f"{where}'s opcode", "opcode")
            for j, ti in enumerate(_ints(op.inputs)):
                _index(ti, n, f"{where} input {j}", "tensor", lowest=-1)      # -1: an optional input left out
            for j, ti in enumerate(_ints(op.outputs)):
                _index(ti, n, f"{where} output {j}", "tensor")
            for sub in _called_subgraphs(op):
                _index(sub, n_sub, f"a subgraph that {where} calls", "subgraph")
                calls[gi].add(sub)
    for sig in m.signatureDefs or []:
        _index(sig.subgraphIndex, n_sub, "a signature's subgraph", "subgraph")
        for tm in list(sig.inputs or []) + list(sig.outputs or []):
            _index(tm.tensorIndex, len(m.subgraphs[sig.subgraphIndex].tensors or []), "a signature's tensor", "tensor")
    height = {}

    def visit(g, path):                 # recursion bounded by MAX_NESTING
        if g in path:
            chain = " -> ".join(map(str, path[path.index(g):] + [g]))
            raise _corrupt(f"subgraph {g} calls itself ({chain}); a loop body cannot contain its own loop")
        if len(path) > MAX_NESTING:
            raise UnsupportedModelError(f"subgraphs call each other more than {MAX_NESTING} levels deep; "
                                        "edgernn inlines loops nested at most that deep")
        if g not in height:
            height[g] = 1 + max((visit(h, path + [g]) for h in sorted(calls[g])), default=0)
        return height[g]
    for g in calls:
        visit(g, [])


def _enum_names(enum):
    return {v: k for k, v in vars(enum).items() if not k.startswith("_")}


NUMPY_TYPES = {"FLOAT32": "<f4", "FLOAT16": "<f2", "FLOAT64": "<f8", "INT32": "<i4", "INT64": "<i8",
               "INT16": "<i2", "INT8": "i1", "UINT8": "u1", "BOOL": "?"}


class Reader:
    """The whole file: op names, constant data, unique value names, and the IR nodes made so far."""

    def __init__(self, source):
        self.s, self.m, self.data = read_model(source)
        self.op_names = _enum_names(self.s.BuiltinOperator)
        self.type_names = _enum_names(self.s.TensorType)
        self.act_names = _enum_names(self.s.ActivationFunctionType)
        self.nodes = []
        self.states = []              # StateVars made by WHILE lowering
        self._names = set()
        self.consts = {}              # (subgraph, tensor) -> Value

    def op_name(self, op):
        c = self.m.operatorCodes[op.opcodeIndex]
        code = max(c.builtinCode, c.deprecatedBuiltinCode)
        if code == self.s.BuiltinOperator.CUSTOM:
            return "CUSTOM:" + (c.customCode or b"?").decode(errors="replace")
        return self.op_names.get(code, f"builtin {code}")

    def unique(self, name):
        base, k = name, 1
        while name in self._names:
            k += 1
            name = f"{base}#{k}"
        self._names.add(name)
        return name

    def raw(self, g, ti):
        """The stored array of tensor `ti` of subgraph `g` (no dequantisation), or None."""
        t = g.tensors[ti]
        buf = self.m.buffers[t.buffer] if 0 <= t.buffer < len(self.m.buffers) else None
        if buf is None:
            return None
        if buf.data is not None and len(buf.data):
            blob = np.asarray(buf.data, np.uint8).tobytes()
        elif buf.offset and buf.offset > 1:
            blob = self.data[buf.offset:buf.offset + buf.size]
        else:
            return None
        if t.sparsity is not None:
            raise UnsupportedModelError(f"tensor '{t.name.decode()}' is stored sparse, which edgernn cannot read; "
                                        "convert without sparsity")
        tname = self.type_names.get(t.type, str(t.type))
        if tname not in NUMPY_TYPES:
            raise UnsupportedModelError(f"tensor '{t.name.decode()}' holds {tname} data, which edgernn cannot read")
        shape = [int(d) for d in (t.shape if t.shape is not None else [])]
        dtype = np.dtype(NUMPY_TYPES[tname])
        count = check_elements(shape, dtype.itemsize, f"tensor '{t.name.decode(errors='replace')}'")
        if len(blob) != count * dtype.itemsize:
            raise ModelFormatError(
                f"tensor '{t.name.decode()}' of shape {shape} has {len(blob)} bytes of {tname}; the file "
                "is truncated or corrupt")
        return np.frombuffer(blob, dtype).reshape(shape).astype(dtype.newbyteorder("="))


def quant_params(t):
    """(scale, zero_point, axis) of a quantised tensor, or None."""
    q = t.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    scale = np.asarray(q.scale, np.float32)
    zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else np.zeros(len(scale)), np.int64)
    return scale, zp, int(q.quantizedDimension)


def dequantize(q, params):
    """float32 (q - zero_point) * scale, per tensor or along the quantised axis."""
    scale, zp, axis = params
    shape = [1] * q.ndim
    if len(scale) > 1:
        shape[axis] = len(scale)
    return ((q.astype(np.float32) - zp.reshape(shape).astype(np.float32)) * scale.reshape(shape)).astype(np.float32)


class Unavailable(Value):
    """A tensor that has no streaming equivalent (e.g. a loop's final counter = the sequence
    length); reading it raises UnsupportedModelError with `reason`."""

    def __init__(self, name, reason):
        super().__init__(name)
        self.reason = reason


class Scope:
    """Translates the ops of one subgraph into IR nodes appended to the reader's node list.

    ``bound`` fixes the IR value of some tensors from outside (a loop body's inputs)."""

    def __init__(self, reader, index, bound=None):
        self.r = reader
        self.index = index
        self.g = reader.m.subgraphs[index]
        name = (self.g.name or b"").decode(errors="replace") or f"subgraph{index}"
        self.name = name
        self.label = f"subgraph {index} ('{name}')"
        self.values = dict(bound or {})
        self.op_index, self.op_kind = -1, ""
        self.graph_outputs = []       # main subgraph: tensor indices of the graph outputs
        self.removed_inputs = []      # graph inputs that became stream state (WHILE lowering)
        self.removed_outputs = set()  # graph outputs that became a state's next value
        self.pending_states = []      # state values of a fused sequence op being translated

    def tensor_name(self, ti):
        return self.g.tensors[ti].name.decode(errors="replace")

    # ------------------------------------------------------------ values
    def constant(self, ti):
        """The float32 (dequantised) or int64 array of a constant tensor, or None."""
        t = self.g.tensors[ti]
        arr = self.r.raw(self.g, ti)
        if arr is None:
            return None
        params = quant_params(t)
        if params is not None and arr.dtype.kind in "iu" and self.r.type_names[t.type] != "INT64":
            return dequantize(arr, params)
        if arr.dtype.kind == "f":
            return arr.astype(np.float32)
        if arr.dtype.kind in "iu":
            return arr.astype(np.int64)
        return arr

    def value(self, ti):
        if ti is None or ti < 0:
            return None
        if ti in self.values:
            v = self.values[ti]
            if isinstance(v, Unavailable):
                raise UnsupportedModelError(f"{self.where()}: {v.reason}")
            return v
        arr = self.constant(ti)
        if arr is None:
            raise ModelFormatError(f"{self.where()}: reads tensor {ti} '{self.tensor_name(ti)}', which no op "
                                   "writes and which holds no data")
        v = Value(self.r.unique(self.tensor_name(ti)), shape=tuple(arr.shape), dtype=arr.dtype.name, const=arr)
        self.values[ti] = v
        return v

    def const_input(self, op, k, what):
        """Input k of `op` as a NumPy array; it must be a constant in the file."""
        ti = op.inputs[k] if k < len(op.inputs) else -1
        arr = self.constant(ti) if ti >= 0 else None
        if arr is None:
            raise UnsupportedOpError(f"{self.where()}: its {what} (input {k}) must be a constant in the file")
        return arr

    def output(self, ti):
        v = Value(self.r.unique(self.tensor_name(ti)))
        self.values[ti] = v
        return v

    def fresh(self, hint):
        return Value(self.r.unique(hint))

    def const(self, hint, arr):
        arr = np.asarray(arr)
        return Value(self.r.unique(hint), shape=tuple(arr.shape), dtype=arr.dtype.name, const=arr)

    def weight(self, ti, rows_axis, what):
        """A constant weight tensor as an IR value. Float data -> float32. int8 data with
        symmetric scales -> the IR's int8 convention: ``dtype='int8'``, ``const`` the int8
        array, ``scale`` float32 with one scale per output row (axis `rows_axis` of the IR
        weight; a per-tensor scale is repeated for every row)."""
        t = self.g.tensors[ti]
        arr = self.r.raw(self.g, ti)
        if arr is None:
            raise UnsupportedOpError(f"{self.where()}: its {what} must be a constant in the file")
        params = quant_params(t)
        if arr.dtype != np.int8 or params is None or np.any(params[1] != 0):
            return self.value(ti)
        scale, _, axis = params
        rows = arr.shape[rows_axis]
        if len(scale) == 1:
            scale = np.full(rows, scale[0], np.float32)
        elif axis != rows_axis or len(scale) != rows:
            return self.value(ti)
        v = Value(self.r.unique(self.tensor_name(ti)), shape=tuple(arr.shape), dtype="int8", const=arr)
        v.scale, v.scale_axis = scale.astype(np.float32), rows_axis - arr.ndim
        return v

    # ------------------------------------------------------------ nodes
    def where(self):
        return f"{self.label} op {self.op_index} {self.op_kind}"

    def add(self, ir_op, inputs, outputs, attrs=None):
        node = Node(ir_op, f"{self.name}:op{self.op_index}", list(inputs), list(outputs), dict(attrs or {}),
                    source_op=self.op_kind)
        self.r.nodes.append(node)
        return node

    def activated(self, op, ir_op, inputs, attrs=None, code=0, out=None):
        """ir_op followed by the fused activation `code`, writing output 0 of `op` (or `out`)."""
        y = out if out is not None else self.output(op.outputs[0])
        if code == 0:
            self.add(ir_op, inputs, [y], attrs)
            return y
        A = self.r.s.ActivationFunctionType
        act = {A.RELU: ("relu", None), A.TANH: ("tanh", None), A.RELU6: ("clip", (0.0, 6.0)),
               A.RELU_N1_TO_1: ("clip", (-1.0, 1.0))}.get(code)
        if act is None:
            raise UnsupportedOpError(
                f"{self.where()}: fused activation {self.r.act_names.get(code, code)} is not supported "
                "(supported: NONE, RELU, RELU6, RELU_N1_TO_1, TANH)")
        pre = self.fresh(y.name + "/pre_act")
        self.add(ir_op, inputs, [pre], attrs)
        self.add(act[0], [pre] + self.bounds(act[1]), [y])
        return y

    def bounds(self, lo_hi):
        """The constant lo, hi inputs of an IR clip (RELU6 = clip(x, 0, 6)), or none."""
        if lo_hi is None:
            return []
        return [self.const("clip_min", np.float32(lo_hi[0])), self.const("clip_max", np.float32(lo_hi[1]))]


# ---------------------------------------------------------------- graph
def io_names(reader):
    """Signature names of the main subgraph's inputs and outputs: {tensor index: name}."""
    names = {}
    for sig in reader.m.signatureDefs or []:
        if sig.subgraphIndex != 0:
            continue
        for tm in list(sig.inputs or []) + list(sig.outputs or []):
            names[int(tm.tensorIndex)] = tm.name.decode(errors="replace")
        break
    return names


def clean_name(name):
    name = name[len("serving_default_"):] if name.startswith("serving_default_") else name
    return name[:-2] if name.endswith(":0") else name


def import_tflite(source):
    """Translate a TFLite model (path or bytes) into an IR :class:`Graph`."""
    try:
        return _import(Reader(source))
    except (IndexError, KeyError, TypeError, AttributeError, ValueError, UnicodeDecodeError, struct.error,
            ZeroDivisionError, OverflowError, RecursionError) as e:
        # a table the file left out, an option of the wrong type, a size that is zero or absurd
        raise ModelFormatError(f"the TFLite model is corrupt ({type(e).__name__}: {e}); re-convert the model") from None
    except ResourceLimitError:
        raise
    except MemoryError:           # something unchecked asked for too much: still a typed error
        raise ResourceLimitError("importing the TFLite model ran out of memory; the file asks for more than "
                                 "this machine has, it is malformed or hostile") from None


def _import(r):
    g = r.m.subgraphs[0]
    sc = Scope(r, 0)
    names = io_names(r)
    inputs, declared = [], {}
    for ti in g.inputs:
        t = g.tensors[ti]
        if r.type_names.get(t.type) != "FLOAT32":
            raise UnsupportedModelError(
                f"input '{t.name.decode()}' has type {r.type_names.get(t.type)}; edgernn streams float32 inputs "
                "(convert with float input/output: inference_input_type=tf.float32)")
        v = Value(r.unique(names.get(int(ti)) or clean_name(t.name.decode(errors="replace"))))
        sc.values[int(ti)] = v
        inputs.append(v)
        sig = t.shapeSignature if t.shapeSignature is not None and len(t.shapeSignature) else t.shape
        declared[v.name] = [None if int(d) < 0 else int(d) for d in (sig if sig is not None else [])]
    graph = Graph([], inputs, [], source="tflite", declared=declared)
    sc.graph_outputs = [int(ti) for ti in g.outputs]
    from .tflite_ops import translate_ops
    translate_ops(sc, list(enumerate(g.operators or [])))
    outputs = []
    for ti in g.outputs:
        if int(ti) in sc.removed_outputs:
            continue
        v = sc.value(int(ti))
        want = names.get(int(ti))
        if want and v.name != want and v not in inputs:
            v.name = r.unique(want)
        outputs.append(v)
    graph.nodes = r.nodes
    graph.outputs = outputs
    graph.states = r.states
    graph.inputs = [v for v in inputs if v not in sc.removed_inputs]
    return graph
