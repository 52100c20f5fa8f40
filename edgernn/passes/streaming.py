"""Make a graph streamable: bind time/batch axes, then turn state into per-stream StateVars.

1. Classify graph inputs: a *frame input* reaches the X input of a recurrent op; a *state
   input* reaches only initial_h / initial_c. Declared sizes are not trusted (torch's dynamo
   exporter bakes the example length into them); instead the time axis of the frame inputs
   is the one that, after shape inference, arrives on every recurrent op's sequence axis
   (``time_axis`` fixes it). The batch axis is found the same way.
2. Pair each state input with the graph output computed from the same recurrent ops' final
   states (torch ``forward(x, h0, c0) -> y, hT, cT``): the output becomes the next value of
   the input. An input with no such output is an error.
3. A recurrent op's initial state that is absent or constant becomes an implicit state (its
   start value is that constant); the op's Y_h / Y_c is its next value.
4. A constant ``sequence_lens`` becomes a frame limit with a per-stream frame counter.
"""
import numpy as np

from ..errors import UnsupportedModelError
from ..ir.dims import B, T, concrete_shape, has_batch, has_time
from ..ir.graph import Node, StateVar, Value
from .. import ops
from ..ops.recurrent import RecurrentOp
from .infer import infer_graph
from .step_graph import bind_step


def recurrent_nodes(graph):
    return [n for n in graph.nodes if isinstance(ops.get(n.op), RecurrentOp)]


def forward_reach(graph, start):
    """Ids of values computed (transitively) from value `start`, not through recurrent ops
    (a state input reaches the op's state slot; what the op computes is not "from" it)."""
    seen = {id(start)}
    for n in graph.nodes:
        if isinstance(ops.get(n.op), RecurrentOp):
            continue
        if any(v is not None and id(v) in seen for v in n.inputs):
            seen.update(id(v) for v in n.outputs if v is not None)
    return seen


def backward_sources(graph, value):
    """Set of (id(node), output slot) of recurrent state outputs that `value` depends on,
    and the ids of graph inputs it depends on."""
    prod = {}
    for n in graph.nodes:
        for k, v in enumerate(n.outputs):
            if v is not None:
                prod[id(v)] = (n, k)
    rec, leaves, stack, seen = set(), set(), [value], set()
    while stack:
        v = stack.pop()
        if v is None or id(v) in seen:
            continue
        seen.add(id(v))
        if id(v) not in prod:
            leaves.add(id(v))
            continue
        n, k = prod[id(v)]
        op = ops.get(n.op)
        if isinstance(op, RecurrentOp) and k in op.state_outputs.values():
            rec.add((id(n), k))
            continue
        stack.extend(n.inputs)
    return rec, leaves


def classify_inputs(graph):
    rec = recurrent_nodes(graph)
    frame, state = [], []
    for v in graph.inputs:
        reach = forward_reach(graph, v)
        hits_x = any(id(n.inputs[0]) in reach for n in rec)
        hits_state = any(n.input(s) is not None and id(n.input(s)) in reach
                         for n in rec for s in ops.get(n.op).state_slots.values())
        if hits_state and not hits_x:
            state.append(v)
        else:
            frame.append(v)
    return frame, state


def _candidates(declared, time_axis):
    rank = len(declared)
    if time_axis is not None:
        if not -rank <= time_axis < rank:
            raise UnsupportedModelError(f"time_axis={time_axis} is out of range for an input of rank {rank}")
        times = [time_axis % rank]
    else:
        times = sorted(range(rank), key=lambda a: (declared[a] is not None, a))
    for t in times:
        rest = [a for a in range(rank) if a != t]
        batches = sorted(rest, key=lambda a: (declared[a] is not None, declared[a] != 1, a)) + [None]
        for b in batches:
            yield t, b


def _shape(declared, t, b, name):
    dims = []
    for a, d in enumerate(declared):
        if a == t:
            dims.append(T)
        elif a == b:
            dims.append(B)
        elif d is None:
            raise UnsupportedModelError(
                f"input '{name}' axis {a} has no fixed size; export the model with a fixed feature size")
        else:
            dims.append(int(d))
    return tuple(dims)


