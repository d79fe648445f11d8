"""Status calls and notice latency of the poll schedule, per job duration and typical-duration setting.

Each row drives ``wait_for`` with a fake clock and a fake job that finishes at the given duration, so the figures
come from the real scheduler. "worst" columns scan every 0.5 s of job duration up to 30 min.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
from itertools import islice

from flows.engine.waiting import HORIZON, MAX_CALLS, notice_bound, poll_delays, poll_offsets, wait_for

DURATIONS = [10, 60, 300, 900, 1800]
TYPICALS = [10, 60, 120, 300, 900]


async def simulate(typical: float, finished_at: float) -> tuple[int, float]:
    """(status calls, seconds from finish to the poll that saw it) for one fake job."""
    now = 0.0
    calls = 0

    async def sleep(seconds: float) -> None:
        nonlocal now
        now += seconds

    async def poll() -> bool:
        nonlocal calls
        calls += 1
        return now > finished_at  # a poll at the very instant of finishing does not count

    await wait_for(
        poll, bool, delays=poll_delays(typical, time_scale=1.0), deadline_seconds=4 * HORIZON,
        describe="bench", sleep=sleep, clock=lambda: now,
    )
    return calls, now - finished_at


def worst(typical: float) -> tuple[int, float]:
    """(max calls, max latency / bound) over job durations 0.5 s … 30 min."""
    offsets = list(islice(poll_offsets(typical), 40))
    max_calls, max_ratio = 0, 0.0
    for half in range(1, int(HORIZON * 2) + 1):
        t = half / 2
        i = bisect.bisect_right(offsets, t)
        max_calls = max(max_calls, i + 1)
        max_ratio = max(max_ratio, (offsets[i] - t) / notice_bound(t))
    return max_calls, max_ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.polling", description=__doc__)
    parser.parse_args(argv)
    ok = True
    print(f"rules: ≤ {MAX_CALLS} status calls; noticed within max(T/2, 30 s) of finishing at T (jobs ≤ 30 min)\n")
    header = f"{'typical':>8} {'job':>6} {'calls':>5} {'latency':>8} {'bound':>6}"
    print(header + f"   | {'worst calls':>11} {'worst latency/bound':>19}")
    for typical in TYPICALS:
        max_calls, max_ratio = worst(typical)
        ok &= max_calls <= MAX_CALLS and max_ratio <= 1.0
        for n, duration in enumerate(DURATIONS):
            calls, latency = asyncio.run(simulate(typical, duration))
            bound = notice_bound(duration)
            ok &= calls <= MAX_CALLS and latency <= bound
            tail = f"   | {max_calls:>11} {max_ratio:>19.2f}" if n == 0 else "   |"
            print(f"{typical:>7}s {duration:>5}s {calls:>5} {latency:>7.1f}s {bound:>5.0f}s" + tail)
        first = [round(t, 1) for t in islice(poll_offsets(typical), 12)]
        print(f"{'':>8} polls at {first}\n")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
