"""Threaded chunks equal single-thread steps bit for bit, whatever Numba's cache holds.

Every entry point (step, run, run on threads) calls the same compiled kernel of each op by
its address (engine.py), so the same frames give the same bits whether the kernels were just
compiled or loaded from the cache. Two fresh processes share an empty NUMBA_CACHE_DIR: the
first compiles everything (cold), the second loads it (cached). Each runs a batch of streams
through ``Stream.run`` on two threads (chunks op by op, with a last partial pass) and steps
the same frames one at a time on one thread; the outputs must be identical, within each
process and between the two. The oracle for the values themselves is onnxruntime
(tests/test_ort_parity.py); here only identity is checked.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = [ROOT / "examples" / "kws_lstm.onnx", ROOT / "tests" / "fixtures" / "onnx" / "gru_l2_tf_nohead_dy.onnx"]

CHILD = r"""
import json, sys
import numpy as np
import numba
import edgernn
out = {}
for path in sys.argv[2:]:
    m = edgernn.load(path)
    B, T = 4, 131                     # 131 = one chunk of 128 frames + a partial pass of 3
    frames = np.random.default_rng(7).standard_normal((T, B) + m.inputs[0].frame_shape).astype(np.float32)
    threaded = m.stream(batch=B, threads=2)
    ran = np.asarray(threaded.run(frames))
    one = m.stream(batch=B)
    stepped = np.stack([np.asarray(one.step(f)) for f in frames])
    np.save(f"{sys.argv[1]}_{len(out)}.npy", ran)
    out[path] = {"identical": bool(np.array_equal(ran, stepped)),
                 "max_abs_diff": float(np.abs(ran - stepped).max())}
print(json.dumps(out))
"""


def _child(cache, prefix):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), NUMBA_NUM_THREADS="2")
    env.pop("EDGERNN_NO_CACHE", None)
    res = subprocess.run([sys.executable, "-c", CHILD, str(prefix), *map(str, MODELS)], env=env,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_threaded_run_equals_steps_cold_and_cached(tmp_path):
    cache = tmp_path / "numba_cache"
    cold = _child(cache, tmp_path / "cold")
    assert any(cache.rglob("*.nbc")), "the cold process wrote no cache"
    cached = _child(cache, tmp_path / "cached")
    for label, result in (("cold", cold), ("cached", cached)):
        for path, r in result.items():
            assert r["identical"], f"{label} engine, {Path(path).name}: threaded run differs from steps by {r['max_abs_diff']}"
    for k in range(len(MODELS)):
        np.testing.assert_array_equal(np.load(tmp_path / f"cold_{k}.npy"), np.load(tmp_path / f"cached_{k}.npy"))
