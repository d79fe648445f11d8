"""Runs that heal themselves: a production whose process died is marked Crashed and resumed by a successor run.

Three parts, all kept on the Prefect server so nothing but the server and the workers has to run:

- Flow runs send heartbeats (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` in prefect.yaml). ``clipflow setup`` creates
  the Automation that marks a clipflow run Crashed when its heartbeats stop (Prefect's "detect zombie flows"
  recipe); a worker that sees its flow process die marks it Crashed at once by itself.
- ``clipflow setup`` also creates the Automation that ends a run left Cancelling by a process that is gone: Prefect
  3.8's workers only cancel runs that have not started, a running one is stopped by its own process.
- The ``heal-crashed-run`` deployment (prefect.yaml) is triggered by every Crashed run of a resumable flow and
  creates one successor with the same parameters: clipflow's cache and journal make it resume the paid jobs.

The successor's tags carry the chain (``clipflow.successor-of:<run id>``, one per crash), which bounds it.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.states import Crashed

from flows.engine.incidents import emit
from flows.runtime.settings import settings, variable

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30  # prefect.yaml's PREFECT_FLOWS_HEARTBEAT_FREQUENCY; Prefect's minimum
RUN_TAG = "clipflow"  # every clipflow deployment's runs carry it (prefect.yaml)
# Flows whose re-run resumes its paid jobs; the heal trigger in prefect.yaml names the same flows.
RESUMABLE_FLOWS = frozenset(
    {"produce-video", "produce-batch", "ai-translate", "review-translation", "revise-translation"}
)
SUCCESSOR_TAG = "clipflow.successor-of:"
FIRST_RUN_LABEL = "clipflow.first-run"
GAVE_UP = "clipflow gave up:"
GAVE_UP_EVENT = "clipflow.production.gave-up"
NO_HEARTBEAT = "No heartbeat for"  # the heartbeat Automation's state message starts so

ZOMBIE_AUTOMATION = "clipflow: crash runs whose heartbeats stopped"
CANCELLING_AUTOMATION = "clipflow: cancel runs whose process is gone"
FINAL_EVENTS = {f"prefect.flow-run.{name}" for name in ("Completed", "Failed", "Cancelled", "Crashed")}


def _clipflow_runs() -> dict[str, Any]:
    return {"match": {"prefect.resource.id": "prefect.flow-run.*"},
            "match_related": {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{RUN_TAG}"}}


def automations() -> list[AutomationCore]:
    """The Automations ``clipflow setup`` keeps, with the windows of this moment's settings. Only runs tagged
    ``clipflow`` are watched: other teams' runs on a shared server may beat slower."""
    s = settings()
    zombie = AutomationCore(
        name=ZOMBIE_AUTOMATION,
        description=f"A clipflow flow run sends a heartbeat every {HEARTBEAT_SECONDS} s; none for "
        f"{s.heartbeat_timeout_seconds} s means its process is gone (OOM, SIGKILL, a lost machine).",
        trigger=EventTrigger(
            **_clipflow_runs(),
            after={"prefect.flow-run.heartbeat"},
            # a run that pauses, suspends for a review or is being cancelled stops beating on purpose
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Paused", "prefect.flow-run.Suspended",
                    "prefect.flow-run.Cancelling", *FINAL_EVENTS},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=dt.timedelta(seconds=s.heartbeat_timeout_seconds),
        ),
        actions=[ChangeFlowRunState(
            state=StateType.CRASHED,
            message=f"{NO_HEARTBEAT} {s.heartbeat_timeout_seconds} s: the flow run's process is gone "
            "(marked by clipflow's Automation).",
        )],
    )
    cancelling = AutomationCore(
        name=CANCELLING_AUTOMATION,
        description="Prefect leaves a running flow run Cancelling until its own process stops it; when that "
        f"process is gone, nothing does. After {s.cancelling_timeout_seconds} s the cancel is finished here.",
        trigger=EventTrigger(
            **_clipflow_runs(),
            after={"prefect.flow-run.Cancelling"},
            expect=FINAL_EVENTS,
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=dt.timedelta(seconds=s.cancelling_timeout_seconds),
        ),
        actions=[ChangeFlowRunState(
            state=StateType.CANCELLED,
            message=f"Cancelled: no process answered the cancellation within {s.cancelling_timeout_seconds} s "
            "(it is gone).",
        )],
    )
    return [zombie, cancelling]


async def ensure_automations(client: PrefectClient | None = None, keep_existing: bool = False) -> list[str]:
    """Create or update clipflow's Automations by name (extra copies of one name are removed); one line each.
    ``keep_existing`` (``clipflow up``): one that exists is left as it is, an operator may have edited it."""
    if client is None:
        async with get_client() as own:
            return await ensure_automations(own, keep_existing)
    lines = []
    for wanted in automations():
        found = await client.read_automations_by_name(wanted.name)
        if not found:
            await client.create_automation(wanted)
            lines.append(f"automation/{wanted.name} (created)")
            continue
        if keep_existing:
            lines.append(f"automation/{wanted.name} (kept)")
            continue
        keep, *extra = sorted(found, key=lambda a: str(a.id))
        for duplicate in extra:
            await client.delete_automation(duplicate.id)
        if AutomationCore.model_validate(keep.model_dump(include=set(AutomationCore.model_fields))) != wanted:
            await client.update_automation(keep.id, wanted)
            lines.append(f"automation/{wanted.name} (updated)")
        else:
            lines.append(f"automation/{wanted.name}")
    return lines


