"""edgernn.profile and `edgernn profile`: the figures are computed from the samples they claim,
the breakdown loop runs the real program, ORT comparisons carry state correctly, and bad
arguments give typed errors. No test asserts on how long anything takes.

Oracles: numpy recomputation of the statistics from the raw samples, hand counts of the
example model's state, and ONNX Runtime for the outputs of the compiled breakdown loop and of
the state-fed comparison.
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import edgernn
from edgernn.cli import main
from edgernn.profile import ProfileArgumentError, latency_stats, parse_period
from edgernn.units import PeriodError

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "kws_lstm.onnx"
FIXTURES = ROOT / "tests" / "fixtures" / "onnx"
STATEFUL = FIXTURES / "lstm_l2_bf_state_lnrelu_ts.onnx"   # h0, c0 -> hT, cT


@pytest.fixture(scope="module")
def kws():
    return edgernn.load(str(MODEL))


@pytest.fixture(scope="module")
def result(kws):
    return edgernn.profile(kws, period="10ms", frames=400, warmup=30)


# ---------------------------------------------------------------- period strings
@pytest.mark.parametrize("text, seconds", [
    ("10ms", 0.01), ("10 ms", 0.01), ("0.01s", 0.01), ("500us", 5e-4), ("500µs", 5e-4),
    ("100Hz", 0.01), ("16kHz", 1 / 16000), ("2.5e-3s", 2.5e-3), (0.02, 0.02), (None, None)])
def test_parse_period(text, seconds):
    assert parse_period(text) == pytest.approx(seconds) if seconds else parse_period(text) is None


@pytest.mark.parametrize("bad", ["10", "ten ms", "10 parsecs", "-5ms", "0ms", 0, -1.0, "ms", "-0.01", float("nan")])
def test_bad_period_is_a_typed_error(bad):
    with pytest.raises(PeriodError, match="period"):
        parse_period(bad)


@pytest.mark.parametrize("bad", ["-5ms", "0ms", "-0.01", 0, -1.0, "0Hz"])
def test_a_period_not_above_zero_must_be_positive(bad):
    with pytest.raises(PeriodError, match="must be positive"):
        parse_period(bad)


def test_one_period_parser():
    """profile, convert and the CLI share edgernn.units.parse_period (convert had its own, without Hz)."""
    import edgernn.cli
    import edgernn.convert
    import edgernn.units
    assert parse_period is edgernn.units.parse_period is edgernn.convert.parse_period is edgernn.cli.parse_period


def test_profile_takes_the_period_the_file_stores(kws):
    m = edgernn.load(str(MODEL))
    m.metadata["model.frame_period_s"] = 0.02               # what an .ernn file's metadata gives
    r = edgernn.profile(m, frames=20, warmup=0, breakdown=False)
    assert r.period_us == pytest.approx(20_000) and r.deadline_misses == 0
    assert r.period_source == "model.frame_period_s" and "model.frame_period_s" in r.report()
    r = edgernn.profile(m, period="5ms", frames=20, warmup=0, breakdown=False)
    assert r.period_us == pytest.approx(5_000) and r.period_source == "argument"
    m.metadata["model.frame_period_s"] = -1.0               # a forged file
    with pytest.raises(PeriodError, match="stored"):
        edgernn.profile(m, frames=20, warmup=0, breakdown=False)


# ---------------------------------------------------------------- the figures
def test_statistics_are_those_of_the_samples(result):
    us = result.latency_ns / 1e3
    assert us.shape == (400,)
    for key, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p99_9", 99.9)):
        assert result.latency_us[key] == pytest.approx(np.percentile(us, q))
    assert result.latency_us["max"] == pytest.approx(us.max())
    assert result.latency_us["p50"] <= result.latency_us["p90"] <= result.latency_us["p99"] \
        <= result.latency_us["p99_9"] <= result.latency_us["max"]
    assert result.jitter_us == pytest.approx(np.percentile(us, 99) - np.percentile(us, 50))
    assert result.deadline_misses == int((us > 10_000).sum())
    assert result.real_time_factor == pytest.approx(us.mean() / 10_000)
    assert result.warmup["steps"] == 30 and result.warmup["max_us"] >= result.warmup["p50_us"] > 0
    assert result.compile_ms > 0


def test_memory_figures(result, kws):
    m = result.memory
    assert m["state_bytes_per_stream"] == 2 * 2 * 64 * 4     # 2 layers x (h, c) x 64 float32
    # weights: every float of W, R and the summed biases of both LSTMs and the head, counted by
    # hand; the head's 12 outputs sit in one 16-wide panel (ops/matvec.py), zero-padded
    floats = (256 * (40 + 64) + 256) + (256 * (64 + 64) + 256) + (16 * 64 + 12)
    assert 4 * floats <= m["weight_bytes"] < 4 * floats + 3 * 16 * 4   # + 16-float alignment per chunk
    assert m["arena_bytes"] >= m["weight_bytes"] + m["work_arena_bytes_per_stream"]
    assert m["peak_rss_bytes"] is None or m["peak_rss_bytes"] > m["arena_bytes"]


def test_json_holds_the_report_figures(result, tmp_path):
    path = tmp_path / "p.json"
    text = result.to_json(path)
    d = json.loads(path.read_text())
    assert d == json.loads(text)
    assert d["latency_us"]["p50"] == pytest.approx(result.latency_us["p50"])
    assert d["deadline_misses"] == result.deadline_misses
    assert "latency_ns" not in d
    assert len(json.loads(result.to_json(samples=True))["latency_ns"]) == 400
    assert f"{result.latency_us['p50']:.1f}" in result.report()


def test_no_period_no_deadline_figures(kws):
    r = edgernn.profile(kws, frames=50, warmup=0, breakdown=False)
    assert r.period_us is None and r.deadline_misses is None and r.real_time_factor is None
    assert r.breakdown is None and r.warmup == {"steps": 0}
    assert "deadline" not in r.report()


def test_batch_and_given_inputs(kws):
    frames = np.random.default_rng(3).standard_normal((20, 4, 40)).astype(np.float32)
    r = edgernn.profile(kws, frames=60, warmup=5, batch=4, inputs=frames, breakdown=False)
    assert r.batch == 4 and r.latency_ns.shape == (60,)
    assert r.memory["arena_bytes"] >= 4 * r.memory["work_arena_bytes_per_stream"]


# ---------------------------------------------------------------- breakdown
def test_breakdown_covers_every_program_row(result, kws):
    bd = result.breakdown
    assert sum(g["program_rows"] for g in bd["rows"]) == kws.plan.prog.shape[0]
    assert {g["node"] for g in bd["rows"]} == set(kws.plan.row_nodes)
    assert sum(g["flops"] for g in bd["rows"]) == kws.flops_per_step()
    assert bd["whole_us"] > 0 and bd["call_overhead_us"] > 0
    assert bd["distortion"] == pytest.approx(bd["sum_us"] / bd["whole_us"] - 1)
    assert bd["unattributed_us"] == pytest.approx(bd["step_p50_us"] - bd["call_overhead_us"] - bd["whole_us"])


def test_breakdown_loop_runs_the_real_program(kws):
    """One pass of the compiled timing loop over a fresh arena gives ONNX Runtime's output for
    the first frame (the example's state is implicit, so ORT starts from zero state too)."""
    ort = pytest.importorskip("onnxruntime")
    from edgernn.breakdown import _execute_args, _repeat
    p = kws.plan
    x = np.random.default_rng(5).standard_normal(40).astype(np.float32)
    work = np.zeros((1, p.work_size), np.float32)
    work[0, p.state_offset:p.state_offset + p.state_init.size] = p.state_init
    (inp,), (out,) = p.inputs, p.outputs
    work[0, inp.offset:inp.offset + inp.size] = x
    _repeat(1, _execute_args(p, p.prog, work))
    sess = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    want = sess.run(None, {name: x.reshape(1, 1, 40)})[0].ravel()
    np.testing.assert_allclose(work[0, out.offset:out.offset + out.size], want, atol=1e-5)


# ---------------------------------------------------------------- compare
def test_compare_feeds_state_back_like_streaming():
    pytest.importorskip("onnxruntime")
    r = edgernn.profile(str(STATEFUL), frames=120, warmup=7, compare=True, breakdown=False)
    ort_run = next(c for c in r.compare if c.get("variant") == "1 frame per call")
    assert "fed back" in ort_run["mode"]
    assert ort_run["latency_ns"].shape == (120,)
    assert ort_run["max_abs_diff"] is not None and ort_run["max_abs_diff"] < 1e-4
    chunked = next(c for c in r.compare if c.get("variant") == "100 frames per call")
    assert "fed back" in chunked["mode"] and chunked["max_abs_diff"] < 1e-4
    lite = next(c for c in r.compare if c["runtime"] == "litert")
    assert "tflite" in lite["skipped"]
    assert "onnxruntime" in r.report()


def test_compare_labels_a_fresh_state_run(result, kws):
    pytest.importorskip("onnxruntime")
    r = edgernn.profile(kws, frames=50, warmup=2, compare=True, breakdown=False)
    ort_run = next(c for c in r.compare if c.get("variant") == "1 frame per call")
    assert "FRESH" in ort_run["mode"] and ort_run["max_abs_diff"] is None
    assert "not comparable" in r.report()
    # within one 100-frame call ORT carries the state itself: the first 64 frames must match
    chunked = next(c for c in r.compare if c.get("variant") == "100 frames per call")
    assert chunked["max_abs_diff"] is not None and chunked["max_abs_diff"] < 1e-4


def test_compare_skips_a_fixed_length_export_with_the_reason():
    pytest.importorskip("onnxruntime")
    r = edgernn.profile(str(FIXTURES / "lstm_l2_bf_state_lnrelu_dy.onnx"), frames=20, warmup=0,
                        compare=True, breakdown=False)
    ort_runs = [c for c in r.compare if c["runtime"] == "onnxruntime"]
    assert ort_runs and all("Expected" in c["skipped"] and "\n" not in c["skipped"] for c in ort_runs)


# ---------------------------------------------------------------- progress and errors
def test_progress_bar_on_stderr(kws, capsys):
    edgernn.profile(kws, frames=2500, warmup=0, breakdown=False, progress=True)
    err = capsys.readouterr().err
    assert "profiling [" in err and err.rstrip().endswith("2500/2500")


@pytest.mark.parametrize("kwargs, match", [
    (dict(frames=0), "frames"), (dict(frames=2.5), "frames"), (dict(frames=True), "frames"),
    (dict(batch=0), "batch"), (dict(warmup=-1), "warmup"),
    (dict(inputs=np.zeros((5, 39), np.float32)), "inputs"),
    (dict(inputs=[np.zeros((5, 40), np.float32)] * 2), "inputs")])
def test_bad_arguments_are_typed_errors(kws, kwargs, match):
    with pytest.raises(ProfileArgumentError, match=match):
        edgernn.profile(kws, **kwargs)


def test_bad_period_fails_before_the_run():
    with pytest.raises(PeriodError, match="period"):
        edgernn.profile("no/such/model.onnx", period="fast")


def test_unknown_device_fails_before_the_run():
    from edgernn.devices import DeviceProfileError
    with pytest.raises(DeviceProfileError, match="rpi4"):   # the message lists the known devices
        edgernn.profile("no/such/model.onnx", device="cray-1")


def test_plot_without_matplotlib_is_a_typed_error(result, tmp_path, monkeypatch):
    from edgernn.plot import PlotUnavailableError
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PlotUnavailableError, match="pip install"):
        result.plot(tmp_path / "x.png")


