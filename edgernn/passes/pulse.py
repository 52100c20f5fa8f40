"""Stream convolutions along the time axis one frame at a time (after tract's "pulse").

A sequence graph may convolve or pool along time (a CRNN's Conv2d over time x frequency, a
TCN's dilated causal Conv1d, a strided Conv1d or an AvgPool1d that lowers the frame rate).
Offline, output position o of such an op reads the input positions o s - pb .. o s - pb + w - 1
(w = dilation (kernel - 1) + 1, stride s, pb positions of zero padding before the sequence,
pe after). Streamed, one frame arrives per step, so:

- the op runs over a window of its input's last w positions (:mod:`edgernn.ops.history`
  keeps the w - 1 before the current one as stream state; zeros after a reset, which is the
  offline left padding) and gives one output position when one is due;
- position k of a value arrives at step ``D + P k``: its *delay* D (look-ahead: 0 for a
  causal conv, p for one padded by p on each side) and *period* P (1, or the product of the
  strides along its path: ``Model.output_stride``);
- its offline length is a function of the utterance's length T, built along its path (the
  *chain*: each window op maps L to floor((L + pb + pe - w) / s) + 1, a trim to L - a - b).

Per op, with the input's (D, P, chain):

    conv or pool along time   D' = D + P (w - 1 - pb)     P' = P s     chain + window(pb, pe, w, s)
    (a stride-1 ConvTranspose as the Conv it equals)
    Pad along time (zeros)    folded into the op it feeds (its pb, pe grow), through layout ops
    Slice x[a:-b] along time  D' = D + P a                P' = P       chain + trim(a, b)
    anything else             the inputs' (D, P, chain), after aligning them

An op whose inputs differ in D gets the less-delayed ones through a delay line (a history
window read at its oldest position), as do the outputs, so the model has one ``Model.delay``;
inputs must share P, differ in D by a multiple of it, and have the same offline length, or
the pass refuses them ("cannot be aligned"). Every op whose input is not due at a step is held
back (its program rows are gated on the stream's clock, ``ops.row.GATE_CLOCK``): before D,
and between the positions of a strided value, so recurrent state sees exactly the offline
sequence. ``Stream.flush`` computes from T (the clock's count and phase) how many more steps
the last outputs need and from which flush step each history's input lies past the end, and
runs them with zeros: each history then takes zeros, which is the offline right padding.

Limits, each a typed error naming the op: pooling or any other op that mixes frames (refused
by shape inference), padding that is not zeros, a pad before the sequence wider than the
kernel (pb > w - 1), max or average pools excluding the padding with pads along time, outputs
that end before the input does (a trim of the last frames), and values that cannot be aligned.
"""
import math

import numpy as np

from .. import ops
from ..errors import UnsupportedModelError
from ..ir.dims import concrete, has_time, parts
from ..ir.graph import Node, StateVar, Value
from ..ops.history import CLOCK_SIZE, CLOCK_STATE, NEVER, int_attr

INT64 = "int64"
MAX_FRAMES = 1 << 16        # a delay, period or chain step beyond this is a forged file, not a model
ALIGN_CHECK = 256           # utterance lengths on which two chains must agree to be aligned

#: ops that only move a frame's values around (per frame): a pending zero Pad passes through
RELABELS = ("identity", "reshape", "flatten", "squeeze", "unsqueeze", "transpose")


def length(chain, T):
    """The offline length of a value whose path from the input is ``chain``, for T frames."""
    L = T
    for step in chain:
        if step[0] == "window":
            _, pb, pe, w, s = step
            L = (L + pb + pe - w) // s + 1 if L + pb + pe >= w else 0
        else:
            _, a, b = step
            L = max(0, L - a - b)
    return L


def _time_axis(v, node):
    axes = [a for a, d in enumerate(v.shape) if has_time(d)]
    if len(axes) != 1 or parts(v.shape[axes[0]]) != (1, 1, 0):
        raise UnsupportedModelError(f"{node.describe()}: '{v.name}' {list(v.shape)} has no single time axis to "
                                    "keep a history along")
    return axes[0]


def _ints(name, xs):
    return Value(name, shape=(len(xs),), dtype=INT64, const=np.array(xs, np.int64))


def _gate(node, D, P):
    if D > 0:
        node.attrs["due_from"] = D
    if P > 1:
        node.attrs["period"] = P


