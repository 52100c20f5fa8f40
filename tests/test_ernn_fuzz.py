"""Mutated .ernn files: every load ends in a typed edgernn error or a model that steps.

Real files (converted from the torch fixtures) are mutated thousands of times, with a seeded
generator so a failure reproduces:
- bytes: truncation, random byte flips (checksums left stale, so the checksum must catch
  them), and flips or forged 64-bit fields (huge counts, sizes, offsets) with both
  checksums recomputed, so the structural checks must catch them;
- program: the JSON program inside an otherwise valid file, with leaves and lists changed
  (numbers forged huge, negative or off by one, op names swapped, references dropped).
A crash would kill the test process; a hang trips an alarm; a MemoryError fails the test.
"""
import copy
import json
import signal
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

import edgernn  # noqa: E402
from edgernn.convert import convert  # noqa: E402
from edgernn.errors import EdgeRNNError  # noqa: E402
from edgernn.formats import ernn  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "onnx"
SOURCES = [("lstm_l2_bf_state_lnrelu_ts.onnx", "int8"), ("gru_l1_bf_lin_dy.onnx", "float32"),
           ("rnn_tanh_l2_tf_state_lnrelu_ts.onnx", "float16")]
HEADER = ernn.HEADER
FORGED = [0, 1, 7, 63, 64, 65, 2**31 - 1, 2**31, 2**32, 2**40, 2**62, 2**63 - 1, 2**64 - 1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ernn_fuzz")
    out = []
    for name, weights in SOURCES:
        p = d / f"{name}.{weights}.ernn"
        convert(FIXTURES / name, p, weights=weights)
        out.append(p.read_bytes())
    return d, out


def fix_checksums(b):
    magic, ver, n_kv, n_t, off, size, _, _ = HEADER.unpack_from(b)
    if off > len(b) or off < HEADER.size:
        return b
    meta = zlib.crc32(b[HEADER.size:off]) & 0xFFFFFFFF
    data = zlib.crc32(b[off:]) & 0xFFFFFFFF
    return HEADER.pack(magic, ver, n_kv, n_t, off, size, meta, data) + b[HEADER.size:]


def mutate_bytes(b, rng):
    b = bytearray(b)
    kind = rng.integers(4)
    if kind == 0:
        return bytes(b[:rng.integers(len(b))]), "truncate"
    if kind == 1:
        for _ in range(rng.integers(1, 9)):
            b[rng.integers(len(b))] ^= 1 << rng.integers(8)
        return bytes(b), "flip, stale checksums"
    data_off = HEADER.unpack_from(b)[4]
    if kind == 2:
        for _ in range(rng.integers(1, 9)):
            b[rng.integers(min(len(b), data_off + 64))] ^= 1 << rng.integers(8)
        return fix_checksums(bytes(b)), "flip in header/metadata, checksums fixed"
    pos = int(rng.integers(0, min(len(b), data_off) - 8))
    if rng.random() < 0.3:
        pos = pick(rng, [8, 16, 24, 32])          # the header's counts, offset and size
    b[pos:pos + 8] = struct.pack("<Q", pick(rng, FORGED))
    return fix_checksums(bytes(b)), f"forged u64 at {pos}"


def _paths(x, path=()):
    yield path
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _paths(v, path + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _paths(v, path + (i,))


def pick(rng, options):
    return options[rng.integers(len(options))]


def _forge(x, rng):
    if isinstance(x, bool):
        return pick(rng, [not x, 2, None])
    if isinstance(x, int):
        return pick(rng, [0, -1, 1, 2, x + 1, x - 1, 2**31, 2**40, -2**40, 10**6])
    if isinstance(x, float):
        return pick(rng, [0.0, -1.0, 1e30, float("nan"), float("inf")])
    if isinstance(x, str):
        return pick(rng, ["", "lstm", "gru", "dense", "transpose", "add", "nonexistent", x + "x"])
    if isinstance(x, list):
        y = list(x)
        k = rng.integers(4)
        if k == 0 and y:
            y.pop(rng.integers(len(y)))
        elif k == 1 and y:
            y.append(copy.deepcopy(y[rng.integers(len(y))]))
        elif k == 2:
            y.append(None)
        else:
            return {} if rng.random() < 0.5 else 5
        return y
    if isinstance(x, dict):
        y = dict(x)
        if y and rng.random() < 0.7:
            y.pop(list(y)[rng.integers(len(y))])
        else:
            y["junk"] = [1, 2]
        return y
    return pick(rng, [0, "x", [], {}])


def mutate_program(doc, rng):
    doc = copy.deepcopy(doc)
    for _ in range(rng.integers(1, 4)):
        paths = list(_paths(doc))
        path = paths[rng.integers(1, len(paths))]
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        parent[path[-1]] = _forge(parent[path[-1]], rng)
    return doc


def load_and_step(path):
    """The contract: a typed error, or a model that steps (one stream and a batch of two)."""
    signal.alarm(30)            # a hang fails loudly instead of stalling the suite
    try:
        m = edgernn.load(path)
    except EdgeRNNError:
        return "error"
    finally:
        signal.alarm(0)
    for batch in (None, 2):
        s = m.stream(batch=batch)
        frames = [np.ones(((2,) if batch else ()) + t.frame_shape, np.float32) for t in m.inputs]
        s.step(*frames)
    return "model"


def _on_alarm(*_):
    raise AssertionError("loading a mutated .ernn file hung")


def test_byte_mutations(files):
    d, blobs = files
    signal.signal(signal.SIGALRM, _on_alarm)
    rng = np.random.default_rng(2026)
    seen = {"error": 0, "model": 0}
    p = d / "mutant.ernn"
    for i in range(2000):
        blob, what = mutate_bytes(blobs[i % len(blobs)], rng)
        p.write_bytes(blob)
        try:
            seen[load_and_step(p)] += 1
        except MemoryError:
            pytest.fail(f"case {i} ({what}): MemoryError instead of a typed error")
    assert seen["error"] > 1000, seen


def test_program_mutations(files, monkeypatch):
    d, _ = files
    signal.signal(signal.SIGALRM, _on_alarm)
    rng = np.random.default_rng(7)
    seen = {"error": 0, "model": 0}
    originals = []
    for name, weights in SOURCES:
        m = edgernn.load(FIXTURES / name, weights="int8" if weights == "int8" else "float32")
        originals.append(m.graph)
    real = ernn.graph_to_doc
    p = d / "mutant.ernn"
    for i in range(1500):
        monkeypatch.setattr(ernn, "graph_to_doc", lambda g, tn: mutate_program(real(g, tn), rng))
        try:
            ernn.write_ernn(p, originals[i % len(originals)], {"general.name": "mutant"})
        except EdgeRNNError:
            continue
        finally:
            monkeypatch.setattr(ernn, "graph_to_doc", real)
        try:
            seen[load_and_step(p)] += 1
        except MemoryError:
            pytest.fail(f"program mutation {i}: MemoryError instead of a typed error")
    assert seen["error"] > 500 and seen["model"] > 50, seen


def _state_renamed(doc):
    """Fuzz escape (seed 42, case 478): a history's flush-limit state renamed (and the conv
    output's time axis forged to 5 frames, so a flush has steps): the name the history's
    timing kept and the stream's state slots disagreed, a KeyError in Stream.flush."""
    k = next(i for i, s in enumerate(doc["states"]) if s["name"].endswith("flush_limit"))
    doc["states"][k]["name"] = ""
    v = next(v for v in doc["values"] if v["name"].endswith("Conv_output_0"))
    v["shape"][2] = 5
    return doc


def _outputs_merged(doc):
    """Fuzz escape (seed 42, case 581): a GRU's Y and Y_h made one value; Y aliases Y_h, so the
    value aliased itself and Value.root() followed the cycle for ever (a hang)."""
    n = next(n for n in doc["nodes"] if len([o for o in n["outputs"] if o is not None]) >= 2)
    n["outputs"][0] = n["outputs"][1]
    return doc


CHILD = """
import sys, numpy as np, edgernn
try:
    m = edgernn.load(sys.argv[1])
except edgernn.EdgeRNNError:
    print("typed"); sys.exit(0)
s = m.stream()
for _ in range(3):
    s.step(*[np.ones(t.frame_shape, np.float32) for t in m.inputs])
s.run(*[np.ones((3,) + t.frame_shape, np.float32) for t in m.inputs])
try:
    s.flush()
except edgernn.EdgeRNNError:
    pass
print("model")
"""


@pytest.mark.parametrize("source,edit", [("strided_conv_gru_ts.onnx", _state_renamed),
                                         ("gru_l1_bf_lin_dy.onnx", _outputs_merged)])
def test_program_edits_found_by_the_fuzzer_end_typed_or_stream(tmp_path, monkeypatch, source, edit):
    """In a child process (a hang is a timeout, a crash a signal): typed error, or steps and a flush."""
    import subprocess
    import sys
    graph = edgernn.load(FIXTURES / source).graph
    real = ernn.graph_to_doc
    monkeypatch.setattr(ernn, "graph_to_doc", lambda g, tn: edit(real(g, tn)))
    p = tmp_path / "edited.ernn"
    ernn.write_ernn(p, graph, {"general.name": "edited"})
    monkeypatch.setattr(ernn, "graph_to_doc", real)
    r = subprocess.run([sys.executable, "-c", CHILD, str(p)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split()[-1] in ("typed", "model"), r.stderr[-2000:]
