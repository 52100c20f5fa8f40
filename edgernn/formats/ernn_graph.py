"""The prepared IR as a JSON document (the ``model.graph`` key of an .ernn file), and back.

Values are numbered; nodes, graph inputs/outputs and states refer to them by number. A
constant is either a tensor of the file (``"tensor": name``; int8 ones add ``"scale"`` and
``"scale_axis"``) or, for small integer and shape constants, a ``"literal"``. A symbolic
dimension n*T^t*B^b is written ``[n, t, b]``; a plain size is an int. See docs/format.md.

Reading checks the document's structure and every reference in it and raises
:class:`ModelFormatError`; the caller then re-runs shape inference, which checks every op
against its inputs, before anything is planned.
"""
import numpy as np

from ..errors import ModelFormatError
from ..ir.dims import Dim, make_dim
from ..ir.graph import Graph, Node, StateVar, Value
from .. import ops

GRAPH_VERSION = 2          # 2: weight matrices in panels (ops/matvec.py); 1 was input-major [K, N]
MAX_RANK = 8
MAX_DIM = 1 << 28          # elements along one axis; anything larger is a forged size
MAX_ELEMENTS = 1 << 28     # elements in one tensor at T = B = 1


def _dim_out(d):
    return [d.n, d.t, d.b] if isinstance(d, Dim) else int(d)


def _literal_out(a):
    flat = [_dim_out(x) if isinstance(x, Dim) else (x.item() if hasattr(x, "item") else x) for x in a.ravel()]
    return {"dtype": str(a.dtype), "shape": list(a.shape), "data": flat}


def _attr_out(x):
    if isinstance(x, (list, tuple)):
        return [_attr_out(y) for y in x]
    if isinstance(x, dict):
        return {str(k): _attr_out(v) for k, v in x.items()}
    if isinstance(x, np.generic):
        return x.item()
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    raise ModelFormatError(f"attribute value {x!r} ({type(x).__name__}) cannot be written to an .ernn file")


def graph_to_doc(graph, tensor_name):
    """The JSON-ready document. ``tensor_name(array, name)`` registers a numeric constant as a
    file tensor (``name`` suggests its name) and returns the name it got, or None to write it
    as a literal."""
    index, values = {}, []

    def ref(v):
        if v is None:
            return None
        if id(v) not in index:
            index[id(v)] = len(values)
            entry = {"name": v.name, "dtype": v.dtype,
                     "shape": None if v.shape is None else [_dim_out(d) for d in v.shape]}
            values.append(entry)
            if v.is_const:
                name = tensor_name(v.const, v.name) if v.const.dtype != object else None
                if name is None:
                    entry["literal"] = _literal_out(v.const)
                else:
                    entry["tensor"] = name
                    if v.scale is not None:
                        entry["scale"] = tensor_name(v.scale, v.name + ".scale")
                        entry["scale_axis"] = int(v.scale_axis)
        return index[id(v)]

    nodes = [{"op": n.op, "name": n.name, "source_op": n.source_op, "inputs": [ref(v) for v in n.inputs],
              "outputs": [ref(v) for v in n.outputs], "attrs": _attr_out(n.attrs)} for n in graph.nodes]
    states = [{"name": s.name, "value": ref(s.value), "next": ref(s.next),
               "init": tensor_name(np.asarray(s.init, np.float32), s.name + ".init"),
               **({"shown_shape": [int(d) for d in s.shown_shape]} if s.shown_shape is not None else {})}
              for s in graph.states]
    return {"version": GRAPH_VERSION, "values": values, "nodes": nodes,
            "inputs": [ref(v) for v in graph.inputs], "outputs": [ref(v) for v in graph.outputs],
            "states": states, "opset": int(graph.opset), "source": graph.source,
            "meta": _attr_out(graph.meta)}


# ------------------------------------------------------------------ reading
def _fail(what):
    raise ModelFormatError(f"the model graph in this .ernn file is invalid: {what}; re-create the file with "
                           "`edgernn convert`")


def _typed(x, types, what):
    types = types if isinstance(types, tuple) else (types,)
    if not isinstance(x, types) or (isinstance(x, bool) and bool not in types):
        _fail(f"{what} has the wrong type ({type(x).__name__})")
    return x


def _dim_in(d, what):
    if isinstance(d, list):
        if len(d) != 3 or not all(isinstance(x, int) and not isinstance(x, bool) for x in d):
            _fail(f"{what}: a symbolic size must be [n, t, b] integers")
        n, t, b = d
        if not (0 <= n <= MAX_DIM and t in (0, 1) and b in (0, 1)):
            _fail(f"{what}: size {d} out of range")
        return make_dim(n, t, b)
    _typed(d, int, what)
    if not 0 <= d <= MAX_DIM:
        _fail(f"{what}: size {d} out of range")
    return d


def _shape_in(shape, what):
    _typed(shape, list, what)
    if len(shape) > MAX_RANK:
        _fail(f"{what}: rank {len(shape)} > {MAX_RANK}")
    dims = tuple(_dim_in(d, what) for d in shape)
    total = 1
    for d in dims:
        total *= d.n if isinstance(d, Dim) else d
    if total > MAX_ELEMENTS:
        _fail(f"{what}: {total} elements per frame is more than edgernn accepts")
    return dims


