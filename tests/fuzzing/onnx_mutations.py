"""ONNX mutants: structure mutations of a seed's ModelProto (the onnx package's protobuf
objects, serialised again). Byte mutations: byte_mutations.py; external data: escapes.py."""
import copy

import numpy as np

from .mutants import FLOAT_FORGED, Skip, pick, stacked_mutations


def _onnx():
    import onnx
    return onnx


INT_FORGED = [0, 1, -1, 2, 3, -2**31, 2**31 - 1, 2**31, 2**32, 2**40, 2**62, -2**63, 2**63 - 1]
STRING_FORGED = [b"", b"forward", b"reverse", b"bidirectional", b"Tanh", b"Relu", b"Sigmoid", b"HardSigmoid",
                 b"Elu", b"x" * 300, b"\xff\xfe", b"0", b"../x"]
ONNX_OPS = ("Add Cast Concat Constant ConstantOfShape Div Flatten GRU Gather Gemm Identity LSTM "
            "LayerNormalization LogSoftmax MatMul Mul RNN Relu Reshape Shape Sigmoid Slice Softmax "
            "Squeeze Sub Tanh Transpose Unsqueeze").split() + ["Loop", "Scan", "If", "Conv", "", "lstm"]
KNOWN_ATTRS = {
    "LSTM": ["hidden_size", "direction", "layout", "activations", "activation_alpha", "activation_beta", "clip",
             "input_forget"],
    "GRU": ["hidden_size", "direction", "layout", "activations", "activation_alpha", "activation_beta", "clip",
            "linear_before_reset"],
    "RNN": ["hidden_size", "direction", "layout", "activations", "activation_alpha", "activation_beta", "clip"],
    "Gemm": ["alpha", "beta", "transA", "transB"], "Softmax": ["axis"], "LogSoftmax": ["axis"],
    "LayerNormalization": ["axis", "epsilon", "stash_type"], "Transpose": ["perm"], "Concat": ["axis"],
    "Gather": ["axis"], "Squeeze": ["axes"], "Unsqueeze": ["axes"], "Reshape": ["allowzero", "shape"],
    "Slice": ["starts", "ends", "axes"], "Shape": ["start", "end"], "Cast": ["to"], "Flatten": ["axis"],
    "ConstantOfShape": ["value"], "Constant": ["value", "value_float", "value_floats", "value_int", "value_ints"],
}


class OnnxSeed:
    """A parsed seed: the ModelProto, its bytes, and where its bytes are not tensor data."""

    def __init__(self, seed):
        onnx = _onnx()
        self.seed = seed
        self.data = seed.path.read_bytes()
        self.model = onnx.load_from_string(self.data)
        data_bytes = np.zeros(len(self.data), bool)
        for t in self.model.graph.initializer:
            if len(t.raw_data) >= 16:
                at = self.data.find(t.raw_data)
                if at >= 0:
                    data_bytes[at:at + len(t.raw_data)] = True
        self.structure = np.flatnonzero(~data_bytes)     # byte positions outside raw tensor data

    def copy(self):
        m = _onnx().ModelProto()
        m.CopyFrom(self.model)
        return m


def _value_infos(m):
    g = m.graph
    inits = {t.name for t in g.initializer}
    return [("input", v) for v in g.input if v.name not in inits] + [("output", v) for v in g.output] + \
           [("value_info", v) for v in g.value_info]


def _forge_int(rng, v=None):
    return pick(rng, INT_FORGED + ([v + 1, v - 1, -v] if v is not None else []))


