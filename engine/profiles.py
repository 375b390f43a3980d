"""Speed profiles: which recognizers a compare runs and how it looks for faces.

`accurate` (the default) is the measured best: both recognizers and coarse-to-fine detection, so a 50 px
face of a Full HD photo is found. `fast` is an option for cameras that only see large, near faces (a
kiosk): fr_feature alone, detection on the coarse 320x240 canvas alone (most faces under 80 px of a Full HD
photo are not found) and crops from the one DCT-scaled decode. Each recognizer choice has its own similarity
calibration, so a score keeps meaning one false-accept rate (docs/ACCURACY.md, docs/PERFORMANCE.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.manifest import MANIFEST_PATH, Manifest


@dataclass(frozen=True)
class Profile:
    """None: the manifest's choice (every recognizer, its calibration) or coarse-to-fine detection."""

    recognizers: tuple[str, ...] | None = None
    similarity: str | None = None
    canvas: tuple[int, int] | None = None
    # False: crops come from the DCT-scaled decode even for a face narrower there than the crop (one decode
    # per photo), instead of decoding the file again larger for it (engine/pipeline.py, `crop_source`).
    sharper_crops: bool = True

    def keeps(self, recognizer: str) -> bool:
        return self.recognizers is None or recognizer in self.recognizers

    def similarity_path(self, manifest: Manifest) -> Path:
        return MANIFEST_PATH.parent / self.similarity if self.similarity else manifest.pipeline.similarity_path


PROFILES = {
    "accurate": Profile(),
    "fast": Profile(recognizers=("fr_feature",), similarity="similarity/fr_feature.json", canvas=(320, 240),
                    sharper_crops=False),
}


def profile_named(name: str) -> Profile:
    """The profile, or ValueError naming the ones there are."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: one of {', '.join(PROFILES)}")
    return PROFILES[name]
