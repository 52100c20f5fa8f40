"""Bind a *step graph*: a file whose one call is one step, with its state as explicit inputs
and outputs (silero-vad: ``input, state, sr -> output, stateN``).

1. Every input gets a per-step shape: its declared sizes, overridden by ``shapes`` (the
   file's rank, or one less: the frame without the batch axis). The batch axis B is the
   axis ``shapes`` gives as None, else the first size the file leaves open (or that
   ``shapes`` sets to 1 where the file leaves it open), or a leading 1 of a file that fixes
   every size; any other open size is an error asking for ``shapes``. Then shape inference runs over the whole graph.
2. State inputs are paired with state outputs (:func:`pair_step_states`): explicitly by
   ``states={"in": "out"}``, else automatically where that is unambiguous. The pairs become
   per-stream :class:`StateVar` s, so reset, snapshots, batches and chunks handle them.
Batch and state axes stay where the file puts them (silero's state is [2, B, 128]).
"""
import numpy as np

from ..errors import UnsupportedModelError
from ..ir.dims import B, concrete_shape, has_time, same
from ..ir.graph import StateVar
from .infer import infer_graph

#: suffixes exporters give a state output after the state input's name (h -> hn, state -> stateN)
STATE_SUFFIXES = ("n", "_n", "_out", "out", "_next", "next", "_new", "new", "_1", ".1", "_o")


def step_shape(name, declared, given):
    """The symbolic per-step shape of input ``name`` (declared dims, None = open)."""
    rank = len(declared)
    if given is None:
        given = [None] * rank
    given = [None if g is None or (isinstance(g, str) and g.lower() in ("b", "batch")) else g for g in given]
    open_axes = [a for a, d in enumerate(declared) if d is None]
    if len(given) == rank - 1:               # the frame alone: the batch axis goes where the file leaves a size open
        if not open_axes:
            raise UnsupportedModelError(f"shapes['{name}'] has {len(given)} sizes for an input of rank {rank} "
                                        "with no open (batch) axis; give all {rank} sizes")
        given = given[:open_axes[0]] + [None] + given[open_axes[0]:]
    if len(given) != rank:
        raise UnsupportedModelError(f"shapes['{name}'] has {len(given)} sizes; input '{name}' has rank {rank}")
    for a, (d, g) in enumerate(zip(declared, given)):
        if g is not None:
            if not isinstance(g, (int, np.integer)) or g < 1:
                raise UnsupportedModelError(f"shapes['{name}'][{a}] = {g!r}: sizes are positive integers "
                                            "(None marks the batch axis)")
            if d is not None and d != g:
                raise UnsupportedModelError(f"shapes['{name}'][{a}] = {g}, but the model fixes that axis at {d}")
    batch = [a for a, g in enumerate(given) if g is None and declared[a] is None]
    unsized = [a for a, g in enumerate(given) if g is None and declared[a] is not None]
    if not batch:
        batch = [a for a in open_axes if given[a] == 1][:1]
    if not batch and not open_axes and rank >= 2 and declared[0] == 1 and given[0] in (None, 1):
        batch = [0]         # a file exported with a fixed batch of 1 (silero's openvino variant)
    if len(batch) > 1:
        raise UnsupportedModelError(
            f"input '{name}' leaves the sizes of axes {batch} open; a step needs them fixed: pass "
            f"shapes={{'{name}': [...]}} to edgernn.load with the size of every axis but the batch axis (None)")
    dims = []
    for a, d in enumerate(declared):
        if batch and a == batch[0]:
            dims.append(B)
        elif a in unsized or given[a] is None:
            dims.append(int(d))
        else:
            dims.append(int(given[a]))
    return tuple(dims)


def bind_step_shapes(graph, shapes):
    shapes = dict(shapes or {})
    names = {v.name for v in graph.inputs}
    unknown = set(shapes) - names
    if unknown:
        raise UnsupportedModelError(f"shapes= names {sorted(unknown)}, which are not inputs; inputs: {sorted(names)}")
    for v in graph.inputs:
        v.shape = step_shape(v.name, graph.declared[v.name], shapes.get(v.name))
    infer_graph(graph)


