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
from ..ops.control import Branch
from ..limits import check_elements
from ..links import doc
from ..ops.activations import ONNX_ACTIVATIONS, USES_ALPHA, USES_BETA
from .onnx_translate import TRANSLATORS, const_value, load_families


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:  # pragma: no cover - depends on the environment
        raise ModelFormatError("reading ONNX files needs the onnx package: pip install 'edgernn[onnx]'") from None
    return onnx, numpy_helper


def _where(source):
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    return "<ONNX bytes>" if isinstance(source, (bytes, bytearray)) else f"a {type(source).__name__} object"


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
        raise ModelFormatError(f"{_where(source)} is not a readable ONNX model ({type(e).__name__}: {e})") from None
    if not model.graph.node and not model.graph.output:
        raise ModelFormatError(f"{_where(source)} is not an ONNX model: it has no graph")
    return model


def _check_text(model):
    """Every name edgernn reads must be UTF-8 text (protobuf hands back bytes when it is not)."""
    g = model.graph
    fields = [("opset_import domain", o.domain) for o in model.opset_import]
    for kind, vs in (("graph input", g.input), ("graph output", g.output), ("initializer", g.initializer)):
        fields += [(f"{kind} {k}", v.name) for k, v in enumerate(vs)]
    for k, n in enumerate(g.node):
        fields += [(f"node {k}", n.name), (f"node {k} op type", n.op_type), (f"node {k} domain", n.domain)]
        fields += [(f"node {k} input", x) for x in n.input] + [(f"node {k} output", x) for x in n.output]
        fields += [(f"node {k} attribute", a.name) for a in n.attribute]
    for what, text in fields:
        if isinstance(text, bytes):
            raise ModelFormatError(f"the {what} name {text[:60]!r} is not UTF-8 text; the file is corrupt or "
                                   "its exporter is broken: re-export the model")


def _opset(model):
    """The default domain's opset version (ONNX requires one, >= 1)."""
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise ModelFormatError("the model declares no opset for the default ONNX domain (opset_import); "
                               "re-export it with an opset version, e.g. opset_imports=[make_opsetid('', 17)]")
    if versions[0] < 1:
        raise ModelFormatError(f"the model declares opset {versions[0]} for the default ONNX domain; opsets "
                               "start at 1: re-export it with a real opset version")
    return int(versions[0])


# ---------------------------------------------------------------- tensors and attributes
def _np_dtype(tensor_type, what):
    """NumPy dtype of an ONNX TensorProto data type; an unknown type id is a ModelFormatError."""
    onnx, _ = _onnx()
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor_type))
    except (KeyError, TypeError, ValueError):
        raise ModelFormatError(f"{what} has element type {tensor_type}, which is not an ONNX data type; the file "
                               "is corrupt: re-export the model") from None


def _tensor_array(t, what):
    """The NumPy array of a TensorProto, after checking its declared size against the ceiling."""
    _, numpy_helper = _onnx()
    dtype = _np_dtype(t.data_type, what)
    if t.data_location == t.EXTERNAL and not t.raw_data:
        raise UnsupportedModelError(f"{what} keeps its data in an external file that was not loaded; "
                                    "load the model from its path or save it with its data inside the file")
    check_elements(t.dims, max(dtype.itemsize, 1), what)
    try:
        return numpy_helper.to_array(t)
    except Exception as e:
        raise ModelFormatError(f"{what} cannot be read ({type(e).__name__}: {e}); the file is corrupt: "
                               "re-export the model") from None


_REQUIRED = object()
_KINDS = {"float": 1, "int": 2, "string": 3, "tensor": 4, "graph": 5, "floats": 6, "ints": 7, "strings": 8}
_WIDENS = {"float": "int", "floats": "ints"}     # an integer is accepted where a float is expected


