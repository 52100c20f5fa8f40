"""The sources of ``edgernn stream`` beyond WAV files and CSV lines (edgernn/io/sources.py):
FLAC through soundfile, resampling through soxr, raw PCM on stdin, serial ports through pyserial,
microphones through sounddevice/PortAudio.

Oracles: the bundled WAV read by the standard library (edgernn.io.wav, itself checked against
scipy in tests/test_stream_io.py) for every lossless path (FLAC, raw PCM, the microphone), and
``edgernn stream``'s JSON lines on the WAV for the same model; soxr's one-shot
``soxr.resample`` for the resampled paths, with scipy.signal.resample_poly as a second,
independent check (in the passband); for serial ports, the stdin path's JSON lines on the same
lines. An "echo" model (ONNX Identity over 64 samples, made here with onnx.helper, run with
--step) writes each window's samples back as JSON, so a stream's samples can be compared
exactly.

The microphone runs through real PortAudio (Debian's libportaudio2, installed by .ci/run): an
ALSA PCM defined in an .asoundrc under a test HOME reads a raw file through ALSA's ``file``
plugin over the ``null`` device. That device is not paced by a clock (it delivers as fast as
PortAudio reads), so it also makes real overruns when the queue is small. Its raw file holds
float32 samples: with a conversion in ALSA's ``plug`` layer (an int16 file captured as
float32) the ``file`` plugin skips data, a quirk of that emulation and not of PortAudio.
"""
import ctypes.util
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path
from queue import Empty, Queue
from types import SimpleNamespace

import numpy as np
import pytest

from edgernn.cli import EXIT_ERROR, main
from edgernn.errors import AudioSourceError
from edgernn.io.audio_file import read_audio
from edgernn.io.pcm import PcmSource
from edgernn.io.resample import ResampledSource, resample
from edgernn.io.wav import read_wav

AUDIO = Path(__file__).parent / "fixtures" / "audio" / "arctic_a0007.wav"
EXAMPLES = Path(__file__).parents[1] / "examples"
RATE, ECHO = 16000, 64                           # the fixture's rate; the echo model's window
SILERO_WINDOW = ["--window", "576", "--hop", "512", "--constant", "sr=16000"]
PIP_HINT = "pip install 'edgernn[audio]'"


@pytest.fixture(scope="module")
def speech():
    return read_wav(AUDIO).samples


@pytest.fixture(scope="module")
def silero():
    from exporters.fetch_silero import fetch
    return fetch() / "silero_vad.onnx"


@pytest.fixture(scope="module")
def echo(tmp_path_factory):
    """An ONNX step graph y = Identity(x), x float32 [64]: each step writes its window back."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "echo",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [ECHO])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [ECHO])])
    path = tmp_path_factory.mktemp("echo") / "echo.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def stream_argv(model, source, options, echo_model):
    extra = ["--step", "--window", str(ECHO)] if echo_model else []
    return ["stream", str(model), str(source), *extra, *options, "--jsonl", "-"]


def stream(model, source, *options, env=None, echo_model=True):
    """``edgernn stream MODEL SOURCE OPTIONS --jsonl -`` in a new process (the microphone's ALSA
    configuration is read from $HOME once per process): (returncode, stdout, stderr)."""
    r = subprocess.run([sys.executable, "-m", "edgernn", *stream_argv(model, source, options, echo_model)],
                       capture_output=True, text=True, env=env, timeout=120)
    return SimpleNamespace(returncode=r.returncode, stdout=r.stdout, stderr=r.stderr)


@pytest.fixture
def cli(capsys, monkeypatch):
    """``edgernn stream MODEL SOURCE OPTIONS --jsonl -`` through edgernn.cli.main in this process
    (no interpreter start-up per call), ``stdin`` bytes on standard input."""
    def run(model, source, *options, stdin=b"", echo_model=True):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        capsys.readouterr()
        code = main(stream_argv(model, source, options, echo_model))
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)
    return run


@pytest.fixture(scope="module")
def silero_on_the_wav(silero):
    """silero-vad's JSON lines on the WAV file (the oracle of the FLAC and raw PCM paths)."""
    r = stream(silero, AUDIO, *SILERO_WINDOW, echo_model=False)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 125, r.stderr
    return r.stdout


