"""The text report of a :class:`~edgernn.profile.ProfileResult` (what ``edgernn profile`` prints)."""
from .links import doc
from .units import format_bytes


def _t(us, u):
    """A duration in the unit that reads best: 12.3 µs, 4.56 ms, 1.23 s."""
    if us is None:
        return "-"
    if us >= 1e6:
        return f"{us / 1e6:.3g} s"
    if us >= 1e3:
        return f"{us / 1e3:.4g} ms"
    return f"{us:.3g} {u}" if us < 100 else f"{us:.0f} {u}"


_b = format_bytes          # the same byte formatter as edgernn info (IEC: KiB, MiB)


def _table(rows, aligns):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [str(c).rjust(w) if a == ">" else str(c).ljust(w) for c, w, a in zip(r, widths, aligns)]
        out.append("  " + "  ".join(cells).rstrip())
    return out


def format_report(r, u="µs"):
    L = []
    streams = "1 stream" if r.batch is None else f"batch of {r.batch} streams stepped together"
    L.append(f"edgernn profile: {r.model}")
    per = ""
    if r.period_us:
        stored = f", from the file's {r.period_source}" if r.period_source not in (None, "argument") else ""
        per = f", period {_t(r.period_us, u)} ({1e6 / r.period_us:.4g} Hz{stored})"
    L.append(f"  {r.frames} timed steps, {streams}{per}; {r.warmup['steps']} warm-up steps reported apart")
    h = r.host
    L.append(f"  host: {h.get('machine')} {h.get('cpu')}, Python {h.get('python')}, numpy {h.get('numpy')}, "
             f"numba {h.get('numba')} (NUMBA_CPU_NAME={h.get('numba_cpu_name')})")
    L.append("")
    load = "-" if r.load_ms is None else f"{r.load_ms:.0f} ms"
    L.append(f"load (import + passes + plan): {load}; first step (Numba compile or cache load): {r.compile_ms:.0f} ms")
    w = r.warmup
    if w["steps"]:
        L.append(f"warm-up ({w['steps']} steps): first {_t(w['first_us'], u)}, p50 {_t(w['p50_us'], u)}, "
                 f"max {_t(w['max_us'], u)}")
    L.append("")
    s = r.latency_us
    L.append(f"latency per step (Stream.step, {u})")
    head = ["p50", "p90", "p99", "p99.9", "max", "mean", "std", "jitter p99-p50"]
    vals = [s["p50"], s["p90"], s["p99"], s["p99_9"], s["max"], s["mean"], s["std"], r.jitter_us]
    L += _table([head, [f"{v:.1f}" for v in vals]], ">" * len(head))
    if r.period_us:
        L.append(f"real-time factor {r.real_time_factor:.4f} (mean step / period): the step uses "
                 f"{100 * r.real_time_factor:.2f}% of each frame period")
        worst = s["max"] / r.period_us
        L.append(f"deadline misses: {r.deadline_misses} of {r.frames} steps over {_t(r.period_us, u)} "
                 f"(worst step = {100 * worst:.1f}% of the period)")
    L.append("")
    m = r.memory
    L.append("memory")
    L.append(f"  weights (shared by all streams): {_b(m['weight_bytes'])}")
    L.append(f"  state per stream:                {_b(m['state_bytes_per_stream'])}")
    L.append(f"  work arena per stream:           {_b(m['work_arena_bytes_per_stream'])}")
    if m.get("int8_activation_copy_bytes"):
        L.append(f"  int8 matrices, interleaved copy: {_b(m['int8_activation_copy_bytes'])}")
    L.append(f"  all arenas of this run:          {_b(m['arena_bytes'])}")
    L.append(f"  process peak RSS:                {_b(m['peak_rss_bytes'])}")
    if r.breakdown:
        L.append("")
        L += _breakdown(r.breakdown, u)
    if r.compare:
        L.append("")
        L += _compare(r, u)
    if r.device:
        L.append("")
        L += _device(r.device, u)
    return "\n".join(L)


