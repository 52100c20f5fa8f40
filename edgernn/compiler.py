"""The one-time compile, made visible: a message when compiling starts, a progress line on a
terminal, compiling ahead of time (``edgernn compile``) and the cache's contents (``edgernn
cache``).

edgernn compiles each op's kernel, and each entry point (``Stream.step``, ``Stream.run``, its
threaded form, the profiler's loop), on first use, and Numba caches the machine code
(:mod:`edgernn.config` says where). A listener on Numba's ``numba:compile`` event, which Numba
fires only when it really compiles (a cache load fires nothing), reports edgernn's compiles:
the first one in a process prints what is compiled, why, roughly how long it takes and where
the cache lives, on stderr; on a terminal a line then shows each kernel as it compiles; each
batch ends with a line saying how long it took. A process whose code all comes from the cache
prints nothing.

``EDGERNN_QUIET=1`` (or :func:`set_quiet`) keeps stderr silent. The same messages go to the
``logging`` logger ``edgernn.compile`` at INFO; when that logger would show them (a handler
configured and INFO enabled), they are not written to stderr a second time.
"""
import glob
import logging
import os
import shutil
import sys
import time
from contextlib import contextmanager

from . import config
from .errors import EdgeRNNError

log = logging.getLogger("edgernn.compile")

#: what a first compile costs, as measured (docs/compile-cache.md gives the figures)
ESTIMATE = ("tens of seconds: 8-15 s to the first step of a small GRU model, 20-25 s for all of its entry "
            "points, measured on a 2-core x86 machine; slower boards take longer")

#: the engine's entry points, by their function's name: what a user calls that runs them
ENTRY_POINTS = {
    "step_frame_at": "Stream.step",
    "step_frame": "Stream.step",
    "run_frames": "Stream.run (frame by frame)",
    "run_chunk": "Stream.run (a chunk op by op)",
    "run_frames_threaded": "Stream.run on threads (frame by frame)",
    "run_chunk_threaded": "Stream.run on threads (a chunk op by op)",
    "_repeat": "the profiler's per-op loop",
}

_state = {"quiet": os.environ.get("EDGERNN_QUIET", "") not in ("", "0"), "announced": False,
          "subject": None, "jobs": [], "line": False, "last_tick": 0.0}


def set_quiet(quiet=True):
    """Silence (or restore) the compile messages on stderr for this process; the logger
    ``edgernn.compile`` still gets them. ``EDGERNN_QUIET=1`` does the same from the start."""
    _state["quiet"] = bool(quiet)


@contextmanager
def subject(name):
    """Name what is being prepared (a model's file) in the compile message."""
    before, _state["subject"] = _state["subject"], name
    try:
        yield
    finally:
        _state["subject"] = before


# ---------------------------------------------------------------- output
def _logged():
    """Whether the logger shows an INFO message itself (INFO enabled and a handler other than
    a NullHandler on the way up)."""
    if not log.isEnabledFor(logging.INFO):
        return False
    logger = log
    while logger is not None:
        if any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
            return True
        logger = logger.parent if logger.propagate else None
    return False


def _to_stderr():
    return not _state["quiet"] and not _logged()


def _tty():
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _say(text):
    """A finished line: to the logger, and to stderr (replacing the progress line there)."""
    log.info(text)
    if _to_stderr():
        end = "\r\x1b[K" if _state["line"] else ""
        _state["line"] = False
        sys.stderr.write(f"{end}edgernn: {text}\n")
        sys.stderr.flush()


def _progress(text):
    """The line updated in place, on a terminal only."""
    if _to_stderr() and _tty():
        sys.stderr.write(f"\r\x1b[Kedgernn: {text}")
        sys.stderr.flush()
        _state["line"] = True


def cache_place():
    root = config.cache_root() if config.JIT_OPTIONS["cache"] else None
    if not config.JIT_OPTIONS["cache"]:
        return "nowhere (EDGERNN_NO_CACHE=1)"
    return root if root else "the __pycache__ folders inside the edgernn package"


def _reason():
    return {
        "off": "caching is off (EDGERNN_NO_CACHE=1), so every process compiles",
        "new": "first use on this machine: nothing is cached yet",
        "stale": "edgernn's sources changed since the cache was written (an upgrade or an edit), so the cached "
                 "code was dropped",
    }.get(config.CACHE_STATUS, "this code is not in the cache yet (its first use on this machine, or a new "
                               "Numba version or CPU)")


