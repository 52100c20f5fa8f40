"""Device profiles and the latency prediction (a roofline plus a per-call overhead term).

A profile (one JSON file per board in the repository's ``devices/`` folder) holds facts about
one board, each with the source it was taken from::

    {"name": "rpi4", "title": "Raspberry Pi 4 Model B",
     "sources": {"brief": {"title": "...", "url": "..."}, ...},
     "facts": {"clock_ghz": {"value": 1.8, "source": "brief"}, ...}}

A fact's ``source`` is a key of ``sources`` or a string starting with ``derived:`` that says
how the number follows from other facts. Facts used by the prediction:

    clock_ghz               core clock of one core
    fp_add_latency_cycles   latency of a dependent scalar float32 add
    dram_read_gbs           sustained single-core read bandwidth from DRAM, GB/s
    llc_kib                 the largest cache level one core can use (KiB)

A profile measured on the board itself (``python -m edgernn.devices NAME``) gives
``engine_gflops`` instead of clock and latency, and its own ``call_overhead_us``.

The prediction (see docs/profiling.md for the derivation and its error):

    engine rate  R = clock * 2 / fp_add_latency        FLOP/s, one core
    compute      t_c = B * flops_per_step / R
    memory       t_m = (weight_bytes + B * work_bytes) / dram_read   (only when "cold")
    overhead     t_o = host_overhead * R_host / R       (the step's Python part, scaled;
                                                         a measured profile gives its own)
    step         t   = t_o + max(t_c, t_m)

edgernn's kernels are scalar dot products summed in order (fastmath is off), so one MAC costs
one dependent add: R is set by the add latency, not by the NEON peak. "warm" assumes the
weights stay in cache between steps (true when they fit in ``llc_kib`` and nothing else runs);
"cold" reads them from DRAM every step.
"""
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import EdgeRNNError

REQUIRED = ("clock_ghz", "fp_add_latency_cycles", "dram_read_gbs", "llc_kib")


class DeviceProfileError(EdgeRNNError, ValueError):
    """A device profile is missing, unreadable or lacks a fact the prediction needs."""


@dataclass
class Device:
    """A board: its facts (value + source) and, for a measured host, its probe results."""
    name: str
    title: str
    facts: dict
    sources: dict = field(default_factory=dict)
    notes: str = ""
    path: str = ""

    def value(self, key):
        fact = self.facts.get(key)
        if fact is None:
            raise DeviceProfileError(f"device profile '{self.name}' has no '{key}'")
        return fact["value"]

    @property
    def engine_flops(self):
        """FLOP/s of edgernn's scalar kernels on one core: measured, or 2 * clock / add latency."""
        if "engine_gflops" in self.facts:
            return self.value("engine_gflops") * 1e9
        return self.value("clock_ghz") * 1e9 * 2.0 / self.value("fp_add_latency_cycles")

    @property
    def dram_bytes_per_s(self):
        return self.value("dram_read_gbs") * 1e9

    @property
    def llc_bytes(self):
        return int(self.value("llc_kib") * 1024)


# ---------------------------------------------------------------- loading
def profile_dirs():
    """Where named profiles are looked up, in order."""
    dirs = []
    if os.environ.get("EDGERNN_DEVICES"):
        dirs.append(Path(os.environ["EDGERNN_DEVICES"]))
    dirs.append(Path(__file__).resolve().parents[1] / "devices")          # a source checkout
    dirs.append(Path(sys.prefix) / "share" / "edgernn" / "devices")       # pip install
    return [d for d in dirs if d.is_dir()]


def available_devices():
    """{name: path} of every shipped profile (aliases included)."""
    found = {}
    for d in profile_dirs():
        for p in sorted(d.glob("*.json")):
            try:
                data = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            for n in [data.get("name", p.stem)] + list(data.get("aliases", [])):
                found.setdefault(n, p)
    return found


