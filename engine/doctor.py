"""What this machine has for the GPU path, what is missing, and the fix: `facecompare doctor`.

Probes use the CUDA driver through ctypes and package metadata; tensorrt and pycuda are imported only through
the TensorRT backend module, as everywhere else.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from engine.backends.base import BackendUnavailable
from engine.backends.engine_cache import EngineCache
from engine.backends.trt_api import UnsupportedTensorRT, check_version
from models import paths

TEGRA_RELEASE = Path("/etc/nv_tegra_release")
DRIVER_VERSION = Path("/proc/driver/nvidia/version")


@dataclass(frozen=True)
class Finding:
    """One line of the report: `fix` is set when something the TensorRT path needs is missing."""

    what: str
    value: str
    fix: str | None = None


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def cuda_driver() -> tuple[int | None, int]:
    """(driver's CUDA version as 12060, or None without a driver; number of CUDA devices)."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None, 0
    version, count = ctypes.c_int(), ctypes.c_int()
    lib.cuDriverGetVersion(ctypes.byref(version))
    if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return version.value, 0
    return version.value, count.value


def _nvidia_smi() -> str | None:
    if not shutil.which("nvidia-smi"):
        return None
    done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                          capture_output=True, text=True, timeout=20, check=False)
    return done.stdout.strip() or None


def findings() -> list[Finding]:
    report = [Finding("machine", f"{platform.machine()}, Python {platform.python_version()}")]
    jetson = TEGRA_RELEASE.exists()
    report.append(Finding("Jetson (L4T)", TEGRA_RELEASE.read_text().splitlines()[0] if jetson else "no"))
    if DRIVER_VERSION.exists():
        report.append(Finding("NVIDIA driver", DRIVER_VERSION.read_text().splitlines()[0]))
    smi = _nvidia_smi()
    if smi:
        report.append(Finding("nvidia-smi", smi))
    driver_cuda, devices = cuda_driver()
    if driver_cuda is None:
        report.append(Finding("CUDA driver", "none: no NVIDIA GPU or driver on this machine",
                              "the TensorRT backend needs an NVIDIA GPU (Jetson: JetPack 5.1+; x86: driver 525+); "
                              "the onnxruntime CPU backend works without one"))
    else:
        major, minor = divmod(driver_cuda // 10, 100)
        report.append(Finding("CUDA driver", f"CUDA {major}.{minor}, {devices} device(s)",
                              None if devices else "the driver sees no GPU: check the device and its permissions"))
    report += _python_packages(jetson)
    report += _tensorrt_backend()
    report += _cache()
    report += int8_models()
    return report


def _python_packages(jetson: bool) -> list[Finding]:
    report = []
    for package, fix in (
        ("tensorrt", "sudo apt install python3-libnvinfer (JetPack) and make the venv with --system-site-packages"
         if jetson else "pip install '.[gpu]' (or use the nvcr.io TensorRT image: docker/Dockerfile.x86-gpu)"),
        ("pycuda", "pip install --no-binary pycuda pycuda with CUDA's nvcc on PATH (see docs/JETSON.md)"),
    ):
        version = _package_version(package)
        report.append(Finding(package, version or "not installed", None if version else fix))
    nvrtc = _package_version("nvidia-cuda-nvrtc-cu12")
    report.append(Finding("NVRTC wheel (kernel check)", nvrtc or "not installed",
                          None if nvrtc else "pip install '.[test]' to run make check-kernels"))
    return report


def _tensorrt_backend() -> list[Finding]:
    try:
        from engine.backends import tensorrt as backend
    except BackendUnavailable as exc:
        return [Finding("TensorRT backend", "unavailable", str(exc))]
    version = backend.trt.__version__
    try:
        series = check_version(version)
    except UnsupportedTensorRT as exc:
        return [Finding("TensorRT", version, str(exc))]
    report = [Finding("TensorRT", f"{version} (API series {series})"),
              Finding("CUDA runtime (pycuda)", ".".join(map(str, backend.cuda.get_version())))]
    try:
        gpu = backend.cuda_device()
    except BackendUnavailable as exc:
        return [*report, Finding("GPU", "none", str(exc))]
    kind = "integrated (Jetson)" if gpu.integrated else "discrete"
    return [*report, Finding("GPU", f"{gpu.name}, compute capability {gpu.compute_capability[0]}."
                             f"{gpu.compute_capability[1]}, {gpu.sm_count} SMs, {kind}; engine buffers: {gpu.memory} "
                             "(FACECOMPARE_GPU_MEMORY overrides)"), Finding("TensorRT backend", "ready")]


def _cache() -> list[Finding]:
    cache = EngineCache(paths.engines_dir())
    entries = cache.entries()
    report = [Finding("engine cache", f"{cache.root}: {len(entries)} engine(s)",
                      None if entries else "facecompare engines build [--precision fp16|int8]")]
    for entry in entries:
        cc = entry["compute_capability"]
        report.append(Finding(f"  {entry['file']}", f"{entry['model']} {entry['precision']}, TensorRT "
                              f"{entry['trt_version']}, {entry['gpu_name']} sm{cc[0]}{cc[1]}, "
                              f"{entry['bytes'] // 1024} KiB"))
    return report


def int8_models() -> list[Finding]:
    """What `precision = "int8"` would load, by the route of the last calibration (docs/INT8.md)."""
    from engine.backends.int8 import read_route
    from models.manifest import load_manifest
    from models.store import prepared_models

    try:
        models = prepared_models()
    except FileNotFoundError as exc:
        return [Finding("models", "not fetched", str(exc))]
    route = read_route(paths.calibration_dir())
    names = [spec.name for spec in load_manifest().pipeline_models()]
    if route.name == "calibrator":
        built = {e["model"] for e in EngineCache(paths.engines_dir()).entries() if e.get("calibration")
                 == route.calibration}
        missing = [name for name in names if not any(model.startswith(name) for model in built)]
        return [Finding("INT8 route", f"TensorRT calibrator (calibration {route.calibration[:12]}), engines "
                        + ("for every model" if not missing else f"missing for {', '.join(missing)}"),
                        "facecompare engines build --precision int8 --implicit --calibration DIR" if missing else None)]
    missing = [name for name in names if not models[name].quantized.exists()]
    method = f" ({route.method} calibration)" if route.method else ""
    return [Finding("INT8 route", f"Q/DQ models{method}, " + ("none missing" if not missing else
                                                     f"missing for {', '.join(missing)}"),
                    "facecompare engines build --precision int8 --calibration DIR (add --onnx-only without a GPU)"
                    if missing else None)]
