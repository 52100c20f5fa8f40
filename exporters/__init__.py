"""edgernn exporters: from a training framework to a file edgernn streams, checked on the way.

    from exporters import export_onnx
    report = export_onnx(model, "model.onnx", frame_shape=12)   # nn.Module -> streaming ONNX
    print(report)                                                # what was written + self-check

Every export runs the source model and edgernn (one ``Stream.step`` per frame) on the same
frames and raises :class:`ExportCheckError` if they disagree. Heavy frameworks (torch, later
tensorflow) are imported inside the functions that need them: importing this package needs
only NumPy. Command line: ``python -m exporters --help``.

Modules: ``torch_onnx`` (PyTorch -> ONNX), ``keras_tflite`` (Keras -> TFLite),
``ernn_export`` (either -> .ernn through those, then ``edgernn.convert``), ``check`` (the
framework-neutral self-check), ``synthetic`` (models of given shapes), ``onnx_utils``,
``npz``; scripts: ``extract_aeon_data``, ``train_examples``, ``make_onnx_fixtures``,
``make_tflite_fixtures``, ``make_benchmark_tflite``, ``make_example``.
"""
from .check import ExportCheckError
from .torch_onnx import ExportError, ExportReport, export_onnx

__all__ = ["export_onnx", "ExportReport", "ExportError", "ExportCheckError"]
