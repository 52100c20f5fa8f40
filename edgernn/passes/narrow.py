"""Compute only the convolution outputs that something reads.

Exporters often convolve more positions than the model keeps and then slice: torch's STFT
written as a Conv with centre padding computes one frame more than silero-vad's sequence
variant uses (``conv(...)[:, :, 1:]``), each costing a full pass over the 258 x 256 basis.

1. :func:`compose_slices`: ``slice(slice(x))``, where the inner slice feeds only the outer,
   becomes one slice (each axis's ranges composed: ``range(d)[a][b]``).
2. :func:`narrow_convolutions`: a Conv whose every reader is a slice with positive steps
   computes, along each spatial axis, only the positions ``[lo, hi)`` some slice reads. Its
   input is cut to the part those positions read (a slice inserted before it) and its pads
   shrink to what is still needed; each reading slice's starts move down by ``lo``.

Both run on concrete axes only: a slice of the time or batch axis, a negative step, or a
reader that is not a slice leaves the graph as it is. The results are the same numbers in the
same order of operations: each kept output is the same chain of multiply-adds over the same
inputs.
"""
import numpy as np

from .. import ops
from ..ir.dims import is_symbolic
from ..ir.graph import Node, Value


def _ranges(node):
    """Per axis of a slice node's input: the range of indices it reads, or None for an axis it
    leaves whole (symbolic axes); None overall when a step is negative."""
    sl, keep = ops.get("slice").slices(node)
    out = []
    for a, d in enumerate(node.inputs[0].shape):
        if a in keep or is_symbolic(d):
            if sl[a] != slice(None):
                return None                                 # the last-frame slice of time
            out.append(None)
            continue
        r = range(int(d))[sl[a]]
        if r.step < 0:
            return None
        out.append(r)
    return out


def _set_ranges(node, ranges, tag):
    """Rewrite a slice node's starts/ends/axes/steps to read ``ranges`` (None: whole axis)."""
    axes = [a for a, r in enumerate(ranges) if r is not None]
    ints = lambda name, xs: Value(f"{node.name}/{tag}_{name}", shape=(len(xs),), dtype="int64",
                                  const=np.array(xs, np.int64))
    starts = [ranges[a].start for a in axes]
    ends = [ranges[a].start + len(ranges[a]) * ranges[a].step for a in axes]
    node.inputs = [node.inputs[0], ints("starts", starts), ints("ends", ends), ints("axes", axes),
                   ints("steps", [ranges[a].step for a in axes])]


def _exposed(graph):
    return {id(v) for v in graph.outputs} | {id(s.next) for s in graph.states}


def compose_slices(graph):
    consumers, exposed = graph.consumers(), _exposed(graph)
    producers = graph.producers()
    for node in graph.nodes:
        if node.op != "slice":
            continue
        inner = producers.get(id(node.inputs[0]))
        if inner is None or inner.op != "slice" or id(inner.outputs[0]) in exposed \
                or len(consumers.get(id(inner.outputs[0]), [])) != 1:
            continue
        first, second = _ranges(inner), _ranges(node)
        if first is None or second is None:
            continue
        composed = [a if b is None else (b if a is None else a[b.start:b.start + len(b) * b.step:b.step])
                    for a, b in zip(first, second)]
        node.inputs = [inner.inputs[0]] + node.inputs[1:]
        _set_ranges(node, composed, "composed")
    graph.prune()


def narrow_convolutions(graph):
    compose_slices(graph)
    consumers, exposed = graph.consumers(), _exposed(graph)
    conv = ops.get("conv")
    for node in list(graph.nodes):
        y = node.outputs[0] if node.op == "conv" else None
        if y is None or id(y) in exposed or node.attrs.get("packed"):
            continue
        readers = consumers.get(id(y), [])
        ranges = [_ranges(r) if r.op == "slice" and r.inputs[0] is y else None for r in readers]
        if not readers or any(r is None for r in ranges):
            continue
        g = conv.geometry(node)
        x = node.inputs[0]
        if any(is_symbolic(d) for d in x.shape[2:]):
            continue
        kept = []                                           # per spatial axis: (lo, hi)
        for axis, out in enumerate(g.out_sizes, 2):
            read = [r[axis] for r in ranges]
            if any(r is None for r in read) or any(len(r) == 0 for r in read):
                kept.append((0, int(out)))
            else:
                kept.append((min(r.start for r in read), max(r[-1] + 1 for r in read)))
        if all(k == (0, int(o)) for k, o in zip(kept, g.out_sizes)):
            continue
        cut, begin, end = [], [], []
        for (lo, hi), size, k, s, d, pb in zip(kept, g.in_sizes, g.kernel, g.strides, g.dilations, g.pads_begin):
            first = lo * s                                  # padded coordinates
            pad_begin, left = max(0, pb - first), max(0, first - pb)
            need = (hi - lo - 1) * s + d * (k - 1) + 1 - pad_begin
            take = min(need, size - left)
            cut.append(range(left, left + take))
            begin.append(pad_begin)
            end.append(need - take)
        x_cut = Value(f"{x.name}/narrowed", dtype=x.dtype)
        slicer = Node("slice", f"{node.name}/narrow_input", [x], [x_cut], source_op="Slice")
        _set_ranges(slicer, [None, None] + cut, "narrow")
        graph.nodes.insert(graph.nodes.index(node), slicer)
        node.inputs = [x_cut] + node.inputs[1:]
        node.attrs = {**node.attrs, "auto_pad": "NOTSET", "pads": begin + end}
        for reader, r in zip(readers, ranges):
            shifted = list(r)
            for axis, (lo, _) in enumerate(kept, 2):
                shifted[axis] = range(r[axis].start - lo, r[axis].stop - lo, r[axis].step)
            _set_ranges(reader, shifted, "narrowed")
    return graph
