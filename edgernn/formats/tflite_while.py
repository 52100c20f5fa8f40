"""WHILE loops as streams: the body subgraph is one time step, run once per frame.

The TFLite converter turns a Keras RNN layer into ``WHILE(cond, body)`` over loop-carried
tensors. Each carried slot k (body input k -> body output k) is classified:

- *invariant*: the body returns its input unchanged (the input sequence, the length, weights);
- *counter*: an integer scalar that the body increments by 1 and that starts at 0: at frame t
  it equals t;
- *accumulator*: the body writes one item into it at the counter, as
  ``CONCATENATION(SLICE(acc, ..t), item, SLICE(acc, t+1..))`` (the lowered TensorListSetItem)
  or ``DYNAMIC_UPDATE_SLICE(acc, item, [t, 0, ..])``: the sequence of per-frame outputs;
- *last*: the body overwrites it every step and never reads it (Keras' one-item TensorList
  holding the last output when ``return_sequences=False``): treated as an accumulator whose
  item is the body output, so reading its last element is reading the current frame;
- *state*: everything else (h, c): a per-stream :class:`~edgernn.ir.graph.StateVar` whose
  value is the body input and whose next value is the body output.

The body's ops are then inlined into the per-step graph: ``GATHER(seq, counter)`` becomes
``take_frame(seq)`` (element t of the time-major sequence), an accumulator's final value is
``put_frame(item)``. Anything else that uses a counter or an accumulator as a number is
rejected, as is a loop condition that depends on a state (a data-dependent loop). The
condition itself is not evaluated: one iteration runs per frame.

A state's start value is the WHILE's initial input: a constant, a FILL of a constant (Keras'
zeros), or a graph input whose final value is a graph output (``initial_state`` +
``return_state``): that input/output pair becomes the state, kept inside the stream, as for
ONNX. Standard cells in the inlined body are recognised later by :mod:`edgernn.passes.cells`
and run on the LSTM/GRU/RNN kernels.
"""
import numpy as np

from ..errors import ModelFormatError, UnsupportedModelError, UnsupportedOpError
from ..ir.graph import StateVar, Value
from ..limits import check_elements
from .tflite import Scope, Unavailable
from .tflite_ops import TRANSLATORS, translate_ops


def _producers(g):
    return {int(t): (k, op) for k, op in enumerate(g.operators or []) for t in op.outputs}


