"""Layout ops: identity, cast, shape, constant_of_shape, reshape, flatten, squeeze, unsqueeze,
transpose; and the strided copy kernel that every data-moving layout op lowers to.

At T = B = 1 a reshape never moves bytes, so reshape/flatten/squeeze/unsqueeze/identity (and
a transpose that keeps the non-unit axes in order) make their output an alias of the input.
Everything else that moves data becomes one :data:`COPY_ROW`:

    dst[dst_off + sum_k i_k * dst_stride_k] = src[src_off + sum_k i_k * src_stride_k]
    for every index (i_0 .. i_{rank-1}) < dims, rank <= 6.
"""
import numpy as np

from ..errors import UnsupportedModelError
from ..ir.dims import Dim, concrete, divide, fmt_shape, is_symbolic, parts, product
from . import Op, register
from .program import MAX_RANK, contiguous_strides, copy_into, merge_axes, pad, strided_offset
from .row import REGION_CONST, WORK, Field, RowLayout, ranked_fields, strided
from ..config import jit


# ---------------------------------------------------------------- kernel
COPY_ROW = RowLayout("copy", [
    Field("src_region", "REGION_CONST or REGION_WORK"),
    Field("src", "offset of the first source element", strided("src_region", "src_strides")),
    Field("dst", "work offset of the first destination element", strided(WORK, "dst_strides", writes=True)),
    *ranked_fields(("src_strides", "source stride"), ("dst_strides", "destination stride")),
])
C = COPY_ROW.fields


