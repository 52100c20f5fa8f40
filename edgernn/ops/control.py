"""Control flow and logic on values known at load time: if, comparisons, logic, where, size,
range, expand, tile.

Streaming models use these on shapes and on bound constant inputs (silero-vad picks its 8 kHz
or 16 kHz branch with ``If(Equal(sr, 16000))`` and tests tensor ranks with ``If(Equal(Size(
Shape(x)), 2))``). They have no kernels: each folds at load time, and on a computed input
raises an error naming the node (``Op.emit``).

if:    outputs = then_branch(...) if cond else else_branch(...)
       cond: a constant with one element. attrs ``then_branch`` and ``else_branch`` are
       :class:`Branch` es (their nodes read the enclosing graph's values directly). Shape
       inference replaces the node by the chosen branch (:meth:`If.expand`), so the branch
       not taken is never inferred or compiled.
equal, greater, less, greater_or_equal, less_or_equal: elementwise comparisons (NumPy
       broadcasting) giving bool. The batch size B compares as 1 (each stream runs the graph
       as a batch of one); the time size T equals only itself, otherwise it is an error.
not, and, or, xor: elementwise logic on bool.
where: where(cond, x, y) elementwise with broadcasting.
size:  the number of elements of x (int64 scalar; may be a symbolic size).
range: start, limit, delta (scalars) -> [start, start + delta, ...) as in ONNX Range.
expand: x broadcast to the shape ``shape`` (ONNX bidirectional broadcasting).
tile:  x repeated ``repeats[i]`` times along axis i.
"""
from dataclasses import dataclass, field

import numpy as np

from ..errors import UnsupportedModelError
from ..ir.dims import Dim, concrete, has_time, is_symbolic, product
from ..ir.graph import Node
from ..limits import check_elements
from ..links import doc
from . import Op, register
from .elementwise import broadcast_shapes
from .layout import const_array, tidy


@dataclass(eq=False)
class Branch:
    """One branch of an ``if``: its nodes in order and the Values it returns."""
    nodes: list
    outputs: list = field(default_factory=list)


@register
class If(Op):
    name = "if"
    foldable = False

    def infer(self, node):
        raise UnsupportedModelError(
            f"{node.describe()}: its condition '{node.inputs[0].name}' is computed each step; edgernn runs "
            "one branch chosen at load time. If it depends on an input such as a sample rate, bind that "
            "input: edgernn.load(path, constants={'sr': 16000})")

    def expand(self, node):
        """The nodes that replace ``node``: the chosen branch, then an identity per output.
        None while the condition is not a constant (``infer`` then reports it)."""
        cond = node.inputs[0]
        if cond is None or not cond.is_const:
            return None
        values = np.ravel(cond.const)
        if values.size != 1 or any(isinstance(v, Dim) for v in values):
            raise UnsupportedModelError(f"{node.describe()}: its condition has {values.size} elements "
                                        "(or a symbolic size); If needs exactly one")
        branch = node.attrs["then_branch" if bool(values[0]) else "else_branch"]
        missing = [n for n in branch.nodes if n.op == "unsupported"]
        if missing:
            from ..errors import UnsupportedOpError
            kinds = sorted({n.attrs.get("op_type") for n in missing})
            raise UnsupportedOpError(
                f"{node.describe()}: the branch chosen at load uses {len(missing)} node(s) of op types edgernn does "
                f"not support: {', '.join(kinds)} ({', '.join(n.name for n in missing[:6])}"
                f"{', ...' if len(missing) > 6 else ''}). {doc('ops.md')} lists the ops edgernn runs")
        if len(branch.outputs) != len(node.outputs):
            raise UnsupportedModelError(f"{node.describe()}: the branch returns {len(branch.outputs)} values, "
                                        f"the node has {len(node.outputs)} outputs")
        returns = [Node("identity", f"{node.name}/out{k}", [v], [o], source_op="If")
                   for k, (v, o) in enumerate(zip(branch.outputs, node.outputs)) if o is not None]
        return list(branch.nodes) + returns


