"""Device profiles and the latency prediction: edgernn's own kernels priced on a core's
throughputs, a memory term, and the per-call overhead (derivation and error: docs/profiling.md).

A profile (one JSON file per board, shipped inside the package in ``edgernn/device_profiles/``;
a folder of your own in ``--devices-dir`` or $EDGERNN_DEVICES_DIR comes first) holds facts
about one board, each with the source it was taken from::

    {"name": "rpi4", "title": "Raspberry Pi 4 Model B",
     "sources": {"arm-sog": {"title": "...", "url": "..."}, ...},
     "facts": {"clock_ghz": {"value": 1.8, "source": "wiki-pi4"}, ...}}

A fact's ``source`` is a key of ``sources``, or a string starting with ``derived:`` that says
how the number follows from other facts or that it is an assumption, or (measured profiles)
one starting with ``measured:``.

Facts of a spec-sheet profile (one core; a "vector" is one 128-bit NEON register, 4 float32):

    clock_ghz              core clock
    simd_lanes             float32 lanes per vector: 4 (the loop op counts below are NEON's)
    issue_width            instructions decoded per cycle
    vec_fp_per_cycle       128-bit FP/ASIMD ops (fmul, fmla, fadd, tbl, compare, select, move)
    vec_cvt_per_cycle      128-bit int32 -> float32 conversions (scvtf)
    fdiv_cycles            cycles one 128-bit float32 divide occupies its pipe
    vec_loads_per_cycle    128-bit loads
    vec_stores_per_cycle   128-bit stores
    loadstore_shared       (optional, default false) loads and stores share one pipe
    inorder_matvec_cycles  (in-order cores) dependent latency of one float32 matvec iteration
    inorder_act_cycles     (in-order cores) dependent latency of one activation iteration
    scalar_cycle_ratio     cycles the core spends on the step's Python/dispatch code per cycle of
                           an out-of-order x86 core (the calibration host)
    dram_read_gbs          sustained single-core read bandwidth from DRAM, GB/s
    llc_kib                the largest cache level one core can use (KiB)

A profile measured on the machine itself (``python -m edgernn.devices NAME``) has instead
``matvec_gflops``, ``matvec_gflops_int8`` and ``matvec_gflops_int8_act`` (the engine's dense
kernel: float32 weights, int8 weights, int8 weights and activations), ``act_ns`` (one
sigmoid), ``clock_ghz`` (a dependent-op chain), ``call_overhead_us``, ``dram_read_gbs``, ``llc_kib``.

The prediction, per step of B streams:

    per vector loop   c = max(fp/vec_fp + cvt/vec_cvt + div*fdiv_cycles,     FP/ASIMD pipes
                              loads/vec_loads (+ or max) stores/vec_stores,   load/store pipes
                              insts/issue_width,                              decode
                              inorder chain)                                  in-order cores
    matvec            R = clock * 2 * 4 / c         FLOP/s (one vector = 4 outputs x 1 weight row)
                      R' the same for the 4-row block (MATVEC_*_ROWS), B4 = B - B mod 4 streams
    compute           t_c = B4 * (2 MACs_f32 / R'_f32 + 2 MACs_int8 / R'_int8 + 2 MACs_act / R'_act)
                            + (B - B4) * (2 MACs_f32 / R_f32 + 2 MACs_int8 / R_int8 + 2 MACs_act / R_act)
                            + B * (activations * c_act / (4 clock) + rest / (4 vec_fp clock))
    memory            t_m = (weight_bytes + B * work_bytes) / dram_read        (only when "cold")
    overhead          t_o = host_overhead * host_clock / clock * scalar_cycle_ratio
    step              t   = t_o + t_c (warm: all fits in llc_kib), t_o + max(t_c, t_m) (cold)

MACs_act are those of int8 matrices that take int8 activations (``activations="int8"``),
priced with the ``sdot`` loop on cores that have the dot product (the profile's ``cpu`` in
``ops.matvec_dot.DOT_PRODUCT_CORES``: Cortex-A76, A78AE), else the NEON one.

The loop op counts (MATVEC_F32, MATVEC_INT8, their _ROWS blocks, ACTIVATION) are those of the
kernels' AArch64 inner loops, printed by ``python -m benchmarks.kernel_asm``; MATVEC_DOT* are
``--dot``'s per 16 multiply-adds, divided by 4. A measured
profile prices the block at its one-stream rate (the probe runs one stream).
"""
import json
import os
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .config import jit
from .errors import EdgeRNNError
from .ops.activations import SIGMOID, activate_inplace
from .ops.matvec import NARROW_BLOCK

