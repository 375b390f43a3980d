"""`facecompare serve`: the HTTP service, configured from a TOML file, the environment and these flags."""

from __future__ import annotations

import argparse
import asyncio
import sys

from service.config import load_config
from service.datadir import add_data_dir_option
from service.logs import configure_logging
from service.malloc_arenas import cap_malloc_arenas, keep_freed_memory

EXIT_CONFIG = 2


def announce_default_key(key: str) -> None:
    """The first start's key, on stdout (the JSON logs go to stderr), set apart so it is seen among them."""
    rule = "=" * 72
    print(f"{rule}\nCreated workspace 'default'. Its API key, shown only this once:\n\n    {key}\n\n"
          f"Send it as the x-api-key header. Manage workspaces with `facecompare workspace`.\n{rule}",
          flush=True)


def _serve(args: argparse.Namespace) -> int:
    from service.app import create_app, serve, services_from_config
    from service.workspace_reload import apply_file
    from service.workspaces import WorkspaceError

    try:
        config = load_config(args.config, overrides={"host": args.host, "port": args.port,
                                                     "data_dir": args.data_dir})
    except (OSError, ValueError) as exc:
        print(f"facecompare serve: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(config.log_level)
    cap_malloc_arenas()
    keep_freed_memory()
    services = services_from_config(config)
    if config.workspaces is not None:
        try:
            apply_file(services.workspaces, config.workspaces)
        except WorkspaceError as exc:
            print(f"facecompare serve: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    elif key := services.workspaces.ensure_default():
        announce_default_key(key)
    asyncio.run(serve(create_app(services), config))
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="serve the compare API over HTTP")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 for the network)")
    serve.add_argument("--port", type=int, help="port (default 8080; 0 picks a free one)")
    add_data_dir_option(serve)
    serve.set_defaults(handler=_serve)
