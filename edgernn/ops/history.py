"""Ops that let a sequence graph look back along time: clock, history and to_time.

The streaming pass (:mod:`edgernn.passes.pulse`) rewrites a convolution along the time axis
into ``to_time(conv(history(x)))``: ``history`` keeps the last ``frames - 1`` frames of its
input as stream state and gives the window of ``frames`` frames that ends with the current
one; the convolution runs over that window (time is then an ordinary axis of ``frames``
positions, unpadded, one output position); ``to_time`` turns the output's axis of one
position back into the time axis. The stream's ``clock`` counts the frames stepped since
the last reset; the pass uses it to hold back the rows of ops whose input is not due yet
(look-ahead) and to end an utterance (``Stream.flush``).

clock, a state [3] (float32; every value an exact small integer):
    clock[0]  frames stepped before this one, counting stops at ``cap`` (attr)
    clock[1]  frames stepped before this one, modulo ``cycle`` (attr: a multiple of every
              op's output stride, so a row with stride s runs when (clock[1] - due) mod s = 0)
    clock[2]  -1, or during a flush the flush step (0, 1, ...)
    next = [min(clock[0] + 1, cap), (clock[1] + 1) mod cycle, clock[2] + 1 if clock[2] >= 0 else -1]

history(x, buffer, clock, limit) -> (window, buffer_next); attrs axis, frames (w):
    x       [..., 1 (time, at ``axis``), ...]      this frame
    buffer  [..., w - 1, ...]                      the w - 1 frames before it (state; zeros at reset)
    limit   [1]                                    a state: the flush step from which x lies past the
                                                   utterance's end (Stream.flush writes it; 2^24 else)
    window  [..., w, ...] = concat(buffer, x') along axis, x' = x, or zeros when
            0 <= clock[2] and limit <= clock[2] (the offline graph's right padding, zeros)
    buffer_next = window[..., 1:, ...]      (written over the buffer when the plan lets it)

to_time(y): y's axis ``axis`` (one position) becomes the time axis; the same bytes.
"""
import numpy as np

from ..config import jit
from ..errors import UnsupportedModelError
from ..ir.dims import T, concrete, fmt_shape, has_time
from . import Op, register
from .layout import AliasOp
from .row import Field, RowLayout, work

#: the name of the clock's graph state (one per graph; Stream reads it for delays and flushes)
CLOCK_STATE = "clock"
COUNT, PHASE, FLUSH = range(3)      # the clock's values
CLOCK_SIZE = 3
NEVER = float(1 << 24)              # a history limit that no flush reaches

CLOCK_ROW = RowLayout("clock", [
    Field("clock", "work offset of the clock [3]", work(lambda r: CLOCK_SIZE, optional=False)),
    Field("next", "work offset of the next clock [3]", work(lambda r: CLOCK_SIZE, writes=True, optional=False)),
    Field("cap", "the count stops here"), Field("cycle", "the phase counts modulo this"),
])
C = CLOCK_ROW.fields

HISTORY_ROW = RowLayout("history", [
    Field("x", "work offset of x [outer, inner]", work(lambda r: r.outer * r.inner, optional=False)),
    Field("buffer", "work offset of the buffer [outer, frames - 1, inner]",
          work(lambda r: r.outer * (r.frames - 1) * r.inner, optional=False)),
    Field("clock", "work offset of the clock [3]", work(lambda r: CLOCK_SIZE, optional=False)),
    Field("limit", "work offset of the flush limit [1]", work(lambda r: 1, optional=False)),
    Field("window", "work offset of the window [outer, frames, inner]",
          work(lambda r: r.outer * r.frames * r.inner, writes=True, optional=False)),
    Field("next", "work offset of the next buffer [outer, frames - 1, inner]",
          work(lambda r: r.outer * (r.frames - 1) * r.inner, writes=True, optional=False)),
    Field("outer", "elements before the time axis"), Field("inner", "elements after it"),
    Field("frames", "w, the window's frames (>= 2)"),
])
H = HISTORY_ROW.fields


@CLOCK_ROW.kernel
@jit
def clock_kernel(row, fparams, consts, qconsts, work, seq):
    c, nxt, cap, cycle = row[C.clock], row[C.next], row[C.cap], row[C.cycle]
    for s in range(work.shape[0]):
        w = work[s]
        count, phase, flush = w[c + COUNT], w[c + PHASE], w[c + FLUSH]
        w[nxt + COUNT] = min(count + np.float32(1.0), np.float32(cap))
        w[nxt + PHASE] = phase + np.float32(1.0) if phase + 1 < cycle else np.float32(0.0)
        w[nxt + FLUSH] = flush + np.float32(1.0) if flush >= 0 else np.float32(-1.0)


@HISTORY_ROW.kernel
@jit
def history_kernel(row, fparams, consts, qconsts, work, seq):
    outer, inner, frames = row[H.outer], row[H.inner], row[H.frames]
    kept = (frames - 1) * inner                      # one outer index's buffer
    for s in range(work.shape[0]):
        w = work[s]
        flush = w[row[H.clock] + FLUSH]
        past_end = flush >= 0 and flush >= w[row[H.limit]]
        buf = w[row[H.buffer]:row[H.buffer] + outer * kept]       # slices taken once: indices from 0
        win = w[row[H.window]:row[H.window] + outer * frames * inner]
        x = w[row[H.x]:row[H.x] + outer * inner]
        nxt = w[row[H.next]:row[H.next] + outer * kept]
        for o in range(outer):          # nxt may be buf itself (in place): each o reads its buf first
            b0, w0 = o * kept, o * frames * inner
            for j in range(kept):
                win[w0 + j] = buf[b0 + j]
            for j in range(inner):
                win[w0 + kept + j] = np.float32(0.0) if past_end else x[o * inner + j]
            for j in range(kept):
                nxt[b0 + j] = win[w0 + inner + j]


