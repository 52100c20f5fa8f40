"""Device profiles and the latency prediction.

The prediction is checked on made-up profiles whose answer is known by construction (a device
twice as fast in every respect predicts half the time; terms worked out by hand from the
formula), every shipped profile is checked for a source behind every number, the workload
is checked against the model's own matrices, and the probes the host calibration times are
checked against NumPy.
"""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from edgernn.devices import (ACTIVATION, MATVEC_F32, MATVEC_F32_ROWS, MATVEC_INT8, MATVEC_INT8_ROWS, REQUIRED,
                             Device, DeviceProfileError, Workload, _probe_model, available_devices, device_from_dict, load_device,
                             predict, workload_of)

DEVICES = Path(__file__).resolve().parents[1] / "edgernn" / "device_profiles"     # shipped in the package
SHIPPED = sorted(DEVICES.glob("*.json"))
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "onnx"


def made_up(name, clock=1.0, dram=2.0, llc=512, **over):
    """A spec-sheet profile of a NEON core; `over` replaces any fact."""
    facts = dict(clock_ghz=clock, simd_lanes=4, issue_width=3, vec_fp_per_cycle=1, vec_cvt_per_cycle=0.5,
                 fdiv_cycles=8, vec_loads_per_cycle=1, vec_stores_per_cycle=0.5, scalar_cycle_ratio=2.0,
                 dram_read_gbs=dram, llc_kib=llc)
    facts.update(over)
    return device_from_dict({"name": name, "sources": {"s": {"title": "made up", "url": "https://example.org"}},
                             "facts": {k: {"value": v, "source": "s"} for k, v in facts.items()}})


HOST = Device("host", "made-up host", {k: {"value": v, "source": "measured: test"} for k, v in
                                       dict(matvec_gflops=20.0, matvec_gflops_int8=25.0, act_ns=0.5, clock_ghz=3.0,
                                            call_overhead_us=2.0, dram_read_gbs=20.0, llc_kib=32768).items()})
KWS = Workload(flops=121_600, weight_bytes=242_752, work_bytes=5_376, macs_f32=60_160, acts=640)
KWS_INT8 = Workload(flops=121_600, weight_bytes=66_432, work_bytes=5_376, macs_int8=60_160, acts=640)
BIG = Workload(flops=2 * 4 * 512 * 1024, weight_bytes=4 * 4 * 512 * 1024, work_bytes=40_000,
               macs_f32=4 * 512 * 1024)                                    # 8 MiB of weights


def with_batch(w, batch):
    return Workload(w.flops, w.weight_bytes, w.work_bytes, batch, w.macs_f32, w.macs_int8, w.acts, w.macs_act)


# ---------------------------------------------------------------- the model
@pytest.mark.parametrize("work", [KWS, KWS_INT8, BIG, with_batch(KWS, 8)])
def test_twice_as_fast_predicts_half_the_time(work):
    slow = made_up("slow", clock=1.0, dram=2.0)
    fast = made_up("fast", clock=2.0, dram=4.0)
    a, b = predict(slow, work, HOST), predict(fast, work, HOST)
    for key in ("warm_us", "cold_us", "compute_us", "overhead_us", "memory_us"):
        assert b[key] == pytest.approx(a[key] / 2, rel=1e-12), key
    wide = made_up("wide", clock=1.0, dram=4.0, issue_width=6, vec_fp_per_cycle=2, vec_cvt_per_cycle=1,
                   fdiv_cycles=4, vec_loads_per_cycle=2, vec_stores_per_cycle=1, scalar_cycle_ratio=1.0)
    assert predict(wide, work, HOST)["cold_us"] == pytest.approx(a["cold_us"] / 2, rel=1e-12)