def load_device(name_or_path):
    """A :class:`Device` from a profile name (``rpi4``), an alias, or a JSON file path."""
    if isinstance(name_or_path, Device):
        return name_or_path
    p = Path(str(name_or_path))
    if not (p.suffix == ".json" and p.is_file()):
        known = available_devices()
        if str(name_or_path) not in known:
            names = ", ".join(sorted(known)) or "none found (set EDGERNN_DEVICES to the devices/ folder)"
            raise DeviceProfileError(f"unknown device '{name_or_path}'; known devices: {names}; "
                                     "or give the path of a profile .json file")
        p = known[str(name_or_path)]
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise DeviceProfileError(f"cannot read device profile {str(p)!r}: {e}") from None
    return device_from_dict(data, path=str(p))


def device_from_dict(data, path=""):
    """Validate a profile's structure: every fact has a value and a source that resolves."""
    name = data.get("name") or Path(path).stem
    facts, sources = data.get("facts", {}), data.get("sources", {})
    for key, fact in facts.items():
        if not isinstance(fact, dict) or "value" not in fact or not fact.get("source"):
            raise DeviceProfileError(f"device profile '{name}': fact '{key}' needs a value and a source")
        src = fact["source"]
        if not (src.startswith("derived:") or src.startswith("measured:") or src in sources):
            raise DeviceProfileError(f"device profile '{name}': fact '{key}' cites unknown source '{src}'")
    measured_rate = ("clock_ghz", "fp_add_latency_cycles") if "engine_gflops" in facts else ()
    missing = [k for k in REQUIRED if k not in facts and k not in measured_rate]
    if missing:
        raise DeviceProfileError(f"device profile '{name}' lacks {', '.join(missing)}")
    return Device(name, data.get("title", name), facts, sources, data.get("notes", ""), path)


# ---------------------------------------------------------------- prediction
@dataclass
class Workload:
    """What one step costs, independent of the machine: from the plan."""
    flops: int           # per stream
    weight_bytes: int    # read once per step for all streams
    work_bytes: int      # per stream: inputs, state, activations, scratch
    batch: int = 1


def workload_of(model, batch=1):
    return Workload(model.flops_per_step(), model.weight_bytes(), int(model.plan.work_size * 4), batch)


def predict(device, workload, host, period_s=None):
    """Predicted seconds per step on `device` (a dict, see module docstring).

    host: the measured profile of this machine (:func:`measure_host`), which supplies the
    per-call overhead and the engine rate it is scaled from."""
    R = device.engine_flops
    B = workload.batch
    compute = B * workload.flops / R
    bytes_step = workload.weight_bytes + B * workload.work_bytes
    memory = bytes_step / device.dram_bytes_per_s
    if "call_overhead_us" in device.facts:          # measured on that device
        overhead = device.value("call_overhead_us") * 1e-6
    else:
        overhead = host.value("call_overhead_us") * 1e-6 * host.engine_flops / R
    fits = bytes_step <= device.llc_bytes
    warm = overhead + (compute if fits else max(compute, memory))
    cold = overhead + max(compute, memory)
    out = {
        "device": device.name, "title": device.title,
        "engine_gflops": R / 1e9, "dram_read_gbs": device.dram_bytes_per_s / 1e9,
        "flops_per_step": B * workload.flops, "bytes_per_step": bytes_step,
        "fits_in_cache": bool(fits), "llc_kib": device.llc_bytes // 1024,
        "compute_us": compute * 1e6, "memory_us": memory * 1e6, "overhead_us": overhead * 1e6,
        "warm_us": warm * 1e6, "cold_us": cold * 1e6,
        "bound": "memory" if memory > compute else "compute",
    }
    if period_s:
        out["period_us"] = period_s * 1e6
        out["margin_warm"] = 1.0 - warm / period_s
        out["margin_cold"] = 1.0 - cold / period_s
        out["meets_period"] = bool(cold <= period_s)
    return out


# ---------------------------------------------------------------- measuring this machine
PROBE_ROWS, PROBE_COLS = 256, 256


