"""gru: one frame of an ONNX GRU (forward), gate order z, r, h as in ONNX.

    z = f(W_z x + R_z h_prev + Wb_z + Rb_z)
    r = f(W_r x + R_r h_prev + Wb_r + Rb_r)
    linear_before_reset = 0:  n = g(W_h x + R_h (r * h_prev) + Rb_h + Wb_h)
    linear_before_reset = 1:  n = g(W_h x + r * (R_h h_prev + Rb_h) + Wb_h)
    h = (1 - z) * n + z * h_prev

Defaults f = sigmoid, g = tanh; clip bounds every activation's input. PyTorch and Keras'
reset_after=True are linear_before_reset = 1.
Kernel layout (pack pass): W and R as panel matrices in ONNX gate order (float32 or int8,
:mod:`edgernn.ops.matvec`), [I -> 3H] and [H -> 3H]; with linear_before_reset = 0, R in two
column groups [z r | h] so R_h runs alone. B [6H] = Wb | Rb as in ONNX.
Row: :data:`ROW` (the common recurrent fields, then linear_before_reset and scratch).
"""
import numpy as np

from ..config import jit, jit_inline
from . import register
from .activations import SIGMOID, TANH, activate_inplace, fast_sigmoid, fast_tanh
from .matvec import add_matvec, lanes_for, panels_for, set_bias
from .program import copy_into
from .recurrent import RecurrentOp, clip_inplace, frame_active, hold_state, recurrent_layout, recurrent_projections, \
    recurrent_rows
from .row import Field, work

ROW = recurrent_layout(
    "gru", n_acts=2, gates=3, bias_length=lambda r: 6 * r.hidden,
    r_groups=lambda r: [3 * r.hidden] if r.linear_before_reset else [2 * r.hidden, r.hidden], own_fields=[
        Field("linear_before_reset", "1: n = g(W_h x + r * (R_h h_prev + Rb_h) + Wb_h)"),
        Field("gx", "scratch for W x + Wb [3 * hidden]", work(lambda r: 3 * r.hidden, writes=True, optional=False)),
        Field("gh", "scratch for R h + Rb [3 * hidden]", work(lambda r: 3 * r.hidden, writes=True, optional=False)),
        Field("rh", "scratch for r * h_prev [hidden]", work(lambda r: r.hidden, writes=True, optional=False)),
    ])
F = ROW.fields


#: the same row, run by the kernel of the common case (linear_before_reset = 1, sigmoid and
#: tanh, no clip), which compiles without the general cell's code
FUSED_ROW = ROW.variant("gru_fused")


@FUSED_ROW.kernel
@jit
def gru_fused_kernel(row, fparams, consts, qconsts, work, seq):
    """The common case: :func:`recurrent_projections`, then per pass :func:`gru_recurrent_pass` and
    :func:`gru_cell_fused` for each row. Rows are independent streams, or with ``seq``
    consecutive frames of one stream (W x for all frames at once, the rest frame by frame)."""
    recurrent_projections(row, consts, qconsts, work, 3 * row[F.hidden], row[F.gx])
    for t in range(work.shape[0] if seq else 1):
        r0, r1 = gru_recurrent_pass(row, consts, qconsts, work, seq, t)
        for s in range(r0, r1):
            gru_cell_fused(row, work[s])