REQUIRED = ("clock_ghz", "simd_lanes", "issue_width", "vec_fp_per_cycle", "vec_cvt_per_cycle", "fdiv_cycles",
            "vec_loads_per_cycle", "vec_stores_per_cycle", "scalar_cycle_ratio", "dram_read_gbs", "llc_kib")
REQUIRED_MEASURED = ("matvec_gflops", "act_ns", "call_overhead_us", "dram_read_gbs", "llc_kib")


@dataclass(frozen=True)
class LoopOps:
    """Instructions of one kernel loop per 128-bit vector (4 float32 lanes), AArch64."""
    insts: float
    loads: float
    stores: float
    fp: float
    cvt: float = 0.0
    div: float = 0.0


#: ops.matvec._panel_block, one weight row of a 64-output panel per iteration, per vector of 4
#: outputs (4 MACs): 1 weight load (ldp: 2 per 2 vectors), 1 fmla into a register accumulator,
#: the broadcast of x[k] and the loop counter shared by 16 vectors; no stores
MATVEC_F32 = LoopOps(insts=1.75, loads=1.0, stores=0.0, fp=1.06)
#: the same with int8 weights: a 16-byte load feeds 4 vectors, each byte moved to the top of
#: a 32-bit lane by tbl and converted by a fixed-point scvtf (#24); the tbl masks and two
#: vectors do not fit beside the 16 accumulators, so some are reloaded (loads and stores)
MATVEC_INT8 = LoopOps(insts=4.94, loads=0.62, stores=0.12, fp=2.19, cvt=1.0)
#: the many-row block (batched streams, a chunk's frames: ops.matvec, 4 rows x 16 outputs per
#: pass on NEON): each weight vector loaded (and with int8 converted) once for 4 rows
MATVEC_F32_ROWS = LoopOps(insts=1.62, loads=0.25, stores=0.0, fp=1.06)
MATVEC_INT8_ROWS = LoopOps(insts=3.25, loads=0.31, stores=0.0, fp=1.31, cvt=0.25)
#: the int8 x int8 kernel (ops.matvec_dot, kernel_asm --dot) per 4 multiply-adds: with ``sdot``
#: (Cortex-A76) one sdot per 4 vectors of 4 outputs, fed by one weight load; on other
#: out-of-order cores (Cortex-A72) an smull, an smlal2 and a sadalp per 16 multiply-adds
#: (DOT_NEON_PAIRS); on in-order ones (Cortex-A53) two smull, an addp, a sadalp and an ext
#: (DOT_NEON), the 4-row block spilling
MATVEC_DOT = LoopOps(insts=0.4375, loads=0.25, stores=0.0, fp=0.25)
MATVEC_DOT_ROWS = LoopOps(insts=0.4375, loads=0.0625, stores=0.0, fp=0.25)
MATVEC_DOT_PAIRS = LoopOps(insts=1.03125, loads=0.265625, stores=0.0, fp=0.765625)
MATVEC_DOT_PAIRS_ROWS = LoopOps(insts=1.03125, loads=0.078125, stores=0.0, fp=0.8125)
MATVEC_DOT_NEON = LoopOps(insts=1.4296875, loads=0.25, stores=0.0, fp=1.25)
MATVEC_DOT_NEON_ROWS = LoopOps(insts=1.4140625, loads=0.15625, stores=0.09375, fp=1.0625)
#: rows of work that block takes on NEON
BLOCK_ROWS = NARROW_BLOCK[0]
#: ops.activations.activate_inplace, sigmoid over 4 elements (tanh: 22 fp ops instead of 25)
ACTIVATION = LoopOps(insts=30, loads=1, stores=1, fp=25, div=1)
MACS_PER_VECTOR = 4
LANES = 4


class DeviceProfileError(EdgeRNNError, ValueError):
    """A device profile is missing, unreadable or lacks a fact the prediction needs."""


@dataclass
class Rates:
    """What the engine's kernels do per second on one core of a device."""
    matvec_f32: float     # FLOP/s of the dense kernel, float32 weights
    matvec_int8: float    # FLOP/s of the dense kernel, int8 weights
    act_s: float          # seconds per sigmoid/tanh element
    elementwise: float    # FLOP/s of the remaining elementwise work
    matvec_f32_rows: float = 0.0     # the same in blocks of BLOCK_ROWS streams (0: as one stream)
    matvec_int8_rows: float = 0.0
    matvec_act: float = 0.0          # FLOP/s of the int8 x int8 kernel (int8 activations; 0: as int8)
    matvec_act_rows: float = 0.0


