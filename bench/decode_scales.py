"""What a JPEG decode costs at each of libjpeg-turbo's DCT scales (n/8), on the photos `bench.latency` sends.

    python -m bench.decode_scales [--repeat 40]

The pipeline decodes a large JPEG at 1/2 for the detector, and again larger for a small face's crops
(`DecodedImage.sharper`): this shows which scales are cheap (CPU ms of the calling thread, median), and
how many decodes, at which widths, one compare of each kind of `bench.latency`'s pairs makes.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

import numpy as np
import simplejpeg

from bench.latency import make_pairs
from bench.photos import full_hd_jpeg
from engine import decode
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=40)
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


if __name__ == "__main__":
    main()
