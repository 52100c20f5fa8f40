"""The instruction mix of edgernn's hot loops on AArch64: the counts behind the device model.

    python -m benchmarks.kernel_asm [--cpu cortex-a72 ...] [--show]
    python -m benchmarks.kernel_asm --row-kernels --cpu cortex-a72    # NEON loops of the row kernels
    python -m benchmarks.kernel_asm --x86 [--show]      # the x86-64 matrix kernel's register use
    python -m benchmarks.kernel_asm --blocks            # the 4-row block's spills on every core
    python -m benchmarks.kernel_asm --dot [--show]      # the int8 x int8 kernel on each ARM core

Numba's LLVM IR for ``ops.matvec._panel_block`` (one row, as ARM runs it; float32 and int8
weights) and
``ops.activations.activate_inplace`` is taken before optimisation and compiled here for an
AArch64 core with llvmlite's LLVM (the same LLVM Numba uses on a Pi: O3, loop and SLP
vectorisers on, the kernels' own fastmath flags), without an ARM machine. The innermost
vector loop of each is found and its instructions counted per NEON vector of 4 float32 lanes:

    insts            instructions of every kind (issue slots)
    loads / stores   128-bit loads and stores (ldp/stp count 2)
    fp               FP/ASIMD ops on one pipe slot each (fmul, fmla, fadd, tbl, compares, selects, moves)
    cvt              int -> float conversions (scvtf)
    div              divides (fdiv)

``--x86`` compiles the matrix kernel's ROWS-row block (the one batched streams and chunks run)
for x86-64 cores instead (AVX2 and AVX-512) and reports its inner loop: the widest vector
registers it uses, its FMAs and vector loads per iteration, and its stack accesses (a spill
of the accumulators: none is the design, edgernn.ops.matvec).

``--dot`` compiles the int8 x int8 kernel (``ops.matvec_dot``, int8 activations) for each ARM
core the way Numba would on it: ``sdot`` where the core has the dot-product extension
(Cortex-A76), NEON widening multiplies elsewhere (``smull`` + ``smlal2`` on the A72, two
``smull`` on the in-order A53), and for two x86-64 cores (AVX-512 VNNI, AVX2). Numba cannot
compile AArch64 intrinsics for this x86 process, so its IR is taken from Numba's pipeline
without machine code (``no_compile``). Reported per 16 multiply-adds (one ``sdot``, four
float32 ``fmla``): instructions, 128-bit loads and stores, vector (ASIMD) instructions other
than loads and stores, the multiply instructions among them, and vector spills. ``edgernn.devices``
(MATVEC_DOT*) prices the A76, A72 and A53 rows, divided by 4 (per 4 multiply-adds).

``edgernn.devices`` prices these counts with each core's throughputs (MATVEC_OPS, ACT_OPS there
must match this script's output). Compiling ``NUMBA_OPT=0`` IR writes nothing to edgernn's
kernel cache (``EDGERNN_NO_CACHE=1`` is set before edgernn is imported).
"""
import os
import re
import sys

os.environ["NUMBA_OPT"] = "0"
os.environ["EDGERNN_NO_CACHE"] = "1"

TRIPLE = "aarch64-unknown-linux-gnu"
CPUS = ("cortex-a53", "cortex-a72", "cortex-a76")
X86_TRIPLE = "x86_64-unknown-linux-gnu"
#: x86-64 cores and the many-row block's part each runs (edgernn.ops.matvec: WIDE_BLOCK's 64 on
#: AVX-512, NARROW_BLOCK's 16 on AVX2)
X86_CPUS = {"haswell": 16, "skylake-avx512": 64, "sapphirerapids": 64}


def kernel_ir():
    """{kernel name: LLVM IR before optimisation} for the three hot loops."""
    import numpy as np
    from edgernn.ops.activations import SIGMOID, activate_inplace
    from edgernn.ops.matvec import NARROW_BLOCK, PANEL, _panel_block
    rows, part = NARROW_BLOCK                      # the many-row block ARM runs
    work = np.zeros((1, 256), np.float32)
    consts = np.ones(8 * PANEL, np.float32)
    rows_work = np.zeros((rows, 256), np.float32)
    for dtype, s_off in ((np.float32, -1), (np.int8, 0)):
        _panel_block(np.zeros(8 * PANEL, dtype), 0, 8, PANEL, work, 0, 0, 64, consts, s_off, 1, PANEL, PANEL, False)
        _panel_block(np.zeros(8 * PANEL, dtype), 0, 8, PANEL, rows_work, 0, 0, 64, consts, s_off, rows, PANEL, part,
                     False)
    activate_inplace(SIGMOID, np.zeros(64, np.float32), np.float32(0), np.float32(0))
    out = {}
    for sig, ir in _panel_block.inspect_llvm().items():    # the one-row block; the 4-row block ARM runs
        rows = sig[10].literal_value
        out[f"matvec {sig[0].dtype}" + (f" x{rows} rows" if rows > 1 else "")] = ir
    out["activation (sigmoid, tanh)"] = next(iter(activate_inplace.inspect_llvm().values()))
    return out


