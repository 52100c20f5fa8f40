"""Write the JapaneseVowels and BasicMotions train/test splits as small ``.npz`` files.

Both datasets ship inside the ``aeon`` package's wheel (UEA/UCI archives), so no download
happens. aeon is a heavy dependency that only this script needs; run it from its own venv
(aeon 1.6.0 made the committed files), from the repo root::

    python -m venv /tmp/aeon && /tmp/aeon/bin/pip install aeon
    /tmp/aeon/bin/python -m exporters.extract_aeon_data [--out examples/data]

Each file holds, for split in (train, test):

* ``<split>_frames``  float32 (total_frames, n_features): every recording's frames, one after
  another (a recording is a sequence of frames, time first);
* ``<split>_lengths`` int32 (n_recordings,): frames per recording, in order;
* ``<split>_labels``  int32 (n_recordings,): class index into ``classes``;

plus ``classes`` (unicode strings, the dataset's labels in sorted order), ``frame_period_s``
(float64 scalar: seconds between frames) and ``source`` (a unicode string: origin of the data
and of the frame period). Recording k of a split is
``frames[offsets[k]:offsets[k] + lengths[k]]`` with ``offsets = cumsum([0, *lengths[:-1]])``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from exporters.npz import save_npz

DATASETS = {
    "japanese_vowels": dict(
        loader="load_japanese_vowels",
        frame_period_s=0.0064,
        source=("JapaneseVowels (UCI; Kudo, Toyama, Shimbo 1999) from the aeon wheel. 12 LPC "
                "cepstrum coefficients per frame; the UCI description gives 10 kHz sampling, "
                "25.6 ms frames and a 6.4 ms frame shift, so one frame every 6.4 ms."),
    ),
    "basic_motions": dict(
        loader="load_basic_motions",
        frame_period_s=0.1,
        source=("BasicMotions (UEA archive) from the aeon wheel: a smart watch's 3-D accelerometer "
                "and 3-D gyroscope sampled every 0.1 s (10 Hz) for 10 s, per the dataset's header."),
    ),
}


def as_recordings(X) -> list[np.ndarray]:
    """aeon's X (list of, or 3-D array of, (channels, time)) -> list of (time, channels) float32."""
    return [np.ascontiguousarray(np.asarray(x, np.float64).T, np.float32) for x in X]


def extract(name: str, out: Path) -> Path:
    import aeon.datasets

    spec = DATASETS[name]
    load = getattr(aeon.datasets, spec["loader"])
    splits = {split: load(split=split) for split in ("train", "test")}
    classes = np.array(sorted(set(splits["train"][1])))
    arrays: dict[str, np.ndarray] = {}
    for split, (X, y) in splits.items():
        recs = as_recordings(X)
        unknown = set(y) - set(classes)
        if unknown:
            raise ValueError(f"{name} {split}: labels {sorted(unknown)} do not occur in train")
        arrays[f"{split}_frames"] = np.concatenate(recs)
        arrays[f"{split}_lengths"] = np.array([len(r) for r in recs], np.int32)
        arrays[f"{split}_labels"] = np.searchsorted(classes, y).astype(np.int32)
    path = out / f"{name}.npz"
    save_npz(path, classes=classes, frame_period_s=np.float64(spec["frame_period_s"]),
             source=np.array(spec["source"]), **arrays)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="examples/data", help="output folder (default: %(default)s)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in DATASETS:
        path = extract(name, out)
        with np.load(path) as z:
            desc = ", ".join(f"{s}: {len(z[f'{s}_lengths'])} recordings, "
                             f"{z[f'{s}_lengths'].min()}-{z[f'{s}_lengths'].max()} frames"
                             for s in ("train", "test"))
            print(f"wrote {path} ({path.stat().st_size:,} bytes): {z['train_frames'].shape[1]} "
                  f"features, {len(z['classes'])} classes {z['classes'].tolist()}; {desc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