def test_plot_writes_a_png(result, tmp_path):
    pytest.importorskip("matplotlib")
    path = result.plot(tmp_path / "p.png")
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def with_device(result):
    """The profile result as --device gives it: a prediction far from the host's samples."""
    import dataclasses
    return dataclasses.replace(result, device={"device": "rpi4", "title": "Raspberry Pi 4 Model B",
                                               "warm_us": 300.0, "cold_us": 2500.0})


def test_plot_draws_the_device_prediction(with_device):
    pytest.importorskip("matplotlib")
    from edgernn.plot import profile_figure
    fig = profile_figure(with_device)
    for ax in fig.axes:
        labels = [ln.get_label() for ln in ax.get_lines()]
        assert any("rpi4 predicted" in lb and "300" in lb for lb in labels), labels
        assert any("rpi4 predicted" in lb and "2500" in lb for lb in labels), labels
        lo, hi = ax.get_xlim() if ax is fig.axes[0] else ax.get_ylim()
        assert lo < 300 and 2500 < hi                        # inside the drawn range
    import matplotlib.pyplot as plt
    plt.close(fig)


@pytest.mark.parametrize("device", [False, True])
def test_plot_legend_does_not_cover_the_deadline(result, with_device, device):
    pytest.importorskip("matplotlib")
    from edgernn.plot import profile_figure
    fig = profile_figure(with_device if device else result)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        deadline = [ln for ln in ax.get_lines() if ln.get_label().startswith("deadline")]
        legend = ax.get_legend()
        assert deadline and legend is not None
        box = legend.get_window_extent(renderer)
        for ln in deadline:
            assert not box.overlaps(ln.get_window_extent(renderer)), (box, ln.get_window_extent(renderer))
        assert box.x0 >= ax.get_window_extent(renderer).x1          # beside the panel, over no sample either
    import matplotlib.pyplot as plt
    plt.close(fig)


