"""What a JPEG decode costs at each of libjpeg-turbo's DCT scales (n/8), on the photos `bench.latency` sends.

    python -m bench.decode_scales [--repeat 40] [--regions]

The pipeline decodes a large JPEG at 1/2 for the detector, and again larger for a small face's crops
(`DecodedImage.sharper`): this shows which scales are cheap (CPU ms of the calling thread, median), and
how many decodes, at which widths, one compare of each kind of `bench.latency`'s pairs makes.

`--regions`: what a decode of only the faces' regions could save on each of those larger decodes. The
region is each face's check square (twice the box's long side about its centre: the largest crop taken
from these pixels) grown by one 16 px MCU of the file on each side, the faces' regions of a photo joined
into one box. libjpeg must still read the entropy-coded data down to the region's last row; its cost is
taken as that of the 1/8 decode (the DC coefficients only), the rest (IDCT, colour) as the region's share
of the decode's area: an estimate of what partial decompression (libjpeg's jpeg_skip_scanlines and
jpeg_crop_scanline) would cost, not a measurement of it.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections import Counter
from collections.abc import Callable

import numpy as np
import simplejpeg

from bench.latency import make_pairs
from bench.photos import full_hd_jpeg
from engine import decode
from engine.faces import Detection
from engine.pipeline import FacePipeline
from tests.assets import asset_path

PHOTOS = {"obama.jpg at 1920x1080": lambda: full_hd_jpeg("obama.jpg"),
          "biden.jpg at 1920x1080": lambda: full_hd_jpeg("biden.jpg"),
          "sample1.jpg (group photo)": lambda: asset_path("sample1.jpg").read_bytes()}


def decode_ms(data: bytes, min_width: int, repeat: int) -> float:
    samples = []
    for _ in range(repeat + 1):
        started = time.thread_time()
        simplejpeg.decode_jpeg(data, colorspace="RGB", min_width=min_width)
        samples.append((time.thread_time() - started) * 1000)
    return statistics.median(samples[1:])


def decodes_per_compare() -> dict[str, tuple[float, Counter[int]]]:
    """Per pair kind of `bench.latency` (every 4th a group photo): decodes per compare and their widths."""
    widths: Counter[int] = Counter()
    plain = decode.simplejpeg.decode_jpeg

    def counted(data: bytes, **options: object) -> np.ndarray:
        pixels = plain(data, **options)
        widths[pixels.shape[1]] += 1
        return pixels

    pipeline = FacePipeline()
    pairs = make_pairs(group_every=4)
    result = {}
    decode.simplejpeg.decode_jpeg = counted
    try:
        for kind in ("portrait", "group"):
            widths.clear()
            chosen = [pair for pair in pairs if pair.kind == kind]
            for pair in chosen:
                pipeline.compare(pair.origin, pair.target)
            result[kind] = (sum(widths.values()) / len(chosen), Counter(widths))
    finally:
        decode.simplejpeg.decode_jpeg = plain
        pipeline.close()
    return result


def sharper_regions() -> dict[int, tuple[bytes, tuple[int, int], list[Detection]]]:
    """Each larger decode one cycle of `bench.latency`'s pairs makes, by its photo and size: the photo, the
    decoded (width, height) and the boxes in those pixels that the crops were asked for."""
    made: dict[int, tuple[bytes, tuple[int, int], list[Detection]]] = {}
    plain: Callable = FacePipeline.crop_source

    def recorded(self: FacePipeline, image: decode.DecodedImage, detections: list[Detection]) -> tuple:
        pixels, boxes = plain(self, image, detections)
        if pixels is not image.pixels and image.source is not None:
            key = hash((image.source, pixels.shape))
            made.setdefault(key, (image.source, (pixels.shape[1], pixels.shape[0]), []))[2].extend(boxes)
        return pixels, boxes

    pipeline = FacePipeline()
    FacePipeline.crop_source = recorded  # type: ignore[method-assign]
    try:
        for pair in make_pairs(group_every=4):
            pipeline.compare(pair.origin, pair.target)
    finally:
        FacePipeline.crop_source = plain  # type: ignore[method-assign]
        pipeline.close()
    return made


def region(size: tuple[int, int], file_width: int, boxes: list[Detection]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) in the decoded pixels of the region the boxes' check squares need."""
    width, height = size
    margin = 16 * width / file_width
    reach = [((b.x1 + b.x2) / 2, (b.y1 + b.y2) / 2, max(b.width, b.height) + margin) for b in boxes]
    left = max(0, math.floor(min(x - r for x, _, r in reach)))
    top = max(0, math.floor(min(y - r for _, y, r in reach)))
    right = min(width, math.ceil(max(x + r for x, _, r in reach)))
    bottom = min(height, math.ceil(max(y + r for _, y, r in reach)))
    return left, top, right, bottom


def print_regions(repeat: int) -> None:
    total_now = total_partial = 0.0
    made = sharper_regions()
    for data, size, boxes in made.values():
        file_height, file_width = simplejpeg.decode_jpeg_header(data)[:2]
        left, top, right, bottom = region(size, file_width, boxes)
        area, rows = (right - left) * (bottom - top) / (size[0] * size[1]), bottom / size[1]
        now = decode_ms(data, size[0], repeat)
        entropy = decode_ms(data, math.ceil(file_width / 8), repeat)
        partial = entropy * rows + (now - entropy) * area
        total_now, total_partial = total_now + now, total_partial + partial
        print(f"{file_width}x{file_height} decoded at {size[0]}x{size[1]}, {len(boxes)} boxes: region {area:.1%} of "
              f"the area, {rows:.1%} of the rows; {now:.2f} ms now, 1/8 {entropy:.2f} ms, estimate {partial:.2f} ms")
    print(f"{len(made)} larger decodes: {total_now:.1f} ms now, estimated {total_partial:.1f} ms for the regions only")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--regions", action="store_true", help="also the larger decodes' regions (above)")
    args = parser.parse_args(argv)
    for label, make in PHOTOS.items():
        data = make()
        _, width, _, subsampling = simplejpeg.decode_jpeg_header(data)
        print(f"{label}, {subsampling}, {len(data)} bytes")
        for eighths in range(1, 9):
            min_width = width * eighths // 8
            shape = simplejpeg.decode_jpeg(data, colorspace="RGB", min_width=min_width).shape
            print(f"    {eighths}/8 -> {shape[1]}x{shape[0]}: {decode_ms(data, min_width, args.repeat):6.2f} ms")
    for kind, (per_compare, widths) in decodes_per_compare().items():
        print(f"{kind} pairs: {per_compare:.2f} decodes per compare; decoded widths {dict(sorted(widths.items()))}")
    if args.regions:
        print_regions(args.repeat)


if __name__ == "__main__":
    main()
