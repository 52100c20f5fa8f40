"""What a case is (a Mutant, and the Context its files go to) and what every format's
mutators share: Skip, pick, forged floats, and 1 to 3 mutations stacked on one model."""
import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FLOAT_FORGED = [0.0, -1.0, 1e-30, 1e30, float("nan"), float("inf"), -float("inf")]


class Skip(Exception):
    """A mutator that does not apply to this model (the generator draws again)."""


def pick(rng, options):
    return options[int(rng.integers(len(options)))]


@dataclass
class Mutant:                                   # (states: set by Generator.make, for Generator.singles)
    fmt: str
    seed: str              # seed file name
    family: str
    what: str              # the mutations, for a human
    data: bytes
    name: str              # file name in the case directory
    files: dict = field(default_factory=dict)       # extra files by path relative to the case dir
    links: dict = field(default_factory=dict)       # symlinks in the case dir: name -> target
    cwd_files: dict = field(default_factory=dict)   # files in the worker's working directory
    via: str = "path"                               # load(path) or load(bytes)
    must_refuse: bool = False                       # loading it means reading outside its dir


class Context:
    """Where the case files go: ``case/`` (the model's directory), ``outside.bin`` (a file next
    to it, outside it) and the worker's working directory."""

    def __init__(self, root):
        self.root = Path(root)
        self.case = self.root / "case"
        self.cwd = self.root / "cwd"
        self.outside = self.root / "outside.bin"


def _weighted(mutators):
    """[(mutator, weight)] -> (the mutators, the probability of drawing each)."""
    fns, weights = zip(*mutators)
    return fns, np.array(weights, float) / sum(weights)


def stacked_mutations(m, rng, mutators, states=None):
    """Apply 1 to 3 mutators drawn by weight to ``m``; ``states`` (a list) receives the
    generator's state before each draw, so that one of them can be replayed alone
    (:func:`replay_one`). Returns their descriptions."""
    fns, p = _weighted(mutators)
    whats = []
    for _ in range(pick(rng, [1, 1, 1, 2, 3])):
        if states is not None:
            states.append(copy.deepcopy(rng.bit_generator.state))
        whats.append(fns[int(rng.choice(len(fns), p=p))](m, rng))
    return whats


def replay_one(m, state, mutators):
    """The mutation drawn from generator ``state`` (see :func:`stacked_mutations`), alone."""
    rng = np.random.default_rng()
    rng.bit_generator.state = copy.deepcopy(state)
    fns, p = _weighted(mutators)
    return fns[int(rng.choice(len(fns), p=p))](m, rng)
