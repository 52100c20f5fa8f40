"""``python -m exporters``: export a trained model to a file edgernn streams, and check it.

    python -m exporters torch-onnx mypkg.models:build -o model.onnx --frame-shape 12 \\
        [--weights state_dict.pt] [--state auto|forward|hooks] [--check-frames frames.npy]

MODULE is ``package.module:name`` where ``name`` is an ``nn.Module`` or a callable returning
one (called without arguments); ``--weights`` loads a ``state_dict`` saved with
``torch.save(model.state_dict(), path)``. Exit status 0 when the export passed its self-check,
1 when the check found a disagreement, 2 for a usage problem.
"""
from __future__ import annotations

import argparse
import importlib
import sys

import numpy as np

from .check import ExportCheckError
from .torch_onnx import OPSET, ExportError, export_onnx


def load_module(spec: str, weights: str | None):
    """'package.module:name' -> nn.Module (name is a module or a no-argument factory)."""
    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise ExportError(f"MODULE must look like 'package.module:name', got {spec!r}")
    try:
        obj = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as e:
        raise ExportError(f"cannot find {spec!r}: {e}") from None
    from torch import nn
    module = obj if isinstance(obj, nn.Module) else obj()
    if not isinstance(module, nn.Module):
        raise ExportError(f"{spec!r} gave a {type(module).__name__}, not a torch nn.Module")
    if weights:
        import torch
        module.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return module


def cmd_torch_onnx(args) -> int:
    module = load_module(args.module, args.weights)
    frames = np.load(args.check_frames).astype(np.float32) if args.check_frames else None
    frame_shape = tuple(int(d) for d in args.frame_shape.split(","))
    report = export_onnx(module, args.output, frame_shape, state=args.state, opset=args.opset,
                         check_frames=frames, tolerance=args.tolerance)
    print(report)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m exporters", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    pt = sub.add_parser("torch-onnx", help="PyTorch nn.Module -> streaming-ready ONNX (self-checked)",
                        description="Export a PyTorch module with an LSTM/GRU/RNN to ONNX with a dynamic "
                                    "time axis and explicit state inputs/outputs, then check that edgernn "
                                    "(and ONNX Runtime, when installed) streaming the file frame by frame "
                                    "agrees with the module.")
    pt.add_argument("module", metavar="MODULE", help="package.module:name (an nn.Module or a factory)")
    pt.add_argument("-o", "--output", required=True, metavar="OUT.onnx")
    pt.add_argument("--frame-shape", required=True, metavar="N[,M...]",
                    help="per-frame input shape, e.g. 12 for 12 features per frame")
    pt.add_argument("--weights", metavar="STATE_DICT.pt", help="a state_dict to load into the module")
    pt.add_argument("--state", choices=("auto", "forward", "hooks"), default="auto",
                    help="how state enters the graph (default: %(default)s; see exporters/torch_onnx.py)")
    pt.add_argument("--opset", type=int, default=OPSET, help="ONNX opset (default: %(default)s)")
    pt.add_argument("--check-frames", metavar="FRAMES.npy",
                    help="frames (T, *frame_shape) for the self-check (default: 64 seeded random frames)")
    pt.add_argument("--tolerance", type=float, default=1e-5, help="self-check tolerance (default: %(default)g)")
    pt.set_defaults(func=cmd_torch_onnx)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.func(args)
    except ExportCheckError as e:
        print(f"exporters: SELF-CHECK FAILED: {e}", file=sys.stderr)
        return 1
    except (ExportError, OSError) as e:
        print(f"exporters: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
