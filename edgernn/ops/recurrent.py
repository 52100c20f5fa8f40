"""What LSTM, GRU and RNN share: ONNX-style inputs and outputs, shape rules, state slots,
activation parameters, and the frame limit that streams ``sequence_lens``.

IR recurrent ops have the semantics of the ONNX ops of the same name, forward direction only,
run for ONE frame: inputs are numbered as in ONNX (X, W, R, B, sequence_lens, initial_h[,
initial_c, P]) plus a frame counter after them; outputs are (Y, Y_h[, Y_c]). As imported, W,
R, B, P are constants in ONNX gate order (W and R may be int8, see :mod:`edgernn.quant`).
The pack pass (:meth:`RecurrentOp.pack`, attr ``packed``) rewrites W and R to the kernels'
panel layout (:mod:`edgernn.ops.matvec`), W [I -> G*H] and R [H -> G*H] in the kernel's gate
order (R in the op's :meth:`~RecurrentOp.column_groups`), and B to the op's bias layout; :meth:`RecurrentOp.params` gives the ONNX form
back, so the NumPy references read either.

attrs: hidden_size, layout (0: X [T, B, I]; 1: X [B, T, I]), acts (list of (code, alpha,
beta), one per activation slot), clip (float or None), frame_limit (0 = none: with a constant
``sequence_lens`` L, frames after the L-th leave the state unchanged and give Y = 0).
"""
from collections import namedtuple

import numpy as np

from ..errors import UnsupportedModelError
from ..ir.dims import concrete, has_time, is_symbolic, parts, same
from ..ir.graph import Value
from ..quant import dequantize
from . import Op, expect_const
from .activations import FAST_ACTIVATIONS, activate_ref
from .matvec import from_panels, panel_shape, to_panels
from .row import Field, RowLayout, const, fparam, matrix, work

#: the fields every recurrent row starts with (then its op's own), in this order
COMMON_FIELDS = ("x", "y", "inputs", "hidden", "counter", "frame_limit", "acts", "clip", "h_in", "h_out",
                 "w", "w_scale", "w_matvec", "r", "r_scale", "r_matvec", "b")


def recurrent_layout(name, n_acts, gates, r_groups, bias_length, own_fields):
    """The row of a recurrent op: the common fields (x .. b, the same columns in every
    recurrent row, so the shared helpers read them alike), then ``own_fields``.
    r_groups(r): R's column groups; bias_length(r): floats the kernel reads at b."""
    common = [
        Field("x", "work offset of the frame input [inputs]", work(lambda r: r.inputs, optional=False)),
        Field("y", "work offset of Y [hidden] (-1: Y is Y_h)", work(lambda r: r.hidden, writes=True)),
        Field("inputs", "I, the input size"),
        Field("hidden", "H, the hidden size"),
        Field("counter", "work offset of the frame counter (-1: none)", work(lambda r: 1, writes=True)),
        Field("frame_limit", "frames that update the state (0: every frame)"),
        Field("acts", "fparams index of (code, alpha, beta) per activation", fparam(3 * n_acts)),
        Field("clip", "fparams index of the clip (-1: none)", fparam(1)),
        Field("h_in", "work offset of h_prev [hidden]", work(lambda r: r.hidden, optional=False)),
        Field("h_out", "work offset of h [hidden] (may be h_in)", work(lambda r: r.hidden, writes=True,
                                                                        optional=False)),
        Field("w", "W panels, inputs -> gates * hidden",
              matrix("inputs", lambda r: [gates * r.hidden], "w_scale", "w_matvec")),
        Field("w_scale", "consts offset of W's int8 scales (-1: float32)"),
        Field("w_matvec", "native address of W's matvec variant (written at link)"),
        Field("r", "R panels, hidden -> gates * hidden", matrix("hidden", r_groups, "r_scale", "r_matvec")),
        Field("r_scale", "consts offset of R's int8 scales (-1: float32)"),
        Field("r_matvec", "native address of R's matvec variant (written at link)"),
        Field("b", "bias in consts", const(bias_length, optional=False)),
    ]
    layout = RowLayout(name, common + list(own_fields))
    assert tuple(layout.fields[:len(COMMON_FIELDS)]) == tuple(RC), "recurrent rows must start alike"
    return layout


