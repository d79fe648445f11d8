"""The ``clipflow`` command: the demo, a local stack (up/down/status), the emulator, setup, run results, the journal,
spend (``cost``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path


def _setup(args: argparse.Namespace) -> int:
    """Create/update the blocks from CLIPFLOW_* variables, the provider quota limits and the work pool, then
    verify what was written (blocks load, bucket writable, each provider accepts the credentials). Idempotent."""
    from flows.app.block_setup import MissingSettingError, save_blocks_from_env
    from deployments.work_pool import WorkPoolTypeError, ensure_work_pool
    from flows.stages.preflight_checks import PreflightError
    from flows.stages.preflight import verify_setup
    from flows.coordination.quotas import ensure_limits
    from flows.stages.healing import ensure_automations

    async def go() -> tuple[list[str], list[PreflightError]]:
        saved = [] if args.limits_only else await save_blocks_from_env(
            name=args.name, keep_existing=args.keep_existing, example_prices=args.example_prices,
        )
        saved += await ensure_limits()
        if args.work_pool and not args.limits_only:
            saved.append(await ensure_work_pool(args.work_pool))
        if not args.limits_only:  # crashed runs marked and resumed, stuck cancels ended
            saved += await ensure_automations(keep_existing=getattr(args, "keep_existing", False))
        problems: list[PreflightError] = []
        if args.verify and not args.limits_only:
            gateway = any(s.startswith("video-gateway-credentials/") for s in saved)
            problems = await verify_setup(args.name, gateway=gateway)
        return saved, problems

    try:
        saved, problems = asyncio.run(go())
    except (MissingSettingError, WorkPoolTypeError) as exc:
        print(f"clipflow setup: {exc}", file=sys.stderr)
        return 2
    for line in saved:
        print(line)
    if problems:
        for problem in problems:
            print(f"clipflow setup: verify: {problem.field}: {problem.rule}", file=sys.stderr)
        print(
            "clipflow setup: the blocks were saved but do not work as configured; fix the settings above and run "
            "it again (--no-verify skips this check)", file=sys.stderr,
        )
        return 1
    if args.verify and not args.limits_only:
        print("verified: blocks load, bucket writable, provider credentials accepted")
    return 0


def _env_vars() -> dict[str, str]:
    from flows.runtime.settings import SETUP_VARIABLES

    return SETUP_VARIABLES


def _stack(args: argparse.Namespace) -> int:
    from flows.app import stack

    options = {k: getattr(args, k, None) for k in (
        "state_dir", "host", "prefect_port", "emulator_port", "s3_port", "callbacks_port", "time_scale",
        "bucket",
    )}
    settings = stack.StackSettings.from_env(**options)
    if args.command != "up":
        settings = stack.StackSettings.recorded(settings)
    say = lambda line: print(line, flush=True)  # noqa: E731 - progress while services start
    if args.command == "up":
        return stack.up(settings, say, reset=args.reset)
    if args.command == "down":
        return stack.down(settings, say)
    for name, pid in stack.status(settings):
        print(f"{name:15} {'running, pid ' + str(pid) if pid else 'stopped'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["emulator"]:
        from emulator.cli import main as emulator_main

        return emulator_main(argv[1:])
    if argv[:1] == ["callbacks"]:
        from flows.app.callbacks_server import main as callbacks_main

        return callbacks_main(argv[1:])

    parser = argparse.ArgumentParser(prog="clipflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run produce_video against the local emulator and S3, no setup needed")
    demo.add_argument("--json", action="store_true", help="print the ProductionResult as one JSON object")
    demo.add_argument("--request", help="a ProductionRequest as JSON (default: one prompt into en + ja)")
    sub.add_parser("emulator", help="serve the provider emulator (see `clipflow emulator --help`)")
    sub.add_parser("callbacks", help="receive VOD callbacks as Prefect events (`clipflow callbacks serve --help`)")
    setup = sub.add_parser(
        "setup", help="create/update blocks from CLIPFLOW_* env vars, the quota limits and the process work pool, "
        "then verify them",
        description="Create/update the blocks from CLIPFLOW_* environment variables, the provider quota limits and "
        "the process work pool, the Automations that mark runs whose heartbeats stopped Crashed and end stuck cancels "
        "(docs/operations.md), then verify what was written: the blocks load, the bucket is writable (a probe "
        "object is written and deleted), and each provider accepts the credentials (free signed reads). Exits "
        "non-zero naming the block and field when something is wrong.",
        # only for `setup`: the table lives in the blocks package, which imports Prefect (the demo must set
        # Prefect's environment before anything imports it)
        epilog="environment variables read:\n" + "\n".join(f"  {k:28} {v}" for k, v in _env_vars().items())
        if argv[:1] == ["setup"] else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    setup.add_argument("--name", default="clipflow", help="block name to save under")
    setup.add_argument("--limits-only", action="store_true", help="only create the global concurrency limits")
    setup.add_argument(
        "--keep-existing", action="store_true", help="leave blocks already saved under --name as they are (`clipflow up`)",
    )
    setup.add_argument(
        "--example-prices", action="store_true",
        help="save the emulator's example prices (illustrative, not vendor prices) in the clipflow-prices block; "
        "a block a person edited is kept with --keep-existing (`clipflow up`)",
    )
    setup.add_argument(
        "--no-verify", dest="verify", action="store_false",
        help="skip the verification (blocks load, bucket writable, credentials accepted by each provider)",
    )
    setup.add_argument(
        "--work-pool", default="clipflow", metavar="NAME",
        help="process work pool the deployments run on, created if missing (default clipflow; '' skips it)",
    )
    for name, text in (
        ("up", "start a full local stack: Prefect server and UI, emulator, S3 with its bucket, blocks, deployments, "
               "a worker (idempotent)"),
        ("down", "stop every process `clipflow up` started"),
        ("status", "show which processes of the local stack are running"),
    ):
        stack = sub.add_parser(
            name, help=text, description=text + ". Each setting below can also be set as CLIPFLOW_UP_<NAME>; "
            "state and logs live in the state directory.",
        )
        stack.add_argument("--state-dir", type=Path, help="default <checkout>/.clipflow")
        stack.add_argument(
            "--host", help="address the Prefect API and UI bind to (default 127.0.0.1); any other than loopback needs "
            "PREFECT_SERVER_API_AUTH_STRING and PREFECT_API_AUTH_STRING set (the emulator and S3 stay on 127.0.0.1)",
        )
        stack.add_argument("--prefect-port", type=int, help="Prefect API and UI (default 4200)")
        stack.add_argument("--emulator-port", type=int, help="provider emulator (default 8765)")
        stack.add_argument("--s3-port", type=int, help="S3 server (default 5055)")
        stack.add_argument("--callbacks-port", type=int, help="VOD callback receiver (default 8766)")
        if name == "up":
            stack.add_argument(
                "--reset", action="store_true", help="put the demo configuration back: blocks, deployments and the "
                "paused nightly schedule overwritten (by default what exists is left as it is), and say what it overwrote",
            )
            stack.add_argument("--time-scale", type=float, help="real seconds per provider second (default 0.01)")
            stack.add_argument("--bucket", help="bucket created in the S3 server (default clipflow-local)")
    result = sub.add_parser(
        "result", help="print a finished run's result and its artifacts, read from the Prefect API",
        description="Print a flow run's result (e.g. the ProductionResult: every Vid, bucket key and project id) and "
        "the keys of its artifacts, read from the Prefect API at PREFECT_API_URL. Exits 1 unless the run completed.",
    )
    result.add_argument("run_id", help="the flow run id (UI run page, or the id `create_flow_run` answered)")
    result.add_argument("--json", action="store_true", help="print only one JSON object")
    journal = sub.add_parser(
        "journal", help="list, attach or release paid requests whose answer was lost (see `clipflow journal -h`)",
        description="Paid requests whose answer was lost and that the provider cannot find (Jimeng, gateway, render) "
        "stop without paying again. Find the job in the provider console, then attach its id or release the record. "
        "Every change is a compare-and-swap (exit 3: the record changed meanwhile, look again), is kept in the audit "
        "trail (`clipflow journal audit`) and is a clipflow.journal.<action> Prefect event. Refusals exit 2.",
    )
    jsub = journal.add_subparsers(dest="journal_command", required=True)
    jlist = jsub.add_parser("list", help="unresolved records (--all: every record)")
    jlist.add_argument("--all", action="store_true", help="also records that are resolved")
    jlist.add_argument("--json", action="store_true", help="print one JSON list")
    jattach = jsub.add_parser(
        "attach", help="resume the job found in the console instead of paying again (checked with the provider first)"
    )
    jattach.add_argument("fingerprint", help="the request fingerprint (from `list` or the error message)")
    jattach.add_argument("job_id", help="the job/task id found in the provider console")
    jattach.add_argument("--block", default="clipflow", help="credentials block used to ask the provider (default clipflow)")
    jattach.add_argument("--space", default="", help="VOD space of the job (translations and edit projects only)")
    jattach.add_argument("--force", action="store_true", help="replace the job id of a record that already has one")
    jattach.add_argument("--json", action="store_true", help="print the updated record as JSON")
    jrelease = jsub.add_parser(
        "release", help="let the next run pay for this request again (only an unresolved lost answer; asks first)"
    )
    jrelease.add_argument("fingerprint", help="the request fingerprint")
    jrelease.add_argument("--yes", action="store_true", help="confirm without asking (scripts; required without a terminal)")
    jrelease.add_argument(
        "--force", action="store_true", help="release a record that is not a lost answer (e.g. a paid, submitted job)"
    )
    jrelease.add_argument("--json", action="store_true", help="print the updated record as JSON")
    jaudit = jsub.add_parser("audit", help="every operator action on the journal: who, when, what, from which state")
    jaudit.add_argument("fingerprint", nargs="?", default="", help="only this fingerprint (a prefix is enough)")
    jaudit.add_argument("--since", default="", help="only actions from this day on (YYYY-MM-DD, UTC)")
    jaudit.add_argument("--json", action="store_true", help="print one JSON list")
    cost = sub.add_parser(
        "cost", help="what clipflow bought, from the journal: spend by day, deployment and stage",
        description="Every paid job in the journal priced with the clipflow-prices block (an unknown price is "
        "reported as unknown, never 0). Reused work is one job: it was paid once.",
    )
    cost.add_argument("--since", default="", help="from this day on (YYYY-MM-DD, UTC)")
    cost.add_argument("--until", default="", help="up to this day (YYYY-MM-DD, UTC)")
    cost.add_argument("--deployment", default="", help="only this deployment's runs")
    cost.add_argument("--flow-run", default="", help="only jobs this flow run bought")
    cost.add_argument("--prices", default="clipflow", help="clipflow-prices block name (default clipflow)")
    cost.add_argument("--jobs", action="store_true", help="also list each job")
    cost.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from flows.app.demo import run_demo

        return run_demo(as_json=args.json, request_json=json.loads(args.request) if args.request else None)
    if args.command == "setup":
        return _setup(args)
    if args.command == "result":
        from flows.app.results_cli import run as show_result

        return show_result(args.run_id, as_json=args.json)
    if args.command in ("up", "down", "status"):
        return _stack(args)
    if args.command == "cost":
        from flows.app.cost_cli import run as show_cost

        return show_cost(
            as_json=args.json, jobs=args.jobs, since=args.since, until=args.until, deployment=args.deployment,
            flow_run=args.flow_run, prices=args.prices,
        )
    if args.command == "journal":
        from flows.app.journal_cli import run

        return run(
            args.journal_command, fingerprint=getattr(args, "fingerprint", ""), job_id=getattr(args, "job_id", ""),
            as_json=args.json, include_all=getattr(args, "all", False), force=getattr(args, "force", False),
            yes=getattr(args, "yes", False), block=getattr(args, "block", "clipflow"), space=getattr(args, "space", ""),
            since=getattr(args, "since", ""),
        )
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