class _Pulse:
    def __init__(self, graph):
        self.graph = graph
        self.facts = {id(v): (0, 1, ()) for v in graph.inputs}    # id(value) -> (delay D, period P, chain)
        self.pending = {}                                         # id(value) -> (axis, pb, pe): a Pad's zeros
        self.clock = Value(CLOCK_STATE, shape=(CLOCK_SIZE,))
        self.inserted = []                                        # (before node, [new nodes])
        self.histories = []

    # ------------------------------------------------------------ building blocks
    def history(self, x, frames, name):
        """window [.., frames, ..] of x's last ``frames`` positions (a new node and its states)."""
        axis = _time_axis(x, self.node)
        shape = tuple(frames - 1 if a == axis else d for a, d in enumerate(x.shape))
        buf = Value(f"{name}/history", shape=shape)
        nxt = Value(f"{name}/history_next", shape=shape)
        limit = Value(f"{name}/flush_limit", shape=(1,))
        window = Value(f"{name}/window")
        self.graph.states.append(StateVar(buf.name, buf, nxt, np.zeros([concrete(d) for d in shape], np.float32)))
        self.graph.states.append(StateVar(limit.name, limit, limit, np.full(1, NEVER, np.float32)))
        D, P, chain = self.facts[id(x)]
        node = Node("history", f"{name}/history", [x, buf, self.clock, limit], [window, nxt], source_op="history",
                    attrs={"axis": axis, "frames": frames, "in_delay": D, "in_period": P,
                           "in_chain": [list(c) for c in chain]})
        _gate(node, D, P)
        self.histories.append(node)
        return node, window, axis

    def delay_line(self, x, by):
        """x delayed by ``by`` of its positions: the oldest of a window of by + 1."""
        name = f"{x.name}/delayed_{by}"
        hist, window, axis = self.history(x, by + 1, name)
        first = Value(f"{name}/oldest")
        take = Node("slice", f"{name}/oldest", [window, _ints(f"{name}/s", [0]), _ints(f"{name}/e", [1]),
                                                _ints(f"{name}/a", [axis])], [first], source_op="Slice")
        out = Value(name)
        back = Node("to_time", f"{name}/to_time", [first], [out], attrs={"axis": axis}, source_op="to_time")
        D, P, chain = self.facts[id(x)]
        _gate(take, D, P)
        self.facts[id(out)] = (D + by * P, P, chain)
        return [hist, take, back], out

    def aligned(self, values, where):
        """(D, P, chain) that ``values`` share once the less-delayed ones are delayed: [(index,
        new nodes, delayed value)] for those, or an UnsupportedModelError saying why not."""
        facts = [self.facts[id(v)] for v in values]
        periods = {P for _, P, _ in facts}
        if len(periods) > 1:
            raise UnsupportedModelError(f"{where}: its inputs along time come at different rates (every "
                                        f"{sorted(periods)} frames); they cannot be aligned frame by frame")
        P = periods.pop()
        D = max(d for d, _, _ in facts)
        chain = facts[0][2]
        for d, _, c in facts:
            if (D - d) % P:
                raise UnsupportedModelError(f"{where}: its inputs along time are {D - d} frames apart, not a "
                                            f"multiple of their stride {P}; they cannot be aligned")
            if c != chain and any(length(c, T) != length(chain, T) for T in range(1, ALIGN_CHECK)):
                raise UnsupportedModelError(f"{where}: its inputs along time differ in length offline; they "
                                            "cannot be aligned frame by frame")
        moves = []
        for i, (v, (d, _, _)) in enumerate(zip(values, facts)):
            if d < D:
                new, delayed = self.delay_line(v, (D - d) // P)
                moves.append((i, new, delayed))
        return (D, P, chain), moves

    # ------------------------------------------------------------ per op
    def align(self, node):
        """Delay the node's less-delayed inputs to its most-delayed one; the node's facts."""
        slots = [i for i, v in enumerate(node.inputs) if v is not None and id(v) in self.facts]
        if not slots:
            return None
        for i in slots:
            if id(node.inputs[i]) in self.pending:
                raise UnsupportedModelError(f"{node.describe()}: reads '{node.inputs[i].name}', zero-padded along "
                                            "time; edgernn streams such padding in front of a convolution along "
                                            "time only")
        facts, moves = self.aligned([node.inputs[i] for i in slots], node.describe())
        for k, new, delayed in moves:
            self.inserted.append((node, new))
            node.inputs[slots[k]] = delayed
        return facts

    def pad(self, node, facts):
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
        self.facts[id(y)] = facts

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

    def trim(self, node, facts):
        axis, first, last = ops.get("slice").time_trim(node)
        node.op = "identity"
        node.inputs = node.inputs[:1]
        D, P, chain = facts
        self.facts[id(node.outputs[0])] = (D + first * P, P, chain + (("trim", first, last),))

    def window(self, node, axis, facts):
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
        w, s = g.dilations[a] * (g.kernel[a] - 1) + 1, g.strides[a]
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
        begins, ends, strides = list(g.pads_begin), list(g.pads_end), list(g.strides)
        begins[a] = ends[a] = 0
        strides[a] = 1
        attrs = {**node.attrs, "auto_pad": "NOTSET", "pads": begins + ends, "strides": strides}
        y = node.outputs[0]
        node.attrs = attrs
        if w > 1:
            hist, window, _ = self.history(x, w, node.name)
            self.inserted.append((node, [hist]))
            y_window = Value(f"{y.name}/one_position")
            node.inputs = [window] + node.inputs[1:]
            node.outputs = [y_window]
            back = Node("to_time", f"{node.name}/to_time", [y_window], [y], attrs={"axis": axis},
                        source_op="to_time")
            self.inserted.append(("after", node, [back]))
        D, P, chain = facts
        out = (D + P * (w - 1 - pb), P * s, chain + (("window", pb, pe, w, s),))
        node.attrs.pop("due_from", None)
        node.attrs.pop("period", None)
        _gate(node, out[0], out[1])
        self.facts[id(y)] = out

    # ------------------------------------------------------------ the pass
    def run(self):
        graph = self.graph
        pad, slicer = ops.get("pad"), ops.get("slice")
        for node in list(graph.nodes):
            self.node = node
            if node.op == "conv_transpose" and ops.get(node.op).time_axis(node) is not None:
                self.turn_over(node)
            if node.op in ("conv", "pool") and ops.get(node.op).time_axis(node) is not None:
                self.window(node, ops.get(node.op).time_axis(node), self.single(node))
                continue
            if node.op == "pad" and pad.time_pads(node) is not None:
                self.pad(node, self.single(node))
                continue
            if node.op == "slice" and slicer.time_trim(node) is not None:
                self.trim(node, self.single(node))
                continue
            if node.op in RELABELS and node.inputs[0] is not None and id(node.inputs[0]) in self.pending:
                self.relabel(node)
                continue
            facts = self.align(node)
            if facts is None:
                continue
            for v in node.outputs:
                if v is not None:
                    self.facts[id(v)] = facts
            _gate(node, facts[0], facts[1])
        return self.finish()

    def single(self, node):
        """The facts of a node that works along time on its first input (gated by them)."""
        x = node.inputs[0]
        if id(x) not in self.facts:
            raise UnsupportedModelError(f"{node.describe()}: works along the time axis of a value that does not "
                                        "come from the model's input")
        if id(x) in self.pending and node.op not in ("conv", "pool"):
            raise UnsupportedModelError(f"{node.describe()}: reads '{x.name}', zero-padded along time; edgernn "
                                        "streams such padding in front of a convolution along time only")
        facts = self.facts[id(x)]
        _gate(node, facts[0], facts[1])
        return facts

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
        slots = [i for i, v in enumerate(graph.outputs) if id(v) in self.facts]
        for i in slots:
            if id(graph.outputs[i]) in self.pending:
                raise UnsupportedModelError(f"output '{graph.outputs[i].name}' is zero-padded along time; edgernn "
                                            "streams such padding in front of a convolution along time only")
        if not self.histories and all(self.facts[id(graph.outputs[i])] == (0, 1, ()) for i in slots):
            return graph
        self.node = Node("output", "the outputs", [], [])
        (D, P, chain), moves = self.aligned([graph.outputs[i] for i in slots], "the model's outputs") \
            if slots else ((0, 1, ()), [])
        for k, new, delayed in moves:
            graph.nodes.extend(new)
            delayed.name = graph.outputs[slots[k]].name
            graph.outputs[slots[k]] = delayed
        for c, d, p, what in [(chain, D, P, "the outputs")] + [
                (tuple(map(tuple, h.attrs["in_chain"])), h.attrs["in_delay"], h.attrs["in_period"], h.describe())
                for h in self.histories]:
            if any(_emitted(d, p, T) > length(c, T) for T in range(1, ALIGN_CHECK)):
                raise UnsupportedModelError(
                    f"{what}: along time the offline sequence ends before the stream's does (a trim of its last "
                    "frames); a stream cannot know in advance where an utterance ends")
        dues = [n.attrs.get("due_from", 0) for n in graph.nodes]
        period = math.lcm(*([P] + [n.attrs.get("period", 1) for n in graph.nodes]))
        if period > MAX_FRAMES:
            raise UnsupportedModelError(f"the strides along time multiply to a period of {period} frames; at most "
                                        f"{MAX_FRAMES} are streamed")
        reach = sum(sum(step[1:]) for h in self.histories for step in h.attrs["in_chain"]) \
            + sum(sum(step[1:]) for step in chain) + sum(h.attrs["frames"] for h in self.histories)
        cap = max(dues + [D]) + 1 + period * (2 + reach)        # past it, lengths grow by one per period
        if cap > 2 ** 24:
            raise UnsupportedModelError(f"the model's delays and strides along time span {cap} frames; at most "
                                        f"{2 ** 24} are streamed")
        tick = Value("clock_next", shape=(CLOCK_SIZE,))
        graph.nodes.insert(0, Node("clock", "clock", [self.clock], [tick], source_op="clock",
                                   attrs={"cap": cap, "cycle": period, "delay": D, "stride": P,
                                          "out_chain": [list(c) for c in chain]}))
        graph.states.append(StateVar(CLOCK_STATE, self.clock, tick, np.array([0, 0, -1], np.float32)))
        return graph


def stream_time_ops(graph):
    """Rewrite a sequence graph's convolutions, pools, zero padding and trims along time for
    streaming (module doc). A graph without any leaves unchanged."""
    if graph.meta.get("mode") != "sequence":
        return graph
    return _Pulse(graph).run()


def _emitted(D, P, T):
    """Positions a value with delay D and period P has given after T steps."""
    return (T - 1 - D) // P + 1 if T - 1 >= D else 0


def _chain(node, name):
    """A chain attribute, checked: [["window", pb, pe, w, s] | ["trim", a, b], ...]."""
    chain = node.attrs.get(name)
    ok = isinstance(chain, list) and len(chain) <= 64 and all(
        isinstance(c, list) and c and (c[0], len(c)) in (("window", 5), ("trim", 3))
        and all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= MAX_FRAMES for x in c[1:])
        and (c[0] != "window" or (c[3] >= 1 and c[4] >= 1)) for c in chain)
    if not ok:
        raise UnsupportedModelError(f"{node.describe()}: attribute {name} is not a chain of window and trim steps")
    return tuple(tuple(c) for c in chain)


