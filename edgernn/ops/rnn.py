"""rnn: one frame of an ONNX RNN (forward).

    h = f(W x + R h_prev + Wb + Rb)        default f = tanh; clip bounds f's input.

Kernel layout: W and R fused to [H, I + H] read once against [x; h_prev]; biases summed.
Row: [OP_RNN, <recurrent common fields>, wr_off, b_off, xh_scratch (I + H), pre_scratch (H)].
"""
import numpy as np

from ..config import jit
from . import register
from .activations import activate
from .program import OP_RNN
from .recurrent import RecurrentOp, affine_rows, clipped, frame_active, hold_state


@jit
def rnn_kernel(row, fparams, consts, work):
    xo, yo, n_in, H, cnt, limit, acts, clip_i, h_in, h_out = row[1:11]
    wr, bo, xh, pre = row[11:15]
    fc, fa, fb = int(fparams[acts]), fparams[acts + 1], fparams[acts + 2]
    for s in range(work.shape[0]):
        w = work[s]
        if not frame_active(w, cnt, limit):
            hold_state(w, h_in, h_out, H, yo)
            continue
        for k in range(n_in):
            w[xh + k] = w[xo + k]
        for k in range(H):
            w[xh + n_in + k] = w[h_in + k]
        affine_rows(consts, wr, bo, H, n_in + H, w, xh, w, pre)
        for j in range(H):
            h = activate(fc, clipped(w[pre + j], clip_i, fparams), fa, fb)
            w[h_out + j] = h
            if yo >= 0:
                w[yo + j] = h


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
        W, R, Bv = self.params(node)
        H = self.hidden(node)
        I = W.shape[1]
        fields, reads, writes = self.emit_common(node, ctx)
        xh, pre = ctx.scratch(I + H), ctx.scratch(H)
        fields += [ctx.const_off(np.concatenate([W, R], axis=1)), ctx.const_off(Bv[:H] + Bv[H:]), xh, pre]
        ctx.row(node, OP_RNN, fields, reads=reads, writes=writes + [(xh, I + H), (pre, H)])

    def flops(self, node):
        H, I = self.hidden(node), node.inputs[0].size
        return 2 * H * (I + H) + 2 * H