def test_terms_by_hand():
    d = made_up("d", clock=1.5, dram=3.0, llc=1024)
    # float32 loop per vector: max(1.06 fp / 1, max(1 load / 1, 0 stores / 0.5), 1.75 insts / 3)
    assert d.loop_cycles(MATVEC_F32) == pytest.approx(1.06)
    # int8: 2.19 fp / 1 + 1 cvt / 0.5 = 4.19 cycles; activation: 25 fp / 1 + 1 div * 8 = 33 cycles
    assert d.loop_cycles(MATVEC_INT8) == pytest.approx(4.19)
    assert d.loop_cycles(ACTIVATION) == pytest.approx(33.0)
    p = predict(d, KWS, HOST, period_s=0.01)
    assert p["matvec_gflops"] == pytest.approx(1.5 * 8 / 1.06)            # 4 MACs per vector: 11.3 GFLOP/s
    assert p["matvec_us"] == pytest.approx(2 * 60_160 / (1.5e9 * 8 / 1.06) * 1e6)
    assert p["act_us"] == pytest.approx(640 * 33 / 4 / 1.5e9 * 1e6)
    assert p["elementwise_us"] == pytest.approx((121_600 - 2 * 60_160 - 640) / (1.5e9 * 4) * 1e6)
    assert p["compute_us"] == pytest.approx(p["matvec_us"] + p["act_us"] + p["elementwise_us"])
    assert p["memory_us"] == pytest.approx((242_752 + 5_376) / 3e9 * 1e6)
    assert p["overhead_us"] == pytest.approx(2.0 * 3.0 / 1.5 * 2.0)     # host overhead x clock ratio x ratio
    assert p["fits_in_cache"] and p["warm_us"] == pytest.approx(p["overhead_us"] + p["compute_us"])
    assert p["cold_us"] == pytest.approx(p["overhead_us"] + max(p["compute_us"], p["memory_us"]))
    assert p["meets_period"] and p["margin_cold"] == pytest.approx(1 - p["cold_us"] / 1e4)


def test_each_bound_of_the_loop_can_decide():
    base = dict(clock=1.0, issue_width=100, vec_fp_per_cycle=100, vec_cvt_per_cycle=100, fdiv_cycles=0,
                vec_loads_per_cycle=100, vec_stores_per_cycle=100)
    assert made_up("fp", **{**base, "vec_fp_per_cycle": 0.5}).loop_cycles(MATVEC_F32) == pytest.approx(2.12)
    assert made_up("ld", **{**base, "vec_loads_per_cycle": 0.5}).loop_cycles(MATVEC_F32) == pytest.approx(2)
    assert made_up("st", **{**base, "vec_stores_per_cycle": 0.25}).loop_cycles(ACTIVATION) == pytest.approx(4)
    shared = made_up("sh", **{**base, "vec_loads_per_cycle": 1, "vec_stores_per_cycle": 1}, loadstore_shared=True)
    assert shared.loop_cycles(ACTIVATION) == pytest.approx(2)            # 1 load + 1 store on one pipe
    assert made_up("dec", **{**base, "issue_width": 2}).loop_cycles(MATVEC_F32) == pytest.approx(0.875)
    chain = made_up("io", **base, inorder_matvec_cycles=24, inorder_act_cycles=120)
    assert chain.rates().matvec_f32 == pytest.approx(1e9 * 8 / 24)
    assert chain.rates().act_s == pytest.approx(120 / 4 / 1e9)
    assert chain.rates().matvec_int8 == pytest.approx(1e9 * 8 / chain.loop_cycles(MATVEC_INT8))   # no chain


def test_int8_weights_are_priced_by_their_own_loop_and_bytes():
    d = made_up("d")
    f, q = predict(d, KWS, HOST), predict(d, KWS_INT8, HOST)
    assert q["matvec_us"] == pytest.approx(f["matvec_us"] * 4.19 / 1.06)    # widening + scvtf per weight vector
    assert q["memory_us"] < f["memory_us"] / 3
    assert q["act_us"] == pytest.approx(f["act_us"]) and q["overhead_us"] == pytest.approx(f["overhead_us"])


