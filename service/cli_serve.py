"""`facecompare serve`: the HTTP service, configured from a TOML file, the environment and these flags."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from service.config import load_config
from service.logs import configure_logging

EXIT_CONFIG = 2


def _serve(args: argparse.Namespace) -> int:
    from service.app import create_app, serve, services_from_config

    try:
        config = load_config(args.config, overrides={"host": args.host, "port": args.port,
                                                     "data_dir": args.data_dir})
    except (OSError, ValueError) as exc:
        print(f"facecompare serve: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(config.log_level)
    services = services_from_config(config)
    key = services.workspaces.ensure_default()
    if key:
        print(f"Created workspace 'default'. Its API key, shown only this once:\n  {key}", flush=True)
    asyncio.run(serve(create_app(services), config))
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="serve the compare API over HTTP")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 for the network)")
    serve.add_argument("--port", type=int, help="port (default 8080; 0 picks a free one)")
    serve.add_argument("--data-dir", help="workspaces and jobs (default $FACECOMPARE_DATA, "
                                          "else $FACECOMPARE_HOME/data)")
    serve.add_argument("--config", type=Path, help="TOML file (default $FACECOMPARE_CONFIG, "
                                                   "else $FACECOMPARE_HOME/config.toml if present)")
    serve.set_defaults(handler=_serve)
