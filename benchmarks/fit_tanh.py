"""Derive the rational tanh the kernels use, and measure its error against NumPy.

    python benchmarks/fit_tanh.py

tanh(x) ~ x * P(x^2) / Q(x^2) on |x| <= CLAMP (x clamped outside), P of degree 5 and Q of
degree 3 in x^2, Q(0) = 1. Fitted by iteratively reweighted linear least squares
(Sanathanan-Koerner reweighting by 1/|Q|, then Lawson-style weighting toward the largest
errors) in the normalised variable (x / CLAMP)^2, in float64. The error is then measured by
evaluating the coefficients in float32, exactly as the kernel does (Horner, one division),
on 4,000,001 points of [-20, 20].

It is only mul/add/div, so LLVM vectorises it on x86 and on ARM NEON, where np.tanh and
np.exp stay scalar calls. The kernels' sigmoid is 0.5 + 0.5 * tanh(x / 2) (half the error).
The coefficients printed here are the ones in edgernn/ops/activations.py.
"""
import numpy as np

CLAMP = 9.0
P_DEG, Q_DEG = 5, 3


def fit(iterations=40):
    x = np.linspace(0, CLAMP, 40001)[1:]
    t = np.tanh(x)
    u = (x / CLAMP) ** 2
    w = np.ones_like(x)
    for it in range(iterations):
        a = np.concatenate([np.stack([x * u ** k for k in range(P_DEG + 1)], 1),
                            np.stack([-t * u ** k for k in range(1, Q_DEG + 1)], 1)], 1)
        coef, *_ = np.linalg.lstsq(a * w[:, None], t * w, rcond=None)
        p, q = coef[:P_DEG + 1], np.concatenate([[1.0], coef[P_DEG + 1:]])
        qu = np.polyval(q[::-1], u)
        err = x * np.polyval(p[::-1], u) / qu - t
        w = 1 / np.abs(qu) * (np.abs(err) / np.abs(err).max() + 1e-2) ** (0.5 if it > 8 else 0.0)
    scale = CLAMP ** (2 * np.arange(max(P_DEG, Q_DEG) + 1))
    return p / scale[:P_DEG + 1], q / scale[:Q_DEG + 1]


def tanh32(x, p, q):
    """The kernel's evaluation, in float32."""
    x = np.clip(np.asarray(x, np.float32), -np.float32(CLAMP), np.float32(CLAMP))
    s = x * x
    num = np.float32(p[-1])
    for c in p[-2::-1]:
        num = num * s + np.float32(c)
    den = np.float32(q[-1])
    for c in q[-2::-1]:
        den = den * s + np.float32(c)
    return x * num / den


def main():
    p, q = fit()
    xs = np.linspace(-20, 20, 4_000_001).astype(np.float32)
    exact = np.tanh(xs.astype(np.float64))
    err = np.abs(tanh32(xs, p, q).astype(np.float64) - exact)
    sig = 0.5 + 0.5 * tanh32(xs * np.float32(0.5), p, q)
    sig_err = np.abs(sig.astype(np.float64) - 1 / (1 + np.exp(-xs.astype(np.float64))))
    print(f"P = {[float(np.float32(c)) for c in p]}")
    print(f"Q = {[float(np.float32(c)) for c in q]}")
    print(f"tanh    max abs error {err.max():.2e} (at x = {xs[err.argmax()]:.4f}); "
          f"np.tanh in float32: {np.abs(np.tanh(xs).astype(np.float64) - exact).max():.2e}")
    print(f"sigmoid max abs error {sig_err.max():.2e}")


if __name__ == "__main__":
    main()
