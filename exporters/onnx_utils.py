"""Small ONNX file helpers shared by the exporters (need only the ``onnx`` package)."""
from __future__ import annotations

from pathlib import Path

import onnx


def strip_metadata(path: Path) -> None:
    """Remove per-node metadata/doc strings (stack traces with local paths)
    so the output is deterministic and small; keep the file self-contained."""
    m = onnx.load(str(path), load_external_data=True)

    def clean(graph: onnx.GraphProto) -> None:
        graph.doc_string = ""
        for node in graph.node:
            node.doc_string = ""
            del node.metadata_props[:]
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    clean(attr.g)
                for sg in attr.graphs:
                    clean(sg)
        for vi in list(graph.value_info) + list(graph.input) + list(graph.output):
            del vi.metadata_props[:]
        for init in graph.initializer:
            del init.metadata_props[:]

    clean(m.graph)
    for f in m.functions:
        for node in f.node:
            node.doc_string = ""
            del node.metadata_props[:]
    m.doc_string = ""
    del m.metadata_props[:]
    onnx.save_model(m, str(path), save_as_external_data=False)
    data = path.with_name(path.name + ".data")
    if data.exists():
        data.unlink()
