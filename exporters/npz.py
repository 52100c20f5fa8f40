"""Byte-for-byte reproducible ``.npz`` files (NumPy only, so any venv can import it)."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Like ``np.savez`` (dtypes kept, no pickle) but with fixed zip timestamps, so running a
    script twice writes the same bytes and git sees no change."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())
