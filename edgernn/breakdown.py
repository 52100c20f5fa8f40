"""Per-op breakdown of a step: each program row timed on its own in a compiled loop.

The engine runs the whole op program in one native call, so there is nothing to time per op
from outside. Instead, every row ``prog[i:i+1]`` (and the whole ``prog``) is run ``n`` times
inside one compiled loop (:func:`_repeat`), on a copy of a real stream's work arena, and the
loop's wall time is divided by ``n``; the best of several such loops is kept. One dispatch
(~1 us) is spread over ``n`` runs, so the loop itself costs nothing measurable.

What this does not see: a row timed alone keeps only its own weights hot in cache, while in a
real step all rows share the cache. The report therefore gives the *distortion*: the sum of
the rows timed alone against the whole program timed the same way. A large value means rows
interact (evict each other's weights) and shares should be read with that error.
"""
import time

import numpy as np

from .config import jit
from .engine import execute
from .ops.matvec import compile_row_blocks


@jit
def _repeat(n, args):
    for _ in range(n):
        execute(*args)


def _execute_args(plan, prog, work):
    """The arguments of ``engine.execute`` for one frame of every stream in ``work``."""
    return (prog, plan.fparams, plan.consts, plan.qconsts, work, False)


def time_rows(plan, work, prog, target_s=0.002, rounds=15):
    """Seconds for one run of `prog` over `work`, the best of `rounds` loops of ~target_s each
    (the minimum: other processes only ever add time). `work` is modified: pass a copy."""
    plan.link()
    compile_row_blocks(work.shape[0] * plan.matvec_rows)
    args = _execute_args(plan, np.ascontiguousarray(prog), work)
    _repeat(1, args)
    t0 = time.perf_counter()
    _repeat(10, args)
    per = max((time.perf_counter() - t0) / 10, 1e-8)
    n = max(1, int(target_s / per))
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        _repeat(n, args)
        samples.append((time.perf_counter_ns() - t0) / n)
    return float(min(samples)) * 1e-9


def op_breakdown(model, work, target_s=0.002, rounds=15):
    """Time every program row alone and the whole program, grouped by source node.

    work: float32 [B, W], a stream's arena after warm-up (copied, never modified).
    Returns {"rows": [...], "whole_us", "sum_us", "distortion"}; each row dict has node, op,
    program rows, time_us and flops (per step, all streams)."""
    from . import ops
    plan = model.plan.link()
    prog = plan.prog
    scratch = np.array(work, copy=True)
    whole = time_rows(plan, scratch, prog, target_s, rounds)
    per_row = [time_rows(plan, scratch, prog[i:i + 1], target_s, rounds) for i in range(prog.shape[0])]
    nodes = {n.name: n for n in model.graph.nodes}
    B = work.shape[0]
    groups = {}
    for i, name in enumerate(plan.row_nodes):
        g = groups.setdefault(name, {"node": name, "op": plan.row_layouts[i],
                                     "program_rows": 0, "time_us": 0.0, "flops": 0})
        g["program_rows"] += 1
        g["time_us"] += per_row[i] * 1e6
    for name, g in groups.items():
        n = nodes.get(name)
        if n is not None:
            g["op"] = n.op
            g["flops"] = int(ops.get(n.op).flops(n)) * B
        elif name == "state":
            g["op"] = "state copy"
    total = sum(per_row)
    return {"rows": list(groups.values()), "whole_us": whole * 1e6, "sum_us": total * 1e6,
            "distortion": total / whole - 1.0 if whole > 0 else 0.0}
