"""The paid-job engine: the one path every paid provider action goes through.

A stage declares *what* it buys (``PaidAction``) and *how to watch it* (``JobPoll``); the engine does the rest,
the same way for every action:

1. **journal**: a record with a job id means it was bought: reuse it. A ``sent`` record without one means an
   earlier attempt's answer was lost: reconcile it (below) before anything is sent again.
2. **budget**: a batch's allowance is spent only when money is about to be spent.
3. **quota**: the action's quota slot (``providers.quotas``, enforced cluster-wide by ``flows.runtime.quotas``)
   is held around the call, and the journal's ``sent`` record is written inside it, right before the request
   leaves: a process killed while it queued leaves nothing to reconcile.
4. **send**, classifying the answer: a definite refusal (throttled, not sent, 4xx) marks the record ``refused``
   (nothing billed; throttling and not-sent are retried in place); a lost answer (timeout, cut, 5xx,
   unreadable 200) is *outcome unknown* and is
   - re-sent when the action carries an idempotency token derived from the fingerprint (``token=True``),
   - reconciled through the provider when the action declares ``reconcile`` (a listing or search that finds
     the job the lost request created; "found nothing" means nothing was created, so it is sent again),
   - otherwise handed to an operator: ``DuplicateSubmitRiskError``, a ``lost-answer`` event, and a record
     ``clipflow journal`` lists, attaches a console job id to, or releases.
5. **wait**: ``watch`` polls the declared status action on the shared schedule (``flows.runtime.waiting``), each
   call inside its own quota slot, and turns the terminal state into a result or a typed error. An output
   that is gone (expired) raises ``OutputGoneError`` naming the cause and the way to buy a new take.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from prefect.logging import get_run_logger

from flows.models import BlockRefs
from flows.runtime import incidents, progress, resources
from flows.runtime.budget import spend
from flows.runtime.journal import DuplicateSubmitRiskError, Journal, JournalRecord, SubmittedJob, now
from flows.runtime.quotas import quota_slot, quotas_for
from flows.runtime.retry import backoff_delay
from flows.runtime.settings import time_scale
from flows.runtime.waiting import poll_delays, scaled, wait_for
from providers.errors import (
    AuthError,
    InvalidRequestError,
    JobFailedError,
    NotFoundError,
    OutcomeUnknownError,
    ProviderError,
    RequestNotSentError,
    ThrottledError,
)
from providers.states import JobState

R = TypeVar("R")
T = TypeVar("T")

SEND_ATTEMPTS = 5  # in-place retries of a definite refusal (throttled / not sent): nothing was billed
RECONCILE_ATTEMPTS = 3  # listings right after a lost answer (the provider may take a moment to list the job)
DEFINITE_REFUSALS = (ThrottledError, RequestNotSentError, AuthError, InvalidRequestError, NotFoundError)


@dataclass(frozen=True)
class Receipt:
    """A provider's answer to a paid submit: the job id, and any other ids worth keeping."""

    job_id: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PaidAction(Generic[R]):
    """One paid provider action, declared once.

    ``send(client, request)`` makes the call. ``token``: the request carries an idempotency token derived from the
    fingerprint, so a repeat is safe. ``reconcile(client, request, record)`` finds the job an answer-lost
    request created (``None``: it created none). ``look_for(request)`` tells an operator what to search for in
    the provider's console when neither exists. The quota is the one ``providers.quotas`` declares for
    ``provider:action`` (checked here, so a typo fails at import, not at the first paid call).
    """

    provider: str
    action: str
    send: Callable[[Any, R], Awaitable[Receipt]]
    token: bool = False
    reconcile: Callable[[Any, R, JournalRecord], Awaitable[Receipt | None]] | None = None
    look_for: Callable[[R], str] = lambda _request: ""

    def __post_init__(self) -> None:
        quotas_for(self.provider, self.action)

    @property
    def name(self) -> str:
        return f"{self.provider}:{self.action}"


@dataclass(frozen=True)
class JobPoll(Generic[T]):
    """How to watch one kind of provider job: the status call, its state, and what a failure says."""

    provider: str
    action: str
    fetch: Callable[[Any, str], Awaitable[T]]
    state: Callable[[T], JobState | None]  # None: the provider does not know the job yet (keep polling)
    typical_seconds: float
    deadline_seconds: float
    failure: Callable[[T], str] = lambda _result: ""

    def __post_init__(self) -> None:
        quotas_for(self.provider, self.action)


