"""One exception hierarchy for every provider.

Each error says whether retrying is safe (``retryable``). Transport failures are split in two, because that
split is what decides whether a paid job could be paid for twice:

- ``RequestNotSentError``: the request never reached the provider (connect failure, pool timeout). Safe to retry.
- ``OutcomeUnknownError``: the request may have been accepted (read timeout, connection cut mid-answer, or a
  5xx answer to a paid submit). Retryable only when the action is idempotent (reads, or a submit carrying an
  idempotency token).

Only an answer that proves nothing was created is a definite refusal of a paid submit: 4xx parameter or auth
errors, throttling, a request that never left. A provider-side failure after the request arrived (500, 503,
504 ...) proves nothing: a gateway timeout in front of a backend that accepted the job looks exactly the same.
"""

from __future__ import annotations

from typing import Any


class ProviderError(Exception):
    """Base class. Never put credentials in ``message``: it reaches logs and the Prefect UI."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        action: str | None = None,
        http_status: int | None = None,
        code: str | int | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.action = action
        self.http_status = http_status
        self.code = code
        self.request_id = request_id
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        where = f"{self.provider}:{self.action}" if self.action else self.provider
        parts = [f"[{where}]"]
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        if self.code not in (None, ""):
            parts.append(str(self.code))
        parts.append(self.message)
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        return " ".join(parts)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep keyword-only state through pickling (Prefect persists exceptions in failed states).
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))


def _rebuild(cls: type[ProviderError], message: str, state: dict[str, Any]) -> ProviderError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class AuthError(ProviderError):
    """Bad signature, unknown key, clock skew, forbidden. Retrying cannot help."""


class InvalidRequestError(ProviderError):
    """The provider refused the parameters (4xx). Retrying the same request cannot help."""


class RequestValidationError(InvalidRequestError, ValueError):
    """Refused locally, before anything was sent: names the field and the rule that failed."""

    def __init__(self, field: str, rule: str, *, provider: str, action: str | None = None) -> None:
        super().__init__(f"{field}: {rule}", provider=provider, action=action)
        self.field = field
        self.rule = rule


class ContentRejectedError(InvalidRequestError):
    """Content moderation refused the input (Jimeng 50411/50412/50413...)."""


class NotFoundError(ProviderError):
    """The job, project or resource does not exist (or no longer does)."""


class ThrottledError(ProviderError):
    """Rate or concurrency limit hit. Always retryable; ``retry_after`` is seconds when the provider said."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(ProviderError):
    """The provider failed internally (5xx or a documented retryable code)."""

    retryable = True


class RetryableRefusalError(ServerError):
    """The vendor answered a paid submit with its *own* error body carrying a code its documentation marks
    retryable on submit (Jimeng 50500/50501, the gateway's saturation 503 ...): a definite answer that no job
    was created. The engine records it as refused and retries in place with backoff (``CLIPFLOW_RETRY_POLICY=
    vendor``), or treats it as outcome-unknown (``strict``). An answer *without* the vendor's body (a proxy
    502/504, a timeout, a cut connection) is never this: it stays ``OutcomeUnknownError``."""


class JobFailedError(ProviderError):
    """A job ran and ended in failure (the submit itself was fine)."""


class TransportError(ProviderError):
    """No usable HTTP answer."""


class RequestNotSentError(TransportError):
    """The request did not leave (or was not accepted by the peer's TCP stack): safe to retry anything."""

    retryable = True


class OutcomeUnknownError(TransportError):
    """The request may have been processed. A paid submit must be reconciled, not blindly retried."""


class UnexpectedResponseError(ProviderError):
    """The answer did not have the documented shape."""


def server_failure(message: str, *, idempotent: bool, **kwargs: Any) -> ProviderError:
    """The provider failed after the request arrived (5xx, an internal-error code).

    Repeating an idempotent request is harmless, so that is a retryable ``ServerError``. For a paid submit that
    is not idempotent the job may exist and be billed: ``OutcomeUnknownError``, never retried blindly.
    """
    if idempotent:
        return ServerError(message, **kwargs)
    return OutcomeUnknownError(
        f"provider failed after receiving the paid request, the job may exist: {message}", retryable=False, **kwargs
    )
