"""The coarse pass's detector windows against the fine canvas they stand for: how far their pixels differ, and
what a window costs.

    python -m bench.window_pixels [--repeat 200]

`refine` (engine/coarse.py) boxes a coarse face again on a window of the fine canvas (`detect_window`), warped
from the decoded image with one scale for both axes. The fine canvas is a resize to whole pixels, so where the
letterboxed size is rounded (a 3:2 photo: 960x640 onto 640x427) its two axes' scales differ from that one
scale. For each photo of `bench.latency`'s mix: the fine canvas's scale per axis, the largest and the mean
difference between every 256x256 window on the largest step's grid and the same region of the fine canvas,
the largest difference of the same windows warped with the canvas's own per-axis scales (a what-if), and the
CPU ms of one such window by the warp, against `cv2.resize` of the image's region where that region is whole
pixels (a what-if: the same pixels as the fine canvas's, the cost a resize-made window would have).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import cv2
import numpy as np

from bench.latency import GROUPS, PORTRAITS
from bench.photos import full_hd_jpeg
from engine.detector import UltraFaceDetector
from engine.pipeline import FacePipeline
from tests.assets import asset_path

WINDOW = 256


def cpu_ms(work: Callable[[], object], repeat: int) -> float:
    work()
    started = time.thread_time()
    for _ in range(repeat):
        work()
    return (time.thread_time() - started) * 1000 / repeat


def per_axis_window(image: np.ndarray, window: tuple[int, int, int, int], x_scale: float,
                    y_scale: float) -> np.ndarray:
    """The window warped with the fine canvas's own image pixels per canvas pixel on each axis."""
    x1, y1, x2, y2 = window
    to_image = np.array([[x_scale, 0, (x1 + 0.5) * x_scale - 0.5], [0, y_scale, (y1 + 0.5) * y_scale - 0.5]])
    return cv2.warpAffine(image, to_image, (x2 - x1, y2 - y1), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def photo_row(detector: UltraFaceDetector, name: str, image: np.ndarray, repeat: int) -> str:
    (request,) = detector.inputs([image], detector.canvas_size(image))
    canvas = request.image()
    scale = detector.scale(image)
    height, width = image.shape[:2]
    fitted_w, fitted_h = round(width * scale), round(height * scale)
    step = max(detector.steps)
    windows = [(x, y, x + WINDOW, y + WINDOW) for y in range(0, canvas.shape[0] - WINDOW + 1, step)
               for x in range(0, canvas.shape[1] - WINDOW + 1, step)]
    diffs = [np.abs(detector.window_canvas(image, w).astype(np.int16) - canvas[w[1]:w[3], w[0]:w[2]])
             for w in windows]
    per_axis = max(int(np.abs(per_axis_window(image, w, width / fitted_w, height / fitted_h).astype(np.int16)
                              - canvas[w[1]:w[3], w[0]:w[2]]).max()) for w in windows)
    warp = cpu_ms(partial(detector.window_canvas, image, windows[0]), repeat)
    region = [v / scale for v in windows[0]]
    resize = float("nan")
    if all(abs(v - round(v)) < 1e-9 for v in region):
        x1, y1, x2, y2 = (round(v) for v in region)
        resize = cpu_ms(partial(cv2.resize, image[y1:y2, x1:x2], (WINDOW, WINDOW), interpolation=cv2.INTER_LINEAR),
                        repeat)
    return (f"{name:<14} {width:>4}x{height:<4} {fitted_w:>4}x{fitted_h:<4} {width / fitted_w:8.5f} "
            f"{height / fitted_h:8.5f} {len(windows):7d} {max(int(d.max()) for d in diffs):8d} "
            f"{np.mean([d.mean() for d in diffs]):9.3f} {per_axis:8d} {warp:8.3f} {resize:9.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    pipeline = FacePipeline()
    photos = {**{name: full_hd_jpeg(name) for name in PORTRAITS},
              **{name: asset_path(name).read_bytes() for name in GROUPS}}
    print(f"{'photo':<14} {'decoded':>9} {'canvas':>9} {'x scale':>8} {'y scale':>8} {'windows':>7} "
          f"{'max diff':>8} {'mean diff':>9} {'per-axis':>8} {'warp ms':>8} {'resize ms':>9}")
    try:
        for name, data in photos.items():
            print(photo_row(pipeline.detector, name, pipeline.decode(data).pixels, args.repeat))
    finally:
        pipeline.close()


if __name__ == "__main__":
    main()
