"""The .ernn file: edgernn's compact model file (the spec is docs/format.md).

    header      48 bytes: magic "ERNN", version, counts, data offset and size, two CRC-32s
    metadata    typed key/value pairs (GGUF-style type ids); ``model.graph`` holds the IR
    tensors     name, dims, type (F32, F16, I8), offset into the data section
    data        64-byte aligned tensors, little-endian, exactly as the kernels read them

Reading maps the file (copy-on-write, so processes share its pages) and hands the engine the
data section as its constant arena: float32 and int8 tensors are never copied. Every field is
checked before use; anything wrong raises :class:`ModelFormatError`.
"""
import json
import mmap
import os
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import EdgeRNNError, ModelFormatError
from ..memory import ALIGN, aligned_bytes
from ..plan import ConstArena, kernel_constants
from .ernn_graph import MAX_DIM, MAX_ELEMENTS, MAX_RANK, doc_to_graph, graph_to_doc

MAGIC = b"ERNN"
VERSION = 1
HEADER = struct.Struct("<4sIQQQQII")     # magic, version, n_kv, n_tensors, data_offset, data_size, meta_crc, data_crc

# value types (the GGUF numbering)
T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = 4, 5, 6, 7, 8, 9, 10, 11, 12
SCALARS = {T_UINT32: "<I", T_INT32: "<i", T_FLOAT32: "<f", T_BOOL: "<?", T_UINT64: "<Q", T_INT64: "<q", T_FLOAT64: "<d"}
# tensor types (the ggml numbering)
TENSOR_TYPES = {0: np.dtype("<f4"), 1: np.dtype("<f2"), 24: np.dtype("i1")}
TYPE_IDS = {np.dtype("float32"): 0, np.dtype("float16"): 1, np.dtype("int8"): 24}
MAX_STRING = 1 << 26
MAX_COUNT = 1 << 20


# ------------------------------------------------------------------ writing
def _string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _value(x):
    """(type id, bytes) of a metadata value."""
    if isinstance(x, str):
        return T_STRING, _string(x)
    if isinstance(x, (bool, np.bool_)):
        return T_BOOL, struct.pack("<?", bool(x))
    if isinstance(x, (int, np.integer)):
        return T_INT64, struct.pack("<q", int(x))
    if isinstance(x, (float, np.floating)):
        return T_FLOAT64, struct.pack("<d", float(x))
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        a = np.ascontiguousarray(x, "<f4").ravel()
        return T_ARRAY, struct.pack("<IQ", T_FLOAT32, a.size) + a.tobytes()
    if isinstance(x, (list, tuple)):
        items = [_value(y) for y in x]
        types = {t for t, _ in items}
        if len(types) > 1 or T_ARRAY in types:
            raise EdgeRNNError("a metadata list must hold values of one plain type")
        return T_ARRAY, struct.pack("<IQ", types.pop() if types else T_STRING, len(items)) + b"".join(b for _, b in items)
    raise EdgeRNNError(f"metadata value {x!r} ({type(x).__name__}) has no .ernn type")


