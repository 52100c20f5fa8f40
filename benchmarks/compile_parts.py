"""What a model's cold start compiles, part by part.

    python -m benchmarks.compile_parts [MODEL]

MODEL defaults to the JapaneseVowels example (examples/japanese_vowels.onnx). In this process,
with an empty Numba cache (a fresh ``NUMBA_CACHE_DIR``, set before edgernn is imported), it
loads the model and compiles, one at a time, each panel-block variant its matrices need, each
row layout's kernel, then the step's entry point (the first stream), printing the seconds of
each. The first part also pays Numba's own first-use set-up. Compare with
benchmarks/cold_start.py, which times the whole start in a fresh process.
"""
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    model = argv[0] if argv else str(ROOT / "examples" / "japanese_vowels.onnx")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["NUMBA_CACHE_DIR"] = cache
        os.environ.pop("EDGERNN_NO_CACHE", None)
        import numpy as np

        import edgernn
        from edgernn import engine
        from edgernn.ops import matvec
        from edgernn.ops.row import LAYOUTS, matvec_variant
        m = edgernn.load(model)
        print(f"{model}: rows {m.plan.row_layouts}")
        parts = []
        variants = dict.fromkeys(v[1:] for i, name in enumerate(m.plan.row_layouts)
                                 for v in matvec_variant(LAYOUTS[name], m.plan.prog[i]))
        for lanes, int8 in variants:
            parts.append((f"panel block, {lanes} lanes, {'int8' if int8 else 'float32'} weights",
                          lambda lanes=lanes, int8=int8: matvec.matvec_descriptor(lanes, int8)))
        for name in dict.fromkeys(m.plan.row_layouts):
            parts.append((f"kernel {name}", lambda name=name: engine.kernel_address(LAYOUTS[name])))
        parts.append(("the first stream (the step's entry point)",
                      lambda: m.stream().step(np.zeros(m.inputs[0].frame_shape, np.float32))))
        for what, compile_part in parts:
            t = time.perf_counter()
            compile_part()
            print(f"  {what:<48}{time.perf_counter() - t:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
