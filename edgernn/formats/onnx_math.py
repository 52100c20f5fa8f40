"""ONNX translators: (placeholder; see onnx_translate.py)."""
from .onnx_translate import translates  # noqa: F401
