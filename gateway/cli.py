"""The `gateway` command: `gateway serve`, `gateway check-config`, `gateway --help`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway.errors import GatewayError

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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the gateway (web chat, console, webhooks)")
    serve.add_argument("--host", help="interface to bind (GATEWAY_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (GATEWAY_PORT, default 8080)")
    serve.add_argument("--data-dir", help="where state lives (GATEWAY_DATA_DIR, default ./data)")
    sub.add_parser("check-config", help="validate the settings and print them (secrets hidden)")
    from channels.phone.tools import simulate
    from channels.speech import models_cli

    models_cli.add_models_parser(sub)
    simulate.add_parser(sub)
    from gateway.routing import reps_cli

    reps_cli.add_parser(sub)
    return parser


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
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

    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=started,
        access_log=None,
        loop=_new_loop(),
    )
    return 0


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (Linux, macOS): a faster drop-in event loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop has no Windows build
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
