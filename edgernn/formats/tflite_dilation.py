"""Dilated convolutions in TFLite files: SPACE_TO_BATCH_ND ... BATCH_TO_SPACE_ND -> one conv.

When the shape is open (a time axis of any length), TensorFlow's converter writes a dilated
convolution (Keras ``Conv1D/Conv2D(dilation_rate=b)``) as

    SPACE_TO_BATCH_ND(x, block, paddings) -> [EXPAND_DIMS] -> CONV_2D or DEPTHWISE_CONV_2D
    (stride 1, dilation 1) -> [RESHAPE | SQUEEZE] -> BATCH_TO_SPACE_ND(block, crops)

with ``paddings`` and ``crops`` computed from the input's length at run time (SHAPE,
STRIDED_SLICE, FLOOR_MOD, ...: the padding that makes the length a multiple of b, and
TensorFlow's SAME padding). Phase i of the batch holds positions i, i + b, i + 2b, ... of the
padded input, so the convolution of every phase, interleaved back, is the convolution with
dilation b of the padded input, and the crops cut its ends:

    y = crop(conv_dilated_b(pad(x, paddings)), crops)
      = conv_dilated_b(x) with pads  paddings - crops + b * (the inner conv's own pads)

per blocked axis (the zeros of ``paddings`` reach only the positions ``crops`` removes, or
become the convolution's own padding). :func:`fold_space_to_batch` finds each such chain, works
out ``paddings - crops`` by evaluating the small integer computation behind them for several
lengths (it must not depend on the length), and translates the chain as one IR conv; the ops
that only computed the paddings and crops are left out. Any other use of SPACE_TO_BATCH_ND or
BATCH_TO_SPACE_ND is refused, naming the op.
"""
import numpy as np

from ..errors import UnsupportedOpError
from ..ops.conv import auto_pads
from .tflite_conv import conv_2d, depthwise_conv_2d
from .tflite_ops import options

CONVS = {"CONV_2D": conv_2d, "DEPTHWISE_CONV_2D": depthwise_conv_2d}
TRIAL_LENGTHS = range(1, 13)      # open sizes the paddings are evaluated at (block sizes up to 6 are met twice)


class Folded:
    """What translate_ops does differently: ``translators`` {op index: function(sc, op)} replace
    the usual ones, ``skipped`` op indices are not translated at all."""

    def __init__(self):
        self.translators, self.skipped = {}, set()


def fold_space_to_batch(sc, ops):
    """The :class:`Folded` plan for the SPACE_TO_BATCH_ND chains among `ops` ((index, OperatorT)
    of scope `sc`); raises UnsupportedOpError naming the op for a chain it cannot fold."""
    folded = Folded()
    by_index = dict(ops)
    names = {k: sc.r.op_name(op) for k, op in ops}
    if "SPACE_TO_BATCH_ND" not in names.values() and "BATCH_TO_SPACE_ND" not in names.values():
        return folded
    producer, consumers = {}, {}
    for k, op in ops:
        for ti in op.outputs:
            producer[int(ti)] = k
        for ti in op.inputs:
            consumers.setdefault(int(ti), []).append(k)
    kept_tensors = {int(ti) for ti in sc.g.outputs}
    padding_inputs = set()
    for k, name in names.items():
        if name == "SPACE_TO_BATCH_ND":
            padding_inputs |= _fold_chain(sc, by_index, names, producer, consumers, kept_tensors, k, folded)
    for k, name in names.items():
        if name == "BATCH_TO_SPACE_ND" and k not in folded.translators:
            raise UnsupportedOpError(f"{sc.label} op {k} BATCH_TO_SPACE_ND is supported only as the end of a "
                                     "dilated convolution (SPACE_TO_BATCH_ND -> CONV_2D -> BATCH_TO_SPACE_ND)")
    _skip_dead(by_index, producer, consumers, kept_tensors, padding_inputs, folded)
    return folded


def _refuse(sc, k, why):
    return UnsupportedOpError(f"{sc.label} op {k} SPACE_TO_BATCH_ND: {why}; edgernn folds it only as the "
                              "dilation of one convolution (SPACE_TO_BATCH_ND -> [EXPAND_DIMS] -> CONV_2D or "
                              "DEPTHWISE_CONV_2D -> [RESHAPE/SQUEEZE] -> BATCH_TO_SPACE_ND)")


def _only_reader(sc, k, t, consumers, kept_tensors, seen):
    users = consumers.get(t, [])
    if t in seen:
        raise _refuse(sc, k, f"its chain comes back to tensor '{sc.tensor_name(t)}' (the file is corrupt)")
    seen.add(t)
    if len(users) != 1 or t in kept_tensors:
        raise _refuse(sc, k, f"tensor '{sc.tensor_name(t)}' of the chain is read by {len(users)} ops "
                             f"{'and is a graph output' if t in kept_tensors else ''}".rstrip())
    return users[0]


