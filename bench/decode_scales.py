"""What a JPEG decode costs at each of libjpeg-turbo's DCT scales (n/8), on the photos `bench.latency` sends.

    python -m bench.decode_scales [--repeat 40] [--regions]

The pipeline decodes a large JPEG at 1/2 for the detector, and again larger for a small face's crops
(`DecodedImage.sharper`): this shows which scales are cheap (CPU ms of the calling thread, median), and
how many decodes, at which widths, one compare of each kind of `bench.latency`'s pairs makes.

`--regions`: what a decode of only the faces' regions could save on each of those larger decodes. The
region is what the crops read of the larger decode in one cycle of those pairs (the face check's and
ONet's squares, the landmark crops, the recognizers' warps, each with the pixel its bilinear sampling
reaches), joined per photo into one box and grown by one 16 px MCU of the file on each side. libjpeg must
still read the entropy-coded data down to the region's last row; its cost is taken as that of the 1/8
decode (the DC coefficients only), the rest (IDCT, colour) as the region's share of the decode's area:
an estimate of what partial decompression (libjpeg's jpeg_skip_scanlines and jpeg_crop_scanline) would
cost, not a measurement of it.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections import Counter
from collections.abc import Callable

import cv2
import numpy as np
import simplejpeg

from bench.latency import make_pairs
from bench.photos import full_hd_jpeg
from engine import decode, preprocess
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


Box = tuple[float, float, float, float]


def warp_reach(matrix: np.ndarray, size: tuple[int, int]) -> Box:
    """(x1, y1, x2, y2) of the source pixels a bilinear warp by the 2x3 image->crop `matrix` into `size` reads."""
    inverse = cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))
    width, height = size
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1], [width - 1, height - 1, 1]], dtype=np.float64)
    mapped = corners @ inverse.T
    return (math.floor(mapped[:, 0].min()), math.floor(mapped[:, 1].min()),
            math.floor(mapped[:, 0].max()) + 2, math.floor(mapped[:, 1].max()) + 2)


def sharper_regions() -> list[tuple[bytes, tuple[int, int], list[Box]]]:
    """Each larger decode one cycle of `bench.latency`'s pairs makes: the photo, the decoded (width, height) and
    the boxes (x1, y1, x2, y2) of those pixels that its crops read."""
    made: dict[tuple[bytes, tuple[int, ...]], tuple[bytes, tuple[int, int], list[Box]]] = {}
    larger: dict[int, list[Box]] = {}
    reads: list[tuple[int, Box]] = []
    plain_source: Callable = FacePipeline.crop_source
    plain_warp, plain_crop = preprocess.warp_face, preprocess.Crop.image

    def recorded_source(self: FacePipeline, image: decode.DecodedImage, detections: list[Detection]) -> tuple:
        pixels, boxes = plain_source(self, image, detections)
        if pixels is not image.pixels and image.source is not None:
            larger[id(pixels)] = made.setdefault((image.source, pixels.shape),
                                                 (image.source, (pixels.shape[1], pixels.shape[0]), []))[2]
        return pixels, boxes

    def recorded_warp(pixels: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        reads.append((id(pixels), warp_reach(matrix, size)))
        return plain_warp(pixels, matrix, size)

    def recorded_crop(self: preprocess.Crop) -> np.ndarray:
        x, y, width, height = self.box
        reads.append((id(self.pixels), (x, y, x + width, y + height)))
        return plain_crop(self)

    pipeline = FacePipeline()
    FacePipeline.crop_source = recorded_source  # type: ignore[method-assign]
    preprocess.warp_face, preprocess.Crop.image = recorded_warp, recorded_crop  # type: ignore[method-assign]
    try:
        for pair in make_pairs(group_every=4):
            larger.clear()
            reads.clear()
            pipeline.compare(pair.origin, pair.target)
            for pixels_id, box in reads:  # the larger decodes live as long as the compare: their ids are theirs
                if pixels_id in larger:
                    larger[pixels_id].append(box)
    finally:
        FacePipeline.crop_source = plain_source  # type: ignore[method-assign]
        preprocess.warp_face, preprocess.Crop.image = plain_warp, plain_crop  # type: ignore[method-assign]
        pipeline.close()
    return list(made.values())


def region(size: tuple[int, int], file_width: int, reads: list[Box]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) in the decoded pixels: the boxes read, joined, grown by one MCU of the file."""
    width, height = size
    margin = 16 * width / file_width
    left = max(0, math.floor(min(box[0] for box in reads) - margin))
    top = max(0, math.floor(min(box[1] for box in reads) - margin))
    right = min(width, math.ceil(max(box[2] for box in reads) + margin))
    bottom = min(height, math.ceil(max(box[3] for box in reads) + margin))
    return left, top, right, bottom


def print_regions(repeat: int) -> None:
    total_now = total_partial = 0.0
    made = sharper_regions()
    for data, size, reads in made:
        file_height, file_width = simplejpeg.decode_jpeg_header(data)[:2]
        left, top, right, bottom = region(size, file_width, reads)
        area, rows = (right - left) * (bottom - top) / (size[0] * size[1]), bottom / size[1]
        now = decode_ms(data, size[0], repeat)
        entropy = decode_ms(data, math.ceil(file_width / 8), repeat)
        partial = entropy * rows + (now - entropy) * area
        total_now, total_partial = total_now + now, total_partial + partial
        print(f"{file_width}x{file_height} decoded at {size[0]}x{size[1]}, {len(reads)} crops: region {area:.1%} of "
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
