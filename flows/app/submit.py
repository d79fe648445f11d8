"""Start a production from Python: validated with the model before Prefect creates anything.

``run_deployment`` sends the parameters to the server, which checks them against the deployment's parameter
schema (HTTP 409 naming the field). The rules a schema cannot carry (cross-field, per provider model) are only
met when the run begins, and then a run exists already; ``submit_production`` refuses all of them first, naming
the field, and sends the request in its canonical JSON form (every integer inside the form's ranges, booleans as
booleans).
"""

from __future__ import annotations

from typing import Any

from flows.models import ProductionRequest
from flows.stages.requests import plan_production

PRODUCE_VIDEO = "produce-video/produce-video"


def checked_request(request: ProductionRequest | dict[str, Any]) -> ProductionRequest:
    """The request as ``produce_video`` would accept it, with every provider request it leads to built offline;
    raises pydantic's ``ValidationError`` or ``RequestValidationError`` naming the field."""
    data = request.model_dump() if isinstance(request, ProductionRequest) else request
    validated = ProductionRequest.model_validate(data)  # a model built in code is validated again too
    plan_production(validated)
    return validated


async def submit_production(
    request: ProductionRequest | dict[str, Any], *, deployment: str = PRODUCE_VIDEO, timeout: float | None = 0,
    **options: Any,
) -> Any:
    """Validate ``request`` (``checked_request``), then start ``deployment`` with it; returns the ``FlowRun``
    (``timeout=0``: at once; ``None``: when it finishes). ``options`` go to ``prefect.deployments.run_deployment``
    (``tags``, ``scheduled_time``, ``flow_run_name``, ``job_variables`` …)."""
    from prefect.deployments import arun_deployment

    validated = checked_request(request)
    parameters = {"request": validated.model_dump(mode="json")}
    return await arun_deployment(deployment, parameters=parameters, timeout=timeout, as_subflow=False, **options)
