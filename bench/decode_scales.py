"""What a JPEG decode costs at each of libjpeg-turbo's DCT scales (n/8), on the photos `bench.latency` sends.

    python -m bench.decode_scales [--repeat 40]

The pipeline decodes a large JPEG at 1/2 for the detector, and again larger for a small face's crops
(`DecodedImage.sharper`): this shows which scales are cheap. CPU ms of the calling thread, median.
"""

from __future__ import annotations

import argparse
import statistics
import time

import simplejpeg

from bench.photos import full_hd_jpeg
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


if __name__ == "__main__":
    main()
