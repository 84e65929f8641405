"""The `gateway` command: `gateway serve`, `gateway check-config`, `gateway assets`,
`gateway --help`."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway.errors import ConfigError, GatewayError

if TYPE_CHECKING:
    from gateway.settings import Settings

log = logging.getLogger("gateway")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Voice and omnichannel support gateway. Settings come from GATEWAY_* "
        "environment variables or a TOML file (GATEWAY_CONFIG, or ./gateway.toml).",
    )
    parser.add_argument("--config", help="TOML settings file (same as GATEWAY_CONFIG)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the gateway (web chat, console, webhooks)")
    serve.add_argument("--host", help="interface to bind (GATEWAY_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (GATEWAY_PORT, default 8080)")
    serve.add_argument("--data-dir", help="where state lives (GATEWAY_DATA_DIR, default ./data)")
    sub.add_parser("check-config", help="validate the settings and print them (secrets hidden)")
    assets = sub.add_parser(
        "assets",
        help="install the console's browser libraries (Chart.js) from package-lock.json",
    )
    assets.add_argument("--registry", help="an npm registry mirror (default: the lock's URLs)")
    from channels.phone.tools import simulate
    from channels.speech import models_cli

    models_cli.add_models_parser(sub)
    simulate.add_parser(sub)
    from gateway.routing import reps_cli

    reps_cli.add_parser(sub)
    return parser


def _version() -> str:
    """The installed package's version (its metadata, so it cannot drift)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("support-gateway")
    except PackageNotFoundError:  # pragma: no cover - run from a tree never installed
        return "unknown (not installed)"


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from gateway.http_input import quiet_malformed_requests

    quiet_malformed_requests()


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "assets":  # needs no settings: the checkout's npm lock only
        return _assets(args.registry)
    if args.config:
        os.environ["GATEWAY_CONFIG"] = args.config
    overrides: dict[str, object] = {}
    for name in ("host", "port", "data_dir"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    try:
        from gateway.settings import load_settings

        settings = load_settings(**overrides)
        _configure_logging(settings.log_level)
        if args.command == "check-config":
            from gateway.redaction import printable_settings

            print(json.dumps(printable_settings(settings), indent=2))
            return 0
        if args.command == "reps":
            from gateway.routing import reps_cli

            return reps_cli.run(args, settings)
        if args.command in ("models", "simulate-call"):
            from channels.phone.tools import simulate
            from channels.speech import models_cli

            if args.command == "models":
                return models_cli.run_models(args, settings)
            return simulate.run(args, settings)
        return _serve(settings)
    except GatewayError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2


def _assets(registry: str | None) -> int:
    from gateway import assets

    try:
        for line in assets.install(registry=registry):
            print(f"gateway assets: {line}")
    except assets.AssetError as exc:
        print(f"gateway assets: {exc}", file=sys.stderr)
        return 1
    return 0


def _serve(settings: Settings) -> int:
    from aiohttp import web

    from gateway.app import create_app

    app = create_app(settings)

    def started(_: str) -> None:  # run_app calls this once the site is up
        from gateway.redaction import redact_url

        log.info(
            "gateway listening on http://%s:%d (public URL %s, data in %s)",
            settings.host,
            settings.port,
            redact_url(settings.public_url),
            settings.data_dir.resolve(),
        )

    try:
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            print=started,
            access_log=None,
            loop=_new_loop(),
        )
    except OSError as exc:
        raise _listen_error(settings, exc) from exc
    return 0


_LISTEN_ERRNOS = {errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES}


def _listen_error(settings: Settings, exc: OSError) -> Exception:
    """One line naming the setting when the web server cannot bind its address; any
    other OSError (not ours to explain) is returned as it is, to be raised again."""
    where = f"{settings.host}:{settings.port}"
    if exc.errno not in _LISTEN_ERRNOS or str(settings.port) not in str(exc):
        return exc
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(
            f"GATEWAY_PORT: cannot listen on {where}: the port is already in use (another"
            " gateway running?); stop that one or pick another port (GATEWAY_PORT or --port)"
        )
    if exc.errno == errno.EACCES:
        return ConfigError(
            f"GATEWAY_PORT: cannot listen on {where}: not allowed (ports below 1024 need"
            " privileges); pick a port from 1024 up (GATEWAY_PORT or --port)"
        )
    return ConfigError(
        f"GATEWAY_HOST: cannot listen on {where}: not an address of this machine"
        " (GATEWAY_HOST or --host: 127.0.0.1, 0.0.0.0 or one of its addresses)"
    )


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (Linux, macOS): a faster drop-in event loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop has no Windows build
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