@dataclass
class Device:
    """A board: its facts (value + source) and, for a measured machine, its probe results."""
    name: str
    title: str
    facts: dict
    sources: dict = field(default_factory=dict)
    notes: str = ""
    path: str = ""

    def value(self, key, default=None):
        fact = self.facts.get(key)
        if fact is None:
            if default is not None:
                return default
            raise DeviceProfileError(f"device profile '{self.name}' has no '{key}'")
        return fact["value"]

    @property
    def measured(self):
        return "matvec_gflops" in self.facts

    @property
    def core(self):
        """The board's core as LLVM names it (its ``cpu`` fact: "Cortex-A76" -> "cortex-a76")."""
        return str(self.facts.get("cpu", {}).get("value", "")).lower().replace(" ", "-")

    @property
    def has_dot_product(self):
        """Whether the board's core has the dot product."""
        from .ops.matvec_dot import DOT_PRODUCT_CORES
        return self.core in DOT_PRODUCT_CORES

    @property
    def dot_loops(self):
        """(one row, the many-row block): the int8 x int8 kernel's loop on this board's core,
        as ops.matvec_dot.dot_method picks it: sdot, the two-smull form on in-order cores, the
        smull + smlal2 form on the others."""
        from .ops.matvec_dot import IN_ORDER_CORES
        if self.has_dot_product:
            return MATVEC_DOT, MATVEC_DOT_ROWS
        if self.core in IN_ORDER_CORES:
            return MATVEC_DOT_NEON, MATVEC_DOT_NEON_ROWS
        return MATVEC_DOT_PAIRS, MATVEC_DOT_PAIRS_ROWS

    def loop_bounds(self, ops, chain=None):
        """{resource: cycles per vector} of a kernel loop on this core: FP/ASIMD pipes, load/store
        pipes, decode, and (in-order cores) the dependent-latency chain."""
        v = self.value
        ld, st = ops.loads / v("vec_loads_per_cycle"), ops.stores / v("vec_stores_per_cycle")
        out = {"fp/asimd": ops.fp / v("vec_fp_per_cycle") + ops.cvt / v("vec_cvt_per_cycle") + ops.div * v("fdiv_cycles"),
               "load/store": ld + st if v("loadstore_shared", False) else max(ld, st),
               "decode": ops.insts / v("issue_width")}
        if chain and chain in self.facts:
            out["latency chain"] = v(chain)
        return out

    def loop_cycles(self, ops, chain=None):
        """Cycles per vector of a kernel loop on this core: its slowest resource."""
        return max(self.loop_bounds(ops, chain).values())

    def rates(self):
        """The kernels' rates: measured, or from the core's throughputs."""
        if self.measured:
            r = self.value("matvec_gflops") * 1e9
            int8 = self.value("matvec_gflops_int8", self.value("matvec_gflops")) * 1e9
            return Rates(r, int8, self.value("act_ns") * 1e-9, r,
                         matvec_act=self.value("matvec_gflops_int8_act", int8 / 1e9) * 1e9)
        if self.value("simd_lanes") != LANES:
            raise DeviceProfileError(f"device profile '{self.name}': the kernel model covers 128-bit NEON cores "
                                     f"(simd_lanes 4), not {self.value('simd_lanes')}; measure this machine with "
                                     "python -m edgernn.devices NAME instead")
        hz = self.value("clock_ghz") * 1e9
        flop = 2 * MACS_PER_VECTOR
        dot, dot_rows = self.dot_loops
        return Rates(hz * flop / self.loop_cycles(MATVEC_F32, "inorder_matvec_cycles"),
                     hz * flop / self.loop_cycles(MATVEC_INT8),
                     self.loop_cycles(ACTIVATION, "inorder_act_cycles") / LANES / hz,
                     hz * LANES * self.value("vec_fp_per_cycle"),
                     hz * flop / self.loop_cycles(MATVEC_F32_ROWS, "inorder_matvec_cycles"),
                     hz * flop / self.loop_cycles(MATVEC_INT8_ROWS),
                     hz * flop / self.loop_cycles(dot), hz * flop / self.loop_cycles(dot_rows))

    @property
    def dram_bytes_per_s(self):
        return self.value("dram_read_gbs") * 1e9

    @property
    def llc_bytes(self):
        return int(self.value("llc_kib") * 1024)


