"""Status calls per transcode/translation job, and the delay from VOD's callback to the wait ending, with and
without callbacks.

Each row starts a real job on an in-process emulator whose job takes the given nominal time; the emulator signs
and posts its completion callback to the receiver (``flows/app/callbacks_server.py``), which emits it into a
temporary Prefect server. The wait is the flows' own (``job_schedule`` + ``wait_for``), with ``CLIPFLOW_CALLBACKS``
on or off. Status calls are counted by the emulator; the delay is from the receiver accepting the callback to
the wait returning, in wall-clock seconds and in nominal (provider) seconds (negative: polling saw the end first).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

KEY = "Bench-Callback-Key-1"
JOBS = [("transcode", 60.0), ("transcode", 600.0), ("translation", 300.0), ("translation", 1500.0)]


async def measure(emu: Any, emitted: dict[str, float], kind: str, duration: float) -> tuple[int, float]:
    from emulator.config import DEMO_SPACE, DEMO_TEMPLATE, DEMO_VID
    from flows.engine.waiting import job_schedule, scaled, wait_for
    from providers.vod.client import VodClient
    from providers.vod.models_translation import SubmitAITranslationWorkflowRequest, TranslationConfig
    from providers.vod.models_workflow import StartWorkflowRequest

    emu.configure(durations={"workflow_pending": 0.0, "workflow_running": duration,
                             "translation_processing": duration}, quotas_enabled=False)
    async with VodClient(emu.access_key, emu.secret_key, endpoint=emu.vod_endpoint) as vod:
        if kind == "transcode":
            job = await vod.start_workflow(StartWorkflowRequest(vid=DEMO_VID, template_id=DEMO_TEMPLATE))
            action, typical, resource = "GetWorkflowExecution", 60.0, f"vod.workflow.{job}"
            poll: Any = lambda: vod.get_workflow_execution(job)  # noqa: E731
        else:
            info = await vod.submit_ai_translation_workflow(SubmitAITranslationWorkflowRequest(
                space_name=DEMO_SPACE, vid=DEMO_VID,
                translation_config=TranslationConfig(source_language="zh", target_language="en")))
            job = info.project_id
            action, typical, resource = "GetAITranslationProject", 300.0, f"vod.translation.{job}"
            poll = lambda: vod.get_ai_translation_project(DEMO_SPACE, job)  # noqa: E731
        before = emu.calls().get(action, 0)
        await wait_for(poll, lambda r: r.state is not None and r.state.is_terminal,
                       deadline_seconds=scaled(4 * 3600), describe=f"{kind} {job}",
                       **job_schedule("vod", action, job, typical))
        ended = time.time()
    deadline = time.monotonic() + 5  # without callbacks the wait may end before the callback is even sent
    while resource not in emitted and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    calls = emu.calls().get(action, 0) - before
    return calls, ended - emitted.get(resource, float("nan"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--time-scale", type=float, default=0.005)
    args = parser.parse_args(argv or [])
    os.environ["CLIPFLOW_TIME_SCALE"] = str(args.time_scale)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    from emulator.testing import running_emulator
    from flows.app.callbacks_server import PrefectEmitter, create_app, serving

    emitted: dict[str, float] = {}
    emit_to_prefect = PrefectEmitter()

    async def emit(event: Any) -> None:
        emitted[event.resource.id] = time.time()  # the callback's arrival, authenticated
        await emit_to_prefect(event)

    scale = args.time_scale
    print(f"VOD jobs against the emulator, time scale {scale}; fallback poll with callbacks: "
          f"{os.environ.get('CLIPFLOW_CALLBACK_POLL_SECONDS', '900')} s")
    print(f"{'job':>12} {'nominal (s)':>11} {'callbacks':>9} {'status calls':>12} {'callback -> end':>22}")
    with prefect_test_harness(server_startup_timeout=120), running_emulator(time_scale=scale) as emu, \
            serving(create_app(KEY, emit=emit)) as receiver:
        for kind, duration in JOBS:
            for on in (False, True):
                os.environ["CLIPFLOW_CALLBACKS"] = "true" if on else "false"
                emu.reset()
                emu.configure(callback_url=f"{receiver}/vod/callbacks", callback_key=KEY)
                calls, delay = asyncio.run(measure(emu, emitted, kind, duration))
                late = f"{delay:.2f} s ({delay / scale:.0f} nominal)" if delay == delay else "no callback"
                print(f"{kind:>12} {duration:>11.0f} {'on' if on else 'off':>9} {calls:>12} {late:>22}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
