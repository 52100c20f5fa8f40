"""Plan: the step as an op program over preallocated arenas (TensorFlow Lite Micro style).

Everything is placed here, once; a step allocates nothing. Work arena layout, per stream:

    [ frame inputs | state | activations | scratch ]

- An alias (reshape, squeeze, a Transpose that keeps non-unit axes in order, Y = Y_h of a
  recurrent op) shares its source's bytes.
- A recurrent op writes its state in place when it is the state's only reader.
- Other states are copied from their next value at the end of the step (OP_COPY rows).
- Constants read by kernels are laid out in one float32 arena, 16-float aligned.
:meth:`Plan.validate` checks every range a row reads or writes lies inside its arena, so the
kernels (compiled without bounds checks) never touch memory outside them.
"""
from dataclasses import dataclass, field

import numpy as np

from . import ops
from .errors import UnsupportedModelError
from .ops.layout import emit_copy
from .ops.program import REGION_CONST, ROW
from .ops.recurrent import RecurrentOp

ALIGN = 16


@dataclass
class Slot:
    name: str
    offset: int
    frame_shape: tuple

    @property
    def size(self):
        return int(np.prod(self.frame_shape, dtype=np.int64))


@dataclass
class Plan:
    prog: np.ndarray
    fparams: np.ndarray
    consts: np.ndarray
    work_size: int
    inputs: list
    outputs: list
    states: list
    state_init: np.ndarray          # the state region's start values
    state_offset: int
    row_nodes: list = field(default_factory=list)   # source node name of each program row
    extents: list = field(default_factory=list)     # (row, region, offset, size) for validate

    def validate(self):
        sizes = {REGION_CONST: self.consts.size, 1: self.work_size}
        for row, region, off, n in self.extents:
            if off < 0 or n < 0 or off + n > sizes[region]:
                raise UnsupportedModelError(
                    f"internal: program row {row} ({self.row_nodes[row]}) reaches outside its arena "
                    f"({off}+{n} > {sizes[region]}); please report this model")
        for s in self.inputs + self.outputs + self.states:
            if s.offset < 0 or s.offset + s.size > self.work_size:
                raise UnsupportedModelError(f"internal: slot {s.name} lies outside the work arena")
        return self


class EmitContext:
    """What an op's ``emit`` uses to address buffers and append rows."""

    def __init__(self, offsets, work_size):
        self.offsets = offsets
        self.work_size = work_size
        self.rows, self.row_nodes, self.extents = [], [], []
        self.fp = []
        self.const_chunks, self.const_size, self.const_ids = [], 0, {}

    def work_off(self, v):
        r = v.root()
        if r.is_const:
            raise UnsupportedModelError(f"internal: constant '{v.name}' used as a computed tensor")
        return self.offsets[id(r)]

    def const_off(self, x):
        key = id(x)
        if key in self.const_ids:
            return self.const_ids[key][0]
        arr = x.const if hasattr(x, "const") else x
        if arr.dtype == object:
            raise UnsupportedModelError(f"a shape value ('{getattr(x, 'name', '?')}') is used as numbers")
        arr = np.ascontiguousarray(arr, dtype=np.float32).ravel()
        off = self.const_size
        self.const_chunks.append((off, arr))
        self.const_size = off + (arr.size + ALIGN - 1) // ALIGN * ALIGN
        self.const_ids[key] = (off, x)   # holding x keeps id(x) from being reused
        return off

    def addr(self, v):
        return (REGION_CONST, self.const_off(v)) if v.is_const else (1, self.work_off(v))

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

    def row(self, node, opcode, fields, reads=(), writes=()):
        if len(fields) + 1 > ROW:
            raise UnsupportedModelError(f"internal: {node.describe()} needs {len(fields) + 1} fields")
        r = np.zeros(ROW, np.int64)
        r[0] = opcode
        r[1:1 + len(fields)] = fields
        i = len(self.rows)
        self.rows.append(r)
        self.row_nodes.append(node.name if node is not None else "state")
        self.extents += [(i, region, off, n) for region, off, n in reads]
        self.extents += [(i, 1, off, n) for off, n in writes]


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


def build_plan(graph):
    """Lay out the arenas and emit the program for a prepared graph."""
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
    state_end = size
    for n in graph.nodes:
        for v in n.outputs:
            if v is not None and not v.is_const:
                place(v)
    ctx = EmitContext(offsets, size)
    for n in graph.nodes:
        op = ops.get(n.op)
        if all(v is None or v.is_const for v in n.outputs):
            continue
        if is_alias(n):
            continue
        op.emit(n, ctx)
    for s in graph.states:
        if s.next.root() is not s.value.root():
            shape = [s.value.size]
            emit_copy(ctx, s.next, 0, s.value, 0, shape, [1], [1], None)
    consts = np.zeros(max(ctx.const_size, 1), np.float32)
    for off, arr in ctx.const_chunks:
        consts[off:off + arr.size] = arr
    state_init = np.zeros(state_end - state_offset, np.float32)
    for s in graph.states:
        o = offsets[id(s.value)] - state_offset
        state_init[o:o + s.value.size] = s.init.ravel()
    slot = lambda v: Slot(v.name, offsets[id(v.root())], v.frame_shape)
    plan = Plan(
        prog=np.array(ctx.rows, np.int64).reshape(len(ctx.rows), ROW),
        fparams=np.array(ctx.fp or [0.0], np.float32),
        consts=consts, work_size=ctx.work_size,
        inputs=[slot(v) for v in graph.inputs], outputs=[slot(v) for v in graph.outputs],
        states=[Slot(s.name, offsets[id(s.value)], s.value.frame_shape) for s in graph.states],
        state_init=state_init, state_offset=state_offset,
        row_nodes=ctx.row_nodes, extents=ctx.extents)
    return plan.validate()