# ---------------------------------------------------------------- loading
#: environment variables naming a folder of *.json profiles looked up before the shipped ones
#: (EDGERNN_DEVICES is the earlier name of EDGERNN_DEVICES_DIR)
DEVICES_DIR_ENV = ("EDGERNN_DEVICES_DIR", "EDGERNN_DEVICES")


def shipped_profiles():
    """The profiles that ship inside the package (edgernn/device_profiles/*.json), read through
    importlib.resources: found wherever edgernn is installed (venv, --user, editable, zip)."""
    return resources.files(__package__) / "device_profiles"


def profile_dirs(devices_dir=None):
    """Where named profiles are looked up, in order: ``devices_dir`` (``--devices-dir``), the
    folder in $EDGERNN_DEVICES_DIR, then the shipped profiles."""
    dirs = []
    for where, d in [("--devices-dir", devices_dir)] + [(f"${k}", os.environ.get(k)) for k in DEVICES_DIR_ENV]:
        if d:
            if not Path(d).is_dir():
                raise DeviceProfileError(f"{where} names {str(d)!r}, which is not a directory of device "
                                         "profiles (*.json)")
            dirs.append(Path(d))
    dirs.append(shipped_profiles())
    return dirs


def available_devices(devices_dir=None):
    """{name: path} of every profile that a name finds (aliases included); an earlier folder
    of :func:`profile_dirs` wins."""
    found = {}
    for d in profile_dirs(devices_dir):
        if not d.is_dir():
            continue
        for p in sorted((p for p in d.iterdir() if p.name.endswith(".json")), key=lambda p: p.name):
            try:
                data = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            for n in [data.get("name", p.name[:-len(".json")])] + list(data.get("aliases", [])):
                found.setdefault(n, p)
    return found


def load_device(name_or_path, devices_dir=None):
    """A :class:`Device` from a profile name (``rpi4``), an alias, or a JSON file path; names
    are looked up in ``devices_dir``, $EDGERNN_DEVICES_DIR, then the shipped profiles."""
    if isinstance(name_or_path, Device):
        return name_or_path
    p = Path(str(name_or_path))
    if not (p.suffix == ".json" and p.is_file()):
        known = available_devices(devices_dir)
        if str(name_or_path) not in known:
            names = ", ".join(sorted(known)) or "none found"
            raise DeviceProfileError(f"unknown device '{name_or_path}'; known devices: {names}; "
                                     "or give the path of a profile .json file")
        p = known[str(name_or_path)]
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DeviceProfileError(f"cannot read device profile {str(p)!r}: {e}") from None
    return device_from_dict(data, path=str(p))


def device_from_dict(data, path=""):
    """Validate a profile's structure: every fact has a value and a source that resolves, and
    the facts the prediction needs are there (a spec-sheet set or a measured set)."""
    name = data.get("name") or Path(path).stem
    facts, sources = data.get("facts", {}), data.get("sources", {})
    for key, fact in facts.items():
        if not isinstance(fact, dict) or "value" not in fact or not fact.get("source"):
            raise DeviceProfileError(f"device profile '{name}': fact '{key}' needs a value and a source")
        src = fact["source"]
        if not (src.startswith("derived:") or src.startswith("measured:") or src in sources):
            raise DeviceProfileError(f"device profile '{name}': fact '{key}' cites unknown source '{src}'")
    needed = REQUIRED_MEASURED if "matvec_gflops" in facts else REQUIRED
    missing = [k for k in needed if k not in facts]
    if missing:
        raise DeviceProfileError(f"device profile '{name}' lacks {', '.join(missing)}")
    return Device(name, data.get("title", name), facts, sources, data.get("notes", ""), path)


# ---------------------------------------------------------------- the workload of a model
@dataclass
class Workload:
    """What one step costs, independent of the machine: from the plan. Counts are per stream,
    except weight_bytes (read once per step for all streams)."""
    flops: int
    weight_bytes: int
    work_bytes: int          # inputs, state, activations, scratch
    batch: int = 1
    macs_f32: int = 0        # multiply-adds of the dense kernel with float32 weights
    macs_int8: int = 0       # ... with int8 weights
    acts: int = 0            # sigmoid/tanh evaluations
    macs_act: int = 0        # multiply-adds with int8 weights and int8 activations (ops.matvec_dot)

    @property
    def elementwise_flops(self):
        """The FLOPs left after the matvec kernel and the activations."""
        return max(0, self.flops - 2 * (self.macs_f32 + self.macs_int8 + self.macs_act) - self.acts)


