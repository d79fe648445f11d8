"""Flows whose parameters are validated before their run is created.

Prefect creates a flow run with the parameters it was called with and validates them only when the run begins
(``flow_engine``: ``create_flow_run`` then ``validate_parameters``). A refused value is then stored already: an
integer beyond 64 bits (``seed=2**70``) makes the server's ``POST /flow_runs/filter`` answer 500 for every list
that includes the run (the UI's runs page). ``validated_flow`` is ``prefect.flow`` with the check moved in front:
its ``serialize_parameters`` (what Prefect calls to store a run's parameters, for a call from Python, a subflow
or a worker's submit) validates them first and refuses any integer a 64-bit column cannot hold, so a refused call
creates no run and raises ``ParameterTypeError`` naming the field. Runs started through a deployment are checked
by the server against the parameter schema instead (HTTP 409), whose ranges keep every integer inside 64 bits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import Flow
from prefect.exceptions import ParameterTypeError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def oversized_integer(value: Any, path: str = "") -> str | None:
    """The path of the first integer outside the signed 64-bit range in a JSON value (None when there is none)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return path or "<value>" if not INT64_MIN <= value <= INT64_MAX else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, each in items:
        if found := oversized_integer(each, f"{path}.{key}" if path else str(key)):
            return found
    return None


class ValidatedFlow(Flow):  # type: ignore[type-arg]
    """A flow whose parameters are validated (and their integers bounded) before a run is created."""

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        if self.should_validate_parameters:
            self.validate_parameters(dict(parameters))  # ParameterTypeError, naming the field
        serialized = super().serialize_parameters(parameters)
        if found := oversized_integer(serialized):
            raise ParameterTypeError(
                f"Flow run received invalid parameters:\n - {found}: must be a 64-bit integer (at most {INT64_MAX}); "
                "Prefect's server cannot list a run that stores a larger one"
            )
        return serialized


def validated_flow(**options: Any) -> Callable[[Callable[..., Any]], ValidatedFlow]:
    """``@validated_flow(name=..., log_prints=True)``: ``@flow`` whose parameters are checked before the run exists."""

    def decorate(fn: Callable[..., Any]) -> ValidatedFlow:
        return ValidatedFlow(fn=fn, **options)

    return decorate
