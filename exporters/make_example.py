"""Write the example model used by the README: ``examples/kws_lstm.onnx``.

This is a **placeholder demo model with untrained (randomly initialised) weights**
until the trained keyword-spotting example lands. It exists so that the README's
commands (``edgernn info``, ``edgernn run``) have a real exported file to work on;
its outputs mean nothing as keyword scores.

The model is keyword-spotter shaped: 40 features per frame (e.g. log-mel bands),
``nn.LSTM(40, 64, num_layers=2, batch_first=True)``, then ``nn.Linear(64, 12)``
giving 12 class logits per frame. It is exported with the TorchScript exporter
(``dynamo=False``, opset 17) with a dynamic time axis, as one self-contained file.

Files written (in ``--out``, default ``examples/``):

* ``kws_lstm.onnx``              -- input ``features`` (1, T, 40), output ``logits`` (1, T, 12)
* ``kws_frames.npy``             -- 100 frames, float32 (100, 40): smooth seeded random features
* ``kws_expected_logits.npy``    -- the PyTorch model's logits for those 100 frames run as one
                                    sequence (batch 1, zero initial state), float32 (100, 12)

Usage (from the repo root)::

    python -m exporters.make_example [--out examples]

Deterministic: weights come from ``torch.manual_seed(0)``, frames from a fixed numpy seed,
and exporter metadata (stack traces with local paths) is stripped.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn
from exporters.onnx_utils import strip_metadata

N_FEATURES = 40
HIDDEN = 64
LAYERS = 2
N_CLASSES = 12
N_FRAMES = 100
FRAMES_SEED = 1234


class KWSLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(N_FEATURES, HIDDEN, num_layers=LAYERS, batch_first=True)
        self.head = nn.Linear(HIDDEN, N_CLASSES)

    def forward(self, x):  # x: (B, T, 40)
        y, _ = self.lstm(x)
        return self.head(y)  # (B, T, 12)


def build_model() -> KWSLSTM:
    torch.manual_seed(0)
    return KWSLSTM().eval()


def make_frames(n: int = N_FRAMES) -> np.ndarray:
    """Smooth random 'features': seeded noise low-pass filtered along time, plus a
    slowly varying per-band offset, roughly in the range of normalised log-mel features."""
    rng = np.random.default_rng(FRAMES_SEED)
    noise = rng.standard_normal((n + 8, N_FEATURES))
    kernel = np.hanning(9)
    kernel /= kernel.sum()
    smooth = np.stack([np.convolve(noise[:, k], kernel, mode="valid") for k in range(N_FEATURES)], axis=1)
    t = np.arange(n)[:, None]
    band = np.arange(N_FEATURES)[None, :]
    offset = 0.5 * np.sin(2 * np.pi * (t / 37.0 + band / N_FEATURES))
    return (2.0 * smooth + offset).astype(np.float32)


def export(model: nn.Module, path: Path) -> None:
    x = torch.zeros(1, 5, N_FEATURES)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (x,), str(path), dynamo=False, opset_version=17,
            input_names=["features"], output_names=["logits"],
            dynamic_axes={"features": {1: "T"}, "logits": {1: "T"}},
            external_data=False)
    strip_metadata(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="examples", help="output folder (default: examples)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    model = build_model()
    frames = make_frames()
    with torch.no_grad():
        logits = model(torch.from_numpy(frames)[None]).numpy()[0].astype(np.float32)

    onnx_path = out / "kws_lstm.onnx"
    export(model, onnx_path)
    onnx.checker.check_model(str(onnx_path))
    np.save(out / "kws_frames.npy", frames)
    np.save(out / "kws_expected_logits.npy", logits)

    n_params = sum(p.numel() for p in model.parameters())
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size} bytes, {n_params} parameters), "
          f"{out / 'kws_frames.npy'} {frames.shape}, {out / 'kws_expected_logits.npy'} {logits.shape}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
