"""ONNX importer: translate an ONNX graph (default domain) node by node into IR nodes.

Translation only: attributes are normalised to the IR op's (see each op module), attributes
that older opsets carry as attributes (Squeeze axes, Slice starts, ...) become constant inputs,
``Constant`` nodes and initializers become constant values. Shapes, folding and streaming
analysis are passes. Requires the ``onnx`` package (extra ``edgernn[onnx]``), imported lazily.
"""
import os

import numpy as np

from ..errors import ModelFormatError, UnsupportedModelError, UnsupportedOpError
from ..ir.graph import Graph, Node, Value
from ..ops.activations import ONNX_ACTIVATIONS, USES_ALPHA, USES_BETA


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:  # pragma: no cover - depends on the environment
        raise ModelFormatError("reading ONNX files needs the onnx package: pip install 'edgernn[onnx]'") from None
    return onnx, numpy_helper


def read_model(source):
    """An onnx.ModelProto from a path, bytes or a ModelProto."""
    onnx, _ = _onnx()
    if isinstance(source, onnx.ModelProto):
        return source
    try:
        if isinstance(source, (bytes, bytearray)):
            model = onnx.load_from_string(bytes(source))
        else:
            model = onnx.load(os.fspath(source))
    except FileNotFoundError:
        raise
    except Exception as e:
        raise ModelFormatError(f"{source!r} is not a readable ONNX model ({type(e).__name__}: {e})") from None
    if not model.graph.node and not model.graph.output:
        raise ModelFormatError(f"{source!r} is not an ONNX model: it has no graph")
    return model


# ---------------------------------------------------------------- attribute helpers
def _attrs(node):
    onnx, numpy_helper = _onnx()
    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [x.decode() for x in v]
        elif isinstance(v, onnx.TensorProto):
            v = numpy_helper.to_array(v)
        out[a.name] = v
    return out


def _np_dtype(tensor_type):
    onnx, _ = _onnx()
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor_type)).name


def _const(name, arr):
    arr = np.asarray(arr)
    return Value(name, shape=tuple(arr.shape), dtype=arr.dtype.name, const=arr)


def _recurrent(node, a, ins, kind, n_acts):
    direction = a.get("direction", "forward")
    if direction != "forward":
        raise UnsupportedModelError(
            f"node '{node.name}' op {kind} has direction={direction}: it needs the whole sequence "
            "before the first output, so it cannot run one frame at a time. Export a forward-only model")
    names = a.get("activations") or {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"],
                                     "RNN": ["Tanh"]}[kind]
    if len(names) != n_acts:
        raise UnsupportedOpError(f"node '{node.name}' op {kind}: expected {n_acts} activations, got {names}")
    alphas, betas = list(a.get("activation_alpha", [])), list(a.get("activation_beta", []))
    acts = []
    for nm in names:
        if nm.lower() not in ONNX_ACTIVATIONS:
            raise UnsupportedOpError(f"node '{node.name}' op {kind}: unknown activation {nm}")
        code, da, db = ONNX_ACTIVATIONS[nm.lower()]
        al = alphas.pop(0) if code in USES_ALPHA and alphas else da
        be = betas.pop(0) if code in USES_BETA and betas else db
        acts.append((code, float(al), float(be)))
    attrs = dict(hidden_size=int(a["hidden_size"]), layout=int(a.get("layout", 0)), acts=acts,
                 clip=float(a["clip"]) if "clip" in a else None)
    if kind == "LSTM":
        attrs["input_forget"] = int(a.get("input_forget", 0))
    if kind == "GRU":
        attrs["linear_before_reset"] = int(a.get("linear_before_reset", 0))
    return kind.lower(), ins, attrs


def _axes_input(node, a, ins, opset, since, key="axes"):
    """Ops whose `key` moved from attribute to input at opset `since`."""
    if opset < since and key in a:
        return ins[:1] + [_const(f"{node.name}/{key}", np.array(a[key], np.int64))]
    return ins


