"""The liveness development sets as labelled frames, and each frame's largest face as the API would find it.

NUAA (`live/SUBJ/*.jpg`, `spoof/SUBJ/*.jpg`): the group is the subject. Replay (`SESSION/live_NN.jpg`,
`SESSION/spoof_NN.jpg`): the group is the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.faces import Detection
from engine.pipeline import FacePipeline

DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass(frozen=True)
class Frame:
    path: Path
    live: bool
    group: str


def nuaa_frames(root: Path) -> list[Frame]:
    return [Frame(path, kind == "live", path.parent.name)
            for kind in ("live", "spoof") for path in sorted((root / kind).glob("*/*.jpg"))]


def replay_frames(root: Path) -> list[Frame]:
    return [Frame(path, path.name.startswith("live_"), path.parent.name) for path in sorted(root.glob("*/*.jpg"))]


def largest_faces(pipeline: FacePipeline, frames: list[Frame]) -> Iterator[tuple[Frame, np.ndarray, Detection | None]]:
    """Each frame's RGB pixels and largest face (None when the detector finds none), one frame at a time."""
    for frame in frames:
        image = pipeline.decode(frame.path.read_bytes())
        (found,) = pipeline.detector.detect([image.pixels])
        yield frame, image.pixels, found[0] if found else None
