"""Numba compilation options: the one place they are set.

`cache=True` writes compiled code to a cache folder so a second process starts without
recompiling: ``NUMBA_CACHE_DIR`` when it is set, else a per-user folder,
``$XDG_CACHE_HOME/edgernn/numba`` (``~/.cache/edgernn/numba``; :func:`cache_root`), never
inside the installed package (a read-only install works, and ``pip uninstall`` leaves nothing
in site-packages). When that folder cannot be written, Numba's own choice applies (the
package's ``__pycache__``, or Numba's per-user folder). docs/compile-cache.md describes it.
Numba keys a cached function on its own file only, so the engine (engine.py) would keep
running stale kernels after an edit of ops/*.py: :func:`drop_stale_cache` removes edgernn's
cached code whenever the kernel sources change. `boundscheck` stays off: every buffer range is validated when a
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
import tempfile

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


def numba_target():
    """(LLVM core name, feature list) Numba compiles for: ``NUMBA_CPU_NAME`` and
    ``NUMBA_CPU_FEATURES``, else the host's core and its features as Numba takes them
    (``NUMBA_ENABLE_AVX=0`` turns AVX off), as numba.core.codegen decides. The kernels that
    pick instructions by the core (ops.matvec's row block, ops.matvec_dot) ask here."""
    import numba
    from llvmlite import binding
    from numba.core.codegen import get_host_cpu_features
    cpu = numba.config.CPU_NAME or binding.get_host_cpu_name()
    features = numba.config.CPU_FEATURES if numba.config.CPU_FEATURES is not None else get_host_cpu_features()
    return cpu, features.split(",")


def user_cache_root():
    """edgernn's default cache folder: ``$XDG_CACHE_HOME/edgernn/numba``, or
    ``~/.cache/edgernn/numba`` (on Windows ``%LOCALAPPDATA%\\edgernn\\numba``)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not base and os.name == "nt":
        base = os.environ.get("LOCALAPPDATA", "")
    if not base:
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "edgernn", "numba")


def _writable(folder):
    try:
        os.makedirs(folder, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return True
    except OSError:
        return False


_ROOT = []


def cache_root():
    """The folder that holds edgernn's compiled code: ``NUMBA_CACHE_DIR`` (Numba's setting,
    which takes precedence), else :func:`user_cache_root` when it can be written, else None
    (Numba's fallback: each source folder's ``__pycache__``)."""
    import numba
    if numba.config.CACHE_DIR:
        return os.path.abspath(numba.config.CACHE_DIR)
    if not _ROOT:
        _ROOT.append(user_cache_root() if _writable(user_cache_root()) else None)
    return _ROOT[0]


def source_folders():
    return sorted({os.path.dirname(p) for p in glob.glob(os.path.join(PACKAGE, "**", "*.py"), recursive=True)})


def cache_dirs(root=False):
    """The folders Numba caches edgernn's compiled code in: under :func:`cache_root`, Numba's
    folder for each source folder (``<folder name>_<sha1 of its absolute path>``, as
    numba.core.caching names it), or each source folder's __pycache__ when there is no root.
    ``root``: return (root, folders)."""
    base = cache_root()
    if base is None:
        folders = [os.path.join(f, "__pycache__") for f in source_folders()]
    else:
        folders = [os.path.join(base, f"{os.path.basename(f)}_{hashlib.sha1(f.encode()).hexdigest()}")
                   for f in source_folders()]
    return (base, folders) if root else folders


def _install_cache_locator():
    """Make Numba cache edgernn's functions (and only those) under :func:`user_cache_root`
    unless ``NUMBA_CACHE_DIR`` is set: a locator placed right after Numba's own for
    ``NUMBA_CACHE_DIR``, consulted when each function with ``cache=True`` is made (so this
    runs before any is). Falls back to Numba's locators when the folder cannot be written.
    Best effort: a Numba without this machinery keeps its default (``__pycache__``)."""
    try:
        from numba.core import caching
        classes = caching.CacheImpl._locator_classes
        mixin, base = caching._SourceFileBackedLocatorMixin, caching._CacheLocator
    except (ImportError, AttributeError):
        return
    if any(getattr(c, "__name__", "") == "EdgeRNNCacheLocator" for c in classes):
        return

    class EdgeRNNCacheLocator(mixin, base):
        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = os.path.join(cache_root(), self.get_suitable_cache_subpath(py_file))

        def get_cache_path(self):
            return self._cache_path

        @classmethod
        def from_function(cls, py_func, py_file):
            import numba
            if numba.config.CACHE_DIR or cache_root() is None:
                return None
            if not os.path.abspath(py_file).startswith(PACKAGE + os.sep):
                return None
            return super().from_function(py_func, py_file)

    classes.insert(1 if classes and classes[0] is caching.UserProvidedCacheLocator else 0, EdgeRNNCacheLocator)


#: what :func:`drop_stale_cache` found: "off" (EDGERNN_NO_CACHE=1), "new" (no stamp: nothing
#: cached yet), "stale" (the sources changed: the cached code was removed) or "current"
CACHE_STATUS = "off"


def sources_digest():
    """A hash of edgernn's sources (paths and bytes): the stamp of the cached code."""
    sources = sorted(glob.glob(os.path.join(PACKAGE, "**", "*.py"), recursive=True))
    h = hashlib.sha1()
    for path in sources:
        with open(path, "rb") as f:
            h.update(path[len(PACKAGE):].encode() + f.read())
    return h.hexdigest()


def drop_stale_cache():
    """Delete edgernn's Numba cache files when any of its sources changed since they were
    written (stamp: a hash of the sources in the package's cache folder, kernels.hash). Numba
    keys a cached function on its own file only, so a kernel that calls a changed helper in
    another file would otherwise keep its stale code. Sets :data:`CACHE_STATUS`. Best effort:
    a read-only cache keeps whatever is there."""
    global CACHE_STATUS
    digest = sources_digest()
    folders = cache_dirs()
    stamp = os.path.join(folders[0], "kernels.hash")         # folders[0]: the package's own
    CACHE_STATUS = "new"
    try:
        with open(stamp) as f:
            if f.read() == digest:
                CACHE_STATUS = "current"
                return
        CACHE_STATUS = "stale"
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
    _install_cache_locator()
    drop_stale_cache()
