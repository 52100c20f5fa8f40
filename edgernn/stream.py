"""Stream: one sequence (or B sequences in step) with its state kept inside."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from .engine import run_chunk, run_chunk_threaded, run_frames, run_frames_threaded, step_frame_at
from .errors import FrameShapeError, StateError, StreamArgumentError
from .limits import check_bytes
from .memory import zeroed
from .ops.history import COUNT, FLUSH, NEVER, PHASE, is_due
from .ops.matvec import compile_row_blocks

if TYPE_CHECKING:
    from .model import Model

#: frames per op-by-op pass of Stream.run: scratch of SEQUENCE_ROWS work arenas, reused
SEQUENCE_ROWS = 128
_FLOAT32 = np.dtype(np.float32)
_NO_FRAME = object()


def _native_step(x_ndim):
    """``engine.step_frame_at`` compiled for a float32 frame of any layout with ``x_ndim`` axes,
    as its native entry point: calling it skips Numba's type dispatch, and does not check its
    arguments, so the caller passes exactly these types (the handle: int64 [16]; x: a
    native float32 ndarray of the frame shape, any strides, read-only or not; y: float32
    [B * F_out]). The dispatcher itself when this Numba has no such entry (it then checks and
    dispatches every call)."""
    from numba import types
    vector = types.Array(types.float32, 1, "C")
    sig = (types.Array(types.int64, 1, "C"), types.Array(types.float32, x_ndim, "A"), vector)
    try:
        step_frame_at.compile(sig)
        return step_frame_at.overloads[sig].entry_point
    except Exception:                       # noqa: BLE001 -- any failure: the checked path
        return step_frame_at


def _handle(engine_args, io):
    """:func:`engine.step_frame_at`'s handle of the engine arrays (C-contiguous, of the engine's
    dtypes: the plan and Stream make them so) and ``io``."""
    prog, fparams, consts, qconsts, work = engine_args
    for a, dtype in zip(engine_args, (np.int64, np.float32, np.float32, np.int8, np.float32)):
        if a.dtype != dtype or not a.flags.c_contiguous:
            raise TypeError(f"engine array of {a.dtype}, {a.flags.c_contiguous=}: expected C-contiguous {dtype}")
    return np.array([prog.ctypes.data, *prog.shape, fparams.ctypes.data, fparams.size, consts.ctypes.data,
                     consts.size, qconsts.ctypes.data, qconsts.size, work.ctypes.data, *work.shape, *io], np.int64)


def _positive_int(value):
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= 1


def _thread_blocks(threads, B):
    """Row bounds of ``threads`` blocks of B streams (None for one thread)."""
    import numba
    if not _positive_int(threads):
        raise StreamArgumentError(f"threads must be a positive integer, got {threads!r}")
    if threads == 1:
        return None
    if threads > numba.config.NUMBA_NUM_THREADS:
        raise StreamArgumentError(f"threads={threads}, but Numba has {numba.config.NUMBA_NUM_THREADS} "
                                  "(NUMBA_NUM_THREADS, by default the number of cores)")
    if threads > B:
        raise StreamArgumentError(f"threads={threads} splits the batch of streams into blocks, one per thread; "
                                  f"it needs batch >= {threads}, got {B} stream(s)")
    return np.linspace(0, B, threads + 1).round().astype(np.int64)


def _set_threads(n):
    import numba
    numba.set_num_threads(n)


def _pack_frames(model, batch_size, frames, leading):
    """Validate the frames of a step (``leading`` = ()) or a chunk (("T",)) of a stream of
    ``model`` with batch ``batch_size`` (None: unbatched) and pack them into [T, B, F_in]
    float32. A function of the model alone, so a step function can check a frame after its
    Stream is gone."""
    B = 1 if batch_size is None else int(batch_size)
    m = model
    if len(frames) != len(m.inputs):
        names = ", ".join(t.name for t in m.inputs)
        raise FrameShapeError(f"the model takes {len(m.inputs)} input(s) ({names}); got {len(frames)}")
    batch = () if batch_size is None else (B,)
    parts = []
    T = None
    for x, info in zip(frames, m.inputs):
        if not isinstance(x, np.ndarray):
            raise FrameShapeError(f"input '{info.name}' must be a numpy float32 array, got {type(x).__name__}")
        if x.dtype != np.float32 and x.dtype.kind == "f" and x.dtype.itemsize == 4:
            x = x.astype(np.float32)                 # float32 in the other byte order
        if x.dtype != np.float32:
            raise FrameShapeError(
                f"input '{info.name}' must be float32, got {x.dtype}; convert with x.astype(np.float32)")
        want = tuple(leading) + batch + tuple(info.frame_shape)
        if leading == ("T",):
            if x.ndim < 1:
                raise FrameShapeError(f"input '{info.name}' needs a leading time axis")
            if x.shape[0] == 0:
                raise FrameShapeError(f"input '{info.name}' has no frames (a time axis of length 0); "
                                      "run needs at least one frame")
            T = x.shape[0] if T is None else T
            want = (T,) + want[1:]
        if x.shape != want:
            shape = ("T",) + want[1:] if leading else want
            raise FrameShapeError(
                f"input '{info.name}' has shape {x.shape}; expected {shape}"
                + (" (batch, *frame)" if batch_size is not None else ""))
        n = 1 if not leading else x.shape[0]
        parts.append(x.reshape(n, B, -1))
    packed = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)
    return np.ascontiguousarray(packed)


def _named_frames(model, feeds):
    """The frames of a dict of named inputs (ONNX Runtime's feeds), in the model's input order."""
    names = [t.name for t in model.inputs]
    if set(feeds) == set(names):
        return [feeds[n] for n in names]
    unknown = [k for k in feeds if k not in names]
    missing = [n for n in names if n not in feeds]
    kept = {t.name for t in model.states} | set(model.graph.meta.get("bound_constants") or {})
    raise FrameShapeError(
        f"the model's inputs are {names}; the dict of inputs "
        + "; ".join(part for part in (f"lacks {missing}" if missing else "",
                                      f"has unknown names {unknown}" if unknown else "") if part)
        + ("" if not set(unknown) & kept else f" ({sorted(set(unknown) & kept)}: the stream keeps its state and "
           "bound constants itself; pass only the frame inputs)"))


def _out_arrays(model, batch_size, out, named):
    """The arrays of ``out`` in output order, checked: one float32 array per output, C-contiguous,
    writable, of the shape step returns; ``out`` takes the form step returns (one array for one
    output, a tuple or list for several, a dict by output name when the inputs came as a dict)."""
    outputs = model.outputs
    names = [t.name for t in outputs]
    if named:
        if not isinstance(out, dict) or set(out) != set(names):
            raise FrameShapeError(f"with a dict of inputs, out must be a dict of arrays with the output names "
                                  f"{names}, got {type(out).__name__}"
                                  + (f" with keys {list(out)}" if isinstance(out, dict) else ""))
        arrays = [out[n] for n in names]
    elif len(outputs) == 1:
        arrays = [out]
    elif isinstance(out, (tuple, list)) and len(out) == len(outputs):
        arrays = list(out)
    else:
        raise FrameShapeError(f"the model has {len(outputs)} outputs ({', '.join(names)}): out must be a tuple of "
                              f"{len(outputs)} arrays, got {type(out).__name__}"
                              + (f" of {len(out)}" if isinstance(out, (tuple, list)) else ""))
    lead = () if batch_size is None else (int(batch_size),)
    for a, info in zip(arrays, outputs):
        want = lead + tuple(info.frame_shape)
        if not isinstance(a, np.ndarray):
            raise FrameShapeError(f"out for output '{info.name}' must be a numpy float32 array of shape {want}, "
                                  f"got {type(a).__name__}")
        if a.dtype != _FLOAT32 or a.shape != want or not a.flags.c_contiguous or not a.flags.writeable:
            raise FrameShapeError(
                f"out for output '{info.name}' must be a writable, C-contiguous float32 array of shape {want}; got "
                f"{'a read-only ' if not a.flags.writeable else ''}{'' if a.flags.c_contiguous else 'non-contiguous '}"
                f"{a.dtype} array of shape {a.shape}: make it with np.empty({want}, np.float32)")
    return arrays


class Stream:
    """Run frames one at a time (:meth:`step`) or a chunk at a time (:meth:`run`).

    The state (hidden and cell states, frame counters) lives in this object; :attr:`state`
    reads a copy and assigning it restores one. All streams of a model share its weights."""

    def __init__(self, model: Model, batch: int | None = None, threads: int = 1) -> None:
        if batch is not None and not _positive_int(batch):
            raise StreamArgumentError(f"batch must be a positive integer or None, got {batch!r}")
        self._blocks = _thread_blocks(threads, 1 if batch is None else int(batch))
        self.threads = threads
        self.model = model
        self.batch = batch
        self._B = 1 if batch is None else int(batch)
        check_bytes(self._B * model.plan.work_size * 4, f"the work arenas of a batch of {self._B} streams")
        self._work = zeroed((self._B, model.plan.work_size), np.float32)      # huge pages when large
        p = model.plan.link()
        compile_row_blocks(self._B * model.plan.matvec_rows)
        self._engine_args = (p.prog, p.fparams, p.consts, p.qconsts, self._work)
        self._rows = None                                  # Stream.run's scratch, made by the first run
        if len(model.inputs) == 1 and len(model.outputs) == 1 and self._blocks is None:
            self.step = self._bind_fast_step()
        self.reset()

    def __repr__(self) -> str:
        return (f"<edgernn.Stream of {self.model.source!r}, batch={self.batch}, threads={self.threads}, "
                f"state {self.model.state_bytes()} bytes per stream>")

    def _bind_fast_step(self):
        """:meth:`step` for a one-input, one-output stream, as a closure over the handle it
        passes to the native ``engine.step_frame_at``: a float32 frame of the input's shape goes
        straight to native code (no packing); anything else to the checked general path. A
        method would look its arrays up on every call (benchmarks/perf.py's call floor: 0.93 µs
        with a bound method, 0.76–0.90 µs with the closure over eight arrays, 0.68–0.70 µs with
        the handle). The closure holds its stream weakly (no reference cycle); its attribute
        ``native_call`` = (native entry, handle, the engine's arrays) holds the arrays, which
        the native call reads by address, as long as the step function lives.

        ``out=``: an array validated once is known by identity afterwards (with the 1-D view of
        it the native call writes): the same array passed again costs one ``is`` test, less than
        allocating a result. A frame or ``out`` the fast test refuses is checked before the
        stream is needed, so a step function that outlived its stream still says what is
        wrong with them."""
        import weakref
        m = self.model
        lead = () if self.batch is None else (self._B,)
        in_shape = lead + tuple(m.inputs[0].frame_shape)
        out_shape = lead + tuple(m.outputs[0].frame_shape)
        out_flat = (self._B * m._out_width,)
        flat, empty, ndarray, f32 = out_flat == out_shape, np.empty, np.ndarray, _FLOAT32
        timed = m._clock is not None and (m.delay > 0 or m.output_stride > 1)
        io = (m._in_map[0, 1], m._in_map[0, 2], m._out_map[0, 1], m._out_map[0, 2],
              m._clock + COUNT if timed else -1, m.delay, m.output_stride)
        handle = _handle(self._engine_args, io)
        native = _native_step(len(in_shape))
        stream = weakref.ref(self)
        batch = self.batch
        seen = [None, None]             # the out array last checked, and the 1-D view of it native writes

        def step(x=_NO_FRAME, *more, out=None):       # no **kwargs: building a dict costs every call
            if not more and type(x) is ndarray and x.dtype is f32 and x.shape == in_shape:
                if out is None:
                    y = empty(out_flat, f32)
                    if not native(handle, x, y):           # the native call says whether y is due
                        return None
                    return y if flat else y.reshape(out_shape)
                if out is not seen[0]:
                    seen[1] = _out_arrays(m, batch, out, False)[0].reshape(out_flat)
                    seen[0] = out
                return out if native(handle, x, seen[1]) else None
            owner = stream()
            frames = () if x is _NO_FRAME else (x,)
            if owner is None:                              # say what is wrong with the call, if anything
                named = len(frames) == 1 and not more and isinstance(x, dict)
                _pack_frames(m, batch, _named_frames(m, x) if named else frames + more, ())
                if out is not None:
                    _out_arrays(m, batch, out, named)
                raise StateError("this step function's Stream no longer exists, and only a native float32 frame "
                                 f"of shape {in_shape} can still be stepped; keep the Stream (s = model.stream(); "
                                 "s.step(x)) to get its conversions and named inputs")
            return Stream.step(owner, *frames, *more, out=out)

        step.__doc__, step.__name__, step.__qualname__ = Stream.step.__doc__, "step", "Stream.step"
        step.__signature__ = _STEP_PARAMETERS                  # help() and IDEs show Stream.step's
        step.native_call = (native, handle, self._engine_args)   # the handle's arrays live as long as step
        return step

    # ------------------------------------------------------------ running
    def _pack(self, frames, leading):
        """Validate and pack inputs into [T, B, F_in] float32."""
        return _pack_frames(self.model, self.batch, frames, leading)

    def _unpack(self, outs, leading):
        m = self.model
        res = []
        for (col, _, size), info in zip(m._out_map, m.outputs):
            a = outs[:, :, col:col + size]
            shape = ((outs.shape[0],) if leading else ()) + (() if self.batch is None else (self._B,)) + info.frame_shape
            res.append(a.reshape(shape))
        return res[0] if len(res) == 1 else tuple(res)

    def _run(self, packed):
        m = self.model
        outs = np.empty((packed.shape[0], self._B, m._out_width), np.float32)
        if self._blocks is None:
            run_frames(*self._engine_args, packed, m._in_map, outs, m._out_map)
        else:
            _set_threads(len(self._blocks) - 1)
            run_frames_threaded(*self._engine_args, packed, m._in_map, outs, m._out_map, self._blocks)
        return outs

    def step(self, *frames: np.ndarray | dict[str, np.ndarray],
             out: Any = None) -> np.ndarray | tuple[np.ndarray, ...] | dict[str, np.ndarray] | None:
        """One frame in, one frame of every output out.

        Frames: float32 arrays of each input's frame shape (``(batch, *frame_shape)`` for a
        batched stream), positionally in ``Model.inputs`` order, or one dict of them by input
        name, as ONNX Runtime takes its feeds: ``s.step({"x": frame})``.

        Returns: called positionally, one array for a one-output model and a tuple of arrays
        (in ``Model.outputs`` order) for several; called with a dict, a dict {output name:
        array}. A model with look-ahead along time (``Model.delay`` = D > 0) returns None for
        the first D frames after a reset, and one with strides along time
        (``Model.output_stride`` = S > 1) between outputs; from then on, step t returns the
        outputs of frame t - D.

        out: arrays to write the outputs into instead of allocating them, in the form the step
        returns (one array, a tuple, or a dict by output name), each a writable C-contiguous
        float32 array of the output's shape; the step returns ``out`` (None when it is not
        due, and out's contents are then unspecified). With one input and one output, a
        native float32 frame and the same ``out`` array each call, nothing is allocated.

        Errors: FrameShapeError for a frame or out of the wrong type, dtype or shape, or a
        dict with missing or unknown names; an unknown keyword is Python's TypeError naming
        ``Stream.step`` (the fast step function takes no ``**kwargs``: a dict per call costs
        time on every step)."""
        named = len(frames) == 1 and isinstance(frames[0], dict)
        if named:
            frames = _named_frames(self.model, frames[0])
        packed = self._pack(frames, ())
        targets = None if out is None else _out_arrays(self.model, self.batch, out, named)
        due = self._due()
        outs = self._run(packed)
        if not due:
            return None
        if targets is not None:
            for (col, _, size), a in zip(self.model._out_map, targets):
                a.reshape(-1)[:] = outs[0, :, col:col + size].reshape(-1)
            return out
        result = self._unpack(outs, False)
        if named:
            return dict(zip((t.name for t in self.model.outputs), result if isinstance(result, tuple) else (result,)))
        return result

    def _clock_values(self):
        """(frames stepped, capped; their phase) from the stream's clock ((0, 0) without one)."""
        clock = self.model._clock
        return (0, 0) if clock is None else (int(self._work[0, clock + COUNT]), int(self._work[0, clock + PHASE]))

    def _due(self):
        """Whether the outputs of the next step are due: from frame ``Model.delay`` on, every
        ``Model.output_stride``-th frame."""
        m = self.model
        return m._clock is None or is_due(*self._clock_values(), m.delay, m.output_stride)

    def _due_frames(self, n, outs):
        """Of ``n`` steps' outputs (a leading frame axis), run from the clock as it is now, the
        frames that are due. ``outs`` is a function that runs the steps."""
        m = self.model
        count, phase = self._clock_values()                             # the clock before they run
        keep = np.array([is_due(count + k, phase + k, m.delay, m.output_stride) for k in range(n)], bool)
        outs = outs()
        if keep.all():
            return outs
        return tuple(o[keep] for o in outs) if isinstance(outs, tuple) else outs[keep]

    def flush(self) -> np.ndarray | tuple[np.ndarray, ...]:
        """End the utterance: the outputs still due after its last frame, with a leading frame
        axis like :meth:`run`'s: those of the look-ahead of each convolution along time and of
        any padding after the sequence, computed as the offline model does (zero padding past
        the end; from the clock the stream knows how many frames there were). A model without
        either gives none. Call :meth:`reset` before the next utterance."""
        m = self.model
        batch = () if self.batch is None else (self._B,)
        steps, limits = m.timing.flush_plan(*self._clock_values()) if m._clock is not None else (0, {})
        if steps == 0:
            return self._unpack(np.zeros((0, self._B, m._out_width), np.float32), True)
        zeros = self._pack([np.zeros((steps,) + batch + tuple(t.frame_shape), np.float32) for t in m.inputs], ("T",))
        slots = {slot.name: slot.offset for slot in m.plan.states}

        def run_flush():
            for name, limit in limits.items():
                self._work[:, slots[name]] = limit
            self._work[:, m._clock + FLUSH] = 0
            try:
                return self._unpack(self._run(zeros), True)
            finally:                                    # back to their values outside a flush
                self._work[:, m._clock + FLUSH] = -1
                for name in limits:
                    self._work[:, slots[name]] = NEVER
        return self._due_frames(steps, run_flush)

    def run(self, *frames: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """T frames in (a leading T axis), T frames of every output out; equals T steps (with
        look-ahead, ``Model.delay`` > 0: the frames that are due, as steps give them).

        When every state is updated in place by the recurrent op that reads it (stacked
        LSTM/GRU/RNN layers), the chunk runs op by op (``engine.run_chunk``): each
        recurrent layer's input projection is one pass over its weights for up to
        ``SEQUENCE_ROWS`` frames at a time (so the scratch stays small however long T is)."""
        packed = self._pack(frames, ("T",))
        p, m = self.model.plan, self.model
        compile_row_blocks(max(packed.shape[0], self._B))     # a chunk's frames or the batch, at once
        if m._clock is not None:
            return self._due_frames(packed.shape[0], lambda: self._unpack(self._run(packed), True))
        if not p.sequence_ok or packed.shape[0] < 2:
            return self._unpack(self._run(packed), True)
        T = packed.shape[0]
        outs = np.empty((T, self._B, m._out_width), np.float32)
        n_blocks = 1 if self._blocks is None else len(self._blocks) - 1
        if self._rows is None or self._rows.shape[1] < min(T, SEQUENCE_ROWS):
            # scratch made once per stream and reused: a fresh one each call costs page faults
            # on first touch (a 100-frame chunk of LSTM 2x128: 1.2 MB)
            check_bytes(n_blocks * min(T, SEQUENCE_ROWS) * p.work_size * 4, "Stream.run's chunk scratch")
            self._rows = zeroed((n_blocks, min(T, SEQUENCE_ROWS), p.work_size), np.float32)
        rows = self._rows
        if self._blocks is not None:
            _set_threads(n_blocks)
        for t0 in range(0, T, SEQUENCE_ROWS):
            t1 = min(T, t0 + SEQUENCE_ROWS)
            args = (*self._engine_args, packed[t0:t1], m._in_map, outs[t0:t1], m._out_map)
            if self._blocks is None:
                run_chunk(*args, rows[0, :t1 - t0], p.state_offset, p.state_init.size)
            else:
                run_chunk_threaded(*args, rows, p.state_offset, p.state_init.size, self._blocks)
        return self._unpack(outs, True)

    # ------------------------------------------------------------ state
    def __copy__(self) -> Stream:
        """A new stream of the same model (the weights are shared, as between any two streams)
        that starts from this one's state; from then on the two step independently.
        ``copy.deepcopy`` does the same. Copying the attributes instead would leave the copy's
        :meth:`step` bound to this stream's arrays."""
        twin = Stream(self.model, batch=self.batch, threads=self.threads)
        twin._work[:] = self._work
        return twin

    def __deepcopy__(self, memo: dict) -> Stream:
        return self.__copy__()

    def reset(self) -> None:
        """Back to the model's initial state."""
        p = self.model.plan
        self._work[:, p.state_offset:p.state_offset + p.state_init.size] = p.state_init

    @property
    def state(self) -> dict[str, np.ndarray]:
        """A copy of the state: {name: array of shape ([B,] *frame_shape)}."""
        out = {}
        for s in self.model.plan.states:
            a = self._work[:, s.offset:s.offset + s.size]
            out[s.name] = a.reshape((() if self.batch is None else (self._B,)) + s.frame_shape).copy()
        return out

    @state.setter
    def state(self, value: Mapping[str, np.ndarray]) -> None:
        slots = {s.name: s for s in self.model.plan.states}
        if not isinstance(value, dict) or set(value) != set(slots):
            raise StateError(f"state must be a dict with exactly the keys {sorted(slots)}")
        staged = []
        for name, arr in value.items():
            s = slots[name]
            want = (() if self.batch is None else (self._B,)) + s.frame_shape
            arr = np.asarray(arr)
            if arr.shape != want:
                raise StateError(f"state '{name}' has shape {arr.shape}; expected {want}")
            staged.append((s, arr.astype(np.float32).reshape(self._B, s.size)))
        for s, arr in staged:
            self._work[:, s.offset:s.offset + s.size] = arr


def _bound_signature(method):
    import inspect
    sig = inspect.signature(method)
    return sig.replace(parameters=list(sig.parameters.values())[1:])


#: Stream.step's signature without ``self``: the fast step function's, as help() shows it
_STEP_PARAMETERS = _bound_signature(Stream.step)
