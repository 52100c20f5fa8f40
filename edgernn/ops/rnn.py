"""rnn: one frame of an ONNX RNN (forward).

    h = f(W x + R h_prev + Wb + Rb)        default f = tanh; clip bounds f's input.

Kernel layout (pack pass): W [I -> H] and R [H -> H] panel matrices (float32 or int8,
:mod:`edgernn.ops.matvec`); biases summed to [H].
Row: [OP_RNN, <recurrent common fields>, w_off, w_scale, r_off, r_scale, b_off,
pre_scratch (H)].
"""
import numpy as np

from ..config import jit
from . import register
from .activations import activate_inplace
from .matvec import add_matvec, lanes_for, set_bias
from .program import OP_RNN
from .recurrent import RecurrentOp, clip_inplace, frame_active, hold_state, recurrent_rows


@jit
def rnn_kernel(row, fparams, consts, qconsts, work, seq):
    """W x for every row of ``work`` at once, then R h and the activation per row (rows are
    streams, or with ``seq`` consecutive frames of one stream)."""
    xo, n_in, H, cnt, h_in, h_out = row[1], row[3], row[4], row[5], row[9], row[10]
    wo, ws, ro, rs, bo, pre = row[11:17]
    set_bias(consts, bo, H, work, pre)
    add_matvec(consts, qconsts, wo, ws, n_in, H, work, xo, pre, lanes_for(H), False)
    for t in range(work.shape[0] if seq else 1):
        r0, r1 = recurrent_rows(work, t, seq, h_out, h_in, H, cnt)
        rows = work[r0:r1]
        add_matvec(consts, qconsts, ro, rs, H, H, rows, h_in, pre, lanes_for(H), t % 2 == 1)
        for s in range(rows.shape[0]):
            rnn_cell(row, fparams, rows[s])


@jit
def rnn_cell(row, fparams, w):
    yo, H, cnt, limit, acts, clip_i, h_in, h_out, pre = row[2], row[4], row[5], row[6], row[7], row[8], \
        row[9], row[10], row[16]
    if not frame_active(w, cnt, limit):
        hold_state(w, h_in, h_out, H, yo)
        return
    p = w[pre:pre + H]
    clip_inplace(p, clip_i, fparams)
    activate_inplace(int(fparams[acts]), p, fparams[acts + 1], fparams[acts + 2])
    h = w[h_out:h_out + H]
    for j in range(H):
        h[j] = p[j]
    if yo >= 0:
        y = w[yo:yo + H]
        for j in range(H):
            y[j] = p[j]


@register
class RNN(RecurrentOp):
    name = "rnn"
    gates = 1
    n_acts = 1

    def step_ref(self, node, x, prev):
        W, R, Bv = self.params(node)
        H = self.hidden(node)
        pre = W @ x + R @ prev["h"] + Bv[:H] + Bv[H:]
        return {"h": self.act(node, 0, self.clip(node, pre)).astype(np.float32)}

    def emit(self, node, ctx):
        H = self.hidden(node)
        fields, reads, writes = self.emit_common(node, ctx)
        pre = ctx.scratch(H)
        fields += [*self.weight_fields(node, ctx), pre]
        ctx.row(node, OP_RNN, fields, reads=reads, writes=writes + [(pre, H)])

    def flops(self, node):
        H, I = self.hidden(node), node.inputs[0].size
        return 2 * H * (I + H) + 2 * H