@COPY_ROW.kernel
@jit
def copy_kernel(row, fparams, consts, qconsts, work, seq):
    region, src_off, dst_off, rank = row[C.src_region], row[C.src], row[C.dst], row[C.rank]
    dims = row[C.dims:C.dims + MAX_RANK]
    sstr = row[C.src_strides:C.src_strides + MAX_RANK]
    dstr = row[C.dst_strides:C.dst_strides + MAX_RANK]
    total = 1
    for k in range(rank):
        total *= dims[k]
    if total <= 0:
        return
    contiguous = rank == 1 and sstr[0] == 1 and dstr[0] == 1
    inner, s_step, d_step = dims[rank - 1], sstr[rank - 1], dstr[rank - 1]
    for b in range(work.shape[0]):
        dst = work[b]
        src = consts if region == REGION_CONST else work[b]
        if contiguous:
            copy_into(dst[dst_off:dst_off + total], src[src_off:src_off + total])
            continue
        for o in range(total // inner):         # run by run along the innermost axis
            s0 = src_off + strided_offset(o, dims, sstr, rank - 1)
            d0 = dst_off + strided_offset(o, dims, dstr, rank - 1)
            if s_step == 1 and d_step == 1 and inner >= 16:
                copy_into(dst[d0:d0 + inner], src[s0:s0 + inner])
            else:
                for i in range(inner):
                    dst[d0 + i * d_step] = src[s0 + i * s_step]


def emit_copy(ctx, src, src_base, dst, dst_base, shape, src_strides, dst_strides, node):
    """Append one copy row moving `shape` elements from value `src` into value `dst`."""
    region, soff = ctx.addr(src)
    doff = ctx.work_off(dst)
    dims, (ss, ds) = merge_axes(shape, src_strides, dst_strides)
    ctx.row(node, COPY_ROW, src_region=region, src=soff + src_base, dst=doff + dst_base, rank=len(dims),
            dims=pad(dims), src_strides=pad(ss, fill=0), dst_strides=pad(ds, fill=0))


# ---------------------------------------------------------------- helpers
def const_array(node, i, what):
    v = node.input(i)
    if v is None:
        return None
    if not v.is_const:
        raise UnsupportedModelError(f"{node.describe()}: its {what} must be a constant known at load time")
    return v.const


def tidy(arr):
    """An object array holding only plain ints becomes int64 again (a bare scalar from
    indexing an object array becomes a 0-d array first)."""
    if not isinstance(arr, np.ndarray):
        arr = np.array(arr, dtype=object)
    if arr.dtype == object:
        if not any(isinstance(x, Dim) for x in arr.flat):
            return arr.astype(np.int64)
    return arr


def norm_axis(axis, rank, node):
    a = int(axis)
    if not -rank <= a < max(rank, 1):
        raise UnsupportedModelError(f"{node.describe()}: axis {a} is out of range for rank {rank}")
    return a % rank if rank else 0


class AliasOp(Op):
    """An op whose computed output is its first input's bytes seen with another shape."""

    def alias_input(self, node):
        return True

    def emit(self, node, ctx):
        pass


# ---------------------------------------------------------------- ops
@register
class Identity(AliasOp):
    name = "identity"

    def infer(self, node):
        x = node.inputs[0]
        return [(x.shape, x.dtype)]

    def reference(self, node, x):
        return [x]


@register
class Cast(AliasOp):
    """attrs: to (numpy dtype name). Computed tensors must stay float32."""
    name = "cast"

    def infer(self, node):
        x = node.inputs[0]
        to = node.attrs["to"]
        if not x.is_const and (to != "float32" or x.dtype != "float32"):
            raise UnsupportedModelError(
                f"{node.describe()}: casts a computed tensor from {x.dtype} to {to}; the engine "
                "computes in float32 only")
        return [(x.shape, to)]

    def reference(self, node, x):
        to = node.attrs["to"]
        if x.dtype == object:
            if to.startswith("float") and any(isinstance(e, Dim) for e in x.flat):
                raise UnsupportedModelError(
                    f"{node.describe()}: uses the sequence length or batch size as a number")
            return [tidy(x) if not to.startswith("float") else x.astype(to)]
        return [x.astype(to)]


@register
class Shape(Op):
    """attrs: start, end (opset 15). Folds whenever the input's shape is known."""
    name = "shape"
    folds_on_shape = True

    def infer(self, node):
        x = node.inputs[0]
        return [((len(self._dims(node, x.shape)),), "int64")]

    def _dims(self, node, shape):
        start, end = node.attrs.get("start", 0), node.attrs.get("end", None)
        return list(shape)[slice(start, end)]

    def reference(self, node, x=None):
        dims = self._dims(node, node.inputs[0].shape)
        return [tidy(np.array(dims, dtype=object).reshape(len(dims)))]


@register
class ConstantOfShape(Op):
    """attrs: value (a one-element array). Input: the shape (constant)."""
    name = "constant_of_shape"

    def infer(self, node):
        shape = tuple(const_array(node, 0, "shape").tolist())
        return [(shape, node.attrs["value"].dtype.name)]

    def reference(self, node, shape):
        return [np.full([concrete(d) for d in shape.tolist()], node.attrs["value"].reshape(()))]


def reshape_target(node, shape, target, allowzero):
    """Resolve a Reshape target (ints, Dims, 0 and -1) against the symbolic input shape.

    When the input has T or B but the target is all plain ints, the exporter baked the
    example's sizes into the file; then the leading axes that carry T and B keep them, in
    order (or merged into one axis), and the remaining target must hold the rest."""
    out = [shape[i] if (not is_symbolic(t) and t == 0 and not allowzero) else t
           for i, t in enumerate(target)]
    total = product(shape)
    baked = any(is_symbolic(d) for d in shape) and not any(is_symbolic(d) for d in out)
    if not baked:
        return _fill_minus_one(node, out, total)
    last_sym = max(i for i, d in enumerate(shape) if is_symbolic(d))
    prefix = [d for d in shape[:last_sym + 1] if is_symbolic(d)]
    if any(not is_symbolic(d) and d != 1 for d in shape[:last_sym + 1]):
        raise UnsupportedModelError(
            f"{node.describe()}: reshapes {fmt_shape(shape)} to the fixed shape {list(target)}; "
            "the time/batch axes are not leading, so edgernn cannot tell where they go")
    rest = product(shape[last_sym + 1:])
    for head in (prefix, [product(prefix)]):
        if len(out) >= len(head):
            try:
                tail = _fill_minus_one(node, out[len(head):], rest)
            except UnsupportedModelError:
                continue
            return list(head) + tail
    raise UnsupportedModelError(
        f"{node.describe()}: reshapes {fmt_shape(shape)} to the fixed shape {list(target)}, which "
        "does not keep the time and batch axes; export with a dynamic sequence axis")


def _fill_minus_one(node, out, total):
    out = list(out)
    minus = [i for i, t in enumerate(out) if not is_symbolic(t) and t == -1]
    if len(minus) > 1:
        raise UnsupportedModelError(f"{node.describe()}: more than one -1 in the target shape")
    if minus:
        others = product([t for i, t in enumerate(out) if i != minus[0]])
        out[minus[0]] = divide(total, others)
    if parts(product(out)) != parts(total):
        raise UnsupportedModelError(
            f"{node.describe()}: cannot reshape a tensor of {total!r} elements to {out}")
    return out


@register
class Reshape(AliasOp):
    """Inputs: data, shape (constant). attrs: allowzero."""
    name = "reshape"

    def infer(self, node):
        x = node.inputs[0]
        target = const_array(node, 1, "target shape").tolist()
        return [(tuple(reshape_target(node, x.shape, target, node.attrs.get("allowzero", 0))), x.dtype)]

    def reference(self, node, x, _):
        return [x.reshape([concrete(d) for d in node.outputs[0].shape])]


@register
class Flatten(AliasOp):
    """attrs: axis. Output: 2-D (product of dims before axis, product of the rest)."""
    name = "flatten"

    def infer(self, node):
        x = node.inputs[0]
        a = norm_axis(node.attrs.get("axis", 1), len(x.shape) + 1, node)
        return [((product(x.shape[:a]), product(x.shape[a:])), x.dtype)]

    def reference(self, node, x):
        return [x.reshape([concrete(d) for d in node.outputs[0].shape])]


@register
class Squeeze(AliasOp):
    """Inputs: data, axes (constant, optional: all unit axes)."""
    name = "squeeze"

    def infer(self, node):
        x = node.inputs[0]
        axes = const_array(node, 1, "axes")
        rank = len(x.shape)
        if axes is None:
            drop = {i for i, d in enumerate(x.shape) if not is_symbolic(d) and d == 1}
        else:
            drop = {norm_axis(a, rank, node) for a in np.ravel(axes)}
            for a in drop:
                if concrete(x.shape[a]) != 1:
                    raise UnsupportedModelError(f"{node.describe()}: axis {a} has size {x.shape[a]!r}, not 1")
        return [(tuple(d for i, d in enumerate(x.shape) if i not in drop), x.dtype)]

    def reference(self, node, x, _=None):
        return [x.reshape([concrete(d) for d in node.outputs[0].shape])]


@register
class Unsqueeze(AliasOp):
    """Inputs: data, axes (constant)."""
    name = "unsqueeze"

    def infer(self, node):
        x = node.inputs[0]
        axes = np.ravel(const_array(node, 1, "axes"))
        rank = len(x.shape) + len(axes)
        pos = sorted(norm_axis(a, rank, node) for a in axes)
        dims = list(x.shape)
        for a in pos:
            dims.insert(a, 1)
        return [(tuple(dims), x.dtype)]

    def reference(self, node, x, _=None):
        return [x.reshape([concrete(d) for d in node.outputs[0].shape])]


@register
class Transpose(Op):
    """attrs: perm (default: reversed axes)."""
    name = "transpose"

    def perm(self, node):
        rank = len(node.inputs[0].shape)
        return [int(p) for p in node.attrs.get("perm") or range(rank - 1, -1, -1)]

    def infer(self, node):
        x = node.inputs[0]
        p = self.perm(node)
        if sorted(p) != list(range(len(x.shape))):
            raise UnsupportedModelError(f"{node.describe()}: perm {p} is not a permutation of {len(x.shape)} axes")
        return [(tuple(x.shape[i] for i in p), x.dtype)]

    def reference(self, node, x):
        return [np.transpose(x, self.perm(node))]

    def alias_input(self, node):
        shape = node.inputs[0].concrete_shape
        kept = [i for i in self.perm(node) if shape[i] != 1]
        return kept == sorted(kept)

    def emit(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        src = contiguous_strides(x.concrete_shape)
        p = self.perm(node)
        emit_copy(ctx, x, 0, y, 0, y.concrete_shape, [src[i] for i in p],
                  contiguous_strides(y.concrete_shape), node)


@register
class Materialize(Op):
    """materialize: y = x, a constant copied into the work arena each step, for a kernel that
    reads (and may update) a computed tensor there: a step graph's recurrent op whose initial
    state is absent or constant starts from it every call. One ``copy`` row."""
    name = "materialize"
    foldable = False

    def infer(self, node):
        x = node.inputs[0]
        if not x.is_const or x.const.dtype.kind != "f":
            raise UnsupportedModelError(f"{node.describe()}: materializes only float constants")
        return [(x.shape, "float32")]

    def reference(self, node, x):
        return [np.asarray(x, np.float32)]

    def emit(self, node, ctx):
        shape = node.outputs[0].concrete_shape
        st = contiguous_strides(shape)
        emit_copy(ctx, node.inputs[0], 0, node.outputs[0], 0, shape, st, st, node)
