"""Documented per-user quotas, one table for the clients' users (Prefect limits) and the emulator.

VOD figures are from the vendor pages (shared/api-notes.md section 3). Jimeng's page names the throttling
codes (50429 QPS, 50430 concurrency) but not the numbers; the figures here are the conservative defaults an
account starts with and are meant to be overridden per account.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quota:
    provider: str
    action: str
    qps: float | None = None  # requests per second per account
    concurrency: int | None = None  # jobs in flight per account

    @property
    def limit_name(self) -> str:
        """Name of the Prefect global concurrency limit enforcing this quota."""
        if self.qps is None:
            return f"clipflow-{self.provider}-{self.action}".lower()
        return f"clipflow-{self.provider}-{self.action}-rate".lower()


VOD_QPS: dict[str, float] = {
    "CreateProject": 10,
    "SearchGlobalProject": 10,
    "SubmitDirectEditTaskAsync": 10,
    "GetDirectEditProgress": 20,
    "GetDirectEditResult": 20,
    "StartWorkflow": 50,
    "GetWorkflowExecution": 50,
    "GetWorkflowExecutionResult": 50,
    "UploadMediaByUrl": 500,
    "QueryUploadTaskInfo": 1000,
    "GetMediaList": 20,  # no documented figure; only used to find an import whose answer was lost
    "GetWorkflowTemplate": 20,  # no documented figure; one call per template per run (preflight)
    "SubmitAITranslationWorkflow": 1,
    "GetAITranslationProject": 10,
    "ListAITranslationProject": 10,
    "UpdateAITranslationUtterances": 10,
    "ContinueAITranslationWorkflow": 10,
    "RefreshAITranslationProject": 10,
}

JIMENG_QPS: dict[str, float] = {"CVSync2AsyncSubmitTask": 2, "CVSync2AsyncGetResult": 10}
JIMENG_CONCURRENCY = 2  # Jimeng tasks in_queue or generating at once per account

GATEWAY_QPS: dict[str, float] = {"create": 5, "query": 20}


def all_quotas() -> list[Quota]:
    quotas = [Quota("vod", a, qps=q) for a, q in VOD_QPS.items()]
    quotas += [Quota("jimeng", a, qps=q) for a, q in JIMENG_QPS.items()]
    # Held from submit until the clip is collected, so it counts jobs in flight, not HTTP calls.
    quotas.append(Quota("jimeng", "jobs", concurrency=JIMENG_CONCURRENCY))
    quotas += [Quota("gateway", a, qps=q) for a, q in GATEWAY_QPS.items()]
    return quotas
