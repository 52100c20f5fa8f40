"""Ops that let a sequence graph look back along time: clock, history and to_time.

The streaming pass (:mod:`edgernn.passes.pulse`) rewrites a convolution along the time axis
into ``to_time(conv(history(x)))``: ``history`` keeps the last ``frames - 1`` frames of its
input as stream state and gives the window of ``frames`` frames that ends with the current
one; the convolution runs over that window (time is then an ordinary axis of ``frames``
positions, unpadded, one output position); ``to_time`` turns the output's axis of one
position back into the time axis. The stream's ``clock`` counts the frames stepped since
the last reset; the pass uses it to hold back the rows of ops whose input is not due yet
(look-ahead) and to end an utterance (``Stream.flush``).

clock, a state [2] (float32; every value an exact small integer):
    clock[0]  frames stepped before this one, counting stops at ``cap`` (attr)
    clock[1]  -1, or during a flush the flush step (0, 1, ...)
    next = [min(clock[0] + 1, cap), clock[1] + 1 if clock[1] >= 0 else -1]

history(x, buffer, clock) -> (window, buffer_next); attrs axis, frames (w), real_in_flush (L):
    x       [..., 1 (time, at ``axis``), ...]      this frame
    buffer  [..., w - 1, ...]                      the w - 1 frames before it (state; zeros at reset)
    window  [..., w, ...] = concat(buffer, x') along axis, x' = x, or zeros when
            0 <= clock[1] and L <= clock[1] (the frame lies past the utterance's end: the
            offline graph's right padding, zeros)
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

CLOCK_ROW = RowLayout("clock", [
    Field("clock", "work offset of the clock [2]", work(lambda r: 2, optional=False)),
    Field("next", "work offset of the next clock [2]", work(lambda r: 2, writes=True, optional=False)),
    Field("cap", "the count stops here"),
])
C = CLOCK_ROW.fields

HISTORY_ROW = RowLayout("history", [
    Field("x", "work offset of x [outer, inner]", work(lambda r: r.outer * r.inner, optional=False)),
    Field("buffer", "work offset of the buffer [outer, frames - 1, inner]",
          work(lambda r: r.outer * (r.frames - 1) * r.inner, optional=False)),
    Field("clock", "work offset of the clock [2]", work(lambda r: 2, optional=False)),
    Field("window", "work offset of the window [outer, frames, inner]",
          work(lambda r: r.outer * r.frames * r.inner, writes=True, optional=False)),
    Field("next", "work offset of the next buffer [outer, frames - 1, inner]",
          work(lambda r: r.outer * (r.frames - 1) * r.inner, writes=True, optional=False)),
    Field("outer", "elements before the time axis"), Field("inner", "elements after it"),
    Field("frames", "w, the window's frames (>= 2)"), Field("real_in_flush", "L (module doc)"),
])
H = HISTORY_ROW.fields


@CLOCK_ROW.kernel
@jit
def clock_kernel(row, fparams, consts, qconsts, work, seq):
    c, nxt, cap = row[C.clock], row[C.next], row[C.cap]
    for s in range(work.shape[0]):
        w = work[s]
        w[nxt] = min(w[c] + np.float32(1.0), np.float32(cap))
        w[nxt + 1] = w[c + 1] + np.float32(1.0) if w[c + 1] >= 0 else np.float32(-1.0)


@HISTORY_ROW.kernel
@jit
def history_kernel(row, fparams, consts, qconsts, work, seq):
    outer, inner, frames = row[H.outer], row[H.inner], row[H.frames]
    kept = (frames - 1) * inner                      # one outer index's buffer
    for s in range(work.shape[0]):
        w = work[s]
        flush = w[row[H.clock] + 1]
        past_end = flush >= 0 and flush >= row[H.real_in_flush]
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
        if tuple(c.shape) != (2,):
            raise UnsupportedModelError(f"{node.describe()}: takes the clock state [2], not {fmt_shape(c.shape)}")
        return [((2,), "float32")]

    def reference(self, node, c):
        cap = np.float32(node.attrs["cap"])
        return [np.array([min(c[0] + 1, cap), c[1] + 1 if c[1] >= 0 else -1], np.float32)]

    def emit(self, node, ctx):
        ctx.row(node, CLOCK_ROW, clock=ctx.work_off(node.inputs[0]), next=ctx.work_off(node.outputs[0]),
                cap=node.attrs["cap"])


@register
class History(Op):
    name = "history"
    foldable = False

    def _sizes(self, node):
        """(outer, inner, frames) of a checked history node."""
        x, buffer, clock = node.inputs
        axis, frames = int_attr(node, "axis", 0, len(x.shape) - 1), int_attr(node, "frames", 2, 2 ** 16)
        int_attr(node, "real_in_flush", 0, 2 ** 24)
        _time_axis(node, x, axis)
        want = tuple(concrete(d) if a != axis else frames - 1 for a, d in enumerate(x.shape))
        if tuple(concrete(d) for d in buffer.shape) != want or tuple(clock.shape) != (2,):
            raise UnsupportedModelError(f"{node.describe()}: buffer {fmt_shape(buffer.shape)} does not hold "
                                        f"{frames - 1} frames of {fmt_shape(x.shape)}, or no clock [2]")
        shape = [concrete(d) for d in x.shape]
        return int(np.prod(shape[:axis])), int(np.prod(shape[axis + 1:])), frames

    def in_place_state(self, node):
        return [(1, 1)]         # the kernel copies the whole buffer into the window first

    def infer(self, node):
        x, buffer, _ = node.inputs
        self._sizes(node)
        axis, frames = node.attrs["axis"], node.attrs["frames"]
        window = tuple(frames if a == axis else d for a, d in enumerate(x.shape))
        return [(window, "float32"), (tuple(buffer.shape), "float32")]

    def reference(self, node, x, buffer, clock):
        axis = node.attrs["axis"]
        past_end = 0 <= clock[1] and node.attrs["real_in_flush"] <= clock[1]
        window = np.concatenate([buffer, np.zeros_like(x) if past_end else x], axis=axis)
        return [window, np.take(window, range(1, window.shape[axis]), axis=axis)]

    def emit(self, node, ctx):
        outer, inner, frames = self._sizes(node)
        x, buffer, clock = node.inputs
        ctx.row(node, HISTORY_ROW, x=ctx.work_off(x), buffer=ctx.work_off(buffer), clock=ctx.work_off(clock),
                window=ctx.work_off(node.outputs[0]), next=ctx.work_off(node.outputs[1]), outer=outer,
                inner=inner, frames=frames, real_in_flush=node.attrs["real_in_flush"])


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
