"""Real PyTorch *step graphs* exported to ONNX: one call is one step, the state is explicit
inputs and outputs, as in published streaming models (silero-vad, DeepFilterNet-style
encoders with convolution caches).

What it makes (in ``--out``, default ``tests/fixtures/onnx``), for each exporter (``ts`` =
TorchScript, ``dynamo=False``; ``dy`` = the dynamo exporter, where it produces a usable file):

* ``conv_gru_step_<ts|dy>.onnx``: ``forward(x [B, 1, 40], conv_cache [B, 40, 2],
  h [1, B, 32]) -> (logits [B, 5], conv_cache_out [B, 40, 2], hn [1, B, 32])``: the frame
  joins the cache of the last two frames, a Conv1d (40 -> 24, kernel 3) and ReLU run over
  those three frames, a GRU (batch_first) takes one step, a Linear gives the logits; the
  cache keeps the newest two frames.
* ``conv_gru_step_<ts|dy>.npz``: ``frames`` (200, 1, 40) seeded noise and PyTorch's
  ``logits`` (200, 5) from calling the module once per frame with its state fed back.
* ``band_gru_step_<ts|dy>.onnx``: ``forward(x [B, 8, 4], h [1, B, 16]) -> (y [B, 3], hn)``:
  a bidirectional GRU (4 -> 6 each way, batch_first) runs across the 8 frequency bands of the
  frame, its outputs are flattened into a GRU step over time (h -> hn), then a Linear head.
  ``band_gru_step_<ts|dy>.npz``: ``frames`` (200, 8, 4) and PyTorch's ``y`` (200, 3).

Usage (from the repo root): ``python -m exporters.make_step_fixtures [--out DIR]``.
"""
import argparse
from pathlib import Path

import numpy as np

STEPS, FEATURES, CHANNELS, HIDDEN, CLASSES, CACHE = 200, 40, 24, 32, 5, 2
BANDS, BAND_FEATURES, BAND_HIDDEN, TIME_HIDDEN, BAND_CLASSES = 8, 4, 6, 16, 3


def build():
    import torch
    from torch import nn

    class ConvGRUStep(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(FEATURES, CHANNELS, kernel_size=CACHE + 1)
            self.gru = nn.GRU(CHANNELS, HIDDEN, batch_first=True)
            self.head = nn.Linear(HIDDEN, CLASSES)

        def forward(self, x, conv_cache, h):
            window = torch.cat([conv_cache, x.transpose(1, 2)], dim=2)       # [B, 40, 3]
            features = torch.relu(self.conv(window)).transpose(1, 2)       # [B, 1, 24]
            out, hn = self.gru(features, h)
            return self.head(out[:, -1]), window[:, :, 1:], hn

    torch.manual_seed(0)
    return ConvGRUStep().eval()


def build_band():
    import torch
    from torch import nn

    class BandGRUStep(nn.Module):
        def __init__(self):
            super().__init__()
            self.across = nn.GRU(BAND_FEATURES, BAND_HIDDEN, batch_first=True, bidirectional=True)
            self.along = nn.GRU(BANDS * 2 * BAND_HIDDEN, TIME_HIDDEN, batch_first=True)
            self.head = nn.Linear(TIME_HIDDEN, BAND_CLASSES)

        def forward(self, x, h):
            bands, _ = self.across(x)                                  # [B, 8, 12]
            out, hn = self.along(bands.reshape(x.shape[0], 1, -1), h)  # one step over time
            return self.head(out[:, -1]), hn

    torch.manual_seed(1)
    return BandGRUStep().eval()


def example_inputs(torch, batch=1):
    return (torch.zeros(batch, 1, FEATURES), torch.zeros(batch, FEATURES, CACHE), torch.zeros(1, batch, HIDDEN))


def band_inputs(torch, batch=1):
    return torch.zeros(batch, BANDS, BAND_FEATURES), torch.zeros(1, batch, TIME_HIDDEN)


def step_reference(module, frames, states):
    """PyTorch's first output for each frame: the module called once per frame from the initial
    ``states`` (tensors), its other outputs fed back as the next call's state inputs."""
    import torch
    ys = []
    with torch.no_grad():
        for f in frames:
            y, *states = module(torch.from_numpy(f[None]), *states)
            ys.append(y[0].numpy())
    return np.stack(ys).astype(np.float32)


def export(module, path, dynamo, inputs, outputs, batch_axes, examples):
    """torch.onnx.export with a dynamic batch axis (batch_axes: {name: axis}) on every tensor."""
    import torch
    names = dict(input_names=list(inputs), output_names=list(outputs))
    if dynamo:
        batch = torch.export.Dim("batch", min=1, max=64)
        torch.onnx.export(module, examples(torch, 2), str(path), dynamo=True, opset_version=18,
                          dynamic_shapes=tuple({batch_axes[n]: batch} for n in inputs), external_data=False, **names)
    else:
        torch.onnx.export(module, examples(torch), str(path), dynamo=False, opset_version=17,
                          dynamic_axes={n: {batch_axes[n]: "batch"} for n in list(inputs) + list(outputs)}, **names)


def main():
    import torch
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/fixtures/onnx")
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    conv_frames = rng.standard_normal((STEPS, 1, FEATURES)).astype(np.float32)
    band_frames = rng.standard_normal((STEPS, BANDS, BAND_FEATURES)).astype(np.float32)
    conv, band = build(), build_band()
    fixtures = [
        ("conv_gru_step", conv, ("x", "conv_cache", "h"), ("logits", "conv_cache_out", "hn"),
         {"x": 0, "conv_cache": 0, "h": 1, "logits": 0, "conv_cache_out": 0, "hn": 1}, example_inputs,
         dict(frames=conv_frames, logits=step_reference(conv, conv_frames, example_inputs(torch)[1:]))),
        ("band_gru_step", band, ("x", "h"), ("y", "hn"), {"x": 0, "h": 1, "y": 0, "hn": 1}, band_inputs,
         dict(frames=band_frames, y=step_reference(band, band_frames, band_inputs(torch)[1:]))),
    ]
    for name, module, inputs, outputs, batch_axes, examples, arrays in fixtures:
        for tag, dynamo in (("ts", False), ("dy", True)):
            path = out / f"{name}_{tag}.onnx"
            try:
                export(module, path, dynamo, inputs, outputs, batch_axes, examples)
            except Exception as e:      # an exporter that cannot export the module: say so, keep the other
                print(f"{path.name}: the {'dynamo' if dynamo else 'TorchScript'} exporter failed: "
                      f"{type(e).__name__}: {e}")
                continue
            np.savez(out / f"{name}_{tag}.npz", **arrays)
            print("wrote", path)


if __name__ == "__main__":
    main()
