"""TFLite importer: translate a .tflite flatbuffer op by op into IR nodes.

The flatbuffer is parsed with the official schema module ``schema_py_generated`` that
``ai-edge-litert`` ships (extra ``edgernn[tflite]``; TensorFlow's copy is used when only
TensorFlow is installed), imported lazily. Translation only: shapes, folding and streaming
analysis are passes. What maps to what:

- FULLY_CONNECTED -> dense (a reshape to [rows, K] first unless keep_num_dims); fused
  activations (RELU, TANH) become a relu/tanh node after the op;
- UNIDIRECTIONAL_SEQUENCE_LSTM -> lstm with ONNX semantics: TFLite's per-gate tensors (i, f,
  c, o) are stacked in ONNX gate order i, o, f, c into W [1, 4H, I], R [1, 4H, H], B [1, 8H]
  (recurrent half zero), peepholes into P [1, 3H] (i, o, f); layout 1 for batch-major input,
  0 for time_major; cell_clip kept; the state tensors (variables in the file) become the
  stream's state. Projection, layer norm, CIFG and diagonal recurrent weights are rejected;
- UNIDIRECTIONAL_SEQUENCE_RNN -> rnn (activation from the fused activation);
- WHILE -> its body's ops, run once per frame (see :mod:`.tflite_while`);
- layout and shape ops (RESHAPE, SQUEEZE, EXPAND_DIMS, TRANSPOSE, SHAPE, GATHER, SLICE,
  STRIDED_SLICE, SPLIT, SPLIT_V, PACK, UNPACK, CONCATENATION, FILL, REDUCE_PROD, CAST) -> the IR's
  layout ops (STRIDED_SLICE and SPLIT become slice (+ squeeze), PACK unsqueeze + concat);
- QUANTIZE / DEQUANTIZE -> identity: edgernn computes activations in float32. Quantised
  constants are read with their scales and zero points: int8 weights of dense and recurrent
  ops stay int8 (see :func:`Scope.weight`), every other quantised constant is dequantised.
"""
import os
import struct

import numpy as np

from ..errors import ModelFormatError, UnsupportedModelError, UnsupportedOpError
from ..ir.graph import Graph, Node, Value
from ..ops.activations import AFFINE, RELU, SIGMOID, TANH

INT_MAX = 2 ** 31 - 1
#: whether the IR carries int8 weights (Value.scale, the engine's int8 support); until then
#: files with int8 weights are refused instead of run with unscaled weights
INT8_IR = "scale" in getattr(Value, "__dataclass_fields__", {})


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
        raise ModelFormatError(f"{where!r} is not a TFLite model (no 'TFL3' identifier)")
    try:
        model = s.ModelT.InitFromPackedBuf(data, 0)
    except Exception as e:
        raise ModelFormatError(f"{where!r} is not a readable TFLite model, it may be truncated "
                               f"({type(e).__name__}: {e})") from None
    if not model.subgraphs or not model.operatorCodes:
        raise ModelFormatError(f"{where!r} is not a readable TFLite model: it has no subgraph or no ops")
    return s, model, data


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
        if len(blob) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
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
        v.scale = scale.astype(np.float32)
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
        act = {self.r.s.ActivationFunctionType.RELU: "relu", self.r.s.ActivationFunctionType.TANH: "tanh"}.get(code)
        if act is None:
            raise UnsupportedOpError(
                f"{self.where()}: fused activation {self.r.act_names.get(code, code)} is not supported "
                "(supported: NONE, RELU, TANH)")
        pre = self.fresh(y.name + "/pre_act")
        self.add(ir_op, inputs, [pre], attrs)
        self.add(act, [pre], [y])
        return y


# ---------------------------------------------------------------- op translators
class _NoOptions:
    """An op written without its options table: the schema's defaults (0, False, none)."""
    beta = 1.0
    newShape = squeezeDims = None

    def __getattr__(self, name):
        return 0


def _opts(op):
    return op.builtinOptions if op.builtinOptions is not None else _NoOptions()


def _ins(sc, op):
    return [sc.value(ti) for ti in op.inputs]


def _simple(ir_op):
    def tr(sc, op):
        sc.add(ir_op, _ins(sc, op)[:1], [sc.output(op.outputs[0])])
    return tr


def _binary(ir_op):
    def tr(sc, op):
        sc.activated(op, ir_op, _ins(sc, op)[:2], code=_opts(op).fusedActivationFunction)
    return tr


