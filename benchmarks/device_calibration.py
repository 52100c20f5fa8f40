"""How far is the device prediction off? Checked where it can be: on this machine.

    python -m benchmarks.device_calibration [--frames 20000]

This machine gets a measured profile (engine GFLOP/s from a dense probe, DRAM read GB/s from
a NumPy probe, per-call overhead from Stream.step with an empty program); the same roofline
that predicts a Pi then predicts this machine, and is compared with the measured p50 for each
benchmark model. Then the example model is predicted on every shipped device profile.
Prints two tables and writes benchmarks/results/device_calibration.json.
"""
import argparse
import json
from pathlib import Path

import edgernn
from benchmarks.models import EXAMPLE, benchmark_models
from edgernn.devices import available_devices, host_device, load_device, predict, workload_of

OUT = Path(__file__).resolve().parent / "results" / "device_calibration.json"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--period", default="10ms")
    args = ap.parse_args()
    rows, host_facts = [], None
    print(f"{'model':<42} {'MFLOP':>7} {'weights':>9} {'measured p50':>13} {'predicted':>10} {'error':>7}"
          f"   (compute + overhead)")
    for label, path, batch in benchmark_models():
        r = edgernn.profile(path, period=args.period, frames=args.frames, batch=batch, device="rpi4",
                            breakdown=False, progress=False)
        hc, d = r.device["host_check"], r.device
        host = host_device(d["host"]["call_overhead_us"], d["host"]["engine_gflops"],
                           d["host"]["dram_read_gbs"], d["host"]["llc_kib"])
        here = predict(host, workload_of(edgernn.load(path), batch or 1), host)
        rows.append({"model": label, "batch": batch, "mflop": d["flops_per_step"] / 1e6,
                     "weight_bytes": r.memory["weight_bytes"], "measured_p50_us": hc["measured_p50_us"],
                     "predicted_us": hc["predicted_us"], "error": hc["error"],
                     "compute_us": here["compute_us"], "overhead_us": here["overhead_us"], "host": d["host"]})
        host_facts = d["host"] if str(path) == str(EXAMPLE) and batch is None else host_facts
        print(f"{label:<42} {d['flops_per_step'] / 1e6:7.3f} {r.memory['weight_bytes'] / 1024:7.0f}KiB "
              f"{hc['measured_p50_us']:10.1f} us {hc['predicted_us']:7.1f} us {100 * hc['error']:+6.0f}%"
              f"   ({here['compute_us']:.1f} + {here['overhead_us']:.1f})", flush=True)
    print(f"\nthis machine: engine {host_facts['engine_gflops']:.2f} GFLOP/s, DRAM read "
          f"{host_facts['dram_read_gbs']:.1f} GB/s, call overhead {host_facts['call_overhead_us']:.2f} us (example model)")

    host = host_device(host_facts["call_overhead_us"], host_facts["engine_gflops"], host_facts["dram_read_gbs"],
                       host_facts["llc_kib"])
    model = edgernn.load(str(EXAMPLE))
    from edgernn.profile import parse_period
    period = parse_period(args.period)
    preds = []
    print(f"\n{EXAMPLE.name} predicted per step at a {args.period} period:")
    for name in sorted({p.stem for p in available_devices().values()}):
        dev = load_device(name)
        p = predict(dev, workload_of(model), host, period)
        preds.append(p)
        print(f"  {dev.title:<58} warm {p['warm_us']:7.1f} us  cold {p['cold_us']:7.1f} us  "
              f"margin {100 * p['margin_cold']:5.1f}%  {'met' if p['meets_period'] else 'NOT met'}")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"frames": args.frames, "calibration": rows, "host": host_facts,
                               "example_predictions": preds}, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
