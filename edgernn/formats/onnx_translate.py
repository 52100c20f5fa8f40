"""The registry of ONNX op translators, split by op family so each family's translations sit
in one module (:mod:`.onnx` holds the core: tensors, attributes, recurrent and layout ops).

A translator is ``fn(op_type, name, a, ins, opset) -> (ir_op, inputs, attrs)``: ``a`` is the
node's checked :class:`~edgernn.formats.onnx.Attributes` (``a("axis", "int", 0)``; ``a.where``
names the node for messages), ``ins`` its input Values (None for an empty name), ``opset``
the default domain's version. It only translates: shapes and checks belong to the IR op's
``infer``. Register it with ``@translates("Conv", ...)``; the module must be imported by
:func:`load_families` so that ``SUPPORTED`` lists it.
"""
import numpy as np

from ..ir.graph import Value

TRANSLATORS = {}


def translates(*op_types):
    def register(fn):
        for t in op_types:
            if t in TRANSLATORS:
                raise ValueError(f"internal: ONNX op {t} translated twice")
            TRANSLATORS[t] = fn
        return fn
    return register


def const_value(name, arr):
    """A constant IR Value holding ``arr``."""
    arr = np.asarray(arr)
    return Value(name, shape=tuple(arr.shape), dtype=arr.dtype.name, const=arr)


def load_families():
    from . import onnx_conv, onnx_math, onnx_control  # noqa: F401