def _fully_connected(sc, op):
    o = _opts(op)
    if o.weightsFormat != 0:
        raise UnsupportedOpError(f"{sc.where()}: shuffled weights format {o.weightsFormat} is not supported")
    x = sc.value(op.inputs[0])
    w = sc.weight(op.inputs[1], 0, "weights")
    b = sc.value(op.inputs[2]) if len(op.inputs) > 2 else None
    k = int(w.const.shape[1])
    if not o.keepNumDims:
        flat = sc.fresh(x.name + "/rows")
        sc.add("reshape", [x, sc.const("rows_by_k", np.array([-1, k], np.int64))], [flat])
        x = flat
    sc.activated(op, "dense", [x, w] + ([b] if b is not None else []),
                 code=o.fusedActivationFunction)


def _reshape(sc, op):
    x = sc.value(op.inputs[0])
    if len(op.inputs) > 1 and op.inputs[1] >= 0:
        shape = sc.value(op.inputs[1])
    else:
        new = _opts(op).newShape
        if new is None:
            raise UnsupportedOpError(f"{sc.where()}: no target shape")
        shape = sc.const("new_shape", np.asarray(new, np.int64))
    sc.add("reshape", [x, shape], [sc.output(op.outputs[0])])


def _squeeze(sc, op):
    dims = _opts(op).squeezeDims
    axes = [sc.const("squeeze_axes", np.asarray(dims, np.int64))] if dims is not None and len(dims) else []
    sc.add("squeeze", [sc.value(op.inputs[0])] + axes, [sc.output(op.outputs[0])])


def _expand_dims(sc, op):
    axis = sc.const_input(op, 1, "axis")
    sc.add("unsqueeze", [sc.value(op.inputs[0]), sc.const("axis", np.ravel(axis).astype(np.int64))],
           [sc.output(op.outputs[0])])


def _transpose(sc, op):
    perm = sc.const_input(op, 1, "permutation")
    sc.add("transpose", [sc.value(op.inputs[0])], [sc.output(op.outputs[0])], {"perm": [int(p) for p in perm]})


def _shape(sc, op):
    sc.add("shape", [sc.value(op.inputs[0])], [sc.output(op.outputs[0])])


def _gather(sc, op):
    o = _opts(op)
    if o.batchDims:
        raise UnsupportedOpError(f"{sc.where()}: batch_dims={o.batchDims} is not supported")
    sc.add("gather", _ins(sc, op)[:2], [sc.output(op.outputs[0])], {"axis": o.axis})


def _slice_node(sc, x, starts, ends, axes, steps, out):
    arr = lambda name, a: sc.const(name, np.asarray(a, np.int64))  # noqa: E731
    sc.add("slice", [x, arr("starts", starts), arr("ends", ends), arr("axes", axes), arr("steps", steps)], [out])


def _slice(sc, op):
    begin = np.ravel(sc.const_input(op, 1, "begin"))
    size = np.ravel(sc.const_input(op, 2, "size"))
    ends = [INT_MAX if s < 0 else b + s for b, s in zip(begin, size)]
    _slice_node(sc, sc.value(op.inputs[0]), begin, ends, range(len(begin)), [1] * len(begin),
                sc.output(op.outputs[0]))


def _strided_slice(sc, op):
    o = _opts(op)
    if o.ellipsisMask or o.newAxisMask:
        raise UnsupportedOpError(f"{sc.where()}: ellipsis_mask/new_axis_mask are not supported")
    begin = np.ravel(sc.const_input(op, 1, "begin"))
    end = np.ravel(sc.const_input(op, 2, "end"))
    strides = np.ravel(sc.const_input(op, 3, "strides")) if len(op.inputs) > 3 else np.ones(len(begin), np.int64)
    starts, ends, shrink = [], [], []
    for a, (b, e, st) in enumerate(zip(begin, end, strides)):
        if o.offset:
            e = b + e
        if o.shrinkAxisMask >> a & 1:
            starts.append(b)
            ends.append(INT_MAX if b == -1 else b + 1)
            shrink.append(a)
            continue
        starts.append((0 if st > 0 else INT_MAX) if o.beginMask >> a & 1 else b)
        ends.append((INT_MAX if st > 0 else -INT_MAX - 1) if o.endMask >> a & 1 else e)
    x = sc.value(op.inputs[0])
    y = sc.output(op.outputs[0])
    sliced = sc.fresh(y.name + "/slice") if shrink else y
    _slice_node(sc, x, starts, ends, range(len(begin)), strides, sliced)
    if shrink:
        sc.add("squeeze", [sliced, sc.const("shrink_axes", np.asarray(shrink, np.int64))], [y])