def workload_of(model, batch=1):
    """The :class:`Workload` of a loaded model: MACs by weight type from its packed matrices
    (int8 ones split by whether they take int8 activations, ``Plan.int8_activation_matrices``)."""
    from . import ops
    w = Workload(model.flops_per_step(), model.weight_bytes(), int(model.plan.work_size * 4), batch)
    with_activations = model.plan.int8_activation_matrices()
    for n in model.graph.nodes:
        op = ops.get(n.op)
        w.acts += op.activations(n)
        for v, macs in op.macs(n):
            if v.scale is None:
                w.macs_f32 += macs
            elif model.plan.arena.offsets.get(id(v.const)) in with_activations:
                w.macs_act += macs
            else:
                w.macs_int8 += macs
    return w


# ---------------------------------------------------------------- prediction
def predict(device, workload, host, period_s=None):
    """Predicted seconds per step on `device` (see the module docstring), as a dict.

    host: the measured profile of this machine (:func:`host_device`), whose per-call overhead
    and clock are scaled to a spec-sheet device; a measured device uses its own overhead."""
    r = device.rates()
    w, B = workload, workload.batch
    act_rate = r.matvec_act or r.matvec_int8
    matvec = 2 * w.macs_f32 / r.matvec_f32 + 2 * w.macs_int8 / r.matvec_int8 + 2 * w.macs_act / act_rate
    blocked = B - B % BLOCK_ROWS            # streams the many-row block takes, BLOCK_ROWS at a time
    in_blocks = (2 * w.macs_f32 / (r.matvec_f32_rows or r.matvec_f32)
                 + 2 * w.macs_int8 / (r.matvec_int8_rows or r.matvec_int8)
                 + 2 * w.macs_act / (r.matvec_act_rows or act_rate))
    act = w.acts * r.act_s
    rest = w.elementwise_flops / r.elementwise
    all_matvec = blocked * in_blocks + (B - blocked) * matvec
    compute = all_matvec + B * (act + rest)
    if device.measured:                              # its own
        overhead = device.value("call_overhead_us") * 1e-6
    else:                                            # this machine's, in cycles, on the device's core
        overhead = (host.value("call_overhead_us") * 1e-6 * host.value("clock_ghz") / device.value("clock_ghz")
                    * device.value("scalar_cycle_ratio"))
    bytes_step = w.weight_bytes + B * w.work_bytes
    memory = bytes_step / device.dram_bytes_per_s
    fits = bytes_step <= device.llc_bytes
    warm = overhead + (compute if fits else max(compute, memory))
    cold = overhead + max(compute, memory)
    out = {
        "device": device.name, "title": device.title,
        "engine_gflops": B * w.flops / compute / 1e9 if compute > 0 else 0.0,
        "matvec_gflops": r.matvec_f32 / 1e9, "matvec_gflops_int8": r.matvec_int8 / 1e9,
        "matvec_gflops_int8_act": act_rate / 1e9, "act_ns": r.act_s * 1e9,
        "dram_read_gbs": device.dram_bytes_per_s / 1e9,
        "flops_per_step": B * w.flops, "bytes_per_step": bytes_step,
        "fits_in_cache": bool(fits), "llc_kib": device.llc_bytes // 1024,
        "matvec_us": all_matvec * 1e6, "act_us": B * act * 1e6, "elementwise_us": B * rest * 1e6,
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
ACT_PROBE = 1024


def _probe_model(int8=False, activations="float32"):
    """A one-op model (dense 256x256, 256 KiB of float32 weights or 64 KiB of int8) built
    straight from the IR, so the probe times the engine's own dense kernel without an
    importer; the weights are packed (and quantised) as a loaded model's are; ``activations``
    as edgernn.load takes it (with int8)."""
    from .ir.dims import Dim
    from .ir.graph import Graph, Node, Value
    from .model import Model
    from .passes.pack import pack_weights
    from .passes.quantize import quantize_weights
    rng = np.random.default_rng(0)
    B = Dim(1, b=1)
    x = Value("x", shape=(B, PROBE_COLS))
    w = Value("w", shape=(PROBE_ROWS, PROBE_COLS), const=(rng.standard_normal((PROBE_ROWS, PROBE_COLS)) * 0.05).astype(np.float32))
    b = Value("b", shape=(PROBE_ROWS,), const=np.zeros(PROBE_ROWS, np.float32))
    y = Value("y", shape=(B, PROBE_ROWS))
    g = Graph(nodes=[Node("dense", "probe_dense", [x, w, b], [y])], inputs=[x], outputs=[y], source="<probe>")
    if int8:
        quantize_weights(pack_weights(g))
    return Model(g, source="<dense probe>", activations=activations)


def measure_engine_gflops(int8=False, target_s=0.002, rounds=25, activations="float32"):
    """Best-of-rounds GFLOP/s of the engine's dense kernel on the 256x256 probe."""
    from .breakdown import time_rows
    m = _probe_model(int8, activations)
    work = np.random.default_rng(1).standard_normal((1, m.plan.work_size)).astype(np.float32)
    t = time_rows(m.plan, work, m.plan.prog, target_s=target_s, rounds=rounds)
    return m.flops_per_step() / t / 1e9


@jit
def _repeat_sigmoid(n, v):
    for _ in range(n):
        activate_inplace(SIGMOID, v, np.float32(0.0), np.float32(0.0))


@jit
def _dependent_ops(n, x):
    """2n cycles on any core: each iteration is an add then an xor (1-cycle integer ops,
    no shifted operand), the next one waits for both."""
    for i in range(n):
        x = (x + i) ^ 0x5555555555555555
    return x


def _best_time(fn, *args, rounds):
    fn(*args)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best


def measure_act_ns(rounds=15):
    """ns per element of the kernels' vectorised sigmoid (ops.activations.activate_inplace)."""
    v = np.random.default_rng(2).standard_normal(ACT_PROBE).astype(np.float32)
    n = 2000
    return _best_time(_repeat_sigmoid, n, v, rounds=rounds) / (n * ACT_PROBE) * 1e9


def measure_clock_ghz(n=20_000_000, rounds=5):
    """The core clock while busy (turbo included), from a chain of dependent 1-cycle ops."""
    return 2 * n / _best_time(_dependent_ops, n, 1, rounds=rounds) / 1e9


def measure_dram_gbs(nbytes=None, rounds=5):
    """Best single-thread read bandwidth of a NumPy sum over an array far larger than cache."""
    if nbytes is None:
        nbytes = 128 * 1024 * 1024
    a = np.ones(nbytes // 4, np.float32)
    return a.nbytes / _best_time(a.sum, rounds=rounds) / 1e9


def host_device(call_overhead_us, measured=None):
    """A measured profile of this machine (the calibration point of every prediction).

    measured: values already measured ({fact: value}, e.g. a previous run's "host" facts);
    the others are measured now."""
    import platform
    given = dict(measured or {})
    m = "measured: "
    probes = {
        "matvec_gflops": (lambda: measure_engine_gflops(False), 3, "engine dense 256x256 probe, float32 weights"),
        "matvec_gflops_int8": (lambda: measure_engine_gflops(True), 3, "engine dense 256x256 probe, int8 weights"),
        "matvec_gflops_int8_act": (lambda: measure_engine_gflops(True, activations="int8"), 3,
                                   "engine dense 256x256 probe, int8 weights and activations"),
        "act_ns": (measure_act_ns, 4, "vectorised sigmoid over 1024 floats (edgernn.devices.measure_act_ns)"),
        "clock_ghz": (measure_clock_ghz, 3, "chain of dependent integer ops (edgernn.devices.measure_clock_ghz)"),
        "dram_read_gbs": (measure_dram_gbs, 2, "numpy sum over 128 MiB (edgernn.devices.measure_dram_gbs)"),
        "llc_kib": (_largest_cache_kib, 0, "sysconf / sysfs cache size"),
    }
    facts = {}
    for key, (probe, digits, how) in probes.items():
        value = given[key] if key in given else probe()
        facts[key] = {"value": round(value, digits) if digits else value, "source": m + how}
    facts["call_overhead_us"] = {"value": round(call_overhead_us, 3), "source": m + "Stream.step with an empty program"}
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
    (save it as NAME.json in a folder that --devices-dir or $EDGERNN_DEVICES_DIR names, to
    predict other models for this board with --device NAME, or to check the
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