class Timing:
    """What a prepared graph's clock says: ``delay`` (frames an output lags), ``stride``
    (frames per output), and how to end an utterance (:meth:`flush_plan`)."""

    def __init__(self, graph):
        clocks = [n for n in graph.nodes if n.op == "clock"]
        states = [s for s in graph.states if s.name == CLOCK_STATE]
        self.delay, self.stride, self.period, self.cap, self.chain, self.histories = 0, 1, 1, 1, (), []
        if not clocks and not states:
            return
        if len(clocks) != 1 or len(states) != 1 or states[0].value.size != CLOCK_SIZE \
                or clocks[0].inputs[0] is not states[0].value:
            raise UnsupportedModelError("the graph's clock is malformed: it needs one clock node reading the one "
                                        f"'{CLOCK_STATE}' state of {CLOCK_SIZE} values")
        c = clocks[0]
        self.period = int_attr(c, "cycle", 1, MAX_FRAMES)
        self.delay, self.stride = int_attr(c, "delay", 0, 2 ** 24), int_attr(c, "stride", 1, self.period)
        self.cap = int_attr(c, "cap", self.delay + 1, 2 ** 24)
        if self.period % self.stride:
            raise UnsupportedModelError(f"{c.describe()}: cycle {self.period} is not a multiple of stride {self.stride}")
        self.chain = _chain(c, "out_chain")
        state_names = {id(s.value): s.name for s in graph.states}
        for h in graph.nodes:
            if h.op == "history":
                limit = state_names.get(id(h.inputs[3])) if len(h.inputs) == 4 else None
                if limit is None:
                    raise UnsupportedModelError(f"{h.describe()}: its flush limit is not one of the graph's states; "
                                                "the graph is malformed")
                self.histories.append((limit, int_attr(h, "in_delay", 0, 2 ** 24),
                                       int_attr(h, "in_period", 1, self.period), _chain(h, "in_chain")))

    def frames_stepped(self, count, phase):
        """T, or one that every length and flush here treats alike: the clock counts up to
        ``cap`` only, past which lengths grow by one per period, and the phase is T mod period."""
        count, phase = int(count), int(phase)
        if count < self.cap:
            return count
        return self.cap + (phase - self.cap) % self.period

    def _steps(self, T):
        last = length(self.chain, T)
        return max(0, self.delay + self.stride * (last - 1) - (T - 1)) if last else 0

    def flush_plan(self, count, phase):
        """(steps, {history limit state: flush step from which its input lies past the end})
        after T steps (from the clock's count and phase)."""
        T = self.frames_stepped(count, phase)
        limits = {name: float(d + p * length(chain, T) - T) for name, d, p, chain in self.histories}
        return self._steps(T), limits

    def most_flush_steps(self):
        """The most steps a flush takes, over every utterance length (past ``cap`` the count
        repeats with the output stride)."""
        Ts = list(range(1, min(self.cap, 1024))) + [self.cap + k for k in range(self.stride)]
        return max([0] + [self._steps(T) for T in Ts])