def test_batch_multiplies_compute_not_weights():
    d = made_up("d")
    one, three = predict(d, KWS, HOST), predict(d, with_batch(KWS, 3), HOST)
    assert three["compute_us"] == pytest.approx(3 * one["compute_us"])        # under 4 rows: one by one
    eight = predict(d, with_batch(KWS, 8), HOST)
    assert eight["bytes_per_step"] == KWS.weight_bytes + 8 * KWS.work_bytes
    assert eight["overhead_us"] == pytest.approx(one["overhead_us"])
    assert eight["act_us"] == pytest.approx(8 * one["act_us"])


def test_blocks_of_four_streams_share_each_weight_load():
    """B >= 4: the matrix work of each 4 streams is priced at the 4-row block's loop (one
    weight load per 4 fmla), the rest stream by stream; this made-up core's float32 one-stream
    loop is load-bound (1 load / vector at 0.5 per cycle: 2 cycles), the block FP-bound (1.06)."""
    d = made_up("d", vec_loads_per_cycle=0.5)
    one, six = predict(d, KWS, HOST), predict(d, with_batch(KWS, 6), HOST)
    assert d.loop_cycles(MATVEC_F32) == pytest.approx(2.0) and d.loop_cycles(MATVEC_F32_ROWS) == pytest.approx(1.06)
    assert six["matvec_us"] == pytest.approx((4 * 1.06 / 2.0 + 2) * one["matvec_us"])


def test_weights_larger_than_cache_are_read_from_dram_even_warm():
    d = made_up("d", dram=0.5, llc=512)
    p = predict(d, BIG, HOST, period_s=1e-3)
    assert not p["fits_in_cache"] and p["bound"] == "memory"
    assert p["warm_us"] == pytest.approx(p["cold_us"])
    assert not p["meets_period"] and p["margin_cold"] < 0


def test_a_measured_profile_uses_its_own_rates_and_overhead():
    p = predict(HOST, KWS_INT8, made_up("other host", clock=9.0))
    assert p["matvec_us"] == pytest.approx(2 * 60_160 / 25e9 * 1e6)
    assert p["act_us"] == pytest.approx(640 * 0.5e-3) and p["overhead_us"] == pytest.approx(2.0)


def test_a_wider_simd_than_neon_is_refused():
    with pytest.raises(DeviceProfileError, match="128-bit NEON"):
        predict(made_up("avx", simd_lanes=8), KWS, HOST)


