"""TFLite mutants: schema mutations through the flatbuffer object API of the schema
ai-edge-litert ships (the model unpacked, changed, packed again). Byte mutations: see
byte_mutations.py."""
import copy

import numpy as np

from .mutants import FLOAT_FORGED, Skip, pick, stacked_mutations


def tflite_schema():
    from ai_edge_litert import schema_py_generated
    return schema_py_generated


class TfliteSeed:
    def __init__(self, seed):
        s = tflite_schema()
        self.seed = seed
        self.data = seed.path.read_bytes()
        self.model = s.ModelT.InitFromPackedBuf(self.data, 0)
        self.whiles = [(gi, oi) for gi, g in enumerate(self.model.subgraphs) for oi, op in enumerate(g.operators or [])
                       if op.builtinOptionsType == s.BuiltinOptions.WhileOptions]

    def copy(self):
        return copy.deepcopy(self.model)


def pack_tflite(m):
    import flatbuffers
    b = flatbuffers.Builder(1 << 16)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


I32 = [-1, -2, 0, 1, 2**31 - 1, -2**31, 2**30, 65536]


def _tensor(m, rng):
    gi = int(rng.integers(len(m.subgraphs)))
    g = m.subgraphs[gi]
    if not g.tensors:
        raise Skip
    ti = int(rng.integers(len(g.tensors)))
    return gi, g, ti, g.tensors[ti]


def _operator(m, rng):
    ops = [(gi, oi, op) for gi, g in enumerate(m.subgraphs) for oi, op in enumerate(g.operators or [])]
    if not ops:
        raise Skip
    return pick(rng, ops)


def tflite_shapes(m, rng):
    gi, g, ti, t = _tensor(m, rng)
    attr = "shapeSignature" if rng.random() < 0.25 else "shape"
    shape = [int(d) for d in (getattr(t, attr) if getattr(t, attr) is not None else [])]
    k = int(rng.integers(5))
    if k == 0 and shape:
        j = int(rng.integers(len(shape)))
        shape[j] = pick(rng, I32 + [shape[j] + 1, shape[j] * 2, 3])
    elif k == 1 and shape:
        del shape[int(rng.integers(len(shape)))]
    elif k == 2:
        shape.insert(int(rng.integers(len(shape) + 1)), pick(rng, [1, 2, 0, -1]))
    elif k == 3:
        shape = pick(rng, [[], [0], [2**31 - 1, 2**31 - 1], [1] * 9, [-1, -1, -1]])
    else:
        shape = shape[::-1]
    setattr(t, attr, np.array(shape, np.int32) if shape else None if rng.random() < 0.5 else np.zeros(0, np.int32))
    return f"subgraph {gi} tensor {ti} {attr} = {shape}"


def tflite_types(m, rng):
    s = tflite_schema()
    gi, g, ti, t = _tensor(m, rng)
    types = [v for k, v in vars(s.TensorType).items() if not k.startswith("_")] + [99, -1]
    t.type = pick(rng, types)
    return f"subgraph {gi} tensor {ti} type = {t.type}"


def tflite_tensor_buffer(m, rng):
    gi, g, ti, t = _tensor(m, rng)
    n = len(m.buffers)
    t.buffer = pick(rng, [0, n - 1, n, n + 5, 2**32 - 1, 2**31, int(rng.integers(n))])
    return f"subgraph {gi} tensor {ti} buffer = {t.buffer} (of {n})"


def tflite_buffer_data(m, rng):
    full = [(i, b) for i, b in enumerate(m.buffers) if b.data is not None and len(b.data)]
    if not full:
        raise Skip
    i, b = pick(rng, full)
    k = int(rng.integers(5))
    if k == 0:
        n = int(rng.integers(len(b.data)))
        b.data = b.data[:n]
        return f"buffer {i} data truncated to {n} bytes"
    if k == 1:
        b.data = None
        return f"buffer {i} data removed"
    if k == 2:
        b.data = np.concatenate([b.data, np.zeros(int(rng.integers(1, 9)), np.uint8)])
        return f"buffer {i} data extended"
    if k == 3:
        b.data, b.offset, b.size = None, pick(rng, [2, 16, 2**40, 2**63]), pick(rng, [4, len(full), 2**40, 2**63])
        return f"buffer {i} data moved to offset {b.offset}, size {b.size}"
    d = np.array(b.data, np.uint8)
    d[int(rng.integers(d.size))] = pick(rng, [0xff, 0x7f, 0x80])
    b.data = d
    return f"buffer {i} one byte forged"


def tflite_opcode(m, rng):
    gi, oi, op = _operator(m, rng)
    n = len(m.operatorCodes)
    op.opcodeIndex = pick(rng, [n, n + 1, 2**32 - 1, 2**31, int(rng.integers(n))])
    return f"subgraph {gi} op {oi} opcodeIndex = {op.opcodeIndex} (of {n})"