def compile_for(ir, cpu, triple=TRIPLE, features="+neon"):
    """Assembly of `ir` optimised at O3 for `cpu` (AArch64 unless ``triple`` says otherwise)."""
    import llvmlite.binding as llvm
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    # the options Numba's JIT uses on aarch64 (numba.core.codegen.JITCPUCodegen)
    tm = llvm.Target.from_triple(triple).create_target_machine(
        cpu=cpu, features=features, opt=3, reloc="default", codemodel="jitdefault", jit=True)
    ir = re.sub(r'target triple = ".*"', f'target triple = "{triple}"', ir)
    ir = re.sub(r'target datalayout = ".*"', f'target datalayout = "{tm.target_data}"', ir)
    ir = re.sub(r'"target-(cpu|features)"="[^"]*"', "", ir)
    mod = llvm.parse_assembly(ir)
    # Numba's two module passes (numba.core.codegen: _optimize_final_module): a cheap one
    # (loop vectoriser, no SLP, loop rotation, instcombine, jump threading) then the full one,
    # each followed by its reference-count pruning (NRT incref/decref pairs in a loop would
    # otherwise be calls that spill every register)
    for cheap in (True, False):
        pto = llvm.create_pipeline_tuning_options(speed_level=3)
        pto.loop_vectorization, pto.slp_vectorization = True, not cheap
        pb = llvm.create_pass_builder(tm, pto)
        pm = pb.getModulePassManager()
        if cheap:
            pm.add_loop_rotate_pass()
            pm.add_instruction_combine_pass()
            pm.add_jump_threading_pass()
        pm.add_refprune_pass()
        pm.run(mod, pb)
    return tm.emit_assembly(mod)


def loops(asm):
    """[(label, [instruction, ...])] of blocks that branch back to themselves."""
    out, label, body = [], None, []
    for line in asm.splitlines() + [".Lend:"]:
        m = re.match(r"^(\.LBB\d+_\d+|\.Lend):", line)
        if m:
            if label and any(re.match(rf"(b(\.\w+)?|j\w+)\s+{re.escape(label)}$", i) for i in body):
                out.append((label, body[:[i for i, s in enumerate(body) if s.endswith(label)][-1] + 1]))
            label, body = m.group(1), []
        elif label and line.startswith("\t") and not line.startswith(("\t.", "\t//")):
            body.append(line.strip())
    return out


def classify(body):
    """Counts of one loop iteration, and the float32 lanes it advances (its counter step)."""
    c = dict(insts=len(body), loads=0, stores=0, fp=0, cvt=0, div=0)
    lanes = 4
    for ins in body:
        op = ins.split()[0]
        if op in ("ldr", "ldp", "str", "stp") and re.search(r"\bq\d+", ins):
            c["loads" if op.startswith("ld") else "stores"] += 2 if op.endswith("p") else 1
        elif op in ("scvtf", "ucvtf") and ".4s" in ins:
            c["cvt"] += 1
        elif op == "fdiv" and ".4s" in ins:
            c["div"] += 1
        elif re.search(r"v\d+\.(4s|16b)", ins):
            c["fp"] += 1
        m = re.match(r"subs\s+x\d+, x\d+, #(\d+)", ins)
        if m:
            lanes = int(m.group(1))
    return c, lanes


def hot_loops(asm, kind):
    """The vector loops of interest: the activation's two (sigmoid, tanh: they divide), and
    matvec's pass over the weights (the loop with the most FP work: one weight row of a
    panel, PANEL outputs, per iteration)."""
    if kind.startswith("activation"):
        return [(lab, b) for lab, b in loops(asm) if any(i.startswith("fdiv") and ".4s" in i for i in b)]
    best = max((classify(b)[0]["fp"] + classify(b)[0]["cvt"], lab, b) for lab, b in loops(asm))
    return [(best[1], best[2])]


