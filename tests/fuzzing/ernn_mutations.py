""".ernn mutants, for the campaigns of benchmarks/fuzz.py."""
import sys
from pathlib import Path

from .mutants import Mutant
from .seeds import ERNN_SOURCES, ONNX_DIR, TESTS


class ErnnSeeds:
    """.ernn files converted from the ONNX sources of tests/test_ernn_fuzz.py, mutated with its
    own mutators (imported, not copied): bytes (checksums stale or fixed, forged u64 fields)
    and the JSON program."""

    def __init__(self, ctx):
        sys.path.insert(0, str(TESTS))
        import test_ernn_fuzz as tef

        import edgernn
        from edgernn.convert import convert
        from edgernn.formats import ernn
        self.tef, self.ernn = tef, ernn
        d = Path(ctx.root) / "ernn-seeds"
        d.mkdir(parents=True, exist_ok=True)
        self.blobs, self.graphs, self.names = [], [], []
        for name, weights in ERNN_SOURCES:
            p = d / f"{name}.{weights}.ernn"
            convert(ONNX_DIR / name, p, weights=weights)
            self.blobs.append(p.read_bytes())
            self.graphs.append(edgernn.load(ONNX_DIR / name, weights="int8" if weights == "int8" else "float32").graph)
            self.names.append(p.name)
        self.scratch = d / "program.ernn"

    def make(self, i, family, rng):
        k = i % len(self.blobs)
        if family == "bytes":
            data, what = self.tef.mutate_bytes(self.blobs[k], rng)
            return Mutant("ernn", self.names[k], family, what, data, "model.ernn")
        real = self.ernn.graph_to_doc
        from edgernn.errors import EdgeRNNError
        for attempt in range(50):
            seen = []

            def forged(g, tn):
                doc = real(g, tn)
                out = self.tef.mutate_program(doc, rng)
                seen.append(_doc_diff(doc, out))
                return out
            self.ernn.graph_to_doc = forged
            try:
                self.ernn.write_ernn(self.scratch, self.graphs[k], {"general.name": "mutant"})
            except EdgeRNNError:
                continue
            finally:
                self.ernn.graph_to_doc = real
            return Mutant("ernn", self.names[k], family, "program: " + "; ".join(seen), self.scratch.read_bytes(),
                          "model.ernn")
        raise RuntimeError(f"ernn case {i}: no writable program mutant in 50 draws")


def _doc_diff(a, b, path=""):
    """A short description of where two JSON documents differ."""
    if type(a) is not type(b) or not isinstance(a, (dict, list)):
        return f"{path or '/'}: {str(a)[:40]} -> {str(b)[:40]}" if a != b else ""
    if isinstance(a, dict):
        keys = sorted(set(a) | set(b), key=str)
        diffs = [_doc_diff(a.get(k), b.get(k), f"{path}/{k}") for k in keys]
    else:
        if len(a) != len(b):
            return f"{path or '/'}: list of {len(a)} -> {len(b)}"
        diffs = [_doc_diff(x, y, f"{path}/{j}") for j, (x, y) in enumerate(zip(a, b))]
    return ", ".join(d for d in diffs if d)[:300]
