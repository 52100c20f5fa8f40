"""Mutated ONNX files: every load ends in a typed edgernn error or a model that steps.

The seeds (tests/fuzzing/seeds.py: ONNX_SEEDS) are real exports: LSTM, GRU and RNN,
TorchScript and dynamo exporters, with and without state inputs, linear and LayerNorm+ReLU
heads, and the keyword-spotting example. Each case mutates one of them with a seeded generator
(``fuzzing.case_rng``), in one of three families:
- bytes: truncation, bit flips and random bytes (mostly outside the tensors' raw data),
  forged varints, deleted or duplicated runs;
- structure (the onnx package's protobuf objects, then serialised): dims (0, -1, huge,
  symbolic, removed, rank changed), element and data types, attribute values and types
  (ints <-> strings, huge or negative ints, NaN, removed, duplicated, type field forged),
  node inputs dropped, rewired or dangling, duplicate names, nodes removed, duplicated,
  reordered or given another op or domain, graph inputs/outputs/initializers removed or
  added, opset versions 0/1/999/..., initializer data cut, extended or forged;
- external data: one initializer moved to an external file beside the model (must load), or
  at a location outside the model's directory (``../``, absolute, ``/etc/passwd``, a
  symlink out, a model given as bytes), missing, a directory, or with forged offset/length:
  edgernn must refuse or raise a typed error, and never read outside the model's directory.

Every mutant is loaded and stepped in a persistent bounds-checked worker (NUMBA_BOUNDSCHECK=1,
a private Numba cache); a worker that dies or hangs fails its case. See tests/fuzzing/__init__.py
for the contract, and ``python benchmarks/fuzz.py`` for long campaigns.
"""
import pytest

pytest.importorskip("onnx")

import fuzzing  # noqa: E402


def test_worker_is_bounds_checked():
    """An index past the end raises IndexError in the worker, both in a function compiled with
    edgernn's jit options and in the engine (run on a work arena cut to a quarter)."""
    r = fuzzing.selftest("onnx")
    assert r.get("kind") == "ran", r
    assert r["boundscheck"] == 1 and r["cache_dir"] == str(fuzzing.session().cache), r
    assert r["jit"]["kind"] == "IndexError", r
    if r["engine"]["kind"] == "unavailable":
        pytest.skip(f"the engine's run_frames interface changed: {r['engine']['message']}")
    assert r["engine"]["kind"] == "IndexError", r


def test_a_dying_or_hanging_worker_fails_its_case_and_is_replaced():
    """What a mutant that kills or hangs the worker is recorded as (the harness's own test)."""
    w = fuzzing.session().worker
    r = w.call({"op": "die", "id": "die", "signal": "SIGSEGV"})
    assert r["kind"] == "crash" and r["type"] == "SIGSEGV" and "Segmentation fault" in r["stderr"], r
    r = w.call({"op": "sleep", "id": "sleep", "seconds": 60}, timeout=2)
    assert r["kind"] == "hang" and "_handle_sleep" in r["stderr"], r
    assert fuzzing.selftest("onnx")["kind"] == "ran"          # a new worker took over


def test_seeds_step_like_onnxruntime():
    """The harness steps correctly: each unmutated seed, one step per frame in the checked
    worker, equals onnxruntime on the same frames (and the exporter's recorded outputs)."""
    pytest.importorskip("onnxruntime")
    rows = fuzzing.check_seeds("onnx")
    for r in rows:
        assert r["ok"] and r["err_recorded"] <= 1e-5, r


@pytest.mark.parametrize("family", sorted(fuzzing.FAMILIES["onnx"]))
def test_mutated_onnx_files(family):
    fuzzing.check_family("onnx", family)
