"""The ``--plot`` PNG: latency histogram and per-step series, deadline marked, and with
``--device`` the step predicted for that board (weights in cache and read from DRAM).

Both panels use a logarithmic time axis: a step of tens of microseconds and a deadline of
milliseconds are then visible in the same picture. The legends sit beside the panels, so they
cover neither the deadline nor the samples. matplotlib is an optional extra
(``pip install edgernn[plot]``), imported only here.
"""
import numpy as np

from .errors import EdgeRNNError


class PlotUnavailableError(EdgeRNNError, ImportError):
    """matplotlib is not installed."""


#: the predicted step's two lines: weights in cache (warm), read from DRAM every step (cold)
PREDICTED = (("warm_us", "--", "in cache"), ("cold_us", "-", "from DRAM"))
LEGEND = dict(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def plot_profile(result, path):
    """Write the PNG for a :class:`~edgernn.profile.ProfileResult`; returns `path`."""
    fig = profile_figure(result)
    import matplotlib.pyplot as plt
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def profile_figure(result):
    """The matplotlib Figure of :func:`plot_profile` (histogram above, series below)."""
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
    dev = result.device
    predicted = [(dev[key], style, f"{dev['device']} predicted, weights {where} {dev[key]:.1f} µs")
                 for key, style, where in PREDICTED] if dev else []
    marks = [v for v, _, _ in predicted] + ([deadline] if deadline else [])
    hi = max([us.max()] + marks) * 1.3
    lo = max(min([us.min()] + marks) * 0.8, 1e-3)

    fig, (ax_h, ax_t) = plt.subplots(2, 1, figsize=(11, 7), gridspec_kw={"height_ratios": [1, 1.1]},
                                     layout="constrained")
    bins = np.geomspace(lo, hi, 120)
    ax_h.hist(us, bins=bins, color="#4c72b0")
    ax_h.set_xscale("log")
    ax_h.set_yscale("log")
    ax_h.set_xlabel("step latency (µs, log scale)")
    ax_h.set_ylabel("steps")
    for key, style in (("p50", "-"), ("p99", "--"), ("p99_9", ":")):
        ax_h.axvline(s[key], color="#222222", linestyle=style, linewidth=1,
                     label=f"{key.replace('_', '.')} {s[key]:.1f} µs")
    for value, style, label in predicted:
        ax_h.axvline(value, color="#55a868", linestyle=style, linewidth=1.5, label=label)
    if deadline:
        ax_h.axvline(deadline, color="#c44e52", linewidth=2, label=f"deadline {deadline:.0f} µs")
    ax_h.legend(**LEGEND)
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
    for value, style, label in predicted:
        ax_t.axhline(value, color="#55a868", linestyle=style, linewidth=1.5, label=label)
    if deadline:
        misses = int(np.count_nonzero(us > deadline))
        ax_t.axhline(deadline, color="#c44e52", linewidth=2, label=f"deadline ({misses} miss{'' if misses == 1 else 'es'})")
    if deadline or predicted:
        ax_t.legend(**LEGEND)
    return fig