def echoed(result):
    """The samples an echo-model stream wrote back: float32 [steps x 64]."""
    assert result.returncode == 0, result.stderr
    return np.concatenate([json.loads(line)["y"] for line in result.stdout.splitlines()]).astype(np.float32)


def assert_typed_error(result, *messages):
    assert result.returncode == EXIT_ERROR and "Traceback" not in result.stderr, result.stderr
    for m in messages:
        assert m in result.stderr, result.stderr


# ---------------------------------------------------------------- FLAC (soundfile)
def test_flac_holds_the_wavs_samples_and_streams_the_same_json(tmp_path, speech, silero, silero_on_the_wav, cli):
    sf = pytest.importorskip("soundfile")
    sf.write(tmp_path / "speech.flac", speech, RATE, subtype="PCM_16")
    flac = read_audio(tmp_path / "speech.flac")
    assert (flac.rate, flac.channels, flac.truncated) == (RATE, 1, False)
    assert np.array_equal(flac.samples, speech)                         # lossless
    (tmp_path / "flac_named.wav").write_bytes((tmp_path / "speech.flac").read_bytes())   # by content, not name
    (tmp_path / "wav_named.flac").write_bytes(AUDIO.read_bytes())
    assert np.array_equal(read_audio(tmp_path / "flac_named.wav").samples, speech)
    assert np.array_equal(read_audio(tmp_path / "wav_named.flac").samples, speech)
    from_flac = cli(silero, tmp_path / "flac_named.wav", *SILERO_WINDOW, echo_model=False)
    assert from_flac.returncode == 0, from_flac.stderr
    assert from_flac.stdout == silero_on_the_wav


