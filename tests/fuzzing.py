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

Worker. One ``python tests/fuzzing.py --worker`` process serves many cases over a pipe (one
JSON line per request and reply); the parent writes each mutant to a file and sends its path.
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
"""
import atexit
import copy
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TESTS = Path(os.path.abspath(__file__)).parent
REPO = TESTS.parent
HARNESS = Path(os.path.abspath(__file__))
ONNX_DIR = TESTS / "fixtures" / "onnx"
TFLITE_DIR = TESTS / "fixtures" / "tflite"
EXAMPLES = REPO / "examples"

#: cases per format in the test suite (tests/test_*_fuzz.py); EDGERNN_FUZZ_CASES=N overrides
CI_CASES = {"onnx": 3000, "tflite": 1500}
#: the campaign seed of the test suite
CI_SEED = 2026
FORMAT_KEY = {"onnx": 1, "tflite": 2, "ernn": 3}
CASE_TIMEOUT = float(os.environ.get("EDGERNN_FUZZ_TIMEOUT", "30"))
STARTUP_TIMEOUT = 1200.0            # the first worker compiles the checked engine
COMPILE_TIMEOUT = 900.0             # a case during which the worker compiles (see Worker._receive)
WORKER_MEMORY = 8 << 30             # address-space ceiling of a worker (RLIMIT_AS)
KINDS = ("typed", "ran", "other", "crash", "hang", "escape")
FAILURES = ("other", "crash", "hang", "escape")


def case_count(fmt):
    """Cases per format: ``CI_CASES``, or ``EDGERNN_FUZZ_CASES`` when set."""
    text = os.environ.get("EDGERNN_FUZZ_CASES", "")
    return int(text) if text else CI_CASES[fmt]


def case_rng(fmt, seed, i):
    return np.random.default_rng([FORMAT_KEY[fmt], int(seed), int(i)])


class Skip(Exception):
    """A mutator that does not apply to this model (the generator draws again)."""


def pick(rng, options):
    return options[int(rng.integers(len(options)))]


# ================================================================ seeds
@dataclass
class Seed:
    """An unmutated model file and, for the seed check, its frames and recorded outputs."""
    fmt: str
    path: Path
    frames: tuple          # (file, key or None)
    recorded: tuple        # (file, key or None): the source framework's outputs on those frames
    batch_first: bool = True

    @property
    def name(self):
        return self.path.name

    def load_frames(self):
        return _read_array(*self.frames)

    def load_recorded(self):
        return _read_array(*self.recorded)


def _read_array(path, key):
    if key is None:
        return np.load(path)
    with np.load(path) as z:
        return z[key]


def _onnx_seed(name):
    entry = next(e for e in json.loads((ONNX_DIR / "manifest.json").read_text()) if e["file"] == name)
    npz = ONNX_DIR / name.replace(".onnx", ".npz")
    return Seed("onnx", ONNX_DIR / name, (npz, "frames"), (npz, "y"), entry["batch_first"])


def _tflite_seed(name):
    npz = TFLITE_DIR / f"{name}.npz"
    return Seed("tflite", TFLITE_DIR / f"{name}.tflite", (npz, "frames"), (npz, "keras_y"), True)


#: LSTM / GRU / RNN; TorchScript and dynamo exports; state passed or not; LayerNorm+ReLU heads
ONNX_SEEDS = [_onnx_seed(n) for n in ("lstm_l2_bf_state_lnrelu_ts.onnx", "gru_l1_bf_lin_dy.onnx",
                                      "rnn_tanh_l2_tf_state_lnrelu_ts.onnx", "gru_l2_tf_state_lnrelu_dy.onnx")]
ONNX_SEEDS.append(Seed("onnx", EXAMPLES / "kws_lstm.onnx", (EXAMPLES / "kws_frames.npy", None),
                       (EXAMPLES / "kws_expected_logits.npy", None), True))
#: Keras 3 WHILE loops (LSTM, GRU, a stack of both), the fused LSTM, its dynamic-range int8 form
TFLITE_SEEDS = [_tflite_seed(n) for n in ("k3_lstm", "k3_gru", "k3_stack", "tk_lstm", "tk_lstm_dynrange")]
#: the .ernn sources of tests/test_ernn_fuzz.py (used by benchmarks/fuzz.py)
ERNN_SOURCES = [("lstm_l2_bf_state_lnrelu_ts.onnx", "int8"), ("gru_l1_bf_lin_dy.onnx", "float32"),
                ("rnn_tanh_l2_tf_state_lnrelu_ts.onnx", "float16")]


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


# ================================================================ ONNX mutants
def _onnx():
    import onnx
    return onnx


INT_FORGED = [0, 1, -1, 2, 3, -2**31, 2**31 - 1, 2**31, 2**32, 2**40, 2**62, -2**63, 2**63 - 1]
FLOAT_FORGED = [0.0, -1.0, 1e-30, 1e30, float("nan"), float("inf"), -float("inf")]
STRING_FORGED = [b"", b"forward", b"reverse", b"bidirectional", b"Tanh", b"Relu", b"Sigmoid", b"HardSigmoid",
                 b"Elu", b"x" * 300, b"\xff\xfe", b"0", b"../x"]
ONNX_OPS = ("Add Cast Concat Constant ConstantOfShape Div Flatten GRU Gather Gemm Identity LSTM "
            "LayerNormalization LogSoftmax MatMul Mul RNN Relu Reshape Shape Sigmoid Slice Softmax "
            "Squeeze Sub Tanh Transpose Unsqueeze").split() + ["Loop", "Scan", "If", "Conv", "", "lstm"]
KNOWN_ATTRS = {
    "LSTM": ["hidden_size", "direction", "layout", "activations", "activation_alpha", "activation_beta", "clip",
             "input_forget"],
    "GRU": ["hidden_size", "direction", "layout", "activations", "activation_alpha", "activation_beta", "clip",
            "linear_before_reset"],
    "RNN": ["hidden_size", "direction", "layout", "activations", "activation_alpha", "activation_beta", "clip"],
    "Gemm": ["alpha", "beta", "transA", "transB"], "Softmax": ["axis"], "LogSoftmax": ["axis"],
    "LayerNormalization": ["axis", "epsilon", "stash_type"], "Transpose": ["perm"], "Concat": ["axis"],
    "Gather": ["axis"], "Squeeze": ["axes"], "Unsqueeze": ["axes"], "Reshape": ["allowzero", "shape"],
    "Slice": ["starts", "ends", "axes"], "Shape": ["start", "end"], "Cast": ["to"], "Flatten": ["axis"],
    "ConstantOfShape": ["value"], "Constant": ["value", "value_float", "value_floats", "value_int", "value_ints"],
}


class OnnxSeed:
    """A parsed seed: the ModelProto, its bytes, and where its bytes are not tensor data."""

    def __init__(self, seed):
        onnx = _onnx()
        self.seed = seed
        self.data = seed.path.read_bytes()
        self.model = onnx.load_from_string(self.data)
        data_bytes = np.zeros(len(self.data), bool)
        for t in self.model.graph.initializer:
            if len(t.raw_data) >= 16:
                at = self.data.find(t.raw_data)
                if at >= 0:
                    data_bytes[at:at + len(t.raw_data)] = True
        self.structure = np.flatnonzero(~data_bytes)     # byte positions outside raw tensor data

    def copy(self):
        m = _onnx().ModelProto()
        m.CopyFrom(self.model)
        return m


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


def _value_infos(m):
    g = m.graph
    inits = {t.name for t in g.initializer}
    return [("input", v) for v in g.input if v.name not in inits] + [("output", v) for v in g.output] + \
           [("value_info", v) for v in g.value_info]


def _forge_int(rng, v=None):
    return pick(rng, INT_FORGED + ([v + 1, v - 1, -v] if v is not None else []))


def onnx_dims(m, rng):
    if rng.random() < 0.5:
        where, v = pick(rng, _value_infos(m))
        dims = v.type.tensor_type.shape.dim
        if not v.type.tensor_type.HasField("shape") or rng.random() < 0.15:
            k = int(rng.integers(3))
            if k == 0:
                v.type.tensor_type.ClearField("shape")
                return f"{where} '{v.name}': shape removed"
            d = dims.add()
            d.dim_value = pick(rng, [1, 2, 0])
            return f"{where} '{v.name}': an axis appended"
        if not dims:
            raise Skip
        k = int(rng.integers(len(dims)))
        d = dims[k]
        what = int(rng.integers(5))
        if what == 0:
            d.dim_value = _forge_int(rng, d.dim_value)
            return f"{where} '{v.name}' dim {k} = {d.dim_value}"
        if what == 1:
            d.dim_param = pick(rng, ["T", "batch", "N", "", "x" * 200, "T + 1", "-1"])
            return f"{where} '{v.name}' dim {k} = '{d.dim_param}'"
        if what == 2:
            d.Clear()
            return f"{where} '{v.name}' dim {k} cleared (unknown)"
        if what == 3:
            del dims[k]
            return f"{where} '{v.name}' dim {k} removed (rank {len(dims)})"
        for _ in range(int(rng.integers(1, 4))):
            dims.add().dim_value = pick(rng, [1, 2, 5])
        return f"{where} '{v.name}' rank raised to {len(dims)}"
    if not m.graph.initializer:
        raise Skip
    t = pick(rng, m.graph.initializer)
    k = int(rng.integers(4))
    if k == 0 and len(t.dims):
        j = int(rng.integers(len(t.dims)))
        t.dims[j] = _forge_int(rng, t.dims[j])
        return f"initializer '{t.name}' dims[{j}] = {t.dims[j]} (data unchanged)"
    if k == 1 and len(t.dims):
        del t.dims[int(rng.integers(len(t.dims)))]
        return f"initializer '{t.name}' one dim removed: {list(t.dims)}"
    if k == 2:
        t.dims.append(pick(rng, [1, 2, 0]))
        return f"initializer '{t.name}' dim appended: {list(t.dims)}"
    # same element count, other shape: the data still fits, the meaning does not
    n = int(np.prod(t.dims)) if len(t.dims) else 1
    shape = pick(rng, [[n], [1, n], [n, 1], list(t.dims)[::-1], [1] + list(t.dims), list(t.dims) + [1]])
    del t.dims[:]
    t.dims.extend(shape)
    return f"initializer '{t.name}' reshaped to {shape} (same size)"


def onnx_dtypes(m, rng):
    onnx = _onnx()
    types = [v for k, v in onnx.TensorProto.DataType.items()] + [99, -1]
    k = int(rng.integers(3))
    if k == 0:
        where, v = pick(rng, _value_infos(m))
        v.type.tensor_type.elem_type = pick(rng, types)
        return f"{where} '{v.name}' elem_type = {v.type.tensor_type.elem_type}"
    if k == 1 and m.graph.initializer:
        t = pick(rng, m.graph.initializer)
        t.data_type = pick(rng, types)
        return f"initializer '{t.name}' data_type = {t.data_type} (data unchanged)"
    casts = [n for n in m.graph.node if n.op_type == "Cast"]
    node = pick(rng, casts) if casts else pick(rng, m.graph.node)
    _set_attr(node, "to", onnx.AttributeProto.INT, pick(rng, types))
    return f"node '{node.name}' ({node.op_type}) attribute to = {node.attribute[-1].i}"


def _set_attr(node, name, kind, value, keep=False):
    onnx = _onnx()
    if not keep:
        for a in [a for a in node.attribute if a.name == name]:
            node.attribute.remove(a)
    a = onnx.AttributeProto(name=name, type=kind)
    A = onnx.AttributeProto
    if kind == A.INT:
        a.i = value
    elif kind == A.FLOAT:
        a.f = value
    elif kind == A.STRING:
        a.s = value
    elif kind == A.INTS:
        a.ints.extend(value)
    elif kind == A.FLOATS:
        a.floats.extend(value)
    elif kind == A.STRINGS:
        a.strings.extend(value)
    elif kind == A.TENSOR:
        a.t.CopyFrom(value)
    elif kind == A.GRAPH:
        a.g.CopyFrom(value)
    node.attribute.append(a)
    return a


def _forged_tensor(rng):
    onnx = _onnx()
    from onnx import numpy_helper
    k = int(rng.integers(5))
    if k == 0:
        return numpy_helper.from_array(np.zeros(pick(rng, [(0,), (2, 3), (), (1, 1, 1)]), np.float32), "t")
    if k == 1:
        return numpy_helper.from_array(np.array(pick(rng, [[-1], [2**40], [0, -1], [3, 2**31]]), np.int64), "t")
    if k == 2:
        return numpy_helper.from_array(np.array([np.nan, np.inf], np.float32), "t")
    t = onnx.TensorProto(name="t", data_type=pick(rng, [1, 7, 11, 8, 99]))
    t.dims.extend(pick(rng, [[4], [2**31], [-1], [1, 0], []]))
    t.raw_data = bytes(int(rng.integers(0, 12)))
    return t


def _forged_value(rng, kind, old):
    A = _onnx().AttributeProto
    if kind == A.INT:
        return _forge_int(rng, old.i if old is not None and old.type == A.INT else None)
    if kind == A.FLOAT:
        return pick(rng, FLOAT_FORGED)
    if kind == A.STRING:
        return pick(rng, STRING_FORGED)
    if kind == A.INTS:
        cur = list(old.ints) if old is not None and old.type == A.INTS else [0, 1, 2]
        k = int(rng.integers(5))
        if k == 0:
            return []
        if k == 1 and cur:
            cur[int(rng.integers(len(cur)))] = _forge_int(rng)
            return cur
        if k == 2:
            return cur + [pick(rng, [0, 1, 2, 3, -1, 7])]
        if k == 3 and cur:
            return cur[:-1]
        return [int(v) for v in rng.permutation(cur)] if cur else [2**62]
    if kind == A.FLOATS:
        return pick(rng, [[], [float("nan")], [1.0, 2.0, 3.0], [0.5] * 9, [1e30]])
    if kind == A.STRINGS:
        cur = list(old.strings) if old is not None and old.type == A.STRINGS else [b"Sigmoid", b"Tanh", b"Tanh"]
        return pick(rng, [[], cur[:-1], cur + [b"Relu"], [b"Bogus"] * max(1, len(cur)), [b"relu"] * len(cur),
                          [b"HardSigmoid", b"Elu", b"Affine"], [b"\xff"]])
    return _forged_tensor(rng)


def onnx_attributes(m, rng):
    A = _onnx().AttributeProto
    node = pick(rng, list(m.graph.node))
    names = sorted({a.name for a in node.attribute} | set(KNOWN_ATTRS.get(node.op_type, [])))
    k = int(rng.integers(8))
    if k == 0 and node.attribute:
        a = pick(rng, list(node.attribute))
        node.attribute.remove(a)
        return f"node '{node.name}' ({node.op_type}) attribute {a.name} removed"
    if k == 1 and node.attribute:
        a = pick(rng, list(node.attribute))
        node.attribute.append(copy.deepcopy(a))
        return f"node '{node.name}' ({node.op_type}) attribute {a.name} duplicated"
    if k == 2 and node.attribute:
        a = pick(rng, list(node.attribute))
        a.type = pick(rng, [0, A.INT, A.FLOAT, A.STRING, A.INTS, A.TENSOR, A.GRAPH, 99])
        return f"node '{node.name}' ({node.op_type}) attribute {a.name}: type field = {a.type}, value fields kept"
    if k == 3:
        name = pick(rng, ["junk", "direction", "hidden_size", "axis", "perm", "activations"])
        _set_attr(node, name, A.INT, 1)
        return f"node '{node.name}' ({node.op_type}) attribute {name} = 1 added"
    if not names:
        raise Skip
    name = pick(rng, names)
    old = next((a for a in node.attribute if a.name == name), None)
    same = old is not None and rng.random() < 0.6
    kind = old.type if same else pick(rng, [A.INT, A.FLOAT, A.STRING, A.INTS, A.FLOATS, A.STRINGS, A.TENSOR])
    if kind in (A.GRAPH, A.GRAPHS, A.SPARSE_TENSOR, A.TENSORS, 0):
        raise Skip
    value = _forged_value(rng, kind, old)
    _set_attr(node, name, kind, value)
    shown = value if not hasattr(value, "dims") else f"tensor dims {list(value.dims)} type {value.data_type}"
    return f"node '{node.name}' ({node.op_type}) attribute {name} = {shown!r} ({A.AttributeType.Name(kind)})"


def _all_names(m):
    g = m.graph
    names = [t.name for t in g.initializer] + [v.name for v in g.input]
    for n in g.node:
        names += [o for o in n.output if o]
    return names


def onnx_inputs(m, rng):
    nodes = [n for n in m.graph.node if len(n.input)]
    if not nodes:
        raise Skip
    node = pick(rng, nodes)
    k = int(rng.integers(5))
    j = int(rng.integers(len(node.input)))
    if k == 0:
        del node.input[-1]
        return f"node '{node.name}' ({node.op_type}) last input dropped"
    if k == 1:
        old = node.input[j]
        node.input[j] = ""
        return f"node '{node.name}' ({node.op_type}) input {j} ('{old}') made optional-absent"
    if k == 2:
        node.input[j] = pick(rng, _all_names(m))
        return f"node '{node.name}' ({node.op_type}) input {j} rewired to '{node.input[j]}'"
    if k == 3:
        node.input[j] = "nothing_makes_this"
        return f"node '{node.name}' ({node.op_type}) input {j} names a missing value"
    node.input.append(pick(rng, _all_names(m) + [""]))
    return f"node '{node.name}' ({node.op_type}) extra input '{node.input[-1]}'"


def onnx_names(m, rng):
    g = m.graph
    k = int(rng.integers(4))
    names = _all_names(m)
    if k == 0:
        node = pick(rng, [n for n in g.node if len(n.output)])
        j = int(rng.integers(len(node.output)))
        node.output[j] = pick(rng, names)
        return f"node '{node.name}' ({node.op_type}) output {j} renamed to existing '{node.output[j]}'"
    if k == 1 and len(g.initializer) > 1:
        t = pick(rng, g.initializer)
        t.name = pick(rng, [x.name for x in g.initializer] + [v.name for v in g.input])
        return f"an initializer renamed to '{t.name}' (duplicate)"
    if k == 2:
        v = pick(rng, list(g.input))
        dup = g.input.add()
        dup.CopyFrom(v)
        return f"graph input '{v.name}' listed twice"
    node = pick(rng, list(g.node))
    other = pick(rng, list(g.node))
    node.name = other.name
    return f"node names duplicated: '{node.name}'"


def onnx_nodes(m, rng):
    g = m.graph
    nodes = list(g.node)
    k = int(rng.integers(6))
    j = int(rng.integers(len(nodes)))
    if k == 0:
        del g.node[j]
        return f"node {j} ({nodes[j].op_type}) removed"
    if k == 1:
        g.node.insert(j, copy.deepcopy(nodes[j]))
        return f"node {j} ({nodes[j].op_type}) duplicated"
    if k == 2:
        i = int(rng.integers(len(nodes)))
        a, b = copy.deepcopy(nodes[i]), copy.deepcopy(nodes[j])
        g.node[i].CopyFrom(b)
        g.node[j].CopyFrom(a)
        return f"nodes {i} and {j} swapped"
    if k == 3:
        order = [copy.deepcopy(n) for n in reversed(nodes)]
        del g.node[:]
        g.node.extend(order)
        return "node order reversed"
    if k == 4:
        old = nodes[j].op_type
        g.node[j].op_type = pick(rng, ONNX_OPS)
        return f"node {j} op {old} -> '{g.node[j].op_type}'"
    g.node[j].domain = pick(rng, ["com.microsoft", "ai.onnx.ml", "ai.onnx", "x"])
    return f"node {j} ({nodes[j].op_type}) domain '{g.node[j].domain}'"


def onnx_graph_io(m, rng):
    g = m.graph
    k = int(rng.integers(6))
    if k == 0 and len(g.input):
        v = g.input[int(rng.integers(len(g.input)))]
        name = v.name
        g.input.remove(v)
        return f"graph input '{name}' removed"
    if k == 1 and len(g.output):
        v = g.output[int(rng.integers(len(g.output)))]
        name = v.name
        g.output.remove(v)
        return f"graph output '{name}' removed"
    if k == 2:
        v = g.output.add()
        v.CopyFrom(g.output[0])
        v.name = pick(rng, _all_names(m))
        return f"graph output '{v.name}' added"
    if k == 3 and len(g.initializer):
        t = g.initializer[int(rng.integers(len(g.initializer)))]
        name = t.name
        g.initializer.remove(t)
        return f"initializer '{name}' removed"
    if k == 4:
        v = g.input.add()
        v.CopyFrom(g.input[0])
        v.name = pick(rng, ["extra", g.initializer[0].name if len(g.initializer) else "extra2"])
        return f"graph input '{v.name}' added"
    del g.output[:]
    return "every graph output removed"


def onnx_opset(m, rng):
    k = int(rng.integers(4))
    if k == 0:
        del m.opset_import[:]
        return "opset_import removed"
    if k == 1:
        m.ir_version = pick(rng, [0, 1, 3, 999, -1, 2**62])
        return f"ir_version = {m.ir_version}"
    if k == 2:
        o = m.opset_import.add()
        o.domain, o.version = pick(rng, ["", "ai.onnx", "com.microsoft"]), pick(rng, [1, 7, 999])
        return f"opset_import entry added: '{o.domain}' {o.version}"
    version = pick(rng, [0, 1, 4, 5, 6, 7, 9, 10, 12, 13, 14, 17, 18, 21, 22, 999, -1, 2**62, -2**63])
    for o in m.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = version
    return f"default opset = {version}"


def onnx_data(m, rng):
    onnx = _onnx()
    from onnx import numpy_helper
    g = m.graph
    if not g.initializer:
        raise Skip
    t = pick(rng, g.initializer)
    arr = numpy_helper.to_array(t)
    k = int(rng.integers(5))
    if k == 0:
        n = int(rng.integers(len(t.raw_data) + 1)) if t.raw_data else 0
        t.raw_data = t.raw_data[:n]
        return f"initializer '{t.name}' raw_data cut to {n} bytes"
    if k == 1:
        t.raw_data = t.raw_data + bytes(int(rng.integers(1, 9)))
        return f"initializer '{t.name}' raw_data extended"
    if k == 2:
        if arr.dtype.kind == "f":
            new = arr.copy().ravel()
            new[int(rng.integers(new.size))] = pick(rng, [np.nan, np.inf, 1e38, -1e38]) if new.size else 0
        elif arr.dtype.kind in "iu":
            new = arr.copy().ravel()
            if new.size:
                new[int(rng.integers(new.size))] = pick(rng, [0, -1, -2, 2**31, 2**62, -2**63, 2**63 - 1, 13, 1000])
        else:
            raise Skip
        t.raw_data = new.astype(arr.dtype).tobytes()
        return f"initializer '{t.name}' one element forged"
    if k == 3:
        t.ClearField("raw_data")
        if arr.dtype.kind == "f":
            t.float_data.extend([1.0] * int(rng.integers(0, max(2, arr.size + 2))))
        else:
            t.int64_data.extend([1] * int(rng.integers(0, max(2, arr.size + 2))))
        return f"initializer '{t.name}' data moved to a typed field with a different count"
    t.float_data.append(1.0)
    return f"initializer '{t.name}' both raw_data and float_data set"


ONNX_MUTATORS = [(onnx_dims, 3), (onnx_dtypes, 2), (onnx_attributes, 4), (onnx_inputs, 2), (onnx_names, 1),
                 (onnx_nodes, 2), (onnx_graph_io, 1), (onnx_opset, 1), (onnx_data, 2)]


def stacked_mutations(m, rng, mutators, states=None):
    """Apply 1 to 3 mutators drawn by weight to ``m``; ``states`` (a list) receives the
    generator's state before each draw, so that one of them can be replayed alone
    (:func:`replay_one`). Returns their descriptions."""
    fns, weights = zip(*mutators)
    p = np.array(weights, float) / sum(weights)
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
    fns, weights = zip(*mutators)
    p = np.array(weights, float) / sum(weights)
    return fns[int(rng.choice(len(fns), p=p))](m, rng)


def mutate_onnx_structure(seed, rng, states=None):
    m = seed.copy()
    whats = stacked_mutations(m, rng, ONNX_MUTATORS, states)
    return m.SerializeToString(), "; ".join(whats)


def mutate_onnx_external(seed, rng, ctx):
    """Move one float initializer's data into an external file, at a location chosen to be
    legitimate (beside the model) or not (outside its directory, absolute, missing, forged
    offsets, a symlink out, a model given as bytes)."""
    onnx = _onnx()
    from onnx import numpy_helper
    m = seed.copy()
    floats = [t for t in m.graph.initializer if numpy_helper.to_array(t).dtype == np.float32
              and numpy_helper.to_array(t).size > 0]
    t = pick(rng, floats)
    data = numpy_helper.to_array(t).astype("<f4").tobytes()
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = onnx.TensorProto.EXTERNAL

    def ext(location, offset=None, length=None, extra=()):
        for key, value in (("location", location), ("offset", offset), ("length", length)) + tuple(extra):
            if value is not None:
                e = t.external_data.add()
                e.key, e.value = key, str(value)
    files, links, cwd_files = {}, {}, {}
    must_refuse, via = False, "path"
    kind = pick(rng, ["beside", "beside_offset", "parent", "absolute", "passwd", "missing", "directory",
                      "offset", "length", "negative", "symlink", "bytes", "nested", "unknown_key", "empty"])
    if kind == "beside":
        ext("weights.bin")
        files["weights.bin"] = data
    elif kind == "beside_offset":
        ext("weights.bin", offset=4096, length=len(data))
        files["weights.bin"] = bytes(4096) + data
    elif kind == "nested":
        ext("sub/weights.bin")
        files["sub/weights.bin"] = data
    elif kind == "parent":
        ext(pick(rng, ["../outside.bin", "sub/../../outside.bin", "./../outside.bin"]))
        files["../outside.bin"] = data
        must_refuse = True
    elif kind == "absolute":
        ext(str(ctx.outside))
        files["../outside.bin"] = data
        must_refuse = True
    elif kind == "passwd":
        ext(pick(rng, ["../../../../../../../../etc/passwd", "/etc/passwd", "/proc/self/environ", "/dev/zero"]))
        must_refuse = True
    elif kind == "missing":
        ext("no_such_file.bin")
    elif kind == "directory":
        ext(pick(rng, [".", "", "sub"]))
        files["sub/x"] = b""
    elif kind == "offset":
        ext("weights.bin", offset=pick(rng, [len(data) + 1, 2**40, 2**63 - 1]), length=len(data))
        files["weights.bin"] = data
    elif kind == "length":
        ext("weights.bin", length=pick(rng, [len(data) - 4, len(data) + 4, 2**40, 0]))
        files["weights.bin"] = data
    elif kind == "negative":
        ext("weights.bin", offset=pick(rng, [-1, -4096]), length=pick(rng, [-1, None]))
        files["weights.bin"] = data
    elif kind == "symlink":
        ext("link.bin")
        links["link.bin"] = "../outside.bin"
        files["../outside.bin"] = data
        must_refuse = True
    elif kind == "bytes":
        # the model given as bytes has no directory: data next to the working directory is not its own
        ext("weights.bin")
        cwd_files["weights.bin"] = data
        via, must_refuse = "bytes", True
    elif kind == "unknown_key":
        ext("weights.bin", extra=(("basepath", "/etc"), ("checksum", "0"), ("junk", "1")))
        files["weights.bin"] = data
    else:
        ext(None)
    what = f"initializer '{t.name}' ({len(data)} bytes) external, {kind}: " + \
        ", ".join(f"{e.key}={e.value!r}" for e in t.external_data)
    return m.SerializeToString(), what, dict(files=files, links=links, cwd_files=cwd_files, via=via,
                                             must_refuse=must_refuse)


# ================================================================ TFLite mutants
def tflite_schema():
    from ai_edge_litert import schema_py_generated
    return schema_py_generated


class TfliteSeed:
    def __init__(self, seed):
        s = tflite_schema()
        self.seed = seed
        self.data = seed.path.read_bytes()
        self.model = s.ModelT.InitFromPackedBuf(self.data, 0)
        self.whiles = [(gi, oi) for gi, g in enumerate(self.model.subgraphs) for oi, op in enumerate(g.operators or [])
                       if op.builtinOptionsType == s.BuiltinOptions.WhileOptions]

    def copy(self):
        return copy.deepcopy(self.model)


def pack_tflite(m):
    import flatbuffers
    b = flatbuffers.Builder(1 << 16)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


I32 = [-1, -2, 0, 1, 2**31 - 1, -2**31, 2**30, 65536]


def _tensor(m, rng):
    gi = int(rng.integers(len(m.subgraphs)))
    g = m.subgraphs[gi]
    if not g.tensors:
        raise Skip
    ti = int(rng.integers(len(g.tensors)))
    return gi, g, ti, g.tensors[ti]


def _operator(m, rng):
    ops = [(gi, oi, op) for gi, g in enumerate(m.subgraphs) for oi, op in enumerate(g.operators or [])]
    if not ops:
        raise Skip
    return pick(rng, ops)


def tflite_shapes(m, rng):
    gi, g, ti, t = _tensor(m, rng)
    attr = "shapeSignature" if rng.random() < 0.25 else "shape"
    shape = [int(d) for d in (getattr(t, attr) if getattr(t, attr) is not None else [])]
    k = int(rng.integers(5))
    if k == 0 and shape:
        j = int(rng.integers(len(shape)))
        shape[j] = pick(rng, I32 + [shape[j] + 1, shape[j] * 2, 3])
    elif k == 1 and shape:
        del shape[int(rng.integers(len(shape)))]
    elif k == 2:
        shape.insert(int(rng.integers(len(shape) + 1)), pick(rng, [1, 2, 0, -1]))
    elif k == 3:
        shape = pick(rng, [[], [0], [2**31 - 1, 2**31 - 1], [1] * 9, [-1, -1, -1]])
    else:
        shape = shape[::-1]
    setattr(t, attr, np.array(shape, np.int32) if shape else None if rng.random() < 0.5 else np.zeros(0, np.int32))
    return f"subgraph {gi} tensor {ti} {attr} = {shape}"


def tflite_types(m, rng):
    s = tflite_schema()
    gi, g, ti, t = _tensor(m, rng)
    types = [v for k, v in vars(s.TensorType).items() if not k.startswith("_")] + [99, -1]
    t.type = pick(rng, types)
    return f"subgraph {gi} tensor {ti} type = {t.type}"


def tflite_tensor_buffer(m, rng):
    gi, g, ti, t = _tensor(m, rng)
    n = len(m.buffers)
    t.buffer = pick(rng, [0, n - 1, n, n + 5, 2**32 - 1, 2**31, int(rng.integers(n))])
    return f"subgraph {gi} tensor {ti} buffer = {t.buffer} (of {n})"


def tflite_buffer_data(m, rng):
    full = [(i, b) for i, b in enumerate(m.buffers) if b.data is not None and len(b.data)]
    if not full:
        raise Skip
    i, b = pick(rng, full)
    k = int(rng.integers(5))
    if k == 0:
        n = int(rng.integers(len(b.data)))
        b.data = b.data[:n]
        return f"buffer {i} data truncated to {n} bytes"
    if k == 1:
        b.data = None
        return f"buffer {i} data removed"
    if k == 2:
        b.data = np.concatenate([b.data, np.zeros(int(rng.integers(1, 9)), np.uint8)])
        return f"buffer {i} data extended"
    if k == 3:
        b.data, b.offset, b.size = None, pick(rng, [2, 16, 2**40, 2**63]), pick(rng, [4, len(full), 2**40, 2**63])
        return f"buffer {i} data moved to offset {b.offset}, size {b.size}"
    d = np.array(b.data, np.uint8)
    d[int(rng.integers(d.size))] = pick(rng, [0xff, 0x7f, 0x80])
    b.data = d
    return f"buffer {i} one byte forged"


def tflite_opcode(m, rng):
    gi, oi, op = _operator(m, rng)
    n = len(m.operatorCodes)
    op.opcodeIndex = pick(rng, [n, n + 1, 2**32 - 1, 2**31, int(rng.integers(n))])
    return f"subgraph {gi} op {oi} opcodeIndex = {op.opcodeIndex} (of {n})"


def _index_list(lst, n, rng):
    lst = [int(x) for x in (lst if lst is not None else [])]
    k = int(rng.integers(4))
    if k == 0 and lst:
        forged = [-1, -2, n, n + 100, 2**31 - 1, -2**31, int(rng.integers(max(n, 1)))]
        lst[int(rng.integers(len(lst)))] = pick(rng, forged)
    elif k == 1 and lst:
        del lst[int(rng.integers(len(lst)))]
    elif k == 2:
        lst.append(pick(rng, [-1, 0, n, int(rng.integers(max(n, 1)))]))
    else:
        lst = pick(rng, [[], lst[::-1], lst * 2])
    return lst


def tflite_op_io(m, rng):
    gi, oi, op = _operator(m, rng)
    n = len(m.subgraphs[gi].tensors or [])
    attr = pick(rng, ["inputs", "outputs"])
    setattr(op, attr, np.array(_index_list(getattr(op, attr), n, rng), np.int32))
    return f"subgraph {gi} op {oi} {attr} = {getattr(op, attr).tolist()}"


def tflite_subgraph_io(m, rng):
    gi = int(rng.integers(len(m.subgraphs)))
    g = m.subgraphs[gi]
    attr = pick(rng, ["inputs", "outputs"])
    setattr(g, attr, np.array(_index_list(getattr(g, attr), len(g.tensors or []), rng), np.int32))
    return f"subgraph {gi} {attr} = {getattr(g, attr).tolist()}"


def tflite_while(m, rng):
    s = tflite_schema()
    whiles = [(gi, oi, op) for gi, g in enumerate(m.subgraphs) for oi, op in enumerate(g.operators or [])
              if op.builtinOptionsType == s.BuiltinOptions.WhileOptions and op.builtinOptions is not None]
    if not whiles:
        raise Skip
    gi, oi, op = pick(rng, whiles)
    o = op.builtinOptions
    n = len(m.subgraphs)
    k = int(rng.integers(4))
    if k == 0:
        attr = pick(rng, ["bodySubgraphIndex", "condSubgraphIndex"])
        setattr(o, attr, pick(rng, [gi, 0, n, n + 1, -1, 2**31 - 1, -2**31]))
        return f"subgraph {gi} WHILE op {oi} {attr} = {getattr(o, attr)} (the op's own subgraph: {gi})"
    if k == 1:
        o.bodySubgraphIndex, o.condSubgraphIndex = o.condSubgraphIndex, o.bodySubgraphIndex
        return f"subgraph {gi} WHILE op {oi}: body and cond swapped"
    if k == 2:
        # the body calls itself: a WHILE inside the body whose body is the body
        body = m.subgraphs[o.bodySubgraphIndex]
        inner = copy.deepcopy(op)
        inner.inputs, inner.outputs = np.array(body.inputs, np.int32), np.array(body.outputs, np.int32)
        if rng.random() < 0.5:
            body.operators = [inner] + list(body.operators or [])
            where = "first"
        else:
            body.operators = list(body.operators or []) + [inner]
            where = "last"
        return f"subgraph {gi} WHILE op {oi}: its body {o.bodySubgraphIndex} runs a WHILE over itself ({where} op)"
    op.builtinOptions = None if rng.random() < 0.5 else s.AddOptionsT()
    if op.builtinOptions is None or rng.random() < 0.5:
        op.builtinOptionsType = pick(rng, [0, s.BuiltinOptions.AddOptions, 255])
    return f"subgraph {gi} WHILE op {oi} options = {type(op.builtinOptions).__name__}, type {op.builtinOptionsType}"


def tflite_options(m, rng):
    gi, oi, op = _operator(m, rng)
    o = op.builtinOptions
    if o is None or not vars(o) or rng.random() < 0.15:
        op.builtinOptions = None
        return f"subgraph {gi} op {oi} builtin options removed"
    attr = pick(rng, sorted(vars(o)))
    old = getattr(o, attr)
    if isinstance(old, bool):
        new = not old
    elif isinstance(old, (int, np.integer)):
        new = pick(rng, [-1, 0, 1, 2, 3, 5, 6, 99, 127, -128, int(old) + 1])
    elif isinstance(old, float):
        new = pick(rng, FLOAT_FORGED)
    elif old is None or isinstance(old, (list, np.ndarray)):
        new = np.array(pick(rng, [[], [-1], [0, 0, 0], [2**31 - 1], [1, 2, 3, 4, 5, 6, 7]]), np.int32)
    else:
        raise Skip
    setattr(o, attr, new)
    return f"subgraph {gi} op {oi} {type(o).__name__}.{attr} = {new!r}"


def tflite_opcodes(m, rng):
    s = tflite_schema()
    i = int(rng.integers(len(m.operatorCodes)))
    c = m.operatorCodes[i]
    k = int(rng.integers(3))
    names = {v: n for n, v in vars(s.BuiltinOperator).items() if not n.startswith("_")}
    if k == 0:
        c.builtinCode = pick(rng, [s.BuiltinOperator.WHILE, s.BuiltinOperator.ADD, s.BuiltinOperator.FULLY_CONNECTED,
                                   s.BuiltinOperator.CUSTOM, s.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM,
                                   s.BuiltinOperator.SPLIT, s.BuiltinOperator.GATHER, s.BuiltinOperator.RESHAPE,
                                   s.BuiltinOperator.IF, 999, -1])
        return f"operator code {i} builtinCode = {names.get(c.builtinCode, c.builtinCode)}"
    if k == 1:
        c.deprecatedBuiltinCode = pick(rng, [0, 32, 127, -128, 9, 44])
        return f"operator code {i} deprecatedBuiltinCode = {c.deprecatedBuiltinCode}"
    c.version = pick(rng, [0, -1, 99, 2**31 - 1])
    return f"operator code {i} version = {c.version}"


def tflite_quantization(m, rng):
    s = tflite_schema()
    gi, g, ti, t = _tensor(m, rng)
    q = t.quantization if t.quantization is not None else s.QuantizationParametersT()
    t.quantization = q
    k = int(rng.integers(4))
    if k == 0:
        q.scale = pick(rng, [[], [0.0], [float("nan")], [-1.0], [1e-30], [1.0] * 3])
    elif k == 1:
        q.zeroPoint = pick(rng, [[], [1], [0, 0], [-128], [2**40]])
    elif k == 2:
        q.quantizedDimension = pick(rng, [-1, 5, 2**31 - 1, 1])
    else:
        q.scale, q.zeroPoint = [0.5], [0]
    return f"subgraph {gi} tensor {ti} quantization scale={q.scale} zeroPoint={q.zeroPoint} axis={q.quantizedDimension}"


def tflite_structure(m, rng):
    k = int(rng.integers(7))
    n = len(m.subgraphs)
    if k == 0:
        gi, oi, op = _operator(m, rng)
        del m.subgraphs[gi].operators[oi]
        return f"subgraph {gi} op {oi} removed"
    if k == 1:
        gi, oi, op = _operator(m, rng)
        m.subgraphs[gi].operators.insert(oi, copy.deepcopy(op))
        return f"subgraph {gi} op {oi} duplicated"
    if k == 2:
        gi = int(rng.integers(len(m.subgraphs)))
        ops = m.subgraphs[gi].operators or []
        if len(ops) < 2:
            raise Skip
        a, b = rng.choice(len(ops), 2, replace=False)
        ops[a], ops[b] = ops[b], ops[a]
        return f"subgraph {gi} ops {a} and {b} swapped"
    if k == 3 and n > 1:
        gi = int(rng.integers(1, n))
        del m.subgraphs[gi]
        return f"subgraph {gi} removed"
    if k == 4 and n > 1:
        a, b = rng.choice(n, 2, replace=False)
        m.subgraphs[a], m.subgraphs[b] = m.subgraphs[b], m.subgraphs[a]
        return f"subgraphs {a} and {b} swapped"
    if k == 5 and m.signatureDefs:
        sig = m.signatureDefs[0]
        tms = list(sig.inputs or []) + list(sig.outputs or [])
        if rng.random() < 0.5 and tms:
            tm = pick(rng, tms)
            tm.tensorIndex = pick(rng, [-1, 2**31 - 1, len(m.subgraphs[0].tensors), 0])
            return f"signature tensor '{tm.name}' index = {tm.tensorIndex}"
        sig.subgraphIndex = pick(rng, [1, n, 2**31 - 1])
        return f"signature subgraphIndex = {sig.subgraphIndex}"
    k = int(rng.integers(3))
    if k == 0:
        m.buffers = m.buffers[:int(rng.integers(len(m.buffers)))]
        return f"buffers cut to {len(m.buffers)}"
    if k == 1:
        m.operatorCodes = m.operatorCodes[:int(rng.integers(len(m.operatorCodes)))]
        return f"operator codes cut to {len(m.operatorCodes)}"
    gi, g, ti, t = _tensor(m, rng)
    t.isVariable = not t.isVariable
    return f"subgraph {gi} tensor {ti} isVariable = {t.isVariable}"


TFLITE_MUTATORS = [(tflite_shapes, 4), (tflite_types, 1), (tflite_tensor_buffer, 2), (tflite_buffer_data, 2),
                   (tflite_opcode, 2), (tflite_op_io, 3), (tflite_subgraph_io, 1), (tflite_while, 3),
                   (tflite_options, 3), (tflite_opcodes, 1), (tflite_quantization, 2), (tflite_structure, 2)]


def tflite_mutators(seed):
    return [(f, w if seed.whiles or f is not tflite_while else 0) for f, w in TFLITE_MUTATORS]


def mutate_tflite_schema(seed, rng, states=None):
    m = seed.copy()
    whats = stacked_mutations(m, rng, tflite_mutators(seed), states)
    return pack_tflite(m), "; ".join(whats)


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


# ================================================================ generators
FAMILIES = {"onnx": {"bytes": 0.35, "structure": 0.5, "external": 0.15},
            "tflite": {"bytes": 0.35, "schema": 0.65},
            "ernn": {"bytes": 0.6, "program": 0.4}}
BUILD_ERRORS = (Skip, ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError, struct.error)


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


# ================================================================ the worker (child side)
def _where(tb):
    """(innermost frame in edgernn's package, innermost frame) as 'path:line (function)'."""
    frames = traceback.extract_tb(tb)
    pkg = os.sep + "edgernn" + os.sep

    def show(f):
        path = f.filename
        for root in (str(REPO) + os.sep, sys.prefix + os.sep):
            if path.startswith(root):
                path = path[len(root):]
        return f"{path}:{f.lineno} ({f.name})"
    own = [f for f in frames if pkg in f.filename and os.sep + "tests" + os.sep not in f.filename]
    return (show(own[-1]) if own else ""), (show(frames[-1]) if frames else "")


def _exercise(m, rng, steps=3):
    """Step the model: one stream and a batch of two, ``steps`` frames each through the fast
    step and the general path, then a ``steps``-frame run. Returns whether outputs were finite."""
    from edgernn.stream import Stream
    finite = True
    for batch in (None, 2):
        s = m.stream(batch=batch)
        lead = () if batch is None else (batch,)
        shapes = [lead + tuple(t.frame_shape) for t in m.inputs]
        if sum(int(np.prod(sh)) for sh in shapes) > 1 << 24:
            return None                 # loaded with frames of 16M values: not stepped by the harness

        def frames(k):
            return [np.zeros(sh, np.float32) if k == 0 else rng.standard_normal(sh).astype(np.float32)
                    for sh in shapes]
        outs = []
        for k in range(steps):
            outs.append(Stream.step(s, *frames(k)) if k == 1 else s.step(*frames(k)))
        outs.append(s.run(*[np.stack(seq) for seq in zip(*[frames(k) for k in range(steps)])]))
        for y in outs:
            for a in (y if isinstance(y, tuple) else (y,)):
                finite = finite and bool(np.all(np.isfinite(a)))
    return finite


def _classify(fn):
    """Run fn(); a reply for the case: typed / ran / other, with the exception's facts."""
    from edgernn.errors import EdgeRNNError
    phase = ["load"]
    try:
        finite = fn(phase)
        return {"kind": "ran", "finite": finite}
    except EdgeRNNError as e:
        where, at = _where(e.__traceback__)
        return {"kind": "typed", "type": type(e).__name__, "message": str(e)[:300], "phase": phase[0],
                "where": where}
    except BaseException as e:          # noqa: BLE001 -- everything else is the finding
        if isinstance(e, KeyboardInterrupt):
            raise
        where, at = _where(e.__traceback__)
        tb = "".join(traceback.format_exception(type(e), e, e.__traceback__)[-12:])
        name = type(e).__name__
        if isinstance(e, IndexError) and str(e) == "index is out of bounds":
            name += " (Numba bounds check)"         # compiled code indexed outside an array
        return {"kind": "other", "type": name, "message": str(e)[:500], "phase": phase[0],
                "where": where, "raised_at": at, "traceback": tb[-4000:]}


#: paths outside any model's directory that a mutant's external data may name: an open of any
#: of them (or of a file under a watched root but outside the model's directory) is an escape
FORBIDDEN = ("/etc/passwd", "/proc/self/environ", "/dev/zero")
_OPENS = None           # while a case runs: the files it opens (the audit hook appends)


def _audit(event, args):
    if event == "open" and _OPENS is not None and isinstance(args[0], (str, bytes)):
        path = os.fsdecode(args[0])
        _OPENS.append(os.path.realpath(path))


def _escapes(opened, watch, allowed):
    """Opened files that lie under a watched root (the session's directory) but not under an
    allowed one (the model's directory), or that are among FORBIDDEN."""
    out = []
    for p in opened:
        inside = any(p == a or p.startswith(a + os.sep) for a in allowed)
        watched = any(p == w or p.startswith(w + os.sep) for w in watch)
        if (watched and not inside) or p in {os.path.realpath(f) for f in FORBIDDEN}:
            out.append(p)
    return sorted(set(out))


def _handle_case(req):
    import edgernn
    rng = np.random.default_rng(int(req.get("frames_seed", 0)))

    opened = []

    def run(phase):
        global _OPENS
        src = req["path"] if req.get("via", "path") == "path" else Path(req["path"]).read_bytes()
        _OPENS = opened                 # what edgernn opens (not the harness, nor the traceback's linecache)
        try:
            m = edgernn.load(src)
            phase[0] = "step"
            return _exercise(m, rng, int(req.get("steps", 3)))
        finally:
            _OPENS = None
    reply = _classify(run)
    bad = [p for p in _escapes(opened, req.get("watch", []), req.get("allowed", [])) if os.path.exists(p)]
    if bad:
        reply = dict(reply, kind="escape", outcome=reply["kind"], type="opened a file outside the model's directory",
                     message=f"opened {bad} (the case then ended as {reply['kind']}: {reply.get('type', '')} "
                             f"{reply.get('message', '')[:200]})".strip(), where=f"opened {os.path.basename(bad[0])}")
    return reply


def _handle_warmup(req):
    import numba

    import edgernn
    t0 = time.perf_counter()
    for p in req["paths"]:
        m = edgernn.load(p)
        _exercise(m, np.random.default_rng(0))
    return {"kind": "ran", "seconds": time.perf_counter() - t0, "boundscheck": numba.config.BOUNDSCHECK,
            "cache_dir": numba.config.CACHE_DIR, "edgernn": edgernn.__file__, "pid": os.getpid()}


def _handle_check(req):
    """Step an unmutated seed over its frames, one step per frame; save every output's frames."""
    import edgernn
    frames = _read_array(req["frames"], req.get("key"))
    m = edgernn.load(req["path"])
    s = m.stream()
    ys = [s.step(f) for f in frames.astype(np.float32)]
    first = np.stack([y[0] if isinstance(y, tuple) else y for y in ys])
    np.save(req["out"], first)
    return {"kind": "ran", "inputs": [list(t.frame_shape) for t in m.inputs]}


def _handle_selftest(req):
    """Does an out-of-bounds index fail here? (1) a function compiled with edgernn's own jit
    options reading past its array; (2) the engine run on a work arena cut to a quarter of the
    plan's size (a stand-in for a plan whose validation missed a range)."""
    import numba

    from edgernn import config
    out = {"kind": "ran", "boundscheck": numba.config.BOUNDSCHECK, "cache_dir": numba.config.CACHE_DIR}

    def past_the_end(a, i):
        return a[i]
    reader = config.jit(past_the_end)
    try:
        value = reader(np.zeros(4, np.float32), 1 << 20)
        out["jit"] = {"kind": "no error", "value": float(value)}
    except Exception as e:  # noqa: BLE001
        out["jit"] = {"kind": type(e).__name__, "message": str(e)}
    out["engine"] = _engine_out_of_bounds(req["path"])
    return out


def _engine_out_of_bounds(path):
    import edgernn
    try:
        from edgernn import engine
        m = edgernn.load(path)
        m.stream()                      # a stream makes the plan runnable (links its kernels)
        p = m.plan
        work = np.zeros((1, max(1, p.work_size // 4)), np.float32)
        frames = np.zeros((1, 1, m._in_width), np.float32)
        outs = np.zeros((1, 1, m._out_width), np.float32)
        args = (p.prog, p.fparams, p.consts, p.qconsts, work, frames, m._in_map, outs, m._out_map)
    except Exception as e:  # noqa: BLE001 -- the engine's interface changed: say so, do not guess
        return {"kind": "unavailable", "message": f"{type(e).__name__}: {e}"}
    try:
        engine.run_frames(*args)
        return {"kind": "no error"}
    except Exception as e:  # noqa: BLE001
        return {"kind": type(e).__name__, "message": str(e)[:300]}


def _handle_die(req):
    """For the harness's own test: the worker dies as a crashing mutant would kill it."""
    os.kill(os.getpid(), getattr(signal, req.get("signal", "SIGSEGV")))
    time.sleep(60)


def _handle_sleep(req):
    """For the harness's own test: no answer, as a hanging mutant would give."""
    time.sleep(float(req["seconds"]))
    return {"kind": "ran"}


HANDLERS = {"case": _handle_case, "warmup": _handle_warmup, "check": _handle_check, "selftest": _handle_selftest,
            "die": _handle_die, "sleep": _handle_sleep}


def _report_compiles(proto):
    """Heartbeats on the protocol while Numba compiles (outermost compilation only)."""
    from numba.core import event

    class Beat(event.Listener):
        depth = 0

        def on_start(self, ev):
            Beat.depth += 1
            if Beat.depth == 1:
                proto.write('{"heartbeat": "compile"}\n')

        def on_end(self, ev):
            Beat.depth -= 1
            if Beat.depth == 0:
                proto.write('{"heartbeat": "compiled"}\n')
    event.register("numba:compile", Beat())


def worker_main():
    import faulthandler
    import warnings
    sys.addaudithook(_audit)
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)                       # prints of anything else go to the log, not the protocol
    faulthandler.enable(file=sys.stderr, all_threads=True)
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)   # a hang's stack, on request
    warnings.simplefilter("ignore")
    _report_compiles(proto)
    import edgernn  # noqa: F401 -- before the first request, so that its clock starts with the work
    for line in sys.stdin:
        req = json.loads(line)
        print(f"--- request {req.get('op')} {req.get('id')}", file=sys.stderr, flush=True)
        try:
            reply = HANDLERS[req.get("op", "case")](req)
        except BaseException as e:      # noqa: BLE001 -- a warm-up or check that fails is reported
            if isinstance(e, KeyboardInterrupt):
                raise
            reply = {"kind": "error", "type": type(e).__name__, "message": str(e)[:1000],
                     "traceback": traceback.format_exc()[-4000:]}
        reply["id"] = req.get("id")
        proto.write(json.dumps(reply) + "\n")


# ================================================================ the worker (parent side)
class WorkerDied(Exception):
    pass


def _child_limits():
    import resource
    try:
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))
    except (ValueError, OSError):
        pass
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class Worker:
    def __init__(self, session):
        self.session = session
        self.proc = None
        self.buf = b""
        self.warm_paths = []
        self.starts = 0
        self.warm_info = None
        self._pending_warmup = False
        self._sent, self._log_start = False, 0
        self.compiles = 0                   # Numba compilations the workers reported

    def env(self):
        env = dict(os.environ)
        env.pop("EDGERNN_NO_CACHE", None)
        env.update(NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(self.session.cache), NUMBA_NUM_THREADS="1",
                   OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1",
                   PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p]))
        return env

    def start(self, warm_paths=(), warm=True):
        """Start the worker and send its warm-up (loads and steps these files: compiles or maps
        the checked engine); :meth:`wait_warm` waits for it. A worker that replaces a dead one
        starts cold (``warm=False``): the session's cache holds what the first one compiled."""
        self.stop()
        for p in warm_paths:
            if str(p) not in self.warm_paths:
                self.warm_paths.append(str(p))
        self.log = open(self.session.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-u", str(HARNESS), "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, cwd=str(self.session.ctx.cwd),
                                     env=self.env(), preexec_fn=_child_limits, start_new_session=True)
        self.buf = b""
        self.starts += 1
        if warm:
            self._send({"op": "warmup", "id": "warmup", "paths": self.warm_paths})
            self._pending_warmup = True

    def wait_warm(self):
        if not self._pending_warmup:
            return self.warm_info
        self._pending_warmup = False
        try:
            reply = self._receive(STARTUP_TIMEOUT)
        except WorkerDied:
            reply = {"kind": "crash", "stderr": self._log_tail(0)}
        if reply is None or reply.get("kind") != "ran":
            self.stop()
            raise RuntimeError(f"the fuzz worker did not warm up: {reply}; log {self.session.log}")
        self.warm_info = reply
        return reply

    def ensure(self, warm_paths=()):
        missing = [p for p in warm_paths if str(p) not in self.warm_paths]
        if self.proc is None or self.proc.poll() is not None:
            self.start(warm_paths)
        elif missing:
            self.warm_paths += [str(p) for p in missing]
            self._send({"op": "warmup", "id": "warmup", "paths": [str(p) for p in missing]})
            self._pending_warmup = True

    def _send(self, req):
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        self.proc.stdin.flush()

    def _receive(self, timeout):
        """The next reply, or None after ``timeout`` seconds without one. While the worker
        compiles (it says so: a "compile" heartbeat when Numba starts, "compiled" when it is
        done) the clock waits up to COMPILE_TIMEOUT instead: a mutant that needs a kernel or a
        frame layout that nothing compiled before is slow once, not hung."""
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                ready, _, _ = select.select([fd], [], [], left)
                if ready:
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        raise WorkerDied
                    self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            msg = json.loads(line)
            beat = msg.get("heartbeat")
            if beat is None:
                return msg
            if beat == "compile":
                self.compiles += 1
                deadline = max(deadline, time.monotonic() + COMPILE_TIMEOUT)
            else:
                deadline = time.monotonic() + timeout

    def _log_tail(self, start, limit=3000):
        try:
            with open(self.session.log, "rb") as f:
                f.seek(start)
                return f.read()[-limit:].decode(errors="replace")
        except (OSError, ValueError):
            return ""

    def submit(self, req):
        """Send a request (starting and warming a worker first if there is none); the reply
        is read by :meth:`result`, so the caller can prepare the next case meanwhile."""
        if self.proc is None or self.proc.poll() is not None:
            self.start(warm=False)
        self.wait_warm()
        self._log_start = os.path.getsize(self.session.log)
        try:
            self._send(req)
            self._sent = True
        except BrokenPipeError:
            self._sent = False

    def result(self, timeout=CASE_TIMEOUT):
        """The reply to the submitted request, or a crash/hang record (the worker is then gone,
        and the next :meth:`submit` starts a new one)."""
        try:
            if not self._sent:
                raise WorkerDied
            reply = self._receive(timeout)
        except WorkerDied:
            code = self.proc.wait()
            self.proc = None
            sig = signal.Signals(-code).name if code < 0 and -code in signal.Signals._value2member_map_ else None
            return {"kind": "crash", "type": sig or f"exit {code}", "message": f"worker died ({sig or code})",
                    "where": "", "stderr": self._log_tail(self._log_start)}
        if reply is None:
            try:
                self.proc.send_signal(signal.SIGUSR1)      # faulthandler writes where it is stuck
                time.sleep(1.0)
            except OSError:
                pass
            self.stop()                 # kills it: the log then holds all it wrote
            return {"kind": "hang", "type": "timeout", "message": f"no answer in {timeout:.0f} s", "where": "",
                    "stderr": self._log_tail(self._log_start)}
        return reply

    def call(self, req, timeout=CASE_TIMEOUT):
        self.submit(req)
        return self.result(timeout)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            self.proc.kill()            # our own child, by its pid
            self.proc.wait()
        self.proc = None
        self._pending_warmup = False
        self.log.close()


