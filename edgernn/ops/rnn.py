"""rnn: one frame of an ONNX RNN (forward).

    h = f(W x + R h_prev + Wb + Rb)        default f = tanh; clip bounds f's input.

Kernel layout (pack pass): W [I -> H] and R [H -> H] panel matrices (float32 or int8,
:mod:`edgernn.ops.matvec`); biases summed to [H].
Row: :data:`ROW` (the common recurrent fields, then a scratch).
"""
import numpy as np

from ..config import jit
from . import register
from .activations import activate_inplace
from .matvec import add_matvec
from .recurrent import RecurrentOp, clip_inplace, frame_active, hold_state, recurrent_layout, recurrent_projections, \
    recurrent_rows
from .row import Field, work

ROW = recurrent_layout("rnn", n_acts=1, gates=1, r_groups=lambda r: [r.hidden], bias_length=lambda r: r.hidden,
                       own_fields=[Field("pre", "scratch for the pre-activation [hidden]",
                                         work(lambda r: r.hidden, writes=True, optional=False))])
F = ROW.fields


@ROW.kernel
@jit
def rnn_kernel(row, fparams, consts, qconsts, work, seq):
    """W x for every row of ``work`` at once, then R h and the activation per row (rows are
    streams, or with ``seq`` consecutive frames of one stream)."""
    H, cnt, h_in, h_out = row[F.hidden], row[F.counter], row[F.h_in], row[F.h_out]
    ro, rs, pre = row[F.r], row[F.r_scale], row[F.pre]
    recurrent_projections(row, consts, qconsts, work, H, pre)
    for t in range(work.shape[0] if seq else 1):
        r0, r1 = recurrent_rows(work, t, seq, h_out, h_in, H, cnt)
        rows = work[r0:r1]
        add_matvec(row[F.r_matvec], consts, qconsts, ro, rs, H, H, rows, h_in, pre, t % 2 == 1)
        for s in range(rows.shape[0]):
            rnn_cell(row, fparams, rows[s])


@jit
def rnn_cell(row, fparams, w):
    yo, H, cnt, limit, acts, clip_i = row[F.y], row[F.hidden], row[F.counter], row[F.frame_limit], row[F.acts], \
        row[F.clip]
    h_in, h_out, pre = row[F.h_in], row[F.h_out], row[F.pre]
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
        ctx.row(node, ROW, **self.emit_common(node, ctx), pre=ctx.scratch(self.hidden(node)))

    def flops(self, node):
        H, I = self.hidden(node), node.inputs[0].size
        return 2 * H * (I + H) + 2 * H
