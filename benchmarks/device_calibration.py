"""How far is the device prediction off? Checked where it can be: on this machine.

    python -m benchmarks.device_calibration [--frames 20000]

This machine gets a measured profile (the engine's dense kernel with float32 and int8 weights,
its vectorised sigmoid, a clock probe, a NumPy DRAM read probe, Stream.step with an empty
program); the same formulas that predict a Pi from its kernels' rates then predict this
machine, and are compared with the measured p50 of each benchmark model (float32, and for the
example and the 2xLSTM(128) int8 weights, and int8 weights and activations). Then the example model is predicted on every
shipped device profile, float32 and int8. Prints both tables and writes
benchmarks/results/device_calibration.json.
"""
import argparse
import json
from pathlib import Path

import edgernn
from benchmarks.models import EXAMPLE, benchmark_models
from edgernn.devices import available_devices, host_device, load_device, predict, workload_of
from edgernn.profile import parse_period

OUT = Path(__file__).resolve().parent / "results" / "device_calibration.json"
INT8_TOO = ("kws example 2xLSTM(64)", "2xLSTM(128) on 40")
#: edgernn.load's arguments per weights column ("int8 act": int8 weights and activations)
LOADS = {"float32": {}, "int8": {"weights": "int8"}, "int8 act": {"weights": "int8", "activations": "int8"}}


def calibration_rows(frames, period):
    """(label, weights, path, batch) -> measured p50 vs the prediction for this machine."""
    cases = []
    for label, path, batch in benchmark_models():
        cases.append((label, "float32", path, batch))
        if label in INT8_TOO:
            cases += [(label, "int8", path, batch), (label, "int8 act", path, batch)]
    rows = []
    print(f"{'model':<42} {'weights':<8} {'MFLOP':>6} {'weights':>9} {'measured p50':>13} {'predicted':>10} "
          f"{'error':>6}   (matvec + activations + rest + overhead)")
    for label, weights, path, batch in cases:
        model = edgernn.load(path, **LOADS[weights])
        r = edgernn.profile(model, period=period, frames=frames, batch=batch, device="rpi4",
                            breakdown=False, progress=False)
        hc, hf = r.device["host_check"], r.device["host"]
        host = host_device(hf["call_overhead_us"], hf)
        here = predict(host, workload_of(model, batch or 1), host)
        rows.append({"model": label, "weights": weights, "batch": batch, "mflop": here["flops_per_step"] / 1e6,
                     "weight_bytes": r.memory["weight_bytes"], "measured_p50_us": hc["measured_p50_us"],
                     "predicted_us": hc["predicted_us"], "error": hc["error"],
                     **{k: here[k] for k in ("matvec_us", "act_us", "elementwise_us", "overhead_us")}, "host": hf})
        print(f"{label:<42} {weights:<8} {here['flops_per_step'] / 1e6:6.3f} {r.memory['weight_bytes'] / 1024:7.0f}KiB "
              f"{hc['measured_p50_us']:10.2f} us {hc['predicted_us']:7.2f} us {100 * hc['error']:+5.0f}%   "
              f"({here['matvec_us']:.2f} + {here['act_us']:.2f} + {here['elementwise_us']:.2f} + "
              f"{here['overhead_us']:.2f})", flush=True)
    return rows


def kernel_rows():
    """Cycles per NEON vector of each kernel loop on every shipped spec-sheet profile, and what bounds it."""
    from edgernn.devices import ACTIVATION, MATVEC_F32, MATVEC_INT8
    print("\nkernel loops per 128-bit vector (cycles, the bound):")
    print(f"  {'device':<18} {'clock':>7} {'matvec float32':>22} {'matvec int8':>20} {'activation':>22}")
    out = []
    for name in sorted({p.stem for p in available_devices().values()}):
        dev = load_device(name)
        cells, row = [], {"device": name}
        for key, ops, chain in (("f32", MATVEC_F32, "inorder_matvec_cycles"), ("int8", MATVEC_INT8, None),
                                ("act", ACTIVATION, "inorder_act_cycles")):
            b = dev.loop_bounds(ops, chain)
            worst = max(b, key=b.get)
            row[key] = {"cycles": b[worst], "bound": worst}
            cells.append(f"{b[worst]:5.1f} {worst:<14}")
        r = dev.rates()
        row.update(matvec_gflops=r.matvec_f32 / 1e9, matvec_gflops_int8=r.matvec_int8 / 1e9, act_ns=r.act_s * 1e9)
        out.append(row)
        print(f"  {name:<18} {dev.value('clock_ghz'):4.2f} GHz {cells[0]:>22} {cells[1]:>20} {cells[2]:>22}")
    return out


def device_rows(host, period_s):
    """The example model, float32 and int8 weights, on every shipped profile."""
    models = {w: edgernn.load(str(EXAMPLE), weights=w) for w in ("float32", "int8")}
    out = []
    print(f"\n{EXAMPLE.name} per step at a {period_s * 1e3:g} ms period (warm: weights in cache; cold: read "
          "from DRAM each step):")
    print(f"  {'device':<18} {'matvec GFLOP/s':>14} {'act':>7} {'overhead':>9} {'float32 warm':>13} "
          f"{'cold':>8} {'int8 warm':>10} {'cold':>8} {'margin':>7}")
    for name in sorted({p.stem for p in available_devices().values()}):
        dev = load_device(name)
        p = {w: predict(dev, workload_of(m), host, period_s) for w, m in models.items()}
        f, q = p["float32"], p["int8"]
        out.append({"device": name, "float32": f, "int8": q})
        print(f"  {name:<18} {f['matvec_gflops']:6.2f} / {f['matvec_gflops_int8']:5.2f} {f['act_ns']:5.1f}ns "
              f"{f['overhead_us']:6.1f} us {f['warm_us']:8.1f} us {f['cold_us']:5.0f} us {q['warm_us']:7.1f} us "
              f"{q['cold_us']:5.0f} us {100 * f['margin_cold']:6.1f}%")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--period", default="10ms")
    args = ap.parse_args()
    rows = calibration_rows(args.frames, args.period)
    hf = rows[0]["host"]
    print(f"\nthis machine (example model's run): matvec {hf['matvec_gflops']:.1f} GFLOP/s float32, "
          f"{hf['matvec_gflops_int8']:.1f} int8; sigmoid {hf['act_ns']:.3f} ns; clock {hf['clock_ghz']:.2f} GHz; "
          f"call overhead {hf['call_overhead_us']:.2f} us; DRAM read {hf['dram_read_gbs']:.1f} GB/s")
    kernels = kernel_rows()
    preds = device_rows(host_device(hf["call_overhead_us"], hf), parse_period(args.period))
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"frames": args.frames, "calibration": rows, "host": hf, "kernels": kernels,
                               "example_predictions": preds}, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
