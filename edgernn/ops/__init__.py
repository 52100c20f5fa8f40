"""Every IR op, one module per op family: its IR definition (attributes, shape rule), its
plain NumPy reference, its program row and its Numba kernel live together (see
docs/adding-an-op.md).

An op is a subclass of :class:`Op` registered under its IR name:
- ``infer(node)`` returns ``[(shape, dtype), ...]`` for the outputs from the inputs' symbolic
  shapes (see :mod:`edgernn.ir.dims`), rejects what cannot be streamed, and checks every
  constant operand against the op's shape rule (:func:`expect_const`);
- ``reference(node, *arrays)`` computes the outputs with NumPy for one frame of one stream;
  it is the oracle for the kernel and is used for constant folding;
- ``emit(node, ctx)`` appends the op's rows to the step program, by field name, in the layout
  its module declares (:mod:`edgernn.ops.row`; the kernel sits beside it);
- cost counts for the device model, per stream and step: ``flops(node)`` (multiply-adds x 2
  plus elementwise work), ``macs(node)`` ([(weight Value, multiply-adds)] of the matvec
  kernel) and ``activations(node)`` (sigmoid/tanh evaluations);
- ``matrix_slots``: the inputs that hold a packed weight matrix (int8 quantisation);
- ``state(node)``: the per-stream state the op owns beyond the graph's state tensors
  (:class:`OwnedState`; a convolution's history, a counter).
Recurrent ops also take and give state through ``reference`` (h_prev in, h out).
"""
from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedModelError

OPS = {}


@dataclass
class OwnedState:
    """Per-stream state an op keeps between steps (``Op.state``): ``shape`` per stream (ints),
    starting from ``init`` (a number, or an array of that shape) after every reset."""
    name: str
    shape: tuple
    init: object = 0.0

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    def initial_values(self):
        return np.broadcast_to(np.asarray(self.init, np.float32), self.shape).ravel()


class Op:
    name = ""
    #: ops whose outputs are computed at load time when every input is a constant
    foldable = True
    #: input slots holding a packed weight matrix (quantised by ``weights="int8"``)
    matrix_slots = ()
    #: whether the kernel, run in sequence mode (``seq``: the rows of ``work`` are one stream's
    #: consecutive frames), carries its owned state from row to row itself; if not, a model
    #: with this op runs ``Stream.run`` frame by frame
    carries_state_in_sequence = False

    def matvec_rows(self, node):
        """Rows of one stream this node's kernel passes to the matvec at once (a convolution's
        block of positions); the ROWS-row panel blocks are compiled when it reaches ROWS."""
        return 1

    def sequence_safe(self, node):
        """Whether a chunk of frames may run this node op by op over all of its frames
        (``Stream.run``'s sequence mode); False makes the chunk run frame by frame."""
        return True

    def in_place_state(self, node):
        """[(input slot, output slot), ...]: outputs that may share the bytes of a state input
        (the state's next value) when this node is the state's only reader, because the
        kernel reads all of that input before it writes the output. Saves the copy row that
        otherwise carries the next value into the state at the end of the step."""
        return []

    def state(self, node):
        """[OwnedState, ...]: the per-stream state this node's kernel keeps between steps, beyond
        the graph's state tensors; emit finds each at ``ctx.state_off(node, name)``."""
        return []

    def infer(self, node):
        raise NotImplementedError

    def reference(self, node, *inputs):
        raise NotImplementedError

    def emit(self, node, ctx):
        raise UnsupportedModelError(f"{node.describe()}: no kernel for a computed (non-constant) input")

    def flops(self, node):
        return 0

    def macs(self, node):
        return []

    def activations(self, node):
        return 0


def register(cls):
    if cls.name in OPS:
        raise ValueError(f"internal: op {cls.name!r} registered twice")
    OPS[cls.name] = cls()
    return cls


def get(name):
    return OPS[name]


def expect_const(node, slot, shape, what, required=True):
    """Input ``slot`` of ``node`` as a checked constant: its shape must be ``shape`` (leading
    axes of size 1 may be added or dropped) because the kernel reads exactly that many values.
    Returns the Value, or None when it is absent and not ``required``."""
    v = node.input(slot)
    if v is None:
        if required:
            raise UnsupportedModelError(f"{node.describe()}: input {what} is missing")
        return None
    if not v.is_const:
        raise UnsupportedModelError(
            f"{node.describe()}: {what} must be a constant (an initializer); it is computed or a graph "
            "input. Bind it as an initializer before loading")
    got = tuple(int(d) for d in np.shape(v.const))
    want = tuple(int(d) for d in shape)
    squeeze = lambda s: tuple(s[next((i for i, d in enumerate(s) if d != 1), len(s)):])
    if squeeze(got) != squeeze(want):
        raise UnsupportedModelError(
            f"{node.describe()}: {what} '{v.name}' has shape {list(got)}, expected {list(want)}; "
            "the file's tensor does not match its op, re-export the model")
    return v


def _load_all():
    from . import layout, indexing, elementwise, dense, softmax, layernorm, lstm, gru, rnn, frames, reduce  # noqa: F401
    from . import unary, conv, conv_transpose, pad, split, batchnorm, control, scatter, history, pool  # noqa: F401


_load_all()