class Loop:
    """The analysis of one WHILE op of scope `sc`."""

    def __init__(self, sc, op):
        self.sc, self.op, self.r = sc, op, sc.r
        o = op.builtinOptions
        if o is None:
            raise ModelFormatError(f"{sc.where()}: the WHILE op names no body or condition subgraph")
        self.body_index, self.cond_index = o.bodySubgraphIndex, o.condSubgraphIndex
        self.body = self.r.m.subgraphs[self.body_index]
        self.cond = self.r.m.subgraphs[self.cond_index]
        body_scope = Scope(self.r, self.body_index)
        self.body_label = body_scope.label
        prefix = body_scope.name[:-len("while_body")].rstrip("/") if body_scope.name.endswith("while_body") \
            else body_scope.name
        self.layer_name = prefix or f"while{sc.op_index}"
        self.prod = _producers(self.body)
        self.bin = [int(t) for t in self.body.inputs]
        self.bout = [int(t) for t in self.body.outputs]
        if not len(self.bin) == len(self.bout) == len(op.inputs) == len(op.outputs):
            raise UnsupportedModelError(f"{sc.where()}: the body's inputs and outputs do not match the loop's")
        self.kinds = [self._classify(k) for k in range(len(self.bin))]

    # ------------------------------------------------------------ classification
    def _is_const(self, g, ti):
        return self.r.raw(g, ti) is not None

    def _classify(self, k):
        if self.bout[k] == self.bin[k]:
            return "invariant"
        if self._counter_step(k):
            start = self.sc.constant(self.op.inputs[k])
            if start is None or np.ravel(start)[0] != 0:
                raise UnsupportedModelError(
                    f"{self.sc.where()}: loop counter {k} starts at {'a computed value' if start is None else np.ravel(start)[0]}; "
                    "edgernn streams loops that count frames from 0")
            return "counter"
        if self.accumulator_item(k) is not None:
            return "accumulator"
        if not any(self.bin[k] in [int(x) for x in op.inputs] for op in self.body.operators or []):
            return "last"          # overwritten every step, never read back (a 1-item TensorList)
        return "state"

    def _counter_step(self, k):
        t = self.body.tensors[self.bin[k]]
        if self.r.type_names.get(t.type) not in ("INT32", "INT64") or (t.shape is not None and len(t.shape)):
            return False
        _, op = self.prod.get(self.bout[k], (None, None))
        if op is None or self.r.op_name(op) != "ADD":
            return False
        a, b = [int(x) for x in op.inputs[:2]]
        other = b if a == self.bin[k] else a if b == self.bin[k] else None
        if other is None:
            return False
        one = self.r.raw(self.body, other)
        return one is not None and one.size == 1 and np.ravel(one)[0] == 1

    def accumulator_item(self, k):
        """The body tensor written into accumulator slot k at the counter, or None."""
        _, op = self.prod.get(self.bout[k], (None, None))
        if op is None:
            return None
        name = self.r.op_name(op)
        acc = self.bin[k]
        if name == "DYNAMIC_UPDATE_SLICE" and int(op.inputs[0]) == acc:
            return int(op.inputs[1])
        if name == "CONCATENATION" and getattr(op.builtinOptions, "axis", 0) == 0 and len(op.inputs) == 3:
            ends = [self.prod.get(int(t), (None, None))[1] for t in (op.inputs[0], op.inputs[2])]
            if all(e is not None and self.r.op_name(e) == "SLICE" and int(e.inputs[0]) == acc for e in ends):
                return int(op.inputs[1])
        return None

    def slots(self, kind):
        return [k for k, kd in enumerate(self.kinds) if kd == kind]

    # ------------------------------------------------------------ body ops
    def frame_read(self, op):
        """Whether `op` is GATHER(invariant sequence, counter) along axis 0."""
        if self.r.op_name(op) != "GATHER" or (op.builtinOptions is not None and op.builtinOptions.axis != 0):
            return False
        seq, idx = int(op.inputs[0]), int(op.inputs[1])
        kind = {t: self.kinds[k] for k, t in enumerate(self.bin)}
        return kind.get(seq) == "invariant" and kind.get(idx) == "counter"

    def needed_ops(self, targets):
        """Body op indices that compute `targets` (frame reads are leaves)."""
        needed, stack = set(), list(targets)
        banned = {t: self.kinds[k] for k, t in enumerate(self.bin) if self.kinds[k] in ("counter", "accumulator")}
        while stack:
            t = stack.pop()
            if t in self.bin or t not in self.prod:
                continue
            k, op = self.prod[t]
            if k in needed:
                continue
            needed.add(k)
            if self.frame_read(op):
                continue
            for x in op.inputs:
                x = int(x)
                if x in banned:
                    raise UnsupportedModelError(
                        f"{self.body_label} op {k} {self.r.op_name(op)} uses the loop's {banned[x]} as a "
                        "value; edgernn streams loop bodies that read frame t with GATHER(sequence, t) and "
                        "write output t into an accumulator, and nothing else with t")
                if x >= 0:
                    stack.append(x)
        return needed

    def check_condition(self):
        """The condition may read counters and invariants only (not a data-dependent loop)."""
        dep = {int(self.cond.inputs[k]) for k, kd in enumerate(self.kinds) if kd in ("state", "accumulator", "last")}
        for op in self.cond.operators or []:
            if any(int(x) in dep for x in op.inputs):
                dep.update(int(x) for x in op.outputs)
        if any(int(t) in dep for t in self.cond.outputs):
            raise UnsupportedModelError(
                f"{Scope(self.r, self.cond_index).label}: the loop condition of {self.sc.where()} depends on "
                "the loop's state, so the number of steps depends on the data; edgernn runs one step per frame")


def _state_shape(t, where):
    """A loop state's shape as stored (batch 1: the converter needs a static batch to lower
    the loop, and each stream of a batch has its own state), checked against the ceiling: its
    start value is allocated from it."""
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
    check_elements(shape, 4, f"{where}: loop state '{t.name.decode(errors='replace')}' of shape {list(shape)}")
    return shape


def _producer_node(nodes, v):
    return next((n for n in reversed(nodes) if v in n.outputs), None)


