"""Plain NumPy evaluation of a prepared graph, one frame at a time: the oracle for the engine.

It runs every node's ``reference`` (the spec's equations, written for readability) on the same
prepared IR the engine's plan is built from, so a difference between the two isolates the
plan and the Numba kernels.
"""
import numpy as np

from . import ops
from .ops.history import CLOCK_STATE, COUNT, PHASE, is_due
from .quant import dequantize


def _due(node, clock):
    """Whether a node runs at this step: from frame ``due_from`` on, every ``period``-th frame
    of the clock (passes/pulse.py); a node without those attributes always runs."""
    due, period = node.attrs.get("due_from", 0), node.attrs.get("period", 1)
    return clock is None or is_due(clock[COUNT], clock[PHASE], due, period)


class ReferenceStream:
    def __init__(self, model_or_graph):
        self.graph = getattr(model_or_graph, "graph", model_or_graph)
        self.reset()

    def reset(self):
        self._state = {id(s.value): s.init.copy() for s in self.graph.states}
        self._held = {}

    @property
    def state(self):
        return {s.name: self._state[id(s.value)].reshape(s.frame_shape).copy() for s in self.graph.states}

    def step(self, *frames):
        g = self.graph
        env = {}
        for v, f in zip(g.inputs, frames):
            env[id(v)] = np.asarray(f, np.float32).reshape(v.concrete_shape)
        for s in g.states:
            env[id(s.value)] = self._state[id(s.value)].reshape(s.value.concrete_shape)
        clock = next((env[id(s.value)] for s in g.states if s.name == CLOCK_STATE), None)
        held = set()
        for n in g.nodes:
            if all(v is None or v.is_const for v in n.outputs):
                continue
            if not _due(n, clock):                   # held back: its outputs keep their last values
                for v in n.outputs:
                    if v is not None:
                        env[id(v)] = self._held.get(id(v), np.zeros(v.concrete_shape, np.float32))
                        held.add(id(v))
                continue
            args = [None if v is None else (dequantize(v) if v.is_const else env[id(v)]) for v in n.inputs]
            for v, a in zip(n.outputs, ops.get(n.op).reference(n, *args)):
                if v is not None:
                    env[id(v)] = self._held[id(v)] = np.asarray(a, np.float32).reshape(v.concrete_shape)
        for s in g.states:
            if id(s.next) not in held:                  # a held-back node's state stays as it is
                self._state[id(s.value)] = env[id(s.next)].copy()
        outs = [env[id(o)].reshape(o.frame_shape) for o in g.outputs]
        return outs[0] if len(outs) == 1 else tuple(outs)
