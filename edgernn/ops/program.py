"""Helpers the kernels and their rows share: slice copies, strided indexing, axis merging.

A plan is an int64 array ``prog[n_rows, WIDTH]`` whose rows each op declares in its module
(:mod:`edgernn.ops.row`). Float attributes go into a float32 array ``fparams`` and rows hold
their index. Buffers are addressed by offset: ``consts`` (float32, shared by all streams of a
model, read-only; ``qconsts`` is an int8 view of the same bytes for int8 weights) and ``work``
(float32 ``[B, W]``, one row per stream: inputs, state, activations, scratch). An operand that
may be either carries a region field (``row.REGION_CONST`` or ``row.REGION_WORK``).
"""
from ..config import jit, jit_inline

MAX_RANK = 6


@jit_inline
def copy_into(dst, src):
    """dst[j] = src[j] over two equally long 1-D slices. Kernels copy through slices (indices
    from 0): indexing a row at off + j keeps Numba's negative-index wraparound and LLVM then
    leaves the loop scalar."""
    for j in range(dst.shape[0]):
        dst[j] = src[j]


@jit_inline
def quotient(a, b):
    """a // b for a >= 0, b >= 1, without a 64-bit division when b is 1 (one group, the common
    case): a division costs tens of cycles, as much as a small op's arithmetic."""
    return a if b == 1 else a // b


@jit_inline
def strided_offset(linear, dims, strides, rank):
    """Offset of element number `linear` (row-major over `dims`) given per-axis strides.
    Precondition: ``0 <= linear < prod(dims[:rank])``, so the outermost axis's index is what
    is left of ``linear`` and needs no division (a 64-bit division costs tens of cycles: a
    copy of 129 runs of 4 floats took 2.4 µs with one per axis)."""
    off = 0
    for ax in range(rank - 1, 0, -1):
        d = dims[ax]
        off += (linear % d) * strides[ax]
        linear //= d
    if rank > 0:
        off += linear * strides[0]
    return off


def contiguous_strides(shape):
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return strides[::-1]


def merge_axes(shape, *stride_sets):
    """Drop unit axes and merge neighbours that are contiguous in every stride set.

    Returns (shape, [strides, ...]) with at most MAX_RANK axes (>= 1)."""
    axes = [(d, [s[i] for s in stride_sets]) for i, d in enumerate(shape) if d != 1]
    merged = []
    for d, st in axes:
        if merged:
            pd, pst = merged[-1]
            if all(ps == s * d for ps, s in zip(pst, st)):
                merged[-1] = (pd * d, st)
                continue
        merged.append((d, st))
    if not merged:
        merged = [(1, [0] * len(stride_sets))]
    if len(merged) > MAX_RANK:
        from ..errors import UnsupportedModelError
        raise UnsupportedModelError(f"a tensor layout needs {len(merged)} axes; at most {MAX_RANK} are supported")
    shape_out = [d for d, _ in merged]
    return shape_out, [[st[k] for _, st in merged] for k in range(len(stride_sets))]


def pad(xs, n=MAX_RANK, fill=1):
    return list(xs) + [fill] * (n - len(xs))
