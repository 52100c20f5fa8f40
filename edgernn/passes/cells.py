"""Recognise standard recurrent cells in per-step graphs and run them on the fast kernels.

A TFLite ``WHILE`` loop is imported as its body's ops plus per-stream states (see
:mod:`edgernn.formats.tflite_while`). When those ops are a Keras LSTM, GRU (reset_after
True or False) or SimpleRNN cell, this pass replaces them by one IR ``lstm`` / ``gru`` /
``rnn`` node, which reads its weights once per step and updates its state in place.

How a cell is found, without depending on the exact ops a converter emitted:

1. States that depend on each other (h and c of an LSTM) form a group: a strongly connected
   component of "s.next reads t.value".
2. Every value around the group gets an *affine form* ``sum_leaf M_leaf @ leaf + bias`` by
   propagating through linear ops (dense, add/sub, mul/div by a constant, slices, splits,
   reshapes, concat); any other op's output is an opaque leaf. A *gate* is an activation
   (sigmoid, tanh, relu) whose input is affine in the state h and one outside input x.
3. The gates' roles are assigned by the cell's equations (which gate multiplies c, which
   one resets h, ...), the weights are read off the forms, in ONNX gate order.
4. The candidate is **verified numerically**: the original ops and the candidate IR op, both
   evaluated with the ops' NumPy references on random x and states, must agree. Only then is
   the replacement made; otherwise the ops stay as they are and run as a per-step graph.

So recognition can miss a cell (it then runs slower) but cannot change what a model computes.
"""
import itertools
import re

import numpy as np

from .. import ops
from ..errors import EdgeRNNError
from ..ir.dims import T
from ..ir.graph import Node, Value
from ..ops.activations import RELU, SIGMOID, TANH
from ..ops.history import gate_of
from ..ops.recurrent import RecurrentOp

ACTIVATIONS = {"sigmoid": SIGMOID, "tanh": TANH, "relu": RELU}
LINEAR_LAYOUT = {"reshape", "squeeze", "unsqueeze", "flatten", "identity"}
INDEXING = {"slice", "gather", "transpose", "concat"}
VERIFY_TOL = 1e-4
TRIALS = 3


# ---------------------------------------------------------------- affine forms
class Affine:
    """value = sum over leaves of M @ leaf + bias, on the values' flattened T = B = 1 data."""

    def __init__(self, n, terms=None, bias=None):
        self.n = n
        self.terms = terms or {}                     # id(leaf) -> (leaf, M [n, leaf.size])
        self.bias = np.zeros(n) if bias is None else np.asarray(bias, np.float64).reshape(n)

    @staticmethod
    def leaf(v):
        return Affine(v.size, {id(v): (v, np.eye(v.size))})

    def map(self, m, b=None):
        """m @ self (+ b)."""
        return Affine(m.shape[0], {k: (v, m @ M) for k, (v, M) in self.terms.items()},
                      m @ self.bias + (0 if b is None else b))

    def rows(self, idx):
        return Affine(len(idx), {k: (v, M[idx]) for k, (v, M) in self.terms.items()}, self.bias[idx])

    def plus(self, other, sign=1.0):
        terms = dict(self.terms)
        for k, (v, M) in other.terms.items():
            terms[k] = (v, terms[k][1] + sign * M if k in terms else sign * M)
        return Affine(self.n, terms, self.bias + sign * other.bias)

    def coef(self, v):
        return self.terms[id(v)][1] if id(v) in self.terms else np.zeros((self.n, v.size))

    def leaves(self):
        return [v for v, M in self.terms.values() if np.any(M)]


