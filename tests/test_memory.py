"""edgernn.memory: large arenas on transparent huge pages, the rest plain, outputs unchanged."""
import mmap

import numpy as np
import pytest

import edgernn
from edgernn import memory
from exporters.synthetic import named_model

HUGE = memory.huge_page_size()
needs_thp = pytest.mark.skipif(not HUGE, reason="this system has no transparent huge pages to ask for "
                                                "(/sys/kernel/mm/transparent_hugepage)")


@pytest.mark.parametrize("policy", ["0", "1", "auto"])
@pytest.mark.parametrize("shape,dtype", [((3,), np.uint8), ((5, 700_001), np.float32), ((2, 3, 4), np.int8)])
def test_zeroed_is_a_zeroed_writable_c_array(monkeypatch, policy, shape, dtype):
    monkeypatch.setenv("EDGERNN_HUGE_PAGES", policy)
    a = memory.zeroed(shape, dtype)
    assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
    assert a.ctypes.data % memory.ALIGN == 0
    assert not a.any()
    a[...] = 7
    assert (a == 7).all()


@needs_thp
def test_a_large_arena_is_advised_and_aligned(monkeypatch):
    monkeypatch.setenv("EDGERNN_HUGE_PAGES", "auto")
    a = memory.zeroed(HUGE // 2, np.uint8)
    a[:] = 1                                            # touch it, so the kernel backs it
    assert a.ctypes.data % HUGE == 0
    huge, advised = memory.huge_page_bytes_of(a)
    assert advised                                      # VmFlags 'hg': madvise(MADV_HUGEPAGE) took
    assert huge in (0, HUGE)                            # granted when a free huge page was there


def _mapped(a):
    """Whether array ``a`` views edgernn's own anonymous mapping (not the heap)."""
    root = a
    while isinstance(root, np.ndarray) and root.base is not None:
        root = root.base
    return isinstance(root, memoryview) and isinstance(root.obj, mmap.mmap)


@needs_thp
def test_small_arenas_and_the_off_switch_stay_plain(monkeypatch):
    monkeypatch.setenv("EDGERNN_HUGE_PAGES", "auto")
    assert not _mapped(memory.zeroed(HUGE // (2 * memory.HUGE_PAGE_SHARE), np.uint8))
    monkeypatch.setenv("EDGERNN_HUGE_PAGES", "0")
    assert not _mapped(memory.zeroed(HUGE, np.uint8))


def test_arenas_start_on_a_cache_line(monkeypatch):
    """numpy's allocator aligns to 16 bytes: a small model's weights and work arena started
    on a cache line in some processes and not in others (the tiny GRU stepped 10 % slower in
    most). Every arena, on the heap or on huge pages, starts on an ALIGN-byte boundary, and so
    does each tensor of the constant arena (the plan places them ALIGN bytes apart)."""
    for policy in ("0", "auto"):
        monkeypatch.setenv("EDGERNN_HUGE_PAGES", policy)
        assert all(memory.zeroed(n, np.float32).ctypes.data % memory.ALIGN == 0 for n in range(1, 200, 7))
        for name in ("gru1x37", "lstm2x128"):
            m = edgernn.load(named_model(name).SerializeToString())
            s = m.stream()
            p = m.plan.link()
            for a in (p.consts, p.qconsts, s.step.native_call[2][4]):
                assert a.ctypes.data % memory.ALIGN == 0, (policy, name)


@needs_thp
def test_a_models_weights_go_on_huge_pages_with_the_same_outputs(monkeypatch):
    """LSTM 2x128's constant arena (about 1 MB, half a 2 MiB page) is advised; its outputs over
    a chunk and over single steps are bit-identical to the same model on plain pages."""
    source = named_model("lstm2x128").SerializeToString()
    x = np.random.default_rng(0).standard_normal((30,) + edgernn.load(source).inputs[0].frame_shape)
    x = x.astype(np.float32)
    results = {}
    for policy in ("0", "auto"):
        monkeypatch.setenv("EDGERNN_HUGE_PAGES", policy)
        m = edgernn.load(source)
        mapped = _mapped(m.plan.arena.buffer)
        assert mapped == (policy == "auto" and m.plan.consts.nbytes * memory.HUGE_PAGE_SHARE >= HUGE)
        assert not mapped or memory.huge_page_bytes_of(m.plan.consts)[1]        # and advised
        stepped = m.stream()
        results[policy] = (m.stream().run(x), np.stack([stepped.step(f) for f in x]))
    assert np.array_equal(results["0"][0], results["auto"][0])
    assert np.array_equal(results["0"][1], results["auto"][1])
