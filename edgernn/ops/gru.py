"""gru: one frame of an ONNX GRU (forward), gate order z, r, h as in ONNX.

    z = f(W_z x + R_z h_prev + Wb_z + Rb_z)
    r = f(W_r x + R_r h_prev + Wb_r + Rb_r)
    linear_before_reset = 0:  n = g(W_h x + R_h (r * h_prev) + Rb_h + Wb_h)
    linear_before_reset = 1:  n = g(W_h x + r * (R_h h_prev + Rb_h) + Wb_h)
    h = (1 - z) * n + z * h_prev

Defaults f = sigmoid, g = tanh; clip bounds every activation's input. PyTorch and Keras'
reset_after=True are linear_before_reset = 1.
Kernel layout: W [3H, I] and R [3H, H] as in ONNX, biases Wb [3H], Rb [3H].
Row: [OP_GRU, <recurrent common fields>, w_off, r_off, wb_off, rb_off, linear_before_reset,
gx_scratch (3H), gh_scratch (3H), rh_scratch (H)].
"""
import numpy as np

from ..config import jit
from . import register
from .activations import activate
from .program import OP_GRU
from .recurrent import RecurrentOp, affine_rows, clipped, frame_active, hold_state


@jit
def gru_kernel(row, fparams, consts, work):
    xo, yo, n_in, H, cnt, limit, acts, clip_i, h_in, h_out = row[1:11]
    wo, ro, wbo, rbo, lbr, gx, gh, rh = row[11:19]
    fc, fa, fb = int(fparams[acts]), fparams[acts + 1], fparams[acts + 2]
    gc, ga, gb = int(fparams[acts + 3]), fparams[acts + 4], fparams[acts + 5]
    one = np.float32(1.0)
    for s in range(work.shape[0]):
        w = work[s]
        if not frame_active(w, cnt, limit):
            hold_state(w, h_in, h_out, H, yo)
            continue
        affine_rows(consts, wo, wbo, 3 * H, n_in, w, xo, w, gx)
        n_rec = 3 * H if lbr else 2 * H
        affine_rows(consts, ro, rbo, n_rec, H, w, h_in, w, gh)
        for j in range(H):
            r = activate(fc, clipped(w[gx + H + j] + w[gh + H + j], clip_i, fparams), fa, fb)
            w[gh + H + j] = r
            if not lbr:
                w[rh + j] = r * w[h_in + j]
        if not lbr:
            affine_rows(consts, ro + 2 * H * H, rbo + 2 * H, H, H, w, rh, w, gh + 2 * H)
        for j in range(H):
            z = activate(fc, clipped(w[gx + j] + w[gh + j], clip_i, fparams), fa, fb)
            r = w[gh + H + j]
            if lbr:
                pre = w[gx + 2 * H + j] + r * w[gh + 2 * H + j]
            else:
                pre = w[gx + 2 * H + j] + w[gh + 2 * H + j]
            n = activate(gc, clipped(pre, clip_i, fparams), ga, gb)
            h = (one - z) * n + z * w[h_in + j]
            w[h_out + j] = h
            if yo >= 0:
                w[yo + j] = h


@register
class GRU(RecurrentOp):
    name = "gru"
    gates = 3
    n_acts = 2

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

    def emit(self, node, ctx):
        W, R, Bv = self.params(node)
        H = self.hidden(node)
        fields, reads, writes = self.emit_common(node, ctx)
        gx, gh, rh = ctx.scratch(3 * H), ctx.scratch(3 * H), ctx.scratch(H)
        fields += [ctx.const_off(W), ctx.const_off(R), ctx.const_off(Bv[:3 * H]), ctx.const_off(Bv[3 * H:]),
                   int(node.attrs.get("linear_before_reset", 0)), gx, gh, rh]
        ctx.row(node, OP_GRU, fields, reads=reads, writes=writes + [(gx, 3 * H), (gh, 3 * H), (rh, H)])

    def flops(self, node):
        H, I = self.hidden(node), node.inputs[0].size
        return 2 * 3 * H * (I + H) + 8 * H
