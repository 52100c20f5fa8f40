"""The worker process: loads and steps one mutant per request, in a bounds-checked build.

Started by session.Worker as ``python -u -m fuzzing.worker`` (tests/ on PYTHONPATH, the case's
working directory as cwd). The protocol: one JSON line per request on stdin, one JSON reply
line per request on the stdout it had at start (anything else printed goes to stderr, the
session's log), and heartbeats ``{"heartbeat": "compile"}`` / ``{"heartbeat": "compiled"}``
while Numba compiles, so that the parent's case timeout waits for a compilation. A reply's
"kind" is typed / ran / other for a case (escape when it opened a file outside its model's
directory), ran for the other requests, or error when one of those failed.
"""
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from .escapes import escape_reply, opened_outside
from .seeds import REPO, read_array


def _where(tb):
    """(innermost frame in edgernn's package, innermost frame) as 'path:line (function)'."""
    frames = traceback.extract_tb(tb)
    pkg = os.sep + "edgernn" + os.sep

    def show(f):
        path = f.filename
        for root in (str(REPO) + os.sep, sys.prefix + os.sep):
            if path.startswith(root):
                path = path[len(root):]
        return f"{path}:{f.lineno} ({f.name})"
    own = [f for f in frames if pkg in f.filename and os.sep + "tests" + os.sep not in f.filename]
    return (show(own[-1]) if own else ""), (show(frames[-1]) if frames else "")


def _exercise(m, rng, steps=3):
    """Step the model: one stream and a batch of two, ``steps`` frames each through the fast
    step and the general path, then a ``steps``-frame run (and a flush, with look-ahead).
    Returns whether outputs were finite (a step not due yet gives None)."""
    from edgernn.stream import Stream
    finite = True
    for batch in (None, 2):
        s = m.stream(batch=batch)
        lead = () if batch is None else (batch,)
        shapes = [lead + tuple(t.frame_shape) for t in m.inputs]
        if sum(int(np.prod(sh)) for sh in shapes) > 1 << 24:
            return None                 # loaded with frames of 16M values: not stepped by the harness

        def frames(k):
            return [np.zeros(sh, np.float32) if k == 0 else rng.standard_normal(sh).astype(np.float32)
                    for sh in shapes]
        outs = []
        for k in range(steps):
            outs.append(Stream.step(s, *frames(k)) if k == 1 else s.step(*frames(k)))
        outs.append(s.run(*[np.stack(seq) for seq in zip(*[frames(k) for k in range(steps)])]))
        if m.flush_steps:
            outs.append(s.flush())
        for y in outs:
            for a in (y if isinstance(y, tuple) else (y,)):
                finite = finite and (a is None or bool(np.all(np.isfinite(a))))
    return finite


def _classify(fn):
    """Run fn(); a reply for the case: typed / ran / other, with the exception's facts."""
    from edgernn.errors import EdgeRNNError
    phase = ["load"]
    try:
        finite = fn(phase)
        return {"kind": "ran", "finite": finite}
    except EdgeRNNError as e:
        where, at = _where(e.__traceback__)
        return {"kind": "typed", "type": type(e).__name__, "message": str(e)[:300], "phase": phase[0],
                "where": where}
    except BaseException as e:          # noqa: BLE001 -- everything else is the finding
        if isinstance(e, KeyboardInterrupt):
            raise
        where, at = _where(e.__traceback__)
        tb = "".join(traceback.format_exception(type(e), e, e.__traceback__)[-12:])
        name = type(e).__name__
        if isinstance(e, IndexError) and str(e) == "index is out of bounds":
            name += " (Numba bounds check)"         # compiled code indexed outside an array
        return {"kind": "other", "type": name, "message": str(e)[:500], "phase": phase[0],
                "where": where, "raised_at": at, "traceback": tb[-4000:]}


_OPENS = None           # while a case runs: the files it opens (the audit hook appends)


def _audit(event, args):
    if event == "open" and _OPENS is not None and isinstance(args[0], (str, bytes)):
        path = os.fsdecode(args[0])
        _OPENS.append(os.path.realpath(path))


def _handle_case(req):
    import edgernn
    rng = np.random.default_rng(int(req.get("frames_seed", 0)))

    opened = []

    def run(phase):
        global _OPENS
        src = req["path"] if req.get("via", "path") == "path" else Path(req["path"]).read_bytes()
        _OPENS = opened                 # what edgernn opens (not the harness, nor the traceback's linecache)
        try:
            m = edgernn.load(src)
            phase[0] = "step"
            finite = _exercise(m, rng, int(req.get("steps", 3)))
            if m.plan.int8_matrices():              # and the int8 x int8 kernel on int8 files
                phase[0] = "load"
                m = edgernn.load(src, activations="int8")
                phase[0] = "step"
                finite = _exercise(m, rng, int(req.get("steps", 3))) and finite
            return finite
        finally:
            _OPENS = None
    reply = _classify(run)
    bad = [p for p in opened_outside(opened, req.get("watch", []), req.get("allowed", [])) if os.path.exists(p)]
    return escape_reply(reply, bad) if bad else reply


