"""Stream convolutions along the time axis one frame at a time (after tract's "pulse").

A sequence graph may convolve along time (a CRNN's Conv2d over time x frequency, a TCN's
dilated causal Conv1d). Offline, output position o of such a convolution reads the input
frames o - pb .. o - pb + w - 1 (w = dilation * (kernel - 1) + 1 frames, pb frames of zero
padding before the sequence, pe after). Streamed, each step sees one new frame, so:

- the convolution runs over a window of the last w frames (:mod:`edgernn.ops.history`
  keeps the w - 1 before the current one as stream state; zeros after a reset, which is the
  offline left padding) and gives one output position per step;
- the output at step t is then offline position t - (w - 1 - pb): it *lags* by
  ``w - 1 - pb`` frames (0 for a causal convolution, pb = w - 1; p for a centred one with
  p frames of padding on each side);
- the offline output has ``pb + pe - (w - 1)`` positions more than its input (the frames a
  stream gives only when told the utterance has ended: ``Stream.flush``).

Each value on a path from the input gets two numbers, its delay D (step t gives position
t - D) and its extra E (offline length T + E):

    convolution or pool       D' = D + w - 1 - pb             E' = E + pb + pe - (w - 1)
    along time (stride 1; a stride-1 ConvTranspose as the Conv it equals)
    Pad along time (zeros)    folded into the convolution or pool it feeds (its pb, pe grow),
                              through layout ops (reshape, transpose, ...) between them
    Slice x[a:-b] along time  D' = D + a                      E' = E - a - b
    anything else             the inputs' (D, E), after aligning them

An op whose inputs differ in D (a residual add around a centred convolution) gets the
less-delayed ones through a delay line (a history window read at its oldest frame); the
outputs are aligned the same way, so the model has one delay ``Model.delay``. Every op whose
input has D > 0 is held back (its program rows gated on the stream's clock,
``ops.row.GATE_CLOCK``) until that input is due, so recurrent state never sees the frames
before the start. ``Stream.flush`` runs D + E more steps with the clock's flush counter
set: each history then takes zeros instead of inputs that lie past the utterance's end
(from flush step D_in + E_in of its input on), which is the offline right padding.

Limits, each a typed error naming the op: a stride over time, pooling or any other op that
mixes frames (refused by shape inference), padding that is not zeros, a pad before the
sequence wider than the kernel (pb > w - 1), outputs that end before the input does (a trim of
the last frames: D + E < 0), or outputs that end at different frames.
"""
import numpy as np

from .. import ops
from ..errors import UnsupportedModelError
from ..ir.dims import concrete, has_time, parts
from ..ir.graph import Node, StateVar, Value
from ..ops.history import CLOCK_STATE, int_attr

INT64 = "int64"


#: ops that only move a frame's values around (per frame): a pending zero Pad passes through
RELABELS = ("identity", "reshape", "flatten", "squeeze", "unsqueeze", "transpose")


def _time_axis(v, node):
    axes = [a for a, d in enumerate(v.shape) if has_time(d)]
    if len(axes) != 1 or parts(v.shape[axes[0]]) != (1, 1, 0):
        raise UnsupportedModelError(f"{node.describe()}: '{v.name}' {list(v.shape)} has no single time axis to "
                                    "keep a history along")
    return axes[0]


def _ints(name, xs):
    return Value(name, shape=(len(xs),), dtype=INT64, const=np.array(xs, np.int64))