class Attributes:
    """One node's attributes, each read by name and expected type: ``a("axis", "int", 0)``.

    This is the only place the ONNX importer reads attributes. A missing required attribute, an
    attribute of another type (a STRING or INTS where an INT is expected, ...) or text that is
    not UTF-8 is a ModelFormatError naming the node, the attribute, the type found and the type
    expected."""

    def __init__(self, node, where):
        self.where = where
        self.protos = {a.name: a for a in node.attribute}

    def __contains__(self, name):
        return name in self.protos

    def __call__(self, name, kind, default=_REQUIRED):
        onnx, _ = _onnx()
        a = self.protos.get(name)
        if a is None:
            if default is _REQUIRED:
                raise ModelFormatError(f"{self.where} has no '{name}' attribute ({kind}), which it needs; "
                                       "the exporter left it out: re-export the model")
            return default
        found = next((k for k, t in _KINDS.items() if t == a.type), None)
        if found != kind and found != _WIDENS.get(kind):
            names = dict(onnx.AttributeProto.AttributeType.items())
            found_name = next((k for k, v in names.items() if v == a.type), f"type {a.type}")
            raise ModelFormatError(f"{self.where}: attribute '{name}' is {found_name}, expected "
                                   f"{kind.upper()}; the file is corrupt or not ONNX: re-export the model")
        value = {"float": lambda: a.f if a.type == 1 else float(a.i), "int": lambda: int(a.i),
                 "string": lambda: self._text(name, a.s), "ints": lambda: [int(x) for x in a.ints],
                 "floats": lambda: [float(x) for x in (a.floats if a.type == 6 else a.ints)],
                 "strings": lambda: [self._text(name, x) for x in a.strings],
                 "tensor": lambda: _tensor_array(a.t, f"{self.where} attribute '{name}'"),
                 "graph": lambda: a.g}[kind]
        return value()

    def _text(self, name, raw):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelFormatError(f"{self.where}: attribute '{name}' holds {raw[:40]!r}, which is not UTF-8 "
                                   "text; the file is corrupt: re-export the model") from None


_const = const_value


