"""Real PyTorch *sequence* models that convolve along time, exported to ONNX with a dynamic time
axis: what users train offline and then want to stream (passes/pulse.py).

What it makes (in ``--out``, default ``tests/fixtures/onnx``); every model takes x [B, T, 8]
(batch_first) and gives y [B, T', classes]:

* ``causal_conv_gru``: Conv1d(8 -> 16, kernel 3, padding 2) with its last 2 outputs cut off
  (a torch "chomp": causal), ReLU, GRU(16 -> 24), Linear(24 -> 4). Delay 0.
* ``tcn_lstm``: a pointwise Conv1d(8 -> 12), then three residual blocks
  ``h + relu(conv_d(pad_left(h, 2 d)))`` with kernel 3 and dilations 1, 2, 4 (F.pad: a Pad
  op along time), then LSTM(12 -> 16), Linear(16 -> 3). Delay 0.
* ``centred_conv_lstm``: Conv1d(8 -> 16, kernel 5, padding 2), ReLU, LSTM(16 -> 20),
  Linear(20 -> 3). Look-ahead: delay 2, two more outputs from ``Stream.flush``.
* ``crnn_gru``: x as one channel [B, 1, T, 8]: Conv2d(1 -> 4, 3 x 3, padding 1) over time x
  frequency, BatchNorm2d, ReLU, AvgPool2d over frequency only (1 x 2), the 4 x 4 features of a
  frame flattened, GRU(16 -> 20), Linear(20 -> 3). Delay 1 (the conv's padding along time).
* ``strided_conv_gru``: Conv1d(8 -> 16, kernel 4, stride 2, padding 1), ReLU, GRU(16 -> 20),
  Linear(20 -> 3): one output every 2 frames (``Model.output_stride`` 2), delay 2.
* ``avgpool_gru``: AvgPool1d(4) over time (stride 4, torch's default), GRU(8 -> 16),
  Linear(16 -> 3): one output every 4 frames, delay 3.

Each model is written as ``<name>_ts.onnx`` (TorchScript exporter, ``dynamo=False``) and,
where the dynamo exporter gives a file that runs any length, ``<name>_dy.onnx``, beside
``<name>.npz``: ``frames`` (200, 8) seeded noise and ``y`` (T', classes), PyTorch's output
for the whole sequence at once (the oracle; tests also run onnxruntime on the file).

Usage (from the repo root): ``python -m exporters.make_time_conv_fixtures [--out DIR]``.
"""
import argparse
from pathlib import Path

import numpy as np

FRAMES, FEATURES = 200, 8