def bind_axes(graph, time_axis=None):
    """Give every graph input a symbolic shape and run shape inference; returns the state inputs."""
    frame, state = classify_inputs(graph)
    for v in state:
        v.shape = tuple(B if d is None else int(d) for d in graph.declared[v.name])
    reads_frames = any(n.op == "take_frame" for n in graph.nodes)   # a TFLite WHILE body
    if not recurrent_nodes(graph) and not reads_frames and time_axis is None:
        raise UnsupportedModelError(
            "the model has no LSTM, GRU or RNN op, so edgernn cannot tell which axis is time. "
            "If this is a torch dynamo export of nn.RNN, the exporter unrolled the loop: export "
            "with dynamo=False (or use nn.GRU/nn.LSTM). For a stateless per-frame model pass "
            "time_axis= to edgernn.load")
    if not frame:
        raise UnsupportedModelError("the model has no input that feeds a recurrent op's sequence")
    ranks = {len(graph.declared[v.name]) for v in frame}
    if len(ranks) != 1:
        raise UnsupportedModelError("frame inputs have different ranks; edgernn binds one time axis for all")
    first_error = None
    rec = recurrent_nodes(graph)
    # first every recurrent op over time; then (a GRU across bands inside each frame beside an
    # LSTM over time) at least one
    for needed in ([len(rec), 1] if rec else [0]):
        for t, b in _candidates(graph.declared[frame[0].name], time_axis):
            try:
                for v in frame:
                    v.shape = _shape(graph.declared[v.name], t, b, v.name)
                infer_graph(graph)
            except UnsupportedModelError as e:
                first_error = first_error or e
                continue
            over_time = sum(not ops.get(n.op).runs_in_frame(n) for n in recurrent_nodes(graph))
            if over_time >= needed:
                return state
            first_error = first_error or UnsupportedModelError(
                f"with axis {t} as time, {len(rec) - over_time} recurrent op(s) would not run over time")
    raise UnsupportedModelError(f"no axis of the input can be streamed as time: {first_error}")


def pair_states(graph, state_inputs):
    rec = recurrent_nodes(graph)
    remaining = list(graph.outputs)
    for s in state_inputs:
        reach = forward_reach(graph, s)
        want = {(id(n), ops.get(n.op).state_outputs[k]) for n in rec
                for k, slot in ops.get(n.op).state_slots.items()
                if n.input(slot) is not None and id(n.input(slot)) in reach}
        match = None
        for o in remaining:
            got, _ = backward_sources(graph, o)
            if got == want and concrete_shape(o.shape) == concrete_shape(s.shape):
                match = o
                break
        if match is None:
            raise UnsupportedModelError(
                f"input '{s.name}' is an initial state of a recurrent op, but no output of the graph "
                "returns the state it becomes; export the model returning the final state (e.g. "
                "forward(x, h0) -> (y, hT)) so edgernn can keep it inside the stream")
        remaining.remove(match)
        s.shape = match.shape  # the output knows which axis is batch; the declared input may not
        graph.states.append(StateVar(s.name, s, match, np.zeros(concrete_shape(s.shape), np.float32)))
        graph.inputs.remove(s)
        graph.outputs.remove(match)


def implicit_states(graph):
    state_ids = {id(s.value) for s in graph.states}
    input_ids = {id(v) for v in graph.inputs}
    for n in recurrent_nodes(graph):
        op = ops.get(n.op)
        in_frame = op.runs_in_frame(n)
        for kind, slot in op.state_slots.items():
            v = n.input(slot)
            out = n.outputs[op.state_outputs[kind]]
            if in_frame:     # each call starts from its given initial state (zeros when absent)
                if v is None or v.is_const:
                    start = np.zeros(concrete_shape(out.shape), np.float32)
                    if v is not None:
                        start = np.broadcast_to(v.const.astype(np.float32), start.shape).copy()
                    const = Value(f"{n.name}/{kind}0", shape=tuple(out.shape), const=start)
                    sv = Value(f"{n.name}/{kind}0_work", shape=tuple(out.shape))
                    graph.nodes.insert(graph.nodes.index(n), Node("materialize", f"{n.name}/{kind}0", [const], [sv]))
                    n.inputs = list(n.inputs) + [None] * (slot + 1 - len(n.inputs))
                    n.inputs[slot] = sv
                continue
            if v is not None and not v.is_const:
                _, leaves = backward_sources(graph, v)
                if leaves & input_ids or not leaves & state_ids:
                    raise UnsupportedModelError(
                        f"{n.describe()}: its initial {kind} is computed from the frame input; "
                        "an initial state applies only to the first frame, so this cannot stream")
                continue
            shape = out.shape
            init = np.zeros(concrete_shape(shape), np.float32)
            if v is not None:
                init = np.broadcast_to(v.const.astype(np.float32), init.shape).copy()
            sv = Value(f"{n.name}/{kind}", shape=shape)
            n.inputs = list(n.inputs) + [None] * (slot + 1 - len(n.inputs))
            n.inputs[slot] = sv
            graph.states.append(StateVar(sv.name, sv, out, init))


