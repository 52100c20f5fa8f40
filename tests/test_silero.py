"""silero-vad, the most used voice-activity detector, as published: all six ONNX files of its
PyPI wheel (fetched by ``exporters/fetch_silero.py``; not redistributed here).

Oracle: onnxruntime called the way silero-vad's own ``OnnxWrapper`` calls it: one window per
call (64 samples of context + 512 new at 16 kHz, 32 + 256 at 8 kHz), the ``state`` output fed
back as the next call's state. edgernn steps the same windows. Audio: a real utterance
(CMU ARCTIC arctic_a0007, tests/fixtures/audio), played twice for more than 200 steps, and
resampled to 8 kHz with scipy for the 8 kHz branch.
"""
import wave
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import edgernn
from exporters.fetch_silero import fetch

from compare import max_err

AUDIO = Path(__file__).parent / "fixtures" / "audio" / "arctic_a0007.wav"
TOL = 1e-4
#: file -> (sample rates it supports, whether it takes ``sr``)
VARIANTS = {
    "silero_vad.onnx": ((16000, 8000), True),
    "silero_vad_16k_op15.onnx": ((16000,), True),
    "silero_vad_half.onnx": ((16000,), False),
    "silero_vad_op18_ifless.onnx": ((16000, 8000), True),
    "silero_vad_openvino_16k.onnx": ((16000,), False),
    "silero_vad_16k_sequence.onnx": ((16000,), False),
}
CASES = [(f, sr) for f, (rates, _) in VARIANTS.items() for sr in rates]


@pytest.fixture(scope="module")
def silero_dir():
    return fetch()


def speech(sr):
    with wave.open(str(AUDIO)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0
    if sr != 16000:
        from scipy.signal import resample_poly
        pcm = resample_poly(pcm, sr, 16000).astype(np.float32)
    return np.concatenate([pcm, pcm])


def windows(sr):
    """The windows silero-vad's OnnxWrapper feeds: context + hop, the first after zeros."""
    hop, context = (512, 64) if sr == 16000 else (256, 32)
    pcm = speech(sr)
    padded = np.concatenate([np.zeros(context, np.float32), pcm])
    n = len(pcm) // hop
    return np.stack([padded[k * hop:k * hop + hop + context] for k in range(n)])


def ort_probabilities(path, wins, sr):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    probs = []
    if "h" in names:                                    # the sequence variant: (h, c) instead of state
        h = c = np.zeros((1, 1, 128), np.float32)
        for w in wins:
            p, h, c = sess.run(None, {"input": w[None], "h": h, "c": c})
            probs.append(np.ravel(p)[0])
        return np.array(probs)
    state = np.zeros((2, 1, 128), np.float32)
    for w in wins:
        feed = {"input": w[None], "state": state}
        if "sr" in names:
            feed["sr"] = np.array(sr, np.int64)
        p, state = sess.run(None, feed)
        probs.append(np.ravel(p)[0])
    return np.array(probs)


def load(path, sr, window):
    takes_sr = VARIANTS[path.name][1]
    kwargs = {"constants": {"sr": sr}} if takes_sr else {}
    if "sequence" not in path.name and "openvino" not in path.name:
        kwargs["shapes"] = {"input": [window]}
    return edgernn.load(path, **kwargs)


@pytest.mark.parametrize("name,sr", CASES)
def test_silero_streams_like_onnxruntime(silero_dir, name, sr):
    path = silero_dir / name
    wins = windows(sr)
    assert len(wins) >= 200
    want = ort_probabilities(path, wins, sr)
    assert want.max() > 0.5 and want.min() < 0.2, "the utterance must hold speech and silence"
    m = load(path, sr, wins.shape[1])
    assert m.inputs[0].frame_shape in ((wins.shape[1],), (1, wins.shape[1]))
    s = m.stream()
    got = np.array([np.ravel(s.step(w.reshape(m.inputs[0].frame_shape)))[0] for w in wins])
    assert max_err(got, want) < TOL
    s.reset()
    again = np.ravel(s.run(wins.reshape((-1,) + m.inputs[0].frame_shape)))
    assert max_err(again, want) < TOL


def test_silero_batch_of_streams_is_each_stream_alone(silero_dir):
    path = silero_dir / "silero_vad.onnx"
    wins = windows(16000)[:60]
    other = wins[::-1].copy()
    m = load(path, 16000, wins.shape[1])
    s = m.stream(batch=2)
    got = np.array([np.ravel(s.step(np.stack([a, b]))) for a, b in zip(wins, other)])
    assert max_err(got[:, 0], ort_probabilities(path, wins, 16000)) < TOL
    assert max_err(got[:, 1], ort_probabilities(path, other, 16000)) < TOL


def test_silero_without_sr_or_window_says_what_to_pass(silero_dir):
    with pytest.raises(edgernn.errors.UnsupportedModelError, match="constants="):
        edgernn.load(silero_dir / "silero_vad.onnx", shapes={"input": [576]})
    with pytest.raises(edgernn.errors.UnsupportedModelError, match="shapes="):
        edgernn.load(silero_dir / "silero_vad.onnx", constants={"sr": 16000})
