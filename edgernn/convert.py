"""Convert a model (ONNX now; any format :func:`edgernn.load` reads) to an .ernn file.

    convert("kws.onnx", "kws.ernn", weights="int8", labels=[...], frame_period="10ms",
            mean=m, std=s, description="...")

The source is loaded and prepared exactly as :func:`edgernn.load` does, so the file holds the
program the engine would run, weights already in kernel layout. Deployment metadata is
stored under ``general.*`` and ``model.*`` keys (docs/format.md). ``mean``/``std`` become part
of the program: two elementwise ops ``(x - mean) / std`` in front of the first input, so the
device feeds raw features; they are recorded in the metadata too.
"""
import os

import numpy as np

from . import __version__
from .errors import EdgeRNNError
from .formats.ernn import write_ernn
from .ir.graph import Node, Value
from .passes.infer import infer_graph
from .units import parse_period

WEIGHTS = ("float32", "float16", "int8")
LABELS_KEY = "model.labels"


def parse_labels(text):
    """Class labels from the command line: a file with one label a line (blank lines skipped),
    or comma-separated labels; None for None."""
    if text is None:
        return None
    if os.path.exists(text):
        with open(text, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    return [x.strip() for x in text.split(",")]


def _normalise_input(graph, mean, std):
    x = graph.inputs[0]
    frame = x.frame_shape
    n = int(np.prod(frame, dtype=np.int64))
    if tuple(x.shape[len(x.shape) - len(frame):]) != frame:      # a T or B axis among the last ones
        raise EdgeRNNError(f"input '{x.name}' does not keep its frame axes last; normalise the features "
                           "before streaming instead of with --mean/--std")
    consts = []
    for what, a, default in (("mean", mean, 0.0), ("std", std, 1.0)):
        a = np.full(n, default, np.float32) if a is None else np.asarray(a, np.float32).reshape(-1)
        if a.size == 1:
            a = np.full(n, a[0], np.float32)
        if a.size != n:
            raise EdgeRNNError(f"--{what} has {a.size} values; input '{x.name}' has {n} per frame {frame}")
        if what == "std" and np.any(a <= 0):
            raise EdgeRNNError("--std must be positive")
        consts.append(a)
    mean_v = Value(f"{x.name}.mean", shape=frame, const=consts[0].reshape(frame))
    inv_v = Value(f"{x.name}.inv_std", shape=frame, const=(1.0 / consts[1]).astype(np.float32).reshape(frame))
    raw = Value(x.name, shape=x.shape)
    centred, scaled = Value(f"{x.name}.centred"), Value(f"{x.name}.normalised")
    for node in graph.nodes:
        node.inputs = [scaled if v is x else v for v in node.inputs]
    graph.nodes[:0] = [Node("sub", f"{x.name}/normalise/sub", [raw, mean_v], [centred]),
                       Node("mul", f"{x.name}/normalise/mul", [centred, inv_v], [scaled])]
    graph.inputs[0] = raw
    infer_graph(graph)
    return consts


def convert(source: "str | os.PathLike[str] | bytes", output: "str | os.PathLike[str]", weights: str = "float32",
            labels: "list[str] | None" = None, frame_period: "float | str | None" = None,
            mean: "float | np.ndarray | None" = None, std: "float | np.ndarray | None" = None,
            description: str = "", time_axis: "int | None" = None, stream: "str | None" = None,
            **load_options: object):
    """Write ``output`` (.ernn) from ``source``; returns the loaded :class:`Model` of the file.
    load_options: constants, shapes, states, step, activations, as :func:`edgernn.load` takes
    them; bound constants are recorded in the metadata (``model.constants.<name>``), and
    ``activations="int8"`` (with int8 weights) as ``quant.activations``, the file's default.
    ``stream``: options of ``edgernn stream`` (window, rate, front end, segments, detections)
    stored with the model, so streaming it needs no others (:mod:`edgernn.io.settings`)."""
    from .model import load
    if weights not in WEIGHTS:
        raise EdgeRNNError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    period_s = parse_period(frame_period, what="frame period")   # seconds, or '10ms', '100Hz' (edgernn.units)
    model = load(source, time_axis=time_axis, weights="int8" if weights == "int8" else "float32", **load_options)
    graph = model.graph
    meta = {"general.name": os.path.splitext(os.path.basename(os.fspath(source)))[0] if isinstance(source, (str, os.PathLike)) else "model",
            "general.source": os.path.basename(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else "",
            "general.converter": f"edgernn {__version__}",
            "quant.weights": weights}
    if weights == "int8":
        meta["quant.scheme"] = "symmetric, one float32 scale per output unit, weights only"
    if model.activations == "int8":               # load_options' activations: the file's default
        meta["quant.activations"] = "int8"
        meta["quant.scheme"] = ("symmetric, one float32 scale per output unit; activations quantised per call, "
                                "one scale per vector")
    if description:
        meta["general.description"] = str(description)
    for name, value in (load_options.get("constants") or {}).items():
        meta[f"model.constants.{name}"] = np.asarray(value).tolist()
    if labels is not None:
        labels = [str(x) for x in labels]
        n_out = model.outputs[0].frame_shape[-1] if model.outputs and model.outputs[0].frame_shape else 1
        if len(labels) != n_out:
            raise EdgeRNNError(f"{len(labels)} labels given; output '{model.outputs[0].name}' has {n_out} values per frame")
        meta[LABELS_KEY] = labels
    if period_s is not None:
        meta["model.frame_period_s"] = period_s
    if stream:
        from .io.settings import settings_metadata
        meta.update(settings_metadata(stream))
    if mean is not None or std is not None:
        m, s = _normalise_input(graph, mean, std)
        meta["model.input.mean"], meta["model.input.std"] = m, s
    write_ernn(output, graph, meta, float16=weights == "float16")
    return load(output)

