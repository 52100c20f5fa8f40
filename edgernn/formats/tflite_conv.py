"""TFLite translators of the convolutional front end: CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV
(NHWC around the IR's NCHW conv / conv_transpose), PAD, PADV2, MIRROR_PAD, MEAN, SUM,
REDUCE_MAX/MIN, SQUARED_DIFFERENCE and RSQRT. Registered into ``tflite_ops.TRANSLATORS``
(docs/ops.md has each op's limits)."""
import numpy as np

from ..errors import UnsupportedOpError
from .tflite import quant_params
from .tflite_ops import input_values, options

NHWC_TO_NCHW, NCHW_TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def _padding(sc, op, o):
    """TFLite's padding enum -> the IR conv's auto_pad: SAME pads the odd element at the end
    (SAME_UPPER, with the dilated kernel), VALID none."""
    P = sc.r.s.Padding
    if o.padding == P.SAME:
        return "SAME_UPPER"
    if o.padding == P.VALID:
        return "VALID"
    raise UnsupportedOpError(f"{sc.where()}: padding {o.padding} is neither SAME nor VALID")


def _filter(sc, op, k, perm, channel_axis, int8=True):
    """Filter input k as the IR's [M, Cg, kh, kw]: the file's array transposed by `perm` at
    import. int8 with zero point 0 and a scale per output channel (axis `channel_axis` of the
    file's array, or per tensor) stays int8 with the scale along axis 0 (the IR's M) when
    `int8`; any other quantised filter is dequantised. A filter computed by ops (a float16 filter DEQUANTIZEd)
    gets a transpose node, which folds at load."""
    ti = op.inputs[k]
    t = sc.g.tensors[ti]
    raw = sc.r.raw(sc.g, ti)
    name = sc.tensor_name(ti) + "/oihw"
    if raw is None:
        w = sc.fresh(name)
        sc.add("transpose", [sc.value(ti)], [w], {"perm": list(perm)})
        return w
    params = quant_params(t)
    if int8 and raw.dtype == np.int8 and params is not None and not np.any(params[1] != 0):
        scale, _, axis = params
        rows = raw.shape[channel_axis]
        if len(scale) == 1 or (axis == channel_axis and len(scale) == rows):
            q = np.ascontiguousarray(raw.transpose(perm))
            v = sc.const(name, q)
            v.dtype, v.scale_axis = "int8", -q.ndim
            v.scale = np.broadcast_to(np.asarray(scale, np.float32), (rows,)).copy()
            return v
    return sc.const(name, np.ascontiguousarray(sc.constant(ti).transpose(perm)).astype(np.float32))


def _nchw_conv(sc, op, ir_op, w, attrs, code, bias_k=2, x_k=0):
    """x NHWC -> transpose -> `ir_op` (X NCHW, W, B) -> fused activation -> transpose back.
    The NCHW result is remembered: a convolution reading it takes it directly, so the
    transposes between two convolutions are left unused (and dropped)."""
    nchw = sc.r.__dict__.setdefault("nchw", {})          # NHWC value name -> its NCHW value
    x = sc.value(op.inputs[x_k])
    y = sc.output(op.outputs[0])
    xt = nchw.get(x.name)
    if xt is None:
        xt = sc.fresh(x.name + "/nchw")
        sc.add("transpose", [x], [xt], {"perm": NHWC_TO_NCHW})
    b = sc.value(op.inputs[bias_k]) if len(op.inputs) > bias_k and op.inputs[bias_k] >= 0 else None
    yt = sc.activated(op, ir_op, [xt, w] + ([b] if b is not None else []), attrs, code=code,
                      out=sc.fresh(y.name + "/nchw"))
    sc.add("transpose", [yt], [y], {"perm": NCHW_TO_NHWC})
    nchw[y.name] = yt


def conv_2d(sc, op, geometry=None):
    """CONV_2D: x [N, H, W, C], filter [O, kh, kw, C/groups], bias [O] -> conv. `geometry`
    ({"dilations", "pads"}) replaces the op's own dilation and padding (a dilated convolution
    folded from SPACE_TO_BATCH_ND: :mod:`.tflite_dilation`)."""
    o = options(op)
    w = _filter(sc, op, 1, [0, 3, 1, 2], 0)
    cin = sc.g.tensors[op.inputs[0]].shape
    group = 1
    if w.shape and cin is not None and len(cin) == 4 and int(cin[3]) > 0 and int(cin[3]) != int(w.shape[1]):
        group = int(cin[3]) // int(w.shape[1])           # a grouped CONV_2D (filter depth C / groups)
    attrs = {"auto_pad": _padding(sc, op, o), "strides": [max(o.strideH, 1), max(o.strideW, 1)],
             "dilations": [max(o.dilationHFactor, 1), max(o.dilationWFactor, 1)], "group": group}
    _nchw_conv(sc, op, "conv", w, _with_geometry(attrs, geometry), o.fusedActivationFunction)


