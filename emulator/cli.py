"""``python -m emulator`` / ``clipflow emulator``: serve the emulator in the foreground."""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from pathlib import Path

import uvicorn

from emulator.app import create_app
from emulator.config import DEMO_SPACE, DEMO_TEMPLATE, DEMO_VID, EmulatorConfig, load_faults_file


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clipflow emulator", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Local Volcengine VOD + Jimeng + gateway emulator: signatures, quotas, job state machines, "
        "faults and a ledger of billed submissions (GET /_emulator/ledger). Reference: docs/emulator.md.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port (see --port-file)")
    parser.add_argument("--port-file", type=Path,
                        help="write the port actually bound here once listening (for a parent process)")
    parser.add_argument("--access-key", help="Volcengine AK (default: the demo AK)")
    parser.add_argument("--secret-key", help="Volcengine SK (default: the demo SK)")
    parser.add_argument("--gateway-key", help="gateway Bearer key (default: the demo key)")
    parser.add_argument("--time-scale", type=float, help="real seconds per nominal second (default 1.0)")
    parser.add_argument("--faults", type=Path, help="JSON file of fault rules")
    parser.add_argument("--callback-url", help="where WorkflowComplete / AITranslationComplete are POSTed")
    parser.add_argument("--callback-key", help="sign callbacks with this key (VOD callback authentication)")
    parser.add_argument("--config", type=Path, help="JSON file with any EmulatorConfig fields")
    parser.add_argument("--log-level", default="info", help="uvicorn log level")
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    data: dict = json.loads(args.config.read_text(encoding="utf-8")) if args.config else {}
    for field, value in (
        ("access_key", args.access_key), ("secret_key", args.secret_key), ("gateway_key", args.gateway_key),
        ("time_scale", args.time_scale), ("callback_url", args.callback_url),
        ("callback_key", args.callback_key),
    ):
        if value is not None:
            data[field] = value
    config = EmulatorConfig.model_validate(data)
    if args.faults:
        config = config.model_copy(update={"faults": load_faults_file(args.faults)})
    return config


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket, bound before the server starts (port 0 = a free port, no race to pick one).

    IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose proto says TCP (else ~40 ms per answer).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _write_port(path: Path, port: int) -> None:
    # Written whole then renamed: a parent polling the file never reads half a number.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(str(port), encoding="utf-8")
    os.replace(tmp, path)


def masked(secret: str | None) -> str:
    """A secret as the banner shows it: never the value (it may have come from the command line or a config
    file and end up in a terminal log), only that it is set and its length."""
    return f"(secret set, {len(secret)} characters)" if secret else "(not set)"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except (OSError, ValueError) as exc:
        print(f"emulator: bad configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        print(f"emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    base = f"http://{args.host}:{port}"
    print(
        f"clipflow emulator on {base}\n"
        f"  VOD + visual endpoint : {base}  (region {config.region}; services vod / cv)\n"
        f"  gateway base URL      : {base}  (POST /v1/video/create, GET /v1/video/query)\n"
        f"  access key            : {config.access_key}\n"
        f"  secret key            : {masked(config.secret_key)}\n"
        f"  gateway key           : {masked(config.gateway_key)}\n"
        f"  space / template / vid: {DEMO_SPACE} / {DEMO_TEMPLATE} / {DEMO_VID}\n"
        f"  time scale            : {config.time_scale}  faults: {len(config.faults)}  "
        f"callbacks: {config.callback_url or '-'}\n"
        f"  admin                 : {base}/_emulator/health | ledger | faults | config | reset",
        flush=True,
    )
    # A bounded graceful shutdown: SIGTERM from a parent (emulator_process) must not wait on idle keep-alives.
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level=args.log_level.lower(),
                                           timeout_graceful_shutdown=5))
    if args.port_file:
        _write_port(args.port_file, port)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
