"""A compare that works on its two photos at once, while cores are idle, gives the answers of one that works
on them one after the other, raises the same error for bad photos, and stays on one thread under load."""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace

import pytest

from engine.decode import BadInput
from engine.pipeline import FacePipeline, PipelineConfig
from tests.assets import fetch_all
from tests.test_coarse import pairs

CORES = len(os.sched_getaffinity(0))
needs_two_cores = pytest.mark.skipif(CORES < 2, reason="one core: a compare never works on two photos at once")


@pytest.fixture(scope="module")
def shipped() -> Iterator[FacePipeline]:
    """The default configuration, whose models get a share of the cores each (the session's fixture gets two
    threads a model, which leaves a 2-core machine no wider detector)."""
    pipeline = FacePipeline(PipelineConfig())
    yield pipeline
    pipeline.close()


def one_after_the_other(pipeline: FacePipeline) -> FacePipeline:
    """The same models, each compare on its own thread whatever the load."""
    sequential = copy.copy(pipeline)
    sequential.config = replace(pipeline.config, photos_at_once=False)
    return sequential


def photo_threads() -> set[str]:
    return {thread.name for thread in threading.enumerate() if thread.name.startswith("photo")}


@needs_two_cores
def test_the_answers_are_those_of_one_photo_after_the_other(shipped: FacePipeline, photo) -> None:
    """Exactly equal, boxes, similarity and quality, whether the coarse pass decides, the fine pass looks at
    the target again (on every core), the origin's face is left to the fine pass or a face is too small for
    the coarse pass."""
    sequential = one_after_the_other(shipped)
    for origin, target in pairs(shipped, photo):
        assert shipped.compare(origin, target) == sequential.compare(origin, target)
    assert photo_threads(), "no compare worked on its photos at once"


@needs_two_cores
def test_the_detector_on_every_core_finds_the_same_boxes(shipped: FacePipeline, photo) -> None:
    wide = shipped._wide_detector
    assert wide is not None and shipped.threads < CORES
    for path in fetch_all():
        if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
            image = shipped.decode(photo(path.name)).pixels
            assert wide.detect([image]) == shipped.detector.detect([image]), path.name


@needs_two_cores
def test_the_fast_profile_answers_the_same_at_once(photo) -> None:
    """Its one detection pass over both photos runs at once too."""
    fast = FacePipeline(PipelineConfig(profile="fast"))
    try:
        sequential = one_after_the_other(fast)
        for origin, target in pairs(fast, photo):
            assert fast.compare(origin, target) == sequential.compare(origin, target)
    finally:
        fast.close()


def test_two_bad_photos_raise_the_origins_error_as_in_sequence(pipeline: FacePipeline, photo) -> None:
    """The target's error may come first when both are decoded at once; the origin's is the one raised."""
    for compare in (pipeline.compare, one_after_the_other(pipeline).compare):
        with pytest.raises(BadInput, match="not JPEG, PNG or BMP"):
            compare(b"not an image at all", b"")
        with pytest.raises(BadInput, match="empty image"):
            compare(photo("obama.jpg"), b"")
        with pytest.raises(BadInput, match="corrupt or truncated"):
            compare(photo("obama.jpg")[:2000], b"")


@needs_two_cores
def test_under_load_each_compare_stays_on_one_thread(pipeline: FacePipeline) -> None:
    """Two threads a compare: once the compares in flight would keep every core busy, no more at once."""
    with ExitStack() as stack:
        at_once = [stack.enter_context(pipeline._computing()) for _ in range(CORES)]
    assert at_once == [2 * (count + 1) <= CORES for count in range(CORES)]
    with pipeline._computing() as alone:
        assert alone


def test_switched_off_a_lone_compare_stays_on_one_thread(pipeline: FacePipeline) -> None:
    """`photos_at_once = false` (docs/CONFIGURATION.md): for a machine whose cores other processes keep busy."""
    with one_after_the_other(pipeline)._computing() as at_once:
        assert not at_once