def test_truncated_or_corrupt_flac_reads_what_decodes_or_is_a_typed_error(tmp_path, speech, echo, cli):
    sf = pytest.importorskip("soundfile")
    sf.write(tmp_path / "speech.flac", speech, RATE, subtype="PCM_16")
    data = (tmp_path / "speech.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[:len(data) // 2])
    cut = read_audio(tmp_path / "cut.flac")
    assert cut.truncated and 0 < len(cut.samples) < len(speech)
    assert np.array_equal(cut.samples, speech[:len(cut.samples)])
    r = cli(echo, tmp_path / "cut.flac")
    assert np.array_equal(echoed(r)[:len(cut.samples)], cut.samples)
    assert "the data ends early (a truncated or corrupt file)" in r.stderr
    (tmp_path / "header.flac").write_bytes(data[:30])                 # the stream header cut short
    (tmp_path / "zeros.flac").write_bytes(data[:200] + bytes(2000) + data[2200:])   # the first frames wiped
    for name, message in (("header.flac", "is not an audio file libsndfile can read"),
                          ("zeros.flac", "no audio could be decoded")):
        with pytest.raises(AudioSourceError, match=message):
            read_audio(tmp_path / name)
    assert_typed_error(cli(echo, tmp_path / "zeros.flac"), "no audio could be decoded")


def test_a_wav_the_standard_library_refuses_is_read_by_soundfile(tmp_path, speech):
    sf = pytest.importorskip("soundfile")
    sf.write(tmp_path / "float.wav", speech, RATE, subtype="FLOAT")
    assert np.array_equal(read_audio(tmp_path / "float.wav").samples, speech)
    (tmp_path / "riff.wav").write_bytes(b"RIFF junk")                 # the standard library's message stays
    with pytest.raises(AudioSourceError, match="not a PCM WAV"):
        read_audio(tmp_path / "riff.wav")


# ---------------------------------------------------------------- without the audio extra
def _refuse_import(monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)                    # `import module` raises ImportError


def test_missing_packages_name_the_audio_extra_and_wav_needs_none(monkeypatch, tmp_path, speech):
    for module in ("soundfile", "soxr", "sounddevice", "serial"):
        _refuse_import(monkeypatch, module)
    assert np.array_equal(read_audio(AUDIO).samples, speech)          # the standard library alone
    (tmp_path / "x.flac").write_bytes(b"fLaC" + bytes(100))
    from edgernn.io.mic import input_devices
    from edgernn.io.serial_lines import SerialLines
    calls = [(lambda: read_audio(tmp_path / "x.flac"), "FLAC, OGG, AIFF"),
             (lambda: resample(speech, RATE, 8000, "'speech.wav'"), "'speech.wav' is sampled at 16000 Hz but the "
                                                                    "model takes 8000 Hz; resampling needs soxr"),
             (input_devices, "a microphone needs the Python package sounddevice"),
             (lambda: SerialLines("/dev/ttyUSB0"), "reading a serial port needs the Python package pyserial")]
    for call, message in calls:
        with pytest.raises(AudioSourceError) as e:
            call()
        assert message in str(e.value) and PIP_HINT in str(e.value), str(e.value)


# ---------------------------------------------------------------- resampling (soxr)
def passband_error(got, want, rate_in, rate_out):
    """|got - want| / |want| over the frequencies below 80% of the lower Nyquist frequency."""
    f = np.fft.rfftfreq(len(want), 1 / rate_out) < 0.8 * min(rate_in, rate_out) / 2
    d, w = np.fft.rfft(got - want)[f], np.fft.rfft(want)[f]
    return float(np.sqrt(np.sum(np.abs(d) ** 2) / np.sum(np.abs(w) ** 2)))


def test_cli_resamples_a_file_like_soxr_and_scipy(echo, speech, cli):
    """16 kHz -> 8 kHz by `edgernn stream --rate 8000`: soxr.resample exactly (the same call);
    scipy's resample_poly (a Kaiser-windowed polyphase filter) to 0.1% in the passband: the two
    filters differ in their transition bands (3% of the whole signal's energy here)."""
    soxr = pytest.importorskip("soxr")
    from scipy.signal import resample_poly
    r = cli(echo, AUDIO, "--rate", "8000")
    assert "resampling 16000 Hz -> 8000 Hz (soxr HQ)" in r.stderr
    got = echoed(r)
    want = soxr.resample(speech, RATE, 8000)
    assert len(want) == len(speech) // 2 and np.array_equal(got[:len(want)], want) and not got[len(want):].any()
    assert passband_error(got[:len(want)], resample_poly(speech.astype(np.float64), 1, 2), RATE, 8000) < 1e-2


@pytest.mark.parametrize("rate_in,rate_out", [(16000, 8000), (16000, 44100), (16000, 12345.5)])
def test_resampling_block_by_block_equals_soxr_one_shot(speech, rate_in, rate_out):
    """ResampledSource over blocks of odd sizes (1, 7, 333, 4097, ...) against soxr.resample on
    the whole signal. soxr's streaming form keeps its filter state across blocks and gives the
    same samples as the one-shot form, edges included (measured: equal to the last bit, so the
    tolerance is 1e-6 for other soxr builds only); resample_poly agrees in the passband."""
    soxr = pytest.importorskip("soxr")
    from fractions import Fraction
    from scipy.signal import resample_poly
    sizes = np.random.default_rng(7).choice([1, 7, 333, 4097, 160, 2], size=200)
    edges = np.cumsum(sizes)[np.cumsum(sizes) < len(speech)]
    source = ResampledSource(np.split(speech, edges), rate_in, rate_out)
    got = np.concatenate(list(source))
    want = soxr.resample(speech, rate_in, rate_out)
    assert len(got) == len(want) == source.samples
    assert np.abs(got - want).max() <= 1e-6
    ratio = Fraction(rate_out / rate_in).limit_denominator(1000)
    poly = resample_poly(speech.astype(np.float64), ratio.numerator, ratio.denominator)
    n = min(len(poly), len(want))
    assert passband_error(got[:n], poly[:n], rate_in, rate_out) < 1e-2


# ---------------------------------------------------------------- raw PCM on stdin
def wav_frames():
    with wave.open(str(AUDIO)) as w:
        return w.readframes(w.getnframes())


def test_raw_pcm_on_stdin_streams_like_the_wav(silero, silero_on_the_wav, cli):
    """The WAV's frames on stdin as s16le give silero-vad the JSON lines the WAV gives it."""
    r = cli(silero, "-", "--pcm", "s16le", "--rate", "16000", *SILERO_WINDOW, stdin=wav_frames(), echo_model=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout == silero_on_the_wav


def test_raw_pcm_encodings_channels_partial_frame_and_resampling(echo, speech, cli):
    ints = np.frombuffer(wav_frames(), "<i2")
    cases = [(["--pcm", "s32le"], (ints.astype("<i4") << 16).tobytes(), speech),
             (["--pcm", "f32le"], speech.astype("<f4").tobytes(), speech),
             (["--pcm", "s16le", "--channels", "2"], np.stack([ints, np.zeros_like(ints)], 1).tobytes(),
              (ints / 32768 / 2).astype(np.float32))]
    for options, data, want in cases:
        got = echoed(cli(echo, "-", *options, "--rate", "16000", stdin=data))
        assert np.array_equal(got[:len(want)], want), options
    r = cli(echo, "-", "--pcm", "s16le", "--rate", "16000", stdin=wav_frames() + b"\x01")
    assert np.array_equal(echoed(r)[:len(speech)], speech)
    assert "the PCM stream ended inside a frame (1 of its 2 bytes); that partial frame was dropped" in r.stderr
    soxr = pytest.importorskip("soxr")
    r = cli(echo, "-", "--pcm", "s16le", "--source-rate", "16000", "--rate", "8000", stdin=wav_frames())
    want = soxr.resample(speech, RATE, 8000)
    assert "stdin: resampling 16000 Hz -> 8000 Hz" in r.stderr
    assert np.abs(echoed(r)[:len(want)] - want).max() <= 1e-6
    assert_typed_error(cli(echo, "-", "--pcm", "s16le"), "raw PCM has no header")
    assert_typed_error(cli(echo, AUDIO, "--pcm", "s16le"), "--pcm is for raw PCM on standard input")


def test_pcm_source_reads_blocks_as_they_arrive():
    """Bytes that arrive in pieces splitting samples (as a pipe gives them) decode as one stream;
    non-finite floats become 0 and are counted."""
    class Trickle:
        def __init__(self, data, sizes):
            self.data, self.sizes = data, iter(sizes)

        def read1(self, n):
            k = min(n, next(self.sizes, n))
            chunk, self.data = self.data[:k], self.data[k:]
            return chunk
    x = np.array([0.5, -0.25, np.nan, 1.0, np.inf, 0.125], "<f4")
    pcm = PcmSource(Trickle(x.tobytes() + b"\x00\x00", [3, 1, 6, 2, 100]), "f32le")
    got = np.concatenate(list(pcm))
    assert np.array_equal(got, [0.5, -0.25, 0.0, 1.0, 0.0, 0.125])
    assert (pcm.samples, pcm.non_finite, pcm.dropped_bytes) == (6, 2, 2)


# ---------------------------------------------------------------- serial port (pyserial on a pty)
def _reader(pipe, into):
    for line in iter(pipe.readline, b""):
        into.put(line.decode())


def _wait_for(lines, seen, test, timeout):
    deadline = time.monotonic() + timeout
    while not test() and time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=0.1))
        except Empty:
            pass
    return test()


