"""TFLite op translators: one function per builtin op, appending IR nodes to a
:class:`~edgernn.formats.tflite.Scope` (see :mod:`edgernn.formats.tflite` for what maps to
what). ``SUPPORTED`` lists the ops; docs/ops.md has the table with each op's limits."""
import numpy as np

from ..errors import ModelFormatError, UnsupportedModelError, UnsupportedOpError
from ..ir.dims import B
from ..ir.graph import StateVar, Value
from ..limits import check_elements
from ..ops.activations import AFFINE, RELU, SIGMOID, TANH
from .tflite import INT_MAX, NUMPY_TYPES


class _NoOptions:
    """An op written without its options table: the schema's defaults (0, False, none)."""
    beta = 1.0
    newShape = squeezeDims = None

    def __getattr__(self, name):
        return 0


def options(op):
    return op.builtinOptions if op.builtinOptions is not None else _NoOptions()


def input_values(sc, op):
    return [sc.value(ti) for ti in op.inputs]


def _simple(ir_op):
    def tr(sc, op):
        sc.add(ir_op, input_values(sc, op)[:1], [sc.output(op.outputs[0])])
    return tr


def _binary(ir_op):
    def tr(sc, op):
        sc.activated(op, ir_op, input_values(sc, op)[:2], code=options(op).fusedActivationFunction)
    return tr


def _clipped(lo, hi):
    """RELU6, RELU_N1_TO_1, RELU_0_TO_1 -> clip(x, lo, hi)."""
    def tr(sc, op):
        sc.add("clip", [sc.value(op.inputs[0])] + sc.bounds((lo, hi)), [sc.output(op.outputs[0])])
    return tr


def _binary_plain(ir_op):
    """A binary op without options (MINIMUM, MAXIMUM: broadcasting like ADD)."""
    def tr(sc, op):
        sc.add(ir_op, input_values(sc, op)[:2], [sc.output(op.outputs[0])])
    return tr


def _fully_connected(sc, op):
    o = options(op)
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
        new = options(op).newShape
        if new is None:
            raise UnsupportedOpError(f"{sc.where()}: no target shape")
        shape = sc.const("new_shape", np.asarray(new, np.int64))
    sc.add("reshape", [x, shape], [sc.output(op.outputs[0])])


def _squeeze(sc, op):
    dims = options(op).squeezeDims
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
    o = options(op)
    if o.batchDims:
        raise UnsupportedOpError(f"{sc.where()}: batch_dims={o.batchDims} is not supported")
    sc.add("gather", input_values(sc, op)[:2], [sc.output(op.outputs[0])], {"axis": o.axis})


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
    o = options(op)
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
    o = options(op)
    sc.activated(op, "concat", input_values(sc, op), {"axis": o.axis}, code=o.fusedActivationFunction)


def _pack(sc, op):
    o = options(op)
    parts = []
    for v in input_values(sc, op):
        u = sc.fresh(v.name + "/unsqueezed")
        sc.add("unsqueeze", [v, sc.const("axis", np.array([o.axis], np.int64))], [u])
        parts.append(u)
    sc.add("concat", parts, [sc.output(op.outputs[0])], {"axis": o.axis})


def _unpack(sc, op):
    o = options(op)
    x = sc.value(op.inputs[0])
    for k, ti in enumerate(op.outputs):
        piece = sc.fresh(x.name + f"/piece{k}")
        _slice_node(sc, x, [k], [k + 1], [o.axis], [1], piece)
        sc.add("squeeze", [piece, sc.const("axis", np.array([o.axis], np.int64))], [sc.output(ti)])


def _fill(sc, op):
    value = sc.const_input(op, 1, "fill value")
    dims = sc.constant(op.inputs[0])
    if dims is not None:                # folded at load: refuse a huge one before it is allocated
        dims = np.ravel(dims).tolist()
        if any(d < 0 for d in dims):
            raise ModelFormatError(f"{sc.where()}: asks for the shape {dims}; sizes cannot be negative")
        check_elements(dims, value.dtype.itemsize, f"{sc.where()}: its output of shape {dims}")
    sc.add("constant_of_shape", [sc.value(op.inputs[0])], [sc.output(op.outputs[0])],
           {"value": np.asarray(value).reshape(1)})


def _reduce_prod(sc, op):
    o = options(op)
    sc.add("reduce_prod", input_values(sc, op)[:2], [sc.output(op.outputs[0])], {"keepdims": int(bool(o.keepDims))})


def _cast(sc, op):
    t = sc.g.tensors[op.outputs[0]]
    to = np.dtype(NUMPY_TYPES.get(sc.r.type_names.get(t.type), "<f4")).newbyteorder("=").name
    sc.add("cast", [sc.value(op.inputs[0])], [sc.output(op.outputs[0])], {"to": "int64" if to == "int32" else to})


def _softmax(sc, op):
    beta = options(op).beta
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


