"""The paid-job engine: the one path every paid provider action goes through.

A stage declares *what* it buys (``PaidAction``) and *how to watch it* (``JobPoll``); the engine does the rest,
the same way for every action:

1. **journal**: a record with a job id means it was bought: reuse it. A ``sent`` record without one is a send
   in flight (its owner alive and before its ``answer_by``: wait for its outcome) or an earlier attempt whose
   answer was lost: reconcile it (below) before anything is sent again.
2. **budget**: a batch's allowance is spent only when money is about to be spent (and given back when this
   process does not send after all, or the provider refused).
3. **quota, then the conditional write**: inside the action's quota slot (``providers.quotas``, enforced
   cluster-wide by ``flows.coordination.quotas``) the journal is read again and the ``sent`` record is *created if
   absent* (or swapped in for a ``refused``/``released``/lost one, compare-and-swap on the version read). Only
   the process whose write wins sends; a loser reads again and waits on the winner's job. This write, not a
   lock, is what keeps two workers from paying for one request.
4. **send**, within ``CLIPFLOW_SEND_DEADLINE_SECONDS``, classifying the answer: a definite refusal (throttled,
   not sent, 4xx, or a code the vendor documents as retryable in its own error body under the ``vendor`` retry
   policy) marks the record ``refused`` (nothing billed; throttling, not-sent and vendor-retryable codes are
   retried in place with backoff); a lost answer (timeout, cut, 5xx without the vendor's body, unreadable
   200) is *outcome unknown* and is
   - re-sent when the action carries an idempotency token derived from the fingerprint (``token=True``),
   - reconciled through the provider when the action declares ``reconcile`` (a listing or search that finds
     the job the lost request created; "found nothing" means nothing was created, so it is sent again),
   - otherwise handed to an operator: ``DuplicateSubmitRiskError``, a ``lost-answer`` event, and a record
     ``clipflow journal`` lists, attaches a console job id to, or releases.
5. **wait**: ``watch`` polls the declared status action on the shared schedule (``flows.engine.waiting``), each
   call inside its own quota slot, and turns the terminal state into a result or a typed error. An output
   that is gone (expired) raises ``OutputGoneError`` naming the cause and the way to buy a new take.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from prefect.logging import get_run_logger

from flows.models import BlockRefs
from flows.costs.trace import journal_detail, note
from flows.engine import incidents
from flows.runtime import progress, resources
from flows.engine.budget import refund, spend
from flows.engine.journal import (
    UNKNOWN_TIME, DuplicateSubmitRiskError, Journal, JournalRecord, SubmittedJob, now, send_in_flight,
)
from flows.runtime.processes import this_process
from flows.coordination.quotas import quota_slot, quotas_for
from flows.engine.retry import backoff_delay
from flows.runtime.settings import settings, time_scale
from flows.engine.waiting import job_schedule, scaled, wait_for
from providers.errors import (
    AuthError,
    InvalidRequestError,
    JobFailedError,
    NotFoundError,
    OutcomeUnknownError,
    ProviderError,
    RequestNotSentError,
    RetryableRefusalError,
    ThrottledError,
)
from providers.states import JobState

R = TypeVar("R")
T = TypeVar("T")

SEND_ATTEMPTS = 5  # in-place retries of a definite refusal (throttled / not sent): nothing was billed
RECONCILE_ATTEMPTS = 3  # listings right after a lost answer (the provider may take a moment to list the job)
IN_FLIGHT_POLL_SECONDS = 0.5  # how often a process waiting on another's send reads the journal (wall clock)
DEFINITE_REFUSALS: tuple[type[ProviderError], ...] = (
    ThrottledError, RequestNotSentError, AuthError, InvalidRequestError, NotFoundError,
)
RETRY_IN_PLACE: tuple[type[ProviderError], ...] = (ThrottledError, RequestNotSentError)


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


def _reuse(action: PaidAction[Any], record: JournalRecord) -> SubmittedJob:
    get_run_logger().info("Reusing %s job %s (fingerprint %s)", action.name, record.job_id, record.fingerprint[:12])
    progress.reused(action.provider, action.action, record.job_id or "")
    return _job(action, record.fingerprint, record.job_id or "", record.at, reused=True, detail=record.detail)


async def buy(
    action: PaidAction[R], request: R, *, fp: str, refs: BlockRefs, client: Any = None, journal: Journal | None = None
) -> SubmittedJob:
    """Buy ``request`` at most once per fingerprint ``fp`` (see the module docstring for the steps)."""
    journal = journal or await Journal.default()
    record = await journal.read(fp)
    if record is not None and record.bought:
        return note(action.provider, action.action, request, _reuse(action, record))
    async with _client(action.provider, refs, client) as api:
        return note(action.provider, action.action, request, await _settle(action, api, request, fp, journal))


async def _settle(action: PaidAction[R], api: Any, request: R, fp: str, journal: Journal) -> SubmittedJob:
    """Until this request has a job: reuse one, wait for a send in flight, recover a lost answer, or win the
    conditional write that allows a send and send. Definite refusals the vendor allows are retried in place."""
    refusals = 0
    while True:
        record = await journal.read(fp)
        if record is not None and record.bought:
            return _reuse(action, record)
        takeover = None
        if record is not None and record.state in ("sent", "submitted"):  # submitted without a job id: as lost
            if send_in_flight(record):
                await _wait_while_in_flight(action, journal, record)
                continue
            found = await _recover(action, api, request, record, journal)
            if found is not None:
                return found
            takeover = record  # the lost request created nothing (or carries a token): it may be sent again
        try:
            job = await _send(action, api, request, fp, journal, takeover)
        except _retried_in_place() as exc:
            refusals += 1
            if refusals >= SEND_ATTEMPTS:
                raise
            await asyncio.sleep(backoff_delay(exc, refusals - 1))  # outside the slot: the quota is free meanwhile
            continue
        if job is not None:
            return job
        # Another process changed the record between our read and our write: it sent, or is sending. Read again.


def _definite_refusals() -> tuple[type[ProviderError], ...]:
    """Answers proving nothing was created. A vendor-documented retryable code counts unless the policy is strict."""
    if settings().retry_policy == "strict":
        return DEFINITE_REFUSALS
    return (*DEFINITE_REFUSALS, RetryableRefusalError)


def _retried_in_place() -> tuple[type[ProviderError], ...]:
    if settings().retry_policy == "strict":
        return RETRY_IN_PLACE
    return (*RETRY_IN_PLACE, RetryableRefusalError)


async def _wait_while_in_flight(action: PaidAction[Any], journal: Journal, record: JournalRecord) -> None:
    """Another process is sending this very request: wait for its outcome instead of sending it too."""
    get_run_logger().info(
        "%s %s is being sent by another process (%s); waiting for its answer",
        action.name, record.fingerprint[:12], record.owner.get("host", "?"),
    )
    while True:
        await asyncio.sleep(IN_FLIGHT_POLL_SECONDS)
        current = await journal.read(record.fingerprint)
        if current != record or not send_in_flight(record):
            return


async def _recover(
    action: PaidAction[R], api: Any, request: R, record: JournalRecord, journal: Journal
) -> SubmittedJob | None:
    """An earlier attempt's answer was lost: find its job, or prove there is none, or stop for an operator."""
    logger = get_run_logger()
    fp = record.fingerprint
    if record.note:
        logger.warning("%s %s: %s", action.name, fp[:12], record.note)
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
    raise _lost_answer_error(action, record, action.look_for(request))


