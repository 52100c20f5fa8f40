"""The real DFT of one frame and its inverse, in Numba: the transform under the STFT and ISTFT.

    X[k] = sum_{n=0}^{N-1} x[n] exp(-2 pi i k n / N),     k = 0 .. N/2      (numpy.fft.rfft)
    x[n] = (1/N) sum_{k=0}^{N-1} X[k] exp(+2 pi i k n / N), X[N - k] = conj X[k]  (numpy.fft.irfft)

N = n_fft, K = N // 2 + 1 bins. A spectrum is two float64 arrays [K], real and imaginary
parts. The inverse ignores the imaginary parts of X[0] and (N even) X[N/2], as irfft does.
Arithmetic is float64 (tables, sums and scratch): the features then equal a float64 offline
computation to float32 rounding, and a 512-point transform costs a few microseconds either way.

One kernel, two algorithms, the choice made when the tables are built (:class:`FourierTables`):

- N a power of two: the N/2-point complex FFT of z[m] = x[2m] + i x[2m+1] (iterative radix-2,
  decimation in time: a bit-reversed copy, then log2(N/2) stages of butterflies), split into
  the N-point spectrum of the real x (Z indices mod N/2, W = exp(-2 pi i / N)):

      E[k] = (Z[k] + conj Z[N/2 - k]) / 2,  O[k] = (Z[k] - conj Z[N/2 - k]) / (2i),
      X[k] = E[k] + W^k O[k]

  and backwards for the inverse: E[k] = (X[k] + conj X[N/2 - k]) / 2, O[k] = (X[k] - conj
  X[N/2 - k]) W^-k / 2, Z = E + i O, z = IFFT(Z) = conj FFT(conj Z) / (N/2).
- any other N (400 = 25 ms at 16 kHz): a precomputed DFT basis, folded on the symmetry of a
  real frame (x[n] and x[N - n] meet the same cosine and the opposite sine):

      e[0] = x[0], e[n] = x[n] + x[N - n], o[n] = x[n] - x[N - n]  (0 < n < N/2), e[N/2] = x[N/2]
      Re X[k] = sum_{n=0}^{N//2} e[n] C[k, n],   Im X[k] = -sum_n o[n] S[k, n]
      C[k, n] = cos(2 pi k n / N), S[k, n] = sin(2 pi k n / N)     [K, K] float64, symmetric

  400 points: two 201 x 201 matrices (646 KB) and 80,802 multiply-adds per transform, run
  row by row so that the K sums advance side by side (each still adds its terms in order of
  n: no reassociation). The inverse runs the same rows: x[n], x[N - n] = (A[n] -+ B[n]) / N with
  A[n] = sum_k a_k Re X[k] C[k, n], B[n] = sum_k a_k Im X[k] S[k, n], a_k = 1 for k = 0 and
  k = N/2, else 2.

Kernel arguments: ``tables`` = :attr:`FourierTables.arrays` (a tuple; the arrays of the
algorithm not chosen are empty), ``work_re``/``work_im`` float64 [N // 2 + 1] scratch.
"""
import numpy as np

from ...config import jit_inline
from ...errors import SignalArgumentError
from ...limits import check_bytes

#: the largest n_fft that is not a power of two: its basis takes 16 K^2 bytes (67 MB at 4096)
#: and as many multiply-adds per frame, where a power of two takes a few (N/2) log2(N/2)
MAX_BASIS_SIZE = 4096


