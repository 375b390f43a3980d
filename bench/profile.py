"""The pipeline a benchmark measures: the profile FACECOMPARE_PROFILE names, as the service reads it.

    FACECOMPARE_PROFILE=fast python -m bench.accuracy ...
"""

from __future__ import annotations

import os

from engine.pipeline import PipelineConfig


def profile_name() -> str:
    return os.environ.get("FACECOMPARE_PROFILE") or "accurate"


def bench_config(**fields: object) -> PipelineConfig:
    return PipelineConfig(profile=profile_name(), **fields)  # type: ignore[arg-type]
