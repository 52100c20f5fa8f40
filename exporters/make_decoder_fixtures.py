"""A real PyTorch *step graph* with transposed convolutions, exported to ONNX: a small decoder
in the style of speech-enhancement models (a recurrent bottleneck, then ConvTranspose1d layers
that upsample a frame's features to samples). One call is one step; the GRU state is an
explicit input and output.

What it makes (in ``--out``, default ``tests/fixtures/onnx``), for each exporter (``ts`` =
TorchScript, ``dynamo=False``, opset 17; ``dy`` = the dynamo exporter, opset 18, where it
produces a usable file):

* ``convtranspose_decoder_<ts|dy>.onnx``: ``forward(x [B, 1, 16], h [1, B, 24]) ->
  (y [B, 1, 32], hn [1, B, 24])``: a GRU (batch_first) takes one step on the frame, a Linear
  gives [B, 64] reshaped to [B, 8, 8], ConvTranspose1d(8 -> 4, kernel 4, stride 2, padding 1)
  and ReLU give [B, 4, 16], ConvTranspose1d(4 -> 1, kernel 3, stride 2, padding 1,
  output_padding 1) gives y [B, 1, 32]. The batch axes are dynamic.
* ``convtranspose_decoder_<ts|dy>.npz``: ``frames`` (200, 1, 16) seeded noise and PyTorch's
  ``y`` (200, 1, 32) from calling the module once per frame with its state fed back.

Usage (from the repo root): ``python -m exporters.make_decoder_fixtures [--out DIR]``.
"""
import argparse
from pathlib import Path

import numpy as np

from .make_step_fixtures import export, step_reference

STEPS, FEATURES, HIDDEN = 200, 16, 24
CHANNELS, LENGTH = 8, 8          # the Linear's output as [CHANNELS, LENGTH]
MIDDLE, SAMPLES = 4, 32          # the first ConvTranspose1d's channels; samples per frame out


def build():
    import torch
    from torch import nn

    class DecoderStep(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(FEATURES, HIDDEN, batch_first=True)
            self.expand = nn.Linear(HIDDEN, CHANNELS * LENGTH)
            self.up1 = nn.ConvTranspose1d(CHANNELS, MIDDLE, kernel_size=4, stride=2, padding=1)
            self.up2 = nn.ConvTranspose1d(MIDDLE, 1, kernel_size=3, stride=2, padding=1, output_padding=1)

        def forward(self, x, h):
            out, hn = self.gru(x, h)                                          # [B, 1, 24]
            z = self.expand(out[:, -1]).reshape(-1, CHANNELS, LENGTH)         # [B, 8, 8]
            return self.up2(torch.relu(self.up1(z))), hn                      # [B, 1, 32]

    torch.manual_seed(0)
    return DecoderStep().eval()


def example_inputs(torch, batch=1):
    return torch.zeros(batch, 1, FEATURES), torch.zeros(1, batch, HIDDEN)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/fixtures/onnx")
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    import torch
    module = build()
    frames = np.random.default_rng(11).standard_normal((STEPS, 1, FEATURES)).astype(np.float32)
    y = step_reference(module, frames, example_inputs(torch)[1:])
    assert y.shape == (STEPS, 1, SAMPLES), y.shape
    for tag, dynamo in (("ts", False), ("dy", True)):
        path = out / f"convtranspose_decoder_{tag}.onnx"
        try:
            export(module, path, dynamo, ("x", "h"), ("y", "hn"), {"x": 0, "h": 1, "y": 0, "hn": 1}, example_inputs)
        except Exception as e:      # an exporter that cannot export the module: say so, keep the other
            print(f"{path.name}: the {'dynamo' if dynamo else 'TorchScript'} exporter failed: {type(e).__name__}: {e}")
            continue
        np.savez(out / f"convtranspose_decoder_{tag}.npz", frames=frames, y=y)
        print("wrote", path)


if __name__ == "__main__":
    main()
