"""Models shipped in another format, converted to ONNX once at fetch time, before the surgery."""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx
import tflite2onnx


def _from_tflite(path: Path) -> onnx.ModelProto:
    """tflite2onnx only writes files: convert into a scratch folder and read the graph back.

    Its initializers and value infos come in set order, different each run: sorted by name, one model
    always converts to the same bytes.
    """
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"{path.stem}.onnx"
        tflite2onnx.convert(str(path), str(target))
        model = onnx.load(str(target))
    for entries in (model.graph.initializer, model.graph.value_info):
        ordered = sorted(entries, key=lambda entry: entry.name)
        del entries[:]
        entries.extend(ordered)
    return model


CONVERTERS = {"tflite": _from_tflite}


def to_onnx(path: Path, fmt: str) -> onnx.ModelProto:
    """The ONNX graph of the `fmt` model at `path` (the manifest's `convert`)."""
    if fmt not in CONVERTERS:
        raise ValueError(f"no converter from {fmt!r}; known: {', '.join(sorted(CONVERTERS))}")
    return CONVERTERS[fmt](path)