def lower_while(sc, op):
    """Inline the WHILE op `op` of scope `sc` (see the module docstring)."""
    loop = Loop(sc, op)
    loop.check_condition()
    r = sc.r
    inits = [sc.value(int(t)) for t in op.inputs]
    bound = {}
    for k in loop.slots("invariant"):
        bound[loop.bin[k]] = inits[k]
    state_values = {}
    for k in loop.slots("state"):
        t = loop.body.tensors[loop.bin[k]]
        if r.type_names.get(t.type) != "FLOAT32":
            raise UnsupportedModelError(
                f"{sc.where()}: loop slot {k} ('{t.name.decode()}') is a {r.type_names.get(t.type)} value "
                "that changes every step but is neither a frame counter nor an output sequence")
        v = Value(r.unique(f"{loop.layer_name}/state{k}"), shape=_state_shape(t, sc.where()))
        state_values[k] = bound[loop.bin[k]] = v
    elements = {k: loop.accumulator_item(k) for k in loop.slots("accumulator")}
    elements.update({k: loop.bout[k] for k in loop.slots("last")})
    targets = [loop.bout[k] for k in state_values] + list(elements.values())
    needed = loop.needed_ops(targets)
    body_ops = [(k, o) for k, o in enumerate(loop.body.operators or []) if k in needed]
    missing = sorted({r.op_name(o) for _, o in body_ops if not loop.frame_read(o)} - set(TRANSLATORS))
    if missing:
        raise UnsupportedOpError(
            f"{loop.body_label}, the body of the WHILE loop at {sc.where()}, uses {', '.join(missing)}, which "
            "edgernn does not support. The body is not a recognisable LSTM/GRU/RNN cell, and it can run as a "
            "per-step graph only if every op in it is supported (supported TFLite ops: "
            f"{', '.join(sorted(TRANSLATORS))})")
    body = Scope(r, loop.body_index, bound)
    for k, o in body_ops:
        if loop.frame_read(o):
            body.op_index, body.op_kind = k, "GATHER"
            body.add("take_frame", [body.value(int(o.inputs[0]))], [body.output(int(o.outputs[0]))])
        else:
            translate_ops(body, [(k, o)])
    # ---- the loop's outputs in the main graph
    where = sc.where()
    for k, t in enumerate(op.outputs):
        t, kind = int(t), loop.kinds[k]
        if kind == "invariant":
            sc.values[t] = inits[k]
        elif kind == "counter":
            sc.values[t] = Unavailable(f"loop{k}", f"uses output {k} of the WHILE loop at {where}, the loop's "
                                                   "final counter (the sequence length), which a stream does not have")
        elif kind == "state":
            sc.values[t] = body.value(loop.bout[k])
        else:
            sc.values[t] = _frame_sequence(sc, loop, body, k, elements[k])
    for k, v in state_values.items():
        r.states.append(_state(sc, loop, k, v, inits[k], body.value(loop.bout[k])))


def _frame_sequence(sc, loop, body, k, item):
    """put_frame(element) for accumulator slot k: the item without its leading length-1 axis
    (or the tensor a RESHAPE turned into the item, when it already has the element's shape)."""
    acc = loop.body.tensors[loop.bin[k]]
    elem_shape = [int(d) for d in acc.shape[1:]] if acc.shape is not None else None
    _, op = loop.prod.get(item, (None, None))
    src = None
    if op is not None and sc.r.op_name(op) == "RESHAPE":
        inner = loop.body.tensors[int(op.inputs[0])]
        if inner.shape is not None and [int(d) for d in inner.shape] == elem_shape:
            src = body.value(int(op.inputs[0]))
    if src is None:
        v = body.value(item)
        src = sc.fresh(v.name + "/element")
        sc.add("squeeze", [v, sc.const("axis0", np.array([0], np.int64))], [src])
    out = sc.fresh(sc.tensor_name(int(loop.op.outputs[k])))
    sc.add("put_frame", [src], [out])
    return out


def _state(sc, loop, k, value, init, nxt):
    """The StateVar of state slot k: start value from the loop's initial input `init`."""
    shape = value.shape
    if init.is_const:
        return StateVar(value.name, value, nxt, np.broadcast_to(init.const.astype(np.float32), shape).copy())
    prod = _producer_node(sc.r.nodes, init)
    if prod is not None and prod.op == "constant_of_shape":
        return StateVar(value.name, value, nxt, np.full(shape, prod.attrs["value"].reshape(()), np.float32))
    in_idx = next((int(t) for t, v in sc.values.items() if v is init and int(t) in [int(x) for x in sc.g.inputs]), None)
    if in_idx is None:
        raise UnsupportedModelError(
            f"{sc.where()}: the initial value of loop state {k} is computed from the frames; an initial state "
            "applies only to the first frame, so this cannot stream. Start from zeros or pass it as a model input")
    out_t = int(loop.op.outputs[k])
    readers = [o for o in sc.g.operators or [] if in_idx in [int(x) for x in o.inputs]]
    if out_t not in sc.graph_outputs or readers != [loop.op]:
        raise UnsupportedModelError(
            f"input '{init.name}' is the initial state of the WHILE loop at {sc.where()}, but "
            + ("no output of the model returns the state it becomes; export the model returning the final "
               "state (Keras: return_state=True, and make the states model outputs)"
               if out_t not in sc.graph_outputs else "it is also read by other ops")
            + ", so edgernn cannot keep it inside the stream")
    sc.removed_inputs.append(init)
    sc.removed_outputs.add(out_t)
    value.name = init.name
    return StateVar(init.name, value, nxt, np.zeros(shape, np.float32))