@ROW.kernel
@jit
def gru_kernel(row, fparams, consts, qconsts, work, seq):
    """Any GRU: as :func:`gru_fused_kernel` with the cell gate by gate (:func:`gru_reset`,
    :func:`gru_update`); with linear_before_reset = 0, R_h (r * h) is a second pass."""
    H, ro, rs, bo, rh, gh = row[F.hidden], row[F.r], row[F.r_scale], row[F.b], row[F.rh], row[F.gh]
    lbr = row[F.linear_before_reset]
    recurrent_projections(row, consts, qconsts, work, 3 * row[F.hidden], row[F.gx])
    for t in range(work.shape[0] if seq else 1):
        r0, r1 = gru_recurrent_pass(row, consts, qconsts, work, seq, t)
        rows = work[r0:r1]
        for s in range(rows.shape[0]):
            gru_reset(row, fparams, rows[s])
        if not lbr:
            r_lanes = lanes_for(H)                          # R's column groups [z r | h]
            set_bias(consts, bo + 5 * H, H, rows, gh + 2 * H)
            zr = panels_for(2 * H, r_lanes) * r_lanes              # R_h: the second column group
            add_matvec(row[F.r_matvec], consts, qconsts, ro + zr * H, rs + zr if rs >= 0 else -1, H, H, rows,
                       rh, gh + 2 * H, t % 2 == 1)
        for s in range(rows.shape[0]):
            gru_update(row, fparams, rows[s])


@jit_inline
def gru_recurrent_pass(row, consts, qconsts, work, seq, t):
    """Pass t: gh = R h_prev + Rb for the rows it runs on (every stream, or frame t of a chunk,
    which takes over frame t-1's h first): all of R with linear_before_reset = 1, R_z and R_r
    otherwise. Returns those rows' bounds."""
    H, lbr, gh = row[F.hidden], row[F.linear_before_reset], row[F.gh]
    n_rec = 3 * H if lbr else 2 * H
    r0, r1 = recurrent_rows(work, t, seq, row[F.h_out], row[F.h_in], H, row[F.counter])
    rows = work[r0:r1]
    set_bias(consts, row[F.b] + 3 * H, n_rec, rows, gh)
    add_matvec(row[F.r_matvec], consts, qconsts, row[F.r], row[F.r_scale], H, n_rec, rows, row[F.h_in], gh,
               t % 2 == 1)
    return r0, r1


@jit_inline
def gru_cell_fused(row, w):
    """:func:`gru_reset` and :func:`gru_update` in one loop over the units, for the common
    case (linear_before_reset = 1 as PyTorch and Keras export, sigmoid and tanh, no clip):
    every gate stays in registers. Each unit takes the general path's operations in its order."""
    yo, H, cnt, limit, h_in, h_out = row[F.y], row[F.hidden], row[F.counter], row[F.frame_limit], row[F.h_in], \
        row[F.h_out]
    gx, gh = row[F.gx], row[F.gh]
    if not frame_active(w, cnt, limit):
        hold_state(w, h_in, h_out, H, yo)
        return
    one = np.float32(1.0)
    x_z, x_r, x_n = w[gx:gx + H], w[gx + H:gx + 2 * H], w[gx + 2 * H:gx + 3 * H]
    h_z, h_r, h_n = w[gh:gh + H], w[gh + H:gh + 2 * H], w[gh + 2 * H:gh + 3 * H]
    h_prev, h = w[h_in:h_in + H], w[h_out:h_out + H]          # may be the same bytes
    for j in range(H):                   # the new h to x_z's slot first: h and h_prev are often
        z = fast_sigmoid(x_z[j] + h_z[j])  # the same bytes, which keeps a loop scalar (lstm.py)
        n = fast_tanh(x_n[j] + fast_sigmoid(h_r[j] + x_r[j]) * h_n[j])
        x_z[j] = (one - z) * n + z * h_prev[j]
    copy_into(h, x_z)
    if yo >= 0:
        copy_into(w[yo:yo + H], h)


@jit
def gru_reset(row, fparams, w):
    """r = f(x_r + h_r); with linear_before_reset = 0 also r * h_prev for R_h."""
    H, clip_i, h_in, acts = row[F.hidden], row[F.clip], row[F.h_in], row[F.acts]
    lbr, gx, gh, rh = row[F.linear_before_reset], row[F.gx], row[F.gh], row[F.rh]
    r, x_r = w[gh + H:gh + 2 * H], w[gx + H:gx + 2 * H]
    for j in range(H):
        r[j] += x_r[j]
    clip_inplace(r, clip_i, fparams)
    activate_inplace(int(fparams[acts]), r, fparams[acts + 1], fparams[acts + 2])
    if not lbr:
        r_h, h_prev = w[rh:rh + H], w[h_in:h_in + H]
        for j in range(H):
            r_h[j] = r[j] * h_prev[j]