async def _reconciled(
    action: PaidAction[Any], fp: str, record: JournalRecord, found: Receipt, journal: Journal
) -> SubmittedJob:
    get_run_logger().warning("Recovered %s job %s after a lost answer (fingerprint %s)", action.name, found.job_id, fp[:12])
    await journal.write(
        record.model_copy(update={
            "state": "submitted", "job_id": found.job_id, "detail": {**record.detail, **found.detail}, "at": now(),
            "provider": action.provider, "action": action.action, "note": "",
        })
    )
    incidents.paid_request(
        "reconciled", fingerprint=fp, provider=action.provider, action=action.action, job_id=found.job_id
    )
    return _job(action, fp, found.job_id, record.sent_at or record.at, reused=True, detail=found.detail)


def _lost_answer_error(action: PaidAction[Any], record: JournalRecord, look_for: str = "") -> DuplicateSubmitRiskError:
    fp = record.fingerprint
    left = "at an unknown time" if record.at == UNKNOWN_TIME else f"at {(record.sent_at or record.at).isoformat()}"
    return DuplicateSubmitRiskError(
        f"an earlier {action.action} of this exact request (fingerprint {fp}) left {left} and its answer was "
        f"lost{' (' + record.note + ')' if record.note else ''}; {action.provider} offers no way to "
        f"find the job, so it is not submitted again. Look in the {action.provider} console for "
        f"{record.look_for or look_for or 'a job submitted at that time'}; then run "
        f"`clipflow journal attach {fp} JOB_ID` to resume that job, or `clipflow journal release {fp}` to pay for "
        "a new one",
        provider=action.provider, action=action.action, retryable=False, record=record,
    )


