"""Plan: the step as an op program over preallocated arenas (TensorFlow Lite Micro style).

Everything is placed here, once; a step allocates nothing. Work arena layout, per stream:

    [ frame inputs | state | activations | scratch ]

- An alias (reshape, squeeze, a Transpose that keeps non-unit axes in order, Y = Y_h of a
  recurrent op) shares its source's bytes.
- A recurrent op writes its state in place when it is the state's only reader.
- Other states are copied from their next value at the end of the step (copy rows).
- State an op owns (``Op.state``: a convolution's history, a counter) is placed with the
  graph's states, named ``<node>.<state>``, and read and written by that op's kernel alone.
- Constants live in one byte buffer (:class:`ConstArena`), each 64-byte aligned, read by the
  kernels through two views of the same bytes: float32 ``consts`` and int8 ``qconsts``. A
  model loaded from an .ernn file uses the file's mapped data section as that buffer (no
  copy); otherwise the buffer is built here, on huge pages when it is large
  (:mod:`edgernn.memory`). Ops' ``emit`` only address constants that are values of the graph
  (the pack pass made them in kernel layout); they derive none.
:meth:`Plan.validate` checks that every range a row's kernel reads or writes, as its op's
row layout declares it (:mod:`edgernn.ops.row`), lies inside its arena, so the kernels
(compiled without bounds checks) never touch memory outside them. :func:`build_plan` checks
the arenas against the resource ceiling (:mod:`edgernn.limits`) before allocating them.
"""
from dataclasses import dataclass, field

import numpy as np

from . import ops
from .errors import UnsupportedModelError
from .limits import check_bytes
from .memory import ALIGN, zeroed
from .ops.layout import emit_copy
from .ops.recurrent import RecurrentOp
from .ops.history import CLOCK_STATE, int_attr
from .ops.row import CONST, FPARAM, GATE_CLOCK, GATE_FROM, LAYOUTS, QCONST, REGION_CONST, REGION_WORK, WIDTH, WORK, \
    check_row, matrix_uses



class ConstArena:
    """Constant arrays placed in one byte buffer: ``offsets[id(array)]`` is a byte offset.

    ``consts`` (float32) and ``qconsts`` (int8) view the same bytes. An array is placed
    either by :meth:`build` (copied in) or by a file reader that passes its mapped buffer
    and the offsets its tensor table gives (see :mod:`edgernn.formats.ernn`)."""

    def __init__(self, buffer, offsets, keep=()):
        if buffer.size % 4:
            raise ValueError("internal: a constant buffer must hold whole float32 words")
        self.buffer = buffer
        self.offsets = offsets
        self.keep = list(keep)       # holding the arrays keeps their ids from being reused
        self.consts = buffer.view(np.float32)
        self.qconsts = buffer.view(np.int8)

    @classmethod
    def build(cls, arrays):
        offsets, chunks, size = {}, [], 0
        for a in arrays:
            if id(a) in offsets:
                continue
            data = np.ascontiguousarray(a, dtype=np.int8 if a.dtype == np.int8 else np.float32).view(np.uint8).ravel()
            offsets[id(a)] = size
            chunks.append((size, data))
            size += (data.size + ALIGN - 1) // ALIGN * ALIGN
        check_bytes(size, "the model's constant arena (weights)")
        buf = zeroed(max(size, ALIGN), np.uint8)         # on huge pages when large (edgernn.memory)
        for off, data in chunks:
            buf[off:off + data.size] = data
        return cls(buf, offsets, keep=arrays)

    def byte_offset(self, a, what):
        off = self.offsets.get(id(a))
        if off is None:
            raise UnsupportedModelError(f"internal: constant {what} is not in the constant arena")
        return off


def kernel_constants(graph):
    """Every constant array the emitted ops may read: float ones, and int8 weights with their
    scales. (Integer constants only parametrise layout ops, which fold them at load.)"""
    out = []
    for n in graph.nodes:
        for v in n.inputs:
            if v is not None and v.is_const and (v.const.dtype.kind == "f" or v.scale is not None):
                out.append(v.const)
                if v.scale is not None:
                    out.append(v.scale)
    return out


