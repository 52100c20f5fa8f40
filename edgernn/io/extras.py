"""The optional packages of the real-time sources, imported only when a source needs one.

The device runtime needs only numpy and numba; FLAC and other libsndfile formats (soundfile),
resampling (soxr), microphones (sounddevice) and serial ports (pyserial) come with the
``edgernn[audio]`` extra. :func:`import_extra` imports one of them and, when it is missing,
raises an :class:`~edgernn.errors.AudioSourceError` that says what needs it and what to install.
"""
import importlib

from ..errors import AudioSourceError

#: the command that installs every optional package of the sources
AUDIO_EXTRA = "pip install 'edgernn[audio]'"


def import_extra(module, package, purpose):
    """The module ``module`` (from the PyPI package ``package``), imported now; AudioSourceError
    naming ``purpose`` and :data:`AUDIO_EXTRA` when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise AudioSourceError(f"{purpose} needs the Python package {package}, which is not installed: "
                               f"{AUDIO_EXTRA}") from None