def build(name):
    import torch
    from torch import nn
    from torch.nn import functional as F

    class CausalConvGRU(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(FEATURES, 16, kernel_size=3, padding=2)
            self.gru = nn.GRU(16, 24, batch_first=True)
            self.head = nn.Linear(24, 4)

        def forward(self, x):
            h = torch.relu(self.conv(x.transpose(1, 2))[:, :, :-2])
            out, _ = self.gru(h.transpose(1, 2))
            return self.head(out)

    class TCNLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Conv1d(FEATURES, 12, kernel_size=1)
            self.dilations = (1, 2, 4)
            self.blocks = nn.ModuleList(nn.Conv1d(12, 12, kernel_size=3, dilation=d) for d in self.dilations)
            self.lstm = nn.LSTM(12, 16, batch_first=True)
            self.head = nn.Linear(16, 3)

        def forward(self, x):
            h = self.inp(x.transpose(1, 2))
            for d, conv in zip(self.dilations, self.blocks):
                h = h + torch.relu(conv(F.pad(h, (2 * d, 0))))
            out, _ = self.lstm(h.transpose(1, 2))
            return self.head(out)

    class CentredConvLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(FEATURES, 16, kernel_size=5, padding=2)
            self.lstm = nn.LSTM(16, 20, batch_first=True)
            self.head = nn.Linear(20, 3)

        def forward(self, x):
            out, _ = self.lstm(torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2))
            return self.head(out)

    class CRNNGRU(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, kernel_size=3, padding=1)
            self.norm = nn.BatchNorm2d(4)
            self.pool = nn.AvgPool2d((1, 2))
            self.gru = nn.GRU(4 * FEATURES // 2, 20, batch_first=True)
            self.head = nn.Linear(20, 3)

        def forward(self, x):
            h = self.pool(torch.relu(self.norm(self.conv(x.unsqueeze(1)))))      # [B, 4, T, 4]
            h = h.permute(0, 2, 1, 3).flatten(2)                                   # [B, T, 16]
            out, _ = self.gru(h)
            return self.head(out)

    class StridedConvGRU(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(FEATURES, 16, kernel_size=4, stride=2, padding=1)
            self.gru = nn.GRU(16, 20, batch_first=True)
            self.head = nn.Linear(20, 3)

        def forward(self, x):
            out, _ = self.gru(torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2))
            return self.head(out)

    class AvgPoolGRU(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = nn.AvgPool1d(4)
            self.gru = nn.GRU(FEATURES, 16, batch_first=True)
            self.head = nn.Linear(16, 3)

        def forward(self, x):
            out, _ = self.gru(self.pool(x.transpose(1, 2)).transpose(1, 2))
            return self.head(out)

    torch.manual_seed(0)
    module = {"causal_conv_gru": CausalConvGRU, "tcn_lstm": TCNLSTM, "centred_conv_lstm": CentredConvLSTM,
              "crnn_gru": CRNNGRU, "strided_conv_gru": StridedConvGRU, "avgpool_gru": AvgPoolGRU}[name]()
    if name == "crnn_gru":                       # trained-looking BatchNorm statistics
        with torch.no_grad():
            module.norm.running_mean.uniform_(-0.5, 0.5)
            module.norm.running_var.uniform_(0.5, 2.0)
            module.norm.weight.uniform_(0.5, 1.5)
            module.norm.bias.uniform_(-0.2, 0.2)
    return module.eval()


NAMES = ("causal_conv_gru", "tcn_lstm", "centred_conv_lstm", "crnn_gru", "strided_conv_gru", "avgpool_gru")


def export(module, path, dynamo):
    """torch.onnx.export with dynamic batch and time axes on x and y."""
    import torch
    example = torch.zeros(1, 7, FEATURES)
    if dynamo:
        dims = {0: torch.export.Dim("batch", min=1, max=64), 1: torch.export.Dim("T", min=2, max=100000)}
        torch.onnx.export(module, (example,), str(path), dynamo=True, opset_version=18, input_names=["x"],
                          output_names=["y"], dynamic_shapes=({0: dims[0], 1: dims[1]},))
    else:
        torch.onnx.export(module, (example,), str(path), dynamo=False, opset_version=17, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "batch", 1: "T"}, "y": {0: "batch", 1: "T"}})


def runs_any_length(path, frames):
    """Whether onnxruntime runs the file on a length other than the export example's."""
    import onnxruntime as ort
    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": frames[None, :50]})
        return True
    except Exception:
        return False


def main():
    import torch
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/fixtures/onnx")
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    frames = np.random.default_rng(11).standard_normal((FRAMES, FEATURES)).astype(np.float32)
    for name in NAMES:
        module = build(name)
        with torch.no_grad():
            y = module(torch.from_numpy(frames)[None]).numpy()[0]
        np.savez(out / f"{name}.npz", frames=frames, y=y)
        for tag, dynamo in (("ts", False), ("dy", True)):
            path = out / f"{name}_{tag}.onnx"
            try:
                export(module, path, dynamo)
            except Exception as e:      # an exporter that cannot export the module: say so, keep the other
                print(f"{path.name}: the {'dynamo' if dynamo else 'TorchScript'} exporter failed: "
                      f"{type(e).__name__}: {str(e).splitlines()[0]}")
                continue
            if not runs_any_length(path, frames):
                print(f"{path.name}: onnxruntime cannot run it on another length than the example's; not kept")
                path.unlink()
                path.with_name(path.name + ".data").unlink(missing_ok=True)
                continue
            print("wrote", path)


if __name__ == "__main__":
    main()