class Forms:
    """Affine forms of the graph's values, computed on demand."""

    def __init__(self, graph, stop):
        self.prod = graph.producers()
        self.stop = stop              # ids of values that are always leaves
        self.memo = {}

    def of(self, v):
        if id(v) not in self.memo:
            self.memo[id(v)] = self._form(v)
        return self.memo[id(v)]

    def _form(self, v):
        if v.is_const:
            return Affine(v.size, bias=np.asarray(v.const, np.float64).ravel()) if v.const.dtype.kind == "f" \
                else Affine.leaf(v)
        node = self.prod.get(id(v))
        if node is None or id(v) in self.stop or len(node.outputs) != 1:
            return Affine.leaf(v)
        ins = node.inputs
        try:
            if node.op == "dense" and ins[0].size == ins[1].const.shape[1]:
                b = ins[2].const.astype(np.float64) if node.input(2) is not None else None
                return self.of(ins[0]).map(ins[1].const.astype(np.float64), b)
            if node.op in ("add", "sub", "mul", "div"):
                return self._elementwise(node, v)
            if node.op in LINEAR_LAYOUT and ins[0].size == v.size:
                return self.of(ins[0])
            if node.op in INDEXING:
                return self._indexing(node, v)
        except (ValueError, KeyError, TypeError):
            pass
        return Affine.leaf(v)

    def _elementwise(self, node, v):
        a, b = node.inputs
        shape = v.concrete_shape
        if node.op in ("add", "sub"):
            fa, fb = (self._broadcast(x, shape) for x in (a, b))
            if fa is None or fb is None:
                return Affine.leaf(v)
            return fa.plus(fb, 1.0 if node.op == "add" else -1.0)
        dyn, c = (a, b) if b.is_const else (b, a) if a.is_const else (None, None)
        if dyn is None or dyn.size != v.size or (node.op == "div" and dyn is not a):
            return Affine.leaf(v)
        scale = np.broadcast_to(np.asarray(c.const, np.float64), shape).ravel()
        return self.of(dyn).map(np.diag(1.0 / scale if node.op == "div" else scale))

    def _broadcast(self, x, shape):
        if x.is_const:
            return Affine(int(np.prod(shape)), bias=np.broadcast_to(np.asarray(x.const, np.float64), shape).ravel())
        return self.of(x) if x.size == int(np.prod(shape)) else None

    def _indexing(self, node, v):
        """Row selection found by running the op's reference on element indices."""
        offset, arrays, forms = 0, [], []
        for k, x in enumerate(node.inputs):
            if x is None or (k > 0 and node.op != "concat"):
                arrays.append(None if x is None else x.const)
                continue
            arrays.append(np.arange(offset, offset + x.size, dtype=np.float64).reshape(x.concrete_shape))
            forms.append(self.of(x))
            offset += x.size
        idx = np.asarray(ops.get(node.op).reference(node, *arrays)[0], np.float64).ravel().astype(np.int64)
        stacked = forms[0]
        for f in forms[1:]:
            stacked = _vstack(stacked, f)
        return stacked.rows(idx)


def _vstack(a, b):
    keys = {**{k: v for k, (v, _) in a.terms.items()}, **{k: v for k, (v, _) in b.terms.items()}}
    terms = {k: (leaf, np.vstack([a.coef(leaf), b.coef(leaf)])) for k, leaf in keys.items()}
    return Affine(a.n + b.n, terms, np.concatenate([a.bias, b.bias]))


# ---------------------------------------------------------------- graph helpers
def _state_groups(graph, prod):
    """Strongly connected groups of states (s.next depends on t.value both ways)."""
    deps = {}
    for s in graph.states:
        seen, stack, hit = set(), [s.next], set()
        while stack:
            v = stack.pop()
            if v is None or id(v) in seen:
                continue
            seen.add(id(v))
            owner = next((t for t in graph.states if t.value is v), None)
            if owner is not None:
                hit.add(id(owner))
                continue
            n = prod.get(id(v))
            if n is not None:
                stack.extend(n.inputs)
        deps[id(s)] = hit
    groups, done = [], set()
    for s in graph.states:
        if id(s) in done:
            continue
        group = [t for t in graph.states if id(t) == id(s) or (id(t) in deps[id(s)] and id(s) in deps[id(t)])]
        done.update(id(t) for t in group)
        groups.append(group)
    return groups


def _region(graph, values, nexts):
    """Nodes on paths from `values` to `nexts`, in graph order."""
    fwd = {id(v) for v in values}
    for n in graph.nodes:
        if any(v is not None and id(v) in fwd for v in n.inputs):
            fwd.update(id(v) for v in n.outputs if v is not None)
    prod = graph.producers()
    back, stack = set(), list(nexts)
    while stack:
        v = stack.pop()
        n = prod.get(id(v))
        if n is None or id(n) in back or not any(id(o) in fwd for o in n.outputs if o is not None):
            continue
        back.add(id(n))
        stack.extend(x for x in n.inputs if x is not None)
    return [n for n in graph.nodes if id(n) in back], fwd


