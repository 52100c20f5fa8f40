"""Calling compiled code by address, and arrays over raw memory: the two intrinsics that let
each kernel be compiled and cached on its own.

Numba links every jitted function a function calls into its compiled code and optimises the
whole again, at every level of the call tree: a kernel that calls the matrix kernel through
four wrappers had the matrix kernel optimised four more times, which is what made the first
compile take 36-61 s. A call through :func:`address_call` is an indirect call in Numba's
calling convention to code compiled (and cached) separately: nothing is linked in, and only
what a model uses gets compiled. An exception the callee raises (a bounds error in a
``NUMBA_BOUNDSCHECK=1`` build) propagates to the caller.
"""
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array


def _plain(t):
    """The type a caller passes for a callee argument: an int64 for an integer literal (the
    callee was compiled for the literal and ignores the value), a boolean for a bool literal."""
    if isinstance(t, types.IntegerLiteral):
        return types.int64
    if isinstance(t, types.BooleanLiteral):
        return types.boolean
    return t


def address_call(callee_args):
    """An intrinsic ``call(address, (arg, ...))`` that calls the Numba function compiled for the
    argument types ``callee_args`` at native ``address``, returning nothing. Refuses to type
    unless the arguments are exactly those types (integer literals of the callee: any int64,
    whose value it ignores), so no argument is ever reinterpreted."""
    callee_args = tuple(callee_args)
    caller_args = tuple(_plain(t) for t in callee_args)

    @intrinsic
    def call(typingctx, address, args):
        if not isinstance(address, types.Integer) or not isinstance(args, types.BaseTuple):
            return None
        if tuple(_plain(t) for t in args.types) != caller_args:
            return None

        def codegen(context, builder, signature, llargs):
            values = cgutils.unpack_tuple(builder, llargs[1], len(callee_args))
            passed = []
            for value, have, want in zip(values, args.types, callee_args):
                if isinstance(want, types.IntegerLiteral):
                    passed.append(context.get_constant(types.int64, 0))
                else:
                    passed.append(context.cast(builder, value, have, want))
            function_type = context.call_conv.get_function_type(types.none, callee_args)
            callee = builder.inttoptr(llargs[0], function_type.as_pointer())
            status, _ = context.call_conv.call_function(builder, callee, types.none, callee_args, passed)
            with cgutils.if_unlikely(builder, status.is_error):
                context.call_conv.return_status_propagate(builder, status)
            return context.get_dummy_value()

        return types.none(address, args), codegen

    return call


def compiled_address(dispatcher, signature):
    """Compile ``dispatcher`` for ``signature`` (or load it from Numba's cache) and return the
    native address of that compiled function."""
    signature = tuple(signature)
    dispatcher.compile(signature)
    compiled = dispatcher.overloads[signature]
    address = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)
    if not address:
        raise RuntimeError(f"internal: {dispatcher.py_func.__name__} has no native address")
    return address


@intrinsic
def array_at(typingctx, address, shape, dtype):
    """A C-contiguous array of ``dtype`` and ``shape`` (a tuple of integers) over the memory at
    an integer ``address``: no allocation, no reference counting (the caller keeps the memory
    alive)."""
    if not (isinstance(address, types.Integer) and isinstance(shape, types.UniTuple)
            and isinstance(shape.dtype, types.Integer) and isinstance(dtype, types.NumberClass)):
        return None
    array_type = types.Array(dtype.instance_type, shape.count, "C")

    def codegen(context, builder, signature, args):
        address, shape_value, _ = args
        array = make_array(array_type)(context, builder)
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(array_type.dtype)))
        sizes = [context.cast(builder, v, shape.dtype, types.intp)
                 for v in cgutils.unpack_tuple(builder, shape_value, shape.count)]
        strides, stride = [], itemsize
        for size in reversed(sizes):
            strides.insert(0, stride)
            stride = builder.mul(stride, size)
        populate_array(array, data=builder.inttoptr(address, array.data.type), shape=sizes, strides=strides,
                       itemsize=itemsize, meminfo=None)
        return array._getvalue()
    return array_type(address, shape, dtype), codegen
