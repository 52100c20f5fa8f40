"""Streaming feature front ends (edgernn/io/frontend): STFT, log-mel, MFCC, normalisation, ISTFT.

Oracles, never edgernn's own outputs: numpy.fft.rfft/irfft for the transform kernel;
librosa (stft, filters.mel, power_to_db, amplitude_to_db, feature.mfcc, istft) and
scipy.signal (stft, istft, check_NOLA) for the stages, run in float64 on the real recording
(CMU ARCTIC, 16 kHz); onnxruntime on librosa's features for the command line end to end.

Tolerances: the kernels compute in float64 and round to float32 once, so each streamed
frame is held to 1e-5 of its own scale (its largest |value|: float32's epsilon is 1.2e-7, the
margin covers the float32 input); the resynthesised audio to 1e-6 absolute (samples in
[-1, 1)); the GRU driven by the features to 1e-4 (onnxruntime's float32 GRU).
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

librosa = pytest.importorskip("librosa")

from edgernn.cli import EXIT_ERROR, main  # noqa: E402
from edgernn.errors import SignalArgumentError  # noqa: E402
from edgernn.io.framing import Framer  # noqa: E402
from edgernn.io.frontend import FrontEnd, FrontEndSpec  # noqa: E402
from edgernn.io.wav import read_wav  # noqa: E402

AUDIO = Path(__file__).parent / "fixtures" / "audio" / "arctic_a0007.wav"
RATE = 16000
#: (n_fft, W, H): power-of-two FFT, a 400-point DFT (25 ms), a 400-sample window padded to 512
GEOMETRIES = [(512, 512, 128), (400, 400, 160), (512, 400, 160)]
LIBROSA_WINDOW = {"hann": "hann", "hamming": "hamming", "blackman": "blackman", "rectangular": "boxcar"}


@pytest.fixture(scope="module")
def speech():
    return read_wav(AUDIO).samples                      # float32 [64000]


def streamed(frontend, signal, blocks=(1, 7, 333, 1000, 4097)):
    """The front end's features of every window, the signal pushed in blocks of odd sizes."""
    framer, out, start, k = Framer(frontend.window_length, frontend.hop), [], 0, 0
    while start < len(signal):
        block = signal[start:start + blocks[k % len(blocks)]]
        out += [frontend.process(w).copy() for w in framer.push(block)]
        start, k = start + len(block), k + 1
    out += [frontend.process(w).copy() for w in framer.finish()]
    return np.stack(out)


def librosa_stft(signal, n_fft, win, hop, frames, window="hann"):
    """librosa's STFT (float64) of the frames the stream sees: the signal after P zeros
    (P = (n_fft - W) // 2 + W - H), zeros after it for the last padded hop."""
    lead = (n_fft - win) // 2 + win - hop
    x = np.concatenate([np.zeros(lead), signal.astype(np.float64), np.zeros(n_fft)])
    return librosa.stft(x, n_fft=n_fft, hop_length=hop, win_length=win, window=LIBROSA_WINDOW[window],
                        center=False)[:, :frames].T                               # [frames, K]


def assert_frames_close(got, want, rtol=1e-5):
    scale = np.abs(want).max(axis=1, keepdims=True)
    excess = np.abs(got - want) - rtol * scale
    assert excess.max() <= 1e-30, f"frame {int(excess.max(axis=1).argmax())}: excess {excess.max():.3g}"


