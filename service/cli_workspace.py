"""`facecompare workspace ...`: add, update, list, disable, enable, re-key, export and import workspaces."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from service import workspace_file
from service.datadir import add_data_dir_option, data_dir_of
from service.workspaces import MODES, Workspace, WorkspaceError, WorkspaceStore

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration(text: str) -> float:
    """`10m`, `90s`, `1.5h`, `500ms`, `2d`; a bare number is seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (such as 90s, 10m, 1h)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


def _key_from_stdin(args: argparse.Namespace) -> str | None:
    """The key a fleet's secret manager chose, read from stdin (never from argv, which `ps` shows)."""
    return sys.stdin.readline().strip() if args.key_from_stdin else None


def _print_key(workspace: Workspace, key: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"name": workspace.name, "apiKey": key, "callbackSecret": workspace.callback_secret}))
    else:
        print(f"workspace {workspace.name}: API key (shown only now, keep it safe):")
        print(key)
        print(f"callback secret (verifies X-FaceCompare-Signature): {workspace.callback_secret}")


def _add(store: WorkspaceStore, args: argparse.Namespace) -> None:
    workspace, key = store.add(args.name, mode=args.mode, threshold=args.threshold, allowlist=args.allow,
                               require_liveness=args.require_liveness, liveness_threshold=args.liveness_threshold)
    _print_key(workspace, key, args.json)


def _update(store: WorkspaceStore, args: argparse.Namespace) -> None:
    w = store.update(args.name, threshold=args.threshold, require_liveness=args.require_liveness,
                     liveness_threshold=args.liveness_threshold)
    print(f"workspace {w.name}: threshold {w.threshold:g}, {_liveness_policy(w)}")


def _liveness_policy(w: Workspace) -> str:
    threshold = "shipped" if w.liveness_threshold is None else f"{w.liveness_threshold:g}"
    return f"liveness {'required' if w.require_liveness else 'on request'} (threshold {threshold})"


def _list(store: WorkspaceStore, args: argparse.Namespace) -> None:
    workspaces = store.list()
    if args.json:
        fields = ("name", "enabled", "mode", "threshold", "allowlist", "require_liveness", "liveness_threshold")
        print(json.dumps([{name: value for name, value in asdict(w).items() if name in fields} for w in workspaces]))
        return
    for w in workspaces:
        allowlist = ",".join(w.allowlist) or "global"
        state = "enabled" if w.enabled else "disabled"
        print(f"{w.name}\t{state}\t{w.mode}\tthreshold {w.threshold:g}\tclients {allowlist}\t{_liveness_policy(w)}")


def _set_enabled(enabled: bool) -> Callable[[WorkspaceStore, argparse.Namespace], None]:
    def handler(store: WorkspaceStore, args: argparse.Namespace) -> None:
        store.set_enabled(args.name, enabled)
        print(f"workspace {args.name} {'enabled' if enabled else 'disabled'}")

    return handler


def _print_new_key(workspace: Workspace, key: str, args: argparse.Namespace) -> None:
    """A key given on stdin is the caller's already: only say that it was taken."""
    if args.key_from_stdin:
        print(f"workspace {workspace.name}: key {key.split('_')[1]} added")
    else:
        _print_key(workspace, key, args.json)


def _rotate_key(store: WorkspaceStore, args: argparse.Namespace) -> None:
    key = store.rotate_key(args.name, grace=args.grace, key=_key_from_stdin(args))
    _print_new_key(store.get(args.name), key, args)
    if args.grace > 0:
        print(f"the older keys keep working for {args.grace:g} s more", file=sys.stderr)


def _add_key(store: WorkspaceStore, args: argparse.Namespace) -> None:
    key = store.add_key(args.name, key=_key_from_stdin(args))
    _print_new_key(store.get(args.name), key, args)


def _export(store: WorkspaceStore, args: argparse.Namespace) -> None:
    if args.with_secrets:
        print("facecompare workspace: this export holds callback secrets: it is a secret itself;"
              " keep it as one", file=sys.stderr)
    sys.stdout.write(workspace_file.dump(store.export(), as_json=args.json, with_secrets=args.with_secrets))