def checked_cache_dir():
    """``$EDGERNN_FUZZ_NUMBA_CACHE/<hash of edgernn's sources, Numba, Python>`` when that
    variable is set (repeated campaigns then compile the checked engine once), else None: a
    fresh cache per session. Only fuzz workers (NUMBA_BOUNDSCHECK=1) may write there: Numba
    would load unchecked code from it as readily."""
    root = os.environ.get("EDGERNN_FUZZ_NUMBA_CACHE", "")
    if not root:
        return None
    import hashlib

    import numba
    h = hashlib.sha1(f"{numba.__version__} {sys.version}".encode())
    for p in sorted((REPO / "edgernn").rglob("*.py")):
        h.update(str(p.relative_to(REPO)).encode() + p.read_bytes())
    return Path(root) / f"checked-{h.hexdigest()[:16]}"


class Session:
    """A temporary directory (cases, the checked Numba cache, the worker's log, saved
    failures) and one worker, shared by every campaign of a process."""

    def __init__(self, root=None):
        self.dir = Path(root) if root else Path(tempfile.mkdtemp(prefix="edgernn-fuzz-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ctx = Context(self.dir)
        self.ctx.case.mkdir(exist_ok=True)
        self.ctx.cwd.mkdir(exist_ok=True)
        self.cache = checked_cache_dir() or self.dir / "numba-cache"
        self.failures = self.dir / "failures"
        self.log = self.dir / "worker.log"
        self.log.touch()
        self.worker = Worker(self)
        self.generators = {}
        self.inotify = Inotify.make()
        if self.inotify is not None:
            self.inotify.watch(self.dir)        # outside.bin
            self.inotify.watch(self.ctx.cwd)    # a model given as bytes has no directory of its own

    def generator(self, fmt):
        if fmt not in self.generators:
            self.generators[fmt] = Generator(fmt, self.ctx)
        return self.generators[fmt]

    def close(self):
        self.worker.stop()
        if self.inotify is not None:
            self.inotify.close()
            self.inotify = None
        if self.failures.exists() and any(self.failures.iterdir()):
            for p in (self.dir / "numba-cache", self.ctx.case, self.ctx.cwd, self.dir / "ernn-seeds"):
                shutil.rmtree(p, ignore_errors=True)
            print(f"\nedgernn fuzz: failing mutants kept in {self.failures}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


_SESSION = None


def session():
    """The process's shared session (made on first use, removed at exit)."""
    global _SESSION
    if _SESSION is None:
        _SESSION = Session()
        atexit.register(_SESSION.close)
    return _SESSION


# ================================================================ campaigns
def write_case(ctx, mut):
    """Put the mutant and its files in place; returns the path to load."""
    shutil.rmtree(ctx.case, ignore_errors=True)
    ctx.case.mkdir()
    for p in ctx.cwd.iterdir():         # the worker's working directory: emptied, never removed
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    if ctx.outside.exists():
        ctx.outside.unlink()
    path = ctx.case / mut.name
    path.write_bytes(mut.data)
    for rel, data in mut.files.items():
        p = Path(os.path.normpath(ctx.case / rel))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    for name, target in mut.links.items():
        os.symlink(target, ctx.case / name)
    for name, data in mut.cwd_files.items():
        (ctx.cwd / name).write_bytes(data)
    return path


class Inotify:
    """Opens of the files a mutant names outside its model's directory, seen by the kernel
    (Linux inotify, through ctypes): the read may happen in C++ (onnx opens external data
    there), where no Python audit hook sees it. None of it elsewhere: :meth:`make` returns
    None and only the worker's audit hook and the loaded-means-read rule remain."""
    IN_ACCESS, IN_OPEN, IN_ISDIR = 0x1, 0x20, 0x40000000

    def __init__(self, libc, fd):
        self.libc, self.fd, self.dirs = libc, fd, {}

    @classmethod
    def make(cls):
        if not sys.platform.startswith("linux"):
            return None
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, AttributeError):
            return None
        return cls(libc, fd) if fd >= 0 else None

    def watch(self, directory):
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(str(directory)), self.IN_OPEN | self.IN_ACCESS)
        if wd >= 0:
            self.dirs[wd] = Path(directory)

    def events(self):
        """(directory, file name) of every open or read since the last call."""
        out = []
        while True:
            try:
                buf = os.read(self.fd, 1 << 16)
            except (BlockingIOError, InterruptedError):
                return out
            i = 0
            while i + 16 <= len(buf):
                wd, mask, _, n = struct.unpack_from("iIII", buf, i)
                name = buf[i + 16:i + 16 + n].rstrip(b"\0").decode(errors="replace")
                if not mask & self.IN_ISDIR and wd in self.dirs:
                    out.append((self.dirs[wd], name))
                i += 16 + n

    def close(self):
        os.close(self.fd)


def watched_files(sess, mut):
    """The files of this case that lie outside the model's directory (absolute paths)."""
    out = {os.path.normpath(sess.ctx.case / rel) for rel in mut.files if rel.startswith("..")}
    return out | {os.path.normpath(sess.ctx.cwd / n) for n in mut.cwd_files}


def submit_case(sess, mut, case_id):
    path = write_case(sess.ctx, mut)
    if sess.inotify is not None:
        sess.inotify.events()           # the harness's own writes
    root, case = os.path.realpath(sess.ctx.root), os.path.realpath(sess.ctx.case)
    sess.worker.submit({"op": "case", "id": case_id, "path": str(path), "via": mut.via,
                        "frames_seed": zlib.crc32(case_id.encode()), "watch": [root],
                        "allowed": [os.path.realpath(sess.cache)] + ([case] if mut.via == "path" else [])})


def case_result(sess, mut, timeout=CASE_TIMEOUT):
    reply = sess.worker.result(timeout)
    if sess.inotify is not None:
        watched = watched_files(sess, mut)
        seen = sorted({str(d / n) for d, n in sess.inotify.events() if os.path.normpath(d / n) in watched})
        if seen and reply.get("kind") != "escape":
            reply = dict(reply, kind="escape", outcome=reply.get("kind"),
                         type="opened a file outside the model's directory",
                         message=f"opened {seen} (the case then ended as {reply.get('kind')}: {reply.get('type', '')} "
                                 f"{reply.get('message', '')[:200]})", where="opened " + os.path.basename(seen[0]))
    if reply.get("kind") == "ran" and mut.must_refuse:
        reply = dict(reply, kind="escape", type="external data read from outside the model's directory",
                     message="a model whose external data lies outside its directory loaded",
                     where=f"external data: {mut.what.split(' external, ')[-1].split(':')[0]}")
    return reply


def run_case(sess, mut, case_id, timeout=CASE_TIMEOUT):
    submit_case(sess, mut, case_id)
    return case_result(sess, mut, timeout)


@dataclass
class Result:
    fmt: str
    seed: int
    families: list
    counts: Counter = field(default_factory=Counter)
    by_family: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    seconds: float = 0.0
    warmup_seconds: float = 0.0
    worker_starts: int = 0
    compiles: int = 0
    nonfinite: int = 0

    @property
    def cases(self):
        return sum(self.counts.values())

    @property
    def anything_else(self):
        return sum(self.counts[k] for k in FAILURES)

    def figures(self):
        return {"format": self.fmt, "seed": self.seed, "families": self.families, "cases": self.cases,
                "typed": self.counts["typed"], "ran": self.counts["ran"], "anything_else": self.anything_else,
                **{k: self.counts[k] for k in FAILURES}, "ran_nonfinite": self.nonfinite,
                "by_family": {f: dict(c) for f, c in self.by_family.items()},
                "seconds": round(self.seconds, 1), "warmup_seconds": round(self.warmup_seconds, 1),
                "worker_starts": self.worker_starts, "compiles": self.compiles, "failure_groups": self.groups()}

    def groups(self):
        """Distinct failures: (kind, exception type, where raised), with a count and the first case."""
        out = {}
        for f in self.failures:
            key = _group_key(f)
            g = out.setdefault(key, {"kind": key[0], "type": key[1], "where": key[2], "count": 0, "first": f})
            g["count"] += 1
        return sorted(out.values(), key=lambda g: -g["count"])

    def summary(self):
        c = self.counts
        return (f"{self.fmt}: {self.cases} cases in {self.seconds:.0f} s: typed {c['typed']}, ran {c['ran']}, "
                + ", ".join(f"{k} {c[k]}" for k in FAILURES))

    def report(self, limit=20):
        """The summary and each distinct failure (the first ``limit``; None: all)."""
        lines = [self.summary()]
        groups = self.groups()
        for g in groups[:limit]:
            f = g["first"]
            lines.append(f"\n[{g['kind']}] x{g['count']}  {g['type']}  at {g['where'] or f.get('raised_at', '?')}")
            lines.append(f"  first: {self.fmt} seed {self.seed} case {f['case']} ({f['seed_file']}, {f['family']}): "
                         f"{f['what'][:300]}")
            if f.get("minimal"):
                lines.append(f"  fails alone: {f['minimal'][:300]}")
            lines.append(f"  message: {f.get('message', '')[:300]}")
            lines.append(f"  reproduce: python benchmarks/fuzz.py --format {self.fmt} --seed {self.seed} "
                         f"--case {f['case']}" + (f" --family {','.join(self.families)}" if self.families else ""))
            if f.get("saved"):
                lines.append(f"  saved: {f['saved']}")
        if limit is not None and len(groups) > limit:
            lines.append(f"\n... and {len(groups) - limit} more distinct failures")
        return "\n".join(lines)


def save_failure(sess, mut, reply, record):
    d = sess.failures / f"{mut.fmt}-seed{record['campaign_seed']}-case{record['case']}"
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(sess.ctx.case, d / "case", symlinks=True)
    if sess.ctx.outside.exists():
        shutil.copy(sess.ctx.outside, d / "outside.bin")
    if any(sess.ctx.cwd.iterdir()):
        shutil.copytree(sess.ctx.cwd, d / "cwd")
    (d / "failure.json").write_text(json.dumps({**record, "reply": reply}, indent=1, default=str))
    return str(d)


def warm_paths(fmt, sess):
    if fmt == "onnx":
        return [ONNX_SEEDS[0].path]
    if fmt == "tflite":
        return [TFLITE_SEEDS[0].path, TFLITE_SEEDS[3].path]
    return [sess.generator("ernn").seeds.scratch.parent / sess.generator("ernn").seeds.names[0]]


def _group_key(reply):
    return (reply["kind"], reply.get("type", ""), reply.get("where") or reply.get("raised_at", ""))


def run_campaign(fmt, cases, seed=CI_SEED, families=None, sess=None, start=0, minutes=None, progress=None,
                 timeout=CASE_TIMEOUT, log=None, minimize=True):
    """Cases start .. start+cases-1 of (fmt, seed), restricted to ``families`` when given;
    ``log``: a file to which one JSON line per case is appended (its mutation and outcome).
    ``minimize``: for the first case of each distinct failure made of several mutations, find
    one that fails the same way alone (its record's "minimal")."""
    sess = sess or session()
    gen = sess.generator(fmt)
    res = Result(fmt, seed, sorted(families) if families else [])
    t0 = time.perf_counter()
    starts0, compiles0 = sess.worker.starts, sess.worker.compiles
    firsts = {}                         # a distinct failure -> (its first record, its mutant)
    sess.worker.ensure(warm_paths(fmt, sess))
    # make the first mutants while the worker compiles (or maps) the checked engine
    ahead = [gen.make(seed, start + i, families) for i in range(min(cases, 2000))] \
        if sess.worker._pending_warmup else []
    tw = time.perf_counter()
    sess.worker.wait_warm()
    res.warmup_seconds = time.perf_counter() - tw
    mut = ahead[0] if ahead else gen.make(seed, start, families)
    for n in range(cases):
        i = start + n
        tc = time.perf_counter()
        submit_case(sess, mut, f"{fmt}-{seed}-{i}")
        # the next mutant is made while the worker loads and steps this one
        nxt = None if n + 1 >= cases else ahead[n + 1] if n + 1 < len(ahead) else gen.make(seed, i + 1, families)
        reply = case_result(sess, mut, timeout)
        kind = reply["kind"]
        if kind not in KINDS:
            raise RuntimeError(f"harness: unexpected worker reply {reply}")
        res.counts[kind] += 1
        res.by_family.setdefault(mut.family, Counter())[kind] += 1
        if log is not None:
            with open(log, "a") as f:
                f.write(json.dumps({"format": fmt, "seed": seed, "case": i, "seed_file": mut.seed,
                                    "family": mut.family, "what": mut.what, "kind": kind,
                                    "seconds": round(time.perf_counter() - tc, 4),
                                    **{k: reply.get(k) for k in ("type", "message", "where", "phase", "finite")}})
                        + "\n")
        if kind == "ran" and reply.get("finite") is False:
            res.nonfinite += 1
        if kind in FAILURES:
            record = {"kind": kind, "case": i, "campaign_seed": seed, "seed_file": mut.seed, "family": mut.family,
                      "what": mut.what, "via": mut.via, **{k: reply.get(k) for k in
                                                            ("type", "message", "where", "raised_at", "phase",
                                                             "traceback", "stderr") if reply.get(k)}}
            record["saved"] = save_failure(sess, mut, reply, record)
            res.failures.append(record)
            firsts.setdefault(_group_key(reply), (record, mut))
        if progress and (n + 1) % progress == 0:
            print(f"  {fmt} {n + 1}/{cases}  {dict(res.counts)}  {time.perf_counter() - t0:.0f} s", flush=True)
        if minutes is not None and time.perf_counter() - t0 > 60 * minutes:
            break
        mut = nxt
    if minimize:
        for key, (record, first) in firsts.items():
            for j, (what, single) in enumerate(gen.singles(first)):
                reply = run_case(sess, single, f"{fmt}-{seed}-{record['case']}-only{j}", timeout)
                if _group_key(reply) == key:
                    record["minimal"] = what
                    break
    res.seconds = time.perf_counter() - t0
    res.worker_starts = sess.worker.starts - starts0
    res.compiles = sess.worker.compiles - compiles0
    return res


# ================================================================ seed checks
def seed_outputs(sess, seed):
    """The checked worker's first output for each of the seed's frames, one step per frame."""
    sess.worker.ensure([seed.path])
    out = sess.dir / f"check-{seed.path.stem}.npy"
    f, key = seed.frames
    reply = sess.worker.call({"op": "check", "id": f"check-{seed.name}", "path": str(seed.path), "frames": str(f),
                              "key": key, "out": str(out)}, timeout=STARTUP_TIMEOUT)
    if reply.get("kind") != "ran":
        raise AssertionError(f"{seed.name}: the unmutated seed did not step in the worker: {reply}")
    return np.load(out)


def onnxruntime_outputs(seed, frames):
    """onnxruntime on the seed: the whole sequence at once when its time axis is free, else
    chunks of the length the exporter baked in, carrying state inputs (h0, c0) from the
    matching outputs (hT, cT); a stateless fixed-length file only for its first chunk."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.log_severity_level = 3
    s = ort.InferenceSession(str(seed.path), so, providers=["CPUExecutionProvider"])
    ins, outs = s.get_inputs(), s.get_outputs()
    t_axis = 1 if seed.batch_first else 0
    chunk = next((v.shape[t_axis] for v in (ins[0], outs[0]) if isinstance(v.shape[t_axis], int)), None)
    state = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32) for i in ins[1:]}
    if chunk is not None and not state:
        frames = frames[:chunk]
    chunk = chunk or len(frames)
    ys = []
    for k in range(0, len(frames) - len(frames) % chunk, chunk):
        x = frames[k:k + chunk]
        x = x[None] if seed.batch_first else x[:, None]
        r = s.run(None, {ins[0].name: np.ascontiguousarray(x, np.float32), **state})
        ys.append(r[0][0] if seed.batch_first else r[0][:, 0])
        state = {i.name: v for i, v in zip(ins[1:], r[1:])}
    return np.concatenate(ys)


def litert_outputs(seed, frames):
    """LiteRT on the whole sequence [1, T, F] in one invoke, from a zero state."""
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=str(seed.path), num_threads=1)
    x = next(d for d in it.get_input_details() if len(d["shape"]) == 3)
    it.resize_tensor_input(x["index"], [1, len(frames), frames.shape[1]])
    it.allocate_tensors()
    for d in it.get_input_details():
        if d["index"] != x["index"]:
            it.set_tensor(d["index"], np.zeros(d["shape"], np.float32))
    it.set_tensor(x["index"], np.ascontiguousarray(frames[None], np.float32))
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])[0]


def runtime_tolerance(seed, frames):
    """1e-5 for float files (tests/test_ort_parity.py, tests/test_tflite.py). The dynamic-range
    file: LiteRT quantises x and h on the fly (steps max|x|/127 and 1/127) and edgernn does not,
    so |dy| <= sum_k |W_head[:, k]| * (1/127 + max|x|/127) (tests/test_tflite.py's per-frame
    bound, summed over the hidden units) plus 1e-5."""
    if "dynrange" not in seed.name:
        return 1e-5
    s = tflite_schema()
    m = s.ModelT.InitFromPackedBuf(seed.path.read_bytes(), 0)
    g = m.subgraphs[0]
    fc = next(op for op in g.operators
              if m.operatorCodes[op.opcodeIndex].builtinCode == s.BuiltinOperator.FULLY_CONNECTED)
    t = g.tensors[fc.inputs[1]]
    raw = np.asarray(m.buffers[t.buffer].data, np.uint8).tobytes()
    w = np.frombuffer(raw, np.int8).reshape(t.shape) * np.asarray(t.quantization.scale)[:, None] \
        if t.type == s.TensorType.INT8 else np.frombuffer(raw, np.float32).reshape(t.shape)
    return float(np.abs(w).sum(axis=1).max() * (1 / 127 + np.abs(frames).max() / 127) + 1e-5)


def check_seeds(fmt, sess=None):
    """Each unmutated seed stepped in the checked worker against the format's own runtime and
    against the outputs its exporter recorded: [{seed, frames, runtime, err_runtime, tol, ...}]."""
    sess = sess or session()
    rows = []
    for seed in (ONNX_SEEDS if fmt == "onnx" else TFLITE_SEEDS):
        frames = seed.load_frames().astype(np.float32)
        y = seed_outputs(sess, seed)
        ref = onnxruntime_outputs(seed, frames) if fmt == "onnx" else litert_outputs(seed, frames)
        rec = seed.load_recorded()
        tol = runtime_tolerance(seed, frames)
        err = float(np.abs(y[:len(ref)] - ref).max())
        rows.append({"seed": seed.name, "frames": len(frames), "runtime": "onnxruntime" if fmt == "onnx" else "LiteRT",
                     "runtime_frames": len(ref), "err_runtime": err, "tol": tol, "ok": err <= tol,
                     "err_recorded": float(np.abs(y - rec.reshape(y.shape)).max())})
    return rows


def selftest(fmt="onnx", sess=None):
    sess = sess or session()
    path = (ONNX_SEEDS if fmt == "onnx" else TFLITE_SEEDS)[0].path
    sess.worker.ensure([path])
    return sess.worker.call({"op": "selftest", "id": "selftest", "path": str(path)}, timeout=STARTUP_TIMEOUT)


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        worker_main()
    else:
        sys.exit("usage: python tests/fuzzing.py --worker   (campaigns: python benchmarks/fuzz.py)")
