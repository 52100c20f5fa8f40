"""Register-resident arrays and short vector loops that the kernels share.

LLVM's loop vectoriser leaves loops of a few iterations alone (it wants several vectors' worth
of work before its vector path pays), and a loop of a constant 8 or 16 iterations is fully
unrolled before it is considered, after which the SLP vectoriser does not always rejoin it:
``acc[q] += w * x[q]`` over 8 positions came out as 8 scalar FMAs. These intrinsics write the
vector form directly, so the kernels of small ops (few outputs per position, a few positions
per row) run one vector instruction per step on x86 (AVX) and two on ARM (NEON):

- :func:`stack_floats` (``stack_ints``, ``stack_bytes``): an array on the stack, promoted to
  registers;
- :func:`add_scaled_run`: ``acc[at:at + n] += scale * src[start:start + n]`` as one ``<n x float>``
  multiply-add (``llvm.fmuladd``: fused where the machine has FMA, as the kernels' ``contract``
  fastmath allows for the scalar form; the sums and their order are those of the scalar loop).
  Unlike a loop left to the vectorisers, it is the same vector multiply-add whatever code
  surrounds it: the SLP vectoriser once split a loop of the matrix kernel into separate
  multiplies and scalar adds (two roundings) in one variant and not in another, so two
  blockings of the same sums differed in the last bit;
- :func:`multiply_add`: ``a * b + c`` for scalars, the same way (the int8 scale of a sum);
- :func:`add_dot4_run`: ``acc[at + i] += sum_q w[start + 4i + q] * x[x_at + q]`` for int8 w
  and x, i < n, with the machine's int8 dot product (``sdot`` on ARMv8.2 dot-product cores,
  NEON widening multiplies on other ARM cores, ``vpmaddwd`` or whatever LLVM picks elsewhere);
- :func:`prefer_wide_vectors`: lets LLVM use 512-bit vectors in the calling kernel (AVX-512).

Preconditions (unchecked: the callers' row extents guarantee them): ``src`` holds at least
``start + n`` elements, ``acc`` at least ``at + n``.
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _stack_array(element):
    """An intrinsic making a 1-D array of ``element`` on the stack: see :func:`stack_floats`."""
    @intrinsic
    def stack_array(typingctx, rows, lanes):
        if not (isinstance(rows, types.IntegerLiteral) and isinstance(lanes, types.IntegerLiteral)):
            return None
        count = rows.literal_value * lanes.literal_value
        arr_t = types.Array(element, 1, "C")

        def codegen(context, builder, sig, args):
            data = cgutils.alloca_once(builder, context.get_value_type(element), size=count)
            arr = context.make_array(arr_t)(context, builder)
            intp = context.get_value_type(types.intp)
            size = context.get_abi_sizeof(context.get_value_type(element))
            context.populate_array(arr, data=data, shape=[intp(count)], strides=[intp(size)], itemsize=intp(size),
                                   meminfo=None)
            return arr._getvalue()

        return arr_t(rows, lanes), codegen

    return stack_array


#: stack_floats(rows, lanes): a float32 array of ``rows * lanes`` elements on the stack (both
#: compile-time literals). An array from ``np.empty`` is a heap block LLVM cannot see through,
#: so ``acc[j] += ...`` would load and store memory on every pass; an ``alloca`` indexed by
#: constants (after unrolling) is promoted to registers. The array has no owner (no NRT
#: meminfo). stack_ints, stack_bytes, stack_doubles: the same for int32, int8 and float64.
stack_floats = _stack_array(types.float32)
stack_ints = _stack_array(types.int32)
stack_bytes = _stack_array(types.int8)
stack_doubles = _stack_array(types.float64)


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


#: the ways :func:`add_dot4_run` computes: LLVM's own vector code (x86 without VNNI: vpmaddwd),
#: NEON widening multiplies (ARMv8.0 cores: ``smull`` x 2 and ``addp`` on in-order ones such as
#: the Cortex-A53, DOT_NEON; ``smull`` + ``smlal2`` on the others such as the A72, with each run's
#: inputs 0, 1 and 2, 3 apart, DOT_NEON_PAIRS), ``sdot`` (ARMv8.2 with the dot-product extension:
#: Cortex-A76, A55), or AVX-512 VNNI's ``vpdpbusd`` (unsigned x signed bytes: w + 128 times x,
#: the caller taking 128 times x back). The integer sums are exact: every way gives the same.
DOT_GENERIC, DOT_NEON, DOT_SDOT, DOT_VNNI, DOT_NEON_PAIRS = 0, 1, 2, 3, 4


def _i32s(values):
    return ir.Constant(ir.VectorType(ir.IntType(32), len(values)), list(values))


@intrinsic
def add_dot4_run(typingctx, acc, at, w, start, x, x_at, n, method):
    """acc[at + i] += sum_{q < 4} W[i, q] * x[x_at + q] for i < ``n``: the int8 weights of four
    consecutive inputs of ``n`` outputs, 4 n bytes from w[start] (W[i, q] = w[start + 4 i + q],
    but see the methods' orders below), and four int8 inputs, summed exactly into int32
    accumulators (wrapping). ``n`` (a multiple of 4; of 16 for DOT_VNNI) and
    ``method`` (DOT_*) are literals; DOT_NEON, DOT_NEON_PAIRS and DOT_SDOT
    compile only for AArch64 (DOT_SDOT: with the dot-product extension), DOT_VNNI only for
    x86-64 with AVX-512 VNNI. The weights' order within each run of four outputs, and what is
    added to them, is the method's (:func:`edgernn.ops.matvec_dot.dot_layout`): DOT_NEON_PAIRS
    reads [4 outputs x inputs 0, 1 | 4 outputs x inputs 2, 3]; DOT_VNNI reads the weight bytes
    as unsigned (``vpdpbusd`` multiplies unsigned by signed bytes): its caller stores w + 128 and
    subtracts 128 * sum x (:func:`edgernn.ops.matvec_dot.weight_bias`). Precondition: every sum
    of two products fits int16, which holds when x is in [-127, 127] (|w| <= 128:
    2 * 128 * 127 < 32768)."""
    ints, bytes_ = types.Array(types.int32, 1, "C"), types.Array(types.int8, 1, "C")
    if not (acc == ints and w == bytes_ and x == bytes_ and isinstance(n, types.IntegerLiteral)
            and isinstance(method, types.IntegerLiteral) and n.literal_value % 4 == 0
            and all(isinstance(a, types.Integer) for a in (at, start, x_at))):
        return None
    outputs, how = n.literal_value, method.literal_value
    i8, i16, i32 = ir.IntType(8), ir.IntType(16), ir.IntType(32)

    def vec(t, count):
        return ir.VectorType(t, count)

    def codegen(context, builder, sig, args):
        acc_arr, w_arr, x_arr = (context.make_array(sig.args[i])(context, builder, args[i]) for i in (0, 2, 4))
        at_index, first, x_first = (context.cast(builder, args[i], sig.args[i], types.intp) for i in (1, 3, 5))
        word = builder.load(builder.bitcast(builder.gep(x_arr.data, [x_first]), i32.as_pointer()), align=1)
        lanes = {DOT_GENERIC: outputs, DOT_VNNI: 16}.get(how, 4)
        words = builder.insert_element(ir.Constant(vec(i32, lanes), ir.Undefined), word, i32(0))
        words = builder.shuffle_vector(words, ir.Constant(vec(i32, lanes), ir.Undefined), _i32s([0] * lanes))
        x_bytes = builder.bitcast(words, vec(i8, 4 * lanes))          # x[0..3] repeated per output
        if how == DOT_NEON_PAIRS:                                       # [x0 x1] x 4, then [x2 x3] x 4
            halfwords = builder.bitcast(word, vec(i16, 2))
            x_pairs = builder.bitcast(builder.shuffle_vector(halfwords, ir.Constant(vec(i16, 2), ir.Undefined),
                                                             _i32s([0, 0, 0, 0, 1, 1, 1, 1])), vec(i8, 16))
        for v in range(outputs // lanes):
            w_ptr = builder.bitcast(builder.gep(w_arr.data, [builder.add(first, first.type(16 * v))]),
                                    vec(i8, 4 * lanes).as_pointer())
            acc_ptr = builder.bitcast(builder.gep(acc_arr.data, [builder.add(at_index, at_index.type(4 * v))]),
                                      vec(i32, lanes).as_pointer())
            weights, sums = builder.load(w_ptr, align=1), builder.load(acc_ptr, align=4)
            if how == DOT_VNNI:
                vpdpbusd = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(vec(i32, 16), [vec(i32, 16)] * 3), "llvm.x86.avx512.vpdpbusd.512")
                sums = builder.call(vpdpbusd, [sums, builder.bitcast(weights, vec(i32, 16)), words])
            elif how == DOT_SDOT:
                sdot = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(vec(i32, 4), [vec(i32, 4), vec(i8, 16), vec(i8, 16)]),
                    "llvm.aarch64.neon.sdot.v4i32.v16i8")
                sums = builder.call(sdot, [sums, weights, x_bytes])
            elif how in (DOT_NEON, DOT_NEON_PAIRS):
                smull = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(vec(i16, 8), [vec(i8, 8), vec(i8, 8)]),
                    "llvm.aarch64.neon.smull.v8i16")
                saddlp = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(vec(i32, 4), [vec(i16, 8)]), "llvm.aarch64.neon.saddlp.v4i32.v8i16")
                halves = [[builder.shuffle_vector(v16, ir.Constant(vec(i8, 16), ir.Undefined), _i32s(range(h, h + 8)))
                           for h in (0, 8)] for v16 in (weights, x_pairs if how == DOT_NEON_PAIRS else x_bytes)]
                low, high = (builder.call(smull, [halves[0][h], halves[1][h]]) for h in (0, 1))
                if how == DOT_NEON_PAIRS:      # lane 2o + q: w[o, q] x[q] + w[o, q + 2] x[q + 2]
                    pairs = builder.add(low, high)
                else:                          # lanes of one output side by side: smull x 2, addp
                    addp = cgutils.get_or_insert_function(
                        builder.module, ir.FunctionType(vec(i16, 8), [vec(i16, 8), vec(i16, 8)]),
                        "llvm.aarch64.neon.addp.v8i16")
                    pairs = builder.call(addp, [low, high])
                sums = builder.add(sums, builder.call(saddlp, [pairs]))        # sadalp
            else:
                wide = vec(i32, 4 * lanes)
                products = builder.mul(builder.sext(weights, wide), builder.sext(x_bytes, wide))
                pairs = builder.add(*(builder.shuffle_vector(products, ir.Constant(products.type, ir.Undefined),
                                                             _i32s(range(h, 4 * lanes, 2))) for h in (0, 1)))
                quads = builder.add(*(builder.shuffle_vector(pairs, ir.Constant(pairs.type, ir.Undefined),
                                                             _i32s(range(h, 2 * lanes, 2))) for h in (0, 1)))
                sums = builder.add(sums, quads)
            builder.store(sums, acc_ptr, align=4)
        return context.get_dummy_value()

    return types.none(acc, at, w, start, x, x_at, n, method), codegen
