"""edgernn: stream recurrent models (LSTM, GRU, RNN) one frame at a time on edge CPUs.

    import numpy as np
    import edgernn
    model = edgernn.load("examples/kws_lstm.onnx")
    s = model.stream()
    y = s.step(np.load("examples/kws_frames.npy")[0])
    print(edgernn.profile("examples/kws_lstm.onnx", period="10ms", device="rpi4").report())
"""
import logging

from .errors import (AudioSourceError, EdgeRNNError, FrameShapeError, ModelFormatError, ResourceLimitError,
                     SignalArgumentError, StateError, StreamArgumentError, UnsupportedModelError,
                     UnsupportedOpError)
from .model import Model, TensorInfo, load
from .profile import ProfileResult, profile
from .stream import Stream

__version__ = "0.1.0"
__all__ = ["load", "Model", "Stream", "TensorInfo", "profile", "ProfileResult", "EdgeRNNError", "ModelFormatError",
           "UnsupportedOpError", "UnsupportedModelError", "FrameShapeError", "StateError", "StreamArgumentError",
           "ResourceLimitError", "AudioSourceError", "SignalArgumentError", "__version__"]

# the package's log ("edgernn" and its children: format detected, load times, plan sizes at
# DEBUG/INFO); silent unless the application configures logging, e.g.
# logging.basicConfig(level=logging.DEBUG) or logging.getLogger("edgernn").setLevel(logging.INFO)
logging.getLogger(__name__).addHandler(logging.NullHandler())