def _handle_warmup(req):
    import numba

    import edgernn
    t0 = time.perf_counter()
    for p in req["paths"]:
        m = edgernn.load(p)
        _exercise(m, np.random.default_rng(0))
    return {"kind": "ran", "seconds": time.perf_counter() - t0, "boundscheck": numba.config.BOUNDSCHECK,
            "cache_dir": numba.config.CACHE_DIR, "edgernn": edgernn.__file__, "pid": os.getpid()}


def _handle_check(req):
    """Step an unmutated seed over its frames, one step per frame; save every output's frames."""
    import edgernn
    frames = read_array(req["frames"], req.get("key"))
    m = edgernn.load(req["path"])
    s = m.stream()
    ys = [y for y in (s.step(f) for f in frames.astype(np.float32)) if y is not None]    # None: not due yet
    tail = s.flush() if m.flush_steps else []
    first = np.stack([y[0] if isinstance(y, tuple) else y for y in ys]
                     + list(tail[0] if isinstance(tail, tuple) else tail))
    np.save(req["out"], first)
    return {"kind": "ran", "inputs": [list(t.frame_shape) for t in m.inputs]}


def _handle_selftest(req):
    """Does an out-of-bounds index fail here? (1) a function compiled with edgernn's own jit
    options reading past its array; (2) the engine run on a work arena cut to a quarter of the
    plan's size (a stand-in for a plan whose validation missed a range)."""
    import numba

    from edgernn import config
    out = {"kind": "ran", "boundscheck": numba.config.BOUNDSCHECK, "cache_dir": numba.config.CACHE_DIR}

    def past_the_end(a, i):
        return a[i]
    reader = config.jit(past_the_end)
    try:
        value = reader(np.zeros(4, np.float32), 1 << 20)
        out["jit"] = {"kind": "no error", "value": float(value)}
    except Exception as e:  # noqa: BLE001
        out["jit"] = {"kind": type(e).__name__, "message": str(e)}
    out["engine"] = _engine_out_of_bounds(req["path"])
    return out


def _engine_out_of_bounds(path):
    import edgernn
    try:
        from edgernn import engine
        m = edgernn.load(path)
        m.stream()                      # a stream makes the plan runnable (links its kernels)
        p = m.plan
        work = np.zeros((1, max(1, p.work_size // 4)), np.float32)
        frames = np.zeros((1, 1, m._in_width), np.float32)
        outs = np.zeros((1, 1, m._out_width), np.float32)
        args = (p.prog, p.fparams, p.consts, p.qconsts, work, frames, m._in_map, outs, m._out_map)
    except Exception as e:  # noqa: BLE001 -- the engine's interface changed: say so, do not guess
        return {"kind": "unavailable", "message": f"{type(e).__name__}: {e}"}
    try:
        engine.run_frames(*args)
        return {"kind": "no error"}
    except Exception as e:  # noqa: BLE001
        return {"kind": type(e).__name__, "message": str(e)[:300]}


def _handle_die(req):
    """For the harness's own test: the worker dies as a crashing mutant would kill it."""
    os.kill(os.getpid(), getattr(signal, req.get("signal", "SIGSEGV")))
    time.sleep(60)


def _handle_sleep(req):
    """For the harness's own test: no answer, as a hanging mutant would give."""
    time.sleep(float(req["seconds"]))
    return {"kind": "ran"}


HANDLERS = {"case": _handle_case, "warmup": _handle_warmup, "check": _handle_check, "selftest": _handle_selftest,
            "die": _handle_die, "sleep": _handle_sleep}


def _report_compiles(proto):
    """Heartbeats on the protocol while Numba compiles (outermost compilation only)."""
    from numba.core import event

    class Beat(event.Listener):
        depth = 0

        def on_start(self, ev):
            Beat.depth += 1
            if Beat.depth == 1:
                proto.write('{"heartbeat": "compile"}\n')

        def on_end(self, ev):
            Beat.depth -= 1
            if Beat.depth == 0:
                proto.write('{"heartbeat": "compiled"}\n')
    event.register("numba:compile", Beat())


def main():
    import faulthandler
    import warnings
    sys.addaudithook(_audit)
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)                       # prints of anything else go to the log, not the protocol
    faulthandler.enable(file=sys.stderr, all_threads=True)
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)   # a hang's stack, on request
    warnings.simplefilter("ignore")
    _report_compiles(proto)
    import edgernn  # noqa: F401 -- before the first request, so that its clock starts with the work
    for line in sys.stdin:
        req = json.loads(line)
        print(f"--- request {req.get('op')} {req.get('id')}", file=sys.stderr, flush=True)
        try:
            reply = HANDLERS[req.get("op", "case")](req)
        except BaseException as e:      # noqa: BLE001 -- a warm-up or check that fails is reported
            if isinstance(e, KeyboardInterrupt):
                raise
            reply = {"kind": "error", "type": type(e).__name__, "message": str(e)[:1000],
                     "traceback": traceback.format_exc()[-4000:]}
        reply["id"] = req.get("id")
        proto.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