def _import(store: WorkspaceStore, args: argparse.Namespace) -> None:
    changes = store.sync(workspace_file.load(Path(args.file)))
    print("\n".join(changes) if changes else "no changes: the workspaces already match the file")


def _run(action: Callable[[WorkspaceStore, argparse.Namespace], None]) -> Callable[[argparse.Namespace], int]:
    """A handler with its store opened, and a refused command reported in one line (exit status 1)."""

    def handler(args: argparse.Namespace) -> int:
        try:
            data_dir = data_dir_of(args)
        except (OSError, ValueError) as error:
            raise SystemExit(f"facecompare workspace: {error}") from error
        try:
            action(WorkspaceStore(data_dir), args)
        except WorkspaceError as error:
            raise SystemExit(f"facecompare workspace: {error}") from error
        return 0

    return handler


def add_commands(commands: argparse._SubParsersAction) -> None:
    workspace = commands.add_parser("workspace", help="manage workspaces: keys, mode, threshold, allowlist")
    sub = workspace.add_subparsers(dest="workspace_command", required=True)

    add = sub.add_parser("add", help="create a workspace and print its API key (once)")
    add.add_argument("name")
    add.add_argument("--mode", choices=MODES, default="sync", help="async: every request needs a callbackUrl")
    add.add_argument("--threshold", type=float, default=80.0, help="match threshold 0-100 (default 80)")
    add.add_argument("--allow", action="append", default=[], metavar="CIDR",
                     help="client networks for this workspace (repeatable; default: the global allowlist)")
    add.add_argument("--json", action="store_true", help="print {name, apiKey, callbackSecret}")
    add.set_defaults(handler=_run(_add))
    _liveness_options(add, default=False)

    update = sub.add_parser("update", help="change a workspace's threshold or liveness policy")
    update.add_argument("name")
    update.add_argument("--threshold", type=float, default=None, help="match threshold 0-100")
    _liveness_options(update, default=None)
    update.set_defaults(handler=_run(_update))

    listing = sub.add_parser("list", help="list workspaces (never their keys)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_run(_list))

    for name, enabled in (("enable", True), ("disable", False)):
        toggle = sub.add_parser(name, help=f"{name} a workspace")
        toggle.add_argument("name")
        toggle.set_defaults(handler=_run(_set_enabled(enabled)))

    rotate = sub.add_parser("rotate-key", help="replace every key of a workspace with a new one")
    rotate.add_argument("--grace", type=duration, default=0.0, metavar="DURATION",
                        help="the older keys keep working this long (such as 10m); default: they stop at once")
    more = sub.add_parser("add-key", help="one more key for a workspace, the others kept (rotation without a gap)")
    for parser, action in ((rotate, _rotate_key), (more, _add_key)):
        parser.add_argument("name")
        parser.add_argument("--json", action="store_true", help="print {name, apiKey, callbackSecret}")
        parser.add_argument("--key-from-stdin", action="store_true",
                            help="use the key on stdin (fcw_<16 hex>_<43+ base64url>) instead of a random one")
        parser.set_defaults(handler=_run(action))

    export = sub.add_parser("export", help="print every workspace with its key hashes (never a key), as TOML")
    export.add_argument("--json", action="store_true", help="as JSON")
    export.add_argument("--with-secrets", action="store_true",
                        help="include the callback secrets (the output is then a secret)")
    export.set_defaults(handler=_run(_export))
    importer = sub.add_parser("import", help="make the workspaces match an exported file; print what changed")
    importer.add_argument("file", help="a `workspace export` file (TOML, or JSON)")
    importer.set_defaults(handler=_run(_import))

    for parser in (add, update, listing, rotate, more, export, importer, sub.choices["enable"],
                   sub.choices["disable"]):
        add_data_dir_option(parser)


def _liveness_options(parser: argparse.ArgumentParser, default: bool | None) -> None:
    parser.add_argument("--require-liveness", action=argparse.BooleanOptionalAction, default=default,
                        help="check every compare's target face; not live answers isMatch false (docs/LIVENESS.md)")
    parser.add_argument("--liveness-threshold", type=float, default=None, metavar="T",
                        help="liveness score 0-100 a live face reaches (default: the shipped one, docs/LIVENESS.md)")
