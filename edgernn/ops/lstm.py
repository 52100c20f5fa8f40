"""lstm: one frame of an ONNX LSTM (forward), gate order i, o, f, c as in ONNX.

    i = f(W_i x + R_i h + P_i * c_prev + Wb_i + Rb_i)
    f = f(W_f x + R_f h + P_f * c_prev + Wb_f + Rb_f)      (input_forget: f = 1 - i)
    g = g(W_c x + R_c h + Wb_c + Rb_c)
    c = f * c_prev + i * g
    o = f(W_o x + R_o h + P_o * c + Wb_o + Rb_o)
    h = o * h(c)

Defaults f = sigmoid, g = h = tanh; clip bounds every activation's input to [-clip, clip].
attr cell_clip (TFLite's cell_clip; None in ONNX): c = min(max(c, -cell_clip), cell_clip)
right after c is computed, before o's peephole and h(c) read it.
Kernel layout (pack pass): gates reordered to i, f, c, o; W [I -> 4H] and R [H -> 4H] panel
matrices (float32 or int8, :mod:`edgernn.ops.matvec`); B summed to [4H]; P as in ONNX.
Row: :data:`ROW` (the common recurrent fields, then the cell state, peepholes and scratch).
"""
import numpy as np

from ..config import jit, jit_inline
from . import register
from .activations import SIGMOID, TANH, activate_inplace, fast_sigmoid, fast_tanh
from .matvec import add_matvec, set_bias
from .program import copy_into
from .recurrent import RecurrentOp, carry_state, clip_inplace, frame_active, hold_state, recurrent_layout, \
    recurrent_projections, recurrent_rows
from .row import Field, const, fparam, work

ROW = recurrent_layout("lstm", n_acts=3, gates=4, r_groups=lambda r: [4 * r.hidden],
                       bias_length=lambda r: 4 * r.hidden, own_fields=[
    Field("c_in", "work offset of c_prev [hidden]", work(lambda r: r.hidden, optional=False)),
    Field("c_out", "work offset of c [hidden] (may be c_in)", work(lambda r: r.hidden, writes=True, optional=False)),
    Field("p", "peepholes [3 * hidden] in consts, ONNX order i, o, f (-1: none)", const(lambda r: 3 * r.hidden)),
    Field("input_forget", "1: f = 1 - i"),
    Field("gates", "scratch for the gates [4 * hidden]", work(lambda r: 4 * r.hidden, writes=True, optional=False)),
    Field("tmp", "scratch for h(c) [hidden]", work(lambda r: r.hidden, writes=True, optional=False)),
    Field("cell_clip", "fparams index of cell_clip (-1: none)", fparam(1)),
])
F = ROW.fields


#: the same row, run by the kernel of the common case (sigmoid, tanh, tanh; no peepholes,
#: clip, cell clip or input_forget), which compiles without the general cell's code
FUSED_ROW = ROW.variant("lstm_fused")


@FUSED_ROW.kernel
@jit
def lstm_fused_kernel(row, fparams, consts, qconsts, work, seq):
    """Gate pre-activations for every row of ``work`` at once (weights read once), then each
    row's cell update as vector loops over its H units (:func:`lstm_cell_fused`). Rows are
    independent streams, or with ``seq`` consecutive frames of one stream: then W x is
    computed for all frames at once and R h_{t-1} frame by frame."""
    recurrent_projections(row, consts, qconsts, work, 4 * row[F.hidden], row[F.gates])
    for t in range(work.shape[0] if seq else 1):
        r0, r1 = lstm_recurrent_pass(row, consts, qconsts, work, seq, t)
        for s in range(r0, r1):
            if lstm_frame_active(row, work[s]):
                lstm_fused_step(row, work[s])


@ROW.kernel
@jit
def lstm_kernel(row, fparams, consts, qconsts, work, seq):
    """Any LSTM: as :func:`lstm_fused_kernel` with the cell gate by gate (:func:`lstm_cell_general`)."""
    recurrent_projections(row, consts, qconsts, work, 4 * row[F.hidden], row[F.gates])
    for t in range(work.shape[0] if seq else 1):
        r0, r1 = lstm_recurrent_pass(row, consts, qconsts, work, seq, t)
        for s in range(r0, r1):
            if lstm_frame_active(row, work[s]):
                lstm_general_step(row, fparams, consts, work[s])