def _recurrent_state(sc, op, k, kind, H):
    """Initial state input k of a fused sequence op, as the IR op's initial state [1, B, H].

    A variable tensor (the converter's usual form) *is* the state: LiteRT keeps it between
    invokes and the op overwrites it. It becomes a stream state, starting at zero; when it is
    also a model input (tf_keras LSTM called with initial_state but without return_state) that
    input is dropped and its name names the state. Any other tensor is an initial value."""
    ti = op.inputs[k] if k < len(op.inputs) else -1
    if ti < 0:
        return None
    if sc.g.tensors[ti].isVariable:
        bound = sc.values.get(int(ti))
        if bound is not None and int(ti) in [int(t) for t in sc.g.inputs]:
            readers = [o for o in sc.g.operators if int(ti) in [int(x) for x in o.inputs]]
            if readers != [op]:
                raise UnsupportedModelError(f"{sc.where()}: its state input '{bound.name}' is also read by "
                                            "other ops, so edgernn cannot keep it inside the stream")
            sc.removed_inputs.append(bound)
            name = bound.name
        else:
            name = sc.r.unique(f"{sc.name}:op{sc.op_index}/{kind}")
        batch_major = not getattr(op.builtinOptions, "timeMajor", False)
        v = Value(name, shape=(B, 1, H) if batch_major else (1, B, H))     # the IR op's state layout
        sc.pending_states.append(v)
        return v
    v = sc.value(ti)
    u = sc.fresh(v.name + "/as_1BH")
    sc.add("unsqueeze", [v, sc.const("axis", np.array([0], np.int64))], [u])
    return u


def _sequence_output(sc, op, ir_op, ins, attrs, n_out):
    """The recurrent node, and TFLite's output [B, T, H] (or [T, B, H]) = Y without its
    num_directions axis. State inputs that are variable tensors become stream states whose
    next value is Y_h / Y_c."""
    y4 = sc.fresh(sc.tensor_name(op.outputs[0]) + "/Y")
    outs = [y4] + [sc.fresh(sc.tensor_name(op.outputs[0]) + f"/Y_{s}") for s in ("h", "c")[:n_out - 1]]
    sc.add(ir_op, ins, outs, attrs)
    slots = (5, 6)[:n_out - 1]
    for slot, nxt in zip(slots, outs[1:]):
        v = ins[slot] if slot < len(ins) else None
        if v is not None and v in sc.pending_states:
            sc.pending_states.remove(v)
            sc.r.states.append(StateVar(v.name, v, nxt, np.zeros(v.concrete_shape, np.float32)))
    axis = 1 if attrs["layout"] == 0 else 2
    sc.add("squeeze", [y4, sc.const("num_directions_axis", np.array([axis], np.int64))], [sc.output(op.outputs[0])])


def _unidirectional_sequence_lstm(sc, op):
    o = options(op)
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
              None, _recurrent_state(sc, op, 18, "h", H), _recurrent_state(sc, op, 19, "c", H)]
    if any(have(k) for k in (9, 10, 11)):
        ir_ins.append(sc.const(name + "/P", np.concatenate(peep)[None].astype(np.float32)))
    act = _sequence_activation(sc, op, o.fusedActivationFunction)
    attrs = dict(hidden_size=H, layout=0 if o.timeMajor else 1, acts=[(SIGMOID, 0.0, 0.0), act, act],
                 clip=None, input_forget=0, cell_clip=float(o.cellClip) if o.cellClip > 0 else None)
    _sequence_output(sc, op, "lstm", ir_ins, attrs, 3)


def _unidirectional_sequence_rnn(sc, op):
    o = options(op)
    W = sc.weight(op.inputs[1], 0, "input weights")
    R = sc.weight(op.inputs[2], 0, "recurrent weights")
    H = int(W.const.shape[0])
    b = sc.constant(op.inputs[3]) if len(op.inputs) > 3 and op.inputs[3] >= 0 else np.zeros(H, np.float32)
    name = sc.tensor_name(op.outputs[0])
    ir_ins = [sc.value(op.inputs[0]), stack_gates(sc, name + "/W", [W]), stack_gates(sc, name + "/R", [R]),
              sc.const(name + "/B", np.concatenate([b, np.zeros(H, np.float32)])[None].astype(np.float32)),
              None, _recurrent_state(sc, op, 4, "h", H)]
    attrs = dict(hidden_size=H, layout=0 if o.timeMajor else 1,
                 acts=[_sequence_activation(sc, op, o.fusedActivationFunction)], clip=None)
    _sequence_output(sc, op, "rnn", ir_ins, attrs, 2)


def stack_gates(sc, name, gates):
    """Per-gate weight values [H, K] stacked into one IR weight [1, G*H, K] (float32, or int8
    with per-row scales when every gate is int8)."""
    if all(g.dtype == "int8" for g in gates):
        return int8_value(sc, name, np.concatenate([g.const for g in gates])[None],
                          np.concatenate([g.scale for g in gates]))
    arrays = [dequantized(g) for g in gates]
    return sc.const(name, np.concatenate(arrays)[None].astype(np.float32))


