"""The data directory (workspaces, jobs, outbox): one default, shared by every command that touches it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from models.paths import home


def default_data_dir() -> Path:
    """`$FACECOMPARE_DATA`, else `data` under the cache home (`$FACECOMPARE_HOME`)."""
    configured = os.environ.get("FACECOMPARE_DATA")
    return Path(configured).expanduser() if configured else home() / "data"


def add_data_dir_option(parser: argparse.ArgumentParser) -> None:
    """`--data-dir`, read as `args.data_dir`; the environment is read when the parser is built."""
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(),
                        help="where workspaces and jobs are kept (default: %(default)s)")