# ---------------------------------------------------------------- the workload
def test_workload_counts_the_models_matrices_and_activations():
    import edgernn
    path = FIXTURES / "lstm_l3_tf_lin_ts.onnx"
    f, q = workload_of(edgernn.load(path)), workload_of(edgernn.load(path, weights="int8"))
    m = edgernn.load(path)
    lstms = [n for n in m.graph.nodes if n.op == "lstm"]
    dense = [n for n in m.graph.nodes if n.op == "dense"]
    H = [n.attrs["hidden_size"] for n in lstms]
    I = [n.inputs[0].size for n in lstms]
    def padded(n):                # outputs as the kernel computes them: panels of 64 (16 when n < 64)
        lanes = 64 if n >= 64 else 16
        return -(-n // lanes) * lanes
    N = [n.attrs["units"] for n in dense]
    K = [n.inputs[0].size for n in dense]
    macs = sum(padded(4 * h) * (i + h) for h, i in zip(H, I)) + sum(padded(n) * k for n, k in zip(N, K))
    assert f.macs_f32 == macs and f.macs_int8 == 0
    assert q.macs_int8 == macs and q.macs_f32 == 0 and q.weight_bytes < f.weight_bytes / 2
    assert f.acts == sum(5 * h for h in H)                   # i, f, o sigmoid; g, tanh(c)
    assert f.flops == m.flops_per_step() and f.elementwise_flops >= 0


# ---------------------------------------------------------------- shipped profiles
def test_the_boards_the_issue_names_are_shipped():
    names = set(available_devices())
    assert {"rpi-zero2w", "rpi3bplus", "rpi4", "rpi5", "generic-a53", "jetson-orin-nano"} <= names
    assert {"rpi3b+", "pi4", "zero2w"} <= names                   # aliases


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_number_has_a_source(path):
    data = json.loads(path.read_text())
    dev = device_from_dict(data, str(path))
    assert dev.name == path.stem
    for key in REQUIRED:
        assert key in dev.facts
    for key, src in data["sources"].items():
        assert src["title"].strip() and re.match(r"https?://\S+$", src["url"]), key
    for key, fact in data["facts"].items():
        s = fact["source"]
        if s.startswith("derived:"):
            # a derivation names what it is derived from: another fact, a source or an assumption
            named = [k for k in list(data["facts"]) + list(data["sources"]) if k != key and k in s]
            assert named or "assumption" in s, f"{key}: '{s}' names nothing it is derived from"
        else:
            assert s in data["sources"], f"{key} cites unknown source {s}"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_profiles_predict(path):
    dev = load_device(path)
    r = dev.rates()
    assert 0 < r.matvec_int8 <= r.matvec_f32 < 2 * 16 * dev.value("clock_ghz") * 1e9    # below the FMA peak
    if "inorder_matvec_cycles" in dev.facts:          # the chain is one of the bounds it takes
        assert dev.loop_cycles(MATVEC_F32, "inorder_matvec_cycles") >= dev.value("inorder_matvec_cycles") > 0
    derived_from_pi4 = "dram_read_gbs of rpi4" in dev.facts["dram_read_gbs"]["source"]
    if derived_from_pi4:
        pi4 = load_device("rpi4")
        want = pi4.value("dram_read_gbs") * dev.value("dram_mts") / pi4.value("dram_mts")
        assert dev.value("dram_read_gbs") == pytest.approx(want, rel=0.01)


def test_shipped_profiles_come_from_the_package(monkeypatch):
    """Looked up through importlib.resources in the package itself, not under sys.prefix/share
    (where a --user install has none) nor the repository's devices/ folder."""
    from importlib import resources
    for var in ("EDGERNN_DEVICES_DIR", "EDGERNN_DEVICES"):
        monkeypatch.delenv(var, raising=False)
    from edgernn.devices import profile_dirs, shipped_profiles
    assert shipped_profiles() == resources.files("edgernn") / "device_profiles"
    assert profile_dirs() == [shipped_profiles()]
    found = available_devices()
    assert {p.name for p in found.values()} == {p.name for p in SHIPPED}
    assert all(Path(str(p)).parent == DEVICES for p in found.values())
    assert not list((DEVICES.parents[1] / "devices").glob("*.json"))   # one copy of each profile


def _my_board(folder, name="rpi4", clock=9.0):
    data = json.loads((DEVICES / "rpi4.json").read_text())
    data["name"], data["aliases"] = name, []
    data["facts"]["clock_ghz"]["value"] = clock
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(data))
    return folder