def _breakdown(bd, u):
    p50 = bd["step_p50_us"]
    L = [f"per-op breakdown (each program row timed alone, {u} per step; share of the step's p50)"]
    rows = [["node", "op", "rows", u, "share", "GFLOP/s"]]
    for g in sorted(bd["rows"], key=lambda g: -g["time_us"]):
        rate = f"{g['flops'] / g['time_us'] / 1e3:.2f}" if g["flops"] and g["time_us"] > 0 else "-"
        rows.append([g["node"], g["op"], g["program_rows"], f"{g['time_us']:.2f}",
                     f"{100 * g['time_us'] / p50:.1f}%", rate])
    rows.append(["call overhead", "(checks, packing, native call)", "", f"{bd['call_overhead_us']:.2f}",
                 f"{100 * bd['call_overhead_us'] / p50:.1f}%", ""])
    rows.append(["unattributed", "(p50 - overhead - program)", "", f"{bd['unattributed_us']:.2f}",
                 f"{100 * bd['unattributed_us'] / p50:.1f}%", ""])
    L += _table(rows, "<<>>>>")
    L.append(f"  distortion: the rows timed alone sum to {bd['sum_us']:.2f} {u}; the whole program timed "
             f"the same way takes {bd['whole_us']:.2f} {u} ({100 * bd['distortion']:+.1f}%)")
    return L


def _compare(r, u):
    L = [f"compared on the same frames, one thread each ({u} per step of all streams)"]
    base = r.latency_us["p50"]
    rows = [["runtime", "p50", "p90", "p99", "max", "p50 vs edgernn", "max |diff| of outputs"]]
    s = r.latency_us
    rows.append(["edgernn (Stream.step)", f"{s['p50']:.1f}", f"{s['p90']:.1f}", f"{s['p99']:.1f}",
                 f"{s['max']:.1f}", "1.00x", ""])
    notes = []
    for c in r.compare:
        name = c["runtime"] + (f" {c['version']}" if c.get("version") else "") + \
            (f", {c['variant']}" if c.get("variant") else "")
        if "skipped" in c:
            notes.append(f"  {name}: skipped, {c['skipped']}")
            continue
        cs = c["latency_us"]
        diff = "not comparable" if c.get("max_abs_diff") is None else f"{c['max_abs_diff']:.2e}"
        rows.append([name, f"{cs['p50']:.1f}", f"{cs['p90']:.1f}", f"{cs['p99']:.1f}", f"{cs['max']:.1f}",
                     f"{cs['p50'] / base:.2f}x", diff])
        notes.append(f"  {name}: {c['mode']}")
    L += _table(rows, "<>>>>>>")
    return L + notes


def _device(d, u):
    L = [f"prediction for {d['title']} ({d['device']}): the engine's kernels on the core's throughputs, DRAM, "
         f"per-call overhead; see {doc('profiling.md')}"]
    act = f", {d['matvec_gflops_int8_act']:.2f} (int8 activations)" if "matvec_gflops_int8_act" in d else ""
    L.append(f"  one core: matvec {d['matvec_gflops']:.2f} GFLOP/s (float32 weights), {d['matvec_gflops_int8']:.2f} "
             f"(int8){act}; sigmoid/tanh {d['act_ns']:.2f} ns; DRAM read {d['dram_read_gbs']:.2f} GB/s, "
             f"largest cache {d['llc_kib']} KiB")
    fits = "fits in" if d["fits_in_cache"] else "does not fit in"
    L.append(f"  a step: {d['flops_per_step'] / 1e6:.3f} MFLOP, {d['bytes_per_step'] / 1024:.0f} KiB of weights + "
             f"arenas ({fits} cache) -> compute {_t(d['compute_us'], u)} (matvec {_t(d['matvec_us'], u)}, "
             f"activations {_t(d['act_us'], u)}), DRAM {_t(d['memory_us'], u)}, call overhead {_t(d['overhead_us'], u)}")
    L.append(f"  predicted step: {_t(d['warm_us'], u)} with weights in cache, {_t(d['cold_us'], u)} reading them "
             f"from DRAM every step ({d['bound']}-bound)")
    if "period_us" in d:
        verdict = "MET" if d["meets_period"] else "NOT MET"
        L.append(f"  period {_t(d['period_us'], u)}: {verdict}; margin {100 * d['margin_cold']:.1f}% of the period "
                 f"(cold), {100 * d['margin_warm']:.1f}% (warm)")
    hc = d["host_check"]
    L.append(f"  the same model on this machine: predicted {_t(hc['predicted_us'], u)}, measured p50 "
             f"{_t(hc['measured_p50_us'], u)} ({100 * hc['error']:+.0f}%)")
    return L