def _literal_in(lit, what):
    _typed(lit, dict, what)
    dtype, shape, data = lit.get("dtype"), lit.get("shape"), lit.get("data")
    if dtype not in ("int64", "int32", "bool", "float32", "float64", "object"):
        _fail(f"{what}: literal dtype {dtype!r}")
    shape = _shape_in(shape, what)
    _typed(data, list, what)
    if len(data) != int(np.prod(shape, dtype=np.int64)):
        _fail(f"{what}: literal has {len(data)} elements for shape {list(shape)}")
    if dtype == "object":        # a shape vector: sizes, symbolic sizes, and -1 as a Reshape target holds it
        items = [-1 if x == -1 and not isinstance(x, bool) else _dim_in(x, what) for x in data]
        return np.array(items + [None], dtype=object)[:-1].reshape(shape)
    for x in data:
        _typed(x, (int, float, bool), what)
    return np.array(data, dtype=dtype).reshape(shape)


def _ref(i, values, what, optional=True):
    if i is None and optional:
        return None
    if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(values):
        _fail(f"{what} refers to value {i!r}, which does not exist")
    return values[i]


def _scale_count(shape, axis):
    """Scales an int8 tensor of this shape needs: one per (panel, lane) of a panel matrix
    [P, K, 64] (axis -1), else one per entry of ``axis`` (-1 or -2); -1 when invalid."""
    if len(shape) == 3 and axis == -1:
        return shape[0] * shape[2]
    return shape[axis] if len(shape) >= 2 and axis in (-1, -2) else -1


def doc_to_graph(doc, tensors):
    """Rebuild the graph. ``tensors``: file tensor name -> array (already checked)."""
    _typed(doc, dict, "the document")
    if doc.get("version") != GRAPH_VERSION:
        _fail(f"graph version {doc.get('version')!r} (this edgernn reads {GRAPH_VERSION})")
    values = []
    for k, e in enumerate(_typed(doc.get("values"), list, "values")):
        what = f"value {k}"
        _typed(e, dict, what)
        v = Value(_typed(e.get("name"), str, what + " name"), dtype=_typed(e.get("dtype"), str, what + " dtype"))
        v.shape = None if e.get("shape") is None else _shape_in(e["shape"], what)
        if "tensor" in e:
            name = _typed(e["tensor"], str, what + " tensor")
            if name not in tensors:
                _fail(f"{what} refers to tensor {name!r}, which the file does not hold")
            v.const = tensors[name]
            if "scale" in e:
                scale = tensors.get(_typed(e["scale"], str, what + " scale"))
                axis = e.get("scale_axis")
                if scale is None or v.const.dtype != np.int8 or scale.dtype != np.float32 \
                        or scale.size != _scale_count(v.const.shape, axis):
                    _fail(f"{what}: its int8 scale does not match the tensor")
                v.scale, v.scale_axis = scale, axis
            elif v.const.dtype == np.int8:
                _fail(f"{what}: an int8 tensor needs a scale")
            v.shape = tuple(v.const.shape)
        elif "literal" in e:
            v.const = _literal_in(e["literal"], what)
            v.shape = tuple(v.const.shape)
        values.append(v)
    nodes = []
    for k, e in enumerate(_typed(doc.get("nodes"), list, "nodes")):
        what = f"node {k}"
        _typed(e, dict, what)
        op = _typed(e.get("op"), str, what + " op")
        if op not in ops.OPS:
            _fail(f"{what} has op {op!r}, which this edgernn does not know (a newer file?)")
        ins = [_ref(i, values, what + " input") for i in _typed(e.get("inputs"), list, what + " inputs")]
        outs = [_ref(i, values, what + " output") for i in _typed(e.get("outputs"), list, what + " outputs")]
        nodes.append(Node(op, _typed(e.get("name"), str, what + " name"), ins, outs,
                          _typed(e.get("attrs"), dict, what + " attrs"), _typed(e.get("source_op", ""), str, what)))
    states = []
    for k, e in enumerate(_typed(doc.get("states"), list, "states")):
        what = f"state {k}"
        _typed(e, dict, what)
        value, nxt = _ref(e.get("value"), values, what, False), _ref(e.get("next"), values, what, False)
        init = tensors.get(_typed(e.get("init"), str, what + " init"))
        if init is None or value.shape is None or init.dtype != np.float32 \
                or init.size != int(np.prod([d.n if isinstance(d, Dim) else d for d in value.shape])):
            _fail(f"{what}: its initial value does not match its shape")
        shown = e.get("shown_shape")
        if shown is not None and (not isinstance(shown, list) or not all(isinstance(d, int) and d >= 1 for d in shown)
                                  or int(np.prod(shown)) != init.size):
            _fail(f"{what}: its shown shape {shown!r} does not hold its {init.size} values")
        states.append(StateVar(_typed(e.get("name"), str, what + " name"), value, nxt, init, shown))
    inputs = [_ref(i, values, "graph input", False) for i in _typed(doc.get("inputs"), list, "inputs")]
    outputs = [_ref(i, values, "graph output", False) for i in _typed(doc.get("outputs"), list, "outputs")]
    for v in inputs + [s.value for s in states]:
        if v.shape is None or v.is_const:
            _fail(f"input or state '{v.name}' has no shape or is a constant")
    return Graph(nodes, inputs, outputs, states, opset=_typed(doc.get("opset", 0), int, "opset"),
                 source=_typed(doc.get("source", ""), str, "source"), meta=_typed(doc.get("meta", {}), dict, "meta"))
