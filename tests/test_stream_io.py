"""The real-time edge (edgernn/io): WAV sources, framing, speech segments, ``edgernn stream``.

Oracles: WAV files written here with the standard library's ``wave`` from known integers and
read back by scipy's ``wavfile``; framing against windows sliced by hand from the zero-padded
signal; for silero-vad (its ONNX files and Python helpers from its PyPI wheel,
``exporters/fetch_silero.py``), onnxruntime called the way silero-vad's ``OnnxWrapper`` calls
it (64 samples of context + 512 new, the state fed back) and silero-vad's own
``get_speech_timestamps`` (torch) on the same audio with the same thresholds.
"""
import importlib.util
import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

import edgernn
from edgernn.cli import EXIT_ERROR
from edgernn.errors import AudioSourceError
from edgernn.errors import SignalArgumentError
from edgernn.io.framing import Framer, frame_signal
from edgernn.io.segments import SpeechSegmenter
from edgernn.io.wav import read_wav

AUDIO = Path(__file__).parent / "fixtures" / "audio" / "arctic_a0007.wav"
RATE, WINDOW, HOP = 16000, 576, 512


# ---------------------------------------------------------------- framing
def windows_by_hand(x, window, hop):
    padded = np.concatenate([np.zeros(window - hop, np.float32), x])
    n = -(-len(x) // hop)                                       # the last partial hop counts
    padded = np.concatenate([padded, np.zeros(n * hop + window - hop - len(padded), np.float32)])
    return np.stack([padded[k * hop:k * hop + window] for k in range(n)])


@pytest.mark.parametrize("n,window,hop", [(1200, 576, 512), (1024, 576, 512), (50, 8, 8), (7, 10, 3), (3, 576, 512)])
def test_framer_streams_the_windows_of_the_whole_signal(n, window, hop):
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    want = windows_by_hand(x, window, hop)
    assert np.array_equal(frame_signal(x, window, hop), want)
    f = Framer(window, hop)
    got = [f.push(block) for block in np.array_split(x, 13)] + [f.finish()]
    assert np.array_equal(np.concatenate(got), want)
    assert f.hops == len(want)


@pytest.mark.parametrize("window,hop", [(512, 576), (0, 1), (8, 0), (8.0, 4)])
def test_framer_refuses_windows_that_skip_or_are_empty(window, hop):
    with pytest.raises(SignalArgumentError):
        Framer(window, hop)


# ---------------------------------------------------------------- WAV
def write_wav(path, ints, width, channels, rate=RATE):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        if width == 3:
            b = np.asarray(ints, "<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
        else:
            b = np.asarray(ints, {1: "u1", 2: "<i2", 4: "<i4"}[width]).tobytes()
        w.writeframes(b)


@pytest.mark.parametrize("width,full", [(1, 128), (2, 2 ** 15), (3, 2 ** 23), (4, 2 ** 31)])
def test_wav_samples_of_every_pcm_width(tmp_path, width, full):
    rng = np.random.default_rng(width)
    ints = rng.integers(-full, full, size=(300, 2))
    stored = ints + 128 if width == 1 else ints
    write_wav(tmp_path / "x.wav", stored.ravel(), width, 2)
    a = read_wav(tmp_path / "x.wav")
    assert (a.rate, a.channels, a.truncated) == (RATE, 2, False)
    np.testing.assert_allclose(a.samples, (ints / full).mean(axis=1), rtol=0, atol=1e-7)


def test_wav_fixture_read_like_scipy():
    from scipy.io import wavfile
    rate, ints = wavfile.read(AUDIO)
    a = read_wav(AUDIO)
    assert a.rate == rate and np.array_equal(a.samples, ints.astype(np.float32) / 32768)


def test_truncated_wav_reads_its_whole_frames(tmp_path):
    write_wav(tmp_path / "x.wav", np.arange(1000), 2, 1)
    data = (tmp_path / "x.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:-301])              # inside a frame
    a = read_wav(tmp_path / "cut.wav")
    assert a.truncated and len(a.samples) == 849
    assert np.array_equal(a.samples, np.arange(849, dtype=np.float32) / 32768)


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00", b"not audio at all" * 10])
def test_what_is_not_a_pcm_wav_is_a_typed_error(tmp_path, content):
    (tmp_path / "bad.wav").write_bytes(content)
    with pytest.raises(AudioSourceError, match="not a PCM WAV"):
        read_wav(tmp_path / "bad.wav")


def test_mutated_wav_headers_read_or_give_a_typed_error(tmp_path):
    """Seeded mutants of the fixture's header (bytes forged, the file cut short): each either
    reads or raises AudioSourceError; the standard library's own RuntimeError (a chunk size
    that seeks past the file) and struct.error must not escape."""
    data = AUDIO.read_bytes()[:4000]
    rng = np.random.default_rng(7)
    outcomes = {"read": 0, "typed": 0}
    for _ in range(400):
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 5))):
            b[int(rng.integers(0, 60))] = int(rng.integers(0, 256))
        if rng.random() < 0.2:
            b = b[:int(rng.integers(0, 60))]
        (tmp_path / "m.wav").write_bytes(bytes(b))
        try:
            read_wav(tmp_path / "m.wav")
            outcomes["read"] += 1
        except AudioSourceError:
            outcomes["typed"] += 1
    assert outcomes["read"] and outcomes["typed"]
    seek_past_end = bytearray(data)
    seek_past_end[16:20] = (125).to_bytes(4, "little")      # an fmt chunk of 125 bytes: wave seeks past it
    (tmp_path / "seek.wav").write_bytes(bytes(seek_past_end[:44]))
    with pytest.raises(AudioSourceError, match="not a PCM WAV"):
        read_wav(tmp_path / "seek.wav")


