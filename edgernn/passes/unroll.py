"""Unroll recurrent ops whose whole sequence lies inside the frame.

In a step graph (or a sequence graph that runs a GRU across frequency bands in each frame),
a recurrent op's sequence axis is an axis of the frame of length L, and it may run in
reverse or in both directions. This pass replaces such a node by L one-position nodes per
direction that share that direction's weights (one copy in the arena), chained through
their states, with slices of X in front and concatenations after:

    forward:  h_0 = initial_h[d], h_t = cell(x_t, h_{t-1}) for t = 0 .. L-1
    reverse:  the same for t = L-1 .. 0
    Y[t, d] = h_t of direction d (layout 0: Y [L, D, B, H]; layout 1: Y [B, L, D, H])
    Y_h[d] = the last h of direction d (the one at t = L-1 forward, t = 0 reverse); Y_c alike

Bidirectional ops take direction d's W[d], R[d], B[d] (, P[d]) and activations (``acts``
forward, ``acts_reverse`` backward), as ONNX specifies. Each position is one ordinary
recurrent row, so the kernels, packing and int8 weights are those of any recurrent op.
"""
import numpy as np

from .. import ops
from ..errors import UnsupportedModelError
from ..ir.graph import Node, Value
from ..ops.recurrent import RecurrentOp
from .infer import infer_graph


MAX_UNROLLED = 4096     # positions of an in-frame sequence; a forged size must not build a graph of 2^63 nodes


def _slice(graph_nodes, name, x, axis, start):
    out = Value(f"{name}")
    consts = [Value(f"{name}/{k}", shape=(1,), dtype="int64", const=np.array([v], np.int64))
              for k, v in (("starts", start), ("ends", start + 1), ("axes", axis))]
    graph_nodes.append(Node("slice", name, [x] + consts, [out], source_op="unroll"))
    return out


def _join(graph_nodes, name, parts, axis, out):
    if len(parts) == 1:
        graph_nodes.append(Node("identity", name, parts, [out], source_op="unroll"))
    else:
        graph_nodes.append(Node("concat", name, parts, [out], {"axis": axis}, source_op="unroll"))


def _direction_const(v, d, name):
    if v is None:
        return None
    part = np.ascontiguousarray(v.const[d:d + 1])
    return Value(f"{v.name}[{d}]" if name is None else name, shape=part.shape, dtype=part.dtype.name, const=part)


def unroll_node(node):
    """The nodes replacing ``node`` (module doc)."""
    op = ops.get(node.op)
    layout = node.attrs.get("layout", 0)
    x = node.inputs[0]
    seq_axis, y_dir_axis, state_dir_axis = (0, 1, 0) if layout == 0 else (1, 2, 1)
    length = int(x.concrete_shape[seq_axis])
    if not 1 <= length <= MAX_UNROLLED:
        raise UnsupportedModelError(f"{node.describe()}: runs over {length} positions inside each frame; edgernn "
                                    f"unrolls at most {MAX_UNROLLED} (one node per position)")
    D = op.directions(node)
    reverse_only = node.attrs.get("direction") == "reverse"
    new = []
    ys, finals = [], {kind: [] for kind in op.state_slots}
    for d in range(D):
        attrs = {k: v for k, v in node.attrs.items() if k not in ("direction", "acts_reverse", "packed")}
        if d == 1:
            attrs["acts"] = node.attrs["acts_reverse"]
        weights = {slot: _direction_const(node.input(slot), d, None) for slot in (1, 2, 3)}
        peep = _direction_const(node.input(7), d, None) if node.op == "lstm" else None
        state = {}
        for kind, slot in op.state_slots.items():
            v = node.input(slot)
            state[kind] = None if v is None else (_slice(new, f"{node.name}/{kind}0[{d}]", v, state_dir_axis, d)
                                                 if D > 1 else v)
        backward = reverse_only or d == 1
        y_at = {}
        for t in (reversed(range(length)) if backward else range(length)):
            step = f"{node.name}/d{d}t{t}"
            x_t = _slice(new, f"{step}/x", x, seq_axis, t)
            ins = [x_t, weights[1], weights[2], weights[3], None]
            ins += [state[k] for k in op.state_slots]
            if peep is not None:
                ins += [peep]
            outs = [Value(f"{step}/y")] + [Value(f"{step}/{k}") for k in op.state_outputs]
            new.append(Node(node.op, step, ins, outs, dict(attrs), source_op=node.source_op))
            y_at[t] = outs[0]
            state = {k: outs[1 + i] for i, k in enumerate(op.state_outputs)}
        y_d = Value(f"{node.name}/y[{d}]")
        _join(new, f"{node.name}/y[{d}]", [y_at[t] for t in range(length)], seq_axis, y_d)
        ys.append(y_d)
        for k in op.state_outputs:
            finals[k].append(state[k])
    if node.outputs[0] is not None:
        _join(new, f"{node.name}/y", ys, y_dir_axis, node.outputs[0])
    for i, k in enumerate(op.state_outputs):
        out = node.outputs[1 + i] if 1 + i < len(node.outputs) else None
        if out is not None:
            _join(new, f"{node.name}/{k}", finals[k], state_dir_axis, out)
    return new


def unroll_whole_sequences(graph):
    """Replace every recurrent node that runs a whole in-frame sequence; returns the graph."""
    nodes, changed = [], False
    for n in graph.nodes:
        op = ops.get(n.op)
        if isinstance(op, RecurrentOp) and op.whole_sequence(n):
            nodes.extend(unroll_node(n))
            changed = True
        else:
            nodes.append(n)
    if changed:
        graph.nodes = nodes
        infer_graph(graph)
    return graph
