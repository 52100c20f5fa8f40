"""Every IR op, one module per op family: its IR definition (attributes, shape rule), its
plain NumPy reference and its Numba kernel live together.

An op is a subclass of :class:`Op` registered under its IR name:
- ``infer(node)`` returns ``[(shape, dtype), ...]`` for the outputs from the inputs' symbolic
  shapes (see :mod:`edgernn.ir.dims`) and rejects what cannot be streamed;
- ``reference(node, *arrays)`` computes the outputs with NumPy for one frame of one stream;
  it is the oracle for the kernel and is used for constant folding;
- ``emit(node, ctx)`` appends the op's rows to the step program (see :mod:`edgernn.plan`);
- ``flops(node)`` counts multiply-adds x 2 plus elementwise work per frame.
Recurrent ops also take and give state through ``reference`` (h_prev in, h out).
"""
from ..errors import UnsupportedModelError

OPS = {}


class Op:
    name = ""
    #: ops whose outputs are computed at load time when every input is a constant
    foldable = True

    def infer(self, node):
        raise NotImplementedError

    def reference(self, node, *inputs):
        raise NotImplementedError

    def emit(self, node, ctx):
        raise UnsupportedModelError(f"{node.describe()}: no kernel for a computed (non-constant) input")

    def flops(self, node):
        return 0


def register(cls):
    OPS[cls.name] = cls()
    return cls


def get(name):
    return OPS[name]


def _load_all():
    from . import layout, indexing, elementwise, dense, softmax, layernorm, lstm, gru, rnn, frames, reduce  # noqa: F401


_load_all()
