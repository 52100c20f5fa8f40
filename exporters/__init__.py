"""edgernn exporters: from a training framework to a file edgernn streams, checked on the way.

    from exporters import export_onnx
    report = export_onnx(model, "model.onnx", frame_shape=12)   # nn.Module -> streaming ONNX
    print(report)                                                # what was written + self-check

Every export runs the source model and edgernn (one ``Stream.step`` per frame) on the same
frames and raises :class:`ExportCheckError` if they disagree. Heavy frameworks (torch, later
tensorflow) are imported inside the functions that need them: importing this package needs
only NumPy. Command line: ``python -m exporters --help``.

Modules: ``torch_onnx`` (PyTorch -> ONNX), ``check`` (the framework-neutral self-check),
``onnx_utils``, ``npz``; scripts: ``extract_aeon_data``, ``train_examples``,
``make_onnx_fixtures``, ``make_example``.
"""
from .check import ExportCheckError
from .torch_onnx import ExportError, ExportReport, export_onnx

__all__ = ["export_onnx", "ExportReport", "ExportError", "ExportCheckError"]
