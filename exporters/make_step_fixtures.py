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

Usage (from the repo root): ``python -m exporters.make_step_fixtures [--out DIR]``.
"""
import argparse
from pathlib import Path

import numpy as np

STEPS, FEATURES, CHANNELS, HIDDEN, CLASSES, CACHE = 200, 40, 24, 32, 5, 2


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


def example_inputs(torch, batch=1):
    return (torch.zeros(batch, 1, FEATURES), torch.zeros(batch, FEATURES, CACHE), torch.zeros(1, batch, HIDDEN))


def reference(module, frames):
    import torch
    _, cache, h = example_inputs(torch)
    logits = []
    with torch.no_grad():
        for f in frames:
            y, cache, h = module(torch.from_numpy(f[None]), cache, h)
            logits.append(y[0].numpy())
    return np.stack(logits).astype(np.float32)


def export(module, path, dynamo):
    import torch
    names = dict(input_names=["x", "conv_cache", "h"], output_names=["logits", "conv_cache_out", "hn"])
    if dynamo:
        batch = torch.export.Dim("batch", min=1, max=64)
        torch.onnx.export(module, example_inputs(torch, 2), str(path), dynamo=True, opset_version=18,
                          dynamic_shapes=({0: batch}, {0: batch}, {1: batch}), external_data=False, **names)
    else:
        torch.onnx.export(module, example_inputs(torch), str(path), dynamo=False, opset_version=17,
                          dynamic_axes={"x": {0: "batch"}, "conv_cache": {0: "batch"}, "h": {1: "batch"},
                                        "logits": {0: "batch"}, "conv_cache_out": {0: "batch"}, "hn": {1: "batch"}},
                          **names)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/fixtures/onnx")
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    module = build()
    frames = np.random.default_rng(7).standard_normal((STEPS, 1, FEATURES)).astype(np.float32)
    logits = reference(module, frames)
    for tag, dynamo in (("ts", False), ("dy", True)):
        path = out / f"conv_gru_step_{tag}.onnx"
        try:
            export(module, path, dynamo)
        except Exception as e:      # an exporter that cannot export the module: say so, keep the other
            print(f"{path.name}: the {'dynamo' if dynamo else 'TorchScript'} exporter failed: {type(e).__name__}: {e}")
            continue
        np.savez(out / f"conv_gru_step_{tag}.npz", frames=frames, logits=logits)
        print("wrote", path)


if __name__ == "__main__":
    main()
