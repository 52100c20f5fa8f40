"""Format fuzzing, shared by tests/test_onnx_fuzz.py, tests/test_tflite_fuzz.py and the long
campaigns of benchmarks/fuzz.py: seeded mutants of real model files, each loaded and stepped in
a persistent, bounds-checked worker process.

The contract (tests/test_ernn_fuzz.py's, for every format): a mutated file either
- raises a typed error, a subclass of ``edgernn.EdgeRNNError``: **typed**; or
- loads, and steps: 3 frames on one stream (zeros, then random frames; the fast ``step`` and
  the general path), 3 on a batch of 2, and a 3-frame ``run`` on each: **ran** (the outputs
  may be anything, NaN included: a mutant may change the weights).
Anything else fails the test:
- **other**: any other exception, while loading or stepping: an importer's KeyError, a
  NumPy ValueError, a plain MemoryError, a RecursionError, and an IndexError raised by Numba's
  bounds check, i.e. a kernel indexing outside its arrays;
- **crash**: the worker died (a signal such as SIGSEGV, SIGABRT, or an exit);
- **hang**: no answer within the case timeout (``EDGERNN_FUZZ_TIMEOUT``, default 30 s);
- **escape**: a case read a file outside its model's directory, which ONNX external data can
  name (a relative path that climbs out, an absolute path, a symlink leading out, ``/etc/passwd``;
  for a model given as bytes, which has no directory, any relative path). The harness puts
  valid data at such places and watches them: an open seen by inotify (onnx opens external
  data in C++, out of Python's sight), an open seen by the worker's audit hook, or a model
  that loads although its data exists only there, is an escape, whatever the case's outcome.

Worker. One ``python -m fuzzing.worker`` process serves many cases over a pipe (one JSON
line per request and reply); the parent writes each mutant to a file and sends its path.
When the worker dies or hangs the parent records the case, saves the mutant under the
session's ``failures/`` directory and starts a new worker. Loading and stepping in a fresh
process per case would pay Python's and Numba's start-up (seconds) per case. While the
worker compiles (a mutant may need a kernel or a frame layout nothing compiled before) it
says so on the pipe, and the case timeout waits for the compilation.

Bounds-checked build. The worker runs with ``NUMBA_BOUNDSCHECK=1``, which overrides the
``boundscheck=False`` of ``edgernn.config.JIT_OPTIONS`` (Numba's context reads
``config.BOUNDSCHECK`` first), and with a private ``NUMBA_CACHE_DIR`` made per session:
Numba's cache index does not record the flag, so a checked process would otherwise load the
unchecked machine code that an ordinary run cached. ``EDGERNN_NO_CACHE`` is removed from the
worker's environment so that a restarted worker reuses the session's checked build. Integer
indexes are checked (``a[i]`` out of range raises IndexError); slices are clamped as in NumPy
and never read outside.

Determinism. Case ``i`` of format ``f`` and campaign seed ``s`` is made by
``numpy.random.default_rng([FORMAT_KEY[f], s, i])`` from seed file ``i % len(seeds)``, so a
failure reproduces alone: ``python benchmarks/fuzz.py --format f --seed s --case i``.

The package:
- seeds.py: the unmutated files (ONNX_SEEDS, TFLITE_SEEDS, ERNN_SOURCES) and the harness's paths;
- mutants.py: Mutant, Context, and what every format's mutators share;
- byte_mutations.py, onnx_mutations.py, tflite_mutations.py, ernn_mutations.py: the mutators;
- escapes.py: external data in and out of the model's directory, and how a read outside is caught;
- generators.py: FAMILIES, case_rng and the Generator that makes case i of a campaign;
- worker.py: the worker process; session.py: its handle (Worker) and the Session;
- campaign.py: run_campaign, Result (classification, groups, the report), check_family;
- seed_checks.py: the unmutated seeds against onnxruntime / LiteRT.
"""
from .campaign import CI_CASES, CI_SEED, FAILURES, KINDS, Result, case_count, check_family, run_campaign, run_case
from .generators import FAMILIES, FORMAT_KEY, Generator, case_rng
from .mutants import Context, Mutant
from .seed_checks import check_seeds, runtime_tolerance
from .seeds import ERNN_SOURCES, ONNX_SEEDS, TFLITE_SEEDS
from .session import CASE_TIMEOUT, Session, selftest, session

__all__ = ["CASE_TIMEOUT", "CI_CASES", "CI_SEED", "ERNN_SOURCES", "FAILURES", "FAMILIES", "FORMAT_KEY", "KINDS",
           "ONNX_SEEDS", "TFLITE_SEEDS", "Context", "Generator", "Mutant", "Result", "Session", "case_count",
           "case_rng", "check_family", "check_seeds", "run_campaign", "run_case", "runtime_tolerance", "selftest",
           "session"]