def _announce(what, then=""):
    """The message of the first compile in this process."""
    _state["announced"] = True
    model = f" for {_state['subject']}" if _state["subject"] else ""
    then = f"; then {then}" if then else ""
    _say(f"compiling native code{model}: {what}{then}.\n"
         f"  why: {_reason()}.\n"
         + (f"  how long: {ESTIMATE}, in every process while caching is off.\n" if config.CACHE_STATUS == "off" else
            f"  how long: once per machine and edgernn version, {ESTIMATE}; later processes load it from the "
            f"cache, {cache_place()} (NUMBA_CACHE_DIR moves it).\n")
         + "  compile ahead of time with 'edgernn compile [MODEL ...]'; EDGERNN_QUIET=1 hides these messages.")


# ---------------------------------------------------------------- jobs: batches with a count
class Job:
    """A batch of ``total`` items (kernels, entry points) prepared one after another; the
    progress line counts them, compiled or loaded from the cache alike."""

    def __init__(self, what, total, then=""):
        self.what, self.total, self.done, self.then = what, total, 0, then
        self.label, self.compiled, self.t0 = None, [], time.perf_counter()
        self.item_compiled = False

    @contextmanager
    def item(self, label):
        """Prepare one item (compile it or load it): ``with job.item("gru kernel"): ...``.
        Yields a list that holds True afterwards when it really compiled."""
        outer = _state["jobs"] and _state["jobs"][0] is not self
        if outer:                              # inside another job's item: that one counts
            yield []
            return
        self.label, self.item_compiled, flag = label, False, []
        try:
            yield flag
        finally:
            self.done += 1
            if self.item_compiled:
                self.compiled.append(label)
                flag.append(True)
                _progress(f"compiled {self.done}/{self.total}: {label}")
            self.label = None


@contextmanager
def job(what, total, then=""):
    """A batch (see :class:`Job`) of ``total`` items, ``what`` in words (and ``then``: what
    follows it, for the first message); a job inside another job's item is folded into it. On
    leaving, when anything in it compiled, a line says what and how long it took."""
    j = Job(what, total, then)
    _state["jobs"].append(j)
    try:
        yield j
    finally:
        _state["jobs"].remove(j)
        if j.compiled and not _state["jobs"]:
            n = len(j.compiled)
            _say(f"compiled {', '.join(j.compiled)} in {time.perf_counter() - j.t0:.1f} s"
                 + ("" if n == j.total else f" ({j.total - n} more loaded from the cache)"))


def _label(data):
    """What a compile event compiles, in words."""
    dispatcher = data["dispatcher"]
    name = getattr(dispatcher.py_func, "__name__", "?")
    if name == "_panel_block":
        args = data.get("args") or ()
        try:
            dtype, rows, lanes = args[0].dtype, args[10].literal_value, args[11].literal_value
            return f"matrix kernel ({lanes} lanes, {dtype} weights, {rows} row{'s' if rows > 1 else ''})"
        except (AttributeError, IndexError):
            return "matrix kernel"
    if name in ENTRY_POINTS:
        return f"{ENTRY_POINTS[name]} entry point"
    if name.endswith("_kernel"):
        return f"{name[:-len('_kernel')]} kernel"
    return name


def _ours(data):
    fn = getattr(data.get("dispatcher"), "py_func", None)
    return getattr(fn, "__module__", "").startswith("edgernn.")


class _Started:
    def __init__(self, label, ours):
        self.label, self.ours, self.t0 = label, ours, time.perf_counter()


def _compile_started(data):
    j = _state["jobs"][0] if _state["jobs"] else None
    label = _label(data)
    if j is not None:
        j.item_compiled = True
        if j.label:
            label = j.label
    if not _state["announced"]:
        _announce(j.what, j.then) if j is not None else _announce(label)
    if j is not None:
        _progress(f"compiling {min(j.done + 1, j.total)}/{j.total}: {label} ...")
    else:
        _progress(f"compiling {label} ...")
    return label


def _compile_ended(started, failed):
    if _state["jobs"] or failed:
        return
    _say(f"compiled {started.label} in {time.perf_counter() - started.t0:.1f} s")


def _tick(started):
    """A nested compile started: refresh the progress line's clock (at most 4 times a second)."""
    now = time.perf_counter()
    if now - _state["last_tick"] < 0.25:
        return
    _state["last_tick"] = now
    j = _state["jobs"][0] if _state["jobs"] else None
    count = f"{min(j.done + 1, j.total)}/{j.total}: " if j is not None else ""
    _progress(f"compiling {count}{started.label} ... {now - started.t0:.0f} s")


