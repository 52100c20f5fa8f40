"""ONNX translators for math ops: unary functions, Pow/Min/Max/PRelu, Clip, the Reduce* ops,
Pad, Split and BatchNormalization (IR ops of :mod:`edgernn.ops.elementwise`,
:mod:`~edgernn.ops.reduce`, :mod:`~edgernn.ops.pad`, :mod:`~edgernn.ops.split`,
:mod:`~edgernn.ops.batchnorm`). Attributes that later opsets take as inputs (Clip's min/max
before 11, Pad's pads/value before 11, Split's sizes before 13, reduction axes before 13 or
18) become constant inputs, so each IR op has one form.
"""
import numpy as np

from ..errors import UnsupportedOpError
from .onnx_translate import const_value, translates

UNARY = {"Sqrt": "sqrt", "Exp": "exp", "Log": "log", "Abs": "abs", "Neg": "neg", "Reciprocal": "reciprocal",
         "Floor": "floor", "Ceil": "ceil", "Softplus": "softplus", "Softsign": "softsign"}
#: ONNX op -> (IR op, {attribute: default})
PARAMETRISED = {"LeakyRelu": ("leaky_relu", {"alpha": 0.01}), "Elu": ("elu", {"alpha": 1.0}),
                "ThresholdedRelu": ("thresholded_relu", {"alpha": 1.0}),
                "HardSigmoid": ("hard_sigmoid", {"alpha": 0.2, "beta": 0.5})}
BINARY = {"Pow": "pow", "PRelu": "prelu", "Min": "min", "Max": "max"}
#: ONNX op -> (IR op, the first opset that takes axes as an input)
REDUCTIONS = {"ReduceSum": ("reduce_sum", 13), "ReduceMean": ("reduce_mean", 18), "ReduceMax": ("reduce_max", 18),
              "ReduceMin": ("reduce_min", 18), "ReduceProd": ("reduce_prod", 18), "ReduceL1": ("reduce_l1", 18),
              "ReduceL2": ("reduce_l2", 18), "ReduceSumSquare": ("reduce_sum_square", 18)}


def _ints_input(name, key, values):
    return None if values is None else const_value(f"{name}/{key}", np.array(values, np.int64))


def _float_input(name, key, value):
    return None if value is None else const_value(f"{name}/{key}", np.array(value, np.float32))


@translates(*UNARY)
def unary(op, name, a, ins, opset):
    return UNARY[op], ins[:1], {}


@translates(*PARAMETRISED)
def parametrised(op, name, a, ins, opset):
    ir_op, defaults = PARAMETRISED[op]
    return ir_op, ins[:1], {key: a(key, "float", default) for key, default in defaults.items()}


@translates(*BINARY)
def binary(op, name, a, ins, opset):
    return BINARY[op], ins, {}


@translates("Clip")
def clip(op, name, a, ins, opset):
    if opset < 11:
        return "clip", [ins[0], _float_input(name, "min", a("min", "float", None)),
                        _float_input(name, "max", a("max", "float", None))], {}
    return "clip", ins, {}


@translates(*REDUCTIONS)
def reduction(op, name, a, ins, opset):
    ir_op, axes_input_from = REDUCTIONS[op]
    if opset < axes_input_from:
        ins = ins[:1] + [_ints_input(name, "axes", a("axes", "ints", None))]
    return ir_op, ins, {"keepdims": a("keepdims", "int", 1),
                        "noop_with_empty_axes": a("noop_with_empty_axes", "int", 0)}


@translates("Pad")
def pad(op, name, a, ins, opset):
    mode = a("mode", "string", "constant")
    if opset < 11:
        key = "pads" if "pads" in a or "paddings" not in a else "paddings"       # opset 1 says paddings
        ins = ins[:1] + [_ints_input(name, "pads", a(key, "ints")),
                         _float_input(name, "value", a("value", "float", 0.0))]
    return "pad", ins, {"mode": mode}


@translates("Split")
def split(op, name, a, ins, opset):
    if opset < 13 and "split" in a:
        ins = ins[:1] + [_ints_input(name, "split", a("split", "ints"))]
    attrs = {"axis": a("axis", "int", 0)}
    if "num_outputs" in a:
        attrs["num_outputs"] = a("num_outputs", "int")
    return "split", ins, attrs


@translates("ScatterND")
def scatter_nd(op, name, a, ins, opset):
    return "scatter_nd", ins, {"reduction": a("reduction", "string", "none")}


@translates("BatchNormalization")
def batch_norm(op, name, a, ins, opset):
    if a("training_mode", "int", 0):
        raise UnsupportedOpError(f"{a.where}: training_mode=1 normalises with the batch's own statistics; "
                                 "edgernn runs inference only: export the model in eval mode")
    if not a("spatial", "int", 1):
        raise UnsupportedOpError(f"{a.where}: spatial=0 (statistics per element, not per channel) is not "
                                 "supported; re-export with a newer opset")
    return "batch_norm", ins, {"epsilon": a("epsilon", "float", 1e-5)}