def onnx_dims(m, rng):
    if rng.random() < 0.5:
        where, v = pick(rng, _value_infos(m))
        dims = v.type.tensor_type.shape.dim
        if not v.type.tensor_type.HasField("shape") or rng.random() < 0.15:
            k = int(rng.integers(3))
            if k == 0:
                v.type.tensor_type.ClearField("shape")
                return f"{where} '{v.name}': shape removed"
            d = dims.add()
            d.dim_value = pick(rng, [1, 2, 0])
            return f"{where} '{v.name}': an axis appended"
        if not dims:
            raise Skip
        k = int(rng.integers(len(dims)))
        d = dims[k]
        what = int(rng.integers(5))
        if what == 0:
            d.dim_value = _forge_int(rng, d.dim_value)
            return f"{where} '{v.name}' dim {k} = {d.dim_value}"
        if what == 1:
            d.dim_param = pick(rng, ["T", "batch", "N", "", "x" * 200, "T + 1", "-1"])
            return f"{where} '{v.name}' dim {k} = '{d.dim_param}'"
        if what == 2:
            d.Clear()
            return f"{where} '{v.name}' dim {k} cleared (unknown)"
        if what == 3:
            del dims[k]
            return f"{where} '{v.name}' dim {k} removed (rank {len(dims)})"
        for _ in range(int(rng.integers(1, 4))):
            dims.add().dim_value = pick(rng, [1, 2, 5])
        return f"{where} '{v.name}' rank raised to {len(dims)}"
    if not m.graph.initializer:
        raise Skip
    t = pick(rng, m.graph.initializer)
    k = int(rng.integers(4))
    if k == 0 and len(t.dims):
        j = int(rng.integers(len(t.dims)))
        t.dims[j] = _forge_int(rng, t.dims[j])
        return f"initializer '{t.name}' dims[{j}] = {t.dims[j]} (data unchanged)"
    if k == 1 and len(t.dims):
        del t.dims[int(rng.integers(len(t.dims)))]
        return f"initializer '{t.name}' one dim removed: {list(t.dims)}"
    if k == 2:
        t.dims.append(pick(rng, [1, 2, 0]))
        return f"initializer '{t.name}' dim appended: {list(t.dims)}"
    # same element count, other shape: the data still fits, the meaning does not
    n = int(np.prod(t.dims)) if len(t.dims) else 1
    shape = pick(rng, [[n], [1, n], [n, 1], list(t.dims)[::-1], [1] + list(t.dims), list(t.dims) + [1]])
    del t.dims[:]
    t.dims.extend(shape)
    return f"initializer '{t.name}' reshaped to {shape} (same size)"


def onnx_dtypes(m, rng):
    onnx = _onnx()
    types = [v for k, v in onnx.TensorProto.DataType.items()] + [99, -1]
    k = int(rng.integers(3))
    if k == 0:
        where, v = pick(rng, _value_infos(m))
        v.type.tensor_type.elem_type = pick(rng, types)
        return f"{where} '{v.name}' elem_type = {v.type.tensor_type.elem_type}"
    if k == 1 and m.graph.initializer:
        t = pick(rng, m.graph.initializer)
        t.data_type = pick(rng, types)
        return f"initializer '{t.name}' data_type = {t.data_type} (data unchanged)"
    casts = [n for n in m.graph.node if n.op_type == "Cast"]
    node = pick(rng, casts) if casts else pick(rng, m.graph.node)
    _set_attr(node, "to", onnx.AttributeProto.INT, pick(rng, types))
    return f"node '{node.name}' ({node.op_type}) attribute to = {node.attribute[-1].i}"


def _set_attr(node, name, kind, value, keep=False):
    onnx = _onnx()
    if not keep:
        for a in [a for a in node.attribute if a.name == name]:
            node.attribute.remove(a)
    a = onnx.AttributeProto(name=name, type=kind)
    A = onnx.AttributeProto
    if kind == A.INT:
        a.i = value
    elif kind == A.FLOAT:
        a.f = value
    elif kind == A.STRING:
        a.s = value
    elif kind == A.INTS:
        a.ints.extend(value)
    elif kind == A.FLOATS:
        a.floats.extend(value)
    elif kind == A.STRINGS:
        a.strings.extend(value)
    elif kind == A.TENSOR:
        a.t.CopyFrom(value)
    elif kind == A.GRAPH:
        a.g.CopyFrom(value)
    node.attribute.append(a)
    return a