def _install_listener():
    try:
        from numba.core import event
    except ImportError:                                  # pragma: no cover -- a Numba without events
        return

    class Listener(event.Listener):
        """Numba's compile events: the outermost one of edgernn's is an item being compiled;
        the ones inside it (the functions it calls) only move the progress line's clock."""

        def __init__(self):
            self.stack = []

        def on_start(self, ev):
            try:
                if not self.stack:
                    ours = _ours(ev.data)
                    self.stack.append(_Started(_compile_started(ev.data) if ours else "", ours))
                else:
                    top = self.stack[0]
                    self.stack.append(None)
                    if top.ours:
                        _tick(top)
            except Exception:                            # noqa: BLE001 -- a report never breaks a compile
                log.debug("compile report failed", exc_info=True)

        def on_end(self, ev):
            try:
                started = self.stack.pop() if self.stack else None
                if started is not None and started.ours:
                    _compile_ended(started, getattr(ev, "_exc_details", None) is not None)
            except Exception:                            # noqa: BLE001
                log.debug("compile report failed", exc_info=True)

    event.register("numba:compile", Listener())


_install_listener()


# ---------------------------------------------------------------- edgernn compile
def _entry_items(model=None):
    """[(label, function)]: every entry point, run on ``model`` through the public API (so
    each compiles for exactly the types a user's call passes), or without a model called on an
    empty program."""
    import numpy as np
    import numba
    from .ops.matvec import ROWS
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    if model is not None:
        frames = [np.zeros(t.frame_shape, np.float32) for t in model.inputs]
        chunk = max(ROWS, 2) + 1

        def seq(n, batch=None):
            lead = (n,) if batch is None else (n, batch)
            return [np.zeros(lead + f.shape, np.float32) for f in frames]

        def batch(b):
            return [np.zeros((b,) + f.shape, np.float32) for f in frames]

        def threaded():
            s = model.stream(batch=threads, threads=threads)
            s.run(*seq(1, threads))
            s.run(*seq(chunk, threads))

        def profiler():
            from .breakdown import _execute_args, _repeat
            from .ops.matvec import compile_row_blocks
            plan = model.plan.link()
            work = np.zeros((1, plan.work_size), np.float32)
            compile_row_blocks(plan.matvec_rows)
            _repeat(0, _execute_args(plan, np.ascontiguousarray(plan.prog), work))

        items = [("Stream.step", lambda: model.stream().step(*frames)),
                 ("Stream.step, batch of streams", lambda: model.stream(batch=ROWS).step(*batch(ROWS))),
                 ("Stream.run", lambda: (model.stream().run(*seq(1)), model.stream().run(*seq(chunk)))),
                 ("Stream.run, batch of streams", lambda: model.stream(batch=ROWS).run(*seq(chunk, ROWS)))]
        if threads > 1:
            items.append(("Stream.run on threads", threaded))
        items.append(("the profiler's per-op loop", profiler))
        return items

    from . import engine
    from .breakdown import _repeat
    from .ops.row import WIDTH
    from .stream import _native_step
    prog = np.zeros((0, WIDTH), np.int64)
    f32, i8 = np.zeros(1, np.float32), np.zeros(1, np.int8)
    work = np.zeros((1, 1), np.float32)
    frames, outs = np.zeros((0, 1, 1), np.float32), np.zeros((0, 1, 1), np.float32)
    io = np.zeros((0, 3), np.int64)
    rows = np.zeros((1, 1, 1), np.float32)
    bounds = np.array([0, 1], np.int64)
    engine_args = (prog, f32, f32, i8, work)
    items = [(f"Stream.step ({n}-D frames)", lambda n=n: _native_step(n)) for n in (1, 2, 3, 4)]
    items += [("Stream.run (frame by frame)", lambda: engine.run_frames(*engine_args, frames, io, outs, io)),
              ("Stream.run (a chunk op by op)",
               lambda: engine.run_chunk(*engine_args, frames, io, outs, io, rows[0], 0, 0)),
              ("Stream.run on threads (frame by frame)",
               lambda: engine.run_frames_threaded(*engine_args, frames, io, outs, io, bounds)),
              ("Stream.run on threads (a chunk op by op)",
               lambda: engine.run_chunk_threaded(*engine_args, frames, io, outs, io, rows, 0, 0, bounds)),
              ("the profiler's per-op loop", lambda: _repeat(0, (prog, f32, f32, i8, work, False)))]
    return items


def _kernel_items(layout_names=None):
    """[(label, function)]: the kernels of ``layout_names`` (all when None)."""
    from . import engine
    from .ops.row import LAYOUTS
    names = [n for n, layout in LAYOUTS.items() if layout.kernel_function is not None] \
        if layout_names is None else list(dict.fromkeys(layout_names))
    return [(f"{n} kernel", lambda n=n: engine.kernel_address(LAYOUTS[n])) for n in names]


