"""The data directory (workspaces, jobs, outbox) as every command finds it: the flag, else the configuration.

`serve` and `workspace` resolve it the same way, so a `data_dir` set in the TOML file or the environment is
where both look, and a workspace added from the command line is the one the server sees.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from service.config import load_config


def add_data_dir_option(parser: argparse.ArgumentParser) -> None:
    """`--data-dir` and `--config`, read back with `data_dir_of(args)`."""
    parser.add_argument("--data-dir", type=Path,
                        help="workspaces and jobs (default: data_dir of the configuration, else "
                             "$FACECOMPARE_DATA, else $FACECOMPARE_HOME/data)")
    parser.add_argument("--config", type=Path, help="TOML file (default $FACECOMPARE_CONFIG, "
                                                    "else $FACECOMPARE_HOME/config.toml if present)")


def data_dir_of(args: argparse.Namespace) -> Path:
    """The flag, else the configuration's (file, environment, default); ValueError or OSError on a bad file."""
    return args.data_dir if args.data_dir is not None else load_config(args.config).data_dir