def _closure(graph, targets, leaves):
    """Nodes needed to compute `targets` from `leaves` and constants, or None if they need
    any other computed value."""
    prod = graph.producers()
    leaf_ids = {id(v) for v in leaves}
    need, stack = set(), list(targets)
    while stack:
        v = stack.pop()
        if v is None or v.is_const or id(v) in leaf_ids:
            continue
        n = prod.get(id(v))
        if n is None:
            return None
        if id(n) not in need:
            need.add(id(n))
            stack.extend(n.inputs)
    return [n for n in graph.nodes if id(n) in need]


def _evaluate(nodes, env, targets):
    env = dict(env)
    for n in nodes:
        args = [None if v is None else (v.const if v.is_const else env[id(v)]) for v in n.inputs]
        for v, a in zip(n.outputs, ops.get(n.op).reference(n, *args)):
            if v is not None:
                env[id(v)] = np.asarray(a, np.float32).reshape(v.concrete_shape)
    return [env[id(t)] for t in targets]


# ---------------------------------------------------------------- cell candidates
class Cell:
    """What a recognised cell needs: its group of states, its input x, its gates."""

    def __init__(self, graph, group, forms, region, fwd):
        self.graph, self.group, self.forms, self.region, self.fwd = graph, group, forms, region, fwd
        self.gates = []          # (activation node, Affine of its input)
        for n in region:
            if n.op in ACTIVATIONS:
                self.gates.append((n, forms.of(n.inputs[0])))
        self.x = None

    def primary(self, h):
        """Gates affine in (x, h) only; sets self.x (one shared outside input) or returns []."""
        out = []
        for n, f in self.gates:
            leaves = f.leaves()
            inner = [v for v in leaves if id(v) in self.fwd and v is not h]
            outer = [v for v in leaves if id(v) not in self.fwd]
            if inner or len(outer) > 1:
                continue
            if outer:
                if self.x is None:
                    self.x = outer[0]
                elif outer[0] is not self.x:
                    return []
            out.append((n, f))
        return out


def _code(n):
    return ACTIVATIONS[n.op]


def _lstm_candidates(cell, group):
    H = group[0].value.size
    for s_h, s_c in (group, group[::-1]):
        h = s_h.value
        gates = [(n, f) for n, f in cell.primary(h) if n.outputs[0].size == H]
        if len(gates) != 4 or cell.x is None:
            continue
        h_act = next((n for n in cell.region if n.op in ACTIVATIONS and n.inputs[0] is s_c.next), None)
        if h_act is None:
            continue
        for i, f, g, o in itertools.permutations(gates):
            if not _code(i[0]) == _code(f[0]) == _code(o[0]):
                continue
            order = [i, o, f, g]                                     # ONNX i, o, f, c
            W = np.concatenate([q.coef(cell.x) for _, q in order])
            R = np.concatenate([q.coef(h) for _, q in order])
            Bv = np.concatenate([q.bias for _, q in order] + [np.zeros(4 * H)])
            acts = [(_code(i[0]), 0.0, 0.0), (_code(g[0]), 0.0, 0.0), (_code(h_act), 0.0, 0.0)]
            yield "lstm", [s_h, s_c], (W, R, Bv), dict(hidden_size=H, layout=0, acts=acts, clip=None,
                                                       input_forget=0)


