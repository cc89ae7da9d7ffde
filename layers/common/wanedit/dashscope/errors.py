"""The error taxonomy of the DashScope client.

Callers branch on the class, never on message text:

- ``FinalError``: the request is wrong or not allowed (4xx). Sending it again will not help.
- ``RetryableError``: nothing happened on the server (or, for reads, it does not matter); try later.
  ``ThrottledError`` is the throttling kind (429 / ``Throttling*``): keep the job queued.
  ``QuotaExhaustedError`` is the throttling that seconds will not cure (``Throttling.AllocationQuota``:
  the account's quota is used up): the client never retries it; pause, and try again much later.
- ``CreateOutcomeUnknown``: a create *may* have made a task. Do not create again before
  reconciling (list the account's tasks / query them): the reference says "Do not create
  duplicate tasks".

Every error carries ``status`` (HTTP status or None for transport errors), ``code`` (the API's
error code or None), ``message`` and ``request_id``. None of them ever holds the API key: the
client scrubs server-provided text and never puts headers into messages.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CreateOutcomeUnknown",
    "DashScopeError",
    "FinalError",
    "InvalidRequestError",
    "QuotaExhaustedError",
    "RetryableError",
    "ThrottledError",
    "classify_response",
]


class DashScopeError(Exception):
    """Base of every error the client raises for an API call."""

    retryable: bool = False
    delivered: bool | None
    """False: the request provably never reached the server (connect failed, refused before
    sending). True: the server answered. None: unknown (timeout or connection lost after sending)."""

    def __init__(
        self,
        status: int | None,
        code: str | None,
        message: str,
        request_id: str | None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, code, message, request_id)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        # Seconds the server asked us to wait (Retry-After), when it said so.
        self.retry_after = retry_after
        self.delivered = None

    def __str__(self) -> str:
        parts = [f"status={self.status}" if self.status is not None else "no HTTP response"]
        if self.code:
            parts.append(f"code={self.code}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return f"{self.message} ({', '.join(parts)})"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (type(self), self.status, self.code, self.message, self.request_id, self.retry_after),
        )


def _rebuild(
    cls: type[DashScopeError],
    status: int | None,
    code: str | None,
    message: str,
    request_id: str | None,
    retry_after: float | None,
) -> DashScopeError:
    return cls(status, code, message, request_id, retry_after=retry_after)


class RetryableError(DashScopeError):
    """Transient: the server did not act on the request (or the call is a read). Try again later."""

    retryable = True


class ThrottledError(RetryableError):
    """429 / ``Throttling*``: the service refused the request for rate or quota; it made nothing."""


class QuotaExhaustedError(ThrottledError):
    """429 ``Throttling.AllocationQuota``: the account's allocated quota is used up; it made nothing.

    Unlike a rate refusal it does not clear within seconds (a quota is raised by a person, or
    refills over a longer period), so retrying soon only adds load: the client hands it straight to
    the caller, which should stop sending for a while rather than back off and retry.
    """


class FinalError(DashScopeError):
    """The request itself is at fault (bad parameter, key, permission, balance, content...)."""

    retryable = False


class InvalidRequestError(FinalError, ValueError):
    """Refused by the client before sending (e.g. a task id that is not path-safe, an unusable key)."""


class CreateOutcomeUnknown(DashScopeError):
    """A create that may or may not have made a task (timeout after sending, 500/502/504...).

    Not ``retryable``: creating again could make a duplicate, billed task. Reconcile first.
    """

    retryable = False


QUOTA_EXHAUSTED_CODE = "Throttling.AllocationQuota"

# Codes that are final whatever the status (they are documented as 4xx; the code is the stronger
# signal if a gateway ever wraps them in another status).
_FINAL_CODES = (
    "InvalidParameter",
    "InvalidApiKey",
    "AccessDenied",
    "Arrearage",
    "DataInspectionFailed",
    "ModelNotFound",
    "UnsupportedOperation",
)


def classify_response(
    status: int,
    code: str | None,
    message: str,
    request_id: str | None,
    *,
    retry_after: float | None = None,
) -> DashScopeError:
    """The error for a non-2xx answer of a *read* call (query, list). Create and cancel refine it.

    ``Throttling.AllocationQuota`` -> QuotaExhaustedError; 429 or another ``Throttling*`` code ->
    ThrottledError; 408 and 5xx -> RetryableError; the documented final codes and any other status
    -> FinalError.
    """
    args = (status, code, message, request_id)
    if (code or "").startswith(QUOTA_EXHAUSTED_CODE):
        return QuotaExhaustedError(*args, retry_after=retry_after)
    if status == 429 or (code or "").startswith("Throttling"):
        return ThrottledError(*args, retry_after=retry_after)
    if code and code.startswith(_FINAL_CODES):
        return FinalError(*args, retry_after=retry_after)
    if status == 408 or status >= 500:
        return RetryableError(*args, retry_after=retry_after)
    return FinalError(*args, retry_after=retry_after)