@dataclass
class Slot:
    name: str
    offset: int
    frame_shape: tuple

    @property
    def size(self):
        return int(np.prod(self.frame_shape, dtype=np.int64))


#: the ``activations=`` a model loads with: "int8" quantises the input vector of each int8
#: weight matrix per call (edgernn.quant, ops.matvec_dot)
ACTIVATION_TYPES = ("float32", "int8")


@dataclass
class Plan:
    prog: np.ndarray
    fparams: np.ndarray
    arena: ConstArena
    work_size: int
    inputs: list
    outputs: list
    states: list
    state_init: np.ndarray          # the state region's start values
    state_offset: int
    sequence_ok: bool = False       # chunks may run op by op (engine.run_chunk)
    matvec_rows: int = 1            # rows of one stream a kernel multiplies at once (Op.matvec_rows)
    row_nodes: list = field(default_factory=list)   # source node name of each program row
    row_layouts: list = field(default_factory=list)  # the layout name of each program row
    linked: bool = False            # column 0 of every row holds its kernel's address
    #: "int8": int8 matrices multiply activations quantised per call (ops.matvec_dot), from
    #: ``dot_constants`` (their interleaved copy, made by :meth:`link`), the matrices at
    #: ``dot_offsets`` (None until :meth:`int8_activation_matrices` decides); "float32": the
    #: weights-only kernels
    activations: str = "float32"
    dot_offsets: frozenset | None = None
    dot_constants: np.ndarray | None = None
    dot_copy_bytes: int = 0         # the int8 matrices copied into dot_constants (resident bytes)

    @property
    def consts(self):
        return self.arena.consts

    @property
    def qconsts(self):
        """The int8 bytes the kernels read: the arena's, or with int8 activations the copy
        holding the interleaved matrices (valid once the plan is linked)."""
        return self.arena.qconsts if self.dot_constants is None else self.dot_constants

    def validate(self):
        """Check every extent of every row, from its layout's declaration, and every slot,
        against the arenas; raise UnsupportedModelError naming the row's node otherwise."""
        sizes = {CONST: self.consts.size, QCONST: self.qconsts.size, WORK: self.work_size, FPARAM: self.fparams.size}
        if self.prog.shape[1:] != (WIDTH,) or len(self.row_layouts) != self.prog.shape[0]:
            raise UnsupportedModelError("internal: the program's rows and layouts disagree")
        for i, name in enumerate(self.row_layouts):
            check_row(LAYOUTS[name], self.prog[i], sizes, f"program row {i} (node {self.row_nodes[i]})")
        for s in self.inputs + self.outputs + self.states:
            if s.offset < 0 or s.offset + s.size > self.work_size:
                raise UnsupportedModelError(f"internal: slot {s.name} lies outside the work arena")
        return self

    def link(self):
        """Write each row's kernel address (compiling the kernels this model uses, or loading
        them from Numba's cache, on first use in the process); returns the plan. Idempotent:
        streams and the profiler call it before they run the program."""
        if not self.linked:
            from .engine import link
            link(self.prog, self.row_layouts, self.int8_activation_matrices())
            self.linked = True
        return self

    def int8_matrices(self):
        """How many matrix uses in the program hold int8 weights."""
        return sum(use.int8 for name, row in zip(self.row_layouts, self.prog)
                   for use in matrix_uses(LAYOUTS[name], row))

    def int8_activation_matrices(self):
        """The offsets of the int8 matrices that take int8 activations (none unless
        ``activations`` is "int8"); the first call decides, and makes ``dot_constants``."""
        if self.dot_offsets is None:
            self.dot_offsets = frozenset()
            if self.activations == "int8":
                from .ops.matvec_dot import interleaved_constants
                self.dot_offsets, self.dot_constants, self.dot_copy_bytes = interleaved_constants(
                    self.prog, [LAYOUTS[name] for name in self.row_layouts], self.arena.qconsts)
        return self.dot_offsets


