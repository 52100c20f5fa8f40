"""The engine: a small interpreter runs a plan's program, one native call per chunk of frames.

Each op's kernel is compiled on its own, when a model first uses it, and cached by Numba on its
own (:func:`kernel_address`); the interpreter (:func:`execute`) calls a row's kernel through
the native address in the row's column 0 (:func:`link` writes it). So a model compiles only
the kernels it uses, compile time does not grow with the number of ops edgernn supports, and
every entry point below (step, run, threads, the profiler's loops) runs the very same machine
code of each kernel: a chunk run on threads equals its steps bit for bit whether the kernels
were compiled in this process or loaded from the cache.

``run_frames(prog, fparams, consts, qconsts, work, frames, in_map, outs, out_map)``:
    consts  float32, qconsts int8: two views of the model's constant bytes (plan.ConstArena)
    frames  float32 [T, B, F_in]   the frames, inputs packed side by side per frame
    in_map  int64 [n_in, 3]        (column in a frame, work offset, size) per input
    outs    float32 [T, B, F_out]  written: outputs packed side by side per frame
    out_map int64 [n_out, 3]       (column, work offset, size) per output
    work    float32 [B, W]         one row per stream; state lives in it between calls
"""
import numpy as np
from numba import prange, types

from . import compiler
from .config import jit, jit_inline, jit_parallel
from .native import address_call, array_at, compiled_address
from .ops.program import copy_into
from .ops.matvec import matrix_label, matvec_compiled, matvec_descriptor
from .ops.row import GATE_CLOCK, GATE_FROM, LAYOUTS, matvec_variant

#: the argument types of every kernel: (row, fparams, consts, qconsts, work, seq)
KERNEL_ARGS = (types.Array(types.int64, 1, "C"), types.Array(types.float32, 1, "C"),
               types.Array(types.float32, 1, "C"), types.Array(types.int8, 1, "C"),
               types.Array(types.float32, 2, "C"), types.boolean)


_call_kernel = address_call(KERNEL_ARGS)


_ADDRESSES = {}


def kernel_address(layout):
    """The native address of ``layout``'s kernel, compiled (or loaded from Numba's cache) for
    :data:`KERNEL_ARGS` on first use in this process."""
    address = _ADDRESSES.get(layout.name)
    if address is None:
        address = _ADDRESSES[layout.name] = compiled_address(layout.kernel_function, KERNEL_ARGS)
    return address


def link(prog, layout_names, dot_offsets=frozenset()):
    """Write each row's kernel address into column 0 (``layout_names[i]``: row i's layout) and
    the address of the matvec variant each of its weight matrices needs into the matrix's
    matvec field (ops.matvec.matvec_descriptor; the int8 matrices at ``dot_offsets`` take
    int8 activations, ops.matvec_dot); compiles what this process has not compiled yet, as
    one batch the compile message counts (:mod:`edgernn.compiler`). Precondition: the rows
    are validated (a matrix with no columns gets no matvec)."""
    kernels = [name for name in dict.fromkeys(layout_names) if name not in _ADDRESSES]
    matrices = [v for v in dict.fromkeys((lanes, kind) for i, name in enumerate(layout_names)
                                         for _, lanes, kind in matvec_variant(LAYOUTS[name], prog[i], dot_offsets)
                                         if lanes)
                if not matvec_compiled(*v)]
    if kernels or matrices:
        labels = [f"{name} kernel" for name in kernels] + [matrix_label(*v) for v in matrices]
        names = kernels + [label.replace("matrix kernel", "the matrix kernel") for label in labels[len(kernels):]]
        with compiler.job(f"the kernels {', '.join(names)}", len(labels),
                          then="each entry point (Stream.step, Stream.run, ...) on its first use") as job:
            for name, label in zip(kernels, labels):
                with job.item(label):
                    kernel_address(LAYOUTS[name])
            for v, label in zip(matrices, labels[len(kernels):]):
                with job.item(label):
                    matvec_descriptor(*v)
    for i, name in enumerate(layout_names):
        layout = LAYOUTS[name]
        prog[i, 0] = kernel_address(layout)
        for column, lanes, kind in matvec_variant(layout, prog[i], dot_offsets):
            prog[i, column] = matvec_descriptor(lanes, kind) if lanes else 0
    return prog