class FourierTables:
    """The precomputed tables of an ``n_fft``-point real DFT (module docstring).

    ``arrays`` = (bit_reversal int64 [N/2], twiddle_cos, twiddle_sin float64 [N/4] (cos and
    sin of 2 pi t / (N/2)), split_cos, split_sin float64 [N/2 + 1] (of 2 pi k / N), basis_cos,
    basis_sin float64 [K, K]); ``scratch_length`` = N // 2 + 1, the length of the
    kernels' ``work_re``/``work_im``."""

    def __init__(self, n_fft):
        if isinstance(n_fft, bool) or not isinstance(n_fft, (int, np.integer)) or n_fft < 2:
            raise SignalArgumentError(f"n_fft must be a whole number of samples >= 2, got {n_fft!r}")
        self.n_fft = n = int(n_fft)
        self.bins = n // 2 + 1
        self.scratch_length = n // 2 + 1
        self.radix2 = n & (n - 1) == 0
        if not self.radix2 and n > MAX_BASIS_SIZE:
            raise SignalArgumentError(f"n_fft {n} is not a power of two and above {MAX_BASIS_SIZE}: its DFT basis would "
                                      f"take {16 * self.bins ** 2 / 1e6:.0f} MB; use a power of two such as "
                                      f"{1 << n.bit_length()}")
        check_bytes(8 * 4 * n, f"the scratch of a {n}-point FFT")
        empty1, empty2 = np.zeros(0), np.zeros((0, 0))
        if self.radix2:
            half = n // 2
            bits = half.bit_length() - 1
            m = np.arange(half, dtype=np.int64)
            rev = np.zeros(half, np.int64)
            for b in range(bits):                           # rev[m]: m's bits in reverse order
                rev |= ((m >> b) & 1) << (bits - 1 - b)
            t = 2 * np.pi * np.arange(half // 2) / half
            k = 2 * np.pi * np.arange(half + 1) / n
            self.arrays = (rev, np.cos(t), np.sin(t), np.cos(k), np.sin(k), empty2, empty2)
        else:
            kn = np.outer(np.arange(self.bins), np.arange(n // 2 + 1)) % n       # exact: k n mod N
            angle = 2 * np.pi * kn / n
            sin = np.sin(angle)
            sin[(2 * kn) % n == 0] = 0.0                    # sin(0), sin(pi): exactly 0
            self.arrays = (np.zeros(0, np.int64), empty1, empty1, empty1, empty1, np.cos(angle), sin)


@jit_inline
def fft_in_place(re, im, twiddle_cos, twiddle_sin):
    """Forward complex FFT of re + i im (float64 [M], M a power of two, entries already in
    bit-reversed order), in place. twiddle_*[t] = cos/sin(2 pi t / M), t < M / 2."""
    m = re.shape[0]
    size = 2
    while size <= m:
        half = size // 2
        stride = m // size
        for start in range(0, m, size):
            for j in range(half):
                c = twiddle_cos[j * stride]                 # exp(-2 pi i j / size) = c - i s
                s = twiddle_sin[j * stride]
                a = start + j
                b = a + half
                tr = c * re[b] + s * im[b]
                ti = c * im[b] - s * re[b]
                re[b] = re[a] - tr
                im[b] = im[a] - ti
                re[a] += tr
                im[a] += ti
        size *= 2


@jit_inline
def real_fft(x, tables, re, im, work_re, work_im):
    """X = rfft(x): x float64 [N] -> re, im float64 [K] (N // 2 + 1 each)."""
    rev, twiddle_cos, twiddle_sin, split_cos, split_sin, basis_cos, basis_sin = tables
    n = x.shape[0]
    if basis_cos.shape[0] == 0:                             # N a power of two
        half = n // 2
        for m in range(half):
            work_re[rev[m]] = x[2 * m]
            work_im[rev[m]] = x[2 * m + 1]
        fft_in_place(work_re[:half], work_im[:half], twiddle_cos, twiddle_sin)
        for k in range(half + 1):
            a = k % half
            b = (half - k) % half
            zr, zi = work_re[a], work_im[a]
            cr, ci = work_re[b], -work_im[b]                # conj Z[N/2 - k]
            er, ei = 0.5 * (zr + cr), 0.5 * (zi + ci)
            odd_re, odd_im = 0.5 * (zi - ci), -0.5 * (zr - cr)     # (Z - conj Z') / 2i
            c, s = split_cos[k], split_sin[k]
            re[k] = er + c * odd_re + s * odd_im
            im[k] = ei + c * odd_im - s * odd_re
        return
    half = n // 2                                           # folded basis: e -> work_re, o -> work_im
    work_re[0] = x[0]
    work_im[0] = 0.0
    for j in range(1, (n + 1) // 2):
        work_re[j] = x[j] + x[n - j]
        work_im[j] = x[j] - x[n - j]
    if n % 2 == 0:
        work_re[half] = x[half]
        work_im[half] = 0.0
    re[:] = 0.0
    im[:] = 0.0
    for j in range(half + 1):           # by rows (C and S are symmetric): each bin's sum in order of j,
        a = work_re[j]                  # the bins side by side in vector registers
        b = work_im[j]
        for k in range(re.shape[0]):
            re[k] += a * basis_cos[j, k]
            im[k] -= b * basis_sin[j, k]


@jit_inline
def inverse_real_fft(re, im, tables, x, work_re, work_im):
    """x = irfft(re + i im, N): re, im float64 [K] -> x float64 [N] (N = x.shape[0]); the
    imaginary parts of bin 0 and (N even) bin N/2 are ignored."""
    rev, twiddle_cos, twiddle_sin, split_cos, split_sin, basis_cos, basis_sin = tables
    n = x.shape[0]
    half = n // 2
    if basis_cos.shape[0] == 0:                             # N a power of two
        for k in range(half):
            xr, xi = re[k], (im[k] if k > 0 else 0.0)
            yr, yi = re[half - k], (-im[half - k] if k > 0 else 0.0)   # conj X[N/2 - k]
            er, ei = 0.5 * (xr + yr), 0.5 * (xi + yi)
            dr, di = 0.5 * (xr - yr), 0.5 * (xi - yi)
            c, s = split_cos[k], split_sin[k]
            odd_re, odd_im = dr * c - di * s, dr * s + di * c         # D exp(+2 pi i k / N)
            work_re[rev[k]] = er - odd_im                   # conj(E + i O), for the inverse
            work_im[rev[k]] = -(ei + odd_re)
        fft_in_place(work_re[:half], work_im[:half], twiddle_cos, twiddle_sin)
        for m in range(half):
            x[2 * m] = work_re[m] / half
            x[2 * m + 1] = -work_im[m] / half
        return
    for j in range(half + 1):                               # A -> work_re, B -> work_im
        work_re[j] = 0.0
        work_im[j] = 0.0
    for k in range(re.shape[0]):
        weight = 1.0 if k == 0 or 2 * k == n else 2.0
        a = weight * re[k]
        b = weight * im[k]
        for j in range(half + 1):
            work_re[j] += a * basis_cos[k, j]
            work_im[j] += b * basis_sin[k, j]
    x[0] = work_re[0] / n
    for j in range(1, (n + 1) // 2):
        x[j] = (work_re[j] - work_im[j]) / n
        x[n - j] = (work_re[j] + work_im[j]) / n
    if n % 2 == 0:
        x[half] = work_re[half] / n