def _forged_tensor(rng):
    onnx = _onnx()
    from onnx import numpy_helper
    k = int(rng.integers(5))
    if k == 0:
        return numpy_helper.from_array(np.zeros(pick(rng, [(0,), (2, 3), (), (1, 1, 1)]), np.float32), "t")
    if k == 1:
        return numpy_helper.from_array(np.array(pick(rng, [[-1], [2**40], [0, -1], [3, 2**31]]), np.int64), "t")
    if k == 2:
        return numpy_helper.from_array(np.array([np.nan, np.inf], np.float32), "t")
    t = onnx.TensorProto(name="t", data_type=pick(rng, [1, 7, 11, 8, 99]))
    t.dims.extend(pick(rng, [[4], [2**31], [-1], [1, 0], []]))
    t.raw_data = bytes(int(rng.integers(0, 12)))
    return t


def _forged_value(rng, kind, old):
    A = _onnx().AttributeProto
    if kind == A.INT:
        return _forge_int(rng, old.i if old is not None and old.type == A.INT else None)
    if kind == A.FLOAT:
        return pick(rng, FLOAT_FORGED)
    if kind == A.STRING:
        return pick(rng, STRING_FORGED)
    if kind == A.INTS:
        cur = list(old.ints) if old is not None and old.type == A.INTS else [0, 1, 2]
        k = int(rng.integers(5))
        if k == 0:
            return []
        if k == 1 and cur:
            cur[int(rng.integers(len(cur)))] = _forge_int(rng)
            return cur
        if k == 2:
            return cur + [pick(rng, [0, 1, 2, 3, -1, 7])]
        if k == 3 and cur:
            return cur[:-1]
        return [int(v) for v in rng.permutation(cur)] if cur else [2**62]
    if kind == A.FLOATS:
        return pick(rng, [[], [float("nan")], [1.0, 2.0, 3.0], [0.5] * 9, [1e30]])
    if kind == A.STRINGS:
        cur = list(old.strings) if old is not None and old.type == A.STRINGS else [b"Sigmoid", b"Tanh", b"Tanh"]
        return pick(rng, [[], cur[:-1], cur + [b"Relu"], [b"Bogus"] * max(1, len(cur)), [b"relu"] * len(cur),
                          [b"HardSigmoid", b"Elu", b"Affine"], [b"\xff"]])
    return _forged_tensor(rng)


def onnx_attributes(m, rng):
    A = _onnx().AttributeProto
    node = pick(rng, list(m.graph.node))
    names = sorted({a.name for a in node.attribute} | set(KNOWN_ATTRS.get(node.op_type, [])))
    k = int(rng.integers(8))
    if k == 0 and node.attribute:
        a = pick(rng, list(node.attribute))
        node.attribute.remove(a)
        return f"node '{node.name}' ({node.op_type}) attribute {a.name} removed"
    if k == 1 and node.attribute:
        a = pick(rng, list(node.attribute))
        node.attribute.append(copy.deepcopy(a))
        return f"node '{node.name}' ({node.op_type}) attribute {a.name} duplicated"
    if k == 2 and node.attribute:
        a = pick(rng, list(node.attribute))
        a.type = pick(rng, [0, A.INT, A.FLOAT, A.STRING, A.INTS, A.TENSOR, A.GRAPH, 99])
        return f"node '{node.name}' ({node.op_type}) attribute {a.name}: type field = {a.type}, value fields kept"
    if k == 3:
        name = pick(rng, ["junk", "direction", "hidden_size", "axis", "perm", "activations"])
        _set_attr(node, name, A.INT, 1)
        return f"node '{node.name}' ({node.op_type}) attribute {name} = 1 added"
    if not names:
        raise Skip
    name = pick(rng, names)
    old = next((a for a in node.attribute if a.name == name), None)
    same = old is not None and rng.random() < 0.6
    kind = old.type if same else pick(rng, [A.INT, A.FLOAT, A.STRING, A.INTS, A.FLOATS, A.STRINGS, A.TENSOR])
    if kind in (A.GRAPH, A.GRAPHS, A.SPARSE_TENSOR, A.TENSORS, 0):
        raise Skip
    value = _forged_value(rng, kind, old)
    _set_attr(node, name, kind, value)
    shown = value if not hasattr(value, "dims") else f"tensor dims {list(value.dims)} type {value.data_type}"
    return f"node '{node.name}' ({node.op_type}) attribute {name} = {shown!r} ({A.AttributeType.Name(kind)})"


