"""The pipeline a benchmark measures: the profile FACECOMPARE_PROFILE names, as the service reads it.

    FACECOMPARE_PROFILE=fast python -m bench.accuracy ...
"""

from __future__ import annotations

import os
from typing import Any

from engine.pipeline import PipelineConfig


def bench_config(**fields: Any) -> PipelineConfig:
    return PipelineConfig(profile=os.environ.get("FACECOMPARE_PROFILE") or "accurate", **fields)
