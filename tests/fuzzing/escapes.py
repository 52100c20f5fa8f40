"""Escapes: ONNX external data placed beside a model or outside its directory (where loading
it would mean reading outside), and how a read outside is caught: the worker's audit hook
(opened_outside), inotify on the planted files (Inotify), and a model that must be refused
loading anyway (judge_escapes)."""
import os
import struct
import sys
from pathlib import Path

import numpy as np

from .mutants import pick

#: paths outside any model's directory that a mutant's external data may name: an open of any
#: of them (or of a file under a watched root but outside the model's directory) is an escape
FORBIDDEN = ("/etc/passwd", "/proc/self/environ", "/dev/zero")


def mutate_onnx_external(seed, rng, ctx):
    """Move one float initializer's data into an external file, at a location chosen to be
    legitimate (beside the model) or not (outside its directory, absolute, missing, forged
    offsets, a symlink out, a model given as bytes)."""
    import onnx
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
        ext(pick(rng, ["../../../../../../../../etc/passwd", *FORBIDDEN]))
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


def opened_outside(opened, watch, allowed):
    """Opened files that lie under a watched root (the session's directory) but not under an
    allowed one (the model's directory), or that are among FORBIDDEN."""
    out = []
    for p in opened:
        inside = any(p == a or p.startswith(a + os.sep) for a in allowed)
        watched = any(p == w or p.startswith(w + os.sep) for w in watch)
        if (watched and not inside) or p in {os.path.realpath(f) for f in FORBIDDEN}:
            out.append(p)
    return sorted(set(out))


def escape_reply(reply, opened):
    """The case's reply turned into an escape: it opened these files outside its model's directory."""
    return dict(reply, kind="escape", outcome=reply.get("kind"), type="opened a file outside the model's directory",
                message=f"opened {opened} (the case then ended as {reply.get('kind')}: {reply.get('type', '')} "
                        f"{reply.get('message', '')[:200]})", where="opened " + os.path.basename(opened[0]))


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


def watched_files(ctx, mut):
    """The files of this case that lie outside the model's directory (absolute paths)."""
    out = {os.path.normpath(ctx.case / rel) for rel in mut.files if rel.startswith("..")}
    return out | {os.path.normpath(ctx.cwd / n) for n in mut.cwd_files}


def judge_escapes(reply, mut, ctx, inotify):
    """The worker's reply to case ``mut``, or an escape when inotify saw one of the case's files
    outside the model's directory opened, or when a model that must be refused loaded."""
    if inotify is not None:
        watched = watched_files(ctx, mut)
        seen = sorted({str(d / n) for d, n in inotify.events() if os.path.normpath(d / n) in watched})
        if seen and reply.get("kind") != "escape":
            reply = escape_reply(reply, seen)
    if reply.get("kind") == "ran" and mut.must_refuse:
        reply = dict(reply, kind="escape", type="external data read from outside the model's directory",
                     message="a model whose external data lies outside its directory loaded",
                     where=f"external data: {mut.what.split(' external, ')[-1].split(':')[0]}")
    return reply
