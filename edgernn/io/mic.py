"""Microphones through sounddevice (PortAudio): ``edgernn stream MODEL mic:DEVICE``.

:func:`input_devices` lists PortAudio's input devices (``edgernn stream --list-devices``);
:func:`find_input_device` picks one by index or by a part of its name (an ALSA name such as
``hw:1,0`` is part of PortAudio's name for the device); :func:`capture_settings` finds a rate
and channel count the device takes (the model's rate when it can, else the device's own, which
the caller then resamples).

:class:`Microphone` captures in blocks: PortAudio calls back with each block on its own thread,
the callback puts it (channels averaged: float32 [n], at ``rate`` Hz, [-1, 1)) into a bounded
queue and the model's loop takes blocks from it. When the model falls behind by more than the
queue holds (``queue_seconds`` of audio), the callback drops the new block instead of waiting
(waiting would stall PortAudio and lose samples anyway): an **overrun**, counted, announced on
stderr the first time and reported at the end with the samples lost, as are PortAudio's own
input-overflow flags (samples lost before the callback ran). The steps' ``t`` counts the
samples the model got, so after an overrun it lags the wall clock by the time dropped: the
report says by how much, never a silent drift. A device that delivers nothing for
:data:`STALL_SECONDS` while open (unplugged), or whose stream stops on its own, is an
:class:`~edgernn.errors.AudioSourceError`.
"""
import math
import queue
import sys
import time
from dataclasses import dataclass

import numpy as np

from ..errors import AudioSourceError
from .extras import import_extra

#: seconds of audio the queue between PortAudio and the model holds before blocks are dropped
QUEUE_SECONDS = 2.0
#: seconds without a block from an open device that mean it is gone
STALL_SECONDS = 5.0
#: how often the model's loop looks at whether the device is still running, seconds
POLL_SECONDS = 0.05


def sounddevice():
    """The sounddevice module; AudioSourceError when it or the PortAudio library is missing."""
    try:
        return import_extra("sounddevice", "sounddevice", "a microphone")
    except OSError as e:          # the package is installed, the PortAudio library is not
        raise AudioSourceError(f"a microphone needs the PortAudio library ({e}): on Debian or Raspberry Pi OS, "
                               "`sudo apt-get install libportaudio2`") from None


@dataclass
class InputDevice:
    """One of PortAudio's input devices: its index, name, host API (ALSA, PulseAudio, ...), input
    channels, default rate in Hz, and whether it is the default input."""
    index: int
    name: str
    host_api: str
    channels: int
    default_rate: float
    is_default: bool = False

    def describe(self):
        mark = "*" if self.is_default else " "
        return (f"{self.index:3d}{mark} {self.name}  ({self.host_api}, {self.channels} input channel(s), "
                f"{self.default_rate:g} Hz)")


def input_devices():
    """PortAudio's input devices, as :class:`InputDevice` in PortAudio's order."""
    sd = sounddevice()
    try:
        devices, apis = sd.query_devices(), sd.query_hostapis()
    except sd.PortAudioError as e:
        raise AudioSourceError(f"PortAudio cannot list the audio devices ({e})") from None
    try:
        default = sd.query_devices(kind="input")["index"]
    except (sd.PortAudioError, ValueError):
        default = None                      # no default input device
    return [InputDevice(d["index"], d["name"], apis[d["hostapi"]]["name"], d["max_input_channels"],
                        d["default_samplerate"], d["index"] == default)
            for d in devices if d["max_input_channels"] > 0]


def describe_devices(devices):
    """The text of ``edgernn stream --list-devices``: one device a line, the default marked *."""
    if not devices:
        return ("no input devices (is a microphone plugged in? `arecord -l` lists the ALSA cards; "
                "PortAudio also lists the PCMs defined in ~/.asoundrc)")
    return "\n".join(["input devices (mic:INDEX or mic:NAME, a part of the name will do; * the default):"] +
                     [d.describe() for d in devices])


def find_input_device(spec=None):
    """The input device ``spec`` names: None or "" for the default, an index, the whole name or
    a part of it (case ignored) that only one device's name holds."""
    devices = input_devices()
    listing = describe_devices(devices)
    if not spec:
        found = [d for d in devices if d.is_default]
        if not found:
            raise AudioSourceError(f"there is no default input device; name one as mic:DEVICE.\n{listing}")
        return found[0]
    if spec.isdigit():
        found = [d for d in devices if d.index == int(spec)]
        if not found:
            raise AudioSourceError(f"there is no input device {spec}.\n{listing}")
        return found[0]
    found = [d for d in devices if d.name == spec] or [d for d in devices if spec.lower() in d.name.lower()]
    if len(found) != 1:
        why = "no input device's name holds" if not found else f"{len(found)} input devices' names hold"
        raise AudioSourceError(f"{why} {spec!r}; name one by its index or more of its name.\n{listing}")
    return found[0]