def test_a_devices_dir_comes_before_the_shipped_profiles(tmp_path, monkeypatch):
    for var in ("EDGERNN_DEVICES_DIR", "EDGERNN_DEVICES"):
        monkeypatch.delenv(var, raising=False)
    mine = _my_board(tmp_path / "mine")
    assert load_device("rpi4").value("clock_ghz") == 1.8                    # shipped
    assert load_device("rpi4", devices_dir=mine).value("clock_ghz") == 9.0
    assert load_device("rpi5", devices_dir=mine).name == "rpi5"             # the others still found
    monkeypatch.setenv("EDGERNN_DEVICES_DIR", str(_my_board(tmp_path / "env", clock=7.0)))
    assert load_device("rpi4").value("clock_ghz") == 7.0
    assert load_device("rpi4", devices_dir=mine).value("clock_ghz") == 9.0  # the option first
    monkeypatch.setenv("EDGERNN_DEVICES_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DeviceProfileError, match="EDGERNN_DEVICES_DIR.*not a directory"):
        load_device("rpi4")


def test_cli_devices_dir(tmp_path, capsys):
    from edgernn.cli import main
    model = Path(__file__).resolve().parents[1] / "examples" / "kws_lstm.onnx"
    mine = _my_board(tmp_path / "mine", name="my-board")
    assert main(["profile", str(model), "--frames", "20", "--warmup", "0", "--device", "my-board",
                 "--devices-dir", str(mine), "--json", str(tmp_path / "p.json")]) == 0
    assert json.loads((tmp_path / "p.json").read_text())["device"]["device"] == "my-board"
    capsys.readouterr()
    assert main(["profile", str(model), "--frames", "20", "--device", "my-board"]) == 2
    assert "unknown device 'my-board'" in capsys.readouterr().err
    assert main(["profile", str(model), "--frames", "20", "--device", "rpi4", "--devices-dir",
                 str(tmp_path / "nowhere")]) == 2
    assert "--devices-dir" in capsys.readouterr().err


def test_bad_profiles_are_typed_errors(tmp_path):
    with pytest.raises(DeviceProfileError, match="known devices: .*rpi4"):
        load_device("cray-1")
    broken = tmp_path / "b.json"
    broken.write_text("{not json")
    with pytest.raises(DeviceProfileError, match="cannot read"):
        load_device(broken)
    with pytest.raises(DeviceProfileError, match="needs a value and a source"):
        device_from_dict({"name": "x", "facts": {"clock_ghz": {"value": 1.0}}})
    with pytest.raises(DeviceProfileError, match="unknown source"):
        device_from_dict({"name": "x", "facts": {"clock_ghz": {"value": 1.0, "source": "nowhere"}}})
    with pytest.raises(DeviceProfileError, match="lacks .*vec_fp_per_cycle"):
        device_from_dict({"name": "x", "sources": {"s": {"title": "t", "url": "https://e.org"}},
                          "facts": {"clock_ghz": {"value": 1.0, "source": "s"}}})


# ---------------------------------------------------------------- the host probes
@pytest.mark.parametrize("int8", [False, True])
def test_dense_probe_computes_w_x_plus_b(int8):
    m = _probe_model(int8)
    node = m.graph.nodes[0]
    assert node.attrs.get("packed") and (node.inputs[1].scale is not None) == int8
    # the probe's weights, drawn again as _probe_model draws them: W [N, K], b = 0
    W = (np.random.default_rng(0).standard_normal((256, 256)) * 0.05).astype(np.float32)
    x = np.random.default_rng(2).standard_normal(256).astype(np.float32)
    y, want = m.stream().step(x), W.astype(np.float64) @ x
    # int8: each weight is off by at most half its row's step max|W[n]| / 127
    bound = np.abs(x).sum() * np.abs(W).max(axis=1) / 127 / 2 if int8 else 1e-5 * (1 + np.abs(want))
    assert np.all(np.abs(y - want) <= bound + 1e-5)
    assert m.flops_per_step() == 2 * W.size
    w = workload_of(m)
    assert (w.macs_int8 if int8 else w.macs_f32) == W.size


def test_measuring_this_machine_writes_a_loadable_profile(tmp_path, capsys):
    from edgernn.devices import main
    assert main(["bench-box"]) == 0
    path = tmp_path / "bench-box.json"
    path.write_text(capsys.readouterr().out)
    d = load_device(path)
    assert d.name == "bench-box" and d.measured and d.value("call_overhead_us") > 0
    r = d.rates()
    assert r.matvec_f32 > 0 and r.matvec_int8 > 0 and r.act_s > 0 and d.value("clock_ghz") > 0.1
    assert all(f["source"].startswith("measured:") for f in d.facts.values())


def test_loop_counts_are_those_the_compiler_emits_for_aarch64():
    """MATVEC_F32, MATVEC_INT8 and ACTIVATION must be what benchmarks/kernel_asm.py counts in
    the kernels compiled for a Cortex-A72 (re-derive them when a kernel changes)."""
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-m", "benchmarks.kernel_asm", "--cpu", "cortex-a72"], cwd=root,
                         capture_output=True, text=True, timeout=300)
    if run.returncode != 0 and "aarch64" in run.stderr.lower():
        pytest.skip(f"this llvmlite cannot target AArch64: {run.stderr.strip().splitlines()[-1]}")
    assert run.returncode == 0, run.stderr
    rows = {}
    for line in run.stdout.splitlines():
        m = re.match(r"cortex-a72\s+(matvec float32|matvec int8|activation)( x4 rows)?\D.*?\s+(\d+)((?:\s+[\d.]+){6})$",
                     line)
        if m and m.group(1) + (m.group(2) or "") not in rows:        # the activation's first loop is the sigmoid
            rows[m.group(1) + (m.group(2) or "")] = [float(v) for v in m.group(4).split()]
    for name, ops in (("matvec float32", MATVEC_F32), ("matvec int8", MATVEC_INT8), ("activation", ACTIVATION),
                      ("matvec float32 x4 rows", MATVEC_F32_ROWS), ("matvec int8 x4 rows", MATVEC_INT8_ROWS)):
        assert rows[name] == [ops.insts, ops.loads, ops.stores, ops.fp, ops.cvt, ops.div], name


