"""Mutant number i of a campaign (format, seed), made deterministically: its family drawn,
then its mutations, from ``numpy.random.default_rng([FORMAT_KEY[format], seed, i])``."""
import struct

import numpy as np

from .byte_mutations import mutate_onnx_bytes, mutate_tflite_bytes
from .ernn_mutations import ErnnSeeds
from .escapes import mutate_onnx_external
from .mutants import Mutant, Skip, replay_one
from .onnx_mutations import ONNX_MUTATORS, OnnxSeed, mutate_onnx_structure
from .seeds import ONNX_SEEDS, TFLITE_SEEDS
from .tflite_mutations import TfliteSeed, mutate_tflite_schema, pack_tflite, tflite_mutators

FORMAT_KEY = {"onnx": 1, "tflite": 2, "ernn": 3}
#: the mutation families of each format and their shares of its cases
FAMILIES = {"onnx": {"bytes": 0.35, "structure": 0.5, "external": 0.15},
            "tflite": {"bytes": 0.35, "schema": 0.65},
            "ernn": {"bytes": 0.6, "program": 0.4}}
BUILD_ERRORS = (Skip, ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError, struct.error)


def case_rng(fmt, seed, i):
    return np.random.default_rng([FORMAT_KEY[fmt], int(seed), int(i)])


class Generator:
    """Makes mutant number i of a campaign (format, seed), deterministically."""

    def __init__(self, fmt, ctx):
        self.fmt, self.ctx = fmt, ctx
        if fmt == "onnx":
            self.seeds = [OnnxSeed(s) for s in ONNX_SEEDS]
        elif fmt == "tflite":
            self.seeds = [TfliteSeed(s) for s in TFLITE_SEEDS]
        elif fmt == "ernn":
            self.seeds = ErnnSeeds(ctx)
        else:
            raise ValueError(f"unknown format {fmt!r}")

    def families(self, only=None):
        fam = FAMILIES[self.fmt]
        names = [f for f in fam if only is None or f in only]
        if not names:
            raise ValueError(f"no mutation family of {self.fmt} among {only}")
        p = np.array([fam[f] for f in names])
        return names, p / p.sum()

    def make(self, seed, i, only=None):
        rng = case_rng(self.fmt, seed, i)
        names, p = self.families(only)
        family = names[int(rng.choice(len(names), p=p))]
        if self.fmt == "ernn":
            return self.seeds.make(i, family, rng)
        src = self.seeds[i % len(self.seeds)]
        name = "model.onnx" if self.fmt == "onnx" else "model.tflite"
        for attempt in range(50):
            states = []
            try:
                extra = {}
                if family == "bytes":
                    data, what = (mutate_onnx_bytes if self.fmt == "onnx" else mutate_tflite_bytes)(src, rng)
                elif family == "structure":
                    data, what = mutate_onnx_structure(src, rng, states)
                elif family == "external":
                    data, what, extra = mutate_onnx_external(src, rng, self.ctx)
                else:
                    data, what = mutate_tflite_schema(src, rng, states)
            except BUILD_ERRORS:
                continue            # a mutation the format's own writer refuses: draw again
            mut = Mutant(self.fmt, src.seed.name, family, what, data, name, **extra)
            mut.states = states
            return mut
        raise RuntimeError(f"{self.fmt} case {i}: no buildable mutant in 50 draws")

    def singles(self, mut):
        """Each mutation of a stacked mutant (structure, schema) applied alone to its seed:
        [(description, Mutant)], empty when it has only one."""
        states = getattr(mut, "states", [])
        if len(states) < 2:
            return []
        src = next(s for s in self.seeds if s.seed.name == mut.seed)
        mutators = ONNX_MUTATORS if self.fmt == "onnx" else tflite_mutators(src)
        out = []
        for state in states:
            m = src.copy()
            try:
                what = replay_one(m, state, mutators)
                data = m.SerializeToString() if self.fmt == "onnx" else pack_tflite(m)
            except BUILD_ERRORS:
                continue
            out.append((what, Mutant(self.fmt, mut.seed, mut.family, what, data, mut.name)))
        return out
