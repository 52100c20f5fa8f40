"""Live signals in, model outputs and events out: the real-time edge of edgernn.

The pipeline, one module a stage (``edgernn stream`` in :mod:`edgernn.cli` is a thin layer
over :func:`~edgernn.io.run.stream_signal`):

- :mod:`.wav`: audio sources. WAV files through the standard library's ``wave`` module (PCM,
  8/16/24/32-bit), so a device needs nothing beyond numpy and numba to stream a recording;
- :mod:`.lines`: sensor lines (CSV on standard input: one sample of F numbers a line),
  garbled lines skipped and counted;
- :mod:`.framing`: windows of W samples every H samples, the first after W - H zeros of
  context (silero-vad's convention: 64 samples of context + 512 new at 16 kHz is W = 576,
  H = 512), the last partial hop completed with zeros;
- :mod:`.segments`: a speech-probability threshold with hysteresis and minimum durations
  turning a score into segments (start, end), the rules of silero-vad's own
  ``get_speech_timestamps``;
- :mod:`.run`: steps a model once per window and yields each step's outputs, with the time at
  the end of its window.

Microphones, raw PCM on stdin, serial ports, resampling, feature front ends and pacing are not built yet
(issue 16 lists them); their optional dependencies will live in the ``edgernn[audio]`` extra.
"""