def block_loop(cpu, lanes, weights, part):
    """(FMAs, label, body) of the many-row matrix block's inner loop (the loop with the most
    FMAs) for panels of ``lanes`` outputs, ``weights`` "float32" or "int8" and ``part`` outputs
    per pass, compiled for ``cpu`` (a Cortex-A core, or an x86-64 one)."""
    import numpy as np
    from edgernn.ops.matvec import NARROW_BLOCK, PANEL, _panel_block
    rows = NARROW_BLOCK[0]               # 4, the same on every machine
    dtype, s_off = (np.float32, -1) if weights == "float32" else (np.int8, 0)
    work = np.zeros((rows, 256), np.float32)
    consts = np.ones(8 * PANEL, np.float32)
    _panel_block(np.zeros(8 * PANEL, dtype), 0, 8, 64, work, 0, 0, 64, consts, s_off, rows, lanes, part, False)
    ir = next(ir for sig, ir in _panel_block.inspect_llvm().items()
              if str(sig[0].dtype) == weights and sig[10].literal_value == rows
              and sig[11].literal_value == lanes and sig[12].literal_value == part)
    arm = cpu.startswith("cortex")
    asm = compile_for(ir, cpu) if arm else compile_for(ir, cpu, X86_TRIPLE, "")
    return max((sum(i.startswith("fmla" if arm else "vfmadd") for i in b), lab, b) for lab, b in loops(asm))


def x86_matvec_report(cpu, part):
    """[(weights, label, register, fmas, vector loads, stack accesses, body)] of the 4-row
    matrix block's inner loop over 64-output panels with ``part`` outputs per pass, compiled
    for x86-64 ``cpu``."""
    from edgernn.ops.matvec import PANEL
    out = []
    for weights in ("float32", "int8"):
        fmas, label, body = block_loop(cpu, PANEL, weights, part)
        register = "zmm" if any("%zmm" in i for i in body) else "ymm" if any("%ymm" in i for i in body) else "xmm"
        loads = sum(bool(re.match(r"vmov\w*\s+-?\d*\(%r(?!sp)", i)) or i.startswith("vbroadcastss") for i in body)
        stack = sum("(%rsp)" in i for i in body)
        out.append((weights, label, register, fmas, loads, stack, body))
    return out


#: (cpu, part of the 4-row block it runs): the NEON cores and the x86 ones above
BLOCK_CPUS = (("cortex-a53", 16), ("cortex-a72", 16), ("cortex-a76", 16)) + tuple(X86_CPUS.items())


def vector_spills(body, arm):
    """Loads and stores of vector registers from the stack in a loop body (a spill)."""
    if arm:
        return sum("[sp" in i and bool(re.search(r"\b[qdsv]\d+", i)) for i in body)
    return sum("(%rsp)" in i and "mm" in i for i in body)


def blocks_report():
    """[(cpu, lanes, weights, part, FMAs, vector spills)] of the 4-row matrix block's inner loop
    for 64- and 16-lane panels, compiled for each core of BLOCK_CPUS with the part it runs."""
    from edgernn.ops.matvec import NARROW, PANEL
    out = []
    for cpu, part in BLOCK_CPUS:
        for lanes in (PANEL, NARROW):
            for weights in ("float32", "int8"):
                fmas, _, body = block_loop(cpu, lanes, weights, part)
                out.append((cpu, lanes, weights, part, fmas, vector_spills(body, cpu.startswith("cortex"))))
    return out


def dot_ir(rows, lanes, part, method):
    """LLVM IR (before optimisation) of ops.matvec_dot.dot_block for these literals, from
    Numba's pipeline stopped before machine code: ``method`` may name AArch64 instructions
    this process's JIT could not compile."""
    from numba.core import compiler, cpu
    from numba.core.registry import cpu_target
    from edgernn.config import JIT_OPTIONS
    from edgernn.ops.matvec_dot import dot_block, dot_args
    flags = compiler.Flags()
    flags.no_compile = flags.no_cpython_wrapper = flags.no_cfunc_wrapper = True
    flags.fastmath = cpu.FastMathOptions(JIT_OPTIONS["fastmath"])
    flags.error_model = JIT_OPTIONS["error_model"]
    flags.nrt = JIT_OPTIONS["_nrt"]
    result = compiler.compile_extra(cpu_target.typing_context, cpu_target.target_context, dot_block.py_func,
                                    dot_args(rows, lanes, part, method), None, flags, {})
    return result.library.get_llvm_str()


#: x86-64 cores ``--dot`` compiles for, with the features Numba lists on them (dot_method's input)
DOT_X86_CPUS = {"haswell": "+avx2,+fma", "sapphirerapids": "+avx512f,+avx512vnni"}
NEON_MULTIPLIES = ("smull", "smull2", "smlal", "smlal2")
DOT_MULTIPLIES = {"sdot": ("sdot",), "neon": NEON_MULTIPLIES, "pairs": NEON_MULTIPLIES, "vnni": ("vpdpbusd",),
                  "generic": ("vpmaddwd",)}
