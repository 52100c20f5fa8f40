"""edgernn: stream recurrent models (LSTM, GRU, RNN) one frame at a time on edge CPUs.

    import edgernn
    model = edgernn.load("kws.onnx")
    s = model.stream()
    y = s.step(frame)
    print(edgernn.profile("kws.onnx", period="10ms", device="rpi4").report())
"""
from .errors import (EdgeRNNError, FrameShapeError, ModelFormatError, StateError,
                     UnsupportedModelError, UnsupportedOpError)
from .model import Model, load
from .profile import ProfileResult, profile
from .stream import Stream

__version__ = "0.1.0"
__all__ = ["load", "Model", "Stream", "profile", "ProfileResult", "EdgeRNNError", "ModelFormatError", "UnsupportedOpError",
           "UnsupportedModelError", "FrameShapeError", "StateError", "__version__"]
