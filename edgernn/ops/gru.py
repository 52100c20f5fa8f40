"""gru: one frame of an ONNX GRU (forward), gate order z, r, h as in ONNX.

    z = f(W_z x + R_z h_prev + Wb_z + Rb_z)
    r = f(W_r x + R_r h_prev + Wb_r + Rb_r)
    linear_before_reset = 0:  n = g(W_h x + R_h (r * h_prev) + Rb_h + Wb_h)
    linear_before_reset = 1:  n = g(W_h x + r * (R_h h_prev + Rb_h) + Wb_h)
    h = (1 - z) * n + z * h_prev

Defaults f = sigmoid, g = tanh; clip bounds every activation's input. PyTorch and Keras'
reset_after=True are linear_before_reset = 1.
Kernel layout (pack pass): Wt [I, 3H] and Rt [H, 3H] input-major in ONNX gate order
(float32 or int8, :mod:`edgernn.ops.matvec`); B [6H] = Wb | Rb as in ONNX.
Row: [OP_GRU, <recurrent common fields>, w_off, w_scale, r_off, r_scale, b_off,
linear_before_reset, gx_scratch (3H), gh_scratch (3H), rh_scratch (H), tmp_scratch (3H)].
"""
import numpy as np

from ..config import jit
from . import register
from .activations import activate
from .matvec import add_matvec, set_bias
from .program import OP_GRU
from .recurrent import RecurrentOp, clipped, frame_active, hold_state


@jit
def gru_kernel(row, fparams, consts, qconsts, work):
    xo, yo, n_in, H, cnt, limit, acts, clip_i, h_in, h_out = row[1:11]
    wo, ws, ro, rs, bo, lbr, gx, gh, rh, tmp = row[11:21]
    fc, fa, fb = int(fparams[acts]), fparams[acts + 1], fparams[acts + 2]
    gc, ga, gb = int(fparams[acts + 3]), fparams[acts + 4], fparams[acts + 5]
    one = np.float32(1.0)
    for s in range(work.shape[0]):
        w = work[s]
        if not frame_active(w, cnt, limit):
            hold_state(w, h_in, h_out, H, yo)
            continue
        G = 3 * H
        set_bias(consts, bo, G, w, gx)
        add_matvec(consts, qconsts, wo, ws, n_in, G, G, w, xo, w, gx, w, tmp)
        n_rec = G if lbr else 2 * H
        set_bias(consts, bo + G, n_rec, w, gh)
        add_matvec(consts, qconsts, ro, rs, H, n_rec, G, w, h_in, w, gh, w, tmp)
        for j in range(H):
            r = activate(fc, clipped(w[gx + H + j] + w[gh + H + j], clip_i, fparams), fa, fb)
            w[gh + H + j] = r
            if not lbr:
                w[rh + j] = r * w[h_in + j]
        if not lbr:
            set_bias(consts, bo + G + 2 * H, H, w, gh + 2 * H)
            add_matvec(consts, qconsts, ro + 2 * H, rs + 2 * H if rs >= 0 else -1, H, H, G,
                       w, rh, w, gh + 2 * H, w, tmp)
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

    def pack_bias(self, node, B, rows):
        return B

    def unpack_bias(self, node, b, inv):
        return b

    def emit(self, node, ctx):
        H = self.hidden(node)
        fields, reads, writes = self.emit_common(node, ctx)
        gx, gh, rh, tmp = ctx.scratch(3 * H), ctx.scratch(3 * H), ctx.scratch(H), ctx.scratch(3 * H)
        fields += [*self.weight_fields(node, ctx), int(node.attrs.get("linear_before_reset", 0)), gx, gh, rh, tmp]
        ctx.row(node, OP_GRU, fields, reads=reads,
                writes=writes + [(gx, 3 * H), (gh, 3 * H), (rh, H), (tmp, 3 * H)])

    def flops(self, node):
        H, I = self.hidden(node), node.inputs[0].size
        return 2 * 3 * H * (I + H) + 8 * H
