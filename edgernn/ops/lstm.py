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
Kernel layout (plan time): gates reordered to i, f, c, o; W and R fused to one matrix
[4H, I + H] read once per step against the vector [x; h_prev]; biases summed.
Row: [OP_LSTM, <recurrent common fields>, c_in, c_out, wr_off, b_off, p_off (-1),
input_forget, xh_scratch, gates_scratch, cell_clip_fp_index (-1: none)].
"""
import numpy as np

from ..config import jit
from . import register
from .activations import activate
from .program import OP_LSTM
from .recurrent import RecurrentOp, affine_rows, clipped, frame_active, hold_state

ONNX_TO_KERNEL = [0, 2, 3, 1]   # kernel gate k takes ONNX gate ONNX_TO_KERNEL[k] (i, f, c, o)


@jit
def lstm_kernel(row, fparams, consts, work):
    xo, yo, n_in, H, cnt, limit, acts, clip_i, h_in, h_out = row[1:11]
    c_in, c_out, wr, bo, po, input_forget, xh, gates, cell_clip_i = row[11:20]
    fa, fb = fparams[acts + 1], fparams[acts + 2]
    ga, gb = fparams[acts + 4], fparams[acts + 5]
    ha, hb = fparams[acts + 7], fparams[acts + 8]
    fc, gc, hc = int(fparams[acts]), int(fparams[acts + 3]), int(fparams[acts + 6])
    one = np.float32(1.0)
    for s in range(work.shape[0]):
        w = work[s]
        if not frame_active(w, cnt, limit):
            hold_state(w, h_in, h_out, H, yo)
            hold_state(w, c_in, c_out, H, -1)
            continue
        for k in range(n_in):
            w[xh + k] = w[xo + k]
        for k in range(H):
            w[xh + n_in + k] = w[h_in + k]
        affine_rows(consts, wr, bo, 4 * H, n_in + H, w, xh, w, gates)
        for j in range(H):
            c_prev = w[c_in + j]
            gi = w[gates + j]
            gf = w[gates + H + j]
            if po >= 0:
                gi += consts[po + j] * c_prev
                gf += consts[po + 2 * H + j] * c_prev
            i = activate(fc, clipped(gi, clip_i, fparams), fa, fb)
            if input_forget:
                f = one - i
            else:
                f = activate(fc, clipped(gf, clip_i, fparams), fa, fb)
            g = activate(gc, clipped(w[gates + 2 * H + j], clip_i, fparams), ga, gb)
            c = clipped(f * c_prev + i * g, cell_clip_i, fparams)
            go = w[gates + 3 * H + j]
            if po >= 0:
                go += consts[po + H + j] * c
            o = activate(fc, clipped(go, clip_i, fparams), fa, fb)
            h = o * activate(hc, c, ha, hb)
            w[c_out + j] = c
            w[h_out + j] = h
            if yo >= 0:
                w[yo + j] = h


@register
class LSTM(RecurrentOp):
    name = "lstm"
    gates = 4
    n_acts = 3
    state_slots = {"h": 5, "c": 6}
    state_outputs = {"h": 1, "c": 2}
    counter_slot = 8

    def peepholes(self, node):
        H = self.hidden(node)
        P = self.weight(node, 7, (1, 3 * H), "P", required=False)
        return None if P is None else P[0]

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
        W, R, Bv = self.params(node)
        H = self.hidden(node)
        I = W.shape[1]
        order = np.concatenate([np.arange(k * H, (k + 1) * H) for k in ONNX_TO_KERNEL])
        wr = np.concatenate([W, R], axis=1)[order]
        bias = (Bv[:4 * H] + Bv[4 * H:])[order]
        P = self.peepholes(node)
        fields, reads, writes = self.emit_common(node, ctx)
        c_in = ctx.work_off(node.inputs[6])
        c_out = ctx.work_off(node.outputs[2])
        xh, gates = ctx.scratch(I + H), ctx.scratch(4 * H)
        fields += [c_in, c_out, ctx.const_off(wr), ctx.const_off(bias),
                   ctx.const_off(P) if P is not None else -1,
                   int(node.attrs.get("input_forget", 0)), xh, gates,
                   ctx.fparam(node.attrs["cell_clip"]) if node.attrs.get("cell_clip") is not None else -1]
        ctx.row(node, OP_LSTM, fields, reads=reads + [(1, c_in, H)],
                writes=writes + [(c_out, H), (xh, I + H), (gates, 4 * H)])

    def flops(self, node):
        H, I = self.hidden(node), node.inputs[0].size
        return 2 * 4 * H * (I + H) + 10 * H