def _index_list(lst, n, rng):
    lst = [int(x) for x in (lst if lst is not None else [])]
    k = int(rng.integers(4))
    if k == 0 and lst:
        forged = [-1, -2, n, n + 100, 2**31 - 1, -2**31, int(rng.integers(max(n, 1)))]
        lst[int(rng.integers(len(lst)))] = pick(rng, forged)
    elif k == 1 and lst:
        del lst[int(rng.integers(len(lst)))]
    elif k == 2:
        lst.append(pick(rng, [-1, 0, n, int(rng.integers(max(n, 1)))]))
    else:
        lst = pick(rng, [[], lst[::-1], lst * 2])
    return lst


def tflite_op_io(m, rng):
    gi, oi, op = _operator(m, rng)
    n = len(m.subgraphs[gi].tensors or [])
    attr = pick(rng, ["inputs", "outputs"])
    setattr(op, attr, np.array(_index_list(getattr(op, attr), n, rng), np.int32))
    return f"subgraph {gi} op {oi} {attr} = {getattr(op, attr).tolist()}"


def tflite_subgraph_io(m, rng):
    gi = int(rng.integers(len(m.subgraphs)))
    g = m.subgraphs[gi]
    attr = pick(rng, ["inputs", "outputs"])
    setattr(g, attr, np.array(_index_list(getattr(g, attr), len(g.tensors or []), rng), np.int32))
    return f"subgraph {gi} {attr} = {getattr(g, attr).tolist()}"


def tflite_while(m, rng):
    s = tflite_schema()
    whiles = [(gi, oi, op) for gi, g in enumerate(m.subgraphs) for oi, op in enumerate(g.operators or [])
              if op.builtinOptionsType == s.BuiltinOptions.WhileOptions and op.builtinOptions is not None]
    if not whiles:
        raise Skip
    gi, oi, op = pick(rng, whiles)
    o = op.builtinOptions
    n = len(m.subgraphs)
    k = int(rng.integers(4))
    if k == 0:
        attr = pick(rng, ["bodySubgraphIndex", "condSubgraphIndex"])
        setattr(o, attr, pick(rng, [gi, 0, n, n + 1, -1, 2**31 - 1, -2**31]))
        return f"subgraph {gi} WHILE op {oi} {attr} = {getattr(o, attr)} (the op's own subgraph: {gi})"
    if k == 1:
        o.bodySubgraphIndex, o.condSubgraphIndex = o.condSubgraphIndex, o.bodySubgraphIndex
        return f"subgraph {gi} WHILE op {oi}: body and cond swapped"
    if k == 2:
        # the body calls itself: a WHILE inside the body whose body is the body
        body = m.subgraphs[o.bodySubgraphIndex]
        inner = copy.deepcopy(op)
        inner.inputs, inner.outputs = np.array(body.inputs, np.int32), np.array(body.outputs, np.int32)
        if rng.random() < 0.5:
            body.operators = [inner] + list(body.operators or [])
            where = "first"
        else:
            body.operators = list(body.operators or []) + [inner]
            where = "last"
        return f"subgraph {gi} WHILE op {oi}: its body {o.bodySubgraphIndex} runs a WHILE over itself ({where} op)"
    op.builtinOptions = None if rng.random() < 0.5 else s.AddOptionsT()
    if op.builtinOptions is None or rng.random() < 0.5:
        op.builtinOptionsType = pick(rng, [0, s.BuiltinOptions.AddOptions, 255])
    return f"subgraph {gi} WHILE op {oi} options = {type(op.builtinOptions).__name__}, type {op.builtinOptionsType}"


def tflite_options(m, rng):
    gi, oi, op = _operator(m, rng)
    o = op.builtinOptions
    if o is None or not vars(o) or rng.random() < 0.15:
        op.builtinOptions = None
        return f"subgraph {gi} op {oi} builtin options removed"
    attr = pick(rng, sorted(vars(o)))
    old = getattr(o, attr)
    if isinstance(old, bool):
        new = not old
    elif isinstance(old, (int, np.integer)):
        new = pick(rng, [-1, 0, 1, 2, 3, 5, 6, 99, 127, -128, int(old) + 1])
    elif isinstance(old, float):
        new = pick(rng, FLOAT_FORGED)
    elif old is None or isinstance(old, (list, np.ndarray)):
        new = np.array(pick(rng, [[], [-1], [0, 0, 0], [2**31 - 1], [1, 2, 3, 4, 5, 6, 7]]), np.int32)
    else:
        raise Skip
    setattr(o, attr, new)
    return f"subgraph {gi} op {oi} {type(o).__name__}.{attr} = {new!r}"