@jit
def gru_update(row, fparams, w):
    """z, the candidate n and h = (1 - z) n + z h_prev for one stream."""
    yo, H, cnt, limit, acts, clip_i = row[F.y], row[F.hidden], row[F.counter], row[F.frame_limit], row[F.acts], \
        row[F.clip]
    h_in, h_out, lbr, gx, gh = row[F.h_in], row[F.h_out], row[F.linear_before_reset], row[F.gx], row[F.gh]
    one = np.float32(1.0)
    if not frame_active(w, cnt, limit):
        hold_state(w, h_in, h_out, H, yo)
        return
    z, h_z = w[gx:gx + H], w[gh:gh + H]
    for j in range(H):
        z[j] += h_z[j]
    clip_inplace(z, clip_i, fparams)
    activate_inplace(int(fparams[acts]), z, fparams[acts + 1], fparams[acts + 2])
    n, h_n, r = w[gx + 2 * H:gx + 3 * H], w[gh + 2 * H:gh + 3 * H], w[gh + H:gh + 2 * H]
    if lbr:
        for j in range(H):
            n[j] += r[j] * h_n[j]
    else:
        for j in range(H):
            n[j] += h_n[j]
    clip_inplace(n, clip_i, fparams)
    activate_inplace(int(fparams[acts + 3]), n, fparams[acts + 4], fparams[acts + 5])
    h_prev, h = w[h_in:h_in + H], w[h_out:h_out + H]          # may be the same bytes
    for j in range(H):
        h[j] = (one - z[j]) * n[j] + z[j] * h_prev[j]
    if yo >= 0:
        copy_into(w[yo:yo + H], h)


@register
class GRU(RecurrentOp):
    name = "gru"
    gates = 3
    n_acts = 2

    def column_groups(self, node):
        H = self.hidden(node)
        return [3 * H] if node.attrs.get("linear_before_reset", 0) else [2 * H, H]

    def step_ref(self, node, x, prev):
        W, R, Bv = self.params(node)
        H = self.hidden(node)
        h = prev["h"]
        Wb, Rb = Bv[:3 * H], Bv[3 * H:]
        gx = W @ x + Wb
        z = self.act(node, 0, self.clip(node, gx[:H] + R[:H] @ h + Rb[:H]))
        r = self.act(node, 0, self.clip(node, gx[H:2 * H] + R[H:2 * H] @ h + Rb[H:2 * H]))
        if node.attrs.get("linear_before_reset", 0):
            pre = gx[2 * H:] + r * (R[2 * H:] @ h + Rb[2 * H:])
        else:
            pre = gx[2 * H:] + R[2 * H:] @ (r * h) + Rb[2 * H:]
        n = self.act(node, 1, self.clip(node, pre))
        return {"h": ((1 - z) * n + z * h).astype(np.float32)}

    def pack_bias(self, node, B, rows):
        return B

    def packed_bias_shape(self, node):
        return (6 * self.hidden(node),)

    def activation_uses(self, node):
        return [2, 1]

    def unpack_bias(self, node, b, inv):
        return b

    def emit(self, node, ctx):
        H = self.hidden(node)
        lbr = int(node.attrs.get("linear_before_reset", 0))
        codes = [int(a[0]) for a in node.attrs["acts"]]
        fused = lbr == 1 and codes == [SIGMOID, TANH] and node.attrs.get("clip") is None
        ctx.row(node, FUSED_ROW if fused else ROW, **self.emit_common(node, ctx), linear_before_reset=lbr,
                gx=ctx.scratch(3 * H), gh=ctx.scratch(3 * H), rh=ctx.scratch(H))

    def flops(self, node):
        H, I = self.hidden(node), node.inputs[0].size
        return 2 * 3 * H * (I + H) + 8 * H
