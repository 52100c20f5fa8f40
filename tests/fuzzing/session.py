"""The parent's side: a Worker (the handle on the worker process of worker.py: starts it,
sends requests, reads replies, records a death or a hang and starts a new one) and the
Session (a temporary directory, one worker and the generators, shared by every campaign of
a process)."""
import atexit
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .escapes import Inotify
from .generators import Generator
from .mutants import Context
from .seeds import REPO, SEEDS, TESTS

CASE_TIMEOUT = float(os.environ.get("EDGERNN_FUZZ_TIMEOUT", "30"))
STARTUP_TIMEOUT = 1200.0            # the first worker compiles the checked engine
COMPILE_TIMEOUT = 900.0             # a case during which the worker compiles (see Worker._receive)
WORKER_MEMORY = 8 << 30             # address-space ceiling of a worker (RLIMIT_AS)


class WorkerDied(Exception):
    pass


def _child_limits():
    import resource
    try:
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))
    except (ValueError, OSError):
        pass
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class Worker:
    """The session's handle on its worker process (worker.py)."""

    def __init__(self, session):
        self.session = session
        self.proc = None
        self.buf = b""
        self.warm_paths = []
        self.starts = 0
        self.warm_info = None
        self._pending_warmup = False
        self._sent, self._log_start = False, 0
        self.compiles = 0                   # Numba compilations the workers reported

    def env(self):
        """The worker's environment: the checked build; sys.path starts with tests/ (whence
        ``-m fuzzing.worker``) and the repository, and holds no working directory (the case's)."""
        env = dict(os.environ)
        env.pop("EDGERNN_NO_CACHE", None)
        env.update(NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(self.session.cache), NUMBA_NUM_THREADS="1",
                   OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1", PYTHONSAFEPATH="1",
                   PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p]))
        return env

    def start(self, warm_paths=(), warm=True):
        """Start the worker and send its warm-up (loads and steps these files: compiles or maps
        the checked engine); :meth:`wait_warm` waits for it. A worker that replaces a dead one
        starts cold (``warm=False``): the session's cache holds what the first one compiled."""
        self.stop()
        for p in warm_paths:
            if str(p) not in self.warm_paths:
                self.warm_paths.append(str(p))
        self.log = open(self.session.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-u", "-m", "fuzzing.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, cwd=str(self.session.ctx.cwd),
                                     env=self.env(), preexec_fn=_child_limits, start_new_session=True)
        self.buf = b""
        self.starts += 1
        if warm:
            self._send({"op": "warmup", "id": "warmup", "paths": self.warm_paths})
            self._pending_warmup = True

    def wait_warm(self):
        if not self._pending_warmup:
            return self.warm_info
        self._pending_warmup = False
        try:
            reply = self._receive(STARTUP_TIMEOUT)
        except WorkerDied:
            reply = {"kind": "crash", "stderr": self._log_tail(0)}
        if reply is None or reply.get("kind") != "ran":
            self.stop()
            raise RuntimeError(f"the fuzz worker did not warm up: {reply}; log {self.session.log}")
        self.warm_info = reply
        return reply

    def ensure(self, warm_paths=()):
        missing = [p for p in warm_paths if str(p) not in self.warm_paths]
        if self.proc is None or self.proc.poll() is not None:
            self.start(warm_paths)
        elif missing:
            self.warm_paths += [str(p) for p in missing]
            self._send({"op": "warmup", "id": "warmup", "paths": [str(p) for p in missing]})
            self._pending_warmup = True

    def _send(self, req):
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        self.proc.stdin.flush()

    def _receive(self, timeout):
        """The next reply, or None after ``timeout`` seconds without one. While the worker
        compiles (it says so: a "compile" heartbeat when Numba starts, "compiled" when it is
        done) the clock waits up to COMPILE_TIMEOUT instead: a mutant that needs a kernel or a
        frame layout that nothing compiled before is slow once, not hung."""
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                ready, _, _ = select.select([fd], [], [], left)
                if ready:
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        raise WorkerDied
                    self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            msg = json.loads(line)
            beat = msg.get("heartbeat")
            if beat is None:
                return msg
            if beat == "compile":
                self.compiles += 1
                deadline = max(deadline, time.monotonic() + COMPILE_TIMEOUT)
            else:
                deadline = time.monotonic() + timeout

    def _log_tail(self, start, limit=3000):
        try:
            with open(self.session.log, "rb") as f:
                f.seek(start)
                return f.read()[-limit:].decode(errors="replace")
        except (OSError, ValueError):
            return ""

    def submit(self, req):
        """Send a request (starting and warming a worker first if there is none); the reply
        is read by :meth:`result`, so the caller can prepare the next case meanwhile."""
        if self.proc is None or self.proc.poll() is not None:
            self.start(warm=False)
        self.wait_warm()
        self._log_start = os.path.getsize(self.session.log)
        try:
            self._send(req)
            self._sent = True
        except BrokenPipeError:
            self._sent = False

    def result(self, timeout=CASE_TIMEOUT):
        """The reply to the submitted request, or a crash/hang record (the worker is then gone,
        and the next :meth:`submit` starts a new one)."""
        try:
            if not self._sent:
                raise WorkerDied
            reply = self._receive(timeout)
        except WorkerDied:
            code = self.proc.wait()
            self.proc = None
            sig = signal.Signals(-code).name if code < 0 and -code in signal.Signals._value2member_map_ else None
            return {"kind": "crash", "type": sig or f"exit {code}", "message": f"worker died ({sig or code})",
                    "where": "", "stderr": self._log_tail(self._log_start)}
        if reply is None:
            try:
                self.proc.send_signal(signal.SIGUSR1)      # faulthandler writes where it is stuck
                time.sleep(1.0)
            except OSError:
                pass
            self.stop()                 # kills it: the log then holds all it wrote
            return {"kind": "hang", "type": "timeout", "message": f"no answer in {timeout:.0f} s", "where": "",
                    "stderr": self._log_tail(self._log_start)}
        return reply

    def call(self, req, timeout=CASE_TIMEOUT):
        self.submit(req)
        return self.result(timeout)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            self.proc.kill()            # our own child, by its pid
            self.proc.wait()
        self.proc = None
        self._pending_warmup = False
        self.log.close()