class EmitContext:
    """What an op's ``emit`` uses to address buffers and append rows."""

    def __init__(self, offsets, work_size, arena, owned=None):
        self.offsets = offsets
        self.owned = owned or {}
        self.work_size = work_size
        self.arena = arena
        self.rows, self.row_nodes, self.row_layouts = [], [], []
        self.fp = []

    def work_off(self, v):
        r = v.root()
        if r.is_const:
            raise UnsupportedModelError(f"internal: constant '{v.name}' used as a computed tensor")
        return self.offsets[id(r)]

    def const_off(self, v):
        """Offset in ``consts`` (float32 elements) of a float constant value."""
        if v.const.dtype == object:
            raise UnsupportedModelError(f"a shape value ('{v.name}') is used as numbers")
        if v.scale is not None:
            raise UnsupportedModelError(f"internal: int8 constant '{v.name}' read as float32")
        return self.arena.byte_offset(v.const, v.name) // 4

    def matrix(self, v):
        """(offset, scale offset) of a weight matrix: float32 in ``consts`` (scale -1) or
        int8 in ``qconsts`` (byte offset) with its float32 scales in ``consts``."""
        if v.scale is None:
            return self.const_off(v), -1
        return self.arena.byte_offset(v.const, v.name), self.arena.byte_offset(v.scale, v.name + " scale") // 4

    def addr(self, v):
        return (REGION_CONST, self.const_off(v)) if v.is_const else (REGION_WORK, self.work_off(v))

    def state_off(self, node, name):
        """Work offset of the per-stream state ``name`` that ``node``'s op declares
        (``Op.state``): placed with the graph's states, so reset, ``Stream.state`` and
        snapshots include it."""
        return self.owned[(node.name, name)][0]

    def scratch(self, n):
        off = self.work_size
        self.work_size += int(n)
        return off

    def fparam(self, x):
        self.fp.append(float(x))
        return len(self.fp) - 1

    def fparams(self, xs):
        start = len(self.fp)
        self.fp.extend(float(x) for x in xs)
        return start

    def row(self, node, layout, **fields):
        """Append a row of ``layout`` (:class:`edgernn.ops.row.RowLayout`) with every field by name."""
        self.rows.append(layout.make(fields))
        self.row_nodes.append(node.name if node is not None else "state")
        self.row_layouts.append(layout.name)


def is_alias(node):
    """Whether the node's output shares its first input's bytes (set by :func:`build_plan`):
    such a node costs nothing per step and emits no row."""
    out = node.outputs[0] if node.outputs else None
    return out is not None and node.input(0) is not None and out.alias_of is node.input(0)


def _set_aliases(graph):
    consumers = graph.consumers()
    for n in graph.nodes:
        op = ops.get(n.op)
        x = n.input(0)
        if hasattr(op, "alias_input") and x is not None and not x.is_const and op.alias_input(n):
            n.outputs[0].alias_of = x
        if isinstance(op, RecurrentOp):
            if not n.attrs.get("frame_limit") and n.outputs[0] is not None:
                n.outputs[0].alias_of = n.outputs[1]
            if n.attrs.get("frame_limit"):
                n.outputs[-1].alias_of = n.inputs[op.counter_slot]
    for s in graph.states:
        for n in consumers.get(id(s.value), []):
            op = ops.get(n.op)
            only_reader = consumers[id(s.value)] == [n]
            if isinstance(op, RecurrentOp) and only_reader and s.next.alias_of is None and \
                    any(s.next is n.outputs[k] for k in op.state_outputs.values()):
                s.next.alias_of = s.value
            if only_reader and s.next.alias_of is None and \
                    any(n.inputs[i] is s.value and s.next is n.outputs[k] for i, k in op.in_place_state(n)):
                s.next.alias_of = s.value