def _with_geometry(attrs, geometry):
    if geometry is None:
        return attrs
    attrs = {k: v for k, v in attrs.items() if k != "auto_pad"}
    return {**attrs, "dilations": list(geometry["dilations"]), "pads": list(geometry["pads"])}


def depthwise_conv_2d(sc, op, geometry=None):
    """DEPTHWISE_CONV_2D: filter [1, kh, kw, C * multiplier] -> conv with group = C, W [C *
    multiplier, 1, kh, kw] (output channel c * multiplier + j reads input channel c, as ONNX's
    groups of `multiplier` outputs). `geometry` as for :func:`conv_2d`."""
    o = options(op)
    w = _filter(sc, op, 1, [3, 0, 1, 2], 3)
    m = int(w.shape[0])
    cin = sc.g.tensors[op.inputs[0]].shape
    C = int(cin[3]) if cin is not None and len(cin) == 4 and int(cin[3]) > 0 else None
    mult = o.depthMultiplier if o.depthMultiplier else (m // C if C else 1)
    if C is None:
        C = m // max(mult, 1)
    if C * mult != m:
        raise UnsupportedOpError(f"{sc.where()}: {C} input channels x depth_multiplier {mult} != the filter's "
                                 f"{m} output channels")
    attrs = {"auto_pad": _padding(sc, op, o), "strides": [max(o.strideH, 1), max(o.strideW, 1)],
             "dilations": [max(o.dilationHFactor, 1), max(o.dilationWFactor, 1)], "group": C}
    _nchw_conv(sc, op, "conv", w, _with_geometry(attrs, geometry), o.fusedActivationFunction)


def _transpose_conv(sc, op):
    """TRANSPOSE_CONV (output_shape, filter [O, kh, kw, C], x [N, H, W, C], bias [O]) ->
    conv_transpose with W [C, O, kh, kw]. The output size comes from the output tensor's
    static shape in the file (output_shape is often computed from the batch size: SHAPE,
    STRIDED_SLICE, PACK); padding -> explicit pads: SAME splits the total as TensorFlow
    (the odd one at the end), VALID pads nothing and grows the end by output_padding."""
    o = options(op)
    w = _filter(sc, op, 1, [3, 0, 1, 2], 0, int8=False)   # per-channel scales run along W's axis 1
    xs = sc.g.tensors[op.inputs[2]].shape
    ys = sc.g.tensors[op.outputs[0]].shape
    if xs is None or ys is None or len(xs) != 4 or len(ys) != 4 or min(int(d) for d in list(xs[1:]) + list(ys[1:])) < 1:
        out_shape = sc.constant(op.inputs[0])
        if out_shape is None or xs is None or len(xs) != 4:
            raise UnsupportedOpError(f"{sc.where()}: needs the input and output sizes in the file")
        ys = [int(d) for d in np.ravel(out_shape)]
    strides = [max(o.strideH, 1), max(o.strideW, 1)]
    kernel = [int(d) for d in w.shape[2:]]
    begins, ends, extra = [], [], []
    P = sc.r.s.Padding
    for i, out, s, k in zip([int(d) for d in xs[1:3]], [int(d) for d in ys[1:3]], strides, kernel):
        total = s * (i - 1) + k - out                  # the full output's elements not kept
        if o.padding == P.VALID or total < 0:
            if o.padding == P.SAME or not 0 <= -total < s:
                raise UnsupportedOpError(f"{sc.where()}: output size {out} does not fit input {i}, kernel {k}, "
                                         f"stride {s} with padding {'SAME' if o.padding == P.SAME else 'VALID'}")
            begins.append(0), ends.append(0), extra.append(max(-total, 0))
        elif o.padding == P.SAME:
            begins.append(total // 2), ends.append(total - total // 2), extra.append(0)
        else:
            raise UnsupportedOpError(f"{sc.where()}: padding {o.padding} is neither SAME nor VALID")
    attrs = {"strides": strides, "pads": begins + ends, "output_padding": extra, "group": 1}
    _nchw_conv(sc, op, "conv_transpose", w, attrs, getattr(o, "fusedActivationFunction", 0), bias_k=3, x_k=2)


# ---------------------------------------------------------------- padding
def _pad(sc, op):
    """PAD / PADV2: paddings [rank, 2] constant -> pad (mode constant) with pads = begins, ends."""
    p = np.asarray(sc.const_input(op, 1, "paddings"), np.int64).reshape(-1, 2)
    ins = [sc.value(op.inputs[0]), sc.const("pads", np.concatenate([p[:, 0], p[:, 1]]))]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        ins.append(sc.const("constant_value", np.asarray(sc.const_input(op, 2, "constant value"), np.float32)))
    sc.add("pad", ins, [sc.output(op.outputs[0])], {"mode": "constant"})


def _mirror_pad(sc, op):
    """MIRROR_PAD REFLECT -> pad mode reflect. SYMMETRIC (the border repeated) has no IR pad
    mode: each padded axis becomes a gather of constant indices [p-1 .. 0, 0 .. n-1, n-1 ..
    n-q] (needs the axis size in the file)."""
    p = np.asarray(sc.const_input(op, 1, "paddings"), np.int64).reshape(-1, 2)
    x = sc.value(op.inputs[0])
    y = sc.output(op.outputs[0])
    M = sc.r.s.MirrorPadMode
    mode = options(op).mode
    if mode == M.REFLECT:
        sc.add("pad", [x, sc.const("pads", np.concatenate([p[:, 0], p[:, 1]]))], [y], {"mode": "reflect"})
        return
    if mode != M.SYMMETRIC:
        raise UnsupportedOpError(f"{sc.where()}: mirror pad mode {mode} is neither REFLECT nor SYMMETRIC")
    shape = sc.g.tensors[op.inputs[0]].shape
    axes = [a for a in range(len(p)) if p[a].any()]
    for a in axes:
        n = int(shape[a]) if shape is not None and len(shape) == len(p) else -1
        if n < 1 or min(p[a]) < 0 or max(p[a]) > n:
            raise UnsupportedOpError(f"{sc.where()}: SYMMETRIC mirror padding of axis {a} by {p[a].tolist()} needs "
                                     f"its size in the file and pads <= the size (size {n})")
    if not axes:
        sc.add("identity", [x], [y])
        return
    for k, a in enumerate(axes):
        n = int(shape[a])
        idx = np.concatenate([np.arange(p[a, 0])[::-1], np.arange(n), np.arange(n - p[a, 1], n)[::-1]])
        out = y if k == len(axes) - 1 else sc.fresh(y.name + f"/axis{a}")
        sc.add("gather", [x, sc.const("mirror_indices", idx.astype(np.int64))], [out], {"axis": a})
        x = out


# ---------------------------------------------------------------- reductions and math
def _reduce(ir_op):
    def tr(sc, op):
        sc.add(ir_op, input_values(sc, op)[:2], [sc.output(op.outputs[0])],
               {"keepdims": int(bool(options(op).keepDims)), "noop_with_empty_axes": 0})
    return tr


def _squared_difference(sc, op):
    """(a - b)^2 as sub then mul."""
    a, b = input_values(sc, op)[:2]
    y = sc.output(op.outputs[0])
    d = sc.fresh(y.name + "/difference")
    sc.add("sub", [a, b], [d])
    sc.add("mul", [d, d], [y])


def _rsqrt(sc, op):
    """1 / sqrt(x) as sqrt then reciprocal."""
    y = sc.output(op.outputs[0])
    r = sc.fresh(y.name + "/sqrt")
    sc.add("sqrt", [sc.value(op.inputs[0])], [r])
    sc.add("reciprocal", [r], [y])


FRONT_END_TRANSLATORS = {
    "CONV_2D": conv_2d, "DEPTHWISE_CONV_2D": depthwise_conv_2d, "TRANSPOSE_CONV": _transpose_conv,
    "PAD": _pad, "PADV2": _pad, "MIRROR_PAD": _mirror_pad,
    "MEAN": _reduce("reduce_mean"), "SUM": _reduce("reduce_sum"), "REDUCE_MAX": _reduce("reduce_max"),
    "REDUCE_MIN": _reduce("reduce_min"),
    "SQUARED_DIFFERENCE": _squared_difference, "RSQRT": _rsqrt,
}