def is_due(count, phase, due, period):
    """The gate's rule in Python (``engine.execute`` has it in Numba): with the clock's count
    (frames stepped, capped) and phase, a row or output due from frame ``due`` on, every
    ``period``-th frame, runs now."""
    return count >= due and (int(phase) - due) % period == 0


def gate_of(nodes):
    """The gate attributes (``due_from``, ``period``: passes/pulse.py) a node replacing `nodes`
    must keep, e.g. a recurrent node recognised from a cell's ops: the latest start and the
    period the nodes share (a pass may only merge nodes that run on the same frames)."""
    gates = {}
    for n in nodes:
        if "due_from" in n.attrs:
            gates["due_from"] = max(gates.get("due_from", 0), n.attrs["due_from"])
        if "period" in n.attrs:
            gates["period"] = n.attrs["period"]
    return gates


def int_attr(node, name, low, high):
    """Attribute ``name`` as an int in [low, high], or an UnsupportedModelError naming the node
    (an .ernn file could hold anything there)."""
    v = node.attrs.get(name)
    if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
        raise UnsupportedModelError(f"{node.describe()}: attribute {name} is {v!r}; it must be an integer "
                                    f"from {low} to {high}")
    return v


def _time_axis(node, x, axis):
    if not 0 <= axis < len(x.shape) or not has_time(x.shape[axis]):
        raise UnsupportedModelError(f"{node.describe()}: axis {axis} of {fmt_shape(x.shape)} is not the time axis")


@register
class Clock(Op):
    name = "clock"
    foldable = False

    def infer(self, node):
        c = node.inputs[0]
        int_attr(node, "cap", 1, 2 ** 24)
        int_attr(node, "cycle", 1, 2 ** 16)
        if tuple(c.shape) != (CLOCK_SIZE,):
            raise UnsupportedModelError(f"{node.describe()}: takes the clock state [{CLOCK_SIZE}], not "
                                        f"{fmt_shape(c.shape)}")
        return [((CLOCK_SIZE,), "float32")]

    def reference(self, node, c):
        cap, cycle = node.attrs["cap"], node.attrs["cycle"]
        return [np.array([min(c[COUNT] + 1, cap), (c[PHASE] + 1) % cycle,
                          c[FLUSH] + 1 if c[FLUSH] >= 0 else -1], np.float32)]

    def emit(self, node, ctx):
        ctx.row(node, CLOCK_ROW, clock=ctx.work_off(node.inputs[0]), next=ctx.work_off(node.outputs[0]),
                cap=node.attrs["cap"], cycle=node.attrs["cycle"])


@register
class History(Op):
    name = "history"
    foldable = False

    def _sizes(self, node):
        """(outer, inner, frames) of a checked history node."""
        if len(node.inputs) != 4 or any(v is None for v in node.inputs):
            raise UnsupportedModelError(f"{node.describe()}: takes x, buffer, clock and limit")
        x, buffer, clock, limit = node.inputs
        axis, frames = int_attr(node, "axis", 0, len(x.shape) - 1), int_attr(node, "frames", 2, 2 ** 16)
        _time_axis(node, x, axis)
        want = tuple(concrete(d) if a != axis else frames - 1 for a, d in enumerate(x.shape))
        if tuple(concrete(d) for d in buffer.shape) != want or tuple(clock.shape) != (CLOCK_SIZE,) \
                or tuple(limit.shape) != (1,):
            raise UnsupportedModelError(f"{node.describe()}: buffer {fmt_shape(buffer.shape)} does not hold "
                                        f"{frames - 1} frames of {fmt_shape(x.shape)}, or no clock "
                                        f"[{CLOCK_SIZE}] and limit [1]")
        shape = [concrete(d) for d in x.shape]
        return int(np.prod(shape[:axis])), int(np.prod(shape[axis + 1:])), frames

    def in_place_state(self, node):
        return [(1, 1)]         # the kernel copies the whole buffer into the window first

    def infer(self, node):
        self._sizes(node)
        x, buffer = node.inputs[:2]
        axis, frames = node.attrs["axis"], node.attrs["frames"]
        window = tuple(frames if a == axis else d for a, d in enumerate(x.shape))
        return [(window, "float32"), (tuple(buffer.shape), "float32")]

    def reference(self, node, x, buffer, clock, limit):
        axis = node.attrs["axis"]
        past_end = 0 <= clock[FLUSH] and limit.reshape(-1)[0] <= clock[FLUSH]
        window = np.concatenate([buffer, np.zeros_like(x) if past_end else x], axis=axis)
        return [window, np.take(window, range(1, window.shape[axis]), axis=axis)]

    def emit(self, node, ctx):
        outer, inner, frames = self._sizes(node)
        x, buffer, clock, limit = node.inputs
        ctx.row(node, HISTORY_ROW, x=ctx.work_off(x), buffer=ctx.work_off(buffer), clock=ctx.work_off(clock),
                limit=ctx.work_off(limit), window=ctx.work_off(node.outputs[0]), next=ctx.work_off(node.outputs[1]),
                outer=outer, inner=inner, frames=frames)


@register
class ToTime(AliasOp):
    name = "to_time"

    def infer(self, node):
        y = node.inputs[0]
        axis = int_attr(node, "axis", 0, len(y.shape) - 1)
        if y.shape[axis] != 1:
            raise UnsupportedModelError(f"{node.describe()}: axis {axis} of {fmt_shape(y.shape)} is not one position")
        return [(tuple(T if a == axis else d for a, d in enumerate(y.shape)), y.dtype)]

    def reference(self, node, y):
        return [y]
