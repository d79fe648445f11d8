"""The translation review gate: a paused project waits for a person without holding a worker.

A translation submitted with ``review`` set pauses at the vendor's ``SuspensionStageList`` stage
(``ProcessSuspended``). The gate then

1. stores the draft subtitles (source and target, SRT and WebVTT, vendor marks kept) under
   ``subtitles/{project}/draft/`` and publishes a table artifact of the utterances with their ids (key
   ``review-{project}``: unique per production and language, since each has its own project);
2. waits for an answer on the run's Resume form, which opens with the draft lines in it
   (``flows.stages.review_form``: approve / edit the lines in place or by utterance id: text, speaker, timing,
   volume / a corrected .srt or .vtt in the bucket / reject), what ``POST /flow_runs/{id}/resume`` takes as
   ``run_input``;
3. checks the edits as the vendor does (``flows.stages.review_edits``), applies them with
   UpdateAITranslationUtterances, continues with ContinueAITranslationWorkflow through the
   paid-job engine (``CONTINUE``: journaled, never sent twice; a lost answer is settled by reading whether the
   project left ProcessSuspended), waits, and collects every output.

How it waits (``review_mode``):

- **suspend**: a top-level run of a deployment (translate-video, produce-video, review-translation) calls
  ``suspend_flow_run``: the process exits and the worker is free. On resume Prefect runs the flow again from the
  top; every paid step is a cached task or a journaled purchase, so nothing before the gate is paid again, and
  the suspend call (same key) returns the stored answer at once.
- **pause**: an in-process run (no deployment, e.g. tests or ``python -c``) blocks in ``pause_flow_run``.
- **handoff**: Prefect cannot suspend a subflow, and a batch must not wait on one item. A batch item
  (``HANDOFF`` set) stores the drafts, starts a run of the ``review-translation`` deployment for the project (it
  suspends on its own, so no worker waits) and reports the language ``awaiting_review`` with that run's id;
  the item and the batch finish. produce-video runs its translate stage inline when ``review`` is set, so the
  production's own top-level run is the one that suspends.

Several languages of one run are asked one after the other (a run has one Resume form at a time).
A review deadline (``review_timeout_hours``) is kept by resuming the run with an answer whose reason starts
with ``TIMED_OUT``; the flow then applies ``on_review_timeout`` (fail the language, or approve the draft as it
is). In suspend mode the deadline is a scheduled run of ``review-translation`` (``deadline_for``), with
Prefect's own pause timeout one hour later as a backstop; in pause mode it is a timer in the waiting process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from contextvars import ContextVar
from typing import Any, Literal

from prefect import flow, task
from prefect.artifacts import acreate_table_artifact
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectNotFound
from prefect.flow_runs import apause_flow_run, aresume_flow_run, asuspend_flow_run
from prefect.logging import get_run_logger
from pydantic import ValidationError

from flows.models import BlockRefs, LanguageResult, ReviewDecision, ReviewOutcome, TranslateSpec
from flows.outputs.artifacts import publish_languages, utterance_rows
from flows.outputs.subtitles import cues_from_translation
from flows.runtime import resources
from flows.engine.caching import cached_task_options
from flows.engine.buy import PaidAction, Receipt, buy, watch
from flows.engine.journal import JournalRecord, fingerprint
from flows.coordination.quotas import quota_slot
from flows.engine.retry import retry_options
from flows.runtime.settings import time_scale
from flows.stages.review_edits import apply_edits, planned_edits
from flows.stages.review_form import ReviewInputError, answer_to_decision, review_form  # noqa: F401 - re-exported
from flows.stages.translation_outputs import collect_translation, put_subtitles, translation_poll
from providers.errors import ProviderError
from providers.states import JobState
from providers.vod.models_translation import REVIEW_ADDITIONS, ContinueAITranslationWorkflowRequest

REVIEW_DEPLOYMENT = "review-translation/review-translation"
TIMED_OUT = "timed out: nobody answered by the review deadline"  # the reason the deadline's answer carries
BACKSTOP_SECONDS = 3600  # Prefect fails a suspended run this long after our own deadline was missed
HANDOFF: ContextVar[bool] = ContextVar("clipflow_review_handoff", default=False)
_ASKING: dict[uuid.UUID, asyncio.Lock] = {}  # per flow run: its languages are asked one at a time


def review_key(project_id: str) -> str:
    """Pause key and artifact key of one project's review (artifact keys: lower-case letters, digits, dashes)."""
    return f"review-{project_id.lower()}"