def test_float_wav_says_how_to_convert(tmp_path):
    from scipy.io import wavfile
    wavfile.write(tmp_path / "f.wav", RATE, np.zeros(100, np.float32))
    with pytest.raises(AudioSourceError, match="pcm_s16le"):
        read_wav(tmp_path / "f.wav")


# ---------------------------------------------------------------- silero-vad end to end
@pytest.fixture(scope="module")
def silero():
    from exporters.fetch_silero import fetch
    return fetch()


def speech_with_pauses():
    """The utterance, a second of silence, the utterance again with low noise: two segments."""
    x = read_wav(AUDIO).samples
    noise = np.random.default_rng(0).normal(0, 0.003, len(x)).astype(np.float32)
    return np.concatenate([x, np.zeros(RATE, np.float32), x + noise, np.zeros(RATE // 3, np.float32)])


def ort_calls(path, audio):
    """silero-vad's calling convention in onnxruntime: one window per call, state fed back."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    state, probs = np.zeros((2, 1, 128), np.float32), []
    for w in windows_by_hand(audio, WINDOW, HOP):
        p, state = sess.run(None, {"input": w[None], "state": state, "sr": np.array(RATE, np.int64)})
        probs.append(float(np.ravel(p)[0]))
    return np.array(probs)


def test_cli_stream_writes_silero_probabilities_like_onnxruntime(silero, tmp_path):
    audio = speech_with_pauses()
    write_wav(tmp_path / "speech.wav", np.round(audio * 32768).clip(-32768, 32767).astype(np.int64), 2, 1)
    audio = read_wav(tmp_path / "speech.wav").samples
    out = tmp_path / "out.jsonl"
    r = subprocess.run([sys.executable, "-m", "edgernn", "stream", str(silero / "silero_vad.onnx"),
                        str(tmp_path / "speech.wav"), "--window", "576", "--hop", "512", "--constant", "sr=16000",
                        "--jsonl", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    want = ort_calls(silero / "silero_vad.onnx", audio)
    assert [row["step"] for row in rows] == list(range(len(want)))
    assert np.allclose([row["t"] for row in rows], (np.arange(len(want)) + 1) * HOP / RATE)
    got = np.array([row["output"][0] for row in rows])
    assert np.abs(got - want).max() < 1e-4
    assert want.max() > 0.9 and want.min() < 0.1
    assert "0 missed" in r.stdout and "real-time factor" in r.stdout


SEGMENT_SETTINGS = [{}, {"threshold": 0.3, "min_silence_duration_ms": 50, "speech_pad_ms": 60},
                    {"threshold": 0.7, "min_speech_duration_ms": 500, "speech_pad_ms": 0}]


@pytest.mark.parametrize("settings", SEGMENT_SETTINGS)
def test_segments_equal_silero_get_speech_timestamps(silero, settings):
    utils = silero_utils(silero)
    import torch
    audio = speech_with_pauses()
    want = utils.get_speech_timestamps(torch.from_numpy(audio), utils.OnnxWrapper(str(silero / "silero_vad.onnx"),
                                       force_onnx_cpu=True), sampling_rate=RATE, **settings)
    assert len(want) >= 2
    m = edgernn.load(silero / "silero_vad.onnx", constants={"sr": RATE}, shapes={"input": [WINDOW]})
    from edgernn.io.run import stream_signal
    seg = SpeechSegmenter(RATE, HOP, settings.get("threshold", 0.5), None, settings.get("min_speech_duration_ms", 250),
                          settings.get("min_silence_duration_ms", 100), settings.get("speech_pad_ms", 30))
    got = []
    for step in stream_signal(m, audio, RATE, WINDOW, HOP):
        got += seg.update(float(step.outputs["output"][0]))
    got += seg.finish(len(audio))
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want):
        assert abs(g.start - w["start"]) <= HOP and abs(g.end - w["end"]) <= HOP, (g, w)


def silero_utils(silero):
    pytest.importorskip("torch")                   # utils_vad.py imports torch
    spec = importlib.util.spec_from_file_location("silero_utils_vad", silero / "utils_vad.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    return utils


def speech_like_probabilities(rng, steps):
    """A probability per step that stays in speech or silence for a while, with jitter around
    the thresholds (so the hysteresis, short silences and short bursts all happen)."""
    probs, speech = [], rng.random() < 0.5
    while len(probs) < steps:
        run = int(rng.geometric(1 / rng.choice([3, 10, 40])))
        level = rng.uniform(0.55, 1.0) if speech else rng.uniform(0.0, 0.45)
        probs += list(np.clip(level + rng.normal(0, 0.12, run), 0, 1))
        speech = not speech
    return probs[:steps]


MAX_SPEECH_SETTINGS = [
    {}, {"max_speech_duration_s": 1.0}, {"max_speech_duration_s": 2.5, "min_silence_at_max_speech": 30},
    {"max_speech_duration_s": 1.5, "use_max_poss_sil_at_max_speech": False},
    {"max_speech_duration_s": 0.8, "use_max_poss_sil_at_max_speech": False, "min_silence_at_max_speech": 0,
     "threshold": 0.3, "min_silence_duration_ms": 300, "speech_pad_ms": 100},
    {"max_speech_duration_s": 3.0, "threshold": 0.7, "neg_threshold": 0.2, "min_speech_duration_ms": 60}]


@pytest.mark.parametrize("rate", [16000, 8000])
@pytest.mark.parametrize("settings", MAX_SPEECH_SETTINGS)
def test_segments_equal_silero_rules_on_random_probabilities(silero, settings, rate):
    """The segmenter against silero-vad's own get_speech_timestamps_from_probs on 40 random
    probability sequences per setting: every segment, to the sample (max_speech_s cuts
    included, both of silero's ways of choosing the silence to cut at)."""
    utils = silero_utils(silero)
    hop = 512 if rate == 16000 else 256
    rng = np.random.default_rng(len(str(settings)) + rate)
    names = {"threshold": "threshold", "neg_threshold": "neg_threshold", "min_speech_duration_ms": "min_speech_ms",
             "min_silence_duration_ms": "min_silence_ms", "speech_pad_ms": "speech_pad_ms",
             "max_speech_duration_s": "max_speech_s", "min_silence_at_max_speech": "min_silence_at_max_speech_ms",
             "use_max_poss_sil_at_max_speech": "use_max_possible_silence"}
    changed = 0                         # sequences whose segments max_speech_s changed
    for _ in range(40):
        probs = speech_like_probabilities(rng, int(rng.integers(20, 700)))
        total = len(probs) * hop - int(rng.integers(0, hop))
        want = utils.get_speech_timestamps_from_probs(probs, sampling_rate=rate, audio_length_samples=total, **settings)
        seg = SpeechSegmenter(rate, hop, **{names[k]: v for k, v in settings.items()})
        got = [g for p in probs for g in seg.update(p)] + seg.finish(total)
        assert [(g.start, g.end) for g in got] == [(w["start"], w["end"]) for w in want]
        unlimited = {k: v for k, v in settings.items() if k != "max_speech_duration_s"}
        changed += want != utils.get_speech_timestamps_from_probs(probs, sampling_rate=rate,
                                                                  audio_length_samples=total, **unlimited)
    assert changed > 0 if "max_speech_duration_s" in settings else changed == 0


def test_cli_stream_prints_segments_and_refuses_what_it_cannot_take(silero, tmp_path):
    model = str(silero / "silero_vad.onnx")
    r = subprocess.run([sys.executable, "-m", "edgernn", "stream", model, str(AUDIO), "--window", "576", "--hop",
                        "512", "--constant", "sr=16000", "--segments"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "speech    0.386 s -    3.550 s" in r.stdout              # get_speech_timestamps: 6176-56800
    (tmp_path / "bad.wav").write_bytes(b"RIFF junk")
    cases = [([str(tmp_path / "bad.wav"), "--window", "576", "--hop", "512"], "not a PCM WAV"),
             ([str(AUDIO), "--window", "512", "--hop", "576"], "hop 576 is longer than the window"),
             ([str(AUDIO), "--window", "576", "--hop", "512", "--pcm", "s16le"], "--pcm is for raw PCM"),
             ([str(AUDIO), "--window", "576", "--hop", "512", "--segments", "--threshold", "1.5"],
              "threshold must be in (0, 1]")]
    for extra, message in cases:
        r = subprocess.run([sys.executable, "-m", "edgernn", "stream", model, *extra, "--constant", "sr=16000"],
                           capture_output=True, text=True)
        assert r.returncode == EXIT_ERROR and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_realtime_steps_each_hop_when_its_last_sample_arrives(monkeypatch):
    """--realtime waits for each hop's wall time, counted from the start (so a slow step does
    not shift the ones after it): checked on a simulated clock, where sleeping and stepping
    advance time (no wall-clock assertions)."""
    import edgernn.io.run as run
    now = [100.0]
    monkeypatch.setattr(run.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(run.time, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    model = edgernn.load(Path(__file__).parent / "fixtures" / "onnx" / "gru_l1_bf_lin_dy.onnx")
    width = int(np.prod(model.inputs[0].frame_shape))
    stream_at = []

    class Slow:                      # every step costs 7 ms of the simulated clock
        def __init__(self, inner):
            self.inner = inner

        def step(self, x):
            stream_at.append(now[0])
            now[0] += 0.007
            return self.inner.step(x)

        def __getattr__(self, name):
            return getattr(self.inner, name)
    real_stream = model.stream
    monkeypatch.setattr(model, "stream", lambda: Slow(real_stream()))
    hop, rate = width, 1000                                  # a hop of `width` samples at 1 kHz
    steps = list(run.stream_signal(model, np.zeros(10 * hop, np.float32), rate, width, hop, realtime=True))
    assert len(steps) == 10
    start = stream_at[1] - hop / rate                        # stream_at[0]: the warm-up step
    np.testing.assert_allclose(stream_at[1:], start + (np.arange(10) + 1) * hop / rate, rtol=0, atol=1e-9)


# ---------------------------------------------------------------- sensor lines on stdin
EXAMPLES = Path(__file__).parents[1] / "examples"


def test_sensor_lines_on_stdin_stream_like_stream_run_and_onnxruntime():
    """examples/replay_sensor.py piped into `edgernn stream examples/basic_motions.onnx - --window
    1 --hop 1`: one JSON line per CSV line, equal to Stream.run on the same recording and to
    onnxruntime on the whole sequence; a garbled line is skipped and counted."""
    import onnxruntime as ort
    replay = subprocess.run([sys.executable, str(EXAMPLES / "replay_sensor.py"), "--recording", "3", "--rate", "0"],
                            capture_output=True, text=True, check=True)
    lines = replay.stdout.splitlines()
    assert lines[0].startswith("acc_x") and len(lines) == 101
    garbled = "\n".join(lines[:50] + ["1.0,2.0", "a,b,c,d,e,f"] + lines[50:]) + "\n"
    r = subprocess.run([sys.executable, "-m", "edgernn", "stream", str(EXAMPLES / "basic_motions.onnx"), "-",
                        "--window", "1", "--hop", "1", "--rate", "50", "--jsonl", "-"],
                       input=garbled, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "skipped 2 of 103 input lines (the first: line 51, 2 fields, not 6)" in r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    frames = np.array([[float(v) for v in line.split(",")] for line in lines[1:]], np.float32)
    assert [row["step"] for row in rows] == list(range(100))
    assert np.allclose([row["t"] for row in rows], (np.arange(100) + 1) / 50)
    got = np.array([row["logits"] for row in rows], np.float32)
    model = edgernn.load(EXAMPLES / "basic_motions.onnx")
    assert np.abs(got - model.stream().run(frames)).max() <= 1e-6       # JSON keeps float32 exactly
    sess = ort.InferenceSession(str(EXAMPLES / "basic_motions.onnx"), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": frames[None], "h0": np.zeros((1, 1, 32), np.float32)})[0].reshape(100, -1)
    assert np.abs(got - want).max() < 1e-5


def test_lines_that_cannot_fill_a_window_say_so():
    r = subprocess.run([sys.executable, "-m", "edgernn", "stream", str(EXAMPLES / "basic_motions.onnx"), "-",
                        "--window", "4", "--hop", "1"], input="1,2,3\n", capture_output=True, text=True)
    assert r.returncode == EXIT_ERROR and "pass --fields F" in r.stderr and "Traceback" not in r.stderr, r.stderr
    for fields, message in (("3", "--window 2 lines of 3 fields"), ("4", "wrong number of fields")):
        r = subprocess.run([sys.executable, "-m", "edgernn", "stream", str(EXAMPLES / "basic_motions.onnx"), "-",
                            "--window", "1", "--fields", fields], input="1,2,3\n", capture_output=True, text=True)
        assert r.returncode == EXIT_ERROR and message in r.stderr, r.stderr


def test_lines_that_are_not_finite_numbers_are_skipped_and_the_output_is_valid_json():
    """NaN or infinity in a sensor line would poison the recurrent state for good: such lines are
    skipped and counted, as are bytes that are not text; every line written is valid JSON."""
    good = "0.1,0.2,0.3,0.4,0.5,0.6\n"
    data = (good + "1,2,3,4,5,nan\n" + "1,2,3,4,5,inf\n1e400,1,1,1,1,1\n").encode() + b"\xff\xfe\x00garbage\n" + \
        good.encode()
    r = subprocess.run([sys.executable, "-m", "edgernn", "stream", str(EXAMPLES / "basic_motions.onnx"), "-",
                        "--window", "1", "--jsonl", "-"], input=data, capture_output=True)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert len(rows) == 2 and all(all(np.isfinite(v) for v in row["logits"]) for row in rows)
    assert b"skipped 4 of 6 input lines (the first: line 2, a field is not a finite float32 number)" in r.stderr


def test_framer_takes_rows_of_fields():
    x = np.arange(14, dtype=np.float32).reshape(7, 2)
    want = np.stack([windows_by_hand(x[:, k], 3, 2) for k in range(2)], axis=-1)
    assert np.array_equal(frame_signal(x, 3, 2), want)


def test_json_lines_write_non_finite_outputs_as_null():
    from edgernn.io.run import Step
    line = Step(3, 0.096, {"y": np.array([0.5, np.nan, np.inf], np.float32)}, 0.0).to_json()
    assert json.loads(line) == {"step": 3, "t": 0.096, "y": [0.5, None, None]}