#: multiply-adds per multiply instruction: sdot 16 (4 lanes x 4), smull or smlal 8, vpdpbusd on zmm 64,
#: vpmaddwd on ymm 16 (half the pairs of a dot product of four)
DOT_MACS = {"sdot": 16, "neon": 8, "pairs": 8, "vnni": 64, "generic": 16}


def dot_report():
    """[(cpu, method, rows, part, label, per 16 MACs {insts, loads, stores, vec, mul}, spills, body)]: the
    int8 x int8 kernel's inner loop (the one with the most multiply instructions) for one row
    over 64-output panels and for the many-row block, per ARM core (4 rows x 16 outputs per
    pass) and per x86-64 core of DOT_X86_CPUS (the block that core runs), each with the method
    Numba would pick there; and the A53 with the smlal2 form it does not pick (why not: its
    spills)."""
    from edgernn.ops.matvec import NARROW_BLOCK, PANEL, WIDE_BLOCK
    from edgernn.ops.matvec_dot import dot_method
    from edgernn.ops.simd import DOT_NEON, DOT_NEON_PAIRS, DOT_SDOT, DOT_VNNI
    names = {DOT_SDOT: "sdot", DOT_NEON: "neon", DOT_NEON_PAIRS: "pairs", DOT_VNNI: "vnni"}
    out = []
    targets = [(cpu, "aarch64", "+neon", None) for cpu in CPUS]
    targets += [("cortex-a53", "aarch64", "+neon", DOT_NEON_PAIRS)]
    targets += [(cpu, "x86_64", f, None) for cpu, f in DOT_X86_CPUS.items()]
    for cpu, machine, features, forced in targets:
        code = forced or dot_method(machine, cpu, features, runs_dot_product=True)    # Numba's choice on that core
        method, arm = names.get(code, "generic"), machine == "aarch64"
        block = NARROW_BLOCK if arm or "+avx512f" not in features else WIDE_BLOCK
        for rows, part in ((1, PANEL), block):
            ir = dot_ir(rows, PANEL, part, code)
            asm = compile_for(ir, cpu) if arm else compile_for(ir, cpu, X86_TRIPLE, "")
            muls, label, body = max((sum(i.split()[0] in DOT_MULTIPLIES[method] for i in b), lab, b)
                                    for lab, b in loops(asm))
            macs = DOT_MACS[method] * muls
            if arm:
                c, _ = classify(body)
                loads, stores = c["loads"], c["stores"]
                vec = sum(bool(re.search(r"\bv\d+\.", i)) and not i.split()[0].startswith(("ld", "st")) for i in body)
            else:
                loads = sum(bool(re.search(r"\(%r", i)) and "mm" in i and not i.endswith(")") for i in body)
                stores = sum(bool(re.search(r"mm\d+, -?\d*\(%r", i)) for i in body)
                vec = sum("mm" in i for i in body) - loads - stores
            per = {k: v * 16 / macs for k, v in (("insts", len(body)), ("loads", loads), ("stores", stores),
                                                 ("vec", vec), ("mul", muls))}
            out.append((cpu, method, rows, part, label, per, vector_spills(body, arm), body))
    return out