def capture_settings(device, model_rate=None, channels=None, rate=None):
    """(rate in Hz, channels) to capture ``device`` with: ``rate`` when given, else the model's rate
    when the device takes it, else the device's default rate; ``channels`` when given, else 1,
    else the device's first two (averaged later)."""
    sd = sounddevice()
    rates = [rate] if rate else list(dict.fromkeys(r for r in (model_rate, device.default_rate) if r))
    counts = [channels] if channels else list(dict.fromkeys((1, min(device.channels, 2))))
    error = None
    for r in rates:
        for c in counts:
            try:
                sd.check_input_settings(device=device.index, channels=c, dtype="float32", samplerate=r)
                return float(r), int(c)
            except (sd.PortAudioError, ValueError) as e:
                error = e
    tried = f"{' or '.join(f'{r:g}' for r in rates)} Hz with {' or '.join(map(str, counts))} channel(s)"
    raise AudioSourceError(f"the input device {device.name!r} refuses {tried} ({error}); pass a --source-rate and "
                           "--channels it takes")


class Microphone:
    """Float32 blocks [n] (n = ``block``; the last may be shorter) captured from ``device`` (an
    :class:`InputDevice`) at ``rate`` Hz, ``channels`` averaged into one; see the module
    docstring for the queue and overruns. ``seconds``: stop after that much audio (None: until
    the loop stops, e.g. on Ctrl-C). ``samples`` counts the samples given to the model,
    ``captured`` those PortAudio delivered; ``dropped_blocks``/``dropped_samples`` the overruns,
    ``input_overflows`` PortAudio's overflow flags. ``log``: where the first overrun is announced
    (default: stderr)."""

    def __init__(self, device, rate, channels=1, block=512, queue_seconds=QUEUE_SECONDS, seconds=None, log=None):
        if not queue_seconds > 0:
            raise AudioSourceError(f"the microphone queue must hold more than 0 s of audio, got {queue_seconds}")
        if seconds is not None and not seconds > 0:
            raise AudioSourceError(f"the seconds to capture must be more than 0, got {seconds}")
        self.device, self.rate, self.channels, self.block = device, float(rate), int(channels), int(block)
        self.queue_seconds, self.log = queue_seconds, log
        self.capacity = max(2, math.ceil(queue_seconds * self.rate / self.block))    # blocks
        self.limit = None if seconds is None else int(round(seconds * self.rate))
        self.samples = self.captured = self.dropped_blocks = self.dropped_samples = self.input_overflows = 0

    @property
    def name(self):
        return f"microphone {self.device.name!r}"

    def _on_block(self, blocks, stop):
        """The PortAudio callback: ``blocks`` the bounded queue, ``stop`` the exception that ends
        the stream."""
        def callback(indata, frames, time_info, status):
            if status.input_overflow:
                self.input_overflows += 1
            block = indata[:, 0].copy() if indata.shape[1] == 1 else indata.mean(axis=1, dtype=np.float32)
            if self.limit is not None:
                block = block[:self.limit - self.captured]
            self.captured += len(block)
            try:
                blocks.put_nowait(block)
            except queue.Full:
                self.dropped_blocks += 1
                self.dropped_samples += len(block)
            if self.limit is not None and self.captured >= self.limit:
                raise stop
        return callback

    def __iter__(self):
        sd = sounddevice()
        blocks = queue.Queue(self.capacity)
        callback = self._on_block(blocks, sd.CallbackStop)
        try:
            stream = sd.InputStream(device=self.device.index, samplerate=self.rate, channels=self.channels,
                                    dtype="float32", blocksize=self.block, callback=callback)
        except (sd.PortAudioError, ValueError) as e:
            raise AudioSourceError(f"cannot open the {self.name} at {self.rate:g} Hz, {self.channels} channel(s) "
                                   f"({e})") from None
        announced = False
        with stream:
            last = time.monotonic()
            while True:
                try:
                    block = blocks.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    if not stream.active:
                        break
                    if time.monotonic() - last > STALL_SECONDS:
                        raise AudioSourceError(f"the {self.name} delivered nothing for {STALL_SECONDS:g} s (was it "
                                               "unplugged?)") from None
                    continue
                last = time.monotonic()
                if self.dropped_blocks and not announced:
                    print(f"edgernn: {self.name}: overrun: the model fell {self.queue_seconds:g} s behind and "
                          "blocks are being dropped (counted; the report at the end says how many)",
                          file=self.log or sys.stderr, flush=True)
                    announced = True
                self.samples += len(block)
                yield block
        if self.limit is None or self.captured < self.limit:
            raise AudioSourceError(f"the {self.name} stopped delivering samples after "
                                   f"{self.captured / self.rate:.3f} s (was it unplugged?)")

    def report(self, out):
        """The samples captured, and every loss: overruns (queue full) and PortAudio's overflows."""
        print(f"edgernn: {self.name}: {self.captured} samples captured at {self.rate:g} Hz, "
              f"{self.dropped_samples} dropped", file=out)
        if self.dropped_blocks:
            print(f"edgernn: {self.name}: overrun: {self.dropped_blocks} block(s) of audio ({self.dropped_samples} "
                  f"samples, {self.dropped_samples / self.rate:.3f} s) were dropped because the model did not keep "
                  f"up (the queue holds {self.queue_seconds:g} s); the t of the steps after the first drop lags the "
                  "wall clock by up to that much", file=out)
        if self.input_overflows:
            print(f"edgernn: {self.name}: PortAudio reported {self.input_overflows} input overflow(s): samples were "
                  "lost before edgernn got them (the system was too busy)", file=out)
