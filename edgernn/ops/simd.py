"""Register-resident arrays and short vector loops that the kernels share.

LLVM's loop vectoriser leaves loops of a few iterations alone (it wants several vectors' worth
of work before its vector path pays), and a loop of a constant 8 or 16 iterations is fully
unrolled before it is considered, after which the SLP vectoriser does not always rejoin it:
``acc[q] += w * x[q]`` over 8 positions came out as 8 scalar FMAs. These intrinsics write the
vector form directly, so the kernels of small ops (few outputs per position, a few positions
per row) run one vector instruction per step on x86 (AVX) and two on ARM (NEON):

- :func:`stack_floats`: a float32 array on the stack, promoted to registers;
- :func:`add_scaled_run`: ``acc[at:at + n] += scale * src[start:start + n]`` as one ``<n x float>``
  multiply-add (``llvm.fmuladd``: fused where the machine has FMA, as the kernels' ``contract``
  fastmath allows for the scalar form; the sums and their order are those of the scalar loop).
  Unlike a loop left to the vectorisers, it is the same vector multiply-add whatever code
  surrounds it: the SLP vectoriser once split a loop of the matrix kernel into separate
  multiplies and scalar adds (two roundings) in one variant and not in another, so two
  blockings of the same sums differed in the last bit;
- :func:`multiply_add`: ``a * b + c`` for scalars, the same way (the int8 scale of a sum);
- :func:`prefer_wide_vectors`: lets LLVM use 512-bit vectors in the calling kernel (AVX-512).

Preconditions (unchecked: the callers' row extents guarantee them): ``src`` holds at least
``start + n`` elements, ``acc`` at least ``at + n``.
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def stack_floats(typingctx, rows, lanes):
    """A float32 array of ``rows * lanes`` elements on the stack (both compile-time literals).

    An array from ``np.empty`` is a heap block LLVM cannot see through, so ``acc[j] += ...``
    would load and store memory on every pass; an ``alloca`` indexed by constants (after
    unrolling) is promoted to registers. The array has no owner (no NRT meminfo)."""
    if not (isinstance(rows, types.IntegerLiteral) and isinstance(lanes, types.IntegerLiteral)):
        return None
    count = rows.literal_value * lanes.literal_value
    arr_t = types.Array(types.float32, 1, "C")

    def codegen(context, builder, sig, args):
        data = cgutils.alloca_once(builder, context.get_value_type(types.float32), size=count)
        arr = context.make_array(arr_t)(context, builder)
        intp = context.get_value_type(types.intp)
        context.populate_array(arr, data=data, shape=[intp(count)], strides=[intp(4)], itemsize=intp(4),
                               meminfo=None)
        return arr._getvalue()

    return arr_t(rows, lanes), codegen


@intrinsic
def add_scaled_run(typingctx, acc, at, src, start, scale, n):
    """acc[at:at + n] += scale * src[start:start + n], as one vector multiply-add of ``n`` (a
    literal) float32 lanes; ``acc`` a contiguous float32 array, ``src`` a contiguous float32
    or int8 array (int8 converted to float32 exactly, as ``np.float32(src[i])``)."""
    vector_of = types.Array(types.float32, 1, "C")
    if not (acc == vector_of and src in (vector_of, types.Array(types.int8, 1, "C"))
            and isinstance(at, types.Integer) and isinstance(start, types.Integer)
            and scale == types.float32 and isinstance(n, types.IntegerLiteral)):
        return None
    lanes = n.literal_value
    int8 = src.dtype == types.int8

    def codegen(context, builder, sig, args):
        acc_arr = context.make_array(sig.args[0])(context, builder, args[0])
        src_arr = context.make_array(sig.args[2])(context, builder, args[2])
        vec_t = ir.VectorType(ir.FloatType(), lanes)
        src_t = ir.VectorType(ir.IntType(8), lanes) if int8 else vec_t
        at_index = context.cast(builder, args[1], sig.args[1], types.intp)
        first = context.cast(builder, args[3], sig.args[3], types.intp)
        src_ptr = builder.bitcast(builder.gep(src_arr.data, [first]), src_t.as_pointer())
        acc_ptr = builder.bitcast(builder.gep(acc_arr.data, [at_index]), vec_t.as_pointer())
        x = builder.load(src_ptr, align=1 if int8 else 4)
        if int8:
            x = builder.sitofp(x, vec_t)
        a = builder.load(acc_ptr, align=4)
        w = builder.insert_element(ir.Constant(vec_t, ir.Undefined), args[4], ir.IntType(32)(0))
        w = builder.shuffle_vector(w, ir.Constant(vec_t, ir.Undefined),          # scale in every lane
                                   ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))
        fmuladd = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec_t, [vec_t] * 3),
                                                 f"llvm.fmuladd.v{lanes}f32")
        builder.store(builder.call(fmuladd, [w, x, a]), acc_ptr, align=4)
        return context.get_dummy_value()

    return types.none(acc, at, src, start, scale, n), codegen


#: LLVM's string attribute asking for 512-bit vectors (``-mprefer-vector-width=512`` in clang)
PREFER_WIDE = '"prefer-vector-width"="512"'


@intrinsic
def prefer_wide_vectors(typingctx):
    """Call first in a kernel: LLVM may vectorise it with the machine's widest registers.

    On AVX-512 cores LLVM's default is 256-bit vectors (``prefer-vector-width`` 256, to spare
    the clock drops of early AVX-512 parts): 16 of the 32 registers, half of each. The matrix
    kernel's accumulators of 4 rows x 64 outputs then take all 32 ymm registers and spill to
    the stack in the inner loop; as 16 zmm registers they stay, with room for the weights and
    broadcasts. Elsewhere (AVX2, NEON) the attribute changes nothing: a vector wider than the
    registers is split as before."""
    def codegen(context, builder, sig, args):
        # llvmlite's FunctionAttributes accepts only the enum attributes it knows; a string
        # attribute is written into the function's definition as it is (set.add skips the check)
        set.add(builder.function.attributes, PREFER_WIDE)
        return context.get_dummy_value()

    return types.none(), codegen


@intrinsic
def multiply_add(typingctx, a, b, c):
    """a * b + c for float32 scalars as ``llvm.fmuladd`` (one rounding where the machine has
    FMA): the same instruction in every kernel variant that calls it. Written as ``a * b + c``,
    LLVM's ``contract`` may fuse it in one variant of a kernel and not in another, and two
    blockings of the same sums then differ in the last bit."""
    if not (a == types.float32 and b == types.float32 and c == types.float32):
        return None

    def codegen(context, builder, sig, args):
        f32 = ir.FloatType()
        fmuladd = cgutils.get_or_insert_function(builder.module, ir.FunctionType(f32, [f32] * 3), "llvm.fmuladd.f32")
        return builder.call(fmuladd, list(args))

    return types.float32(a, b, c), codegen