@jit_inline
def clock_says_due(work, count_col, due, period):
    """The gate rule (``ops.history.is_due``) in Numba: with the clock's count (frames stepped,
    capped) at ``work[0, count_col]`` and its phase in the next column, something due from
    frame ``due`` on, every ``period``-th frame, runs now."""
    if work[0, count_col] < due:
        return False
    return period <= 1 or (np.int64(work[0, count_col + 1]) - due) % period == 0


@jit
def execute(prog, fparams, consts, qconsts, work, seq):
    """Run every row of the program once: one frame of every stream in ``work`` (rows are
    streams), or with ``seq`` every frame of one stream's chunk (rows are its consecutive
    frames; the recurrent kernels carry state from row to row). Precondition: ``prog`` is
    linked (:func:`link`) and validated (``Plan.validate``). A gated row (``ops.row.GATE_CLOCK``)
    runs from frame ``due`` on, every ``period``-th frame (``GATE_FROM`` = due | period << 32),
    by the clock of the first stream in ``work`` (all of them step together)."""
    for i in range(prog.shape[0]):
        row = prog[i]
        clock = row[GATE_CLOCK]                             # the clock's column + 1, 0: not gated
        if clock != 0 and not clock_says_due(work, clock - 1, row[GATE_FROM] & 0xFFFFFFFF, row[GATE_FROM] >> 32):
            continue
        _call_kernel(row[0], (row, fparams, consts, qconsts, work, seq))


@jit
def load_frame(row, frame, in_map):
    """One stream's packed frame (all inputs side by side) into its work row."""
    for k in range(in_map.shape[0]):
        col, off, size = in_map[k, 0], in_map[k, 1], in_map[k, 2]
        copy_into(row[off:off + size], frame[col:col + size])


@jit
def store_frame(row, out, out_map):
    """One stream's outputs from its work row into the packed output frame."""
    for k in range(out_map.shape[0]):
        col, off, size = out_map[k, 0], out_map[k, 1], out_map[k, 2]
        copy_into(out[col:col + size], row[off:off + size])


@jit
def run_frames(prog, fparams, consts, qconsts, work, frames, in_map, outs, out_map):
    for t in range(frames.shape[0]):
        for s in range(work.shape[0]):
            load_frame(work[s], frames[t, s], in_map)
        execute(prog, fparams, consts, qconsts, work, False)
        for s in range(work.shape[0]):
            store_frame(work[s], outs[t, s], out_map)


@jit
def run_chunk(prog, fparams, consts, qconsts, work, frames, in_map, outs, out_map, rows, state_off, state_len):
    """Like :func:`run_frames`, op by op over the chunk instead of frame by frame: each
    stream's T frames become the rows of ``rows`` ([T, W] scratch) and the program runs once
    in sequence mode, so every recurrent op computes W x for the whole chunk in one pass
    over its weights. Valid when every state is updated in place by the one op that reads it
    (``Plan.sequence_ok``); the state region [state_off, state_off + state_len) of the last
    frame is the stream's state after the chunk."""
    T = frames.shape[0]
    for s in range(work.shape[0]):
        copy_into(rows[0], work[s])
        for t in range(T):
            load_frame(rows[t], frames[t, s], in_map)
        execute(prog, fparams, consts, qconsts, rows, True)
        copy_into(work[s, state_off:state_off + state_len], rows[T - 1, state_off:state_off + state_len])
        for t in range(T):
            store_frame(rows[t], outs[t, s], out_map)