def _fold_chain(sc, by_index, names, producer, consumers, kept_tensors, k, folded):
    """Match the chain starting at SPACE_TO_BATCH_ND op k, record its translators, and return
    the tensors holding its paddings and crops."""
    s2b = by_index[k]
    block = _constant_ints(sc, s2b.inputs[1])
    if block is None or not block or min(block) < 1:
        raise _refuse(sc, k, "its block shape is not a constant list of positive sizes")
    axes = list(range(1, len(block) + 1))         # blocked axes of the current tensor
    rank = len(sc.g.tensors[s2b.inputs[0]].shape)
    t, seen = int(s2b.outputs[0]), set()
    while True:
        u = _only_reader(sc, k, t, consumers, kept_tensors, seen)
        if names[u] in CONVS and int(by_index[u].inputs[0]) == t:
            break
        if names[u] != "EXPAND_DIMS":
            raise _refuse(sc, k, f"op {u} {names[u]} reads the batch of phases")
        at = int(np.ravel(sc.const_input(by_index[u], 1, "axis"))[0]) % (rank + 1)
        axes, rank = [a + (a >= at) for a in axes], rank + 1
        t = int(by_index[u].outputs[0])
    conv_k, conv = u, by_index[u]
    o = options(conv)
    if rank != 4 or not set(axes) <= {1, 2} or max(o.strideH, 1, o.strideW) != 1 \
            or max(o.dilationHFactor, 1, o.dilationWFactor) != 1:
        raise _refuse(sc, k, f"op {conv_k} {names[conv_k]} must be a stride-1, undilated 2-D convolution over the "
                             "blocked axes")
    after, t = [], int(conv.outputs[0])
    while True:
        u = _only_reader(sc, k, t, consumers, kept_tensors, seen)
        if names[u] == "BATCH_TO_SPACE_ND" and int(by_index[u].inputs[0]) == t:
            break
        if names[u] not in ("RESHAPE", "SQUEEZE"):
            raise _refuse(sc, k, f"op {u} {names[u]} reads the convolved phases")
        after.append(u)
        t = int(by_index[u].outputs[0])
    b2s_k, b2s = u, by_index[u]
    if _constant_ints(sc, b2s.inputs[1]) != block:
        raise _refuse(sc, k, f"op {b2s_k} BATCH_TO_SPACE_ND's block shape differs from {block}")
    net = _net_padding(sc, k, producer, by_index, names, s2b.inputs[2], b2s.inputs[2], len(block))
    folded.translators[k] = _alias(s2b)
    folded.translators[conv_k] = _dilated(CONVS[names[conv_k]], block, axes, net)
    for r in after:
        if names[r] == "RESHAPE":
            folded.translators[r] = _unbatched_reshape(int(np.prod(block)))
    folded.translators[b2s_k] = _alias(b2s)
    return {int(s2b.inputs[1]), int(s2b.inputs[2]), int(b2s.inputs[1]), int(b2s.inputs[2])}


def _alias(op):
    """SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND of a folded chain: the output is the input."""
    def tr(sc, _op):
        sc.values[int(op.outputs[0])] = sc.value(int(op.inputs[0]))
    return tr


def _dilated(translate, block, axes, net):
    """The conv of the chain, with dilation `block` along `axes` (1 = H, 2 = W) and explicit pads
    net + b * the inner conv's own (SAME: (k - 1) // 2 before, the rest after)."""
    def tr(sc, op):
        kernel = [int(d) for d in sc.g.tensors[op.inputs[1]].shape[1:3]]
        mode = "SAME_UPPER" if options(op).padding == sc.r.s.Padding.SAME else "VALID"
        begins, ends = auto_pads(None, mode, [1, 1], kernel, [1, 1], [1, 1], None)   # stride 1: any size
        dilations = [1, 1]
        for (b, (net_begin, net_end)), a in zip(zip(block, net), axes):
            i = a - 1
            dilations[i] = b
            begins[i], ends[i] = net_begin + b * begins[i], net_end + b * ends[i]
        translate(sc, op, geometry={"dilations": dilations, "pads": begins + ends})
    return tr


def _unbatched_reshape(phases):
    """A RESHAPE between the conv and BATCH_TO_SPACE_ND whose target names the batch of phases
    (N * phases): the folded conv's batch is N."""
    def tr(sc, op):
        shape = _constant_ints(sc, op.inputs[1]) if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
        if shape is None:
            shape = [int(d) for d in (options(op).newShape or [])]
        if shape and shape[0] > 0:
            if shape[0] % phases:
                raise UnsupportedOpError(f"{sc.where()}: reshapes the {phases} phases of a dilated convolution "
                                         f"to a batch of {shape[0]}")
            shape[0] //= phases
        sc.add("reshape", [sc.value(op.inputs[0]), sc.const("new_shape", np.asarray(shape, np.int64))],
               [sc.output(op.outputs[0])])
    return tr


def _skip_dead(by_index, producer, consumers, kept_tensors, roots, folded):
    """Ops whose every output is read only by skipped ops or as a folded chain's block shape,
    paddings or crops (and is no graph output) are skipped, from the roots backwards."""
    pending = [producer[t] for t in roots if t in producer]
    while pending:
        k = pending.pop()
        if k in folded.skipped or k in folded.translators:
            continue
        op = by_index[k]
        outs = [int(t) for t in op.outputs]
        if any(t in kept_tensors for t in outs):
            continue
        if all(all(u in folded.skipped or (t in roots and u in folded.translators) for u in consumers.get(t, []))
               for t in outs):
            folded.skipped.add(k)
            pending += [producer[int(t)] for t in op.inputs if int(t) in producer]