def write_ernn(path, graph, metadata, float16=False):
    """Write a prepared (packed) graph and its metadata. float16: store float weight matrices
    as F16 (half the bytes; decoded to float32 at load)."""
    names, taken, tensors = {}, set(), []       # id(array) -> name; names used; (name, array)

    def tensor_name(a, base):
        if a.dtype.kind not in "f" and a.dtype != np.int8:
            return None
        if id(a) not in names:
            name, k = base, 1
            while name in taken:
                name, k = f"{base}#{k}", k + 1
            stored = a.astype(np.float16) if float16 and a.dtype.kind == "f" and a.ndim >= 2 else a
            if stored.dtype.kind == "f" and stored.dtype != np.float16:
                stored = stored.astype(np.float32)
            names[id(a)] = name
            taken.add(name)
            tensors.append((name, np.ascontiguousarray(stored)))
        return names[id(a)]

    doc = graph_to_doc(graph, tensor_name)
    kv = dict(metadata)
    kv["model.graph"] = json.dumps(doc, separators=(",", ":"))
    kv_bytes = b"".join(_string(k) + struct.pack("<I", t) + b for k, (t, b) in ((k, _value(v)) for k, v in kv.items()))
    infos, data, off = [], bytearray(), 0
    for name, a in tensors:
        infos.append(_string(name) + struct.pack("<I", a.ndim) + struct.pack(f"<{a.ndim}Q", *a.shape)
                     + struct.pack("<IQ", TYPE_IDS[a.dtype], off))
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        data += raw + bytes((-len(raw)) % ALIGN)
        off = len(data)
    meta = kv_bytes + b"".join(infos)
    data_offset = -(-(HEADER.size + len(meta)) // ALIGN) * ALIGN
    meta += bytes(data_offset - HEADER.size - len(meta))
    header = HEADER.pack(MAGIC, VERSION, len(kv), len(tensors), data_offset, len(data),
                         zlib.crc32(meta), zlib.crc32(data))
    with open(path, "wb") as f:
        f.write(header + meta + bytes(data))
    return data_offset + len(data)


# ------------------------------------------------------------------ reading
@dataclass
class TensorEntry:
    name: str
    dtype: str
    shape: tuple
    offset: int
    nbytes: int


@dataclass
class ErnnFile:
    """What :func:`read_ernn` found: the graph, its constant arena and the file's facts."""
    graph: object
    arena: ConstArena
    metadata: dict
    tensors: list
    version: int
    file_bytes: int
    checksum: str                     # "ok" or "not checked"
    zero_copy: bool = field(default=True)


class _Cursor:
    def __init__(self, buf, pos, end):
        self.buf, self.pos, self.end = buf, pos, end

    def take(self, n, what):
        if n < 0 or self.pos + n > self.end:
            raise ModelFormatError(f"the .ernn file is truncated or corrupt: {what} runs past the metadata section")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt, what):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what):
        n = self.unpack("<Q", what)
        if n > MAX_STRING:
            raise ModelFormatError(f"the .ernn file is corrupt: {what} claims {n} bytes")
        try:
            return bytes(self.take(n, what)).decode("utf-8")
        except UnicodeDecodeError:
            raise ModelFormatError(f"the .ernn file is corrupt: {what} is not UTF-8") from None

    def value(self, t, what, in_array=False):
        if t in SCALARS:
            return self.unpack(SCALARS[t], what)
        if t == T_STRING:
            return self.string(what)
        if t == T_ARRAY and not in_array:
            et, n = self.unpack("<I", what), self.unpack("<Q", what)
            if et == T_FLOAT32:
                return np.frombuffer(bytes(self.take(4 * n, what)), "<f4").astype(np.float32)
            if n > MAX_COUNT or (et in SCALARS and n * struct.calcsize(SCALARS[et]) > self.end - self.pos):
                raise ModelFormatError(f"the .ernn file is corrupt: {what} claims {n} elements")
            return [self.value(et, what, True) for _ in range(n)]
        raise ModelFormatError(f"the .ernn file is corrupt: {what} has unknown value type {t}")


def _corrupt(what):
    return ModelFormatError(f"the .ernn file is corrupt: {what}; re-create it with `edgernn convert`")


