"""Arena memory: the plan's large arenas on transparent huge pages where Linux offers them.

Why (``python -m benchmarks.process_spread``, docs/performance.md "Huge pages"): a weight set
that nearly fills the L2 cache, on 4 KiB pages, lands on whatever physical pages the process
gets; when several of them map to the same cache sets, the sets overflow and the step is
slower for the life of the process. Which pages a process gets is luck, so the same model ran
at two speeds from one process to the next (LSTM 2x128: 8.3-8.6 µs in some processes,
10.9-11.2 in most). A 2 MiB huge page is physically contiguous, so the arena's cache sets
follow from its addresses alone, the same in every process.

:func:`zeroed` returns a zeroed numpy array. It is an anonymous private mapping aligned to the
huge page size with ``madvise(MADV_HUGEPAGE)`` when all of these hold:

- the system has transparent huge pages in ``always`` or ``madvise`` mode
  (``/sys/kernel/mm/transparent_hugepage``) and Python's mmap has ``MADV_HUGEPAGE`` (Linux);
- the array is at least 1 / HUGE_PAGE_SHARE of a huge page (a smaller one is rounded up to a
  whole huge page, which would waste memory for nothing: a small arena sits in cache anyway).
  With 4 KiB base pages a huge page is 2 MiB; a kernel with 16 KiB pages (Raspberry Pi 5's
  default) has 32 MiB ones, which only arenas of 4 MiB and more get;
- ``EDGERNN_HUGE_PAGES`` is not ``0`` (``1`` asks for huge pages for any size, ``auto``, the
  default, applies the rule above).

Otherwise it is zeroed heap memory. Either way the array starts on an :data:`ALIGN`-byte
boundary (a cache line, and one 512-bit vector), and the caller sees a C-contiguous writable
array; the mapping lives as long as the array (its base). numpy's allocator aligns to 16 bytes
only, so a heap arena's vectors straddled cache lines in some processes and not in others: the
tiny GRU loaded from ONNX stepped in 0.79-0.83 µs in most processes and 0.71 in one of eight,
while from a mapped ``.ernn`` (its tensors on 64-byte boundaries) it took 0.70-0.73 in all
(``python -m benchmarks.process_spread --all``; docs/performance.md, "Arenas on a cache
line"). The kernel may still back the range with small pages (no free huge page at the first
touch); :func:`huge_page_bytes_of` tells how much of an array's mapping is on huge pages, from
``/proc/self/smaps``.
"""
import mmap
import os
from functools import lru_cache

import numpy as np

HUGE_PAGE_SHARE = 8
#: bytes: where every arena starts, and the alignment of every tensor in the constant arena
#: and in an .ernn file's data
ALIGN = 64
THP = "/sys/kernel/mm/transparent_hugepage"


@lru_cache(maxsize=1)
def huge_page_size():
    """The transparent huge page size in bytes, or 0 when huge pages cannot be asked for."""
    if not hasattr(mmap, "MADV_HUGEPAGE"):
        return 0
    try:
        with open(f"{THP}/enabled") as f:
            mode = f.read()
        with open(f"{THP}/hpage_pmd_size") as f:
            size = int(f.read().strip())
    except (OSError, ValueError):
        return 0
    if "[never]" in mode or size <= 0 or size & (size - 1):
        return 0
    return size


def wants_huge_pages(nbytes):
    """Whether an arena of ``nbytes`` goes on huge pages (module docstring)."""
    policy = os.environ.get("EDGERNN_HUGE_PAGES", "auto").strip().lower()
    size = huge_page_size()
    if policy in ("0", "off", "no", "false") or not size or nbytes <= 0:
        return False
    return policy in ("1", "on", "yes", "true") or nbytes * HUGE_PAGE_SHARE >= size


def aligned_bytes(nbytes, zero=True):
    """A 1-D uint8 array of ``nbytes`` (zeroed, or uninitialised when not ``zero``) on the heap,
    starting on an ALIGN-byte boundary."""
    raw = (np.zeros if zero else np.empty)(nbytes + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start:start + nbytes]


def zeroed(shape, dtype):
    """A zeroed C-contiguous array of ``shape`` and ``dtype`` starting on an ALIGN-byte
    boundary: on huge pages when :func:`wants_huge_pages` says so, else on the heap."""
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if not wants_huge_pages(nbytes):
        return aligned_bytes(nbytes).view(dtype).reshape(shape)
    page = huge_page_size()
    length = -(-nbytes // page) * page
    try:
        region = mmap.mmap(-1, length + page, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except (OSError, ValueError, OverflowError):
        return aligned_bytes(nbytes).view(dtype).reshape(shape)
    raw = np.frombuffer(region, np.uint8)
    start = -raw.ctypes.data % page                  # the first huge-page boundary inside the mapping
    try:
        region.madvise(mmap.MADV_HUGEPAGE, start, length)
    except OSError:                                  # refused (e.g. a seccomp filter): small pages
        pass
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def huge_page_bytes_of(array):
    """Bytes of the mapping that holds ``array``'s first byte that the kernel backs with huge
    pages (``AnonHugePages`` in /proc/self/smaps), and whether it was advised (VmFlags ``hg``);
    (0, False) where /proc is not there."""
    address = np.asarray(array).ctypes.data
    try:
        with open("/proc/self/smaps") as f:
            lines = f.read().splitlines()
    except OSError:
        return 0, False
    inside, huge, advised = False, 0, False
    for line in lines:
        head = line.split(None, 1)[0] if line else ""
        if "-" in head and not head.endswith(":"):
            if inside:
                break
            lo, hi = (int(v, 16) for v in head.split("-"))
            inside = lo <= address < hi
        elif inside and head == "AnonHugePages:":
            huge = int(line.split()[1]) * 1024
        elif inside and head == "VmFlags:":
            advised = "hg" in line.split()[1:]
    return huge, advised