@dataclass(frozen=True)
class Outcome:
    message: str
    successor: FlowRun | None = None
    gave_up: bool = False


def run_id_of(resource_id: str) -> uuid.UUID:
    """``prefect.flow-run.<id>`` (the trigger's ``{{ event.resource.id }}``) or a bare run id."""
    text = resource_id.strip().removeprefix("prefect.flow-run.")
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ValueError(f"crashed_run: {resource_id!r} is not a flow run id") from None


def chain_of(run: FlowRun) -> list[str]:
    """The runs before ``run`` in its chain of successors, from its tags."""
    return [tag.removeprefix(SUCCESSOR_TAG) for tag in run.tags if tag.startswith(SUCCESSOR_TAG)]


async def heal(client: PrefectClient, run_id: uuid.UUID, limit: int) -> Outcome:
    """Give the Crashed run ``run_id`` one successor (idempotent), or say why not."""
    run = await client.read_flow_run(run_id)
    state = run.state
    if state is None or state.type != StateType.CRASHED:
        return Outcome(f"{run.name}: {state.type.value if state else 'no state'} now, not Crashed: nothing to do")
    if (state.message or "").startswith(GAVE_UP):
        return Outcome(f"{run.name}: already given up")
    if run.deployment_id is None:
        return Outcome(f"{run.name}: not a deployment run, nothing starts it again")
    flow_name = (await client.read_flow(run.flow_id)).name
    if flow_name not in RESUMABLE_FLOWS:
        return Outcome(f"{run.name}: {flow_name} runs are not resumed automatically")
    history = sorted(await client.read_flow_run_states(run.id), key=lambda s: s.timestamp)
    if any(s.type in (StateType.CANCELLING, StateType.CANCELLED) for s in history):
        return Outcome(f"{run.name}: it was being cancelled; a deliberate cancel is never resumed")
    before = history[-2] if len(history) > 1 else None
    if before is not None and before.name == "Suspended" and (state.message or "").startswith(NO_HEARTBEAT):
        # A suspended run has no process on purpose; a heartbeat sent just before it suspended can still
        # start the heartbeat Automation's window. Put it back: the person's answer resumes it as before.
        await client.set_flow_run_state(run.id, before.model_copy(update={
            "message": f"{before.message or 'Suspended'} (put back: it was marked Crashed while suspended)"}),
            force=True)
        return Outcome(f"{run.name}: was suspended, not crashed: suspended again")

    tag = f"{SUCCESSOR_TAG}{run.id}"
    existing = await client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])))
    if existing:
        return Outcome(f"{run.name}: successor {existing[0].name} ({existing[0].id}) exists", existing[0])
    chain = chain_of(run)
    if len(chain) >= limit:
        return await _give_up(client, run, chain, limit)

    first = run.labels.get(FIRST_RUN_LABEL) or str(run.id)
    successor = await client.create_flow_run_from_deployment(
        run.deployment_id,
        parameters=run.parameters,
        tags=[*run.tags, tag],
        labels={FIRST_RUN_LABEL: str(first)},
        job_variables=run.job_variables or None,
        # a second delivery of the same crash (or a second heal run) gets the same successor
        idempotency_key=tag,
    )
    text = (f"crashed run {run.name} ({run.id}) → successor {successor.name} ({successor.id}), "
            f"successor {len(chain) + 1} of at most {limit}; it resumes the paid jobs of the crashed run")
    for on_run, title in ((run, "Resumed by a successor"), (successor, "Successor of a crashed run")):
        await client.create_artifact(ArtifactCreate(
            flow_run_id=on_run.id, type="markdown", description=title,
            data=f"**{title}**: {text}. First run of the production: `{first}`.",
        ))
    return Outcome(text, successor)


async def _give_up(client: PrefectClient, run: FlowRun, chain: list[str], limit: int) -> Outcome:
    first = run.labels.get(FIRST_RUN_LABEL) or (chain[0] if chain else str(run.id))
    text = (f"{GAVE_UP} this production crashed {len(chain) + 1} times, {limit} successor runs is the limit "
            f"({variable('max_successors')}); find why it crashes (worker logs, memory), then run it again by hand: "
            f"it resumes what was paid for")
    emit(GAVE_UP_EVENT,
         resource={"prefect.resource.id": f"clipflow.production.{first}", "prefect.resource.name": run.name,
                   "clipflow.last-run": str(run.id)},
         payload={"last_run": str(run.id), "runs": [*chain, str(run.id)], "limit": limit,
                  "deployment_id": str(run.deployment_id)})
    await client.set_flow_run_state(run.id, Crashed(message=text), force=True)
    return Outcome(f"{run.name}: {text}", gave_up=True)


@flow(name="heal-crashed-run", retries=2, retry_delay_seconds=5)  # idempotent: a retry finds its own successor
async def heal_crashed_run(crashed_run: str) -> str:
    """Start one successor of a Crashed production run (same parameters; it resumes the paid jobs), at most
    ``CLIPFLOW_MAX_SUCCESSORS`` per production. ``crashed_run``: its id or ``prefect.flow-run.<id>``."""
    run_id = run_id_of(crashed_run)
    async with get_client() as client:
        outcome = await heal(client, run_id, settings().max_successors)
    log = get_run_logger()
    (log.warning if outcome.gave_up else log.info)(outcome.message)
    return outcome.message


__all__ = ["Outcome", "automations", "ensure_automations", "heal", "heal_crashed_run", "run_id_of"]