def read_ernn(path, verify=True):
    """Map and check an .ernn file (a path, or the file's bytes, which are copied once).
    verify=False skips the data checksum (the metadata's is always checked)."""
    in_memory = isinstance(path, (bytes, bytearray, memoryview))
    name = "<.ernn bytes>" if in_memory else repr(os.fspath(path))
    size = len(path) if in_memory else os.path.getsize(path)
    if size < HEADER.size:
        raise ModelFormatError(f"{name} is too short ({size} bytes) to be an .ernn file")
    if in_memory:                           # one aligned, writable copy, like the copy-on-write map
        mm = aligned_bytes(size, zero=False)
        mm[:] = np.frombuffer(path, np.uint8)
    else:
        with open(path, "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    magic, version, n_kv, n_tensors, data_offset, data_size, meta_crc, data_crc = HEADER.unpack(mm[:HEADER.size])
    if magic != MAGIC:
        raise ModelFormatError(f"{name} is not an .ernn file (magic {bytes(magic)!r}, expected {MAGIC!r}); it is "
                               "damaged or not an .ernn file: re-create it with `edgernn convert`")
    if version != VERSION:
        raise ModelFormatError(f"{name} is .ernn version {version}; this edgernn reads version "
                               f"{VERSION}: convert the model again with this edgernn")
    if data_offset % ALIGN or data_offset < HEADER.size or data_size % ALIGN or data_offset + data_size != size:
        raise _corrupt(f"data section {data_offset}+{data_size} does not fit the file's {size} bytes")
    view = memoryview(mm)           # slicing a memoryview copies nothing; slicing the mmap would
    if zlib.crc32(view[HEADER.size:data_offset]) != meta_crc:
        raise _corrupt("the metadata checksum does not match")
    if verify and zlib.crc32(view[data_offset:]) != data_crc:
        raise _corrupt("the data checksum does not match (pass verify=False only if you trust the file)")
    cur = _Cursor(view, HEADER.size, data_offset)
    if n_kv > MAX_COUNT or n_tensors > MAX_COUNT:
        raise _corrupt(f"it claims {n_kv} metadata keys and {n_tensors} tensors")
    metadata = {}
    for k in range(n_kv):
        key = cur.string(f"metadata key {k}")
        metadata[key] = cur.value(cur.unpack("<I", f"metadata {key!r}"), f"metadata {key!r}")
    entries, arrays = [], {}
    buffer = np.frombuffer(mm, np.uint8, count=data_size, offset=data_offset)
    offsets, zero_copy = {}, True
    for k in range(n_tensors):
        name = cur.string(f"tensor {k} name")
        rank = cur.unpack("<I", f"tensor {name!r} rank")
        if rank > MAX_RANK:
            raise _corrupt(f"tensor {name!r} has rank {rank}")
        shape = tuple(cur.unpack("<Q", f"tensor {name!r} dims") for _ in range(rank))
        type_id, off = cur.unpack("<I", f"tensor {name!r} type"), cur.unpack("<Q", f"tensor {name!r} offset")
        if type_id not in TENSOR_TYPES:
            raise _corrupt(f"tensor {name!r} has unknown type id {type_id}")
        if any(d > MAX_DIM for d in shape) or int(np.prod(shape, dtype=object)) > MAX_ELEMENTS:
            raise _corrupt(f"tensor {name!r} claims shape {shape}")
        dt = TENSOR_TYPES[type_id]
        count = int(np.prod(shape, dtype=np.int64))
        nbytes = count * dt.itemsize
        if off % ALIGN or off + nbytes > data_size or name in arrays:
            raise _corrupt(f"tensor {name!r} at {off}+{nbytes} lies outside the data section or repeats a name")
        a = buffer[off:off + nbytes].view(dt).reshape(shape)
        if dt == np.float16 or not np.little_endian:
            a, zero_copy = a.astype(np.float32 if dt == np.float16 else dt.newbyteorder("=")), False
        else:
            offsets[id(a)] = off
        arrays[name] = a
        entries.append(TensorEntry(name, str(dt.newbyteorder("=")), shape, off, nbytes))
    text = metadata.pop("model.graph", None)
    if not isinstance(text, str):
        raise _corrupt("it has no model.graph")
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise _corrupt(f"model.graph is not JSON ({e})") from None
    graph = doc_to_graph(doc, arrays)
    needed = kernel_constants(graph)
    if zero_copy and all(id(a) in offsets for a in needed):
        arena = ConstArena(buffer, offsets, keep=list(arrays.values()))
    else:
        arena, zero_copy = ConstArena.build(needed), False
    return ErnnFile(graph, arena, metadata, entries, version, size, "ok" if verify else "not checked", zero_copy)
