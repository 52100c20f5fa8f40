"""What every benchmark report starts and ends with: the machine it ran on, and its JSON; and
the per-call timing loop they share."""
import json
import os
import platform
import time

import numpy as np


def machine():
    """The machine and the versions of what the figures depend on."""
    import numba
    import numpy as np

    import edgernn
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "edgernn": edgernn.__version__}
    for name in ("onnxruntime", "ai_edge_litert"):
        try:
            info[name] = getattr(__import__(name), "__version__", "installed")
        except ImportError:
            info[name] = None
    return info


def write_json(report, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
    print(f"\nwrote {path}")


def timed(fn, items, warm=200, before=None):
    """Per-call times (seconds) of fn(item) over items, after `warm` untimed calls (on the
    first items); ``before()``, when given, runs untimed before each timed call."""
    for f in items[:warm]:
        fn(f)
    out = np.empty(len(items))
    clock = time.perf_counter_ns
    for k, f in enumerate(items):
        if before is not None:
            before()
        t = clock()
        fn(f)
        out[k] = clock() - t
    return out * 1e-9


def jit_uncached(fn, **overrides):
    """``fn`` compiled with edgernn's Numba options (and ``overrides``) but without its cache:
    Numba keys a cached function on its own file only, so a cached benchmark loop would keep
    the kernels it was compiled with after they change (edgernn's own cache is dropped when
    its sources change; a benchmark's is not)."""
    import numba

    from edgernn.config import JIT_OPTIONS
    return numba.njit(**{**JIT_OPTIONS, **overrides, "cache": False})(fn)
