"""Mutated TFLite files: every load ends in a typed edgernn error or a model that steps.

The seeds (tests/fuzzing/seeds.py: TFLITE_SEEDS): Keras 3 WHILE loops (LSTM, GRU, a GRU+LSTM
stack), tf_keras' fused UNIDIRECTIONAL_SEQUENCE_LSTM, and its dynamic-range int8 form. Each
case mutates one of them with a seeded generator, in one of two families:
- bytes: truncation, bit flips, forged 32-bit fields (offsets, counts, indices), zeroed or
  deleted runs;
- schema (the flatbuffer object API of the schema ai-edge-litert ships, then packed again):
  tensor shapes and shape signatures (huge, negative, zero, wrong rank), types, buffer
  indices, buffer data (truncated, removed, extended, moved to a forged offset), operator
  opcode indices, operator and subgraph input/output indices (-1, out of range, dropped,
  repeated), WHILE cond/body indices (the loop's own subgraph, the main graph, out of range,
  swapped), a WHILE body that runs a WHILE over itself, builtin options (fields forged,
  removed, of the wrong type), operator codes, quantisation parameters, operators and
  subgraphs removed, duplicated or reordered, signature indices.

Every mutant is loaded and stepped in a persistent bounds-checked worker; see
tests/fuzzing/__init__.py for the contract and tests/test_onnx_fuzz.py for the ONNX side.
"""
import pytest

pytest.importorskip("ai_edge_litert")

import fuzzing  # noqa: E402


def test_worker_is_bounds_checked():
    r = fuzzing.selftest("tflite")
    assert r.get("kind") == "ran", r
    assert r["boundscheck"] == 1 and r["jit"]["kind"] == "IndexError", r
    if r["engine"]["kind"] == "unavailable":
        pytest.skip(f"the engine's run_frames interface changed: {r['engine']['message']}")
    assert r["engine"]["kind"] == "IndexError", r


def test_seeds_step_like_litert():
    """Each unmutated seed, one step per frame in the checked worker, equals LiteRT on the
    whole sequence (float files 1e-5; the dynamic-range file within LiteRT's on-the-fly
    quantisation of x and h, see fuzzing.runtime_tolerance)."""
    rows = fuzzing.check_seeds("tflite")
    for r in rows:
        assert r["ok"], r


@pytest.mark.parametrize("family", sorted(fuzzing.FAMILIES["tflite"]))
def test_mutated_tflite_files(family):
    fuzzing.check_family("tflite", family)
