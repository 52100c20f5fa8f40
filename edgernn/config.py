"""Numba compilation options: the one place they are set.

`cache=True` writes compiled code next to the sources (``__pycache__``) so a second process
starts without recompiling. Numba keys a cached function on its own file only, so the
engine (engine.py) would keep running stale kernels after an edit of ops/*.py:
:func:`drop_stale_cache` removes edgernn's cached code whenever the kernel sources change. `boundscheck` stays off: every buffer range is validated when a
plan is built (`edgernn.plan.Plan.validate`), before any kernel runs. Of fastmath, only
``contract`` is on: a multiply followed by an add may become one fused multiply-add (one
rounding instead of two, the order of operations unchanged), which x86 FMA and ARM NEON
both have. Reassociation stays off, so sums keep the order the kernels write; full fastmath
can be tried per machine with ``EDGERNN_FASTMATH=1``.

``_nrt=False`` (a Numba option without a public name, stable since Numba 0.4x): the kernels
allocate nothing (every buffer comes from the plan), so they need none of Numba's reference
counting, which otherwise costs atomic increments and decrements on every array slice. In
return a compiled function may only return arrays it was given, and may not allocate: an
allocation fails to compile, it cannot leak.
"""
import glob
import hashlib
import os

PACKAGE = os.path.dirname(os.path.abspath(__file__))
JIT_OPTIONS = dict(
    nogil=True,
    cache=os.environ.get("EDGERNN_NO_CACHE", "") != "1",
    boundscheck=False,
    fastmath={"contract"} if os.environ.get("EDGERNN_FASTMATH", "") != "1" else True,
    error_model="numpy",
    _nrt=False,
)


def jit(fn):
    """Compile `fn` with the project's Numba options (lazily imports numba)."""
    import numba

    return numba.njit(**JIT_OPTIONS)(fn)


def jit_inline(fn):
    """The same options, and inlined into each caller at Numba's IR level: for the small
    helpers kernels share (a slice copy, tanh, a bias fill). Each jitted function costs a
    compile of its own (typing, LLVM's passes, a cache entry), and its code is optimised again
    inside every caller anyway: inlined, a helper costs only the latter. Not for anything
    large: inlining copies its code into every call site."""
    import numba

    return numba.njit(inline="always", **JIT_OPTIONS)(fn)


def jit_parallel(fn):
    """The same options with ``parallel=True``: ``numba.prange`` loops run on Numba's threads
    (batched streams with ``threads`` > 1; the thread count is set per call)."""
    import numba

    return numba.njit(parallel=True, **JIT_OPTIONS)(fn)


def cache_dirs():
    """The folders Numba caches edgernn's compiled code in: each source folder's __pycache__, or
    with ``NUMBA_CACHE_DIR`` set, Numba's folder for it there (``<folder name>_<sha1 of its
    absolute path>``, as numba.core.caching names it)."""
    folders = sorted({os.path.dirname(p) for p in glob.glob(os.path.join(PACKAGE, "**", "*.py"), recursive=True)})
    root = os.environ.get("NUMBA_CACHE_DIR", "")
    if not root:
        return [os.path.join(f, "__pycache__") for f in folders]
    return [os.path.join(root, f"{os.path.basename(f)}_{hashlib.sha1(f.encode()).hexdigest()}") for f in folders]


def drop_stale_cache():
    """Delete edgernn's Numba cache files when any of its sources changed since they were
    written (stamp: a hash of the sources in the package's cache folder, kernels.hash). Numba
    keys a cached function on its own file only, so a kernel that calls a changed helper in
    another file would otherwise keep its stale code. Best effort: a read-only install keeps
    whatever is there."""
    sources = sorted(glob.glob(os.path.join(PACKAGE, "**", "*.py"), recursive=True))
    h = hashlib.sha1()
    for path in sources:
        with open(path, "rb") as f:
            h.update(path[len(PACKAGE):].encode() + f.read())
    digest = h.hexdigest()
    folders = cache_dirs()
    stamp = os.path.join(folders[0], "kernels.hash")         # folders[0]: the package's own
    try:
        with open(stamp) as f:
            if f.read() == digest:
                return
    except OSError:
        pass
    try:
        for folder in folders:
            for path in glob.glob(os.path.join(folder, "*.nb[ic]")):
                os.remove(path)
        os.makedirs(os.path.dirname(stamp), exist_ok=True)
        with open(stamp, "w") as f:
            f.write(digest)
    except OSError:
        pass


if JIT_OPTIONS["cache"]:
    drop_stale_cache()
