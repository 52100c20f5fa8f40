"""Where a chunk's time goes: the parts of edgernn's op-by-op chunk, timed apart.

    python -m benchmarks.chunk_parts [lstm2x128] [--frames 100]

The model is one of exporters/synthetic.py's (the benchmark models of benchmarks/perf.py). Its
chunk (``engine.run_chunk``, float32 weights) is timed whole, then each part alone on the same
work rows, each with the engine's own kernels:
- per recurrent layer: the input projections of all frames (bias + W x over every row), the
  recurrent pass frame by frame (R h_{t-1}, one row, its panels in alternating order as in the
  kernels; without the per-frame bias copy, and for a GRU with linear_before_reset = 0 without
  its second pass), the cell frame by frame, and the
  state carried from row to row;
- the dense head over all rows.
The recurrent pass is also timed with its panels always in forward order (not a part of the
chunk: what alternating the order from frame to frame saves, ``ops.matvec.add_matvec``).
Every figure is µs per frame, the best of several loops. The parts run on the rows a real
chunk left, so their values are those of a real chunk.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import edgernn  # noqa: E402
from benchmarks.report import jit_uncached  # noqa: E402
from edgernn.engine import run_chunk  # noqa: E402
from edgernn.ops.dense import dense_kernel  # noqa: E402
from edgernn.ops import gru, lstm  # noqa: E402
from edgernn.ops.gru import gru_cell_fused, gru_reset, gru_update  # noqa: E402
from edgernn.ops.lstm import lstm_frame_active, lstm_fused_step, lstm_general_step  # noqa: E402
from edgernn.ops.matvec import add_matvec, set_bias  # noqa: E402
from edgernn.ops.recurrent import RC, carry_state, recurrent_rows  # noqa: E402
from exporters.synthetic import SHAPES, named_model  # noqa: E402


@jit_uncached
def _projections(n, row, consts, qconsts, rows, gates_at, G):
    for _ in range(n):
        set_bias(consts, row[RC.b], G, rows, row[gates_at])
        add_matvec(row[RC.w_matvec], consts, qconsts, row[RC.w], row[RC.w_scale], row[RC.inputs], G, rows,
                   row[RC.x], row[gates_at], False)


@jit_uncached
def _recurrent(n, row, consts, qconsts, rows, gates_at, n_rec, alternate):
    for _ in range(n):
        for t in range(rows.shape[0]):
            add_matvec(row[RC.r_matvec], consts, qconsts, row[RC.r], row[RC.r_scale], row[RC.hidden], n_rec,
                       rows[t:t + 1], row[RC.h_in], row[gates_at], alternate and t % 2 == 1)


@jit_uncached
def _lstm_cells(n, row, fparams, consts, rows, fused):
    for _ in range(n):
        for t in range(rows.shape[0]):
            if lstm_frame_active(row, rows[t]):
                if fused:
                    lstm_fused_step(row, rows[t])
                else:
                    lstm_general_step(row, fparams, consts, rows[t])


@jit_uncached
def _gru_cells(n, row, fparams, rows, fused):
    for _ in range(n):
        for t in range(rows.shape[0]):
            if fused:
                gru_cell_fused(row, rows[t])
            else:
                gru_reset(row, fparams, rows[t])
                gru_update(row, fparams, rows[t])


@jit_uncached
def _carry(n, row, rows, c_in, c_out):
    H, cnt, h_in, h_out = row[RC.hidden], row[RC.counter], row[RC.h_in], row[RC.h_out]
    for _ in range(n):
        for t in range(rows.shape[0]):
            if c_in >= 0:
                carry_state(rows, t, c_out, c_in, H)
            recurrent_rows(rows, t, True, h_out, h_in, H, cnt)


@jit_uncached
def _dense(n, row, fparams, consts, qconsts, rows):
    for _ in range(n):
        dense_kernel(row, fparams, consts, qconsts, rows, False)


def best_us(fn, args, frames, loops=20, rounds=5):
    """Best-of-rounds µs per frame of fn(loops, *args) over ``frames`` rows."""
    fn(1, *args)
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn(loops, *args)
        best = min(best, time.perf_counter() - t)
    return best / loops / frames * 1e6


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", default="lstm2x128", choices=list(SHAPES))
    ap.add_argument("--frames", type=int, default=100)
    a = ap.parse_args(argv)
    m = edgernn.load(named_model(a.model))
    p, s, T = m.plan, m.stream(), a.frames
    frames = np.random.default_rng(1).standard_normal((T, 1, m._in_width)).astype(np.float32)
    outs = np.empty((T, 1, m._out_width), np.float32)
    rows = np.empty((T, p.work_size), np.float32)
    chunk_args = (*s._engine_args, frames, m._in_map, outs, m._out_map, rows, p.state_offset, p.state_init.size)

    def chunk(n, *_):
        for _ in range(n):
            run_chunk(*chunk_args)

    total = best_us(chunk, (), T)
    print(f"{a.model}: chunk of {T} frames, float32 weights, µs per frame")
    print(f"  {'whole chunk (engine.run_chunk)':<44}{total:8.3f}")
    parts = 0.0
    for i, row in enumerate(p.prog):
        layout = p.row_layouts[i]
        if layout in ("lstm", "lstm_fused"):
            H = row[RC.hidden]
            timed = [("input projections (bias + W x, all rows)", _projections,
                      (row, p.consts, p.qconsts, rows, lstm.F.gates, 4 * H)),
                     ("recurrent pass (R h, row by row)", _recurrent,
                      (row, p.consts, p.qconsts, rows, lstm.F.gates, 4 * H, True)),
                     ("cell (row by row)", _lstm_cells, (row, p.fparams, p.consts, rows, layout == "lstm_fused")),
                     ("state carried row to row", _carry, (row, rows, row[lstm.F.c_in], row[lstm.F.c_out]))]
        elif layout in ("gru", "gru_fused"):
            H, lbr = row[RC.hidden], row[gru.F.linear_before_reset]
            fused = layout == "gru_fused"
            n_rec = 3 * H if lbr else 2 * H
            timed = [("input projections (bias + W x, all rows)", _projections,
                      (row, p.consts, p.qconsts, rows, gru.F.gx, 3 * H)),
                     ("recurrent pass (R h, row by row)", _recurrent,
                      (row, p.consts, p.qconsts, rows, gru.F.gh, n_rec, True)),
                     ("cell (row by row)", _gru_cells, (row, p.fparams, rows, fused)),
                     ("state carried row to row", _carry, (row, rows, -1, -1))]
        elif layout == "dense":
            timed = [("dense (all rows)", _dense, (row, p.fparams, p.consts, p.qconsts, rows))]
        else:
            continue
        for what, fn, args in timed:
            us = best_us(fn, args, T)
            parts += us
            print(f"  op {i} {what:<39}{us:8.3f}")
            if fn is _recurrent:            # not a part: the pass without alternating panel order
                print(f"  op {i}   {'(the same, panels always forward)':<37}{best_us(fn, args[:-1] + (False,), T):8.3f}")
    print(f"  {'sum of the parts':<44}{parts:8.3f}")
    print(f"  {'the rest (frame copies, interactions)':<44}{total - parts:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
