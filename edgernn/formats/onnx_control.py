"""ONNX translators for logic and control on load-time values (IR ops in
:mod:`edgernn.ops.control`). ``If`` itself is translated by the importer, which owns the
translation of its branches."""
from .onnx_translate import translates

_NAMES = {"Equal": "equal", "Greater": "greater", "Less": "less", "GreaterOrEqual": "greater_or_equal",
          "LessOrEqual": "less_or_equal", "Not": "not", "And": "and", "Or": "or", "Xor": "xor",
          "Where": "where", "Size": "size", "Range": "range", "Expand": "expand", "Tile": "tile"}


@translates(*_NAMES)
def translate_control(op, name, a, ins, opset):
    if op == "Tile" and opset < 6:
        return None     # Tile-1 took tiles and axis inputs
    return _NAMES[op], ins, {}
