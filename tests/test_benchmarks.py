"""The benchmark scripts that docs/performance.md quotes still run and print what it reads.

Smoke tests, on the tiny benchmark model and a few calls: they catch a script broken by a
change of the kernels' signatures (chunk_parts calls them directly), of the Stream API or of
its native entry (call_parts calls it as Stream.step does). They check the output's structure
and invariants, never a time.
"""
import re
from pathlib import Path

import pytest

pytest.importorskip("onnx")

from benchmarks import call_parts, chunk_parts, engine_ab, process_spread, tail_latency  # noqa: E402

NUMBER = r"(-?\d+\.\d+)"


def test_chunk_parts_times_every_part(capsys):
    assert chunk_parts.main(["gru1x37", "--frames", "8"]) == 0
    out = capsys.readouterr().out
    whole = float(re.search(r"whole chunk \(engine\.run_chunk\)\s+" + NUMBER, out).group(1))
    parts = [float(v) for v in re.findall(r"op \d+ .*?\s" + NUMBER + "$", out, re.M)]
    names = re.findall(r"op \d+\s+(\S.*?)\s+-?\d+\.\d+$", out, re.M)
    assert whole > 0 and parts and all(v > 0 for v in parts)
    for part in ("input projections", "recurrent pass", "(the same, panels always forward)", "cell",
                 "state carried"):
        assert any(n.startswith(part) for n in names), part
    total = float(re.search(r"sum of the parts\s+" + NUMBER, out).group(1))
    forward_only = sum(float(v) for v in re.findall(r"panels always forward\)\s+" + NUMBER, out))
    assert total == pytest.approx(sum(parts) - forward_only, abs=0.01)      # the forward-only row is not a part


def test_tail_latency_prints_every_row(capsys):
    assert tail_latency.main(["gru1x37", "--calls", "300"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^  (\S.*?)\s+" + r"\s+".join([NUMBER] * 3) + r"\s+(\d+\.\d+)%\s+" + NUMBER + r"\s+(\d+)$",
                      out, re.M)
    assert [r[0].split(" (")[0].split(",")[0] for r in rows] == [
        "Stream.step", "Stream.step", "compute only", "read of the weights' bytes", "read of a quarter of them"]
    for _, p50, p99, ratio, share, _extra, burst in rows:
        assert 0 < float(p50) <= float(p99)
        # p50 and p99 are printed to 0.01 µs: the ratio of the printed values may differ from
        # the printed ratio by as much as their rounding allows (2 % at p50 = 0.25 µs).
        lowest = (float(p99) - 0.005) / (float(p50) + 0.005) - 0.005
        highest = (float(p99) + 0.005) / (float(p50) - 0.005) + 0.005
        assert lowest <= float(ratio) <= highest
        assert 0 <= float(share) <= 100 and int(burst) <= 300


def test_call_parts_times_every_part(capsys):
    assert call_parts.main(["--calls", "200"]) == 0
    out = capsys.readouterr().out
    names = re.findall(r"^  (\S.*?)\s+-?\d+\.\d+$", out, re.M)
    assert names[:4] == ["Stream.step (the whole call)", "native entry, with the stream's handle",
                         "np.empty of the output", "Python call and frame checks"]
    assert sum(n.startswith("empty Numba entry") for n in names) == 4 and names[-1] == "perf_counter_ns()"


def test_process_spread_times_every_process(capsys, tmp_path):
    """Each process's figures (step, engine, the BLAS floor) are in the JSON and the printed
    min/median/max follow from them;
    an .ernn source (converted on the way, int8) reports its arena as the mapped file."""
    import json
    assert process_spread.main(["gru1x37", "--processes", "2", "--json", str(tmp_path / "a.json")]) == 0
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "a.json").read_text())["results"][0]
    steps = [r["step_us"] for r in result["runs"]]
    assert len(steps) == 2 and all(t > 0 for t in steps)
    printed = [float(v) for v in re.search(r"\n  step  (.*)\n", out).group(1).split()]
    assert printed == pytest.approx(steps, abs=0.001)
    summary = result["step_us"]
    assert (summary["min"], summary["max"]) == (min(steps), max(steps))
    assert summary["max_over_min"] == pytest.approx(max(steps) / min(steps))
    low, mid, high = (float(re.search(k + r" +" + NUMBER, out).group(1)) for k in ("min", "median", "max"))
    assert low <= mid <= high and low == pytest.approx(min(steps), abs=0.01)
    floors = [r["floor_us"] for r in result["runs"]]
    printed = [float(v) for v in re.search(r"\n  floor  (.*)\n", out).group(1).split()]
    assert printed == pytest.approx(floors, abs=0.001) and all(t > 0 for t in floors)
    assert result["floor_us"]["max_over_min"] == pytest.approx(max(floors) / min(floors))
    assert process_spread.main(["gru1x37", "--processes", "1", "--source", "ernn", "--weights", "int8",
                                "--json", str(tmp_path / "b.json")]) == 0
    ernn = json.loads((tmp_path / "b.json").read_text())["results"][0]
    assert ernn["source"] == "ernn" and ernn["runs"][0]["huge_page_bytes"] == 0 and not ernn["runs"][0]["advised"]


