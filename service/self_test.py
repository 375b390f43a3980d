"""`facecompare doctor --self-test` (`make gpu-check`): what the GPU path does on this machine, in one report.

The CUDA kernels on the device against the OpenCV path; upload, mapped and device-buffer timings; TensorRT
engines (FP16, and INT8 from the Q/DQ models) against onnxruntime on the CPU, stage by stage; the compare of
the test pairs on both backends; per stage and end-to-end timings at concurrency 1 and 8. Without pycuda the
kernels run through CuPy where it is installed; without a GPU every check is listed as skipped, with why.
Under 5 minutes once the engines are cached (`facecompare engines build`; a first build takes minutes more).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np

from engine.cuda.calls import kernel_call
from engine.preprocess import Crop, ImageInput, Letterbox, Warp, cpu_blob, tensor_shape
from models import paths
from models.manifest import InputSpec, load_manifest

PAIRS = [("obama.jpg", "obama2.jpg"), ("obama.jpg", "obama3.jpg"), ("obama.jpg", "biden.jpg"),
         ("sample1.jpg", "sample2.jpg"), ("biden.jpg", "sample3.jpg")]
COMPARES_AT_8 = 48
KERNELS = "kernels on the device vs the CPU path"
MEMORY = "upload + letterbox of a 1920x1080 frame per memory strategy (median of 20)"
FP16 = "TensorRT FP16 engines vs onnxruntime FP32, per stage"
INT8 = "TensorRT INT8 engines (Q/DQ models) vs onnxruntime INT8, per stage"
COMPARE = "end-to-end compare on the test pairs, both backends (same isMatch, within 1 point)"
TIMINGS = "stage and end-to-end timings at concurrency 1 and 8"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "pass", "fail" or "skipped"
    detail: str


def _device_api() -> tuple[str | None, str]:
    """("pycuda" or "cupy", device name), or (None, why there is none)."""
    reasons = []
    try:
        import pycuda.driver as cuda

        cuda.init()
        if cuda.Device.count():
            return "pycuda", cuda.Device(0).name()
        reasons.append("CUDA sees no device")
    except ImportError:
        reasons.append("pycuda is not installed")
    except Exception as exc:  # pycuda raises its own errors for a missing driver
        reasons.append(f"pycuda: {exc}")
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount():
            return "cupy", cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except ImportError:
        reasons.append("CuPy is not installed")
    except Exception as exc:
        reasons.append(f"CuPy: {exc}")
    return None, "no NVIDIA GPU usable here (" + "; ".join(reasons) + ")"


def kernel_cases() -> list[tuple[str, ImageInput, InputSpec]]:
    """Each kernel and mode on noise, the hardest case for rounding: letterbox shrinking by area and
    bilinearly and enlarging, the landmark crop, the warp with and without flip."""
    manifest = load_manifest()
    detector = manifest.for_role("detector")[0]
    landmarks, recognizer = manifest.for_role("landmarks")[0].input, manifest.for_role("recognizer")[0].input
    upscale = float(detector.params["max_upscale"])
    rng = np.random.default_rng(0)

    def noise(height: int, width: int) -> np.ndarray:
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)

    matrix = np.array([[0.27, -0.08, -40.3], [0.08, 0.27, 13.3]])
    image = noise(480, 400)
    return [
        ("letterbox, area", Letterbox(noise(1080, 1920), detector.input.size, detector.input.size, upscale),
         detector.input),
        ("letterbox, bilinear", Letterbox(noise(540, 960), detector.input.size, detector.input.size, upscale),
         detector.input),
        ("letterbox, enlarging", Letterbox(noise(150, 150), detector.input.size, (608, 480), upscale),
         detector.input),
        ("landmark crop", Crop(image, (60, 90, 200, 200), landmarks.size), landmarks),
        ("warp", Warp(image, matrix, recognizer.size), recognizer),
        ("warp, flipped", Warp(image, matrix, recognizer.size, flip=True), recognizer),
    ]


def kernels_check(run: Callable[[ImageInput, InputSpec], np.ndarray], api: str) -> Check:
    """`run` prepares one request on the device; each output is held against the OpenCV path."""
    results, worst = [], 1.0
    for label, request, spec in kernel_cases():
        expected = cpu_blob(spec, [request])
        levels = np.abs(run(request, spec) - expected) / spec.scale
        share = float((levels <= 1.0 + 1e-4).mean())
        worst = min(worst, share)
        results.append(f"{label}: largest {float(levels.max()):.2f} levels, {share:.2%} within 1")
    status = "pass" if worst >= 0.995 else "fail"
    return Check(KERNELS, status, f"through {api}: " + "; ".join(results))


def pycuda_run(request: ImageInput, spec: InputSpec) -> np.ndarray:
    """One request prepared by the kernels on the device, in the backend's primary context."""
    import pycuda.driver as cuda

    from engine.backends.tensorrt import cuda_device
    from engine.cuda.launch import CudaPreprocessor

    device = cuda_device()
    with device.active():
        preprocessor = CudaPreprocessor(device.compute_capability)
        out = np.empty((1, *tensor_shape(request, spec)), np.float32)
        target = cuda.mem_alloc(out.nbytes)
        stream = cuda.Stream()
        preprocessor.prepare(spec, [request], int(target), stream)
        cuda.memcpy_dtoh_async(out, target, stream)
        stream.synchronize()
        target.free()
        preprocessor.free()
    return out