def _all_names(m):
    g = m.graph
    names = [t.name for t in g.initializer] + [v.name for v in g.input]
    for n in g.node:
        names += [o for o in n.output if o]
    return names


def onnx_inputs(m, rng):
    nodes = [n for n in m.graph.node if len(n.input)]
    if not nodes:
        raise Skip
    node = pick(rng, nodes)
    k = int(rng.integers(5))
    j = int(rng.integers(len(node.input)))
    if k == 0:
        del node.input[-1]
        return f"node '{node.name}' ({node.op_type}) last input dropped"
    if k == 1:
        old = node.input[j]
        node.input[j] = ""
        return f"node '{node.name}' ({node.op_type}) input {j} ('{old}') made optional-absent"
    if k == 2:
        node.input[j] = pick(rng, _all_names(m))
        return f"node '{node.name}' ({node.op_type}) input {j} rewired to '{node.input[j]}'"
    if k == 3:
        node.input[j] = "nothing_makes_this"
        return f"node '{node.name}' ({node.op_type}) input {j} names a missing value"
    node.input.append(pick(rng, _all_names(m) + [""]))
    return f"node '{node.name}' ({node.op_type}) extra input '{node.input[-1]}'"


def onnx_names(m, rng):
    g = m.graph
    k = int(rng.integers(4))
    names = _all_names(m)
    if k == 0:
        node = pick(rng, [n for n in g.node if len(n.output)])
        j = int(rng.integers(len(node.output)))
        node.output[j] = pick(rng, names)
        return f"node '{node.name}' ({node.op_type}) output {j} renamed to existing '{node.output[j]}'"
    if k == 1 and len(g.initializer) > 1:
        t = pick(rng, g.initializer)
        t.name = pick(rng, [x.name for x in g.initializer] + [v.name for v in g.input])
        return f"an initializer renamed to '{t.name}' (duplicate)"
    if k == 2:
        v = pick(rng, list(g.input))
        dup = g.input.add()
        dup.CopyFrom(v)
        return f"graph input '{v.name}' listed twice"
    node = pick(rng, list(g.node))
    other = pick(rng, list(g.node))
    node.name = other.name
    return f"node names duplicated: '{node.name}'"


def onnx_nodes(m, rng):
    g = m.graph
    nodes = list(g.node)
    k = int(rng.integers(6))
    j = int(rng.integers(len(nodes)))
    if k == 0:
        del g.node[j]
        return f"node {j} ({nodes[j].op_type}) removed"
    if k == 1:
        g.node.insert(j, copy.deepcopy(nodes[j]))
        return f"node {j} ({nodes[j].op_type}) duplicated"
    if k == 2:
        i = int(rng.integers(len(nodes)))
        a, b = copy.deepcopy(nodes[i]), copy.deepcopy(nodes[j])
        g.node[i].CopyFrom(b)
        g.node[j].CopyFrom(a)
        return f"nodes {i} and {j} swapped"
    if k == 3:
        order = [copy.deepcopy(n) for n in reversed(nodes)]
        del g.node[:]
        g.node.extend(order)
        return "node order reversed"
    if k == 4:
        old = nodes[j].op_type
        g.node[j].op_type = pick(rng, ONNX_OPS)
        return f"node {j} op {old} -> '{g.node[j].op_type}'"
    g.node[j].domain = pick(rng, ["com.microsoft", "ai.onnx.ml", "ai.onnx", "x"])
    return f"node {j} ({nodes[j].op_type}) domain '{g.node[j].domain}'"


def _remove_one(entries, rng, label):
    """Remove one of ``entries`` (graph inputs, outputs or initializers), drawn by ``rng``."""
    v = entries[int(rng.integers(len(entries)))]
    name = v.name
    entries.remove(v)
    return f"{label} '{name}' removed"


