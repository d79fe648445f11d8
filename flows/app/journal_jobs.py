"""Does the provider know this job? The check ``clipflow journal attach`` makes before recording a job id.

Each paid action's job is asked about with the status call the stage itself waits on (its ``JobPoll``), so an
id is judged the way the next run will use it. A job the provider does not know (NotFound, Jimeng's
``not_found``, VOD's empty answer or ``NotExistJobIds``) is refused: recording it would only turn the next run's
wait into a failure, and a typo must never look like a resolved lost answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flows.models import BlockRefs
from flows.runtime import resources
from flows.engine.buy import JobPoll
from flows.coordination.quotas import quota_slot
from providers.errors import NotFoundError, ProviderError
from providers.states import JobState


class UnknownJobError(Exception):
    """The provider says it has no such job."""


class JobCheckError(Exception):
    """The job could not be checked (no status call for the action, a missing option, the provider unreachable)."""


@dataclass(frozen=True)
class JobStatus:
    state: str  # JobState value as the stage reads it (queued, running, succeeded, failed, expired, paused)
    status_action: str


def _polls() -> dict[tuple[str, str], Callable[[str], JobPoll[Any]]]:
    # Imported here: the stages pull in the flows, which a plain `journal list` does not need.
    from flows.stages.edit import RENDER_RESULT
    from flows.stages.generate import GATEWAY_RESULT, JIMENG_RESULT, UPLOAD_STATUS
    from flows.stages.transcode import WORKFLOW_RUN
    from flows.stages.translation_outputs import translation_poll

    return {
        ("jimeng", "CVSync2AsyncSubmitTask"): lambda _space: JIMENG_RESULT,
        ("gateway", "create"): lambda _space: GATEWAY_RESULT,
        ("vod", "UploadMediaByUrl"): lambda _space: UPLOAD_STATUS,
        ("vod", "SubmitDirectEditTaskAsync"): lambda _space: RENDER_RESULT,
        ("vod", "StartWorkflow"): lambda _space: WORKFLOW_RUN,
        # the project id is the job id of a translation, its resume and its re-export
        ("vod", "SubmitAITranslationWorkflow"): translation_poll,
        ("vod", "ContinueAITranslationWorkflow"): translation_poll,
        ("vod", "RefreshAITranslationProject"): translation_poll,
    }


NEEDS_SPACE = frozenset({"SubmitAITranslationWorkflow", "ContinueAITranslationWorkflow", "RefreshAITranslationProject", "CreateProject"})


async def check_job(provider: str, action: str, job_id: str, *, refs: BlockRefs, space: str = "") -> JobStatus:
    """Ask ``provider`` about ``job_id`` with the status call of ``action``; raise ``UnknownJobError`` when it
    does not know it, ``JobCheckError`` when it cannot be asked."""
    if action in NEEDS_SPACE and not space:
        raise JobCheckError(f"--space: {provider} {action} jobs are looked up within a space; name the space")
    if action == "CreateProject":
        return await _check_project(job_id, refs=refs, space=space)
    make = _polls().get((provider, action))
    if make is None:
        raise JobCheckError(f"no status call is known for {provider} {action}: its jobs cannot be checked")
    poll = make(space)
    try:
        async with await resources.client(provider, refs) as api, quota_slot(poll.provider, poll.action):
            result = await poll.fetch(api, job_id)
    except NotFoundError as exc:
        raise UnknownJobError(f"{provider} {poll.action} answered that there is no job {job_id!r} ({exc.message})") from None
    except ProviderError as exc:
        raise JobCheckError(f"could not ask {provider} {poll.action} about job {job_id!r}: {exc}") from None
    state = poll.state(result) if result is not None else None
    if state is None or getattr(result, "status", None) == "not_found":
        # Jimeng's not_found also covers a task older than 12 h: either way there is nothing to resume
        raise UnknownJobError(f"{provider} {poll.action} does not know job {job_id!r} (no such job, or forgotten)")
    return JobStatus(state=state.value, status_action=poll.action)


async def _check_project(project_id: str, *, refs: BlockRefs, space: str) -> JobStatus:
    """An edit project has no status call: it exists when the space's project search lists its id."""
    offset = 0
    try:
        async with await resources.client("vod", refs) as api:
            while True:
                async with quota_slot("vod", "SearchGlobalProject"):
                    page = await api.search_global_project(space, offset=offset, limit=50)
                if any(p.project_id == project_id for p in page.detail or []):
                    return JobStatus(state=JobState.SUCCEEDED.value, status_action="SearchGlobalProject")
                offset += len(page.detail or [])
                if not page.detail or (page.total is not None and offset >= page.total):
                    break
    except ProviderError as exc:
        raise JobCheckError(f"could not ask vod SearchGlobalProject about project {project_id!r}: {exc}") from None
    raise UnknownJobError(f"vod SearchGlobalProject lists no project {project_id!r} in space {space!r}")