class _Pulse:
    def __init__(self, graph):
        self.graph = graph
        self.facts = {id(v): (0, 0) for v in graph.inputs}     # id(value) -> (delay D, extra E)
        self.pending = {}                                      # id(value) -> (axis, pb, pe): a Pad's zeros
        self.clock = Value("clock", shape=(2,))
        self.inserted = []                                     # (before node, [new nodes])
        self.histories = 0

    # ------------------------------------------------------------ building blocks
    def history(self, x, frames, facts, name):
        """window [.., frames, ..] of x's last ``frames`` frames (a new node and state)."""
        axis = _time_axis(x, self.node)
        shape = tuple(frames - 1 if a == axis else d for a, d in enumerate(x.shape))
        buf = Value(f"{name}/history", shape=shape)
        nxt = Value(f"{name}/history_next", shape=shape)
        window = Value(f"{name}/window")
        self.graph.states.append(StateVar(buf.name, buf, nxt, np.zeros([concrete(d) for d in shape], np.float32)))
        self.histories += 1
        node = Node("history", f"{name}/history", [x, buf, self.clock], [window, nxt], source_op="history",
                    attrs={"axis": axis, "frames": frames, "real_in_flush": sum(facts), "due_from": facts[0]})
        return node, window, axis

    def delay_line(self, x, by):
        """x delayed by ``by`` frames: the oldest frame of a window of by + 1."""
        name = f"{x.name}/delayed_{by}"
        hist, window, axis = self.history(x, by + 1, self.facts[id(x)], name)
        first = Value(f"{name}/oldest")
        take = Node("slice", f"{name}/oldest", [window, _ints(f"{name}/s", [0]), _ints(f"{name}/e", [1]),
                                                _ints(f"{name}/a", [axis])], [first], source_op="Slice")
        out = Value(name)
        back = Node("to_time", f"{name}/to_time", [first], [out], attrs={"axis": axis}, source_op="to_time")
        D, E = self.facts[id(x)]
        self.facts[id(out)] = (D + by, E)
        return [hist, take, back], out

    # ------------------------------------------------------------ per op
    def align(self, node):
        """Delay the node's less-delayed inputs to its most-delayed one; the node's (D, E)."""
        timed = [v for v in node.inputs if v is not None and id(v) in self.facts]
        if not timed:
            return None
        D = max(self.facts[id(v)][0] for v in timed)
        extras = set()
        for i, v in enumerate(node.inputs):
            if v is None or id(v) not in self.facts:
                continue
            if id(v) in self.pending:
                raise UnsupportedModelError(f"{node.describe()}: reads '{v.name}', zero-padded along time; edgernn "
                                            "streams such padding in front of a convolution along time only")
            d, e = self.facts[id(v)]
            extras.add(e)
            if d < D:
                new, delayed = self.delay_line(v, D - d)
                self.inserted.append((node, new))
                node.inputs[i] = delayed
        if len(extras) > 1:
            raise UnsupportedModelError(f"{node.describe()}: its inputs along time differ in length offline "
                                        f"(extra frames {sorted(extras)}); they cannot be aligned frame by frame")
        return D, extras.pop()

    def pad(self, node, D, E):
        axis, pb, pe = ops.get("pad").time_pads(node)
        value = ops.get("pad").value(node)
        if float(value) != 0.0:
            raise UnsupportedModelError(f"{node.describe()}: pads the time axis with {value}; a stream's history "
                                        "starts with zeros, so only zero padding along time streams")
        x = node.inputs[0]
        begins, ends = ops.get("pad").begins_ends(node, len(x.shape))
        begins[axis] = ends[axis] = 0
        if any(begins) or any(ends):                           # the other axes keep their padding
            node.inputs = [x, _ints(f"{node.name}/pads_no_time", begins + ends), node.input(2)]
        else:
            node.op, node.inputs = "identity", [x]
        y = node.outputs[0]
        before = self.pending.get(id(x), (axis, 0, 0))
        self.pending[id(y)] = (axis, before[1] + pb, before[2] + pe)
        self.facts[id(y)] = (D, E)

    def turn_over(self, node):
        """A stride-1 ConvTranspose along time becomes the Conv it equals (ConvTranspose.as_conv)."""
        w, attrs = ops.get("conv_transpose").as_conv(node)
        node.op = "conv"
        node.inputs = [node.inputs[0], Value(f"{node.inputs[1].name}/as_conv", shape=w.shape, const=w)] \
            + node.inputs[2:]
        node.attrs = attrs

    def relabel(self, node):
        """A layout op (EXPAND_DIMS around a Keras Conv1D) between a zero Pad and its convolution:
        the padding moves with the time axis."""
        x, y = node.inputs[0], node.outputs[0]
        _, pb, pe = self.pending[id(x)]
        self.pending[id(y)] = (_time_axis(y, node), pb, pe)
        self.facts[id(y)] = self.facts[id(x)]

    def trim(self, node, D, E):
        axis, first, last = ops.get("slice").time_trim(node)
        node.op = "identity"
        node.inputs = node.inputs[:1]
        D, E = D + first, E - first - last
        self.facts[id(node.outputs[0])] = (D, E)

    def window(self, node, axis, D, E):
        """A convolution or pool along time: over a history window (module doc)."""
        x = node.inputs[0]
        g = ops.get(node.op).geometry(node)
        a = axis - 2
        extra_b, extra_e = 0, 0
        if id(x) in self.pending:
            pad_axis, extra_b, extra_e = self.pending[id(x)]
            if pad_axis != axis:
                raise UnsupportedModelError(f"{node.describe()}: its input is zero-padded along time on axis "
                                            f"{pad_axis}, but it convolves along axis {axis}")
        w = g.dilations[a] * (g.kernel[a] - 1) + 1
        if node.op == "pool" and (g.pads_begin[a] or g.pads_end[a]) and \
                (node.attrs.get("mode") == "max" or not node.attrs.get("count_include_pad", 0)):
            raise UnsupportedModelError(
                f"{node.describe()}: pads {g.pads_begin + g.pads_end} along time; a streamed window holds zeros "
                "there, which only an average counting the padding (count_include_pad=1) treats as offline")
        pb, pe = g.pads_begin[a] + extra_b, g.pads_end[a] + extra_e
        if pb > w - 1:
            raise UnsupportedModelError(
                f"{node.describe()}: pads {pb} frames before the sequence, more than its kernel spans ({w} frames); "
                "the first outputs would read padding only and come before any input")
        begins, ends = list(g.pads_begin), list(g.pads_end)
        begins[a] = ends[a] = 0
        attrs = {**node.attrs, "auto_pad": "NOTSET", "pads": begins + ends}
        y = node.outputs[0]
        if w > 1:
            hist, window, _ = self.history(x, w, (D, E), node.name)
            self.inserted.append((node, [hist]))
            x = window
        y_window = Value(f"{y.name}/one_position")
        node.inputs = [x] + node.inputs[1:]
        node.outputs = [y_window]
        node.attrs = attrs
        back = Node("to_time", f"{node.name}/to_time", [y_window], [y], attrs={"axis": axis}, source_op="to_time")
        self.inserted.append(("after", node, [back]))
        self.facts[id(y)] = (D + w - 1 - pb, E + pb + pe - (w - 1))

    # ------------------------------------------------------------ the pass
    def run(self):
        graph = self.graph
        pad, slicer = ops.get("pad"), ops.get("slice")
        for node in list(graph.nodes):
            self.node = node
            if node.op == "conv_transpose" and ops.get(node.op).time_axis(node) is not None:
                self.turn_over(node)
            if node.op in ("conv", "pool") and ops.get(node.op).time_axis(node) is not None:
                self.window(node, ops.get(node.op).time_axis(node), *self.align_single(node))
                continue
            if node.op == "pad" and pad.time_pads(node) is not None:
                self.pad(node, *self.align_single(node))
                continue
            if node.op == "slice" and slicer.time_trim(node) is not None:
                self.trim(node, *self.align_single(node))
                continue
            if node.op in RELABELS and node.inputs[0] is not None and id(node.inputs[0]) in self.pending:
                self.relabel(node)
                continue
            got = self.align(node)
            if got is None:
                continue
            for v in node.outputs:
                if v is not None:
                    self.facts[id(v)] = got
            if got[0] > 0:
                node.attrs["due_from"] = got[0]
        return self.finish()

    def align_single(self, node):
        x = node.inputs[0]
        if id(x) not in self.facts:
            raise UnsupportedModelError(f"{node.describe()}: works along the time axis of a value that does not "
                                        "come from the model's input")
        if x is not None and id(x) in self.pending and node.op not in ("conv", "pool"):
            raise UnsupportedModelError(f"{node.describe()}: reads '{x.name}', zero-padded along time; edgernn "
                                        "streams such padding in front of a convolution along time only")
        D, E = self.facts[id(x)]
        if D > 0:
            node.attrs["due_from"] = D
        return D, E

    def finish(self):
        graph = self.graph
        for item in self.inserted:
            if item[0] == "after":
                _, node, new = item
                at = graph.nodes.index(node) + 1
            else:
                node, new = item
                at = graph.nodes.index(node)
            graph.nodes[at:at] = new
        self.inserted = []
        outs = [v for v in graph.outputs if id(v) in self.facts]
        for v in outs:
            if id(v) in self.pending:
                raise UnsupportedModelError(f"output '{v.name}' is zero-padded along time; edgernn streams such "
                                            "padding in front of a convolution along time only")
        if not self.histories and all(self.facts[id(v)] == (0, 0) for v in outs):
            return graph
        D = max([0] + [self.facts[id(v)][0] for v in outs])
        for i, v in enumerate(graph.outputs):
            if id(v) in self.facts and self.facts[id(v)][0] < D:
                self.node = Node("output", v.name, [v], [])
                new, delayed = self.delay_line(v, D - self.facts[id(v)][0])
                graph.nodes.extend(new)
                delayed.name = v.name
                graph.outputs[i] = delayed
        ends = {self.facts[id(v)][1] for v in graph.outputs if id(v) in self.facts} or {0}
        if len(ends) > 1:
            raise UnsupportedModelError(f"the outputs along time end at different frames (extra frames "
                                        f"{sorted(ends)}); a stream gives all of its outputs at every step")
        if D + min(ends) < 0:
            raise UnsupportedModelError(
                f"the outputs along time end {-(D + min(ends))} frame(s) before the input does (a trim of the last "
                "frames); a stream cannot know in advance where an utterance ends")
        cap = max([D] + [n.attrs.get("due_from", 0) for n in graph.nodes]) + 1
        tick = Value("clock_next", shape=(2,))
        graph.nodes.insert(0, Node("clock", "clock", [self.clock], [tick], source_op="clock",
                                   attrs={"cap": cap, "delay": D, "flush_steps": D + ends.pop()}))
        graph.states.append(StateVar(CLOCK_STATE, self.clock, tick, np.array([0, -1], np.float32)))
        return graph


def stream_time_ops(graph):
    """Rewrite a sequence graph's convolutions, zero padding and trims along time for streaming
    (module doc). A graph without any leaves unchanged."""
    if graph.meta.get("mode") != "sequence":
        return graph
    return _Pulse(graph).run()


MAX_FRAMES = 1 << 16        # a delay or flush longer than this is a forged file, not a model


def timing(graph):
    """(delay, flush_steps) of a prepared graph: from its clock node (checked: a file could
    hold anything there), or (0, 0) without one."""
    clocks = [n for n in graph.nodes if n.op == "clock"]
    states = [s for s in graph.states if s.name == CLOCK_STATE]
    if not clocks and not states:
        return 0, 0
    if len(clocks) != 1 or len(states) != 1 or states[0].value.size != 2 or clocks[0].inputs[0] is not states[0].value:
        raise UnsupportedModelError("the graph's clock is malformed: it needs one clock node reading the one "
                                    f"'{CLOCK_STATE}' state of 2 values")
    delay, flush = int_attr(clocks[0], "delay", 0, MAX_FRAMES), int_attr(clocks[0], "flush_steps", 0, MAX_FRAMES)
    int_attr(clocks[0], "cap", delay + 1, 2 ** 24)
    return delay, flush
