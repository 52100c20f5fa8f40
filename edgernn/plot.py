"""The ``--plot`` PNG: latency histogram and per-step series, deadline marked.

Both panels use a logarithmic time axis: a step of tens of microseconds and a deadline of
milliseconds are then visible in the same picture. matplotlib is an optional extra
(``pip install edgernn[plot]``), imported only here.
"""
import numpy as np

from .errors import EdgeRNNError


class PlotUnavailableError(EdgeRNNError, ImportError):
    """matplotlib is not installed."""


def plot_profile(result, path):
    """Write the PNG for a :class:`~edgernn.profile.ProfileResult`; returns `path`."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailableError("--plot needs matplotlib: pip install 'edgernn[plot]' "
                                   "(or pip install matplotlib)") from None
    us = result.latency_ns / 1e3
    s = result.latency_us
    deadline = result.period_us
    hi = max(us.max(), deadline or 0) * 1.3
    lo = max(us.min() * 0.8, 1e-3)

    fig, (ax_h, ax_t) = plt.subplots(2, 1, figsize=(9, 7), gridspec_kw={"height_ratios": [1, 1.1]})
    bins = np.geomspace(lo, hi, 120)
    ax_h.hist(us, bins=bins, color="#4c72b0")
    ax_h.set_xscale("log")
    ax_h.set_yscale("log")
    ax_h.set_xlabel("step latency (µs, log scale)")
    ax_h.set_ylabel("steps")
    for key, style in (("p50", "-"), ("p99", "--"), ("p99_9", ":")):
        ax_h.axvline(s[key], color="#222222", linestyle=style, linewidth=1,
                     label=f"{key.replace('_', '.')} {s[key]:.1f} µs")
    if deadline:
        ax_h.axvline(deadline, color="#c44e52", linewidth=2, label=f"deadline {deadline:.0f} µs")
    ax_h.legend(fontsize=8, loc="upper right")
    batch = "1 stream" if result.batch is None else f"batch {result.batch}"
    ax_h.set_title(f"{result.model}: {result.frames} steps, {batch}", fontsize=10)

    steps = np.arange(us.size)
    ax_t.plot(steps, us, ".", markersize=2, color="#4c72b0", alpha=0.6)
    if deadline:
        late = us > deadline
        ax_t.plot(steps[late], us[late], "x", markersize=5, color="#c44e52")
    ax_t.set_yscale("log")
    ax_t.set_ylim(lo, hi)
    ax_t.set_xlabel("step (warm-up excluded)")
    ax_t.set_ylabel("latency (µs, log scale)")
    if deadline:
        misses = int(np.count_nonzero(us > deadline))
        ax_t.axhline(deadline, color="#c44e52", linewidth=2, label=f"deadline ({misses} miss{'' if misses == 1 else 'es'})")
        ax_t.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
