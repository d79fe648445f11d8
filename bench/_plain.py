"""The plain asyncio script bench.vs_plain compares produce_batch with: what a user would write with clipflow's
own provider clients and no orchestrator.

Per item, the whole chain: Jimeng generate → wait → copy into the bucket → UploadMediaByUrl → wait → CreateProject
→ StartWorkflow and SubmitAITranslationWorkflow per language, side by side → wait each. Items run side by side
(``gather``); every wait polls at a fixed 2 s nominal (× the time scale), and a 429 sleeps Retry-After (or one poll
interval when there is none) and tries again. The requests are built by the same builders the flows use, so both
variants buy exactly the same things.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from providers.errors import ThrottledError
from providers.jimeng.client import JimengClient
from providers.states import JobState
from providers.vod.client import VodClient

T = TypeVar("T")
POLL_NOMINAL_SECONDS = 2.0


@dataclass
class PlainScript:
    vod: VodClient
    jimeng: JimengClient
    s3: Any
    bucket: str
    languages: list[str]
    time_scale: float
    space: str = "demo"
    throttled: int = 0  # 429s this script saw (the emulator's own count is the reference)
    requests: Counter[str] = field(default_factory=Counter)  # sent, by Action, from the clients' event hooks

    @property
    def poll(self) -> float:
        return POLL_NOMINAL_SECONDS * self.time_scale

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        while True:
            try:
                return await fn()
            except ThrottledError as exc:
                self.throttled += 1
                await asyncio.sleep(exc.retry_after if exc.retry_after is not None else self.poll)

    async def wait(self, read: Callable[[], Awaitable[T]], state_of: Callable[[T], JobState], what: str) -> T:
        while True:
            answer = await self.call(read)
            state = state_of(answer)
            if state.is_terminal:
                if state is not JobState.SUCCEEDED:
                    raise RuntimeError(f"{what} ended {state.value}")
                return answer
            await asyncio.sleep(self.poll)

    async def item(self, number: int, prompt: str) -> None:
        from flows.models import EditSpec, ImportedClip, JimengClipSpec, TranscodeSpec, TranslateSpec
        from flows.outputs.storage import copy_url_to_bucket, presigned_get_url
        from flows.stages.edit import build_project_request
        from flows.stages.generate import build_clip_request
        from flows.stages.transcode import build_workflow_request
        from flows.stages.translate import build_translation_request
        from providers.vod.models import UploadMediaByUrlRequest, UrlSet

        request = build_clip_request(JimengClipSpec(prompt=prompt, aspect_ratio="16:9"))
        task_id = await self.call(lambda: self.jimeng.submit_task(request))  # type: ignore[arg-type]
        result = await self.wait(lambda: self.jimeng.get_result(task_id), lambda r: r.state, f"Jimeng {task_id}")
        stored = await copy_url_to_bucket(result.video_url or "", s3_client=self.s3, bucket=self.bucket)
        url = presigned_get_url(self.s3, self.bucket, stored.key, expires=6 * 3600)
        upload = UploadMediaByUrlRequest(space_name=self.space, url_sets=[
            UrlSet(source_url=url, file_name=stored.key.rsplit("/", 1)[-1], title=f"plain-{number}"),
        ])
        jobs = await self.call(lambda: self.vod.upload_media_by_url(upload))

        async def upload_status() -> Any:
            info = await self.vod.query_upload_task_info([jobs[0].job_id])
            return info.media_info_list[0] if info.media_info_list else None

        media = await self.wait(upload_status, lambda i: i.state if i is not None else JobState.RUNNING, "import")
        info = media.source_info
        clip = ImportedClip(vid=media.vid, space_name=self.space, duration_seconds=getattr(info, "duration", None),
                            width=getattr(info, "width", None), height=getattr(info, "height", None))
        project = build_project_request(f"plain-{number}", clip, EditSpec())
        await self.call(lambda: self.vod.create_project(project))

        async def transcode() -> None:
            start = build_workflow_request(clip.vid, self.space, TranscodeSpec())
            run_id = await self.call(lambda: self.vod.start_workflow(start))
            await self.wait(lambda: self.vod.get_workflow_execution(run_id), lambda e: e.state, f"workflow {run_id}")

        async def translate(language: str) -> None:
            submit = build_translation_request(clip.vid, self.space, language, TranslateSpec(target_languages=self.languages))
            info = await self.call(lambda: self.vod.submit_ai_translation_workflow(submit))
            await self.wait(lambda: self.vod.get_ai_translation_project(self.space, info.project_id),
                            lambda p: p.state, f"translation {info.project_id}")

        await asyncio.gather(transcode(), *(translate(lang) for lang in self.languages))


def clients_from_env(requests: Counter[str]) -> tuple[VodClient, JimengClient]:
    """The clients on the CLIPFLOW_* settings demo_env gives; each request sent is counted by Action."""

    async def count(request: httpx.Request) -> None:
        requests[request.url.params.get("Action", request.url.path)] += 1

    from flows.runtime.settings import setup_variable as var

    ak, sk = os.environ[var("volc_access_key")], os.environ[var("volc_secret_key")]
    vod = VodClient(ak, sk, endpoint=os.environ[var("vod_endpoint")])
    jimeng = JimengClient(ak, sk, endpoint=os.environ[var("visual_endpoint")])
    for client in (vod, jimeng):
        client._http.event_hooks["request"].append(count)  # noqa: SLF001 - counting only, nothing changed
    return vod, jimeng


async def run_items(script: PlainScript, prompts: list[str]) -> tuple[int, list[str]]:
    """Every item side by side; returns (succeeded, errors)."""
    outcomes = await asyncio.gather(*(script.item(n, p) for n, p in enumerate(prompts)), return_exceptions=True)
    errors = [f"{type(o).__name__}: {o}" for o in outcomes if isinstance(o, BaseException)]
    return len(prompts) - len(errors), errors
