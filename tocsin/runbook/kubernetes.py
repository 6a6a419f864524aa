"""Kubernetes for runbooks: the `Kubernetes` protocol the activities use, and the pure helpers around it.

The protocol is implemented by HttpKubernetes (tocsin.runbook.kubernetes_api) on lightkube's async client;
which cluster, and the credentials, come from tocsin.runbook.kubeconfig.

Errors (tocsin.runbook.errors): 400/401/403/404/422 are permanent; 409 (someone changed the object since it
was read: optimistic concurrency on resourceVersion) is retryable as kind "Conflict", and a retry reads again;
429 and 5xx are retryable after the server's Retry-After; timeouts and refused connections are retryable;
configuration and credential problems (KubernetesConfigError) are permanent.

Retries and at-least-once activities: every call is idempotent when used as the helpers here use it.
`rollout_restart` takes the restart time from the caller (the workflow's clock), so a repeated call patches
the same annotation and starts no second rollout; `rollout_undo(if_revision=N)` does nothing once the
deployment has left revision N (a repeated undo never undoes the undo); `apply_scale` writes an absolute
count computed once by the workflow, and treats a conflict that already shows that count as done.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from tocsin.runbook.errors import RetryableRemediationError

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REVISION = "deployment.kubernetes.io/revision"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scale(_Model):
    namespace: str
    deployment: str
    replicas: int  # what the spec asks for
    current: int = 0  # what the status reports running
    resource_version: str = ""


class RolloutStatus(_Model):
    namespace: str
    deployment: str
    revision: int | None = None
    replicas: int = 0
    updated: int = 0
    ready: int = 0
    available: int = 0
    done: bool = False
    failed: bool = False
    message: str = ""


class RolloutChange(_Model):
    namespace: str
    deployment: str
    changed: bool
    revision_before: int | None = None
    message: str = ""


class Kubernetes(Protocol):
    """What runbook steps do to a Deployment. Implemented by HttpKubernetes (tocsin.runbook.kubernetes_api)."""

    async def get_scale(self, namespace: str, deployment: str) -> Scale: ...

    async def set_scale(
        self, namespace: str, deployment: str, replicas: int, *, resource_version: str | None = None
    ) -> Scale:
        """Set spec.replicas; with `resource_version`, only if nobody changed the object since (else 409)."""
        ...

    async def rollout_restart(self, namespace: str, deployment: str, *, at: datetime) -> RolloutChange: ...

    async def rollout_undo(
        self, namespace: str, deployment: str, *, to_revision: int | None = None, if_revision: int | None = None
    ) -> RolloutChange:
        """Back to `to_revision` (default: the one before the current); nothing when the deployment is no longer
        at `if_revision`, or already has that template."""
        ...

    async def rollout_status(self, namespace: str, deployment: str) -> RolloutStatus: ...


class ConflictError(RetryableRemediationError):
    """The object changed between read and write (409). Read again and decide again."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "Conflict")


def rollout_status_of(deployment: Mapping[str, Any]) -> RolloutStatus:
    """`kubectl rollout status`, from a Deployment object: done when the controller has seen the latest spec
    and every replica is updated and available; failed when its progress deadline was exceeded."""
    meta, spec, status = deployment.get("metadata", {}), deployment.get("spec", {}), deployment.get("status", {})
    wanted = int(spec.get("replicas", 1))
    updated, total = int(status.get("updatedReplicas", 0)), int(status.get("replicas", 0))
    available, ready = int(status.get("availableReplicas", 0)), int(status.get("readyReplicas", 0))
    revision = (meta.get("annotations") or {}).get(REVISION)
    base = {
        "namespace": str(meta.get("namespace", "")),
        "deployment": str(meta.get("name", "")),
        "revision": int(revision) if revision and str(revision).isdigit() else None,
        "replicas": wanted,
        "updated": updated,
        "ready": ready,
        "available": available,
    }
    if int(meta.get("generation", 0)) > int(status.get("observedGeneration", 0)):
        return RolloutStatus(**base, message="waiting for the deployment spec update to be observed")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return RolloutStatus(**base, failed=True, message=f"rollout failed: {condition.get('message', '')}")
    if updated < wanted:
        return RolloutStatus(**base, message=f"{updated} of {wanted} new replicas have been updated")
    if total > updated:
        return RolloutStatus(**base, message=f"{total - updated} old replicas are pending termination")
    if available < updated:
        return RolloutStatus(**base, message=f"{available} of {updated} updated replicas are available")
    return RolloutStatus(**base, done=True, message="successfully rolled out")


async def apply_scale(kubernetes: Kubernetes, target: int, based_on: Scale) -> Scale:
    """Write `target` replicas if the deployment is still as `based_on` read it. A conflict whose fresh read
    already shows `target` is success (a repeated attempt, or someone else did the same); any other conflict
    raises ConflictError for the caller to read again and decide again."""
    if based_on.replicas == target:
        return based_on
    try:
        return await kubernetes.set_scale(
            based_on.namespace, based_on.deployment, target, resource_version=based_on.resource_version or None
        )
    except ConflictError:
        fresh = await kubernetes.get_scale(based_on.namespace, based_on.deployment)
        if fresh.replicas == target:
            return fresh
        raise ConflictError(
            f"deployment {based_on.namespace}/{based_on.deployment} changed while scaling: it was "
            f"{based_on.replicas}, is {fresh.replicas} now (wanted {target})"
        ) from None


async def wait_for_rollout(
    kubernetes: Kubernetes,
    namespace: str,
    deployment: str,
    *,
    within: float,
    interval: float = 5.0,
    on_progress: Callable[[RolloutStatus], None] = lambda status: None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> RolloutStatus:
    """Poll rollout_status until done, failed or `within` seconds have passed; `on_progress` gets every status (an
    activity passes `activity.heartbeat`). Returns the last status: the caller decides what not-done means."""
    deadline = time.monotonic() + within
    while True:
        status = await kubernetes.rollout_status(namespace, deployment)
        on_progress(status)
        if status.done or status.failed or time.monotonic() >= deadline:
            return status
        await sleep(min(interval, max(deadline - time.monotonic(), 0.0)))
