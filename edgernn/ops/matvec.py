"""The weight-times-vector kernel every dense and recurrent op uses, and its weight layout.

Weights are packed at load time (:mod:`edgernn.passes.pack`) input-major: a matrix
``Wt[K, N]`` (K inputs, N outputs; row k holds input k's weight for every output), float32 in
``consts`` or int8 in ``qconsts`` with a float32 scale per output (:mod:`edgernn.quant`).
Input-major lets the inner loop run over contiguous outputs, ``out[j] += Wt[k, j] * v[k]``:
it vectorises without reassociating a sum (so without fastmath) and reads each weight once.
The sum over k is taken four inputs at a time ((w0 x0 + w1 x1) + (w2 x2 + w3 x3)), a fixed
order, so results are the same from run to run and across batch sizes.

    float: out[j] += sum_k Wt[k, j] * v[k]
    int8:  out[j] += scale[j] * sum_k q[k, j] * v[k]       (the sum kept in ``tmp``)
for j < n, over columns ``col0 .. col0 + n`` of a matrix with ``ld`` columns.
"""
import numpy as np

from ..config import jit


@jit
def _accumulate(wt, w_off, k_in, n, ld, v, v_off, out, out_off):
    """out[out_off + j] += sum_k wt[w_off + k * ld + j] * v[v_off + k], four rows of wt at a
    time: a quarter of the loads and stores of ``out``. Slices (indices from 0) let LLVM drop
    Numba's negative-index wraparound and vectorise the j loop."""
    o = out[out_off:out_off + n]
    k = 0
    while k + 4 <= k_in:
        x0, x1, x2, x3 = v[v_off + k], v[v_off + k + 1], v[v_off + k + 2], v[v_off + k + 3]
        b = w_off + k * ld
        r0, r1 = wt[b:b + n], wt[b + ld:b + ld + n]
        r2, r3 = wt[b + 2 * ld:b + 2 * ld + n], wt[b + 3 * ld:b + 3 * ld + n]
        for j in range(n):
            o[j] += (np.float32(r0[j]) * x0 + np.float32(r1[j]) * x1) + \
                    (np.float32(r2[j]) * x2 + np.float32(r3[j]) * x3)
        k += 4
    while k < k_in:
        x = v[v_off + k]
        r = wt[w_off + k * ld:w_off + k * ld + n]
        for j in range(n):
            o[j] += np.float32(r[j]) * x
        k += 1


@jit
def add_matvec(consts, qconsts, w_off, s_off, k_in, n, ld, v, v_off, out, out_off, tmp, tmp_off):
    """out[out_off + j] += (W v)[j] for j < n. ``s_off`` < 0: float weights at consts[w_off];
    else int8 weights at qconsts[w_off] with scales at consts[s_off] and ``tmp`` (n floats at
    tmp[tmp_off]) as the accumulator. ``w_off`` already points at the first column used."""
    if s_off < 0:
        _accumulate(consts, w_off, k_in, n, ld, v, v_off, out, out_off)
        return
    for j in range(n):
        tmp[tmp_off + j] = np.float32(0.0)
    _accumulate(qconsts, w_off, k_in, n, ld, v, v_off, tmp, tmp_off)
    for j in range(n):
        out[out_off + j] += tmp[tmp_off + j] * consts[s_off + j]


@jit
def set_bias(consts, b_off, n, out, out_off):
    """out[out_off + j] = b[j] (b_off >= 0) or 0."""
    for j in range(n):
        out[out_off + j] = consts[b_off + j] if b_off >= 0 else np.float32(0.0)