@jit_inline
def lstm_recurrent_pass(row, consts, qconsts, work, seq, t):
    """Pass t: gates += R h_prev for the rows it runs on (every stream, or frame t of a chunk,
    which takes over frame t-1's h, c and counter first). Returns those rows' bounds."""
    H = row[F.hidden]
    if seq:
        carry_state(work, t, row[F.c_out], row[F.c_in], H)
    r0, r1 = recurrent_rows(work, t, seq, row[F.h_out], row[F.h_in], H, row[F.counter])
    add_matvec(row[F.r_matvec], consts, qconsts, row[F.r], row[F.r_scale], H, 4 * H, work[r0:r1], row[F.h_in],
               row[F.gates], t % 2 == 1)
    return r0, r1


@jit_inline
def lstm_frame_active(row, w):
    """Whether this frame updates the stream's state; past the frame limit h and c stay and
    Y is zero."""
    H, h_in, h_out = row[F.hidden], row[F.h_in], row[F.h_out]
    if frame_active(w, row[F.counter], row[F.frame_limit]):
        return True
    hold_state(w, h_in, h_out, H, row[F.y])
    hold_state(w, row[F.c_in], row[F.c_out], H, -1)
    return False


@jit_inline
def lstm_fused_step(row, w):
    """One stream's cell in the common case, from its gate pre-activations; Y = h."""
    H, gates, c_in, c_out, h_out, yo = row[F.hidden], row[F.gates], row[F.c_in], row[F.c_out], row[F.h_out], row[F.y]
    lstm_cell_fused(w[gates:gates + H], w[gates + H:gates + 2 * H], w[gates + 2 * H:gates + 3 * H],
                    w[gates + 3 * H:gates + 4 * H], w[c_in:c_in + H], w[c_out:c_out + H], w[h_out:h_out + H])
    if yo >= 0:
        copy_into(w[yo:yo + H], w[h_out:h_out + H])


@jit
def lstm_general_step(row, fparams, consts, w):
    """One stream's cell for any LSTM, from its gate pre-activations; Y = h."""
    H, gates, c_in, c_out, h_out, yo = row[F.hidden], row[F.gates], row[F.c_in], row[F.c_out], row[F.h_out], row[F.y]
    tmp = row[F.tmp]
    lstm_cell_general(row, fparams, consts, w[gates:gates + H], w[gates + H:gates + 2 * H],
                      w[gates + 2 * H:gates + 3 * H], w[gates + 3 * H:gates + 4 * H], w[c_in:c_in + H],
                      w[c_out:c_out + H], w[h_out:h_out + H], w[tmp:tmp + H])
    if yo >= 0:
        copy_into(w[yo:yo + H], w[h_out:h_out + H])


@jit
def lstm_cell_general(row, fparams, consts, i, f, g, o, c_prev, c, h, hc_):
    """The cell gate by gate, for any activations, peepholes, clips and input_forget; hc_ is
    H floats of scratch for h(c)."""
    H, acts, clip_i, po, input_forget = row[F.hidden], row[F.acts], row[F.clip], row[F.p], row[F.input_forget]
    fc, fa, fb = int(fparams[acts]), fparams[acts + 1], fparams[acts + 2]
    gc, ga, gb = int(fparams[acts + 3]), fparams[acts + 4], fparams[acts + 5]
    hc, ha, hb = int(fparams[acts + 6]), fparams[acts + 7], fparams[acts + 8]
    one = np.float32(1.0)
    if po >= 0:
        p_i, p_f = consts[po:po + H], consts[po + 2 * H:po + 3 * H]
        for j in range(H):
            i[j] += p_i[j] * c_prev[j]
            f[j] += p_f[j] * c_prev[j]
    clip_inplace(i, clip_i, fparams)
    clip_inplace(f, clip_i, fparams)
    clip_inplace(g, clip_i, fparams)
    activate_inplace(fc, i, fa, fb)
    if input_forget:
        for j in range(H):
            f[j] = one - i[j]
    else:
        activate_inplace(fc, f, fa, fb)
    activate_inplace(gc, g, ga, gb)
    for j in range(H):
        c[j] = f[j] * c_prev[j] + i[j] * g[j]
    clip_inplace(c, row[F.cell_clip], fparams)
    if po >= 0:
        p_o = consts[po + H:po + 2 * H]
        for j in range(H):
            o[j] += p_o[j] * c[j]
    clip_inplace(o, clip_i, fparams)
    activate_inplace(fc, o, fa, fb)
    copy_into(hc_, c)
    activate_inplace(hc, hc_, ha, hb)
    for j in range(H):
        h[j] = o[j] * hc_[j]