def test_serial_port_lines_stream_like_stdin_and_a_lost_port_is_a_typed_error(cli):
    """examples/replay_sensor.py's lines written to a pseudo-terminal's master end; edgernn reads
    the slave end through pyserial: the JSON lines equal those of the same lines on stdin, a
    garbled line is skipped and counted; closing the master (the port going away) ends the
    stream with a typed error after the outputs so far."""
    pytest.importorskip("serial")
    replay = subprocess.run([sys.executable, str(EXAMPLES / "replay_sensor.py"), "--recording", "3", "--rate", "0"],
                            capture_output=True, text=True, check=True)
    lines = replay.stdout.splitlines()
    text = "\n".join(lines[:50] + ["1.0,2.0,x,4,5,6"] + lines[50:]) + "\n"
    options = ["--window", "1", "--hop", "1", "--rate", "50"]
    want = cli(EXAMPLES / "basic_motions.onnx", "-", *options, stdin=text.encode(), echo_model=False)
    assert want.returncode == 0 and len(want.stdout.splitlines()) == 100, want.stderr
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "edgernn", "stream", str(EXAMPLES / "basic_motions.onnx"),
                             f"serial:{os.ttyname(slave)}", "--baud", "9600", *options, "--jsonl", "-"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err, got, said = Queue(), Queue(), [], []
    for pipe, into in ((proc.stdout, out), (proc.stderr, err)):
        threading.Thread(target=_reader, args=(pipe, into), daemon=True).start()
    try:
        assert _wait_for(err, said, lambda: any("reading lines from the serial port" in s for s in said), 120), said
        writer = threading.Thread(target=os.write, args=(master, text.encode()), daemon=True)
        writer.start()
        assert _wait_for(out, got, lambda: len(got) >= 100, 60), (len(got), said)
        os.close(master)                                           # the port goes away
        proc.wait(timeout=30)
        _wait_for(err, said, lambda: False, 0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(slave)
    said = "".join(said)
    assert "".join(got) == want.stdout
    assert proc.returncode == EXIT_ERROR and "Traceback" not in said, said
    assert "skipped 1 of 102 input lines (the first: line 51, a field is not a number)" in said
    assert re.search(r"the serial port '/dev/pts/\d+' stopped after 102 line\(s\)", said), said


def test_a_serial_port_that_cannot_be_opened_is_a_typed_error(tmp_path):
    pytest.importorskip("serial")
    from edgernn.io.serial_lines import SerialLines
    with pytest.raises(AudioSourceError, match="cannot open the serial port"):
        SerialLines(str(tmp_path / "ttyUSB9"))
    (tmp_path / "plain").write_text("not a tty")
    with pytest.raises(AudioSourceError, match="cannot open the serial port"):
        SerialLines(str(tmp_path / "plain"))


# ---------------------------------------------------------------- microphone (sounddevice, PortAudio, ALSA)
ASOUNDRC = """pcm.edgernn_test_mic {{
    type plug
    slave {{
        pcm {{ type file  slave.pcm "null"  file "/dev/null"  infile "{infile}"  format "raw" }}
        format FLOAT_LE
        rate {rate}
        channels 1
    }}
    hint.description "edgernn test microphone: a raw float32 file"
}}
"""


@pytest.fixture(scope="module")
def alsa_mic_home(tmp_path_factory, speech):
    """The environment of a process whose HOME's .asoundrc defines the ALSA PCM edgernn_test_mic:
    the fixture's samples (float32 raw) at 16 kHz through PortAudio. The compile cache stays
    where it was (edgernn.config.cache_root follows HOME otherwise)."""
    if ctypes.util.find_library("portaudio") is None:
        pytest.skip("the PortAudio library is not installed (Debian: apt-get install libportaudio2; .ci/run does)")
    pytest.importorskip("sounddevice")
    home = tmp_path_factory.mktemp("alsa_home")
    speech.astype("<f4").tofile(home / "speech.f32")
    (home / ".asoundrc").write_text(ASOUNDRC.format(infile=home / "speech.f32", rate=RATE))
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": cache}


def test_microphone_through_portaudio_gives_the_recordings_samples(echo, speech, alsa_mic_home):
    listed = subprocess.run([sys.executable, "-m", "edgernn", "stream", "--list-devices"], capture_output=True,
                            text=True, env=alsa_mic_home, timeout=60)
    assert listed.returncode == 0 and "edgernn_test_mic  (ALSA" in listed.stdout, listed
    r = stream(echo, "mic:test_mic", "--rate", "16000", "--seconds", "4", "--queue-seconds", "5", env=alsa_mic_home)
    assert np.array_equal(echoed(r), speech)
    assert "microphone 'edgernn_test_mic': 64000 samples captured at 16000 Hz, 0 dropped" in r.stderr


def test_microphone_resampled_block_by_block_equals_soxr(echo, speech, alsa_mic_home):
    soxr = pytest.importorskip("soxr")
    r = stream(echo, "mic:edgernn_test_mic", "--source-rate", "16000", "--rate", "8000", "--seconds", "4",
               "--queue-seconds", "5", env=alsa_mic_home)
    want = soxr.resample(speech, RATE, 8000)
    assert "resampling 16000 Hz -> 8000 Hz" in r.stderr
    assert np.abs(echoed(r)[:len(want)] - want).max() <= 1e-6


def test_microphone_overruns_are_counted_and_reported(echo, alsa_mic_home):
    """The test device is not paced: with a queue of 0.01 s PortAudio's blocks arrive faster than
    the loop takes them, the callback drops and counts them; the samples the model got and those
    dropped add up to those captured."""
    r = stream(echo, "mic:edgernn_test_mic", "--rate", "16000", "--seconds", "4", "--queue-seconds", "0.01",
               env=alsa_mic_home)
    delivered = len(echoed(r))                       # blocks of 64 samples, a window each: no padding
    err = r.stderr
    dropped = int(re.search(r"64000 samples captured at 16000 Hz, (\d+) dropped", err).group(1))
    assert dropped > 0 and delivered == 64000 - dropped, err
    assert "overrun: the model fell 0.01 s behind" in err and f"({dropped} samples, " in err


def test_a_microphone_that_does_not_exist_lists_the_input_devices(echo, alsa_mic_home):
    for spec, message in (("nosuchmic", "no input device's name holds 'nosuchmic'"),
                          ("99", "there is no input device 99")):
        r = stream(echo, f"mic:{spec}", "--rate", "16000", env=alsa_mic_home)
        assert_typed_error(r, message, "input devices (mic:INDEX or mic:NAME", "edgernn_test_mic")


def test_a_microphone_that_stops_on_its_own_is_a_typed_error(monkeypatch):
    """A plain Python stand-in for PortAudio's stream (its callback thread delivers 3 blocks, then
    the stream stops, as when a USB microphone is pulled out): the loop gets the 3 blocks, then
    an AudioSourceError."""
    import edgernn.io.mic as mic

    class Stream:
        def __init__(self, callback, blocksize, **_):
            self.callback, self.blocksize, self.active = callback, blocksize, True

        def _run(self):
            status = type("Status", (), {"input_overflow": True})()
            for _ in range(3):
                self.callback(np.ones((self.blocksize, 1), np.float32), self.blocksize, None, status)
            self.active = False

        def __enter__(self):
            threading.Thread(target=self._run).start()
            return self

        def __exit__(self, *exc):
            pass

    class FakeSoundDevice:
        PortAudioError, CallbackStop, InputStream = RuntimeError, StopIteration, Stream
    monkeypatch.setattr(mic, "sounddevice", lambda: FakeSoundDevice)
    device = mic.InputDevice(0, "usb mic", "ALSA", 1, 16000.0)
    m = mic.Microphone(device, 16000, block=160, queue_seconds=1.0)
    got = []
    with pytest.raises(AudioSourceError, match="stopped delivering samples after 0.030 s"):
        for block in m:
            got.append(block)
    assert len(got) == 3 and m.samples == 480 and m.input_overflows == 3
