"""The one-time compile is visible, can be done ahead of time, and its cache can be seen and
cleared (edgernn.compiler, `edgernn compile`, `edgernn cache`).

Each subprocess runs a snapshot of the package (copied to a temporary folder, so an edit of
the checkout while the tests run does not invalidate their cache) with a fresh
``NUMBA_CACHE_DIR``. A cold compile takes tens of seconds on a small machine, so there are
few of them: one `edgernn run --chunk` with stderr on a terminal, and one `edgernn compile`.
No wall-clock assertions: only what the commands print.
"""
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "tests" / "fixtures" / "onnx" / "gru_l1_bf_lin_dy.onnx"
COMPILING = "edgernn: compiling native code"

pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    """(folder to put on PYTHONPATH, a frames file for MODEL)."""
    base = tmp_path_factory.mktemp("compile")
    shutil.copytree(ROOT / "edgernn", base / "pkg" / "edgernn", ignore=shutil.ignore_patterns("__pycache__"))
    frames = base / "frames.npy"
    np.save(frames, np.random.default_rng(0).standard_normal((40, 13)).astype(np.float32))
    return base / "pkg", frames


def _env(pkg, cache, **more):
    env = dict(os.environ, PYTHONPATH=str(pkg), NUMBA_CACHE_DIR=str(cache), **more)
    for name in ("EDGERNN_NO_CACHE", "EDGERNN_QUIET"):
        env.pop(name, None)
    return env


def _edgernn(pkg, cache, *args, **more):
    res = subprocess.run([sys.executable, "-m", "edgernn", *map(str, args)], env=_env(pkg, cache, **more),
                         capture_output=True, text=True, timeout=900, cwd=str(pkg))
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def _edgernn_tty(pkg, cache, *args):
    """Run with stderr on a pseudo-terminal (stdout a pipe): (stdout, what the terminal got)."""
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    got = []

    def read():
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            got.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    p = subprocess.Popen([sys.executable, "-m", "edgernn", *map(str, args)], env=_env(pkg, cache),
                         stdout=subprocess.PIPE, stderr=slave, text=True, cwd=str(pkg))
    os.close(slave)
    out, _ = p.communicate(timeout=900)
    reader.join(timeout=10)
    os.close(master)
    assert p.returncode == 0, b"".join(got).decode(errors="replace")[-3000:]
    return out, b"".join(got).decode(errors="replace")


def test_first_run_says_it_compiles_and_chunk_timing_excludes_the_first_call(snapshot, tmp_path):
    pkg, frames = snapshot
    cache = tmp_path / "cache"
    out, terminal = _edgernn_tty(pkg, cache, "run", MODEL, frames, "-o", tmp_path / "y.npy", "--chunk")
    # the message: what, why, how long, where the cache is, how to avoid it and silence it
    assert COMPILING in terminal
    assert "gru_fused" in terminal and "why: first use on this machine" in terminal
    assert "tens of seconds" in terminal and str(cache) in terminal
    assert "edgernn compile" in terminal and "EDGERNN_QUIET=1" in terminal
    # the progress line, rewritten in place, counts the kernels as they finish
    assert re.search(r"\r\x1b\[Kedgernn: compiling 1/\d+: gru_fused kernel", terminal)
    assert re.search(r"edgernn: compiled .*gru_fused kernel.* in \d+\.\d s", terminal)
    assert COMPILING not in out
    # --chunk: the first call (compile or cache load) is timed apart and said to be excluded
    line = out.strip().splitlines()[-1]
    assert "not included" in line and "first call" in line and "chunk of 8 frames" in line, line
    per_frame_us = float(re.search(r"([\d.]+) (?:µs|us)/frame", line).group(1))
    first_call_ms = float(re.search(r"first call (\d+) ms", line).group(1))
    assert per_frame_us < first_call_ms * 1e3, line
    assert any(cache.rglob("*.nbi"))


def test_compile_ahead_then_run_is_silent_and_cache_shows_and_clears(snapshot, tmp_path):
    pkg, frames = snapshot
    cache = tmp_path / "cache"
    res = _edgernn(pkg, cache, "compile", MODEL)
    assert "gru_fused kernel" in res.stdout and "Stream.run on threads" in res.stdout
    assert "Stream.step" in res.stdout and "the profiler's per-op loop" in res.stdout
    assert re.search(r"compiled \d+ of \d+ items in [\d.]+ s", res.stdout), res.stdout
    assert COMPILING in res.stderr                           # it did compile, and said so
    for mode in ((), ("--chunk",)):
        run = _edgernn(pkg, cache, "run", MODEL, frames, "-o", tmp_path / "y.npy", *mode)
        assert "compil" not in run.stderr, run.stderr     # all from the cache: not a word
        assert "frames ->" in run.stdout
    shown = _edgernn(pkg, cache, "cache")
    assert str(cache) in shown.stdout and "NUMBA_CACHE_DIR" in shown.stdout
    count = int(re.search(r"files: (\d+)", shown.stdout).group(1))
    assert count == len(list(cache.rglob("*.nb[ic]"))) and count > 10, shown.stdout
    cleared = _edgernn(pkg, cache, "cache", "--clear")
    assert f"removed {count} file(s)" in cleared.stdout, cleared.stdout
    assert not any(cache.rglob("*.nb[ic]"))
    assert "files: 0," in _edgernn(pkg, cache, "cache").stdout


def test_default_cache_is_per_user_and_numba_cache_dir_takes_precedence(snapshot, tmp_path):
    pkg, _ = snapshot
    code = ("import edgernn, edgernn.engine as e; from edgernn import config; "
            "print(config.cache_root()); print(e.run_frames._cache._cache_path)")
    env = _env(pkg, tmp_path / "unused", XDG_CACHE_HOME=str(tmp_path / "xdg"))
    env.pop("NUMBA_CACHE_DIR")
    root, used = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True, cwd=str(tmp_path)).stdout.split()
    assert root == str(tmp_path / "xdg" / "edgernn" / "numba")
    assert used.startswith(root + os.sep)                   # where Numba really writes
    assert not any((pkg / "edgernn" / "__pycache__").glob("*.nb[ic]"))
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba")
    root, used = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True, cwd=str(tmp_path)).stdout.split()
    assert root == str(tmp_path / "numba") and used.startswith(root + os.sep)


def test_quiet_keeps_stderr_silent_and_the_logger_still_hears(capsys, caplog):
    from edgernn import compiler
    compiler.set_quiet(True)
    try:
        with caplog.at_level("INFO", logger="edgernn.compile"):
            compiler._say("compiled something in 1.0 s")
    finally:
        compiler.set_quiet(False)
    assert capsys.readouterr().err == ""
    assert "compiled something" in caplog.text
    compiler._say("compiled something else in 1.0 s")        # by default: on stderr
    assert "edgernn: compiled something else" in capsys.readouterr().err