def test_int8_activations_are_priced_by_the_dot_product_loop():
    """MACs of matrices that take int8 activations are priced with ``sdot`` on a core that has
    the dot product (its ``cpu`` fact), with smull + smlal2 on other out-of-order cores and the
    two-smull form on in-order ones; the terms worked out from the loop counts (kernel_asm
    --dot) on made-up cores."""
    from edgernn.devices import (MATVEC_DOT, MATVEC_DOT_NEON, MATVEC_DOT_NEON_ROWS, MATVEC_DOT_PAIRS,
                                 MATVEC_DOT_PAIRS_ROWS, MATVEC_DOT_ROWS)
    act = Workload(flops=121_600, weight_bytes=66_432, work_bytes=5_376, acts=640, macs_act=60_160)
    a76, a72, a53 = (made_up(n, cpu=f"Cortex-{n.upper()}") for n in ("a76", "a72", "a53"))
    assert a76.has_dot_product and not a72.has_dot_product and not a53.has_dot_product
    base = predict(a72, KWS_INT8, HOST)
    for d, loop, rows in ((a76, MATVEC_DOT, MATVEC_DOT_ROWS), (a72, MATVEC_DOT_PAIRS, MATVEC_DOT_PAIRS_ROWS),
                          (a53, MATVEC_DOT_NEON, MATVEC_DOT_NEON_ROWS)):
        one = predict(d, act, HOST)
        assert one["matvec_us"] == pytest.approx(60_160 / 4 * d.loop_cycles(loop) / 1e3)   # 1 GHz: cycles = ns
        assert one["matvec_us"] < base["matvec_us"] / 3
        four = predict(d, with_batch(act, 4), HOST)
        assert four["matvec_us"] == pytest.approx(4 * 60_160 / 4 * d.loop_cycles(rows) / 1e3)
    assert [load_device(n).has_dot_product for n in ("rpi5", "rpi4", "rpi3bplus", "jetson-orin-nano")] == \
        [True, False, False, True]


def test_the_workload_counts_int8_activation_macs():
    import edgernn
    path = FIXTURES / "gru_l2_tf_nohead_ts.onnx"
    weights_only = workload_of(edgernn.load(path, weights="int8"))
    both = workload_of(edgernn.load(path, weights="int8", activations="int8"))
    assert weights_only.macs_int8 > 0 and weights_only.macs_act == 0
    assert both.macs_act == weights_only.macs_int8 and both.macs_int8 == 0
    assert both.elementwise_flops == weights_only.elementwise_flops