class OutputGoneError(NotFoundError):
    """A paid job's output can no longer be fetched (result URL or task expired before it was stored).

    Never retried and never looped on: the message names the cause and how to pay for a new take."""


@contextlib.asynccontextmanager
async def _client(provider: str, refs: BlockRefs, given: Any = None) -> AsyncIterator[Any]:
    if given is not None:
        yield given
        return
    async with await resources.client(provider, refs) as client:
        yield client


def _job(action: PaidAction[Any], fp: str, job_id: str, at: Any, *, reused: bool, detail: dict[str, Any]) -> SubmittedJob:
    return SubmittedJob(
        provider=action.provider, action=action.action, job_id=job_id, fingerprint=fp, submitted_at=at,
        reused=reused, detail=detail,
    )


async def buy(
    action: PaidAction[R], request: R, *, fp: str, refs: BlockRefs, client: Any = None, journal: Journal | None = None
) -> SubmittedJob:
    """Buy ``request`` at most once per fingerprint ``fp`` (see the module docstring for the steps)."""
    journal = journal or await Journal.default()
    logger = get_run_logger()
    record = await journal.read(fp)
    if record is not None and record.job_id and record.state == "submitted":
        logger.info("Reusing %s job %s (fingerprint %s)", action.name, record.job_id, fp[:12])
        progress.reused(action.provider, action.action, record.job_id)
        return _job(action, fp, record.job_id, record.at, reused=True, detail=record.detail)
    async with _client(action.provider, refs, client) as api:
        if record is not None and record.state == "sent":
            found = await _recover(action, api, request, record, journal)
            if found is not None:
                return found
        return await _send(action, api, request, fp, journal)


async def _recover(
    action: PaidAction[R], api: Any, request: R, record: JournalRecord, journal: Journal
) -> SubmittedJob | None:
    """An earlier attempt's answer was lost: find its job, or prove there is none, or stop for an operator."""
    logger = get_run_logger()
    fp = record.fingerprint
    if action.token:
        logger.warning("Re-sending %s %s with the same idempotency token after a lost answer", action.name, fp[:12])
        return None
    if action.reconcile is not None:
        found = await action.reconcile(api, request, record)
        if found is not None:
            return await _reconciled(action, fp, record, found, journal)
        logger.warning(
            "%s %s: the provider lists no job from the lost request of %s; sending it again",
            action.name, fp[:12], record.sent_at or record.at,
        )
        return None
    incidents.paid_request(
        "duplicate-refused", fingerprint=fp, provider=action.provider, action=action.action,
        sent_at=record.sent_at or record.at, look_for=record.look_for,
    )
    raise _lost_answer_error(action, record)


async def _reconciled(
    action: PaidAction[Any], fp: str, record: JournalRecord, found: Receipt, journal: Journal
) -> SubmittedJob:
    get_run_logger().warning("Recovered %s job %s after a lost answer (fingerprint %s)", action.name, found.job_id, fp[:12])
    await journal.write(
        record.model_copy(update={"state": "submitted", "job_id": found.job_id, "detail": found.detail, "at": now()})
    )
    incidents.paid_request(
        "reconciled", fingerprint=fp, provider=action.provider, action=action.action, job_id=found.job_id
    )
    return _job(action, fp, found.job_id, record.sent_at or record.at, reused=True, detail=found.detail)


def _lost_answer_error(action: PaidAction[Any], record: JournalRecord) -> DuplicateSubmitRiskError:
    fp = record.fingerprint
    return DuplicateSubmitRiskError(
        f"an earlier {action.action} of this exact request (fingerprint {fp}) left at "
        f"{(record.sent_at or record.at).isoformat()} and its answer was lost; {action.provider} offers no way to "
        f"find the job, so it is not submitted again. Look in the {action.provider} console for "
        f"{record.look_for or 'a job submitted at that time'}; then run `clipflow journal attach {fp} JOB_ID` to "
        f"resume that job, or `clipflow journal release {fp}` to pay for a new one",
        provider=action.provider, action=action.action, retryable=False, record=record,
    )


