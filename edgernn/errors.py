"""Typed errors. Every error a user can cause is one of these, and says what to do."""


class EdgeRNNError(Exception):
    """Base class of every error edgernn raises on purpose."""


class ModelFormatError(EdgeRNNError):
    """The file is not a model edgernn can read (wrong format, truncated, corrupt)."""


class UnsupportedOpError(EdgeRNNError):
    """The model uses an op, or an op attribute, that edgernn cannot translate."""


class UnsupportedModelError(EdgeRNNError):
    """The model is well formed but cannot run one frame at a time (e.g. a reverse LSTM)."""


class FrameShapeError(EdgeRNNError, ValueError):
    """A frame (or batch of frames) passed to a Stream has the wrong shape or dtype."""


class StreamArgumentError(EdgeRNNError, ValueError):
    """A Stream was asked for with an invalid batch or thread count, or Stream.step was given a
    keyword it does not take."""


class StateError(EdgeRNNError, ValueError):
    """A state assigned to a Stream does not match the model's state names or shapes."""


class ResourceLimitError(EdgeRNNError, MemoryError):
    """A model or a request needs more memory than edgernn's ceiling allows (see
    :mod:`edgernn.limits`); nothing was allocated."""


class AudioSourceError(EdgeRNNError):
    """An audio or sensor source cannot be read (not a supported file, corrupt, a rate the
    model does not take); the message says what to convert or pass."""


class SignalArgumentError(EdgeRNNError, ValueError):
    """A setting of a signal stream that cannot work: a window or hop that makes no windows, an
    event threshold outside (0, 1]."""
