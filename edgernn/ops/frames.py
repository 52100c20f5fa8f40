"""take_frame and put_frame: a loop body's reads and writes of element t of a sequence.

A TFLite ``WHILE`` RNN runs its body once per time step t: it reads element t of the
time-major input sequence (``GATHER(seq, t)``) and writes its output into element t of an
accumulator sequence (``SLICE``/``CONCATENATION`` around the item). edgernn runs the body
once per frame, so at step t

    take_frame(seq)  = seq[t]            seq: [T, ...]  ->  [...]
    put_frame(x)     = the sequence whose element t is x      x: [...]  ->  [T, ...]

Axis 0 of ``seq`` must be the stream's time axis T (this is also how the time axis of the
model's input is found: a binding that puts anything else there fails shape inference). At
T = 1 both are pure relabellings of the same bytes, so they alias their input and cost nothing.
"""
import numpy as np

from ..errors import UnsupportedModelError
from ..ir.dims import T, fmt_shape, has_time, parts
from . import register
from .layout import AliasOp


@register
class TakeFrame(AliasOp):
    name = "take_frame"

    def infer(self, node):
        x = node.inputs[0]
        if not x.shape or parts(x.shape[0]) != (1, 1, 0):
            raise UnsupportedModelError(
                f"{node.describe()}: reads element t of {fmt_shape(x.shape or ())}, whose first axis "
                "is not the stream's time axis")
        return [(tuple(x.shape[1:]), x.dtype)]

    def reference(self, node, x):
        return [np.asarray(x)[0]]


@register
class PutFrame(AliasOp):
    name = "put_frame"

    def infer(self, node):
        x = node.inputs[0]
        if any(has_time(d) for d in x.shape):
            raise UnsupportedModelError(
                f"{node.describe()}: writes {fmt_shape(x.shape)}, which already has a time axis, as one "
                "element of a sequence")
        return [((T,) + tuple(x.shape), x.dtype)]

    def reference(self, node, x):
        return [np.asarray(x)[None]]