def _probe_model():
    """A one-op model (dense 256x256, weights 256 KiB) built straight from the IR, so the
    probe times the engine's own dense kernel without an importer."""
    from .ir.dims import Dim
    from .ir.graph import Graph, Node, Value
    from .model import Model
    rng = np.random.default_rng(0)
    B = Dim(1, b=1)
    x = Value("x", shape=(B, PROBE_COLS))
    w = Value("w", shape=(PROBE_ROWS, PROBE_COLS), const=(rng.standard_normal((PROBE_ROWS, PROBE_COLS)) * 0.05).astype(np.float32))
    b = Value("b", shape=(PROBE_ROWS,), const=np.zeros(PROBE_ROWS, np.float32))
    y = Value("y", shape=(B, PROBE_ROWS))
    g = Graph(nodes=[Node("dense", "probe_dense", [x, w, b], [y])], inputs=[x], outputs=[y], source="<probe>")
    return Model(g, source="<dense probe>")


def measure_engine_gflops(target_s=0.002, rounds=25):
    """Best-of-rounds GFLOP/s of the engine's dense kernel on a cache-resident 256x256 matrix."""
    from .breakdown import time_rows
    m = _probe_model()
    work = np.random.default_rng(1).standard_normal((1, m.plan.work_size)).astype(np.float32)
    t = time_rows(m.plan, work, m.plan.prog, target_s=target_s, rounds=rounds)
    return m.flops_per_step() / t / 1e9


def measure_dram_gbs(nbytes=None, rounds=5):
    """Best single-thread read bandwidth of a NumPy sum over an array far larger than cache."""
    if nbytes is None:
        nbytes = 128 * 1024 * 1024
    a = np.ones(nbytes // 4, np.float32)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        a.sum()
        best = min(best, time.perf_counter() - t0)
    return a.nbytes / best / 1e9


def host_device(call_overhead_us, engine_gflops=None, dram_gbs=None, llc_kib=None):
    """A measured profile of this machine (the calibration point of every prediction)."""
    import platform
    engine_gflops = measure_engine_gflops() if engine_gflops is None else engine_gflops
    dram_gbs = measure_dram_gbs() if dram_gbs is None else dram_gbs
    llc_kib = _largest_cache_kib() if llc_kib is None else llc_kib
    m = "measured: "
    facts = {
        "engine_gflops": {"value": round(engine_gflops, 3), "source": m + "engine dense 256x256 probe (edgernn.devices.measure_engine_gflops)"},
        "dram_read_gbs": {"value": round(dram_gbs, 2), "source": m + "numpy sum over 128 MiB (edgernn.devices.measure_dram_gbs)"},
        "llc_kib": {"value": llc_kib, "source": m + "sysconf / sysfs cache size"},
        "call_overhead_us": {"value": round(call_overhead_us, 3), "source": m + "Stream.step with an empty program"},
    }
    return Device("host", f"this machine ({platform.machine()}, {platform.processor() or platform.system()})",
                  facts, {}, "measured on this machine by edgernn.profile")


def _largest_cache_kib():
    best = 0
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for idx in sorted(base.glob("index*")) if base.is_dir() else []:
        try:
            size = (idx / "size").read_text().strip()
        except OSError:
            continue
        mult = {"K": 1, "M": 1024}.get(size[-1:], None)
        if mult:
            best = max(best, int(size[:-1]) * mult)
    return best or 1024


def main(argv=None):
    """``python -m edgernn.devices [NAME]``: measure this machine and print its profile as JSON
    (save it as devices/NAME.json to predict other models for this board, or to check the
    prediction made for it from a spec-sheet profile)."""
    import argparse
    from .stream import Stream
    ap = argparse.ArgumentParser(prog="python -m edgernn.devices", description=main.__doc__)
    ap.add_argument("name", nargs="?", default="host")
    args = ap.parse_args(argv)
    from .profile import call_overhead_us
    m = _probe_model()
    pool = [np.zeros((1, PROBE_COLS), np.float32)]
    Stream(m).step(pool[0][0])
    dev = host_device(call_overhead_us(m, None, pool))
    print(json.dumps({"name": args.name, "title": dev.title, "notes": dev.notes, "sources": {},
                      "facts": dev.facts}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
