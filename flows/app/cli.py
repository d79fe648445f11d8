"""The ``clipflow`` command: demo, emulator, blocks, limits and work pool setup."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys


def _setup(args: argparse.Namespace) -> int:
    """Create/update the blocks from CLIPFLOW_* variables, the provider quota limits and the work pool.
    Idempotent."""
    from blocks.setup import MissingSettingError, save_blocks_from_env
    from deployments.work_pool import WorkPoolTypeError, ensure_work_pool
    from flows.runtime.quotas import ensure_limits

    async def go() -> list[str]:
        saved = [] if args.limits_only else await save_blocks_from_env(name=args.name)
        saved += await ensure_limits()
        if args.work_pool and not args.limits_only:
            saved.append(await ensure_work_pool(args.work_pool))
        return saved

    try:
        for line in asyncio.run(go()):
            print(line)
    except (MissingSettingError, WorkPoolTypeError) as exc:
        print(f"clipflow setup: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["emulator"]:
        from emulator.cli import main as emulator_main

        return emulator_main(argv[1:])

    parser = argparse.ArgumentParser(prog="clipflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run produce_video against the local emulator and S3, no setup needed")
    demo.add_argument("--json", action="store_true", help="print the ProductionResult as one JSON object")
    demo.add_argument("--request", help="a ProductionRequest as JSON (default: one prompt into en + ja)")
    sub.add_parser("emulator", help="serve the provider emulator (see `clipflow emulator --help`)")
    setup = sub.add_parser(
        "setup", help="create/update blocks from CLIPFLOW_* env vars, the quota limits and the process work pool"
    )
    setup.add_argument("--name", default="clipflow", help="block name to save under")
    setup.add_argument("--limits-only", action="store_true", help="only create the global concurrency limits")
    setup.add_argument(
        "--work-pool", default="clipflow", metavar="NAME",
        help="process work pool the deployments run on, created if missing (default clipflow; '' skips it)",
    )
    args = parser.parse_args(argv)

    if args.command == "demo":
        from flows.app.demo import run_demo

        return run_demo(as_json=args.json, request_json=json.loads(args.request) if args.request else None)
    if args.command == "setup":
        return _setup(args)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