def test_engine_ab_loads_both_checkouts_with_the_weights_asked(capsys, tmp_path):
    """benchmarks/engine_ab.py, this checkout against itself, int8 activations: each side's
    processes report a step and an engine time, and the printed ratios follow from them."""
    import json
    root = Path(__file__).resolve().parents[1]
    assert engine_ab.main([str(root), "--rounds", "1", "--frames", "200", "--models", "gru1x37", "--weights",
                           "int8 act", "--json", str(tmp_path / "ab.json")]) == 0
    report = json.loads((tmp_path / "ab.json").read_text())
    assert report["weights"] == "int8 act"
    med = report["models"]["gru1x37"]["median"]
    assert all(med[k][m] > 0 for k in ("this", "other") for m in ("step_us", "engine_us"))
    ratio = float(re.search(r"gru1x37\s+median\s+\S+µs\s+\S+µs\s+([\d.]+)", capsys.readouterr().out).group(1))
    assert ratio == pytest.approx(med["this"]["step_us"] / med["other"]["step_us"], abs=0.001)


def test_compile_parts_times_every_part():
    """benchmarks/compile_parts.py, which docs quote for what a cold start compiles, in a fresh
    process (its empty Numba cache must be set before numba is imported)."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "benchmarks.compile_parts"], cwd=root, capture_output=True,
                         text=True, check=True).stdout
    parts = re.findall(r"^  (\S.*?)\s+" + NUMBER + " s$", out, re.M)
    assert [p[0].split(",")[0] for p in parts] == ["panel block", "panel block", "kernel binary", "kernel gru_fused",
                                                    "kernel dense", "the first stream (the step's entry point)"]
    assert all(float(p[1]) > 0 for p in parts)


def test_step_models_times_each_case_against_its_runtime(tmp_path, capsys):
    """benchmarks/step_models.py on the step fixtures only (a few calls): one row per file,
    each with a positive time for edgernn and for the runtime that reads that format."""
    import sys
    from benchmarks import step_models
    argv = sys.argv
    sys.argv = ["step_models.py", "--calls", "60", "--rounds", "1", "--only", "step", "--json", str(tmp_path / "s.json")]
    try:
        step_models.main()
    finally:
        sys.argv = argv
    rows = re.findall(r"^\| (\S+) \| " + NUMBER + r" \| (ONNX Runtime|LiteRT) " + NUMBER + r" \| " + NUMBER + r"x \|$",
                      capsys.readouterr().out, re.M)
    names = {r[0] for r in rows}
    assert {"conv_gru_step_ts.onnx", "conv_gru_step_dy.onnx", "k3_gru_step.tflite"} <= names
    assert all(float(r[1]) > 0 and float(r[3]) > 0 for r in rows)
    assert all((r[2] == "LiteRT") == r[0].endswith(".tflite") for r in rows)


def test_time_conv_times_every_model(tmp_path, capsys):
    """benchmarks/time_conv.py with a few frames: one row per model, with its receptive field,
    delay and stride from the plan and positive times for edgernn and ONNX Runtime."""
    import sys
    from benchmarks import time_conv
    argv = sys.argv
    sys.argv = ["time_conv.py", "--frames", "64", "--rounds", "1", "--json", str(tmp_path / "t.json")]
    try:
        time_conv.main()
    finally:
        sys.argv = argv
    rows = re.findall(r"^\| (\w+) \| (\d+) \| (\d+) \| (\d+) \| " + r" \| ".join([NUMBER] * 4) + r" \| "
                      + r"x \| ".join([NUMBER] * 3) + r"x \|$", capsys.readouterr().out, re.M)
    facts = {r[0]: tuple(int(v) for v in r[1:4]) for r in rows}
    assert set(facts) == set(time_conv.MODELS)
    assert facts["tcn_lstm"] == (15, 0, 1) and facts["avgpool_gru"] == (4, 3, 4)    # 1 + 2 + 4 + 8 frames
    assert all(float(v) > 0 for r in rows for v in r[4:8])
    every, due = {r[0]: float(r[6]) for r in rows}, {r[0]: float(r[7]) for r in rows}
    assert due["tcn_lstm"] == every["tcn_lstm"]              # stride 1: the same calls


def test_kernel_asm_counts_the_row_kernels_loops():
    """benchmarks/kernel_asm.py --row-kernels, as docs/aarch64.md quotes it (in a process of its
    own: it sets NUMBA_OPT before Numba loads): the unary and binary rows have NEON loops on a
    Cortex-A72."""
    import subprocess
    import sys
    from pathlib import Path
    out = subprocess.run([sys.executable, "-m", "benchmarks.kernel_asm", "--row-kernels", "--cpu", "cortex-a72"],
                         cwd=Path(__file__).parents[1], capture_output=True, text=True, check=True).stdout
    counts = {m[0]: (int(m[1]), int(m[2])) for m in re.findall(r"^cortex-a72\s+(\S+)\s+(\d+)\s+(\d+)\s+\d+$", out, re.M)}
    assert {"conv", "binary", "unary", "copy", "pad"} <= set(counts), out
    assert counts["unary"][1] > 0 and counts["binary"][1] > 0, out
    assert all(loops >= vector for loops, vector in counts.values())


def test_kernel_asm_x86_matrix_block_keeps_its_accumulators_in_registers():
    """benchmarks/kernel_asm.py --x86 (cross-compiled, any host): the batched matrix block's
    inner loop keeps its accumulators in registers (no stack access) on AVX-512 cores (4 x 64
    outputs in zmm registers; LLVM's default 256-bit vectors spilled them every iteration) and
    on AVX2 cores (4 x 16 outputs per pass in ymm registers; 4 x 64 spilled there too)."""
    import subprocess
    import sys
    from pathlib import Path
    run = subprocess.run([sys.executable, "-m", "benchmarks.kernel_asm", "--x86"],
                         cwd=Path(__file__).parents[1], capture_output=True, text=True)
    if run.returncode != 0 and "x86" in run.stderr.lower():
        pytest.skip(f"this llvmlite cannot target x86-64: {run.stderr.strip().splitlines()[-1]}")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    rows = re.findall(r"^(\S+)\s+(float32|int8)\s+(\d+)\s+\S+\s+(\w+)\s+(\d+)\s+(\d+)\s+(\d+)$", out, re.M)
    assert {(r[0], r[1]) for r in rows} == {(c, w) for c in ("haswell", "skylake-avx512", "sapphirerapids")
                                            for w in ("float32", "int8")}, out
    for cpu, weights, part, register, fmas, loads, stack in rows:
        wide = cpu != "haswell"
        assert (register, int(part), int(stack)) == ("zmm" if wide else "ymm", 64 if wide else 16, 0), (cpu, out)
        assert int(fmas) % 8 == 0 and int(fmas) >= (16 if wide else 8), (cpu, out)      # 4 rows x part / lanes


def test_kernel_asm_blocks_keep_their_accumulators_in_registers():
    """benchmarks/kernel_asm.py --blocks: the 4-row matrix block, 64- and 16-lane panels, float32
    and int8, spills no vector register in its inner loop on the A72, A76 and x86 cores (the
    16-lane panel's 4 x 64 partial sums took 82 spills per iteration on an A72 when the rows
    were interleaved; they now run one row after another there). The A53 is left out: LLVM
    unrolls its loops eightfold, and its int8 loops spill (docs/profiling.md)."""
    import subprocess
    import sys
    from pathlib import Path
    run = subprocess.run([sys.executable, "-m", "benchmarks.kernel_asm", "--blocks"],
                         cwd=Path(__file__).parents[1], capture_output=True, text=True)
    if run.returncode != 0 and ("x86" in run.stderr.lower() or "aarch64" in run.stderr.lower()):
        pytest.skip(f"this llvmlite cannot target both architectures: {run.stderr.strip().splitlines()[-1]}")
    assert run.returncode == 0, run.stderr
    rows = re.findall(r"^(\S+)\s+(64|16)\s+(float32|int8)\s+(\d+)\s+(\d+)\s+(\d+)$", run.stdout, re.M)
    checked = [r for r in rows if r[0] != "cortex-a53"]
    assert len(checked) == 5 * 4, run.stdout
    for cpu, lanes, weights, part, fmas, spills in checked:
        assert int(fmas) >= 8 and int(spills) == 0, (cpu, lanes, weights, run.stdout)


def test_kernel_asm_dot_runs_sdot_on_the_a76_and_vnni_alone():
    """benchmarks/kernel_asm.py --dot: the int8 x int8 kernel compiled as Numba would on each
    ARM core. On the A76 one ``sdot`` per 16 multiply-adds, under half the instructions of the
    float32 loop per multiply-add (7.00 per 16 on that core, the table's 1.75 per 4); on the
    A72 an smull and an smlal2 per 16 (under 4.5 instructions), on the in-order A53 two smull.
    Nothing spills on the A72 and A76; edgernn.devices prices each row's counts. On an AVX-512
    VNNI core the loop is ``vpdpbusd`` (64 multiply-adds each), its loads and the loop's
    counter: no offset subtracted per step (the weights are stored with it,
    matvec_dot.weight_bias), no spill."""
    import subprocess
    import sys

    from edgernn import devices
    run = subprocess.run([sys.executable, "-m", "benchmarks.kernel_asm", "--dot"],
                         cwd=Path(__file__).parents[1], capture_output=True, text=True)
    if run.returncode != 0 and "aarch64" in run.stderr.lower():
        pytest.skip(f"this llvmlite cannot target AArch64: {run.stderr.strip().splitlines()[-1]}")
    assert run.returncode == 0, run.stderr
    rows = re.findall(r"^(cortex-a\d+)\s+(neon|pairs|sdot)\s+(\d+)\s+(\d+)\s+\S+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+"
                      r"([\d.]+)\s+([\d.]+)\s+(\d+)$", run.stdout, re.M)
    assert len(rows) == 8, run.stdout
    unpicked = [r for r in rows if r[:2] == ("cortex-a53", "pairs")]          # shown for why it is not picked
    assert len(unpicked) == 2 and all(int(r[-1]) > 0 for r in unpicked), run.stdout
    rows = [r for r in rows if r not in unpicked]
    priced = {("cortex-a76", "1"): devices.MATVEC_DOT, ("cortex-a76", "4"): devices.MATVEC_DOT_ROWS,
              ("cortex-a72", "1"): devices.MATVEC_DOT_PAIRS, ("cortex-a72", "4"): devices.MATVEC_DOT_PAIRS_ROWS,
              ("cortex-a53", "1"): devices.MATVEC_DOT_NEON, ("cortex-a53", "4"): devices.MATVEC_DOT_NEON_ROWS}
    for cpu, method, rows_, part, insts, loads, stores, vec, mul, spills in rows:
        assert method == {"cortex-a76": "sdot", "cortex-a72": "pairs", "cortex-a53": "neon"}[cpu], run.stdout
        assert float(mul) == (1.0 if method == "sdot" else 2.0), run.stdout
        assert float(insts) < {"sdot": 2.0, "pairs": 4.5, "neon": 6.0}[method], run.stdout
        if cpu != "cortex-a53":
            assert int(spills) == 0, (cpu, rows_, run.stdout)
        ops = priced[cpu, rows_]                     # edgernn.devices prices these counts, per 4 multiply-adds
        assert [float(v) for v in (insts, loads, stores, vec)] == pytest.approx(
            [4 * ops.insts, 4 * ops.loads, 4 * ops.stores, 4 * ops.fp], abs=0.006), (cpu, rows_)
    vnni = re.findall(r"^sapphirerapids\s+vnni\s+(\d+)\s+64\s+\S+\s+([\d.]+)\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s+"
                      r"([\d.]+)\s+(\d+)$", run.stdout, re.M)
    assert [r[0] for r in vnni] == ["1", "4"], run.stdout
    for rows_, insts, vec, mul, spills in vnni:
        assert float(mul) == 0.25 and float(vec) == 0.25 and int(spills) == 0, run.stdout
        assert float(insts) <= (0.75 if rows_ == "1" else 0.45), run.stdout


def test_front_ends_times_every_setting(capsys):
    """benchmarks/front_ends.py, which docs/front-ends.md quotes: a row per setting."""
    from benchmarks import front_ends
    assert front_ends.main(["--windows", "20"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "µs" not in line]
    assert [r.split(" | ")[0][2:] for r in rows] == [name for name, _, _ in front_ends.SETTINGS]
    assert all(float(r.split(" | ")[1].rstrip(" |")) > 0 for r in rows)


def test_perf_ort_batch_call_steps_the_same_streams_as_edgernn(tmp_path):
    """perf.py's ONNX Runtime batch row runs B streams in one call with their states fed back:
    its outputs, frame after frame, are edgernn's batched stream's (ORT as the oracle)."""
    pytest.importorskip("onnxruntime")
    import numpy as np
    import onnx

    import edgernn
    from benchmarks import perf
    from exporters.synthetic import named_model
    for name in ("gru1x37", "lstm2x128"):
        single, batched = tmp_path / f"{name}.onnx", tmp_path / f"{name}_b8.onnx"
        onnx.save(named_model(name, state_io=True), single)
        onnx.save(named_model(name, state_io=True, batch=8), batched)
        ort_step = perf.ort_runner(batched, 8)
        stream = edgernn.load(single).stream(batch=8)
        frames = np.random.default_rng(2).standard_normal((5, 8, 13 if name == "gru1x37" else 40)).astype(np.float32)
        for f in frames:
            np.testing.assert_allclose(ort_step(f).reshape(8, -1), stream.step(f), atol=1e-5)


def test_perf_anchor_takes_the_fastest_backend_of_its_two_runs():
    """perf.py --anchor: a native implementation's timing command (here printf standing in for
    a built RTNeural) is read per model; the report takes its fastest backend's mean."""
    from benchmarks import perf
    line = '{"backend": "%s", "models": {"lstm2x128": {"median_us": %s}}}'
    cmd = "printf '%s\\n' " + " ".join(f"'{line % (b, t)}'" for b, t in (("eigen", 6.5), ("xsimd", 9.0)))
    before = perf.run_anchor(cmd, "lstm2x128")
    assert before == {"eigen": 6.5, "xsimd": 9.0}
    summary = perf.anchor_summary(before, {"eigen": 7.5, "xsimd": 8.0})
    assert summary["backend"] == "eigen" and summary["step_us"] == pytest.approx(7.0)
    assert perf.run_anchor(cmd, "gru1x37") == {}
    with pytest.raises(SystemExit):
        perf.anchor_summary({}, {})