def _gru_candidates(cell, group):
    s = group[0]
    h = s.value
    H = h.size
    gates = [(n, f) for n, f in cell.primary(h) if n.outputs[0].size == H]
    if len(gates) != 2 or cell.x is None:
        return
    prod = cell.forms.prod
    for z, r in (gates, gates[::-1]):
        r_out = r[0].outputs[0]
        for n, f in cell.gates:
            if any(n is q[0] for q in gates) or n.outputs[0].size != H:
                continue
            opaque = [v for v in f.leaves() if id(v) in cell.fwd and v is not h]
            if len(opaque) != 1 or any(id(v) not in cell.fwd and v is not cell.x for v in f.leaves()):
                continue
            u = opaque[0]
            mul = prod.get(id(u))
            if mul is None or mul.op != "mul":
                continue
            a, b = mul.inputs
            other = b if a is r_out else a if b is r_out else None
            if other is None:
                continue
            if other is h:                                            # n = g(Wx + R_h (r * h) + b)
                lbr, Rh, bx, bh = 0, f.coef(u), f.bias, np.zeros(H)
            else:                                                     # n = g(Wx + r * (R_h h + b_h) + b_x)
                p = cell.forms.of(other)
                if not np.allclose(f.coef(u), np.eye(H)) or any(v is not h for v in p.leaves()):
                    continue
                lbr, Rh, bx, bh = 1, p.coef(h), f.bias, p.bias
            W = np.concatenate([z[1].coef(cell.x), r[1].coef(cell.x), f.coef(cell.x)])
            R = np.concatenate([z[1].coef(h), r[1].coef(h), Rh])
            Bv = np.concatenate([z[1].bias, r[1].bias, bx, np.zeros(2 * H), bh])
            acts = [(_code(z[0]), 0.0, 0.0), (_code(n), 0.0, 0.0)]
            if _code(z[0]) != _code(r[0]):
                continue
            yield "gru", [s], (W, R, Bv), dict(hidden_size=H, layout=0, acts=acts, clip=None,
                                               linear_before_reset=lbr)


def _rnn_candidates(cell, group):
    s = group[0]
    h = s.value
    for n, f in cell.primary(h):
        if n.outputs[0] is s.next and cell.x is not None:
            W, R = f.coef(cell.x), f.coef(h)
            Bv = np.concatenate([f.bias, np.zeros(h.size)])
            yield "rnn", [s], (W, R, Bv), dict(hidden_size=h.size, layout=0, acts=[(_code(n), 0.0, 0.0)], clip=None)


# ---------------------------------------------------------------- replacement
def _sequence_input(graph, x, new_nodes):
    """The [T, B, I] sequence the recurrent op reads: take_frame's input, or put_frame(x)."""
    prod = graph.producers()
    n = prod.get(id(x))
    if n is not None and n.op == "take_frame" and len(n.inputs[0].shape) == 3:
        return n.inputs[0]
    if len(x.shape) != 2:
        return None
    seq = Value(x.name + "/as_sequence")
    new_nodes.append(Node("put_frame", x.name + "/as_sequence", [x], [seq], source_op="cell recognition"))
    return seq


def _build(graph, kind, states, params, attrs, x, tag):
    """The recurrent node (not yet in the graph) and the nodes around it, with shapes."""
    pre = []
    seq = _sequence_input(graph, x, pre)
    if seq is None:
        return None
    for n in pre:
        n.outputs[0].shape = (T,) + tuple(x.shape)
    W, R, Bv = (np.asarray(p, np.float32)[None] for p in params)
    consts = [Value(f"{tag}/{k}", shape=a.shape, const=a) for k, a in (("W", W), ("R", R), ("B", Bv))]
    batch = seq.shape[1]
    H = attrs["hidden_size"]
    init = [Value(s.name, shape=(1, batch, H)) for s in states]
    outs = [Value(f"{tag}/Y")] + [Value(f"{tag}/Y_{k}") for k in ("h", "c")[:len(states)]]
    node = Node(kind, tag, [seq] + consts + [None] + init, outs, attrs, source_op="recognised cell")
    for v, (shape, dtype) in zip(outs, ops.get(kind).infer(node)):
        v.shape, v.dtype = shape, dtype
    return pre, node, init


def _verify(graph, states, x, node, init):
    """Original ops vs the candidate node's reference on random x and states."""
    nexts = [s.next for s in states]
    closure = _closure(graph, nexts, [x] + [s.value for s in states])
    if closure is None:
        return False
    rng = np.random.default_rng(0)
    op = ops.get(node.op)
    with np.errstate(all="ignore"):
        return all(_trial(rng, op, closure, nexts, states, x, node, init) for _ in range(TRIALS))