def _translate(node, a, ins, opset):
    """(ir_op, inputs, attrs) for one ONNX node."""
    op = node.op_type
    simple = {"Identity": "identity", "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div",
              "Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "MatMul": "matmul"}
    if op in simple:
        return simple[op], ins, {}
    if op == "Cast":
        return "cast", ins, {"to": _np_dtype(a["to"])}
    if op == "Shape":
        return "shape", ins, {"start": a.get("start", 0), "end": a.get("end")}
    if op == "ConstantOfShape":
        return "constant_of_shape", ins, {"value": np.asarray(a.get("value", np.zeros(1, np.float32))).reshape(1)}
    if op == "Reshape":
        if opset < 5:
            ins = ins[:1] + [_const(f"{node.name}/shape", np.array(a["shape"], np.int64))]
        return "reshape", ins, {"allowzero": a.get("allowzero", 0)}
    if op == "Flatten":
        return "flatten", ins, {"axis": a.get("axis", 1)}
    if op in ("Squeeze", "Unsqueeze"):
        return op.lower(), _axes_input(node, a, ins, opset, 13), {}
    if op == "Transpose":
        return "transpose", ins, {"perm": a.get("perm")}
    if op == "Slice":
        if opset < 10:
            ins = ins[:1] + [_const(f"{node.name}/{k}", np.array(a[k], np.int64)) if k in a else None
                             for k in ("starts", "ends", "axes")]
        return "slice", ins, {}
    if op == "Concat":
        return "concat", ins, {"axis": a["axis"]}
    if op == "Gather":
        return "gather", ins, {"axis": a.get("axis", 0)}
    if op == "Gemm":
        return "gemm", ins, {k: a.get(k, d) for k, d in (("alpha", 1.0), ("beta", 1.0), ("transA", 0), ("transB", 0))}
    if op in ("Softmax", "LogSoftmax"):
        coerce = opset < 13
        return ("softmax" if op == "Softmax" else "log_softmax"), ins, {
            "axis": a.get("axis", 1 if coerce else -1), "coerce_2d": coerce}
    if op == "LayerNormalization":
        return "layer_norm", ins, {"axis": a.get("axis", -1), "epsilon": a.get("epsilon", 1e-5)}
    if op in ("LSTM", "GRU", "RNN"):
        return _recurrent(node, a, ins, op, {"LSTM": 3, "GRU": 2, "RNN": 1}[op])
    return None


SUPPORTED = ("Add Cast Concat Constant ConstantOfShape Div Flatten GRU Gather Gemm Identity LSTM "
             "LayerNormalization LogSoftmax MatMul Mul RNN Relu Reshape Shape Sigmoid Slice Softmax "
             "Squeeze Sub Tanh Transpose Unsqueeze").split()


def import_onnx(source):
    """Translate an ONNX model (path, bytes or ModelProto) into an IR :class:`Graph`."""
    onnx, numpy_helper = _onnx()
    model = read_model(source)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    g = model.graph
    values = {}
    for t in g.initializer:
        try:
            values[t.name] = _const(t.name, numpy_helper.to_array(t))
        except Exception as e:
            raise ModelFormatError(f"initializer '{t.name}' cannot be read: {e}") from None
    inputs, declared = [], {}
    for i in g.input:
        if i.name in values:
            continue
        tt = i.type.tensor_type
        if tt.elem_type != onnx.TensorProto.FLOAT:
            raise UnsupportedModelError(
                f"input '{i.name}' has element type {_np_dtype(tt.elem_type)}; edgernn streams float32 "
                "inputs (constant inputs such as sequence_lens must be initializers)")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        v = Value(i.name)
        values[i.name] = v
        inputs.append(v)
        declared[i.name] = dims
    nodes = []
    for k, n in enumerate(g.node):
        name = n.name or f"{n.op_type}_{k}"
        n.name = name
        if n.domain not in ("", "ai.onnx"):
            raise UnsupportedOpError(f"node '{name}' op {n.domain}::{n.op_type} is from a custom domain; "
                                     "only the default ONNX domain is supported")
        a = _attrs(n)
        if n.op_type == "Constant":
            values[n.output[0]] = _const(n.output[0], _constant_value(n, a))
            continue
        try:
            ins = [values[x] if x else None for x in n.input]
        except KeyError as e:
            raise ModelFormatError(f"node '{name}' reads {e}, which nothing produces") from None
        tr = _translate(n, a, ins, opset)
        if tr is None:
            raise UnsupportedOpError(
                f"node '{name}' op {n.op_type} (opset {opset}) is not supported. Supported ONNX ops: "
                + ", ".join(SUPPORTED))
        ir_op, ins, attrs = tr
        outs = [Value(o) if o else None for o in n.output]
        if ir_op in ("lstm", "gru", "rnn"):
            n_out = 3 if ir_op == "lstm" else 2
            outs = outs + [None] * (n_out - len(outs))
            outs = [v if v is not None else Value(f"{name}/out{j}") for j, v in enumerate(outs)]
        elif ir_op == "layer_norm":
            outs = outs[:1]
            if any(o for o in n.output[1:]):
                used = {x for m in g.node for x in m.input} | {o.name for o in g.output}
                if any(o in used for o in n.output[1:]):
                    raise UnsupportedOpError(f"node '{name}' LayerNormalization: Mean/InvStdDev outputs are not supported")
        for o in outs:
            if o is not None:
                values[o.name] = o
        nodes.append(Node(ir_op, name, ins, outs, attrs, source_op=n.op_type))
    try:
        outputs = [values[o.name] for o in g.output]
    except KeyError as e:
        raise ModelFormatError(f"graph output {e} is produced by no node") from None
    return Graph(nodes, inputs, outputs, opset=opset, source="onnx", declared=declared)


def _constant_value(n, a):
    if "value" in a:
        return np.asarray(a["value"])
    for key, dt in (("value_float", np.float32), ("value_floats", np.float32),
                    ("value_int", np.int64), ("value_ints", np.int64)):
        if key in a:
            return np.asarray(a[key], dtype=dt)
    raise UnsupportedOpError(f"node '{n.name}' Constant: unsupported value attribute {list(a)}")