def _add_copy_of_first(entries, name, label):
    """Append a copy of ``entries[0]`` (graph inputs or outputs) named ``name``."""
    v = entries.add()
    v.CopyFrom(entries[0])
    v.name = name
    return f"{label} '{v.name}' added"


def onnx_graph_io(m, rng):
    g = m.graph
    k = int(rng.integers(6))
    if k == 0 and len(g.input):
        return _remove_one(g.input, rng, "graph input")
    if k == 1 and len(g.output):
        return _remove_one(g.output, rng, "graph output")
    if k == 2:
        return _add_copy_of_first(g.output, pick(rng, _all_names(m)), "graph output")
    if k == 3 and len(g.initializer):
        return _remove_one(g.initializer, rng, "initializer")
    if k == 4:
        extra = pick(rng, ["extra", g.initializer[0].name if len(g.initializer) else "extra2"])
        return _add_copy_of_first(g.input, extra, "graph input")
    del g.output[:]
    return "every graph output removed"


def onnx_opset(m, rng):
    k = int(rng.integers(4))
    if k == 0:
        del m.opset_import[:]
        return "opset_import removed"
    if k == 1:
        m.ir_version = pick(rng, [0, 1, 3, 999, -1, 2**62])
        return f"ir_version = {m.ir_version}"
    if k == 2:
        o = m.opset_import.add()
        o.domain, o.version = pick(rng, ["", "ai.onnx", "com.microsoft"]), pick(rng, [1, 7, 999])
        return f"opset_import entry added: '{o.domain}' {o.version}"
    version = pick(rng, [0, 1, 4, 5, 6, 7, 9, 10, 12, 13, 14, 17, 18, 21, 22, 999, -1, 2**62, -2**63])
    for o in m.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = version
    return f"default opset = {version}"


def onnx_data(m, rng):
    onnx = _onnx()
    from onnx import numpy_helper
    g = m.graph
    if not g.initializer:
        raise Skip
    t = pick(rng, g.initializer)
    arr = numpy_helper.to_array(t)
    k = int(rng.integers(5))
    if k == 0:
        n = int(rng.integers(len(t.raw_data) + 1)) if t.raw_data else 0
        t.raw_data = t.raw_data[:n]
        return f"initializer '{t.name}' raw_data cut to {n} bytes"
    if k == 1:
        t.raw_data = t.raw_data + bytes(int(rng.integers(1, 9)))
        return f"initializer '{t.name}' raw_data extended"
    if k == 2:
        if arr.dtype.kind == "f":
            new = arr.copy().ravel()
            new[int(rng.integers(new.size))] = pick(rng, [np.nan, np.inf, 1e38, -1e38]) if new.size else 0
        elif arr.dtype.kind in "iu":
            new = arr.copy().ravel()
            if new.size:
                new[int(rng.integers(new.size))] = pick(rng, [0, -1, -2, 2**31, 2**62, -2**63, 2**63 - 1, 13, 1000])
        else:
            raise Skip
        t.raw_data = new.astype(arr.dtype).tobytes()
        return f"initializer '{t.name}' one element forged"
    if k == 3:
        t.ClearField("raw_data")
        if arr.dtype.kind == "f":
            t.float_data.extend([1.0] * int(rng.integers(0, max(2, arr.size + 2))))
        else:
            t.int64_data.extend([1] * int(rng.integers(0, max(2, arr.size + 2))))
        return f"initializer '{t.name}' data moved to a typed field with a different count"
    t.float_data.append(1.0)
    return f"initializer '{t.name}' both raw_data and float_data set"


ONNX_MUTATORS = [(onnx_dims, 3), (onnx_dtypes, 2), (onnx_attributes, 4), (onnx_inputs, 2), (onnx_names, 1),
                 (onnx_nodes, 2), (onnx_graph_io, 1), (onnx_opset, 1), (onnx_data, 2)]


def mutate_onnx_structure(seed, rng, states=None):
    m = seed.copy()
    whats = stacked_mutations(m, rng, ONNX_MUTATORS, states)
    return m.SerializeToString(), "; ".join(whats)
