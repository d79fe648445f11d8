"""The project's clients against the emulator when a paid answer is lost: the error is outcome-unknown, and the
job the provider did create is found again through the provider's own listings (every page of them)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from emulator.config import DEMO_SPACE, DEMO_TEMPLATE, DEMO_VID
from emulator.testing import EmulatorHandle
from providers.errors import OutcomeUnknownError, ServerError
from providers.gateway.models import GatewayVideoRequest
from providers.jimeng.models import JimengVideoRequest
from providers.vod import (
    PAID_ACTIONS,
    CreateProjectRequest,
    StartWorkflowRequest,
    SubmitAITranslationWorkflowRequest,
    SubmitDirectEditTaskRequest,
    UploadMediaByUrlRequest,
    UrlSet,
    VodClient,
)
from tests.emulator.test_clients import edit_param, gateway_client, jimeng_client, poll, vod_client

TRANSLATION = {"SourceLanguage": "zh", "TargetLanguage": "en"}


def source_url(emu: EmulatorHandle) -> str:
    return f"{emu.base_url}/_media/vod/{DEMO_VID}.mp4"


def paid_calls(emu: EmulatorHandle) -> dict[str, Callable[[VodClient], Awaitable[Any]]]:
    return {
        "UploadMediaByUrl": lambda c: c.upload_media_by_url(UploadMediaByUrlRequest(
            space_name=DEMO_SPACE, url_sets=[UrlSet(source_url=source_url(emu))])),
        "CreateProject": lambda c: c.create_project(CreateProjectRequest(
            project_name="lost", space=DEMO_SPACE, edit_param=edit_param())),
        "SubmitDirectEditTaskAsync": lambda c: c.submit_direct_edit_task_async(SubmitDirectEditTaskRequest(
            uploader=DEMO_SPACE, edit_param=edit_param())),
        "SubmitAITranslationWorkflow": lambda c: c.submit_ai_translation_workflow(SubmitAITranslationWorkflowRequest(
            space_name=DEMO_SPACE, vid=DEMO_VID, translation_config=TRANSLATION)),
        "StartWorkflow": lambda c: c.start_workflow(StartWorkflowRequest(vid=DEMO_VID, template_id=DEMO_TEMPLATE)),
    }


@pytest.fixture
def free(emu: EmulatorHandle) -> EmulatorHandle:
    emu.configure(quotas_enabled=False)
    return emu


@pytest.mark.parametrize("fault", ["error_after_accept", "drop_after_accept"])
@pytest.mark.parametrize("action", sorted(PAID_ACTIONS))
async def test_every_lost_vod_answer_is_outcome_unknown(free: EmulatorHandle, action: str, fault: str) -> None:
    free.set_faults([{"action": action, fault: True, "count": 1}])
    async with vod_client(free) as vod:
        with pytest.raises(OutcomeUnknownError) as info:
            await paid_calls(free)[action](vod)
    assert info.value.retryable is False and info.value.action == action
    assert [e["action"] for e in free.ledger()] == [action]  # created and billed all the same


async def test_start_workflow_with_client_token_is_resent_safely(free: EmulatorHandle) -> None:
    free.set_faults([{"action": "StartWorkflow", "error_after_accept": True, "count": 1}])
    request = StartWorkflowRequest(vid=DEMO_VID, template_id=DEMO_TEMPLATE, client_token="clipflow-lost-1")
    async with vod_client(free) as vod:
        with pytest.raises(ServerError) as info:
            await vod.start_workflow(request)
        assert info.value.retryable and info.value.http_status == 504
        run_id = await vod.start_workflow(request)
    ledger = free.ledger()
    assert len(ledger) == 1 and ledger[0]["job_id"] == run_id


async def test_lost_jimeng_and_gateway_answers_are_outcome_unknown(free: EmulatorHandle) -> None:
    free.set_faults([{"action": "CVSync2AsyncSubmitTask", "error_after_accept": True, "count": 1},
                     {"action": "gateway.create", "error_after_accept": True, "count": 1}])
    async with jimeng_client(free) as jimeng:
        with pytest.raises(OutcomeUnknownError) as lost_cv:
            await jimeng.submit_task(JimengVideoRequest(prompt="lost"))
    async with gateway_client(free) as gateway:
        with pytest.raises(OutcomeUnknownError) as lost_gw:
            await gateway.create_video(GatewayVideoRequest(model="veo3.1", prompt="lost"))
    assert not lost_cv.value.retryable and not lost_gw.value.retryable
    assert [e["action"] for e in free.ledger()] == ["CVSync2AsyncSubmitTask", "create"]


# --- finding the job again -----------------------------------------------------------------------------------


async def test_lost_create_project_is_found_by_name_on_a_later_page(free: EmulatorHandle) -> None:
    async with vod_client(free) as vod:
        free.set_faults([{"action": "CreateProject", "error_after_accept": True, "count": 1}])
        with pytest.raises(OutcomeUnknownError):
            await vod.create_project(CreateProjectRequest(project_name="clipflow-wanted", space=DEMO_SPACE,
                                                          edit_param=edit_param()))
        for i in range(24):  # newer projects push the lost one to the last page
            await vod.create_project(CreateProjectRequest(project_name=f"other-{i}", space=DEMO_SPACE,
                                                          edit_param=edit_param()))
        found = await vod.find_projects_by_name(DEMO_SPACE, "clipflow-wanted", page_size=10)
        every = [p async for p in vod.iter_global_projects(DEMO_SPACE, page_size=10)]
    assert [p.project_id for p in found] == [free.ledger()[0]["job_id"]]
    assert len(every) == 25 and len({p.project_id for p in every}) == 25


async def test_lost_translation_is_found_with_vid_language_types_and_time(free: EmulatorHandle) -> None:
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    async with vod_client(free) as vod:
        free.set_faults([{"action": "SubmitAITranslationWorkflow", "drop_after_accept": True, "count": 1}])
        with pytest.raises(OutcomeUnknownError):
            await vod.submit_ai_translation_workflow(SubmitAITranslationWorkflowRequest(
                space_name=DEMO_SPACE, vid=DEMO_VID, translation_config={**TRANSLATION, "TranslationTypeList": [
                    "SubtitleTranslation", "VoiceTranslation"]}))
        for language in ("ja", "ko", "de", "fr", "es", "it"):
            await vod.submit_ai_translation_workflow(SubmitAITranslationWorkflowRequest(
                space_name=DEMO_SPACE, vid=DEMO_VID,
                translation_config={"SourceLanguage": "zh", "TargetLanguage": language}))
        projects = await vod.list_all_ai_translation_projects(DEMO_SPACE, page_size=3)
    lost_id = free.ledger()[0]["job_id"]
    assert len(projects) == 7 and len({p.project_id for p in projects}) == 7
    (lost,) = [p for p in projects if p.vid == DEMO_VID and "en" in p.target_languages]
    assert lost.project_id == lost_id
    assert lost.translation_type_list == ["SubtitleTranslation", "VoiceTranslation"]
    assert lost.created_time is not None and before <= lost.created_time <= dt.datetime.now(dt.timezone.utc)


async def test_lost_upload_is_found_by_title_once_pulled(free: EmulatorHandle) -> None:
    data_hash = hashlib.sha256(b"clip bytes").hexdigest()
    title = f"clipflow-{data_hash[:16]}"
    sent_at = dt.datetime.now(dt.timezone.utc)
    async with vod_client(free) as vod:
        free.set_faults([{"action": "UploadMediaByUrl", "error_after_accept": True, "count": 1}])
        with pytest.raises(OutcomeUnknownError):
            await vod.upload_media_by_url(UploadMediaByUrlRequest(space_name=DEMO_SPACE, url_sets=[
                UrlSet(source_url=source_url(free), file_name=f"{data_hash}.mp4", title=title)]))
        # Another import in the same window with another title is not mistaken for it.
        await vod.upload_media_by_url(UploadMediaByUrlRequest(space_name=DEMO_SPACE, url_sets=[
            UrlSet(source_url=source_url(free), title="someone-else")]))
        window = sent_at - dt.timedelta(seconds=5)
        found = await poll(lambda: vod.find_media_by_title(DEMO_SPACE, title, created_after=window), bool)
        assert not await vod.find_media_by_title(DEMO_SPACE, title, created_after=window,
                                                 created_before=window + dt.timedelta(seconds=1))
    (media,) = found
    assert media.vid and media.title == title
    assert media.source_info is not None and media.source_info.file_name == f"{data_hash}.mp4"
    assert media.basic_info.created_time is not None and media.basic_info.created_time >= window


async def test_media_listing_pages_through_the_window(free: EmulatorHandle) -> None:
    async with vod_client(free) as vod:
        start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
        for i in range(7):
            await vod.upload_media_by_url(UploadMediaByUrlRequest(space_name=DEMO_SPACE, url_sets=[
                UrlSet(source_url=source_url(free), title=f"clip-{i}")]))

        async def titles() -> list[str]:
            end = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
            return [m.title or "" async for m in vod.iter_media(DEMO_SPACE, start_time=start, end_time=end,
                                                                page_size=2)]

        listed = await poll(titles, lambda t: len([x for x in t if x.startswith("clip-")]) == 7)
    # the seeded demo video is in the window too (the space was just reset)
    assert sorted(t for t in listed if t.startswith("clip-")) == [f"clip-{i}" for i in range(7)]
    assert len(listed) == len(set(listed)) == 8