@jit_inline
def lstm_cell_fused(i, f, g, o, c_prev, c, h):
    """The cell in two loops over the units, for the common case (sigmoid, tanh, tanh; no
    peepholes, clip, cell clip or input_forget): the gates are activated in registers, not
    written back. Each unit takes the general path's operations in its order.

    The new c goes to f's slot first: c and c_prev are often the same bytes (state updated
    in place), and a loop storing to one slice of the arena while loading an overlapping one
    fails LLVM's run-time overlap check and runs scalar."""
    for j in range(c.shape[0]):
        f[j] = fast_sigmoid(f[j]) * c_prev[j] + fast_sigmoid(i[j]) * fast_tanh(g[j])
    for j in range(c.shape[0]):
        c[j] = f[j]
        h[j] = fast_sigmoid(o[j]) * fast_tanh(f[j])


@register
class LSTM(RecurrentOp):
    name = "lstm"
    gates = 4
    n_acts = 3
    state_slots = {"h": 5, "c": 6}
    state_outputs = {"h": 1, "c": 2}
    counter_slot = 8
    kernel_gate_order = (0, 2, 3, 1)     # i, f, c, o from ONNX i, o, f, c

    def peepholes(self, node):
        H = self.hidden(node)
        P = self.weight(node, 7, (1, 3 * H), "P", required=False)
        return None if P is None else P.reshape(-1)

    def check_constants(self, node):
        if self.whole_sequence(node):
            self.weight(node, 7, (self.directions(node), 3 * self.hidden(node)), "P", required=False)
        else:
            self.peepholes(node)

    def activation_uses(self, node):
        return [2 if node.attrs.get("input_forget") else 3, 1, 1]

    def step_ref(self, node, x, prev):
        W, R, Bv = self.params(node)
        H = self.hidden(node)
        P = self.peepholes(node)
        h, c = prev["h"], prev["c"]
        z = W @ x + R @ h + Bv[:4 * H] + Bv[4 * H:]
        zi, zo, zf, zc = (z[k * H:(k + 1) * H] for k in range(4))
        if P is not None:
            zi = zi + P[:H] * c
            zf = zf + P[2 * H:] * c
        i = self.act(node, 0, self.clip(node, zi))
        f = 1 - i if node.attrs.get("input_forget") else self.act(node, 0, self.clip(node, zf))
        g = self.act(node, 1, self.clip(node, zc))
        c_new = (f * c + i * g).astype(np.float32)
        cell_clip = node.attrs.get("cell_clip")
        if cell_clip is not None:
            c_new = np.clip(c_new, -cell_clip, cell_clip).astype(np.float32)
        if P is not None:
            zo = zo + P[H:2 * H] * c_new
        o = self.act(node, 0, self.clip(node, zo))
        h_new = (o * self.act(node, 2, c_new)).astype(np.float32)
        return {"h": h_new, "c": c_new}

    def emit(self, node, ctx):
        H = self.hidden(node)
        P = node.input(7)
        cell_clip = node.attrs.get("cell_clip")
        standard = [int(a[0]) for a in node.attrs["acts"]] == [SIGMOID, TANH, TANH]
        fused = standard and P is None and not node.attrs.get("input_forget") and node.attrs.get("clip") is None \
            and cell_clip is None
        ctx.row(node, FUSED_ROW if fused else ROW, **self.emit_common(node, ctx),
                c_in=ctx.work_off(node.inputs[6]), c_out=ctx.work_off(node.outputs[2]),
                p=ctx.const_off(P) if P is not None else -1, input_forget=int(node.attrs.get("input_forget", 0)),
                gates=ctx.scratch(4 * H), tmp=ctx.scratch(H),
                cell_clip=ctx.fparam(cell_clip) if cell_clip is not None else -1)

    def flops(self, node):
        H, I = self.hidden(node), node.inputs[0].size
        return 2 * 4 * H * (I + H) + 10 * H
