"""Live signals in, model outputs and events out: the real-time edge of edgernn.

The pipeline, one module a stage (``edgernn stream`` in :mod:`edgernn.cli` is a thin layer
over :func:`~edgernn.io.run.stream_signal`):

- :mod:`.wav`: audio sources. WAV files through the standard library's ``wave`` module (PCM,
  8/16/24/32-bit), so a device needs nothing beyond numpy and numba to stream a recording;
- :mod:`.lines`: sensor lines (CSV on standard input: one sample of F numbers a line),
  garbled lines skipped and counted;
- :mod:`.sources`: the source ``edgernn stream`` reads, chosen from SOURCE: audio files by
  content (:mod:`.audio_file`: FLAC, OGG, ... through soundfile), raw PCM on stdin
  (:mod:`.pcm`), microphones (:mod:`.mic`, sounddevice/PortAudio, overruns counted), serial
  ports (:mod:`.serial_lines`, pyserial), resampled to the model's rate with soxr
  (:mod:`.resample`); their packages are the ``edgernn[audio]`` extra, imported only when used
  (:mod:`.extras`);
- :mod:`.framing`: windows of W samples every H samples, the first after W - H zeros of
  context (silero-vad's convention: 64 samples of context + 512 new at 16 kHz is W = 576,
  H = 512), the last partial hop completed with zeros;
- :mod:`.segments`: a speech-probability threshold with hysteresis and minimum durations
  turning a score into segments (start, end), the rules of silero-vad's own
  ``get_speech_timestamps`` (its max-speech cut included);
- :mod:`.frontend`: streaming feature front ends in Numba (STFT, log-mel, MFCC, normalisation)
  and the inverse STFT by overlap-add, with :mod:`.wav_out` writing the resynthesised audio;
- :mod:`.detections`: class scores turned into detections with labels (a smoothed argmax
  with hysteresis);
- :mod:`.run`: steps a model once per window and yields each step's outputs, with the time at
  the end of its window;
- :mod:`.settings`: the stream settings an ``.ernn`` stores (``edgernn convert --stream``), so
  ``edgernn stream model.ernn mic`` needs nothing else;
- :mod:`.command`: ``edgernn stream`` itself (docs/real-time.md).
"""