async def _send(
    action: PaidAction[R], api: Any, request: R, fp: str, journal: Journal, takeover: JournalRecord | None
) -> SubmittedJob | None:
    """One attempt to send, if this process wins the journal's conditional write; None if another one did."""
    logger = get_run_logger()
    spend(action.provider, action.action)  # the batch budget, if any: checked only when money is about to be spent
    deadline = settings().send_deadline_seconds
    async with quota_slot(action.provider, action.action):
        current, version = await journal.read_versioned(fp)  # again, inside the slot, right before the write
        sent_at = now()
        intent = JournalRecord(
            state="sent", provider=action.provider, action=action.action, fingerprint=fp, at=sent_at,
            sent_at=sent_at, look_for=action.look_for(request), owner=this_process().to_json(),
            answer_by=sent_at + dt.timedelta(seconds=deadline),
            detail=journal_detail(action.provider, action.action, request),  # what it bills (clipflow cost)
        )
        if current is None:
            version = await journal.create(intent)
        elif current.state in ("refused", "released") or (takeover is not None and current == takeover):
            version = await journal.replace(intent, version)
        else:
            version = None
        if version is None:
            refund(action.provider, action.action)
            return None
        try:
            receipt = await asyncio.wait_for(action.send(api, request), deadline)
        except _definite_refusals() as exc:
            refund(action.provider, action.action)  # nothing was created, nothing billed
            await journal.replace(intent.model_copy(update={"state": "refused", "at": now(), "note": str(exc)[:300]}), version)
            raise
        except (ProviderError, asyncio.TimeoutError) as exc:
            lost = (intent, version, exc)
        else:
            submitted = intent.model_copy(
                update={"state": "submitted", "job_id": receipt.job_id, "detail": {**intent.detail, **receipt.detail},
                        "at": now()}
            )
            if await journal.replace(submitted, version) is None:
                # Changed while we waited for the answer (an operator, or a takeover after our deadline): the job
                # exists and is paid, so recording it is never wrong.
                logger.warning("%s %s: the journal record changed while the request was out; recording job %s",
                               action.name, fp[:12], receipt.job_id)
                await journal.write(submitted)
            logger.info("Submitted %s job %s (fingerprint %s)", action.name, receipt.job_id, fp[:12])
            progress.paid(action.provider, action.action, receipt.job_id)
            return _job(action, fp, receipt.job_id, sent_at, reused=False, detail=receipt.detail)
    return await _answer_lost(action, api, request, *lost, journal)


async def _answer_lost(
    action: PaidAction[R], api: Any, request: R, intent: JournalRecord, version: str, exc: BaseException,
    journal: Journal,
) -> SubmittedJob:
    """The request left and no usable answer came back: it may have been accepted."""
    fp = intent.fingerprint
    logger = get_run_logger()
    logger.warning("%s %s: outcome unknown (%s)", action.name, fp[:12], exc or type(exc).__name__)
    # No answer will come any more: others need not wait for one (the record stays `sent`, outcome unknown).
    intent = intent.model_copy(update={"answer_by": None})
    await journal.replace(intent, version)
    incidents.paid_request(
        "outcome-unknown", fingerprint=fp, provider=action.provider, action=action.action,
        sent_at=intent.sent_at, error=type(exc).__name__,
    )
    message = f"{exc or 'no answer in time'} (request fingerprint {fp}; the journal keeps it so it is not paid twice)"
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
            once, done,
            **job_schedule(poll.provider, poll.action, job_id, poll.typical_seconds, pausable=bool(stop_at)),
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
