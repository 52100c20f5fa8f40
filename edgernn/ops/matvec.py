"""The weight-times-vector kernel every dense and recurrent op uses, and its weight layout.

Weights are packed at load time (:mod:`edgernn.passes.pack`) input-major: a matrix
``Wt[K, N]`` (K inputs, N outputs; row k holds input k's weight for every output), float32 in
``consts`` or int8 in ``qconsts`` with a float32 scale per output (:mod:`edgernn.quant`).
Input-major lets the inner loop run over contiguous outputs, ``out[j] += Wt[k, j] * v[k]``:
it vectorises without reassociating a sum (so without fastmath) and reads each weight once.
Four inputs per pass over the outputs, summed as ((o + w0 x0) + w1 x1) + (w2 x2 + w3 x3):
under fastmath 'contract' that is three fused multiply-adds, one multiply and one add (two
pairs would leave two products unfused; one chain of four FMAs makes an in-order core such as
the Cortex-A53 wait on four dependent FMAs). The order is fixed, so results are the same from
run to run and across batch sizes.

    float: out[j] += sum_k Wt[k, j] * v[k]
    int8:  out[j] += scale[j] * sum_k q[k, j] * v[k]       (the sum kept in ``tmp``)
for j < n, over columns ``col0 .. col0 + n`` of a matrix with ``ld`` columns, for every
stream of the batch at once (the weights are read once for all of them).
"""
import numpy as np

from ..config import jit
from ..ir.graph import Value


def input_major(v, rows=None):
    """A constant weight [..., N, K] (leading axes of size 1; float, or int8 with one scale per
    row N) as the kernels read it: a Value [K, N], its rows (outputs) reordered by ``rows``
    when given, int8 scales along the last axis."""
    w = v.const.reshape(v.const.shape[-2:])
    scale = None if v.scale is None else v.scale.reshape(-1)
    if rows is not None:
        w = w[rows]
        scale = None if scale is None else scale[rows]
    const = np.ascontiguousarray(w.T)
    return Value(v.name, shape=const.shape, dtype=v.dtype, const=const, scale_axis=-1,
                 scale=None if scale is None else np.ascontiguousarray(scale, np.float32))


@jit
def _accumulate(wt, w_off, k_in, n, ld, work, v_off, acc_off):
    """work[s, acc_off + j] += sum_k wt[w_off + k * ld + j] * work[s, v_off + k] for every
    stream s (row of ``work``).

    Four rows of wt at a time, held while every stream uses them, so the weights are read
    once per step whatever the batch; two streams share each load of those rows (the loop
    over j then does twice the arithmetic per weight load). Slices (indices from 0) let
    LLVM drop Numba's negative-index wraparound and vectorise the j loop."""
    n_streams = work.shape[0]
    k = 0
    while k + 4 <= k_in:
        b = w_off + k * ld
        r0, r1 = wt[b:b + n], wt[b + ld:b + ld + n]
        r2, r3 = wt[b + 2 * ld:b + 2 * ld + n], wt[b + 3 * ld:b + 3 * ld + n]
        s = 0
        while s + 2 <= n_streams:
            wa, wb = work[s], work[s + 1]
            a0, a1, a2, a3 = wa[v_off + k], wa[v_off + k + 1], wa[v_off + k + 2], wa[v_off + k + 3]
            b0, b1, b2, b3 = wb[v_off + k], wb[v_off + k + 1], wb[v_off + k + 2], wb[v_off + k + 3]
            oa, ob = wa[acc_off:acc_off + n], wb[acc_off:acc_off + n]
            for j in range(n):
                q0, q1, q2, q3 = np.float32(r0[j]), np.float32(r1[j]), np.float32(r2[j]), np.float32(r3[j])
                oa[j] = ((oa[j] + q0 * a0) + q1 * a1) + (q2 * a2 + q3 * a3)
                ob[j] = ((ob[j] + q0 * b0) + q1 * b1) + (q2 * b2 + q3 * b3)
            s += 2
        if s < n_streams:
            w = work[s]
            x0, x1, x2, x3 = w[v_off + k], w[v_off + k + 1], w[v_off + k + 2], w[v_off + k + 3]
            o = w[acc_off:acc_off + n]
            for j in range(n):
                o[j] = ((o[j] + np.float32(r0[j]) * x0) + np.float32(r1[j]) * x1) + \
                       (np.float32(r2[j]) * x2 + np.float32(r3[j]) * x3)
        k += 4
    while k < k_in:
        r = wt[w_off + k * ld:w_off + k * ld + n]
        for s in range(n_streams):
            w = work[s]
            x = w[v_off + k]
            o = w[acc_off:acc_off + n]
            for j in range(n):
                o[j] += np.float32(r[j]) * x
        k += 1


@jit
def add_matvec(consts, qconsts, w_off, s_off, k_in, n, ld, work, v_off, out_off, tmp_off):
    """For every stream (row of ``work``): out[j] += (W v)[j] for j < n, v at ``v_off`` and
    out at ``out_off`` in the stream's row. ``s_off`` < 0: float weights at consts[w_off];
    else int8 weights at qconsts[w_off] with scales at consts[s_off], summed in the stream's
    ``tmp_off`` scratch (n floats) first. ``w_off`` already points at the first column used."""
    if s_off < 0:
        _accumulate(consts, w_off, k_in, n, ld, work, v_off, out_off)
        return
    for s in range(work.shape[0]):
        t = work[s, tmp_off:tmp_off + n]
        for j in range(n):
            t[j] = np.float32(0.0)
    _accumulate(qconsts, w_off, k_in, n, ld, work, v_off, tmp_off)
    sc = consts[s_off:s_off + n]
    for s in range(work.shape[0]):
        t = work[s, tmp_off:tmp_off + n]
        o = work[s, out_off:out_off + n]
        for j in range(n):
            o[j] += t[j] * sc[j]


@jit
def set_bias(consts, b_off, n, work, out_off):
    """work[s, out_off + j] = b[j] (b_off >= 0) or 0, for every stream s."""
    for s in range(work.shape[0]):
        o = work[s, out_off:out_off + n]
        if b_off >= 0:
            b = consts[b_off:b_off + n]
            for j in range(n):
                o[j] = b[j]
        else:
            for j in range(n):
                o[j] = np.float32(0.0)
