"""`facecompare serve` as a subprocess would run it, over the temporary state-layer fakes.

`python -m tests.serve_with_fakes DATA_DIR` prints a workspace key on stdout and serves on a free loopback
port (logged as JSON on stderr) until SIGTERM. It goes once the real state layer is merged.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from service.app import create_app, serve
from service.config import load_config
from service.logs import configure_logging
from tests.state_fakes import fake_services


def main(data_dir: str) -> int:
    config = load_config(overrides={"host": "127.0.0.1", "port": 0, "data_dir": Path(data_dir)})
    configure_logging(config.log_level)
    services = fake_services(config)
    _, key = services.workspaces.add("tests")
    print(key, flush=True)
    asyncio.run(serve(create_app(services), config))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