RC = namedtuple("RecurrentFields", COMMON_FIELDS)(*range(1, 1 + len(COMMON_FIELDS)))


class RecurrentOp(Op):
    foldable = False
    matrix_slots = (1, 2)
    gates = 1
    n_acts = 1
    state_slots = {"h": 5}        # input slot -> output slot of the same state
    state_outputs = {"h": 1}
    counter_slot = 6
    kernel_gate_order = None      # kernel gate k is ONNX gate kernel_gate_order[k] (None: same)

    def hidden(self, node):
        return int(node.attrs["hidden_size"])

    def sequence_safe(self, node):
        """In sequence mode the kernel carries h from frame t-1 to frame t itself, which is
        right only when the state is the stream's (not an initial state computed per call)."""
        return not self.runs_in_frame(node)

    def runs_in_frame(self, node):
        """Whether X's sequence axis lies inside the frame (a step graph's recurrent op runs
        its whole, here one-step, sequence each call) rather than being the stream's time."""
        x = node.inputs[0]
        seq = x.shape[0] if node.attrs.get("layout", 0) == 0 else x.shape[1]
        return not has_time(seq)

    def weight(self, node, slot, shape, what, required=True):
        """Input ``slot`` as a float32 array of ``shape`` (the shape rule: :func:`expect_const`)."""
        v = expect_const(node, slot, shape, what, required)
        return None if v is None else dequantize(v).astype(np.float32).reshape(shape)

    def params(self, node):
        """(W [G*H, I], R [G*H, H], B [2*G*H]) as float32 in ONNX gate order, D = 1 dropped."""
        if node.attrs.get("packed"):
            return self.unpack(node)
        x = node.inputs[0]
        H, G = self.hidden(node), self.gates
        I = int(concrete(x.shape[2]))
        W = self.weight(node, 1, (1, G * H, I), "W")[0]
        R = self.weight(node, 2, (1, G * H, H), "R")[0]
        Bv = self.weight(node, 3, (1, 2 * G * H), "B", required=False)
        Bv = np.zeros(2 * G * H, np.float32) if Bv is None else Bv[0]
        return W, R, Bv

    # ------------------------------------------------------------ kernel layout
    def gate_rows(self, node):
        """Row permutation from ONNX gate order to the kernel's."""
        H = self.hidden(node)
        order = self.kernel_gate_order or range(self.gates)
        return np.concatenate([np.arange(k * H, (k + 1) * H) for k in order])

    def pack_bias(self, node, B, rows):
        """The kernel's bias from ONNX B [2*G*H] (default: Wb + Rb, in kernel order)."""
        GH = self.gates * self.hidden(node)
        return (B[:GH] + B[GH:])[rows]

    def unpack_bias(self, node, b, inv):
        return np.concatenate([b[inv], np.zeros_like(b)])

    def pack(self, node):
        """Rewrite W, R, B to the kernel layout (idempotent)."""
        if node.attrs.get("packed"):
            return
        self.infer(node)
        rows = self.gate_rows(node)
        GH = self.gates * self.hidden(node)
        ins = list(node.inputs) + [None] * max(0, 4 - len(node.inputs))
        B = ins[3]
        B = np.zeros(2 * GH, np.float32) if B is None else dequantize(B).astype(np.float32).reshape(-1)
        ins[1] = to_panels(ins[1], rows)
        ins[2] = to_panels(ins[2], rows, self.column_groups(node))
        bias = np.ascontiguousarray(self.pack_bias(node, B, rows))
        ins[3] = Value(f"{node.name}.bias", shape=bias.shape, const=bias)
        node.inputs = ins
        node.attrs["packed"] = True

    def unpack(self, node):
        inv = np.argsort(self.gate_rows(node))
        GH = self.gates * self.hidden(node)
        W = from_panels(node.inputs[1], [GH]).T[inv]
        R = from_panels(node.inputs[2], self.column_groups(node)).T[inv]
        return (W.astype(np.float32), R.astype(np.float32),
                self.unpack_bias(node, node.inputs[3].const, inv).astype(np.float32))

    def column_groups(self, node):
        """Output groups of the packed R that a kernel runs apart (default: all G*H at once)."""
        return [self.gates * self.hidden(node)]

    def packed_bias_shape(self, node):
        """The kernel's bias (after :meth:`pack_bias`): Wb + Rb summed, [G*H]."""
        return (self.gates * self.hidden(node),)

    def check_constants(self, node):
        """Constant operands beyond W, R, B (e.g. LSTM's peepholes), against the shape rule."""

    def activations(self, node):
        """Sigmoid/tanh evaluations per step: ``activation_uses(node)[k]`` x H for activation
        slot k when it is one the kernels compute with fast_tanh."""
        H = self.hidden(node)
        return sum(u * H for u, a in zip(self.activation_uses(node), node.attrs["acts"]) if int(a[0]) in FAST_ACTIVATIONS)

    def activation_uses(self, node):
        return [1] * self.n_acts

    def macs(self, node):
        """W and R: every panel column (padding included) once per step."""
        return [(node.inputs[k], int(node.inputs[k].const.size)) for k in self.matrix_slots
                if node.input(k) is not None and node.inputs[k].is_const]

    def check_packed(self, node, n_in):
        GH = self.gates * self.hidden(node)
        for slot, k, groups in ((1, n_in, [GH]), (2, self.hidden(node), self.column_groups(node))):
            v = node.input(slot)
            want = panel_shape(k, groups)
            if v is None or not v.is_const or tuple(v.const.shape) != want:
                raise UnsupportedModelError(f"{node.describe()}: packed weight {slot} is not a panel matrix {list(want)}")
            if v.scale is not None and v.scale.shape != (want[0] * want[2],):
                raise UnsupportedModelError(f"{node.describe()}: packed weight {slot} has {v.scale.size} scales, "
                                            f"expected {want[0] * want[2]}")

    def directions(self, node):
        return 2 if node.attrs.get("direction", "forward") == "bidirectional" else 1

    def whole_sequence(self, node):
        """Whether this node must be unrolled before it can run (:mod:`edgernn.passes.unroll`):
        it runs in reverse or both ways, or over more than one position inside the frame."""
        if node.attrs.get("direction", "forward") != "forward":
            return True
        x = node.inputs[0]
        seq = x.shape[0] if node.attrs.get("layout", 0) == 0 else x.shape[1]
        return not has_time(seq) and int(concrete(seq)) > 1

    def state_shape(self, node, batch):
        H, D = self.hidden(node), self.directions(node)
        return (D, batch, H) if node.attrs.get("layout", 0) == 0 else (batch, D, H)

    def check_attrs(self, node):
        """Attributes the kernel trusts (an .ernn file could carry anything)."""
        act_lists = [node.attrs.get("acts")] + ([node.attrs.get("acts_reverse")] if "acts_reverse" in node.attrs else [])
        ok = all(isinstance(acts, (list, tuple)) and len(acts) == self.n_acts and all(
            isinstance(a, (list, tuple)) and len(a) == 3 and a[0] in range(11)
            and all(isinstance(x, (int, float)) for x in a) for a in acts) for acts in act_lists)
        H, clip, limit = node.attrs.get("hidden_size"), node.attrs.get("clip"), node.attrs.get("frame_limit", 0)
        ok = ok and isinstance(H, int) and H > 0 and (clip is None or isinstance(clip, (int, float)))
        ok = ok and isinstance(limit, int) and limit >= 0 and node.attrs.get("layout", 0) in (0, 1)
        ok = ok and node.attrs.get("direction", "forward") in ("forward", "reverse", "bidirectional")
        if not ok:
            raise UnsupportedModelError(f"{node.describe()}: invalid attributes {node.attrs}")

    def check_unrolled_constants(self, node, inputs):
        """The constants of a node that :mod:`edgernn.passes.unroll` will split by direction."""
        G, H, D = self.gates, self.hidden(node), self.directions(node)
        expect_const(node, 1, (D, G * H, inputs), "W")
        expect_const(node, 2, (D, G * H, H), "R")
        expect_const(node, 3, (D, 2 * G * H), "B", required=False)
        if node.input(4) is not None:
            raise UnsupportedModelError(f"{node.describe()}: sequence_lens on a sequence inside the frame "
                                        "is not supported; export without it")

    def infer(self, node):
        self.check_attrs(node)
        x = node.inputs[0]
        if len(x.shape) != 3:
            raise UnsupportedModelError(f"{node.describe()}: X has rank {len(x.shape)}, expected 3")
        layout = node.attrs.get("layout", 0)
        seq, batch = (x.shape[0], x.shape[1]) if layout == 0 else (x.shape[1], x.shape[0])
        in_frame = not has_time(seq)
        if parts(seq) != (1, 1, 0) and (is_symbolic(seq) or int(seq) < 1):
            raise UnsupportedModelError(
                f"{node.describe()}: the sequence axis of X has size {seq!r}; it must be the stream's "
                "time axis (pass time_axis= to edgernn.load if it was not found) or an axis inside the frame")
        if not in_frame and node.attrs.get("direction", "forward") != "forward":
            raise UnsupportedModelError(
                f"{node.describe()} has direction={node.attrs['direction']} over the time axis: it needs the "
                "whole sequence before the first output, so it cannot run one frame at a time. Export a "
                "forward-only model (a reverse or bidirectional op over an axis inside the frame is fine)")
        if (has_time(batch) and not in_frame) or (not is_symbolic(batch) and batch != 1):
            raise UnsupportedModelError(
                f"{node.describe()}: batch size {batch!r} is fixed in the model; streams run one "
                "sequence each, so use batch 1 (or a dynamic batch) and step B streams together")
        if has_time(x.shape[2]) or is_symbolic(x.shape[2]):
            raise UnsupportedModelError(f"{node.describe()}: the input size {x.shape[2]!r} must be fixed")
        whole = self.whole_sequence(node)
        if whole:
            self.check_unrolled_constants(node, int(concrete(x.shape[2])))
        elif node.attrs.get("packed"):
            self.check_packed(node, int(concrete(x.shape[2])))
            expect_const(node, 3, self.packed_bias_shape(node), "packed bias")
        else:
            self.params(node)
        self.check_constants(node)
        H, D = self.hidden(node), self.directions(node)
        st = self.state_shape(node, batch)
        for name, slot in self.state_slots.items():
            v = node.input(slot)
            if v is not None and (len(v.shape) != 3 or not all(same(a, b) for a, b in zip(v.shape, st))):
                raise UnsupportedModelError(
                    f"{node.describe()}: initial {name} has shape {v.shape}, expected {st} "
                    "(one initial state for a batch of several sequences: run one stream each)")
        y = (seq, D, batch, H) if layout == 0 else (batch, seq, D, H)
        outs = [(y, "float32")] + [(st, "float32")] * len(self.state_outputs)
        if self.counter_slot < len(node.inputs) and node.input(self.counter_slot) is not None:
            outs.append(((1,), "float32"))
        return outs

    # ------------------------------------------------------------ reference helpers
    def act(self, node, k, x):
        code, alpha, beta = node.attrs["acts"][k]
        return activate_ref(code, x, alpha, beta)

    def clip(self, node, x):
        c = node.attrs.get("clip")
        return np.clip(x, -c, c) if c is not None else x

    def reference(self, node, *inputs):
        """One frame of one stream. Returns [Y, Y_h(, Y_c)(, counter)]."""
        x = inputs[0].reshape(-1).astype(np.float32)
        H = self.hidden(node)
        prev = {k: (inputs[s].reshape(-1).astype(np.float32) if s < len(inputs) and inputs[s] is not None
                    else np.zeros(H, np.float32)) for k, s in self.state_slots.items()}
        counter = inputs[self.counter_slot] if self.counter_slot < len(inputs) else None
        limit = node.attrs.get("frame_limit", 0)
        if limit and counter is not None and counter.reshape(-1)[0] >= limit:
            new, y = prev, np.zeros(H, np.float32)
        else:
            new = self.step_ref(node, x, prev)
            y = new["h"]
        shapes = [v.concrete_shape for v in node.outputs]
        outs = [y.reshape(shapes[0])] + [new[k].reshape(shapes[1 + i]) for i, k in enumerate(self.state_outputs)]
        if counter is not None:
            outs.append(np.minimum(counter.reshape(-1) + 1, max(limit, 1)).astype(np.float32))
        return outs

    # ------------------------------------------------------------ emit helpers
    def emit_common(self, node, ctx):
        """The common fields of :func:`recurrent_layout` by name, for ``ctx.row``."""
        x = node.inputs[0]
        y, h_out = node.outputs[0], node.outputs[1]
        cnt = node.input(self.counter_slot) if self.counter_slot < len(node.inputs) else None
        clip = node.attrs.get("clip")
        w, w_scale = ctx.matrix(node.inputs[1])
        r, r_scale = ctx.matrix(node.inputs[2])
        return dict(
            x=ctx.work_off(x), y=-1 if y is None or y.root() is h_out.root() else ctx.work_off(y),
            inputs=x.size, hidden=self.hidden(node), counter=ctx.work_off(cnt) if cnt is not None else -1,
            frame_limit=node.attrs.get("frame_limit", 0),
            acts=ctx.fparams([v for code, a, b in node.attrs["acts"] for v in (code, a, b)]),
            clip=ctx.fparam(clip) if clip is not None else -1,
            h_in=ctx.work_off(node.inputs[self.state_slots["h"]]), h_out=ctx.work_off(h_out),
            w=w, w_scale=w_scale, w_matvec=0, r=r, r_scale=r_scale, r_matvec=0, b=ctx.const_off(node.inputs[3]))


