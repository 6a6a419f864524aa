"""The options every incident activity runs with: explicit timeouts, bounded retries, permanent errors. Pure."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy

with workflow.unsafe.imports_passed_through():
    from tocsin.policy.schema import Policy
# Errors an adapter raises for failures no retry can fix (a 4xx, a bad address).
PERMANENT_ERRORS = ["PermanentDeliveryError", "ValueError"]


def activity_options(policy: Policy, summary: str, priority: int | None = None) -> workflow.ActivityConfig:
    """Bounded retries with backoff: a dead channel fails the step after a few minutes, never forever. Without
    a `priority` key the activity takes its workflow's."""
    config = workflow.ActivityConfig(
        start_to_close_timeout=policy.lifecycle.delivery_timeout,
        retry_policy=RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(minutes=1),
            maximum_attempts=policy.lifecycle.delivery_attempts,
            non_retryable_error_types=PERMANENT_ERRORS,
        ),
        summary=summary[:200],
    )
    if priority is not None:
        config["priority"] = Priority(priority_key=priority)
    return config