# ---------------------------------------------------------------- STFT
@pytest.mark.parametrize("n_fft,win,hop", GEOMETRIES)
def test_streamed_stft_equals_librosa(speech, n_fft, win, hop):
    """Magnitude, power and complex (both layouts) spectra, streamed in odd blocks, equal
    librosa.stft(concat(zeros(P), signal), center=False) frame by frame."""
    for features, layout in (("complex", "stacked"), ("complex", "interleaved"), ("magnitude", None),
                             ("power", None)):
        fe = FrontEnd.from_options(RATE, win, hop, features=features, n_fft=n_fft,
                                   **({"complex_layout": layout} if layout else {}))
        got = streamed(fe, speech)
        assert len(got) == -(-len(speech) // hop)
        x = librosa_stft(speech, n_fft, win, hop, len(got))
        want = {"magnitude": np.abs(x), "power": np.abs(x) ** 2,
                "complex": np.concatenate([x.real, x.imag], axis=1) if layout == "stacked" else
                np.stack([x.real, x.imag], axis=2).reshape(len(x), -1)}[features]
        assert_frames_close(got, want)


@pytest.mark.parametrize("window", ["hann", "hamming", "blackman", "rectangular"])
def test_streamed_stft_equals_scipy_for_each_window(speech, window):
    """scipy.signal.stft (boundary=None, padded=False: frames at 0, H, 2H, ...) scales by
    1 / sum(window); the streamed complex spectrum times that equals it."""
    from scipy.signal import get_window, stft
    n_fft, hop = 512, 256
    fe = FrontEnd.from_options(RATE, n_fft, hop, features="complex", window=window)
    got = streamed(fe, speech)
    x = np.concatenate([np.zeros(n_fft - hop), speech.astype(np.float64), np.zeros(n_fft)])
    w = get_window(LIBROSA_WINDOW[window], n_fft)
    _, _, z = stft(x, RATE, window=w, nperseg=n_fft, noverlap=n_fft - hop, boundary=None, padded=False)
    z = z[:, :len(got)].T * w.sum()
    assert_frames_close(got, np.concatenate([z.real, z.imag], axis=1))


def test_half_overlap_frames_equal_librosa_centered_default(speech):
    """W = n_fft and H = n_fft / 2: P = n_fft / 2, so the streamed frames are librosa's
    default center=True frames (pad_mode 'constant')."""
    fe = FrontEnd.from_options(RATE, 512, 256, features="power")
    got = streamed(fe, speech)
    want = np.abs(librosa.stft(speech.astype(np.float64), n_fft=512, hop_length=256, pad_mode="constant")) ** 2
    assert want.shape[1] == len(got) + 1                   # center=True's last frame: the end's padding
    assert_frames_close(got, want.T[:len(got)])


# ---------------------------------------------------------------- log-mel, MFCC
def librosa_mel(speech, n_fft, win, hop, frames, n_mels, scale, norm, spectrum, fmin=0.0, fmax=None):
    x = np.abs(librosa_stft(speech, n_fft, win, hop, frames).T) ** (2 if spectrum == "power" else 1)
    basis = librosa.filters.mel(sr=RATE, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=scale == "htk",
                                norm="slaney" if norm == "slaney" else None, dtype=np.float64)
    return basis @ x                                        # [n_mels, frames]


@pytest.mark.parametrize("scale", ["slaney", "htk"])
@pytest.mark.parametrize("norm", ["slaney", "none"])
@pytest.mark.parametrize("spectrum", ["power", "magnitude"])
def test_streamed_logmel_equals_librosa(speech, scale, norm, spectrum):
    """Mel energies, and log-mel with each log: dB (librosa.power_to_db / amplitude_to_db,
    ref=1, top_db=None), ln(x + 1e-6) and log10(x + 1e-3) over librosa's filterbank."""
    n_fft, win, hop, n_mels = 512, 400, 160, 40
    common = dict(n_fft=n_fft, n_mels=n_mels, mel_scale=scale, mel_norm=norm, mel_spectrum=spectrum, fmin=20.0,
                  fmax=7600.0)
    mel = None
    to_db = librosa.power_to_db if spectrum == "power" else librosa.amplitude_to_db
    for features, log, extra, oracle in (
            ("mel", None, {}, lambda m: m),
            ("logmel", "db", {}, lambda m: to_db(m, ref=1.0, top_db=None)),
            ("logmel", "ln", {}, lambda m: np.log(m + 1e-6)),
            ("logmel", "log10", {"log_offset": 1e-3}, lambda m: np.log10(m + 1e-3))):
        fe = FrontEnd.from_options(RATE, win, hop, features=features, log=log, **common, **extra)
        got = streamed(fe, speech)
        if mel is None:
            mel = librosa_mel(speech, n_fft, win, hop, len(got), n_mels, scale, norm, spectrum, 20.0, 7600.0)
        assert_frames_close(got, oracle(mel).T)


@pytest.mark.parametrize("n_fft,win,hop,log,scale,norm", [(512, 400, 160, "db", "slaney", "slaney"),
                                                          (400, 400, 160, "ln", "htk", "none")])
def test_streamed_mfcc_equals_librosa(speech, n_fft, win, hop, log, scale, norm):
    """librosa.feature.mfcc(S=log-mel, n_mfcc=13, norm='ortho'): with librosa's defaults but
    top_db (power_to_db), and torchaudio's MFCC(log_mels=True) convention (ln(x + 1e-6), HTK
    scale, no norm)."""
    fe = FrontEnd.from_options(RATE, win, hop, features="mfcc", n_fft=n_fft, n_mels=40, n_mfcc=13, log=log,
                               mel_scale=scale, mel_norm=norm)
    got = streamed(fe, speech)
    mel = librosa_mel(speech, n_fft, win, hop, len(got), 40, scale, norm, "power")
    logmel = librosa.power_to_db(mel, top_db=None) if log == "db" else np.log(mel + 1e-6)
    assert_frames_close(got, librosa.feature.mfcc(S=logmel, n_mfcc=13, dct_type=2, norm="ortho").T)


def training_statistics(speech):
    """Per-feature mean and std of librosa's 40-band log-mel of the recording (float64 [40] each)."""
    mel = librosa_mel(speech, 512, 400, 160, -(-len(speech) // 160), 40, "slaney", "slaney", "power")
    logmel = librosa.power_to_db(mel, top_db=None).T
    return logmel, logmel.mean(axis=0), logmel.std(axis=0)


@pytest.mark.parametrize("kind", ["npy", "npz", "json"])
def test_normalised_logmel_equals_librosa_standardised(speech, tmp_path, kind):
    from edgernn.io.frontend.normalize import load_statistics
    logmel, mean, std = training_statistics(speech)
    path = tmp_path / f"stats.{kind}"
    if kind == "npy":
        np.save(path, np.stack([mean, std]))
    elif kind == "npz":
        np.savez(path, mean=mean, std=std)
    else:
        path.write_text(json.dumps({"mean": mean.tolist(), "std": std.tolist()}))
    m, s = load_statistics(path)
    fe = FrontEnd.from_options(RATE, 400, 160, n_fft=512, n_mels=40, mean=m, std=s)
    assert_frames_close(streamed(fe, speech), (logmel - mean) / std, rtol=1e-4)   # (x - mean) / std: x to 1e-5


def test_parameters_round_trip_through_json(speech):
    fe = FrontEnd.from_options(RATE, 400, 160, features="mfcc", n_fft=512, n_mels=40, n_mfcc=13, log="ln",
                               mel_scale="htk", mean=np.zeros(13), std=np.full(13, 2.0))
    d = json.loads(json.dumps(fe.to_dict()))
    assert d["log_offset"] == 1e-6 and d["amin"] is None and d["version"] == 1
    again = FrontEnd.from_dict(d)
    window = speech[16000:16400]
    assert np.array_equal(again.process(window), fe.process(window).copy())
    assert FrontEndSpec.from_dict(d).to_dict() == d


# ---------------------------------------------------------------- ISTFT
@pytest.mark.parametrize("n_fft,win,hop", GEOMETRIES + [(512, 320, 160)])
def test_streamed_istft_equals_librosa_istft(speech, n_fft, win, hop):
    """Spectra changed by random gains, resynthesised step by step (H samples each, then
    finish()), equal librosa.istft(center=False) of the same spectra."""
    fe = FrontEnd.from_options(RATE, win, hop, features="complex", n_fft=n_fft, synthesis="spectrum")
    spectra = streamed(fe, speech)
    k = n_fft // 2 + 1
    gains = np.random.default_rng(0).uniform(0.2, 1.5, spectra.shape[0] * k).reshape(-1, k)
    changed = (spectra * np.concatenate([gains, gains], axis=1)).astype(np.float32)
    fe.reset()
    got = np.concatenate([fe.synthesize(y).copy() for y in changed] + [fe.finish()])
    y = changed[:, :k].astype(np.float64) + 1j * changed[:, k:]
    want = librosa.istft(y.T, hop_length=hop, win_length=win, n_fft=n_fft, window="hann", center=False)
    assert len(got) == len(want) and np.abs(got - want).max() <= 1e-6


@pytest.mark.filterwarnings("ignore:NOLA condition failed")   # scipy: the window's first 0 at the very start
def test_streamed_istft_equals_scipy_istft(speech):
    from scipy.signal import get_window, istft
    fe = FrontEnd.from_options(RATE, 512, 128, features="complex", synthesis="spectrum")
    spectra = streamed(fe, speech)
    fe.reset()
    got = np.concatenate([fe.synthesize(y).copy() for y in spectra] + [fe.finish()])
    z = (spectra[:, :257].astype(np.float64) + 1j * spectra[:, 257:]).T / get_window("hann", 512).sum()
    _, want = istft(z, RATE, window="hann", nperseg=512, noverlap=512 - 128, boundary=False)
    assert len(got) == len(want) and np.abs(got - want).max() <= 1e-6


@pytest.mark.parametrize("window,win,hop", [("hann", 512, 512), ("hann", 512, 256), ("hann", 400, 399),
                                             ("rectangular", 400, 400), ("hamming", 512, 512),
                                             ("blackman", 512, 512), ("blackman", 512, 300)])
def test_synthesis_is_refused_exactly_where_scipy_check_nola_fails(window, win, hop):
    from scipy.signal import check_NOLA
    invertible = check_NOLA(LIBROSA_WINDOW[window], win, win - hop)
    try:
        FrontEnd.from_options(RATE, win, hop, features="power", window=window, synthesis="mask")
        refused = False
    except SignalArgumentError as e:
        refused = "use a smaller --hop" in str(e)
    assert refused == (not invertible)


@pytest.mark.parametrize("synthesis,n_fft,win,hop", [("mask", 512, 512, 128), ("complex_mask", 400, 400, 160),
                                                     ("mask", 512, 400, 160)])
def test_identity_mask_gives_back_the_signal_after_the_latency(speech, synthesis, n_fft, win, hop):
    """STFT -> identity mask -> ISTFT: the output is the input delayed by P = (n_fft - W) // 2
    + W - H samples (the zeros of context first)."""
    fe = FrontEnd.from_options(RATE, win, hop, features="power", n_fft=n_fft, synthesis=synthesis,
                               complex_layout="interleaved")
    k = n_fft // 2 + 1
    identity = np.ones(k, np.float32) if synthesis == "mask" else np.tile(np.float32([1, 0]), k)
    framer, out = Framer(win, hop), []
    for w in np.concatenate([framer.push(speech), framer.finish()]):
        fe.process(w)
        out.append(fe.synthesize(identity).copy())
    y = np.concatenate(out + [fe.finish()])
    p = fe.latency
    assert p == (n_fft - win) // 2 + win - hop
    assert np.abs(y[:p]).max() <= 1e-6 and np.abs(y[p:p + len(speech)] - speech).max() <= 1e-6


# ---------------------------------------------------------------- edgernn stream
def write_gru(path, inputs, hidden, seed=0):
    """An ONNX GRU [T, 1, inputs] -> [T, 1, 1, hidden] with seeded random weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    weights = [numpy_helper.from_array((rng.standard_normal(shape) * s).astype(np.float32), name)
               for name, shape, s in (("W", (1, 3 * hidden, inputs), 0.1), ("R", (1, 3 * hidden, hidden), 0.3),
                                      ("B", (1, 6 * hidden), 0.1))]
    graph = helper.make_graph(
        [helper.make_node("GRU", ["features", "W", "R", "B"], ["h"], hidden_size=hidden, linear_before_reset=1)],
        "gru", [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["T", 1, inputs])],
        [helper.make_tensor_value_info("h", TensorProto.FLOAT, ["T", 1, 1, hidden])], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def write_ones_mask(path, bins):
    """A stateless step model: spectrum [1, bins] -> mask = spectrum * 0 + 1 (all ones)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    consts = [numpy_helper.from_array(np.full((1, bins), v, np.float32), name) for name, v in (("zero", 0), ("one", 1))]
    graph = helper.make_graph(
        [helper.make_node("Mul", ["spectrum", "zero"], ["nothing"]), helper.make_node("Add", ["nothing", "one"],
                                                                                      ["mask"])],
        "ones", [helper.make_tensor_value_info("spectrum", TensorProto.FLOAT, [1, bins])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, bins])], consts)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


@pytest.fixture(scope="module")
def gru_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "gru.onnx"
    write_gru(path, 40, 8)
    return path


def test_cli_logmel_stream_equals_onnxruntime_on_librosa_features(speech, gru_path, tmp_path):
    """`edgernn stream gru.onnx arctic.wav --features logmel ... --normalize stats.npz --jsonl -`
    against onnxruntime running the GRU over librosa's normalised log-mel of the same frames."""
    import onnxruntime as ort
    logmel, mean, std = training_statistics(speech)
    stats = tmp_path / "stats.npz"
    np.savez(stats, mean=mean, std=std)
    r = subprocess.run([sys.executable, "-m", "edgernn", "stream", str(gru_path), str(AUDIO), "--window", "400",
                        "--hop", "160", "--n-fft", "512", "--features", "logmel", "--n-mels", "40", "--normalize",
                        str(stats), "--jsonl", "-"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    features = ((logmel - mean) / std).astype(np.float32)
    assert [row["step"] for row in rows] == list(range(len(features)))
    assert np.allclose([row["t"] for row in rows], (np.arange(len(rows)) + 1) * 160 / RATE)
    sess = ort.InferenceSession(str(gru_path), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"features": features[:, None, :]})[0].reshape(len(features), -1)
    got = np.array([row["h"] for row in rows])
    assert np.abs(got - want).max() < 1e-4
    assert "of which the front end" in r.stderr and "step latency" in r.stderr


def test_cli_wav_out_with_an_all_ones_mask_gives_back_the_input(tmp_path):
    """--wav-out with a model whose mask is all ones: the WAV written equals the input, sample
    for sample (16-bit, aligned: the latency removed), as scipy reads both."""
    from scipy.io import wavfile
    write_ones_mask(tmp_path / "ones.onnx", 257)
    out = tmp_path / "out.wav"
    r = subprocess.run([sys.executable, "-m", "edgernn", "stream", str(tmp_path / "ones.onnx"), str(AUDIO), "--step",
                        "--window", "400", "--hop", "160", "--n-fft", "512", "--features", "power", "--wav-out",
                        str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rate_in, want = wavfile.read(AUDIO)
    rate_out, got = wavfile.read(out)
    assert rate_out == rate_in and got.dtype == np.int16 and np.array_equal(got, want)


# ---------------------------------------------------------------- what is refused
REFUSED = [
    (dict(win_length=512, hop=128, n_fft=256), "shorter than the window"),
    (dict(win_length=400, hop=160, n_fft=5000, features="power"), "not a power of two"),
    (dict(win_length=256, hop=128, n_mels=128), "--n-mels"),                        # 129 bins, 128 filters
    (dict(win_length=512, hop=128, fmax=9000.0), "above the Nyquist"),
    (dict(win_length=512, hop=128, fmin=4000.0, fmax=3000.0), "fmin < fmax"),
    (dict(win_length=512, hop=128, mel_scale="bark"), "unknown mel scale"),
    (dict(win_length=512, hop=128, mel_norm="area"), "unknown mel norm"),
    (dict(win_length=512, hop=128, window="kaiser"), "unknown window"),
    (dict(win_length=512, hop=128, features="cqt"), "unknown features"),
    (dict(win_length=512, hop=128, top_db=80.0), "top_db cannot stream"),
    (dict(win_length=512, hop=128, log="log2"), "unknown log"),
    (dict(win_length=512, hop=128, features="complex", log="ln"), "no log"),
    (dict(win_length=512, hop=128, features="logmel", log="none"), "--features mel"),
    (dict(win_length=512, hop=128, log="ln", log_offset=0.0), "positive"),
    (dict(win_length=512, hop=128, log="ln", amin=1e-10), "--amin applies to --log db"),
    (dict(win_length=512, hop=128, features="mfcc", n_mels=20, n_mfcc=30), "at most as many"),
    (dict(win_length=512, hop=128, n_mels=40, mean=np.zeros(39), std=np.ones(39)), "gives 40 values"),
    (dict(win_length=512, hop=128, n_mels=4, mean=[0, 0, np.nan, 0], std=[1, 1, 1, 1]), "not finite"),
    (dict(win_length=512, hop=128, n_mels=4, mean=[0, 0, 0, 0], std=[1, 0, 1, 1]), "every std must be positive"),
    (dict(win_length=512, hop=512, features="power", synthesis="mask"), "use a smaller --hop"),
    (dict(win_length=512, hop=600), "longer than the window"),
]


@pytest.mark.parametrize("options,message", REFUSED)
def test_settings_that_cannot_work_are_typed_errors(options, message):
    with pytest.raises(SignalArgumentError, match=message.replace("(", r"\(")):
        FrontEnd.from_options(RATE, **options)


def test_statistics_files_that_cannot_be_read_are_typed_errors(tmp_path):
    from edgernn.io.frontend.normalize import load_statistics
    (tmp_path / "a.npy").write_bytes(b"not numpy")
    np.save(tmp_path / "b.npy", np.zeros(3))
    (tmp_path / "c.json").write_text('{"mean": [1]}')
    for name, message in (("a.npy", "cannot be read"), ("b.npy", r"shape \(3,\)"), ("c.json", "cannot be read"),
                          ("missing.npz", "no file"), ("d.csv", "unknown file type")):
        with pytest.raises(SignalArgumentError, match=message):
            load_statistics(tmp_path / name)


def test_cli_refusals_say_what_to_do(gru_path, tmp_path, capsys):
    np.save(tmp_path / "short.npy", np.stack([np.zeros(39), np.ones(39)]))
    base = ["stream", str(gru_path), str(AUDIO), "--window", "400", "--hop", "160", "--n-fft", "512"]
    for extra, message in ((["--features", "logmel", "--n-mels", "64"], "takes 40 values per step"),
                           (["--features", "logmel", "--n-mels", "64"], "pass --n-mels 40"),
                           (["--features", "logmel", "--n-mels", "40", "--top-db", "80"], "top_db cannot stream"),
                           (["--features", "logmel", "--n-mels", "40", "--fmax", "9000"], "--fmax 8000 or less"),
                           (["--features", "logmel", "--n-mels", "40", "--normalize", str(tmp_path / "short.npy")],
                            "gives 40 values"),
                           (["--features", "logmel", "--n-mels", "40", "--wav-out", str(tmp_path / "x.wav")],
                            "takes 257 values per step"),
                           (["--wav-out", str(tmp_path / "x.wav")], "needs a front end: pass --features")):
        assert main(base + extra) == EXIT_ERROR
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "x.wav").exists()
    with pytest.raises(SystemExit):
        main(base + ["--features", "logmel", "--mel-scale", "bark"])
    assert "invalid choice: 'bark'" in capsys.readouterr().err


def test_device_runtime_imports_no_librosa_or_scipy():
    """The front end's modules import neither (numba itself loads a few scipy modules when scipy
    is installed, more when it compiles: those are not the front end's), and running it loads
    no librosa."""
    code = ("import sys, numba; before = set(sys.modules); "
            "import edgernn.io.frontend, edgernn.io.run, edgernn.io.wav_out; "
            "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in ('librosa', 'scipy'))); "
            "from edgernn.io.frontend import FrontEnd; FrontEnd.from_options(16000, 400, 160, n_mels=40).warm_up(); "
            "print('librosa' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["[]", "False"]