# ------------------------------------------------------------ kernel helpers
from ..config import jit, jit_inline  # noqa: E402
from .matvec import add_matvec, set_bias  # noqa: E402
from .program import copy_into  # noqa: E402


@jit_inline
def recurrent_projections(row, consts, qconsts, work, outputs, out):
    """work[r, out:out + outputs] = W x + b for every row r of ``work`` at once (the weights
    read once; b: the first ``outputs`` floats at the row's bias)."""
    set_bias(consts, row[RC.b], outputs, work, out)
    add_matvec(row[RC.w_matvec], consts, qconsts, row[RC.w], row[RC.w_scale], row[RC.inputs], outputs, work,
               row[RC.x], out, False)


@jit_inline
def frame_active(w, cnt_off, limit):
    """Whether this frame updates the state (frame limit not reached); advances the counter."""
    if cnt_off < 0 or limit <= 0:
        return True
    c = w[cnt_off]
    if c >= limit:
        return False
    w[cnt_off] = c + np.float32(1.0)
    return True


@jit_inline
def hold_state(w, src, dst, n, y_off):
    """Past the frame limit: the state stays, Y is zero."""
    copy_into(w[dst:dst + n], w[src:src + n])
    if y_off >= 0:
        y = w[y_off:y_off + n]
        for j in range(n):
            y[j] = np.float32(0.0)