def dequantized(v):
    """The float32 values of an imported IR constant (int8 ones: scale along axis -2)."""
    if v.dtype == "int8":
        shape = [1] * v.const.ndim
        shape[-2] = -1
        return v.const.astype(np.float32) * v.scale.reshape(shape)
    return v.const.astype(np.float32)


def int8_value(sc, name, q, scale):
    """The IR's int8 weight: int8 ``const`` [..., N, K], float32 ``scale`` [N] along axis -2."""
    v = sc.const(name, q)
    v.dtype, v.scale, v.scale_axis = "int8", np.asarray(scale, np.float32), -2
    return v


# ---------------------------------------------------------------- convolutions (NHWC -> the IR's NCHW)


def _identity(sc, op):
    sc.add("identity", [sc.value(op.inputs[0])], [sc.output(op.outputs[0])])


def _phases(sc, op):
    raise UnsupportedOpError(f"{sc.where()} is supported only as part of a dilated convolution "
                             "(SPACE_TO_BATCH_ND -> CONV_2D -> BATCH_TO_SPACE_ND)")


def _while(sc, op):
    from .tflite_while import lower_while
    lower_while(sc, op)


from .tflite_conv import FRONT_END_TRANSLATORS  # noqa: E402  (it reads options, input_values)

TRANSLATORS = {
    "ADD": _binary("add"), "SUB": _binary("sub"), "MUL": _binary("mul"), "DIV": _binary("div"),
    "LOGISTIC": _simple("sigmoid"), "TANH": _simple("tanh"), "RELU": _simple("relu"),
    "RELU6": _clipped(0.0, 6.0), "RELU_N1_TO_1": _clipped(-1.0, 1.0), "RELU_0_TO_1": _clipped(0.0, 1.0),
    "MINIMUM": _binary_plain("min"), "MAXIMUM": _binary_plain("max"),
    "FULLY_CONNECTED": _fully_connected, "RESHAPE": _reshape, "SQUEEZE": _squeeze,
    "EXPAND_DIMS": _expand_dims, "TRANSPOSE": _transpose, "SHAPE": _shape, "GATHER": _gather,
    "SLICE": _slice, "STRIDED_SLICE": _strided_slice, "SPLIT": _split, "SPLIT_V": _split_v,
    "CONCATENATION": _concatenation, "PACK": _pack, "UNPACK": _unpack, "FILL": _fill,
    "REDUCE_PROD": _reduce_prod, "CAST": _cast, "SOFTMAX": _softmax, "LOG_SOFTMAX": _log_softmax,
    "QUANTIZE": _identity, "DEQUANTIZE": _identity,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _unidirectional_sequence_lstm,
    "UNIDIRECTIONAL_SEQUENCE_RNN": _unidirectional_sequence_rnn,
    "WHILE": _while, "SPACE_TO_BATCH_ND": _phases, "BATCH_TO_SPACE_ND": _phases,  # folded: tflite_dilation
    "SQRT": _simple("sqrt"), "POW": _binary_plain("pow"), "ABS": _simple("abs"),
    **FRONT_END_TRANSLATORS,
}
SUPPORTED = sorted(TRANSLATORS)


def translate_ops(sc, ops):
    """Translate `ops` (op index, OperatorT) of scope `sc` in order; ops edgernn cannot
    translate are all reported at once, with their counts and op indices. Dilated convolutions
    written as SPACE_TO_BATCH_ND ... BATCH_TO_SPACE_ND are folded first (:mod:`.tflite_dilation`)."""
    from .tflite_dilation import fold_space_to_batch
    folded = fold_space_to_batch(sc, ops)
    missing = {}
    for k, op in ops:
        name = sc.r.op_name(op)
        if name not in TRANSLATORS and k not in folded.skipped:
            missing.setdefault(name, []).append(k)
    if missing:
        listed = "; ".join(f"{name} x{len(ks)} (op {', '.join(map(str, ks[:4]))}{', ...' if len(ks) > 4 else ''})"
                           for name, ks in sorted(missing.items()))
        raise UnsupportedOpError(
            f"{sc.label} uses {len(missing)} op type(s) edgernn does not support: {listed}. "
            f"Supported TFLite ops: {', '.join(SUPPORTED)}")
    for k, op in ops:
        if k in folded.skipped:
            continue
        sc.op_index, sc.op_kind = k, sc.r.op_name(op)
        tr = folded.translators.get(k) or TRANSLATORS.get(sc.op_kind)
        if tr is None:
            raise UnsupportedOpError(
                f"{sc.where()} is not supported. Supported TFLite ops: {', '.join(SUPPORTED)}")
        tr(sc, op)


