"""The IR: a small graph of ops over tensors with symbolic shapes and explicit state.

- :class:`Value` is a tensor. A constant holds ``const`` (its array at T = B = 1; shape
  tensors are object arrays whose elements may be :class:`~edgernn.ir.dims.Dim`). A dynamic
  value is computed each step; ``alias_of`` marks a value that shares its producer's bytes.
  A quantised weight (see :mod:`edgernn.quant`) has ``dtype`` "int8", an int8 ``const`` and
  ``scale``: float32, one scale per output unit, along ``scale_axis`` (-2 for weights laid out
  [..., N, K] as importers give them, -1 for the panel matrices [P, K, L] the pack pass makes,
  one scale per panel column: see :mod:`edgernn.ops.matvec`).
- :class:`Node` is one op application. ``op`` names an entry of :mod:`edgernn.ops`; ``attrs``
  are that op's normalised attributes (documented in the op's module).
- :class:`StateVar` is persistent per-stream state: ``value`` is read during a step, ``next``
  is computed by the step and becomes ``value`` for the next step; ``init`` is its start;
  ``shown_shape`` keeps the file's per-stream shape when a pass gives the value another one
  (a recognised cell's [1, B, H]).
- :class:`Graph` lists nodes in execution order, the frame inputs, the outputs and the states.
"""
from dataclasses import dataclass, field

import numpy as np

from .dims import concrete_shape, fmt_shape, has_batch, has_time


@dataclass(eq=False)
class Value:
    name: str
    shape: tuple = None          # symbolic shape (ints and Dims); None until inferred
    dtype: str = "float32"
    const: np.ndarray = None     # set for constants
    alias_of: "Value" = None     # dynamic value sharing the bytes of another value
    scale: np.ndarray = None     # int8 weights: float32 scale per output unit
    scale_axis: int = -2         # the axis of `const` that `scale` runs along

    @property
    def is_const(self):
        return self.const is not None

    @property
    def concrete_shape(self):
        return concrete_shape(self.shape)

    @property
    def size(self):
        return int(np.prod(self.concrete_shape, dtype=np.int64))

    @property
    def frame_shape(self):
        """Shape of one frame of one stream: the T and B axes dropped."""
        return tuple(int(d) for d in self.shape if not (has_time(d) or has_batch(d)))

    def root(self):
        """The value whose bytes this one shares (itself when it aliases none); a cycle of
        aliases (only a malformed graph makes one: a node whose output is its own input) is an
        UnsupportedModelError."""
        v, seen = self, {id(self)}
        while v.alias_of is not None:
            v = v.alias_of
            if id(v) in seen:
                from ..errors import UnsupportedModelError
                raise UnsupportedModelError(f"value '{self.name}' shares its bytes with a cycle of values (a node's "
                                            "output is also its input): the graph is malformed")
            seen.add(id(v))
        return v

    def __repr__(self):
        kind = "const" if self.is_const else "dyn"
        shape = fmt_shape(self.shape) if self.shape is not None else "?"
        return f"<{kind} {self.name} {shape} {self.dtype}>"


@dataclass(eq=False)
class Node:
    op: str
    name: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)
    source_op: str = ""          # the op in the source file, for error messages

    def input(self, i):
        return self.inputs[i] if i < len(self.inputs) else None

    def describe(self):
        src = f" ({self.source_op})" if self.source_op and self.source_op != self.op else ""
        return f"node '{self.name}' op {self.op}{src}"


@dataclass(eq=False)
class StateVar:
    name: str
    value: Value
    next: Value
    init: np.ndarray
    shown_shape: tuple = None    # per-stream shape users see, when a pass re-laid the value out

    @property
    def frame_shape(self):
        """The shape of one stream's state as the file gives it (``Stream.state``)."""
        return tuple(self.shown_shape) if self.shown_shape is not None else self.value.frame_shape


@dataclass(eq=False)
class Graph:
    nodes: list
    inputs: list                 # frame inputs (state inputs move to `states`)
    outputs: list                # user-visible outputs (state outputs move to `states`)
    states: list = field(default_factory=list)
    opset: int = 0
    source: str = ""
    declared: dict = field(default_factory=dict)   # input name -> declared dims (int or None)
    meta: dict = field(default_factory=dict)       # facts kept for `info` (e.g. "parameters")

    def consumers(self):
        """Map id(value) -> list of nodes that read it."""
        out = {}
        for n in self.nodes:
            for v in n.inputs:
                if v is not None:
                    out.setdefault(id(v), []).append(n)
        return out

    def producers(self):
        return {id(v): n for n in self.nodes for v in n.outputs if v is not None}

    def live_nodes(self):
        """Nodes that contribute to an output or a state's next value, in order."""
        needed = {id(v) for v in self.outputs} | {id(s.next) for s in self.states}
        live = []
        for n in reversed(self.nodes):
            if any(v is not None and not v.is_const and id(v) in needed for v in n.outputs):
                live.append(n)
                needed.update(id(v) for v in n.inputs if v is not None)
        return live[::-1]

    def prune(self):
        self.nodes = self.live_nodes()
        return self