def _split_parts(sc, op, x_ti, sizes, axis):
    x = sc.value(x_ti)
    at = 0
    for ti, n in zip(op.outputs, sizes):
        _slice_node(sc, x, [at], [at + n], [axis], [1], sc.output(ti))
        at += n


def _split(sc, op):
    axis = int(np.ravel(sc.const_input(op, 0, "axis"))[0])
    g = sc.g
    n = len(op.outputs)
    dim = int(g.tensors[op.inputs[1]].shape[axis])
    _split_parts(sc, op, op.inputs[1], [dim // n] * n, axis)


def _split_v(sc, op):
    sizes = [int(s) for s in np.ravel(sc.const_input(op, 1, "size_splits"))]
    axis = int(np.ravel(sc.const_input(op, 2, "axis"))[0])
    if -1 in sizes:
        dim = int(sc.g.tensors[op.inputs[0]].shape[axis])
        sizes[sizes.index(-1)] = dim - (sum(sizes) + 1)
    _split_parts(sc, op, op.inputs[0], sizes, axis)


def _concatenation(sc, op):
    o = _opts(op)
    sc.activated(op, "concat", _ins(sc, op), {"axis": o.axis}, code=o.fusedActivationFunction)


def _pack(sc, op):
    o = _opts(op)
    parts = []
    for v in _ins(sc, op):
        u = sc.fresh(v.name + "/unsqueezed")
        sc.add("unsqueeze", [v, sc.const("axis", np.array([o.axis], np.int64))], [u])
        parts.append(u)
    sc.add("concat", parts, [sc.output(op.outputs[0])], {"axis": o.axis})


def _unpack(sc, op):
    o = _opts(op)
    x = sc.value(op.inputs[0])
    for k, ti in enumerate(op.outputs):
        piece = sc.fresh(x.name + f"/piece{k}")
        _slice_node(sc, x, [k], [k + 1], [o.axis], [1], piece)
        sc.add("squeeze", [piece, sc.const("axis", np.array([o.axis], np.int64))], [sc.output(ti)])


def _fill(sc, op):
    value = sc.const_input(op, 1, "fill value")
    sc.add("constant_of_shape", [sc.value(op.inputs[0])], [sc.output(op.outputs[0])],
           {"value": np.asarray(value).reshape(1)})


def _reduce_prod(sc, op):
    o = _opts(op)
    sc.add("reduce_prod", _ins(sc, op)[:2], [sc.output(op.outputs[0])], {"keepdims": int(bool(o.keepDims))})


def _cast(sc, op):
    t = sc.g.tensors[op.outputs[0]]
    to = np.dtype(NUMPY_TYPES.get(sc.r.type_names.get(t.type), "<f4")).newbyteorder("=").name
    sc.add("cast", [sc.value(op.inputs[0])], [sc.output(op.outputs[0])], {"to": "int64" if to == "int32" else to})


def _softmax(sc, op):
    beta = _opts(op).beta
    x = sc.value(op.inputs[0])
    if beta != 1.0:
        scaled = sc.fresh(x.name + "/beta")
        sc.add("mul", [x, sc.const("beta", np.float32(beta))], [scaled])
        x = scaled
    sc.add("softmax", [x], [sc.output(op.outputs[0])], {"axis": -1})


def _log_softmax(sc, op):
    sc.add("log_softmax", [sc.value(op.inputs[0])], [sc.output(op.outputs[0])], {"axis": -1})


def _sequence_activation(sc, op, code):
    """IR activation triple entry (code, alpha, beta) for TFLite's fused activation `code`."""
    A = sc.r.s.ActivationFunctionType
    table = {A.TANH: (TANH, 0.0, 0.0), A.RELU: (RELU, 0.0, 0.0), A.NONE: (AFFINE, 1.0, 0.0)}
    if code not in table:
        raise UnsupportedOpError(f"{sc.where()}: activation {sc.r.act_names.get(code, code)} is not supported "
                                 "(supported: TANH, RELU, NONE)")
    return table[code]


def _recurrent_state(sc, op, k):
    """Initial state input k of a fused sequence op: None when it is a variable tensor (the
    state persists between frames; edgernn keeps it in the stream), else its value as [1, B, H]."""
    ti = op.inputs[k] if k < len(op.inputs) else -1
    if ti < 0 or sc.g.tensors[ti].isVariable:
        return None
    v = sc.value(ti)
    u = sc.fresh(v.name + "/as_1BH")
    sc.add("unsqueeze", [v, sc.const("axis", np.array([0], np.int64))], [u])
    return u


def _sequence_output(sc, op, ir_op, ins, attrs, n_out):
    """The recurrent node, and TFLite's output [B, T, H] (or [T, B, H]) = Y without its
    num_directions axis."""
    y4 = sc.fresh(sc.tensor_name(op.outputs[0]) + "/Y")
    outs = [y4] + [sc.fresh(sc.tensor_name(op.outputs[0]) + f"/Y_{s}") for s in ("h", "c")[:n_out - 1]]
    sc.add(ir_op, ins, outs, attrs)
    axis = 1 if attrs["layout"] == 0 else 2
    sc.add("squeeze", [y4, sc.const("num_directions_axis", np.array([axis], np.int64))], [sc.output(op.outputs[0])])


def _unidirectional_sequence_lstm(sc, op):
    o = _opts(op)
    ins = list(op.inputs) + [-1] * (24 - len(op.inputs))
    have = lambda k: ins[k] >= 0  # noqa: E731
    if not have(1) or not have(5):
        raise UnsupportedOpError(f"{sc.where()}: coupled input and forget gates (CIFG, no input gate weights) "
                                 "are not supported; train the LSTM with an input gate")
    if have(16) or have(17):
        raise UnsupportedOpError(f"{sc.where()}: an LSTM with a projection layer is not supported; "
                                 "export the LSTM without projection (a Dense layer after it is supported)")
    if any(have(k) for k in range(20, 24)):
        raise UnsupportedOpError(f"{sc.where()}: a layer-normalised LSTM is not supported; use a plain LSTM")
    if o.diagonalRecurrentTensors:
        raise UnsupportedOpError(f"{sc.where()}: diagonal recurrent weights are not supported; use full "
                                 "recurrent weight matrices")
    # TFLite gate k in i, f, c, o; ONNX order i, o, f, c
    onnx_order = [0, 3, 1, 2]
    W = [sc.weight(ins[1 + k], 0, "input weights") for k in onnx_order]
    R = [sc.weight(ins[5 + k], 0, "recurrent weights") for k in onnx_order]
    H = int(W[0].const.shape[0])
    bias = [sc.constant(ins[12 + k]) if have(12 + k) else np.zeros(H, np.float32) for k in onnx_order]
    peep = [sc.constant(ins[k]) if have(k) else np.zeros(H, np.float32) for k in (9, 11, 10)]  # i, o, f
    name = sc.tensor_name(op.outputs[0])
    ir_ins = [sc.value(ins[0]), stack_gates(sc, name + "/W", W), stack_gates(sc, name + "/R", R),
              sc.const(name + "/B", np.concatenate(bias + [np.zeros(4 * H, np.float32)])[None].astype(np.float32)),
              None, _recurrent_state(sc, op, 18), _recurrent_state(sc, op, 19)]
    if any(have(k) for k in (9, 10, 11)):
        ir_ins.append(sc.const(name + "/P", np.concatenate(peep)[None].astype(np.float32)))
    act = _sequence_activation(sc, op, o.fusedActivationFunction)
    attrs = dict(hidden_size=H, layout=0 if o.timeMajor else 1, acts=[(SIGMOID, 0.0, 0.0), act, act],
                 clip=None, input_forget=0, cell_clip=float(o.cellClip) if o.cellClip > 0 else None)
    _sequence_output(sc, op, "lstm", ir_ins, attrs, 3)


def _unidirectional_sequence_rnn(sc, op):
    o = _opts(op)
    W = sc.weight(op.inputs[1], 0, "input weights")
    R = sc.weight(op.inputs[2], 0, "recurrent weights")
    H = int(W.const.shape[0])
    b = sc.constant(op.inputs[3]) if len(op.inputs) > 3 and op.inputs[3] >= 0 else np.zeros(H, np.float32)
    name = sc.tensor_name(op.outputs[0])
    ir_ins = [sc.value(op.inputs[0]), stack_gates(sc, name + "/W", [W]), stack_gates(sc, name + "/R", [R]),
              sc.const(name + "/B", np.concatenate([b, np.zeros(H, np.float32)])[None].astype(np.float32)),
              None, _recurrent_state(sc, op, 4)]
    attrs = dict(hidden_size=H, layout=0 if o.timeMajor else 1,
                 acts=[_sequence_activation(sc, op, o.fusedActivationFunction)], clip=None)
    _sequence_output(sc, op, "rnn", ir_ins, attrs, 2)


def stack_gates(sc, name, gates):
    """Per-gate weight values [H, K] stacked into one IR weight [1, G*H, K] (float32, or int8
    with per-row scales when every gate is int8)."""
    if all(g.dtype == "int8" for g in gates):
        v = sc.const(name, np.concatenate([g.const for g in gates])[None])
        v.scale = np.concatenate([g.scale for g in gates]).astype(np.float32)
        return v
    arrays = [dequantized(g) for g in gates]
    return sc.const(name, np.concatenate(arrays)[None].astype(np.float32))


def dequantized(v):
    """The float32 values of an IR constant (int8 ones per the per-row scale convention)."""
    if v.dtype == "int8":
        shape = [1] * v.const.ndim
        shape[-2 if v.const.ndim == 3 else 0] = -1
        return v.const.astype(np.float32) * v.scale.reshape(shape)
    return v.const.astype(np.float32)


def _identity(sc, op):
    sc.add("identity", [sc.value(op.inputs[0])], [sc.output(op.outputs[0])])


def _while(sc, op):
    from .tflite_while import lower_while
    lower_while(sc, op)


TRANSLATORS = {
    "ADD": _binary("add"), "SUB": _binary("sub"), "MUL": _binary("mul"), "DIV": _binary("div"),
    "LOGISTIC": _simple("sigmoid"), "TANH": _simple("tanh"), "RELU": _simple("relu"),
    "FULLY_CONNECTED": _fully_connected, "RESHAPE": _reshape, "SQUEEZE": _squeeze,
    "EXPAND_DIMS": _expand_dims, "TRANSPOSE": _transpose, "SHAPE": _shape, "GATHER": _gather,
    "SLICE": _slice, "STRIDED_SLICE": _strided_slice, "SPLIT": _split, "SPLIT_V": _split_v,
    "CONCATENATION": _concatenation, "PACK": _pack, "UNPACK": _unpack, "FILL": _fill,
    "REDUCE_PROD": _reduce_prod, "CAST": _cast, "SOFTMAX": _softmax, "LOG_SOFTMAX": _log_softmax,
    "QUANTIZE": _identity, "DEQUANTIZE": _identity,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _unidirectional_sequence_lstm,
    "UNIDIRECTIONAL_SEQUENCE_RNN": _unidirectional_sequence_rnn,
    "WHILE": _while,
}
SUPPORTED = sorted(TRANSLATORS)


def unsupported_ops(reader, g):
    return sorted({reader.op_name(op) for op in (g.operators or []) if reader.op_name(op) not in TRANSLATORS})


def translate_ops(sc, ops):
    """Translate `ops` (op index, OperatorT) of scope `sc` in order."""
    for k, op in ops:
        sc.op_index, sc.op_kind = k, sc.r.op_name(op)
        tr = TRANSLATORS.get(sc.op_kind)
        if tr is None:
            raise UnsupportedOpError(
                f"{sc.where()} is not supported. Supported TFLite ops: {', '.join(SUPPORTED)}")
        tr(sc, op)


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
    r = Reader(source)
    try:
        return _import(r)
    except (IndexError, KeyError, TypeError, AttributeError, ValueError, UnicodeDecodeError, struct.error) as e:
        # an index or offset outside the file's tables, a missing table, bytes that are not text
        raise ModelFormatError(f"the TFLite model is corrupt ({type(e).__name__}: {e})") from None


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
    if not INT8_IR and any(v is not None and v.dtype == "int8" for n in r.nodes for v in n.inputs):
        raise UnsupportedModelError(
            "the model has int8 weights and this edgernn build has no int8 weight support yet; "
            "use a float model or an edgernn with int8 weights (Value.scale)")
    graph.nodes = r.nodes
    graph.outputs = outputs
    graph.states = r.states
    graph.inputs = [v for v in inputs if v not in sc.removed_inputs]
    return graph
