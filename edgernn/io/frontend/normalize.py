"""Per-feature normalisation with the training statistics, the last stage of a front end.

    y[j] = (x[j] - mean[j]) / std[j]        j < F, the front end's feature size

mean and std float64 [F] come from a file (:func:`load_statistics`):

- ``.npy``: one float array [2, F], the means then the standard deviations;
- ``.npz``: arrays ``mean`` and ``std``, [F] each (``np.savez(path, mean=m, std=s)``);
- ``.json``: ``{"mean": [...], "std": [...]}``.

Each std must be a positive finite number, each mean finite (a NaN or an infinity would reach
every later frame: a recurrent state keeps it for good). Checked when the front end is built,
against its feature size.
"""
import json
import os

import numpy as np

from ...config import jit_inline
from ...errors import SignalArgumentError


def load_statistics(path):
    """(mean, std) as stored in ``path`` (module docstring; :func:`check_statistics` checks
    them); SignalArgumentError naming the file and what it must hold when it cannot be read."""
    where = os.fspath(path)
    layout = ("a .npy of shape [2, F] (means, then standard deviations), a .npz with arrays 'mean' and 'std', "
              "or a .json {\"mean\": [...], \"std\": [...]}")
    if not where.endswith((".npy", ".npz", ".json")):
        raise SignalArgumentError(f"--normalize {where!r}: unknown file type; use {layout}")
    try:
        if where.endswith(".npz"):
            with np.load(where, allow_pickle=False) as stored:
                mean, std = stored["mean"], stored["std"]
        elif where.endswith(".npy"):
            both = np.load(where, allow_pickle=False)
            mean, std = both if both.ndim == 2 and both.shape[0] == 2 else (None, None)
        else:
            with open(where) as f:
                stored = json.load(f)
            mean, std = stored["mean"], stored["std"]
    except FileNotFoundError:
        raise SignalArgumentError(f"--normalize: no file at {where!r}") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        why = f"{type(e).__name__}: {e}"
        raise SignalArgumentError(f"--normalize {where!r} cannot be read as {layout} ({why})") from None
    if mean is None:
        raise SignalArgumentError(f"--normalize {where!r} holds an array of shape {both.shape}; it must be {layout}")
    return mean, std


def check_statistics(mean, std, size, features):
    """mean, std as float64 [size] after checking shapes and values (module docstring)."""
    try:
        mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    except (TypeError, ValueError):
        raise SignalArgumentError("the normalisation mean and std must be lists of numbers") from None
    for name, v in (("mean", mean), ("std", std)):
        if v.shape != (size,):
            raise SignalArgumentError(f"the normalisation {name} has shape {v.shape}, but the front end gives {size} "
                                      f"values per step ({features}); use statistics of the same features")
        bad = np.flatnonzero(~np.isfinite(v))
        if len(bad):
            raise SignalArgumentError(f"the normalisation {name} holds a value that is not finite at feature "
                                      f"{bad[0]} ({v[bad[0]]}); recompute the statistics")
    if (std <= 0).any():
        j = int(np.flatnonzero(std <= 0)[0])
        raise SignalArgumentError(f"the normalisation std is {std[j]} at feature {j}; every std must be positive "
                                  "(a feature constant in training: use 1 there)")
    return mean, std


@jit_inline
def normalize_into(values, size, mean, std, out):
    """out[:size] = (values - mean) / std as float32, or a plain copy when mean is empty."""
    if mean.shape[0] == 0:
        for j in range(size):
            out[j] = values[j]
        return
    for j in range(size):
        out[j] = (values[j] - mean[j]) / std[j]