def _trial(rng, op, closure, nexts, states, x, node, init):
    """One random x and state: do the original ops and the candidate agree? (NaN: no.)"""
    xa = rng.normal(size=x.concrete_shape).astype(np.float32)
    sa = [rng.uniform(-1.5, 1.5, size=s.value.concrete_shape).astype(np.float32) for s in states]
    env = {id(x): xa, **{id(s.value): a for s, a in zip(states, sa)}}
    want = _evaluate(closure, env, nexts)
    args = [xa.reshape(node.inputs[0].concrete_shape)] + [v.const for v in node.inputs[1:4]] + [None]
    args += [a.reshape(v.concrete_shape) for a, v in zip(sa, init)]
    got = op.reference(node, *args)[1:1 + len(states)]
    return all(np.abs(g.ravel() - w.ravel()).max() <= VERIFY_TOL for g, w in zip(got, want))


def _replace(graph, states, pre, node, init, region):
    """Swap the cell's ops for the recurrent node; the old next values become views of Y_h/Y_c."""
    old_next = [s.next for s in states]
    removed = {id(n) for n in region}
    node.attrs.update(gate_of(region))                 # a cell after a look-ahead or stride keeps its frames
    graph.nodes = [n for n in graph.nodes if id(n) not in removed]
    graph.nodes += pre + [node]
    for s, v, out, nxt, role in zip(states, init, node.outputs[1:], old_next, ("h", "c")):
        if re.search(r"/state\d+$", s.name):          # a WHILE state named by the importer
            s.name = v.name = re.sub(r"/state\d+$", "/" + role, s.name)
        if s.shown_shape is None:
            s.shown_shape = s.value.frame_shape        # what the file's state looks like, per stream
        s.value, s.next = v, out
        s.init = s.init.reshape(v.concrete_shape)
        graph.nodes.append(Node("squeeze", f"{node.name}/{out.name}", [out, _axis0()], [nxt],
                                source_op="recognised cell"))
    graph.nodes = _toposort(graph)


def _axis0():
    a = np.array([0], np.int64)
    return Value("axis0", shape=a.shape, dtype="int64", const=a)


def _toposort(graph):
    """Nodes in an order where every computed input is produced first (stable otherwise)."""
    produced = {id(v) for n in graph.nodes for v in n.outputs if v is not None}
    known = set()
    pending, out = list(graph.nodes), []
    while pending:
        rest = []
        for n in pending:
            if all(v is None or id(v) not in produced or id(v) in known for v in n.inputs):
                out.append(n)
                known.update(id(v) for v in n.outputs if v is not None)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise EdgeRNNError("internal: cell recognition left a cycle; please report this model")
        pending = rest
    return out


def _self_contained(graph, region, states, fwd):
    """The cell's internal values (other than the next states) are read only inside it (or
    by dead ops, such as the empty third part a converter's SPLIT_V may leave)."""
    inside = {id(n) for n in region}
    keep = {id(s.next) for s in states}
    produced = {id(v) for n in region for v in n.outputs if v is not None} - keep
    produced |= {id(s.value) for s in states}
    outputs = {id(v) for v in graph.outputs} | {id(s.next) for s in graph.states if s not in states}
    for n in graph.live_nodes():
        if id(n) not in inside and any(v is not None and id(v) in produced for v in n.inputs):
            return False
    return not (produced & outputs)


def recognise_cells(graph):
    """Replace every recognised cell (see the module docstring); returns their kinds."""
    found = []
    for group in _state_groups(graph, graph.producers()):
        if any(isinstance(ops.get(n.op), RecurrentOp) for s in group for n in graph.consumers().get(id(s.value), [])):
            continue
        region, fwd = _region(graph, [s.value for s in group], [s.next for s in group])
        if not region or not _self_contained(graph, region, group, fwd):
            continue
        stop = {id(n.outputs[0]) for n in graph.nodes if n.op in ("take_frame", "put_frame")}
        stop |= {id(s.value) for s in graph.states}
        cell = Cell(graph, group, Forms(graph, stop), region, fwd)
        gens = [_lstm_candidates] if len(group) == 2 else [_gru_candidates, _rnn_candidates] if len(group) == 1 else []
        for gen in gens:
            done = False
            for kind, states, params, attrs in gen(cell, group):
                built = _build(graph, kind, states, params, attrs, cell.x, f"{states[0].name}/{kind}")
                if built is None:
                    continue
                pre, node, init = built
                if _verify(graph, states, cell.x, node, init):
                    _replace(graph, states, pre, node, init, region)
                    found.append(kind)
                    done = True
                    break
            if done:
                break
    return found
