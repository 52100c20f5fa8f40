"""Byte mutations of a seed file (ONNX, TFLite): truncation, bit flips, forged fields, runs
deleted, duplicated or zeroed. The .ernn byte mutations are tests/test_ernn_fuzz.py's."""
import struct

import numpy as np

from .mutants import pick


def mutate_onnx_bytes(seed, rng):
    b = bytearray(seed.data)
    kind = int(rng.integers(6))
    where = seed.structure if rng.random() < 0.7 else np.arange(len(b))
    if kind == 0:
        n = int(rng.integers(len(b)))
        return bytes(b[:n]), f"truncated to {n} of {len(b)} bytes"
    if kind == 1:
        pos = [int(where[rng.integers(len(where))]) for _ in range(int(rng.integers(1, 9)))]
        for p in pos:
            b[p] ^= 1 << int(rng.integers(8))
        return bytes(b), f"bit flips at {pos}"
    if kind == 2:
        pos = [int(where[rng.integers(len(where))]) for _ in range(int(rng.integers(1, 5)))]
        for p in pos:
            b[p] = int(rng.integers(256))
        return bytes(b), f"random bytes at {pos}"
    p = int(where[rng.integers(len(where))])
    if kind == 3:
        forged = pick(rng, [b"\xff" * 9 + b"\x01", b"\x80" * 10, b"\xff\xff\xff\xff\x0f", b"\x00", b"\x7f"])
        b[p:p + len(forged)] = forged
        return bytes(b), f"forged varint {forged.hex()} at {p}"
    n = int(rng.integers(1, 65))
    if kind == 4:
        del b[p:p + n]
        return bytes(b), f"deleted {n} bytes at {p}"
    b[p:p] = b[p:p + n]
    return bytes(b), f"duplicated {n} bytes at {p}"


FORGED_U32 = [0, 1, 4, 8, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFF, 0x10000]


def mutate_tflite_bytes(seed, rng):
    b = bytearray(seed.data)
    kind = int(rng.integers(5))
    if kind == 0:
        n = int(rng.integers(len(b)))
        return bytes(b[:n]), f"truncated to {n} of {len(b)} bytes"
    if kind == 1:
        pos = [int(rng.integers(len(b))) for _ in range(int(rng.integers(1, 9)))]
        for p in pos:
            b[p] ^= 1 << int(rng.integers(8))
        return bytes(b), f"bit flips at {pos}"
    if kind == 2:
        # a 32-bit field (offset, count, index) forged
        p = int(rng.integers(len(b) // 4)) * 4
        v = pick(rng, FORGED_U32 + [len(b), len(b) - p, len(b) + 4, int(rng.integers(64))])
        b[p:p + 4] = struct.pack("<I", v & 0xFFFFFFFF)
        return bytes(b), f"u32 at {p} = {v:#x}"
    p = int(rng.integers(len(b)))
    n = int(rng.integers(1, 65))
    if kind == 3:
        b[p:p + n] = bytes(len(b[p:p + n]))
        return bytes(b), f"{n} bytes zeroed at {p}"
    del b[p:p + n]
    return bytes(b), f"deleted {n} bytes at {p}"