def _gate(node, rows, clock_offset):
    """Gate a node's rows on the stream's clock (``ops.row.GATE_CLOCK``) when the streaming
    pass says its input is due from frame ``due_from`` on, every ``period``-th frame
    (:mod:`edgernn.passes.pulse`)."""
    if "due_from" not in node.attrs and "period" not in node.attrs:
        return
    due = int_attr(node, "due_from", 0, 2 ** 24) if "due_from" in node.attrs else 0
    period = int_attr(node, "period", 1, 2 ** 16) if "period" in node.attrs else 1
    if due == 0 and period == 1:
        return
    if clock_offset is None:
        raise UnsupportedModelError(f"{node.describe()}: is due from frame {due} every {period}, but the graph "
                                    "has no clock state")
    for row in rows:
        row[GATE_CLOCK], row[GATE_FROM] = clock_offset + 1, due | (period << 32)


def build_plan(graph, arena=None):
    """Lay out the arenas and emit the program for a prepared graph.

    arena: the constants already placed (a model read from a file); None builds one."""
    if not graph.inputs or not graph.outputs:
        raise UnsupportedModelError("the model has no frame input or no output; there is nothing to stream")
    for v in [x for n in graph.nodes for x in n.outputs if x is not None]:
        v.alias_of = None
    _set_aliases(graph)
    offsets, size = {}, 0

    def place(v):
        nonlocal size
        r = v.root()
        if id(r) not in offsets:
            offsets[id(r)] = size
            size += r.size

    for v in graph.inputs:
        place(v)
    state_offset = size
    for s in graph.states:
        place(s.value)
    owned, chunk_safe = {}, True          # state the ops own: (node name, state name) -> (offset, OwnedState)
    for n in graph.nodes:
        op = ops.get(n.op)
        chunk_safe = chunk_safe and op.sequence_safe(n)
        for st in op.state(n):
            owned[(n.name, st.name)] = (size, st)
            size += st.size
            chunk_safe = chunk_safe and op.carries_state_in_sequence
    state_end = size
    for n in graph.nodes:
        for v in n.outputs:
            if v is not None and not v.is_const:
                place(v)
    if arena is None:
        arena = ConstArena.build(kernel_constants(graph))
    ctx = EmitContext(offsets, size, arena, owned)
    clock = next((offsets[id(s.value)] for s in graph.states if s.name == CLOCK_STATE), None)
    for n in graph.nodes:
        op = ops.get(n.op)
        if all(v is None or v.is_const for v in n.outputs):
            continue
        if is_alias(n):
            continue
        first = len(ctx.rows)
        op.emit(n, ctx)
        _gate(n, ctx.rows[first:], clock)
    copied = [s for s in graph.states if s.next.root() is not s.value.root()]
    producers = graph.producers()
    for s in copied:
        first = len(ctx.rows)
        emit_copy(ctx, s.next, 0, s.value, 0, [s.value.size], [1], [1], None)
        if id(s.next) in producers:              # held back with the node that computes it
            _gate(producers[id(s.next)], ctx.rows[first:], clock)
    check_bytes(ctx.work_size * 4, "one stream's work arena (inputs, state, activations, scratch)")
    state_init = np.zeros(state_end - state_offset, np.float32)
    for s in graph.states:
        o = offsets[id(s.value)] - state_offset
        state_init[o:o + s.value.size] = s.init.ravel()
    for (node_name, name), (offset, st) in owned.items():
        state_init[offset - state_offset:offset - state_offset + st.size] = st.initial_values()
    slot = lambda v: Slot(v.name, offsets[id(v.root())], v.frame_shape)
    plan = Plan(
        prog=np.array(ctx.rows, np.int64).reshape(len(ctx.rows), WIDTH),
        fparams=np.array(ctx.fp or [0.0], np.float32),
        arena=arena, work_size=ctx.work_size,
        inputs=[slot(v) for v in graph.inputs], outputs=[slot(v) for v in graph.outputs],
        states=[Slot(s.name, offsets[id(s.value)], s.frame_shape) for s in graph.states]
        + [Slot(f"{node_name}.{name}", offset, st.shape) for (node_name, name), (offset, st) in owned.items()],
        state_init=state_init, state_offset=state_offset, sequence_ok=not copied and chunk_safe,
        matvec_rows=max([1] + [ops.get(n.op).matvec_rows(n) for n in graph.nodes if not is_alias(n)]),
        row_nodes=ctx.row_nodes, row_layouts=ctx.row_layouts)
    return plan.validate()
