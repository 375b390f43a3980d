"""The coarse pass's detector windows against the fine canvas they stand for: how far their pixels differ, and
what a window costs.

    python -m bench.window_pixels [--repeat 200]

`refine` (engine/coarse.py) boxes a coarse face again on a window of the fine canvas (`detect_window`), made
from the decoded image by `letterbox_window` (engine/preprocess.py): `cv2.resize` of the window's region where
that region lies on whole pixels, else a warp with the fine canvas's own per-axis scales. For each photo of
`bench.latency`'s mix: the fine canvas's scale per axis, every 256x256 window on the largest step's grid, how
many of them are made by resize, the largest and the mean difference between the windows and the same region
of the fine canvas, the largest difference of the same windows all warped (`by_resize=False`), and the CPU ms
of the photo's first window as made against the warp of it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from bench.latency import GROUPS, PORTRAITS
from bench.photos import full_hd_jpeg
from engine.detector import UltraFaceDetector
from engine.pipeline import FacePipeline
from engine.preprocess import letterbox_geometry, letterbox_window, resizable_region
from tests.assets import asset_path

WINDOW = 256


def cpu_ms(work: Callable[[], object], repeat: int) -> float:
    work()
    started = time.thread_time()
    for _ in range(repeat):
        work()
    return (time.thread_time() - started) * 1000 / repeat


def photo_row(detector: UltraFaceDetector, name: str, image: np.ndarray, repeat: int) -> str:
    (request,) = detector.inputs([image], detector.canvas_size(image))
    canvas = request.image()
    fit, max_upscale = detector.spec.input.size, detector.max_upscale
    _, fitted_w, fitted_h = letterbox_geometry(image.shape, fit, max_upscale)
    height, width = image.shape[:2]
    step = max(detector.steps)
    windows = [(x, y, x + WINDOW, y + WINDOW) for y in range(0, canvas.shape[0] - WINDOW + 1, step)
               for x in range(0, canvas.shape[1] - WINDOW + 1, step)]

    def difference(window: tuple[int, int, int, int], by_resize: bool) -> np.ndarray:
        made = letterbox_window(image, fit, max_upscale, window, by_resize=by_resize)
        return np.abs(made.astype(np.int16) - canvas[window[1]:window[3], window[0]:window[2]])

    diffs = [difference(w, True) for w in windows]
    warped = max(int(difference(w, False).max()) for w in windows)
    by_resize = sum(resizable_region(image.shape, fit, max_upscale, w) is not None for w in windows)
    made = cpu_ms(partial(detector.window_canvas, image, windows[0]), repeat)
    warp = cpu_ms(partial(letterbox_window, image, fit, max_upscale, windows[0], by_resize=False), repeat)
    return (f"{name:<14} {width:>4}x{height:<4} {fitted_w:>4}x{fitted_h:<4} {width / fitted_w:8.5f} "
            f"{height / fitted_h:8.5f} {len(windows):7d} {by_resize:9d} {max(int(d.max()) for d in diffs):8d} "
            f"{np.mean([d.mean() for d in diffs]):9.3f} {warped:8d} {made:9.3f} {warp:8.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    pipeline = FacePipeline()
    photos = {**{name: full_hd_jpeg(name) for name in PORTRAITS},
              **{name: asset_path(name).read_bytes() for name in GROUPS}}
    print(f"{'photo':<14} {'decoded':>9} {'canvas':>9} {'x scale':>8} {'y scale':>8} {'windows':>7} "
          f"{'by resize':>9} {'max diff':>8} {'mean diff':>9} {'warped':>8} {'window ms':>9} {'warp ms':>8}")
    try:
        for name, data in photos.items():
            print(photo_row(pipeline.detector, name, pipeline.decode(data).pixels, args.repeat))
    finally:
        pipeline.close()


if __name__ == "__main__":
    main()
