"""`make check-kernels`: compile every CUDA kernel for every Jetson architecture with NVRTC; fail on any error."""

from __future__ import annotations

import sys

from engine.cuda import nvrtc
from engine.cuda.kernels import check


def main() -> int:
    major, minor = nvrtc.version()
    results = check()
    for result in results:
        status = f"ok ({result.cubin_bytes} bytes)" if result.error is None else f"FAILED\n{result.error}"
        print(f"{result.file:14} {result.arch}  {status}")
    failed = [r for r in results if r.error]
    print(f"NVRTC {major}.{minor}: {len(results) - len(failed)} compiled, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