def tflite_opcodes(m, rng):
    s = tflite_schema()
    i = int(rng.integers(len(m.operatorCodes)))
    c = m.operatorCodes[i]
    k = int(rng.integers(3))
    names = {v: n for n, v in vars(s.BuiltinOperator).items() if not n.startswith("_")}
    if k == 0:
        c.builtinCode = pick(rng, [s.BuiltinOperator.WHILE, s.BuiltinOperator.ADD, s.BuiltinOperator.FULLY_CONNECTED,
                                   s.BuiltinOperator.CUSTOM, s.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM,
                                   s.BuiltinOperator.SPLIT, s.BuiltinOperator.GATHER, s.BuiltinOperator.RESHAPE,
                                   s.BuiltinOperator.IF, 999, -1])
        return f"operator code {i} builtinCode = {names.get(c.builtinCode, c.builtinCode)}"
    if k == 1:
        c.deprecatedBuiltinCode = pick(rng, [0, 32, 127, -128, 9, 44])
        return f"operator code {i} deprecatedBuiltinCode = {c.deprecatedBuiltinCode}"
    c.version = pick(rng, [0, -1, 99, 2**31 - 1])
    return f"operator code {i} version = {c.version}"


def tflite_quantization(m, rng):
    s = tflite_schema()
    gi, g, ti, t = _tensor(m, rng)
    q = t.quantization if t.quantization is not None else s.QuantizationParametersT()
    t.quantization = q
    k = int(rng.integers(4))
    if k == 0:
        q.scale = pick(rng, [[], [0.0], [float("nan")], [-1.0], [1e-30], [1.0] * 3])
    elif k == 1:
        q.zeroPoint = pick(rng, [[], [1], [0, 0], [-128], [2**40]])
    elif k == 2:
        q.quantizedDimension = pick(rng, [-1, 5, 2**31 - 1, 1])
    else:
        q.scale, q.zeroPoint = [0.5], [0]
    return f"subgraph {gi} tensor {ti} quantization scale={q.scale} zeroPoint={q.zeroPoint} axis={q.quantizedDimension}"


def tflite_structure(m, rng):
    k = int(rng.integers(7))
    n = len(m.subgraphs)
    if k == 0:
        gi, oi, op = _operator(m, rng)
        del m.subgraphs[gi].operators[oi]
        return f"subgraph {gi} op {oi} removed"
    if k == 1:
        gi, oi, op = _operator(m, rng)
        m.subgraphs[gi].operators.insert(oi, copy.deepcopy(op))
        return f"subgraph {gi} op {oi} duplicated"
    if k == 2:
        gi = int(rng.integers(len(m.subgraphs)))
        ops = m.subgraphs[gi].operators or []
        if len(ops) < 2:
            raise Skip
        a, b = rng.choice(len(ops), 2, replace=False)
        ops[a], ops[b] = ops[b], ops[a]
        return f"subgraph {gi} ops {a} and {b} swapped"
    if k == 3 and n > 1:
        gi = int(rng.integers(1, n))
        del m.subgraphs[gi]
        return f"subgraph {gi} removed"
    if k == 4 and n > 1:
        a, b = rng.choice(n, 2, replace=False)
        m.subgraphs[a], m.subgraphs[b] = m.subgraphs[b], m.subgraphs[a]
        return f"subgraphs {a} and {b} swapped"
    if k == 5 and m.signatureDefs:
        sig = m.signatureDefs[0]
        tms = list(sig.inputs or []) + list(sig.outputs or [])
        if rng.random() < 0.5 and tms:
            tm = pick(rng, tms)
            tm.tensorIndex = pick(rng, [-1, 2**31 - 1, len(m.subgraphs[0].tensors), 0])
            return f"signature tensor '{tm.name}' index = {tm.tensorIndex}"
        sig.subgraphIndex = pick(rng, [1, n, 2**31 - 1])
        return f"signature subgraphIndex = {sig.subgraphIndex}"
    k = int(rng.integers(3))
    if k == 0:
        m.buffers = m.buffers[:int(rng.integers(len(m.buffers)))]
        return f"buffers cut to {len(m.buffers)}"
    if k == 1:
        m.operatorCodes = m.operatorCodes[:int(rng.integers(len(m.operatorCodes)))]
        return f"operator codes cut to {len(m.operatorCodes)}"
    gi, g, ti, t = _tensor(m, rng)
    t.isVariable = not t.isVariable
    return f"subgraph {gi} tensor {ti} isVariable = {t.isVariable}"


TFLITE_MUTATORS = [(tflite_shapes, 4), (tflite_types, 1), (tflite_tensor_buffer, 2), (tflite_buffer_data, 2),
                   (tflite_opcode, 2), (tflite_op_io, 3), (tflite_subgraph_io, 1), (tflite_while, 3),
                   (tflite_options, 3), (tflite_opcodes, 1), (tflite_quantization, 2), (tflite_structure, 2)]


def tflite_mutators(seed):
    return [(f, w if seed.whiles or f is not tflite_while else 0) for f, w in TFLITE_MUTATORS]


def mutate_tflite_schema(seed, rng, states=None):
    m = seed.copy()
    whats = stacked_mutations(m, rng, tflite_mutators(seed), states)
    return pack_tflite(m), "; ".join(whats)