def row_kernels_report(cpu="cortex-a72"):
    """For the row kernels of the streaming-model ops (each compiled for ``cpu``): how many of
    their loops are NEON loops (instructions on .4s vectors) and how many fmla .4s those hold.
    The matrix products inside conv/conv_transpose run the panel kernel measured above."""
    from numba import types
    from edgernn.ops.conv import conv_kernel
    from edgernn.ops.conv_transpose import conv_transpose_kernel
    from edgernn.ops.elementwise import binary_kernel
    from edgernn.ops.unary import unary_kernel
    from edgernn.ops.layout import copy_kernel
    from edgernn.ops.pad import pad_kernel
    from edgernn.ops.reduce import reduce_kernel
    sig = (types.int64[::1], types.float32[::1], types.float32[::1], types.int8[::1], types.float32[:, ::1],
           types.boolean)
    rows = []
    for name, kernel in (("conv", conv_kernel), ("conv_transpose", conv_transpose_kernel), ("binary", binary_kernel),
                         ("unary", unary_kernel), ("copy", copy_kernel), ("pad", pad_kernel), ("reduce", reduce_kernel)):
        kernel.compile(sig)
        asm = compile_for(next(iter(kernel.inspect_llvm().values())), cpu)
        all_loops = loops(asm)
        vector = [b for _, b in all_loops if any(re.search(r"v\d+\.4s", i) for i in b)]
        rows.append((name, len(all_loops), len(vector), sum(i.startswith("fmla") and ".4s" in i for b in vector for i in b)))
    return rows


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpu", nargs="*", default=list(CPUS))
    ap.add_argument("--show", action="store_true", help="print the loops' instructions")
    ap.add_argument("--row-kernels", action="store_true",
                    help="instead: which row kernels of the streaming-model ops have NEON loops")
    ap.add_argument("--x86", action="store_true",
                    help="instead: the x86-64 matrix kernel's inner loop (registers, FMAs, loads, spills)")
    ap.add_argument("--blocks", action="store_true",
                    help="instead: the 4-row block's inner loop on every core, 64- and 16-lane panels (FMAs, spills)")
    ap.add_argument("--dot", action="store_true",
                    help="instead: the int8 x int8 kernel's inner loop on each ARM core and two x86 ones")
    args = ap.parse_args(argv)
    if args.dot:
        print("int8 x int8 kernel, per 16 multiply-adds (one sdot; four float32 fmla; a quarter vpdpbusd)")
        print(f"{'cpu':<14} {'method':<7} {'rows':>4} {'part':>4} {'loop':<9} {'insts':>6} {'loads':>6} {'stores':>6} "
              f"{'vec':>5} {'mul':>5} {'spills':>6}")
        for cpu, method, rows, part, label, per, spills, body in dot_report():
            print(f"{cpu:<14} {method:<7} {rows:>4} {part:>4} {label:<9} {per['insts']:6.2f} {per['loads']:6.2f} "
                  f"{per['stores']:6.2f} {per['vec']:5.2f} {per['mul']:5.2f} {spills:>6}")
            if args.show:
                print("\n".join("      " + i for i in body))
        print("(cortex-a53 pairs: the form Numba does not pick on an in-order core, matvec_dot.IN_ORDER_CORES)")
        return 0
    if args.blocks:
        print(f"{'cpu':<15} {'lanes':>5} {'weights':<8} {'part':>4} {'FMAs':>5} {'spills':>6}")
        for cpu, lanes, weights, part, fmas, spills in blocks_report():
            print(f"{cpu:<15} {lanes:>5} {weights:<8} {part:>4} {fmas:>5} {spills:>6}")
        return 0
    if args.x86:
        print(f"{'cpu':<15} {'matvec':<8} {'part':>4} {'loop':<9} {'registers':>9} {'FMAs':>5} {'loads':>6} {'stack':>6}")
        for cpu, part in X86_CPUS.items():
            for weights, label, register, fmas, loads, stack, body in x86_matvec_report(cpu, part):
                print(f"{cpu:<15} {weights:<8} {part:>4} {label:<9} {register:>9} {fmas:>5} {loads:>6} {stack:>6}")
                if args.show:
                    print("\n".join("      " + i for i in body))
        return 0
    if args.row_kernels:
        print(f"{'cpu':<11} {'row kernel':<15} {'loops':>6} {'NEON loops':>11} {'fmla .4s':>9}")
        for cpu in args.cpu:
            for name, n, v, f in row_kernels_report(cpu):
                print(f"{cpu:<11} {name:<15} {n:>6} {v:>11} {f:>9}")
        return 0
    irs = kernel_ir()
    print("per NEON vector of 4 float32 lanes (matvec: 4 outputs x 1 weight row = 4 MACs; "
          "activation: 4 elements)")
    print(f"{'cpu':<11} {'kernel':<27} {'loop':<10} {'lanes/iter':>10} {'insts':>6} {'loads':>6} "
          f"{'stores':>6} {'fp':>6} {'cvt':>5} {'div':>5}")
    for cpu in args.cpu:
        for kind, ir in irs.items():
            for label, body in hot_loops(compile_for(ir, cpu), kind):
                c, lanes = classify(body)
                if kind.startswith("matvec"):              # the k loop steps by 1 row of PANEL lanes,
                    lanes = 4 * sum(i.startswith("fmla") for i in body)   # maybe unrolled: 4 MACs per fmla
                per = {k: v * 4 / lanes for k, v in c.items()}
                print(f"{cpu:<11} {kind:<27} {label:<10} {lanes:>10} {per['insts']:6.2f} {per['loads']:6.2f} "
                      f"{per['stores']:6.2f} {per['fp']:6.2f} {per['cvt']:5.2f} {per['div']:5.2f}")
                if args.show:
                    print("\n".join("      " + i for i in body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
