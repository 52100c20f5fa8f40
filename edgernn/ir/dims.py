"""Symbolic dimensions: how the IR knows which axis is time and which is batch.

A dimension is either a plain ``int`` or a :class:`Dim` ``n * T**t * B**b`` with t, b in
{0, 1}, where T is the sequence length and B the batch size of the exported graph. The engine
always runs one frame of one stream, i.e. T = B = 1, so the concrete size of any dimension is
``n`` (:func:`concrete`). Keeping T and B symbolic during analysis lets the passes
- find the per-frame shape of every input and output (drop the T and B axes),
- reject ops that mix frames across time (a Softmax or Concat over the T axis),
- repair sizes the exporter baked in (torch's dynamo exporter writes the example's
  sequence length into Reshape targets).
Arithmetic that cannot be expressed in this form (T + 1, T * T) raises
:class:`UnsupportedModelError`.
"""
from ..errors import UnsupportedModelError


class Dim:
    __slots__ = ("n", "t", "b")

    def __init__(self, n, t=0, b=0):
        self.n, self.t, self.b = int(n), int(t), int(b)
        if self.t > 1 or self.b > 1:
            raise UnsupportedModelError(
                "a tensor size grows with the square of the sequence length or batch size; "
                "edgernn streams only models whose per-frame work is independent of time")

    def _mul(self, other):
        if isinstance(other, Dim):
            return make_dim(self.n * other.n, self.t + other.t, self.b + other.b)
        return make_dim(self.n * _as_int(other), self.t, self.b)

    __mul__ = __rmul__ = _mul

    def __floordiv__(self, other):
        return divide(self, other)

    __truediv__ = __floordiv__

    def __rfloordiv__(self, other):
        return divide(other, self)

    def _no_sum(self, *_):
        raise UnsupportedModelError(
            "the model computes a sum with the sequence length or batch size (e.g. T + 1); "
            "only products of T and B with constants can be streamed")

    __add__ = __radd__ = __sub__ = __rsub__ = __neg__ = _no_sum

    def __eq__(self, other):
        if isinstance(other, Dim):
            return (self.n, self.t, self.b) == (other.n, other.t, other.b)
        return False

    def __hash__(self):
        return hash((self.n, self.t, self.b))

    def __repr__(self):
        parts = ([str(self.n)] if self.n != 1 else []) + ["T"] * self.t + ["B"] * self.b
        return "*".join(parts)


def _as_int(x):
    if isinstance(x, Dim):
        return x
    try:
        return int(x)
    except (TypeError, ValueError):
        raise UnsupportedModelError(f"expected an integer size, got {x!r}") from None


def make_dim(n, t=0, b=0):
    """A Dim, or a plain int when it has no symbolic part."""
    return int(n) if t == 0 and b == 0 else Dim(n, t, b)


T = Dim(1, 1, 0)
B = Dim(1, 0, 1)


def parts(d):
    """(n, t, b) of any dimension."""
    return (d.n, d.t, d.b) if isinstance(d, Dim) else (int(d), 0, 0)


def is_symbolic(d):
    return isinstance(d, Dim)


def has_time(d):
    return isinstance(d, Dim) and d.t > 0


def has_batch(d):
    return isinstance(d, Dim) and d.b > 0


def concrete(d):
    """Size of `d` when one frame of one stream runs (T = B = 1)."""
    return d.n if isinstance(d, Dim) else int(d)


def concrete_shape(shape):
    return tuple(concrete(d) for d in shape)


def divide(a, b):
    """Exact division of dimensions; raises when the result is not of the form n*T^t*B^b."""
    an, at, ab = parts(a)
    bn, bt, bb = parts(b)
    if bn == 0 or an % bn or at < bt or ab < bb:
        raise UnsupportedModelError(f"cannot divide size {a!r} by {b!r} exactly")
    return make_dim(an // bn, at - bt, ab - bb)


def product(dims):
    out = 1
    for d in dims:
        out = out * d if isinstance(out, Dim) or not isinstance(d, Dim) else d * out
    return out


def same(a, b, lenient_batch=True):
    """Whether two sizes agree. A concrete 1 matches B: exports bake the example batch of 1."""
    if a == b:
        return True
    if lenient_batch:
        pa, pb = parts(a), parts(b)
        if pa[1] == pb[1] and pa[0] == pb[0] and (pa[2] == 0 or pb[2] == 0):
            return True
    return False


def fmt_shape(shape):
    return "(" + ", ".join(repr(d) for d in shape) + ")"