def frame_limits(graph):
    for n in recurrent_nodes(graph):
        op = ops.get(n.op)
        seq = n.input(4)
        if seq is None:
            continue
        if not seq.is_const:
            raise UnsupportedModelError(
                f"{n.describe()}: sequence_lens is computed or a graph input; a stream has no fixed "
                "length, so it must be a constant (bind it as an initializer) or be left out")
        lens = np.unique(np.asarray(seq.const).ravel())
        if len(lens) != 1 or not 0 < int(lens[0]) < 2 ** 24:
            raise UnsupportedModelError(
                f"{n.describe()}: sequence_lens {seq.const.tolist()} must hold one length in 1..2^24 "
                "(different lengths per batch row: run one stream per sequence)")
        n.attrs["frame_limit"] = int(lens[0])
        cnt = Value(f"{n.name}/frames", shape=(1,))
        nxt = Value(f"{n.name}/frames_next", shape=(1,))
        n.inputs = list(n.inputs) + [None] * (op.counter_slot + 1 - len(n.inputs))
        n.inputs[4] = None
        n.inputs[op.counter_slot] = cnt
        n.outputs = list(n.outputs) + [nxt]
        graph.states.append(StateVar(cnt.name, cnt, nxt, np.zeros(1, np.float32)))


def bind_sequence(graph, time_axis=None):
    state_inputs = bind_axes(graph, time_axis)
    pair_states(graph, state_inputs)
    graph.meta["mode"] = "sequence"


def bind_streaming(graph, time_axis=None, step=None, shapes=None, states=None):
    """Bind the graph as a sequence graph (a time axis on the frame inputs) or as a step graph
    (:mod:`.step_graph`). step=None decides: a sequence graph when time_axis is given or some
    axis can be time, else a step graph; True/False forces one."""
    if step and time_axis is not None:
        raise UnsupportedModelError("time_axis= and step=True contradict: a step graph has no time axis")
    if step is None and (shapes is not None or states is not None) and time_axis is None:
        step = True
    if step:
        bind_step(graph, shapes, states)
    elif step is False or time_axis is not None:
        bind_sequence(graph, time_axis)
    else:
        saved = (list(graph.nodes), list(graph.inputs), list(graph.outputs), list(graph.states))
        try:
            bind_sequence(graph, time_axis)
        except UnsupportedModelError as sequence_error:
            graph.nodes, graph.inputs, graph.outputs, graph.states = (list(x) for x in saved)
            for v in graph.inputs:
                v.shape = None
            try:
                bind_step(graph, shapes, states)
                if not graph.states and not recurrent_nodes(graph):
                    raise UnsupportedModelError(
                        "it has no state inputs paired with outputs and no recurrent op, so as one step it "
                        "would forget everything between calls. If that is what it is (a stateless per-step "
                        "model), pass step=True (or time_axis= for a per-frame model)")
            except UnsupportedModelError as step_error:
                raise UnsupportedModelError(
                    f"edgernn cannot stream this model. As a sequence graph (a time axis on the input): "
                    f"{sequence_error} As a step graph (one call per step): {step_error}") from None
    implicit_states(graph)
    frame_limits(graph)
    infer_graph(graph)
    for o in graph.outputs:
        if o.is_const:
            raise UnsupportedModelError(f"output '{o.name}' is a constant; it does not depend on the frames")
        if sum(1 for d in o.shape if has_time(d)) > 1 or sum(1 for d in o.shape if has_batch(d)) > 1:
            raise UnsupportedModelError(f"output '{o.name}' has more than one time or batch axis")
    return graph
