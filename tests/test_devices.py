"""Device profiles and the latency prediction.

The prediction is checked on made-up profiles whose answer is known by construction (a device
twice as fast in every respect predicts half the time), every shipped profile is checked for
a source behind every number, and the dense probe the host calibration times is checked
against NumPy.
"""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from edgernn.devices import (REQUIRED, Device, DeviceProfileError, Workload, _probe_model,
                             available_devices, device_from_dict, load_device, predict)

DEVICES = Path(__file__).resolve().parents[1] / "devices"
SHIPPED = sorted(DEVICES.glob("*.json"))


def made_up(name, clock=1.0, latency=4, dram=2.0, llc=512):
    return device_from_dict({"name": name, "sources": {"s": {"title": "made up", "url": "https://example.org"}},
                             "facts": {"clock_ghz": {"value": clock, "source": "s"},
                                       "fp_add_latency_cycles": {"value": latency, "source": "s"},
                                       "dram_read_gbs": {"value": dram, "source": "s"},
                                       "llc_kib": {"value": llc, "source": "s"}}})


HOST = Device("host", "made-up host", {"engine_gflops": {"value": 2.0, "source": "measured: test"},
                                       "call_overhead_us": {"value": 5.0, "source": "measured: test"}})
KWS = Workload(flops=121_600, weight_bytes=242_752, work_bytes=4_208)
BIG = Workload(flops=2 * 4 * 512 * 1024, weight_bytes=4 * 4 * 512 * 1024, work_bytes=40_000)   # 8 MiB of weights


# ---------------------------------------------------------------- the model
@pytest.mark.parametrize("work", [KWS, BIG, Workload(KWS.flops, KWS.weight_bytes, KWS.work_bytes, batch=8)])
def test_twice_as_fast_predicts_half_the_time(work):
    slow = made_up("slow", clock=1.0, latency=4, dram=2.0)
    fast = made_up("fast", clock=2.0, latency=4, dram=4.0)
    a, b = predict(slow, work, HOST), predict(fast, work, HOST)
    assert b["warm_us"] == pytest.approx(a["warm_us"] / 2, rel=1e-12)
    assert b["cold_us"] == pytest.approx(a["cold_us"] / 2, rel=1e-12)
    halved_latency = made_up("lat2", clock=1.0, latency=2, dram=4.0)
    assert predict(halved_latency, work, HOST)["cold_us"] == pytest.approx(a["cold_us"] / 2, rel=1e-12)


def test_terms_by_hand():
    d = made_up("d", clock=1.5, latency=3, dram=3.0, llc=1024)      # R = 1 GFLOP/s
    p = predict(d, KWS, HOST, period_s=0.01)
    assert p["engine_gflops"] == pytest.approx(1.0)
    assert p["compute_us"] == pytest.approx(121.6)
    assert p["memory_us"] == pytest.approx((242_752 + 4_208) / 3e9 * 1e6)
    assert p["overhead_us"] == pytest.approx(5.0 * 2.0 / 1.0)     # host overhead x R_host / R
    assert p["fits_in_cache"] and p["warm_us"] == pytest.approx(10.0 + 121.6)
    assert p["cold_us"] == pytest.approx(10.0 + max(121.6, p["memory_us"]))
    assert p["meets_period"] and p["margin_cold"] == pytest.approx(1 - p["cold_us"] / 1e4)


def test_batch_multiplies_compute_not_weights():
    d = made_up("d")
    one, eight = predict(d, KWS, HOST), predict(d, Workload(KWS.flops, KWS.weight_bytes, KWS.work_bytes, 8), HOST)
    assert eight["compute_us"] == pytest.approx(8 * one["compute_us"])
    assert eight["bytes_per_step"] == KWS.weight_bytes + 8 * KWS.work_bytes
    assert eight["overhead_us"] == pytest.approx(one["overhead_us"])


def test_weights_larger_than_cache_are_read_from_dram_even_warm():
    d = made_up("d", dram=0.5, llc=512)
    p = predict(d, BIG, HOST, period_s=1e-3)
    assert not p["fits_in_cache"] and p["bound"] == "memory"
    assert p["warm_us"] == pytest.approx(p["cold_us"])
    assert not p["meets_period"] and p["margin_cold"] < 0


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
def test_derived_rates_agree_with_the_formula(path):
    dev = load_device(path)
    if "sustained_gflops" in dev.facts:
        assert dev.value("sustained_gflops") == pytest.approx(dev.engine_flops / 1e9, rel=0.01)
    derived_from_pi4 = "dram_read_gbs of rpi4" in dev.facts["dram_read_gbs"]["source"]
    if derived_from_pi4:
        pi4 = load_device("rpi4")
        want = pi4.value("dram_read_gbs") * dev.value("dram_mts") / pi4.value("dram_mts")
        assert dev.value("dram_read_gbs") == pytest.approx(want, rel=0.01)


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
    with pytest.raises(DeviceProfileError, match="lacks"):
        device_from_dict({"name": "x", "sources": {"s": {"title": "t", "url": "https://e.org"}},
                          "facts": {"clock_ghz": {"value": 1.0, "source": "s"}}})


# ---------------------------------------------------------------- the host probe
def test_dense_probe_computes_w_x_plus_b():
    m = _probe_model()
    node = m.graph.nodes[0]
    W, b = node.inputs[1].const, node.inputs[2].const
    if node.attrs.get("packed"):        # the pack pass stores dense weights input-major [K, N]
        W = W.T
    x = np.random.default_rng(2).standard_normal(W.shape[1]).astype(np.float32)
    np.testing.assert_allclose(m.stream().step(x), W @ x + b, rtol=1e-5, atol=1e-5)
    assert m.flops_per_step() == 2 * W.shape[0] * W.shape[1]


def test_a_measured_profile_uses_its_own_rate_and_overhead():
    m = "measured: test"
    d = device_from_dict({"name": "m", "facts": {"engine_gflops": {"value": 1.0, "source": m},
                                                 "dram_read_gbs": {"value": 4.0, "source": m},
                                                 "llc_kib": {"value": 1024, "source": m},
                                                 "call_overhead_us": {"value": 7.0, "source": m}}})
    p = predict(d, KWS, HOST)
    assert p["compute_us"] == pytest.approx(121.6) and p["overhead_us"] == pytest.approx(7.0)


def test_measuring_this_machine_writes_a_loadable_profile(tmp_path, capsys):
    from edgernn.devices import main
    assert main(["bench-box"]) == 0
    path = tmp_path / "bench-box.json"
    path.write_text(capsys.readouterr().out)
    d = load_device(path)
    assert d.name == "bench-box" and d.engine_flops > 0 and d.value("call_overhead_us") > 0
    assert all(f["source"].startswith("measured:") for f in d.facts.values())
