"""Status calls per job and notice latency against the emulator, for Jimeng jobs of several lengths.

Each row submits a real Jimeng job to an in-process emulator whose generation takes the given nominal time,
waits on it with the flows' poll schedule (``poll_delays`` + ``wait_for``), and counts the get-result calls.
Time is scaled (emulator and schedule alike) so a 30-minute job takes seconds; figures are printed in nominal
seconds. Target: <= 12 calls, noticed within max(half the elapsed time, 30 s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

DURATIONS = [10, 60, 300, 900, 1800]  # nominal seconds of generation
TYPICAL = 90.0  # what flows/generate.py assumes for Jimeng


async def measure(emu: object, duration: float, scale: float) -> tuple[int, float, float]:
    from flows.engine.waiting import poll_delays, wait_for
    from providers.jimeng.client import JimengClient
    from providers.jimeng.models import JimengVideoRequest

    emu.configure(durations={"jimeng_queue": 0.0, "jimeng_generate": duration}, quotas_enabled=False)  # type: ignore[attr-defined]
    calls = 0
    async with JimengClient(emu.access_key, emu.secret_key, endpoint=emu.base_url) as client:  # type: ignore[attr-defined]
        task_id = await client.submit_task(JimengVideoRequest(prompt=f"bench {duration}"))
        started = time.monotonic()

        async def poll() -> object:
            nonlocal calls
            calls += 1
            return await client.get_result(task_id)

        await wait_for(
            poll, lambda r: r.state.is_terminal, delays=poll_delays(TYPICAL, time_scale=scale),  # type: ignore[attr-defined]
            deadline_seconds=4 * 1800 * scale, describe="bench",
        )
    elapsed = (time.monotonic() - started) / scale
    return calls, elapsed, elapsed - duration


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--time-scale", type=float, default=0.002)
    args = parser.parse_args(argv or [])
    from flows.runtime.settings import variable

    os.environ[variable("time_scale")] = str(args.time_scale)
    from emulator.testing import running_emulator

    print(f"Jimeng jobs against the emulator, typical duration {TYPICAL:.0f} s, time scale {args.time_scale}")
    print(f"{'job (s)':>8} {'calls':>6} {'noticed after (s)':>18} {'allowed (s)':>12}  verdict")
    failures = 0
    with running_emulator(time_scale=args.time_scale) as emu:
        for duration in DURATIONS:
            emu.reset()
            calls, _, late = asyncio.run(measure(emu, duration, args.time_scale))
            allowed = max(duration / 2, 30.0)
            ok = calls <= 12 and late <= allowed
            failures += not ok
            print(f"{duration:>8} {calls:>6} {late:>18.1f} {allowed:>12.0f}  {'PASS' if ok else 'FAIL'}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