def _matrix_items(variants):
    """[(label, function)]: the matrix kernel's ``variants`` ((lanes, kind) pairs), each in its
    one-row and ROWS-row form."""
    from .ops import matvec
    items = []
    for lanes, kind in variants:
        items.append((matvec.matrix_label(lanes, kind),
                      lambda lanes=lanes, kind=kind: (matvec.matvec_descriptor(lanes, kind),
                                                      matvec.compile_row_blocks(matvec.ROWS))))
    return items


def warm(models=(), load=None, out=None):
    """Compile (or find in the cache) what ``models`` need: their kernels and every entry
    point run on them; with no model, every kernel, every matrix variant and every entry point.
    ``load(path)`` loads a model. Prints one line per item on ``out`` (stdout); returns
    [(model or None, label, seconds, compiled)]."""
    out = sys.stdout if out is None else out
    results = []
    targets = list(models) or [None]
    t_all = time.perf_counter()
    for path in targets:
        if path is None:
            from .ops import matvec
            items = _kernel_items() + _matrix_items([(lanes, kind) for lanes in (matvec.PANEL, matvec.NARROW)
                                                     for kind in (matvec.FLOAT32, matvec.INT8, matvec.INT8_DOT)]) \
                + _entry_items()
            title = "every kernel and every entry point"
        else:
            model = load(path)
            from .ops.row import LAYOUTS, matvec_variant
            plan = model.plan
            dot_offsets = plan.int8_activation_matrices()
            variants = list(dict.fromkeys((lanes, kind) for i, name in enumerate(plan.row_layouts)
                                          for _, lanes, kind in matvec_variant(LAYOUTS[name], plan.prog[i], dot_offsets)
                                          if lanes))
            items = _kernel_items(plan.row_layouts) + _matrix_items(variants) + _entry_items(model)
            title = "its kernels and every entry point"
        print(f"{path}: {title}, {len(items)} items" if path is not None else f"{title}: {len(items)} items",
              file=out)
        with subject(path), job(title, len(items)) as j:
            for label, fn in items:
                t = time.perf_counter()
                skipped = None
                with j.item(label) as compiled:
                    try:
                        fn()
                    except EdgeRNNError as e:           # e.g. a model that takes no batch of streams
                        skipped = str(e)
                dt = time.perf_counter() - t
                results.append((path, label, dt, bool(compiled)))
                status = "compiled" if compiled else "cached" if skipped is None else "skipped"
                print(f"  {label:<48} {status:<9}{dt:6.1f} s" + (f"  ({skipped})" if skipped else ""),
                      file=out, flush=True)
    n = sum(1 for r in results if r[3])
    print(f"compiled {n} of {len(results)} items in {time.perf_counter() - t_all:.1f} s "
          f"({len(results) - n} already cached); cache: {cache_place()}", file=out)
    return results


# ---------------------------------------------------------------- edgernn cache
def _ours_in(folder):
    return [p for p in glob.glob(os.path.join(folder, "*")) if p.endswith((".nbi", ".nbc", "kernels.hash"))]


def cache_files():
    """(root or None, [paths of edgernn's cache files]): in the per-user default folder every
    file (it holds only edgernn's code, of any install); under NUMBA_CACHE_DIR or in
    ``__pycache__`` only this install's."""
    root, folders = config.cache_dirs(root=True)
    if root is not None and os.path.abspath(root) == os.path.abspath(config.user_cache_root()):
        files = [os.path.join(d, f) for d, _, names in os.walk(root) for f in names]
    else:
        files = [p for folder in folders for p in _ours_in(folder)]
    return root, sorted(files)


def legacy_files():
    """Cache files an earlier edgernn wrote inside the package (``__pycache__``, its default
    then) while the default is the per-user folder now; none when NUMBA_CACHE_DIR is set."""
    import numba
    if numba.config.CACHE_DIR or config.cache_root() is None:
        return []
    return sorted(p for folder in config.source_folders() for p in _ours_in(os.path.join(folder, "__pycache__"))
                  if is_code(p))


def is_code(path):
    """A file of compiled code (Numba's index and data files), not the sources' stamp."""
    return path.endswith((".nbi", ".nbc"))


def clear_cache():
    """Remove edgernn's cache files (:func:`cache_files` and :func:`legacy_files`) and the
    folders left empty; returns (files of compiled code removed, their bytes)."""
    root, files = cache_files()
    files += legacy_files()
    count, size = 0, 0
    for p in files:
        try:
            n = os.path.getsize(p)
            os.remove(p)
            if is_code(p):
                count, size = count + 1, size + n
        except OSError:
            pass
    if root is not None and os.path.abspath(root) == os.path.abspath(config.user_cache_root()):
        shutil.rmtree(root, ignore_errors=True)
    elif root is not None:
        for folder in config.cache_dirs():
            try:
                os.rmdir(folder)
            except OSError:
                pass
    return count, size