def _compare_items(node, a, b, fn):
    """fn over broadcast object arrays holding ints and Dims."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
    out = np.empty(a.shape, dtype=bool)
    for idx in np.ndindex(a.shape):
        x, y = a[idx], b[idx]
        # each stream runs the graph as a batch of one, so the batch size compares as 1
        x, y = (concrete(v) if is_symbolic(v) and not has_time(v) else v for v in (x, y))
        if is_symbolic(x) or is_symbolic(y):
            if fn is np.equal and is_symbolic(x) and is_symbolic(y):
                out[idx] = x == y
                continue
            raise UnsupportedModelError(
                f"{node.describe()}: compares the time size {x!r} with {y!r}; the answer depends on how "
                "many frames a stream has seen, so it cannot be decided at load time")
        out[idx] = bool(fn(x, y))
    return out


class Compare(Op):
    fn = staticmethod(np.equal)

    def infer(self, node):
        a, b = node.inputs
        return [(broadcast_shapes(node, a.shape, b.shape), "bool")]

    def reference(self, node, a, b):
        if a.dtype == object or b.dtype == object:
            return [_compare_items(node, a, b, self.fn)]
        return [np.asarray(self.fn(a, b))]


@register
class Equal(Compare):
    name, fn = "equal", staticmethod(np.equal)


@register
class Greater(Compare):
    name, fn = "greater", staticmethod(np.greater)


@register
class Less(Compare):
    name, fn = "less", staticmethod(np.less)


@register
class GreaterOrEqual(Compare):
    name, fn = "greater_or_equal", staticmethod(np.greater_equal)


@register
class LessOrEqual(Compare):
    name, fn = "less_or_equal", staticmethod(np.less_equal)


@register
class Not(Op):
    name = "not"

    def infer(self, node):
        return [(node.inputs[0].shape, "bool")]

    def reference(self, node, x):
        return [np.logical_not(np.asarray(x, dtype=bool))]


class Logic(Op):
    fn = staticmethod(np.logical_and)

    def infer(self, node):
        a, b = node.inputs
        return [(broadcast_shapes(node, a.shape, b.shape), "bool")]

    def reference(self, node, a, b):
        return [np.asarray(self.fn(np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)))]


@register
class And(Logic):
    name, fn = "and", staticmethod(np.logical_and)


@register
class Or(Logic):
    name, fn = "or", staticmethod(np.logical_or)


@register
class Xor(Logic):
    name, fn = "xor", staticmethod(np.logical_xor)


@register
class Where(Op):
    name = "where"

    def infer(self, node):
        c, x, y = node.inputs
        shape = broadcast_shapes(node, broadcast_shapes(node, c.shape, x.shape), y.shape)
        return [(shape, x.dtype if x.dtype == y.dtype else "float32")]

    def reference(self, node, c, x, y):
        return [tidy(np.where(np.asarray(c, dtype=bool), x, y))]


@register
class Size(Op):
    name = "size"
    folds_on_shape = True

    def infer(self, node):
        return [((), "int64")]

    def reference(self, node, _x=None):
        return [tidy(np.array(product(node.inputs[0].shape), dtype=object))]


@register
class Range(Op):
    name = "range"

    def infer(self, node):
        start, limit, delta = (const_array(node, k, what) for k, what in enumerate(("start", "limit", "delta")))
        if any(v is None or v.size != 1 or v.dtype == object for v in (start, limit, delta)):
            raise UnsupportedModelError(f"{node.describe()}: start, limit and delta must be constant numbers")
        if float(delta.ravel()[0]) == 0:
            raise UnsupportedModelError(f"{node.describe()}: delta is 0")
        count = max(int(np.ceil((float(limit.ravel()[0]) - float(start.ravel()[0])) / float(delta.ravel()[0]))), 0)
        check_elements([count], 8, f"{node.describe()}: its output")
        return [((count,), node.inputs[0].dtype)]

    def reference(self, node, start, limit, delta):
        return [np.arange(start.ravel()[0], limit.ravel()[0], delta.ravel()[0]).astype(start.dtype)]


def _shape_vector(node, slot, what):
    v = const_array(node, slot, what)
    if v is None or v.ndim != 1:
        raise UnsupportedModelError(f"{node.describe()}: {what} must be a constant vector")
    return list(v)


@register
class Expand(Op):
    name = "expand"

    def infer(self, node):
        x = node.inputs[0]
        target = _shape_vector(node, 1, "shape")
        if any(not is_symbolic(d) and int(d) < 0 for d in target):
            raise UnsupportedModelError(f"{node.describe()}: negative size in {target}")
        shape = broadcast_shapes(node, x.shape, tuple(d if is_symbolic(d) else int(d) for d in target))
        return [(shape, x.dtype)]

    def reference(self, node, x, _shape=None):
        shape = tuple(int(getattr(d, "n", d)) for d in self.infer(node)[0][0])
        return [tidy(np.broadcast_to(x, shape).copy())]


@register
class Tile(Op):
    name = "tile"

    def infer(self, node):
        x = node.inputs[0]
        repeats = _shape_vector(node, 1, "repeats")
        if len(repeats) != len(x.shape) or any(is_symbolic(r) or int(r) < 0 for r in repeats):
            raise UnsupportedModelError(f"{node.describe()}: repeats {repeats} must be {len(x.shape)} "
                                        "non-negative numbers")
        if any(is_symbolic(d) and int(r) != 1 for d, r in zip(x.shape, repeats)):
            raise UnsupportedModelError(f"{node.describe()}: repeats the time or batch axis")
        return [(tuple(d * int(r) for d, r in zip(x.shape, repeats)), x.dtype)]

    def reference(self, node, x, repeats):
        return [tidy(np.tile(x, [int(r) for r in repeats]))]


@register
class Unsupported(Op):
    """A node the importer could not translate, kept where it sits in an If branch: an error
    if inference reaches it (the branch is taken), nothing otherwise.
    attrs: op_type (the source op), opset."""
    name = "unsupported"
    foldable = False

    def infer(self, node):
        from ..errors import UnsupportedOpError
        raise UnsupportedOpError(f"node '{node.name}' op {node.attrs.get('op_type')} (opset "
                                 f"{node.attrs.get('opset')}) is not supported, and the model runs it in the If branch "
                                 f"chosen at load. {doc('ops.md')} lists the ops edgernn runs")