def _recurrent(a, ins, kind, n_acts):
    where = a.where
    direction = a("direction", "string", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ModelFormatError(f"{where} has direction={direction!r}; ONNX allows forward, reverse, bidirectional")
    names = a("activations", "strings", None) or {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"],
                                                  "RNN": ["Tanh"]}[kind]
    directions = 2 if direction == "bidirectional" else 1
    if len(names) == n_acts and directions == 2:
        names = names * 2          # one list for both directions
    if len(names) != n_acts * directions:
        raise UnsupportedOpError(f"{where}: expected {n_acts * directions} activations, got {names}")
    alphas, betas = a("activation_alpha", "floats", []), a("activation_beta", "floats", [])
    acts = []
    for nm in names:
        if nm.lower() not in ONNX_ACTIVATIONS:
            raise UnsupportedOpError(f"{where}: unknown activation {nm}")
        code, da, db = ONNX_ACTIVATIONS[nm.lower()]
        al = alphas.pop(0) if code in USES_ALPHA and alphas else da
        be = betas.pop(0) if code in USES_BETA and betas else db
        acts.append((code, float(al), float(be)))
    attrs = dict(hidden_size=a("hidden_size", "int"), layout=a("layout", "int", 0), acts=acts[:n_acts],
                 clip=a("clip", "float", None), direction=direction)
    if directions == 2:
        attrs["acts_reverse"] = acts[n_acts:]
    if kind == "LSTM":
        attrs["input_forget"] = a("input_forget", "int", 0)
    if kind == "GRU":
        attrs["linear_before_reset"] = a("linear_before_reset", "int", 0)
    return kind.lower(), ins, attrs


def _translate(op, name, a, ins, opset):
    """(ir_op, inputs, attrs) for ONNX node `name` of type `op` with attributes `a`, or None for
    an op edgernn does not support."""
    where = a.where
    if op in TRANSLATORS:
        return TRANSLATORS[op](op, name, a, ins, opset)
    simple = {"Identity": "identity", "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div",
              "Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "MatMul": "matmul"}
    if op in simple:
        return simple[op], ins, {}

    def ints_input(key, required=True):     # attributes that later opsets take as inputs
        values = a(key, "ints") if required else a(key, "ints", None)
        return None if values is None else _const(f"{name}/{key}", np.array(values, np.int64))
    if op == "Cast":
        dtype = _np_dtype(a("to", "int"), f"{where} attribute 'to'")
        if dtype.kind not in "biuf":
            raise UnsupportedOpError(f"{where}: casts to {dtype}; edgernn computes with numbers only")
        return "cast", ins, {"to": dtype.name}
    if op == "Shape":
        return "shape", ins, {"start": a("start", "int", 0), "end": a("end", "int", None)}
    if op == "ConstantOfShape":
        value = a("value", "tensor", np.zeros(1, np.float32))
        if np.size(value) != 1:
            raise ModelFormatError(f"{where}: its value has {np.size(value)} elements; ONNX needs exactly one")
        if ins and ins[0] is not None and ins[0].is_const:      # folded at load: refuse a huge one first
            dims = [int(d) for d in np.ravel(ins[0].const)]
            if any(d < 0 for d in dims):
                raise ModelFormatError(f"{where}: asks for the shape {dims}; sizes cannot be negative")
            check_elements(dims, value.dtype.itemsize, f"{where}: its output of shape {dims}")
        return "constant_of_shape", ins, {"value": np.asarray(value).reshape(1)}
    if op == "Reshape":
        if opset < 5:
            ins = ins[:1] + [ints_input("shape")]
        return "reshape", ins, {"allowzero": a("allowzero", "int", 0)}
    if op == "Flatten":
        return "flatten", ins, {"axis": a("axis", "int", 1)}
    if op in ("Squeeze", "Unsqueeze"):
        if opset < 13 and "axes" in a:
            ins = ins[:1] + [ints_input("axes")]
        return op.lower(), ins, {}
    if op == "Transpose":
        return "transpose", ins, {"perm": a("perm", "ints", None)}
    if op == "Slice":
        if opset < 10:
            ins = ins[:1] + [ints_input("starts"), ints_input("ends"), ints_input("axes", required=False)]
        return "slice", ins, {}
    if op == "Concat":
        return "concat", ins, {"axis": a("axis", "int")}
    if op == "Gather":
        return "gather", ins, {"axis": a("axis", "int", 0)}
    if op == "Gemm":
        return "gemm", ins, {"alpha": a("alpha", "float", 1.0), "beta": a("beta", "float", 1.0),
                             "transA": a("transA", "int", 0), "transB": a("transB", "int", 0)}
    if op in ("Softmax", "LogSoftmax"):
        coerce = opset < 13
        return ("softmax" if op == "Softmax" else "log_softmax"), ins, {
            "axis": a("axis", "int", 1 if coerce else -1), "coerce_2d": coerce}
    if op == "LayerNormalization":
        return "layer_norm", ins, {"axis": a("axis", "int", -1), "epsilon": a("epsilon", "float", 1e-5)}
    if op in ("LSTM", "GRU", "RNN"):
        return _recurrent(a, ins, op, {"LSTM": 3, "GRU": 2, "RNN": 1}[op])
    return None


load_families()
SUPPORTED = sorted(set(("Add Cast Concat Constant ConstantOfShape Div Flatten GRU Gather Gemm Identity If LSTM "
                        "LayerNormalization LogSoftmax MatMul Mul RNN Relu Reshape Shape Sigmoid Slice Softmax "
                        "Squeeze Sub Tanh Transpose Unsqueeze").split()) | set(TRANSLATORS))


def _graph_inputs(onnx, g, values, constants):
    """Values of the graph's inputs that are not initializers, and their declared dims. An
    input named in ``constants`` becomes a constant of its declared type and shape."""
    inputs, declared = [], {}
    for i in g.input:
        if i.name in values:
            continue
        if not i.type.HasField("tensor_type"):
            raise UnsupportedModelError(f"input '{i.name}' is a {i.type.WhichOneof('value')}, not a tensor; "
                                        "edgernn streams float32 tensor inputs")
        tt = i.type.tensor_type
        dtype = _np_dtype(tt.elem_type, f"input '{i.name}'")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if i.name in constants:
            values[i.name] = _const(i.name, bind_constant(i.name, constants[i.name], dtype, dims))
            continue
        if dtype != np.float32:
            raise UnsupportedModelError(
                f"input '{i.name}' has element type {dtype}; edgernn streams float32 inputs. If it is a setting "
                f"such as a sample rate, bind it at load: edgernn.load(path, constants={{'{i.name}': value}})")
        v = Value(i.name)
        values[i.name] = v
        inputs.append(v)
        declared[i.name] = dims
    unknown = set(constants) - {i.name for i in g.input}
    if unknown:
        raise UnsupportedModelError(f"constants= names {sorted(unknown)}, which are not inputs of the model; its "
                                    f"inputs are {[i.name for i in g.input if i.name not in values or i.name in constants]}")
    return inputs, declared


def bind_constant(name, value, dtype, dims):
    """``value`` (a number or array) as the constant input ``name`` of ``dtype`` whose declared
    dims are ``dims`` (None: any size)."""
    try:
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf" or (dtype.kind in "biu" and arr.dtype.kind == "f"
                                            and not np.all(np.round(arr) == arr)):
            raise TypeError
        arr = arr.astype(dtype)
    except (TypeError, ValueError, OverflowError):
        raise UnsupportedModelError(f"constants['{name}'] = {value!r} is not a {dtype} value") from None
    if arr.ndim != len(dims) and arr.size == 1:
        arr = arr.reshape([1] * len(dims))
    if arr.ndim != len(dims) or any(d is not None and d != n for d, n in zip(dims, arr.shape)):
        raise UnsupportedModelError(f"constants['{name}'] has shape {list(arr.shape)}; the model declares "
                                    f"{['?' if d is None else d for d in dims]}")
    return arr


class _Translation:
    """Translates ONNX nodes to IR nodes, the main graph's and its If branches' alike, and
    collects every node it cannot translate (reported all at once)."""

    #: nested If branches followed at most (exporters nest a few: silero-vad 4; protobuf itself refuses
    #: messages nested past 100 levels, about 33 Ifs)
    MAX_DEPTH = 16

    def __init__(self, onnx, opset):
        self.onnx, self.opset = onnx, opset
        self.unsupported = []        # (op_type, node name, inside a branch)
        self.depth = 0

    def nodes(self, onnx_nodes, values, in_branch=False):
        out = []
        used = {x for m in onnx_nodes for x in m.input}
        for k, n in enumerate(onnx_nodes):
            name = n.name or f"{n.op_type}_{k}"
            where = f"node '{name}' op {n.op_type}"
            if n.domain not in ("", "ai.onnx"):
                raise UnsupportedOpError(f"node '{name}' op {n.domain}::{n.op_type} is from a custom domain; "
                                         "only the default ONNX domain is supported")
            a = Attributes(n, where)
            if n.op_type == "Constant":
                if len(n.output) != 1:
                    raise ModelFormatError(f"{where} has {len(n.output)} outputs; a Constant has one")
                values[n.output[0]] = _const(n.output[0], _constant_value(where, a))
                continue
            try:
                ins = [values[x] if x else None for x in n.input]
            except KeyError as e:
                raise ModelFormatError(f"node '{name}' reads {e}, which nothing produces") from None
            outs = [Value(o) if o else None for o in n.output]
            if all(o is None for o in outs):
                raise ModelFormatError(f"{where} has no output; the file is corrupt: re-export the model")
            if n.op_type == "If":
                tr = "if", ins[:1], {key: self.branch(a, key, values) for key in ("then_branch", "else_branch")}
            else:
                tr = _translate(n.op_type, name, a, ins, self.opset)
            if tr is None:
                self.unsupported.append((n.op_type, name, in_branch))
                tr = "unsupported", ins, {"op_type": n.op_type, "opset": self.opset}
            ir_op, ins, attrs = tr
            if ir_op in ("lstm", "gru", "rnn"):
                n_out = 3 if ir_op == "lstm" else 2
                outs = outs + [None] * (n_out - len(outs))
                outs = [v if v is not None else Value(f"{name}/out{j}") for j, v in enumerate(outs)]
            elif ir_op == "layer_norm":
                outs = outs[:1]
                if any(o in used for o in n.output[1:] if o):
                    raise UnsupportedOpError(f"node '{name}' LayerNormalization: Mean/InvStdDev outputs are not supported")
            for o in outs:
                if o is not None:
                    values[o.name] = o
            out.append(Node(ir_op, name, ins, outs, attrs, source_op=n.op_type))
        return out

    def branch(self, a, key, values):
        """A Branch of an If: its own initializers and nodes over a copy of the enclosing scope."""
        g = a(key, "graph")
        if self.depth >= self.MAX_DEPTH:
            raise ModelFormatError(f"{a.where}: If branches nest more than {self.MAX_DEPTH} deep; the file is "
                                   "malformed or hostile")
        scope = dict(values)
        scope.update({t.name: _const(t.name, _tensor_array(t, f"{a.where} {key} initializer '{t.name}'"))
                      for t in g.initializer})
        self.depth += 1
        try:
            nodes = self.nodes(g.node, scope, in_branch=True)
        finally:
            self.depth -= 1
        try:
            outputs = [scope[o.name] for o in g.output]
        except KeyError as e:
            raise ModelFormatError(f"{a.where}: {key} returns {e}, which nothing produces") from None
        return Branch(nodes, outputs)

    def check(self):
        """Raise one UnsupportedOpError listing every untranslatable op outside If branches
        (those inside may be in a branch that is never taken: they are reported if reached)."""
        main = [u for u in self.unsupported if not u[2]]
        if not main:
            return
        counts = {}
        for op_type, name, in_branch in self.unsupported:
            counts.setdefault(op_type, []).append(name + (" (in an If branch)" if in_branch else ""))
        listed = "; ".join(f"{op} x{len(names)} ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})"
                           for op, names in sorted(counts.items()))
        raise UnsupportedOpError(
            f"the model uses {len(counts)} op type(s) edgernn does not support (opset {self.opset}): {listed}. "
            f"Re-export without them if you can ({doc('ops.md')} lists what runs), or open an issue with the model. "
            "Supported ONNX ops: " + ", ".join(SUPPORTED))


def import_onnx(source, constants=None):
    """Translate an ONNX model (path, bytes or ModelProto) into an IR :class:`Graph`.
    constants: {input name: value} binds those inputs to constants (e.g. a sample rate)."""
    onnx, _ = _onnx()
    model = read_model(source)
    _check_text(model)
    opset = _opset(model)
    g = model.graph
    values = {t.name: _const(t.name, _tensor_array(t, f"initializer '{t.name}'")) for t in g.initializer}
    inputs, declared = _graph_inputs(onnx, g, values, dict(constants or {}))
    translation = _Translation(onnx, opset)
    nodes = translation.nodes(g.node, values)
    translation.check()
    try:
        outputs = [values[o.name] for o in g.output]
    except KeyError as e:
        raise ModelFormatError(f"graph output {e} is produced by no node") from None
    return Graph(nodes, inputs, outputs, opset=opset, source="onnx", declared=declared,
                 meta={"bound_constants": {k: np.asarray(v).tolist() for k, v in (constants or {}).items()}})


def _constant_value(where, a):
    for key, kind, dt in (("value", "tensor", None), ("value_float", "float", np.float32),
                          ("value_floats", "floats", np.float32), ("value_int", "int", np.int64),
                          ("value_ints", "ints", np.int64)):
        if key in a:
            return np.asarray(a(key, kind), dtype=dt)
    raise UnsupportedOpError(f"{where}: unsupported value attribute {sorted(a.protos)}; "
                             "edgernn reads value, value_float(s) and value_int(s)")