async def _send(action: PaidAction[R], api: Any, request: R, fp: str, journal: Journal) -> SubmittedJob:
    logger = get_run_logger()
    spend(action.provider, action.action)  # the batch budget, if any: checked only when money is about to be spent
    intent = JournalRecord(
        state="sent", provider=action.provider, action=action.action, fingerprint=fp, at=now(),
        look_for=action.look_for(request),
    )
    for attempt in range(SEND_ATTEMPTS):
        async with quota_slot(action.provider, action.action):
            sent_at = now()
            intent = intent.model_copy(update={"at": sent_at, "sent_at": sent_at})
            await journal.write(intent)
            try:
                receipt = await action.send(api, request)
            except DEFINITE_REFUSALS as exc:
                await journal.write(intent.model_copy(update={"state": "refused", "at": now(), "note": str(exc)[:300]}))
                if not isinstance(exc, ThrottledError | RequestNotSentError) or attempt == SEND_ATTEMPTS - 1:
                    raise
                delay = backoff_delay(exc, attempt)
            except (ProviderError, asyncio.TimeoutError) as exc:
                return await _answer_lost(action, api, request, intent, journal, exc)
            else:
                await journal.write(
                    intent.model_copy(update={"state": "submitted", "job_id": receipt.job_id, "detail": receipt.detail, "at": now()})
                )
                logger.info("Submitted %s job %s (fingerprint %s)", action.name, receipt.job_id, fp[:12])
                progress.paid(action.provider, action.action, receipt.job_id)
                return _job(action, fp, receipt.job_id, sent_at, reused=False, detail=receipt.detail)
        await asyncio.sleep(delay)  # outside the slot: the quota is free for others meanwhile
    raise AssertionError("unreachable")


async def _answer_lost(
    action: PaidAction[R], api: Any, request: R, intent: JournalRecord, journal: Journal, exc: BaseException
) -> SubmittedJob:
    """The request left and no usable answer came back: it may have been accepted."""
    fp = intent.fingerprint
    logger = get_run_logger()
    logger.warning("%s %s: outcome unknown (%s)", action.name, fp[:12], exc)
    incidents.paid_request(
        "outcome-unknown", fingerprint=fp, provider=action.provider, action=action.action,
        sent_at=intent.sent_at, error=type(exc).__name__,
    )
    message = f"{exc} (request fingerprint {fp}; the journal keeps it so it is not paid twice)"
    if action.token:  # the provider deduplicates: the task's retry re-sends with the same token
        raise OutcomeUnknownError(message, provider=action.provider, action=action.action, retryable=True) from exc
    if action.reconcile is not None:
        for attempt in range(RECONCILE_ATTEMPTS):
            await asyncio.sleep(2.0**attempt * time_scale())
            try:
                found = await action.reconcile(api, request, intent)
            except ProviderError as lookup_error:
                logger.warning("%s %s: lookup failed (%s)", action.name, fp[:12], lookup_error)
                continue
            if found is not None:
                return await _reconciled(action, fp, intent, found, journal)
        # Not listed (yet): the task's retry reconciles again, and only a provider that lists nothing then is
        # taken to have created nothing.
        raise OutcomeUnknownError(message, provider=action.provider, action=action.action, retryable=True) from exc
    incidents.paid_request(
        "lost-answer", fingerprint=fp, provider=action.provider, action=action.action,
        sent_at=intent.sent_at, look_for=intent.look_for,
    )
    raise _lost_answer_error(action, intent) from exc


async def watch(
    poll: JobPoll[T], job_id: str, *, refs: BlockRefs, describe: str, new_take: str = "", client: Any = None,
    stop_at: frozenset[JobState] = frozenset(),
) -> T:
    """Wait for a provider job to end; return its last status answer if it succeeded.

    ``new_take`` says how to pay for a fresh job when the output is gone (e.g. "set clip.take to 1").
    ``stop_at``: non-terminal states that also end the wait and are returned as they are (e.g. PAUSED: the job
    waits for a person)."""
    get_run_logger().info("Waiting on %s", describe)
    async with _client(poll.provider, refs, client) as api:

        async def once() -> T:
            async with quota_slot(poll.provider, poll.action):
                return await poll.fetch(api, job_id)

        def done(result: T) -> bool:
            state = poll.state(result)
            return state is not None and (state.is_terminal or state in stop_at)

        result = await wait_for(
            once, done, delays=poll_delays(poll.typical_seconds),
            deadline_seconds=scaled(poll.deadline_seconds), describe=describe,
        )
    state = poll.state(result)
    if state in stop_at:
        return result
    reason = poll.failure(result)
    if state is JobState.EXPIRED:
        raise OutputGoneError(
            f"{describe}: the provider no longer has this job's output (expired before it was stored"
            f"{': ' + reason if reason else ''}). {new_take or 'Change the request to pay for a new job.'}",
            provider=poll.provider, action=poll.action,
        )
    if state is not JobState.SUCCEEDED:
        raise JobFailedError(f"{describe} ended {state.value if state else 'unknown'}: {reason}", provider=poll.provider, action=poll.action)
    return result