@cache
def _cupy_functions() -> dict[str, Any]:
    import cupy

    from engine.cuda.kernels import KERNELS, OPTIONS, source

    functions = {}
    for file, names in KERNELS.items():
        module = cupy.RawModule(code=source(file), options=OPTIONS)
        functions.update({name: module.get_function(name) for name in names})
    return functions


def _cupy_run(request: ImageInput, spec: InputSpec) -> np.ndarray:
    import cupy

    call = kernel_call(request, spec)
    out = cupy.empty((1, *tensor_shape(request, spec)), cupy.float32)
    width, height = call.size
    _cupy_functions()[call.kernel](((width + 15) // 16, (height + 15) // 16), (16, 16),
                                   (cupy.asarray(np.ascontiguousarray(request.pixels)), *call.source, out,
                                    *call.destination))
    return cupy.asnumpy(out)


def memory_check() -> Check:
    """A Full HD frame's upload from ordinary and from page-locked memory, and the CPU writing it into mapped
    memory, each followed by the letterbox kernel reading it: the three strategies of gpu_memory."""
    import pycuda.driver as cuda

    from engine.backends.gpu_memory import choose_strategy
    from engine.backends.tensorrt import cuda_device
    from engine.cuda.launch import BLOCK, _functions

    device = cuda_device()
    frame = np.random.default_rng(1).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    request, spec = kernel_cases()[0][1:]
    call = kernel_call(Letterbox(frame, request.fit, request.canvas, request.max_upscale), spec)
    timings: dict[str, list[float]] = {"device (pageable copy)": [], "pinned (async copy)": [],
                                       "mapped (zero copy)": []}
    with device.active():
        letterbox = _functions(device.compute_capability)[call.kernel]
        out = cuda.mem_alloc(int(np.prod(tensor_shape(request, spec))) * 4)
        on_device = cuda.mem_alloc(frame.nbytes)
        pinned = cuda.pagelocked_empty(frame.shape, np.uint8)
        mapped = cuda.pagelocked_empty(frame.shape, np.uint8, mem_flags=cuda.host_alloc_flags.DEVICEMAP)
        stream = cuda.Stream()

        def kernel(source: Any) -> None:
            width, height = call.size
            letterbox(source, *call.source, out, *call.destination, block=BLOCK,
                      grid=((width + 15) // 16, (height + 15) // 16), stream=stream)
            stream.synchronize()

        for _ in range(20):
            started = time.perf_counter()
            cuda.memcpy_htod(on_device, frame)
            kernel(on_device)
            timings["device (pageable copy)"].append(time.perf_counter() - started)
            started = time.perf_counter()
            np.copyto(pinned, frame)
            cuda.memcpy_htod_async(on_device, pinned, stream)
            kernel(on_device)
            timings["pinned (async copy)"].append(time.perf_counter() - started)
            started = time.perf_counter()
            np.copyto(mapped, frame)
            kernel(np.uintp(mapped.base.get_device_pointer()))
            timings["mapped (zero copy)"].append(time.perf_counter() - started)
        for allocation in (out, on_device, pinned.base, mapped.base):
            allocation.free()
    chosen = choose_strategy(device.integrated, device.compute_capability)
    detail = "; ".join(f"{name}: {statistics.median(t) * 1000:.2f} ms" for name, t in timings.items())
    return Check(MEMORY, "pass", f"{detail}; in use: {chosen}")


def _photos() -> dict[str, bytes] | None:
    folder = paths.home() / "test-assets"
    names = {name for pair in PAIRS for name in pair}
    if not all((folder / name).exists() for name in names):
        return None
    return {name: (folder / name).read_bytes() for name in names}


def _pipeline(backend: str, precision: str) -> Any:
    from engine.pipeline import FacePipeline, PipelineConfig

    return FacePipeline(PipelineConfig(backend=backend, precision=precision))


def _iou(a: Any, b: Any) -> float:
    width = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    height = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = width * height
    return inter / max(a.area + b.area - inter, 1e-9)


def models_check(name: str, candidate: Any, reference: Any, photos: dict[str, bytes]) -> Check:
    """Each stage's outputs on the test photos: boxes (IoU), landmarks (px), embeddings (cosine)."""
    ious, point_errors, cosines, live = [], [], [], []
    for data in photos.values():
        pixels = reference.decode(data).pixels
        (found,), (got,) = reference.detector.detect([pixels]), candidate.detector.detect([pixels])
        ious += [max((_iou(a, b) for b in got), default=0.0) for a in found]
        if not found:
            continue
        face = [(pixels, found[0])]
        expected, points = reference.landmarks.points(face)[0], candidate.landmarks.points(face)[0]
        point_errors.append(float(np.abs(expected - points).max()))
        (faces,) = reference.faces([pixels], [found[:1]])
        (mine,) = candidate.faces([pixels], [found[:1]])
        cosines.append(float(faces[0].embedding @ mine[0].embedding))
        if reference.liveness is not None:
            live.append(float(np.abs(reference.liveness.probabilities(face) - candidate.liveness.probabilities(face))
                              .max()))
    ok = min(ious) >= 0.9 and min(cosines) >= 0.98 and max(live, default=0.0) <= 0.05
    return Check(name, "pass" if ok else "fail",
                 f"{len(ious)} faces: box IoU min {min(ious):.3f}; landmarks max {max(point_errors):.2f} px; "
                 f"embedding cosine min {min(cosines):.4f}; liveness probability max difference "
                 f"{max(live, default=0.0):.4f}")


def compare_check(candidate: Any, reference: Any, photos: dict[str, bytes]) -> Check:
    rows, ok = [], True
    for origin, target in PAIRS:
        a = reference.compare(photos[origin], photos[target])
        b = candidate.compare(photos[origin], photos[target])
        same = a.is_match == b.is_match
        sa = a.match.similarity if a.match else None
        sb = b.match.similarity if b.match else None
        close = sa == sb or (sa is not None and sb is not None and abs(sa - sb) <= 1.0)
        ok = ok and same and close
        rows.append(f"{origin}/{target}: onnxruntime {sa} {a.is_match}, tensorrt {sb} {b.is_match}")
    return Check(COMPARE, "pass" if ok else "fail", "; ".join(rows))


def _seconds(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _median_ms(action: Callable[[], object], runs: int = 20) -> float:
    action()
    return statistics.median(_seconds(action) for _ in range(runs)) * 1000


def _timings(pipeline: Any, origin: bytes, target: bytes) -> str:
    """Per stage on one pair at concurrency 1; whole compares at concurrency 8 through the service's batching."""
    from engine.align import similarity_matrix
    from service.runtime import BatchedPipeline

    pixels = [pipeline.decode(origin).pixels, pipeline.decode(target).pixels]
    faces = [(p, found[0]) for p, found in zip(pixels, pipeline.detector.detect(pixels), strict=True)]
    points = pipeline.landmarks.points(faces)
    size = pipeline.recognizer.crop_size
    aligned = [(p, similarity_matrix(pt, size)) for p, pt in zip(pixels, points, strict=True)]
    stages = {"detect": lambda: pipeline.detector.detect(pixels), "landmarks": lambda: pipeline.landmarks.points(faces),
              "embed": lambda: pipeline.recognizer.embed(aligned), "compare": lambda: pipeline.compare(origin, target)}
    at_1 = ", ".join(f"{stage} {_median_ms(action):.1f}" for stage, action in stages.items())
    batched = BatchedPipeline(pipeline.config, max_wait_ms=2.0, queue_size=64)
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: batched.compare(origin, target), range(8)))
            started = time.perf_counter()
            latencies = list(pool.map(lambda _: _seconds(lambda: batched.compare(origin, target)),
                                      range(COMPARES_AT_8)))
            elapsed = time.perf_counter() - started
    finally:
        batched.close()
    return (f"c=1 ms {at_1}; c=8 compare median {statistics.median(latencies) * 1000:.1f} ms, "
            f"{COMPARES_AT_8 / elapsed:.1f} compares/s")


def timings_check(pipelines: dict[str, Any], photos: dict[str, bytes]) -> Check:
    origin, target = photos[PAIRS[0][0]], photos[PAIRS[0][1]]
    return Check(TIMINGS, "pass", "; ".join(f"{name}: {_timings(pipeline, origin, target)}"
                                            for name, pipeline in pipelines.items()))


def tensorrt_checks(photos: dict[str, bytes] | None) -> list[Check]:
    names = (FP16, INT8, COMPARE, TIMINGS)
    try:
        from engine.backends import tensorrt  # noqa: F401
    except Exception as exc:
        return [Check(name, "skipped", f"TensorRT backend unavailable: {exc}") for name in names]
    if photos is None:
        why = "test photos not in the cache: run 'python -m tests.assets fetch' (make gpu-check does)"
        return [Check(name, "skipped", why) for name in names]
    reference, candidate = _pipeline("onnxruntime", "fp32"), _pipeline("tensorrt", "fp16")
    checks = [models_check(FP16, candidate, reference, photos)]
    try:
        int8_reference, int8 = _pipeline("onnxruntime", "int8"), _pipeline("tensorrt", "int8")
    except FileNotFoundError as exc:
        checks.append(Check(INT8, "skipped", str(exc)))
    else:
        checks.append(models_check(INT8, int8, int8_reference, photos))
        int8.close()
        int8_reference.close()
    checks.append(compare_check(candidate, reference, photos))
    checks.append(timings_check({"onnxruntime": reference, "tensorrt fp16": candidate}, photos))
    candidate.close()
    reference.close()
    return checks


def run_checks() -> tuple[bool, str, list[Check]]:
    """(a GPU was usable, its name or why not, the checks)."""
    api, device = _device_api()
    if api is None:
        return False, device, [Check(KERNELS, "skipped", device), Check(MEMORY, "skipped", device),
                               *tensorrt_checks(None)]
    checks = [kernels_check(pycuda_run if api == "pycuda" else _cupy_run, api)]
    checks.append(memory_check() if api == "pycuda" else
                  Check(MEMORY, "skipped", "needs pycuda (the backend's CUDA binding)"))
    checks += tensorrt_checks(_photos())
    return True, device, checks


def main(as_json: bool) -> int:
    """Print the report (with `as_json`, its last line one JSON object); 1 if a check failed."""
    gpu, device, checks = run_checks()
    for check in checks:
        print(f"[{check.status}] {check.name}\n    {check.detail}")
    failed = [c for c in checks if c.status == "fail"]
    print(f"\n{'GPU: ' + device if gpu else device}; {len(checks) - len(failed)} of {len(checks)} checks did not fail")
    if as_json:
        print(json.dumps({"gpu": gpu, "device": device if gpu else None, "checks": [asdict(c) for c in checks]}))
    return 1 if failed else 0