# ---------------------------------------------------------------- command line
def test_cli_profile_prints_and_writes(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["profile", str(MODEL), "--period", "10ms", "--frames", "300", "--warmup", "10",
                 "--device", "rpi4", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    d = json.loads(out.read_text())
    assert f"{d['latency_us']['p50']:.1f}" in text
    assert d["frames"] == 300 and d["device"]["device"] == "rpi4"
    for needle in ("p99.9", "deadline misses", "per-op breakdown", "distortion", "prediction for Raspberry Pi 4"):
        assert needle in text


@pytest.mark.parametrize("argv, match", [
    (["--period", "10 parsecs"], "period"),
    (["--device", "cray-1"], "unknown device"),
    (["--json", "/no/such/dir/p.json"], "directory"),
    (["--batch", "0"], "batch")])
def test_cli_profile_errors_exit_2(capsys, argv, match):
    assert main(["profile", str(MODEL), "--frames", "10"] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgernn: error: ") and match in err and "Traceback" not in err


def test_latency_stats_of_known_samples():
    s = latency_stats(np.array([1000, 2000, 3000, 4000], np.int64))
    assert s["p50"] == 2.5 and s["max"] == 4.0 and s["min"] == 1.0 and s["mean"] == 2.5


def test_compare_a_batch_on_a_file_that_fixes_batch_one():
    """The torchscript fixture declares batch 1: ORT then runs one call per stream and step,
    each with its own state fed back, and must still match edgernn's batched streams."""
    pytest.importorskip("onnxruntime")
    r = edgernn.profile(str(STATEFUL), batch=3, frames=80, warmup=5, compare=True, breakdown=False)
    ort_run = next(c for c in r.compare if c.get("variant") == "1 frame per call")
    assert "3 calls per step" in ort_run["mode"] and "fed back" in ort_run["mode"]
    assert ort_run["max_abs_diff"] < 1e-4