@jit_inline
def carry_state(work, t, src, dst, n):
    """Sequence mode (rows of ``work`` are consecutive frames of ONE stream): row t starts
    from the state row t-1 ended with (src in row t-1 -> dst in row t). src < 0: none."""
    if t > 0 and src >= 0:
        copy_into(work[t, dst:dst + n], work[t - 1, src:src + n])


@jit_inline
def recurrent_rows(work, t, seq, h_out, h_in, H, cnt):
    """(first, end) of the rows the recurrent half of a kernel runs on at pass t: every
    stream (not ``seq``, one pass), or in sequence mode frame t alone, after it takes over
    frame t-1's h and frame counter (the caller carries any other state, e.g. LSTM's c).
    Bounds, not a view: kernels compile without Numba's reference counting (config.py), and
    then a function may only return the arrays it was given."""
    if not seq:
        return 0, work.shape[0]
    carry_state(work, t, h_out, h_in, H)
    carry_state(work, t, cnt, cnt, 1)
    return t, t + 1


@jit_inline
def clip_inplace(v, clip_i, fparams):
    """v[j] = min(max(v[j], -clip), clip) when the op has a clip (clip_i >= 0)."""
    if clip_i < 0:
        return
    c = fparams[clip_i]
    for j in range(v.shape[0]):
        v[j] = min(max(v[j], -c), c)