def review_mode() -> Literal["suspend", "pause", "handoff"]:
    if HANDOFF.get():
        return "handoff"
    ctx = FlowRunContext.get()
    run = ctx.flow_run if ctx else None
    if run is not None and run.deployment_id is not None and run.parent_task_run_id is None:
        return "suspend"
    return "pause"


# --- reading the project ----------------------------------------------------------------------------------------


async def read_project(space_name: str, project_id: str, refs: BlockRefs) -> Any:
    async with await resources.client("vod", refs) as vod, quota_slot("vod", "GetAITranslationProject"):
        return await vod.get_ai_translation_project(space_name, project_id, additions=list(REVIEW_ADDITIONS))


def _table(project: Any) -> list[dict[str, Any]]:
    rows = []
    for side, utterances in (("source", project.source_utterances), ("target", project.target_utterances)):
        for u in utterances or []:
            rows.append({
                "side": side, "id": u.id, "start_ms": u.start if u.start is not None else "",
                "end_ms": u.end if u.end is not None else "", "speaker": u.speaker_name or u.speaker_id or "",
                "text": u.text or "", "source_id": (u.source_id or "") if side == "target" else "",
            })
    return rows


@task(
    task_run_name="store_review_drafts-{language}",
    **retry_options(),
    **cached_task_options(lambda p: f"clipflow-review-drafts-{p['project_id']}"),
)
async def store_drafts(project_id: str, space_name: str, language: str, spec: TranslateSpec, refs: BlockRefs) -> list[str]:
    """The paused project's subtitles (source and target, SRT + WebVTT) into the bucket, and the review table."""
    project = await read_project(space_name, project_id, refs)
    bucket = await resources.bucket(refs)
    prefix = f"subtitles/{project_id}/draft/"
    keys: list[str] = []
    source = cues_from_translation(project.source_utterances or [], project.source_clips or [])
    keys += (await put_subtitles(bucket, prefix, f"{spec.source_language}.source", source)).values()
    target = cues_from_translation(project.target_utterances or [], project.target_clips or [])
    if target:
        keys += (await put_subtitles(bucket, prefix, language, target)).values()
    await acreate_table_artifact(
        table=utterance_rows(_table(project)), key=review_key(project_id),
        description=(
            f"Draft subtitles of translation {project_id} ({spec.source_language} -> {language}), paused "
            f"{spec.review.replace('_', ' ')}. Drafts: " + ", ".join(f"s3://{bucket.name}/{k}" for k in keys)
            + ". Resume the run with action approve, edit (edits by id, or subtitle_key of a corrected file) "
            "or reject."
        ),
    )
    return keys


# --- waiting for a person -----------------------------------------------------------------------------------


def _resume_hint(run_id: str | None) -> str:
    target = f"flow run {run_id}" if run_id else "the run"
    return (
        f"Resume {target} in the Prefect UI, or POST /api/flow_runs/{run_id or 'RUN_ID'}/resume with "
        '{"run_input": {"action": "approve"}} (or "edit" with the form\'s "lines" corrected in place, "edits": '
        '[{"id": ..., "text"/"speaker_id"/"start_ms"/"end_ms"/"volume": ...}] or "subtitle_key", or "reject" '
        'with a "reason")'
    )


async def _deadline(run_id: uuid.UUID, key: str, seconds: float, policy: str) -> None:
    """Pause mode: resume the run with a timed-out answer once the review deadline passes."""
    await asyncio.sleep(seconds)
    await resume_if_waiting(run_id, key, policy)


