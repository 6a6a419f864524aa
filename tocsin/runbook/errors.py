"""The errors runbook actions raise, and how their activities should turn them into Temporal's retry semantics.

    PermanentRemediationError  -> ApplicationError(non_retryable=True, type=error.kind): no retry can fix it
                                  (403 forbidden, 404 no such deployment, 422 invalid, a missing secret).
    RetryableRemediationError  -> ApplicationError(type=error.kind, next_retry_delay=error.retry_after):
                                  409 conflict (someone else changed the object: read again, decide again),
                                  429, 5xx, timeouts, refused connections.

Messages name the system, the object and the reason, and never carry a secret (tokens, secret header
values and the URLs taken from the environment are redacted before an error is built).
"""

from __future__ import annotations


class RemediationError(Exception):
    """Base of the runbook actions' errors. `kind` is a short machine name (ApplicationError.type)."""

    def __init__(self, message: str, kind: str = "RemediationFailed") -> None:
        super().__init__(message)
        self.kind = kind


class PermanentRemediationError(RemediationError):
    """The same request will fail the same way: do not retry, compensate and escalate."""


class RetryableRemediationError(RemediationError):
    """Try again (after `retry_after` seconds when the server said so)."""

    def __init__(self, message: str, kind: str = "RemediationUnavailable", retry_after: float | None = None) -> None:
        super().__init__(message, kind)
        self.retry_after = retry_after


class GuardrailViolation(PermanentRemediationError):
    """A step would leave what the runbook's guardrails allow (a namespace not on the list, ...)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "GuardrailViolation")