def depends_on(graph, value, source):
    """Whether ``value`` is computed (through any op) from ``source``."""
    producers = graph.producers()
    stack, seen = [value], set()
    while stack:
        v = stack.pop()
        if v is None or id(v) in seen:
            continue
        if v is source:
            return True
        seen.add(id(v))
        node = producers.get(id(v))
        if node is not None:
            stack.extend(node.inputs)
    return False


def _same_shape(a, b):
    return len(a.shape) == len(b.shape) and all(same(x, y) for x, y in zip(a.shape, b.shape))


def _names_match(i, o):
    """Whether output name ``o`` reads as the next value of input ``i``: ``i`` plus a state
    suffix (h -> hn, state -> stateN), or, for names of 3 characters or more, ``i`` inside it
    (cache -> new_cache_1); a short name such as c is not matched inside conv_cache_out."""
    a, b = i.lower(), o.lower()
    return b != a and (b.startswith(a) and b[len(a):] in STATE_SUFFIXES or (len(a) >= 3 and a in b))


def state_candidates(graph):
    """{input: [outputs]} of outputs that could be an input's next value: same shape and
    dtype, and computed from it."""
    out = {}
    for i in graph.inputs:
        out[i] = [o for o in graph.outputs if not o.is_const and o.dtype == i.dtype and _same_shape(i, o)
                  and depends_on(graph, o, i)]
    return out


def pair_step_states(graph, states=None):
    """The {input Value: output Value} pairs of a step graph's state; see the module doc."""
    by_name_in = {v.name: v for v in graph.inputs}
    by_name_out = {v.name: v for v in graph.outputs}
    if states is not None:
        pairs = {}
        for i, o in dict(states).items():
            if i not in by_name_in or o not in by_name_out:
                raise UnsupportedModelError(
                    f"states={{'{i}': '{o}'}}: inputs are {sorted(by_name_in)}, outputs {sorted(by_name_out)}")
            if not _same_shape(by_name_in[i], by_name_out[o]):
                raise UnsupportedModelError(f"states: input '{i}' {by_name_in[i].shape} and output '{o}' "
                                            f"{by_name_out[o].shape} differ in shape")
            pairs[by_name_in[i]] = by_name_out[o]
        if len(set(map(id, pairs.values()))) != len(pairs):
            raise UnsupportedModelError("states= pairs two inputs with the same output")
        return pairs
    cands = state_candidates(graph)
    pairs, ambiguous = {}, []
    taken = lambda o: any(o is p for p in pairs.values())
    for i, outs in cands.items():               # names decide first: h -> hn, state -> stateN
        named = [o for o in outs if _names_match(i.name, o.name)]
        if len(named) == 1:
            pairs[i] = named[0]
        elif len(named) > 1:
            ambiguous.append((i, named))
    frame_like = [i for i, outs in cands.items() if not outs]
    for i, outs in cands.items():               # then shapes, where one pairing is possible
        if i in pairs or any(i is a for a, _ in ambiguous) or not outs:
            continue
        free = [o for o in outs if not taken(o)]
        rivals = [j for j, other in cands.items() if j is not i and j not in pairs and any(o in other for o in free)]
        if len(free) == 1 and not rivals and (frame_like or len(cands) > 1 and len(pairs) + 1 < len(cands)):
            pairs[i] = free[0]
        elif len(free) > 1 or rivals:
            ambiguous.append((i, free))
    if ambiguous:
        listed = "; ".join(f"'{i.name}' -> {[o.name for o in outs]}" for i, outs in ambiguous)
        raise UnsupportedModelError(
            f"edgernn cannot tell which outputs are the next values of the state inputs ({listed}); "
            "name the pairs: edgernn.load(path, states={'input name': 'output name', ...})")
    return pairs


def bind_step(graph, shapes=None, states=None):
    """Give the inputs their per-step shapes, infer, and make the state pairs StateVars."""
    bind_step_shapes(graph, shapes)
    for i, o in pair_step_states(graph, states).items():
        if any(has_time(d) for d in i.shape):
            raise UnsupportedModelError(f"state '{i.name}' has a time axis")
        graph.states.append(StateVar(i.name, i, o, np.zeros(concrete_shape(i.shape), np.float32)))
        graph.inputs.remove(i)
        graph.outputs.remove(o)
    if not graph.inputs:
        raise UnsupportedModelError("every input of the step graph is a state; edgernn needs one input that "
                                    "takes the frame (pass states= naming only the state pairs)")
    graph.meta["mode"] = "step"
    return graph