async def resume_if_waiting(run_id: uuid.UUID, key: str, policy: str) -> bool:
    """Give a still-waiting review (pause key ``key``) the deadline's answer; False if it was answered."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        run = await client.read_flow_run(run_id)
    state = run.state
    if state is None or not state.is_paused() or state.state_details.pause_key != key:
        return False
    try:
        await aresume_flow_run(run_id, run_input={"action": "approve", "reason": f"{TIMED_OUT} (policy: {policy})"})
    except Exception as exc:  # noqa: BLE001 - answered meanwhile: the person wins
        get_run_logger().info("Review %s was answered before its deadline (%s)", key, exc)
        return False
    return True


async def _schedule_deadline(project_id: str, space_name: str, language: str, spec: TranslateSpec,
                             refs: BlockRefs, run_id: uuid.UUID, seconds: float) -> bool:
    """Suspend mode: a run of review-translation at the deadline resumes this one (no process waits for it)."""
    from prefect.deployments import arun_deployment

    try:
        await arun_deployment(
            REVIEW_DEPLOYMENT, timeout=0, as_subflow=False, idempotency_key=f"{review_key(project_id)}-deadline",
            scheduled_time=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds),
            parameters={"project_id": project_id, "language": language, "space_name": space_name,
                        "spec": spec.model_dump(mode="json"), "blocks": refs.model_dump(mode="json"),
                        "deadline_for": str(run_id)},
        )
    except ObjectNotFound:
        return False
    return True


async def ask_reviewer(project_id: str, space_name: str, language: str, spec: TranslateSpec, refs: BlockRefs) -> ReviewDecision:
    """The reviewer's answer (or the deadline's). Suspends or pauses the current run (see the module docstring)."""
    logger = get_run_logger()
    ctx = FlowRunContext.get()
    assert ctx is not None and ctx.flow_run is not None, "the review gate runs inside a flow run"
    run_id, key = ctx.flow_run.id, review_key(project_id)
    seconds = spec.review_timeout_hours * 3600
    # The form opens with the draft lines in it (re-read on a suspended run's re-run: the same, it is paused).
    form, drafts = review_form(await read_project(space_name, project_id, refs), spec)
    logger.info("Translation %s (%s) waits for review. %s", project_id, language, _resume_hint(str(run_id)))
    try:
        if review_mode() == "suspend":
            scheduled = await _schedule_deadline(project_id, space_name, language, spec, refs, run_id, seconds)
            backstop = int(seconds) + (BACKSTOP_SECONDS if scheduled else 0)
            answer = await asuspend_flow_run(wait_for_input=form, timeout=backstop, key=key)
        else:
            timer = asyncio.ensure_future(_deadline(run_id, key, seconds, spec.on_review_timeout))
            try:
                answer = await apause_flow_run(
                    wait_for_input=form, timeout=int(seconds) + BACKSTOP_SECONDS, key=key,
                    poll_interval=max(1, round(10 * time_scale())),
                )
            finally:
                timer.cancel()
    except ValidationError as exc:
        raise ReviewInputError(f"review of {project_id}: the answer is not valid: {exc}") from None
    return answer_to_decision(answer, drafts)


# --- continuing the project ---------------------------------------------------------------------------------


async def _continue(client: Any, request: ContinueAITranslationWorkflowRequest) -> Receipt:
    info = await client.continue_ai_translation_workflow(request.space_name, request.project_id)
    return Receipt(request.project_id, {"project_version": info.project_version or ""})


async def _continued(client: Any, request: ContinueAITranslationWorkflowRequest, _record: JournalRecord) -> Receipt | None:
    """Did a continue whose answer was lost go through? Yes once the project is no longer ProcessSuspended."""
    async with quota_slot("vod", "GetAITranslationProject"):
        project = await client.get_ai_translation_project(request.space_name, request.project_id)
    return None if project.state is JobState.PAUSED else Receipt(request.project_id)


CONTINUE = PaidAction[ContinueAITranslationWorkflowRequest](
    "vod", "ContinueAITranslationWorkflow", _continue, reconcile=_continued,
    look_for=lambda r: f"whether translation project {r.project_id} was resumed",
)


async def continue_project(space_name: str, project_id: str, refs: BlockRefs) -> None:
    """ContinueAITranslationWorkflow, at most once per project (journaled by the project id)."""
    request = ContinueAITranslationWorkflowRequest(space_name=space_name, project_id=project_id)
    account = resources.account_id(await resources.volcengine(refs))
    await buy(CONTINUE, request, fp=fingerprint("vod", CONTINUE.action, request.to_wire(), account), refs=refs)


# --- decisions kept in the bucket (a re-run, and an audit, read them) --------------------------------------------


def _decision_key(project_id: str) -> str:
    return f"reviews/{project_id}/decision.json"


async def _save_decision(refs: BlockRefs, project_id: str, decision: ReviewDecision) -> None:
    bucket = await resources.bucket(refs)
    body = json.dumps({"decision": decision.model_dump(mode="json"), "at": dt.datetime.now(dt.timezone.utc).isoformat()})
    await asyncio.to_thread(
        bucket.client.put_object, Bucket=bucket.name, Key=_decision_key(project_id), Body=body.encode(),
        ContentType="application/json",
    )


async def _load_decision(refs: BlockRefs, project_id: str) -> tuple[ReviewDecision, str] | None:
    """The stored decision and when it was made (ISO time), None when none is stored."""
    bucket = await resources.bucket(refs)
    try:
        obj = await asyncio.to_thread(bucket.client.get_object, Bucket=bucket.name, Key=_decision_key(project_id))
    except Exception:  # noqa: BLE001 - none stored: the project was not reviewed through clipflow
        return None
    stored = json.loads(obj["Body"].read())
    return ReviewDecision.model_validate(stored["decision"]), str(stored.get("at", ""))


def reused_note(project_id: str, language: str, spec: TranslateSpec, earlier: tuple[ReviewDecision, str] | None) -> str:
    """Why a run did not pause: the translation it bought was reviewed (and continued) by an earlier run."""
    if earlier is None:
        when = "outside clipflow (no decision recorded)"
    else:
        decision, at = earlier
        try:
            stamp = dt.datetime.fromisoformat(at).astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        except ValueError:
            stamp = at or "an unknown date"
        when = f"on {stamp} ({decision.action})"
    how = ("this is the translation review_again bought for this request; a new translate.take buys another"
           if spec.review_again else
           "set translate.review_again: true to buy a new translation and review it (one more paid translation "
           "project per language)")
    return (f"reused the translation reviewed {when}: project {project_id} ({language}), the same video and "
            f"options, is not reviewed again; {how}")


def _outcome(spec: TranslateSpec, decision: ReviewDecision, edits: int, drafts: list[str]) -> ReviewOutcome:
    if decision.reason.startswith(TIMED_OUT):
        kind = "timed_out"
    else:
        kind = {"approve": "approved", "edit": "edited", "reject": "rejected"}[decision.action]
    return ReviewOutcome(stage=spec.review, decision=kind, edits=edits, reason=decision.reason, draft_keys=drafts)


# --- the gate -------------------------------------------------------------------------------------------------


@task(
    task_run_name="finish_translation-{language}",
    **retry_options(),
    **cached_task_options(lambda p: f"clipflow-translation-result-{p['project_id']}-{int(p['spec'].export_outputs)}"),
)
async def finish_translation(project_id: str, space_name: str, language: str, spec: TranslateSpec, refs: BlockRefs) -> LanguageResult:
    """Wait for the continued project to end, then collect it (the same cache key as an unreviewed one)."""
    await watch(translation_poll(space_name), project_id, refs=refs, describe=f"translation {project_id} ({language})")
    return await collect_translation(project_id, space_name, language, spec, refs)


async def _handoff(project_id: str, space_name: str, language: str, spec: TranslateSpec, refs: BlockRefs,
                   drafts: list[str]) -> LanguageResult:
    """A batch item: the review becomes its own run of review-translation, which suspends on its own."""
    from prefect.deployments import arun_deployment

    parameters = {"project_id": project_id, "language": language, "space_name": space_name,
                  "spec": spec.model_dump(mode="json"), "blocks": refs.model_dump(mode="json")}
    run_id: str | None = None
    try:
        run = await arun_deployment(REVIEW_DEPLOYMENT, parameters=parameters, timeout=0, as_subflow=False,
                                    idempotency_key=review_key(project_id))
        run_id = str(run.id)
        resume = f"answer in review run {run_id} (it suspends until then). " + _resume_hint(run_id)
    except ObjectNotFound:
        resume = (f"deploy {REVIEW_DEPLOYMENT} (prefect deploy --all) and run it with project_id={project_id}, "
                  f"language={language}, space_name={space_name}")
    get_run_logger().warning("Translation %s (%s) awaits review: %s", project_id, language, resume)
    return LanguageResult(
        language=language, project_id=project_id, status=JobState.PAUSED,
        review=ReviewOutcome(stage=spec.review, decision="awaiting_review", review_run_id=run_id,
                             draft_keys=drafts, resume=resume),
    )


async def review_gate(project_id: str, space_name: str, language: str, spec: TranslateSpec, refs: BlockRefs) -> LanguageResult:
    """A submitted translation with ``review`` set: wait for the pause, review, continue, collect."""
    project = await watch(
        translation_poll(space_name), project_id, refs=refs, describe=f"translation {project_id} ({language})",
        stop_at=frozenset({JobState.PAUSED}),
    )
    if project.state is not JobState.PAUSED:  # already continued (an earlier run reviewed it): collect
        result = await finish_translation(project_id, space_name, language, spec, refs)
        earlier = await _load_decision(refs, project_id)
        note = reused_note(project_id, language, spec, earlier)
        get_run_logger().warning("Translation %s (%s): %s", project_id, language, note)
        outcome = (_outcome(spec, earlier[0], 0, []) if earlier
                   else ReviewOutcome(stage=spec.review, decision="approved"))
        return result.model_copy(update={"review": outcome.model_copy(update={"reused": note})})
    drafts = await store_drafts(project_id, space_name, language, spec, refs)
    if review_mode() == "handoff":
        return await _handoff(project_id, space_name, language, spec, refs, drafts)
    ctx = FlowRunContext.get()
    lock = _ASKING.setdefault(ctx.flow_run.id if ctx and ctx.flow_run else uuid.UUID(int=0), asyncio.Lock())
    try:
        async with lock:  # one Resume form at a time per run
            decision = await ask_reviewer(project_id, space_name, language, spec, refs)
        return await decide(project_id, space_name, language, spec, refs, decision, drafts)
    except ReviewInputError as exc:
        # The project stays paused and nothing was paid: run review-translation for it with a valid answer.
        return LanguageResult(
            language=language, project_id=project_id, status=JobState.FAILED, error=str(exc),
            review=ReviewOutcome(stage=spec.review, decision="awaiting_review", draft_keys=drafts,
                                 resume=f"run {REVIEW_DEPLOYMENT} with project_id={project_id} and a valid answer"),
        )


async def decide(project_id: str, space_name: str, language: str, spec: TranslateSpec, refs: BlockRefs,
                 decision: ReviewDecision, drafts: list[str]) -> LanguageResult:
    """Apply a reviewer's (or the deadline's) answer to a paused project."""
    logger = get_run_logger()
    timed_out = decision.reason.startswith(TIMED_OUT)
    if decision.action == "reject" or (timed_out and spec.on_review_timeout == "fail"):
        await _save_decision(refs, project_id, decision)
        why = (f"review timed out after {spec.review_timeout_hours:g} h (on_review_timeout: fail)" if timed_out
               else f"rejected in review{': ' + decision.reason if decision.reason else ''}")
        logger.warning("Translation %s (%s) %s; nothing more is paid for it", project_id, language, why)
        return LanguageResult(language=language, project_id=project_id, status=JobState.FAILED, error=why,
                              review=_outcome(spec, decision, 0, drafts))
    project = await read_project(space_name, project_id, refs)
    edits = await planned_edits(decision, project, spec, refs)
    await _save_decision(refs, project_id, decision)
    await apply_edits(space_name, project_id, edits, refs)
    await continue_project(space_name, project_id, refs)
    result = await finish_translation(project_id, space_name, language, spec, refs)
    return result.model_copy(update={"review": _outcome(spec, decision, len(edits), drafts)})


@flow(name="review-translation", log_prints=True)
async def review_translation(
    project_id: str,
    language: str,
    space_name: str = "demo",
    spec: TranslateSpec | None = None,
    blocks: BlockRefs | None = None,
    deadline_for: str | None = None,
) -> LanguageResult | None:
    """Review one paused translation project (started by a batch, or by hand): drafts, the Resume form,
    edits, continue, collect. With ``deadline_for`` (a run id) it only gives that run's review the timed-out
    answer if nobody answered it yet."""
    refs, spec = blocks or BlockRefs(), spec or TranslateSpec(review="after_translation")
    if deadline_for is not None:
        await resume_if_waiting(uuid.UUID(deadline_for), review_key(project_id), spec.on_review_timeout)
        return None
    token = HANDOFF.set(False)
    try:
        result = await review_gate(project_id, space_name, language, spec, refs)
    except (ProviderError, ReviewInputError) as exc:
        result = LanguageResult(language=language, project_id=project_id, status=JobState.FAILED, error=str(exc))
    finally:
        HANDOFF.reset(token)
    await publish_languages(review_key(project_id), [result], (await resources.bucket(refs)).name)
    return result