def checked_cache_dir():
    """``$EDGERNN_FUZZ_NUMBA_CACHE/<hash of edgernn's sources, Numba, Python>`` when that
    variable is set (repeated campaigns then compile the checked engine once), else None: a
    fresh cache per session. Only fuzz workers (NUMBA_BOUNDSCHECK=1) may write there: Numba
    would load unchecked code from it as readily."""
    root = os.environ.get("EDGERNN_FUZZ_NUMBA_CACHE", "")
    if not root:
        return None
    import hashlib

    import numba
    h = hashlib.sha1(f"{numba.__version__} {sys.version}".encode())
    for p in sorted((REPO / "edgernn").rglob("*.py")):
        h.update(str(p.relative_to(REPO)).encode() + p.read_bytes())
    return Path(root) / f"checked-{h.hexdigest()[:16]}"


class Session:
    """A temporary directory (cases, the checked Numba cache, the worker's log, saved
    failures) and one worker, shared by every campaign of a process."""

    def __init__(self, root=None):
        self.dir = Path(root) if root else Path(tempfile.mkdtemp(prefix="edgernn-fuzz-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ctx = Context(self.dir)
        self.ctx.case.mkdir(exist_ok=True)
        self.ctx.cwd.mkdir(exist_ok=True)
        self.cache = checked_cache_dir() or self.dir / "numba-cache"
        self.failures = self.dir / "failures"
        self.log = self.dir / "worker.log"
        self.log.touch()
        self.worker = Worker(self)
        self.generators = {}
        self.inotify = Inotify.make()
        if self.inotify is not None:
            self.inotify.watch(self.dir)        # outside.bin
            self.inotify.watch(self.ctx.cwd)    # a model given as bytes has no directory of its own

    def generator(self, fmt):
        if fmt not in self.generators:
            self.generators[fmt] = Generator(fmt, self.ctx)
        return self.generators[fmt]

    def close(self):
        self.worker.stop()
        if self.inotify is not None:
            self.inotify.close()
            self.inotify = None
        if self.failures.exists() and any(self.failures.iterdir()):
            for p in (self.dir / "numba-cache", self.ctx.case, self.ctx.cwd, self.dir / "ernn-seeds"):
                shutil.rmtree(p, ignore_errors=True)
            print(f"\nedgernn fuzz: failing mutants kept in {self.failures}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


_SESSION = None


def session():
    """The process's shared session (made on first use, removed at exit)."""
    global _SESSION
    if _SESSION is None:
        _SESSION = Session()
        atexit.register(_SESSION.close)
    return _SESSION


def selftest(fmt="onnx", sess=None):
    """The worker's answer to "is an out-of-bounds index caught here?" (worker.py: _handle_selftest)."""
    sess = sess or session()
    path = SEEDS[fmt][0].path
    sess.worker.ensure([path])
    return sess.worker.call({"op": "selftest", "id": "selftest", "path": str(path)}, timeout=STARTUP_TIMEOUT)