# ---------------------------------------------------------------- the paddings' integer arithmetic
def _constant_ints(sc, ti):
    arr = sc.constant(int(ti)) if int(ti) >= 0 else None
    return None if arr is None else [int(v) for v in np.ravel(arr)]


def _net_padding(sc, k, producer, by_index, names, paddings, crops, m):
    """paddings - crops as [[begin, end]] * m, the same for every trial length of the open axes."""
    seen = None
    for n in TRIAL_LENGTHS:
        memo = {}
        p = _evaluate(sc, k, int(paddings), n, producer, by_index, names, memo)
        c = _evaluate(sc, k, int(crops), n, producer, by_index, names, memo)
        if p.size != 2 * m or c.size != 2 * m:
            raise _refuse(sc, k, f"its paddings and crops must have {m} x 2 entries")
        net = (p.reshape(m, 2) - c.reshape(m, 2)).tolist()
        if seen is not None and net != seen:
            raise _refuse(sc, k, "its paddings minus crops change with the input's length")
        if min(min(row) for row in net) < 0:
            raise _refuse(sc, k, f"it crops more than it pads ({net})")
        seen = net
    return seen


BINARY = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply, "FLOOR_MOD": np.mod,
          "FLOOR_DIV": np.floor_divide, "MAXIMUM": np.maximum, "MINIMUM": np.minimum}
EVALUATED = set(BINARY) | {"SHAPE", "CAST", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "PACK", "CONCATENATION",
                           "GATHER", "STRIDED_SLICE", "SLICE"}


def _evaluate(sc, k, ti, length, producer, by_index, names, memo):
    """Tensor `ti` as an int64 array, the file's open sizes (-1) taken as `length`: constants,
    SHAPE and the small integer ops TensorFlow computes paddings with (:data:`EVALUATED`)."""
    if ti in memo:
        return memo[ti]
    arr = sc.constant(ti)
    if arr is None:
        name = names.get(producer.get(ti))
        if name not in EVALUATED:
            raise _refuse(sc, k, f"its paddings or crops are computed by {name or 'a graph input'}, which "
                                 "edgernn does not evaluate")
        op = by_index[producer[ti]]
        if name == "SHAPE":
            t = sc.g.tensors[int(op.inputs[0])]
            sig = t.shapeSignature if t.shapeSignature is not None and len(t.shapeSignature) else t.shape
            arr = [length if int(d) < 0 else int(d) for d in sig]
        else:
            args = [_evaluate(sc, k, int(i), length, producer, by_index, names, memo) for i in op.inputs if int(i) >= 0]
            arr = _apply(sc, k, name, options(op), args)
    memo[ti] = np.asarray(arr, np.int64)
    return memo[ti]


def _apply(sc, k, name, o, args):
    """One integer op of the paddings' computation on NumPy arrays."""
    x = args[0]
    if name in BINARY:
        return BINARY[name](x, args[1])
    if name == "CAST":
        return x
    if name == "RESHAPE":
        return x.reshape([int(d) for d in (np.ravel(args[1]) if len(args) > 1 else o.newShape)])
    if name == "SQUEEZE":
        dims = [int(d) % max(x.ndim, 1) for d in (o.squeezeDims if o.squeezeDims is not None else [])]
        return x.reshape([d for a, d in enumerate(x.shape) if not (d == 1 and (not dims or a in dims))])
    if name == "EXPAND_DIMS":
        return np.expand_dims(x, int(np.ravel(args[1])[0]))
    if name == "PACK":
        return np.stack(args, axis=o.axis)
    if name == "CONCATENATION":
        return np.concatenate([np.atleast_1d(a) for a in args], axis=o.axis)
    if name == "GATHER":
        return np.take(x, args[1], axis=o.axis)
    if name == "SLICE":
        return x[tuple(slice(b, None if n < 0 else b + n) for b, n in zip(np.ravel(args[1]), np.ravel(args[2])))]
    if o.ellipsisMask or o.newAxisMask:
        raise _refuse(sc, k, "its paddings use a STRIDED_SLICE with an ellipsis or new-axis mask")
    return _strided_slice(args, o)


def _strided_slice(args, o):
    """STRIDED_SLICE with begin/end/shrink masks and offset (as TensorFlow computes shapes)."""
    x, begin, end = args[0], np.ravel(args[1]), np.ravel(args[2])
    strides = np.ravel(args[3]) if len(args) > 3 else np.ones(len(begin), np.int64)
    index = []
    for a, (b, e, s) in enumerate(zip(begin.tolist(), end.tolist(), strides.tolist())):
        if o.shrinkAxisMask >> a & 1:
            index.append(b)
            continue
        index.append(slice(None if o.beginMask >> a & 1 else b, None if o.endMask >> a & 1 else
                           (b + e if o.offset else e), s))
    return x[tuple(index)]