@jit
def step_frame(prog, fparams, consts, qconsts, work, x, y, io):
    """One frame of a one-input, one-output model: the fast path of ``Stream.step``.

    x: float32, B * F_in values in stream order (any shape and strides; read flat, by index
    when it has one axis or one frame per row); y: float32 [B * F_out], written; io: int64
    [in_off, F_in, out_off, F_out, clock column (-1: none), delay, output stride]. Returns
    whether the step's outputs are due (by the clock before the step: ``Stream.step`` returns
    None when not). Fewer arguments and no packing make the Python side of a step cheaper
    than :func:`run_frames` with T = 1."""
    in_off, n_in, out_off, n_out = io[0], io[1], io[2], io[3]
    due = io[4] < 0 or clock_says_due(work, io[4], io[5], io[6])
    if x.ndim == 1:                 # (known when compiled) indexing, not Numba's slower flat iterator
        for s in range(work.shape[0]):
            copy_into(work[s, in_off:in_off + n_in], x[s * n_in:(s + 1) * n_in])
    elif x.ndim == 2 and x.shape[1] == n_in:        # (B, F): a frame per row
        for s in range(work.shape[0]):
            copy_into(work[s, in_off:in_off + n_in], x[s])
    else:
        s, j = 0, 0
        for v in x.flat:
            work[s, in_off + j] = v
            j += 1
            if j == n_in:
                s, j = s + 1, 0
    execute(prog, fparams, consts, qconsts, work, False)
    for s in range(work.shape[0]):
        copy_into(y[s * n_out:(s + 1) * n_out], work[s, out_off:out_off + n_out])
    return due


@jit
def step_frame_at(handle, x, y):
    """:func:`step_frame` (and its due flag), its five engine arrays and ``io`` given by one
    int64 array ``handle`` = [prog address, rows, columns, fparams address, size, consts
    address, size, qconsts address, size, work address, B, W, *io].

    Numba unboxes every array argument on every call (``python -m benchmarks.call_parts``
    times it): one handle instead of six arrays took ``benchmarks/perf.py``'s call floor from
    0.76–0.90 to 0.68–0.70 µs. Precondition (unchecked): the arrays are C-contiguous, of the
    engine's dtypes, and outlive every call (``Stream`` keeps them)."""
    prog = array_at(handle[0], (handle[1], handle[2]), np.int64)
    fparams = array_at(handle[3], (handle[4],), np.float32)
    consts = array_at(handle[5], (handle[6],), np.float32)
    qconsts = array_at(handle[7], (handle[8],), np.int8)
    work = array_at(handle[9], (handle[10], handle[11]), np.float32)
    return step_frame(prog, fparams, consts, qconsts, work, x, y, handle[12:19])


@jit_parallel
def run_frames_threaded(prog, fparams, consts, qconsts, work, frames, in_map, outs, out_map, bounds):
    """:func:`run_frames` with the streams split into blocks (rows bounds[b] .. bounds[b + 1]
    of ``work``), one block per thread: the blocks share nothing but the read-only weights."""
    for b in prange(bounds.shape[0] - 1):
        r0, r1 = bounds[b], bounds[b + 1]
        run_frames(prog, fparams, consts, qconsts, work[r0:r1], frames[:, r0:r1], in_map, outs[:, r0:r1], out_map)


@jit_parallel
def run_chunk_threaded(prog, fparams, consts, qconsts, work, frames, in_map, outs, out_map, rows, state_off,
                       state_len, bounds):
    """:func:`run_chunk` with the streams split into blocks as in :func:`run_frames_threaded`;
    block b uses the scratch ``rows[b, :T]`` (T = the chunk's frames; sliced here, where it
    stays C-contiguous for the kernels)."""
    for b in prange(bounds.shape[0] - 1):
        r0, r1 = bounds[b], bounds[b + 1]
        run_chunk(prog, fparams, consts, qconsts, work[r0:r1], frames[:, r0:r1], in_map, outs[:, r0:r1], out_map,
                  rows[b, :frames.shape[0]], state_off, state_len)
