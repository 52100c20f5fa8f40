"""ONNX translators for convolutions: Conv (every opset; the attributes have not changed
since opset 1) -> the IR op ``conv`` (:mod:`edgernn.ops.conv`, which checks every size),
ConvTranspose (likewise) -> ``conv_transpose`` (:mod:`edgernn.ops.conv_transpose`), and
MaxPool / AveragePool -> ``pool`` (:mod:`edgernn.ops.pool`)."""
from .onnx_translate import translates


@translates("Conv")
def conv(op, name, a, ins, opset):
    """Conv(X, W[, B]) with its attributes as the file gives them; absent ones stay None (the
    IR op's defaults: strides and dilations 1, pads 0, kernel_shape from W)."""
    attrs = {"auto_pad": a("auto_pad", "string", "NOTSET"), "group": a("group", "int", 1),
             "kernel_shape": a("kernel_shape", "ints", None), "strides": a("strides", "ints", None),
             "dilations": a("dilations", "ints", None), "pads": a("pads", "ints", None)}
    while ins and ins[-1] is None:        # an empty trailing B
        ins = ins[:-1]
    return "conv", ins, attrs


@translates("ConvTranspose")
def conv_transpose(op, name, a, ins, opset):
    """ConvTranspose(X, W[, B]) (every opset; the attributes have not changed since opset 1)
    -> ``conv_transpose`` (:mod:`edgernn.ops.conv_transpose`), the attributes as the file
    gives them; absent ones stay None (the IR op's defaults)."""
    attrs = {"auto_pad": a("auto_pad", "string", "NOTSET"), "group": a("group", "int", 1),
             "kernel_shape": a("kernel_shape", "ints", None), "strides": a("strides", "ints", None),
             "dilations": a("dilations", "ints", None), "pads": a("pads", "ints", None),
             "output_padding": a("output_padding", "ints", None), "output_shape": a("output_shape", "ints", None)}
    while ins and ins[-1] is None:        # an empty trailing B
        ins = ins[:-1]
    return "conv_transpose", ins, attrs


@translates("MaxPool", "AveragePool")
def pool(op, name, a, ins, opset):
    """MaxPool (dilations since opset 10, ceil_mode since 10, storage_order ignored: it only
    orders the Indices output, which the IR op refuses) and AveragePool (count_include_pad
    since 7, dilations since 19) -> ``pool`` with ``mode`` max or average."""
    attrs = {"mode": "max" if op == "MaxPool" else "average", "auto_pad": a("auto_pad", "string", "NOTSET"),
             "kernel_shape": a("kernel_shape", "ints", None), "strides": a("strides", "ints", None),
             "dilations": a("dilations", "ints", None), "pads": a("pads", "ints", None),
             "ceil_mode": a("ceil_mode", "int", 0), "count_include_pad": a("count_include_pad", "int", 0)}
    return "pool", ins, attrs
