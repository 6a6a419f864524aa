"""The runbook's side effects: Kubernetes, admin endpoints, Prometheus, and the guard. Each call idempotent.

The worker holds the credentials (kubeconfig or the in-cluster service account, secret headers, the
Prometheus URL) and its own policy; the workflow only names what to do. Every limit (the namespace
allow-list, the replica ceiling, the rate limit, an http step's secrets, URL base and reachable addresses) is
read from the worker's policy by runbook and step name (tocsin.runbook.authorize), never from the call.

Remediation errors become Temporal's retry semantics here: permanent (403, 404, a namespace off the
allow-list) is non-retryable so the runbook compensates at once; retryable (409, 429, 5xx, timeouts)
retries, after the server's Retry-After when it gave one."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import TypeVar

from temporalio import activity
from temporalio.client import Client
from temporalio.common import Priority, WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from tocsin.channels.vendor_settings import setting
from tocsin.incident.contracts import INCIDENT_TASK_QUEUE
from tocsin.policy.priority import RUNBOOK_GUARD
from tocsin.policy.schema import Policy
from tocsin.prometheus import prometheus_url_from_env
from tocsin.runbook.authorize import allowed_namespaces, authorized_http, policy_runbook, scale_ceiling
from tocsin.runbook.contracts import (
    HttpCall,
    Preflight,
    PreflightAnswer,
    RolloutCall,
    RolloutResult,
    ScaleApply,
    ScaleRead,
    VerifyQuery,
)
from tocsin.runbook.errors import (
    GuardrailViolation,
    PermanentRemediationError,
    RemediationError,
    RetryableRemediationError,
)
from tocsin.runbook.guard_contracts import GUARD_WORKFLOW_ID, AcquireAnswer, AcquireRequest, GuardState
from tocsin.runbook.guardrails import check_namespace
from tocsin.runbook.http_action import HttpResult, execute_http
from tocsin.runbook.kubernetes import Kubernetes, Scale, apply_scale, wait_for_rollout
from tocsin.runbook.kubernetes_api import HttpKubernetes
from tocsin.runbook.verify import Sample
from tocsin.runbook.verify_query import query_prometheus

T = TypeVar("T")


async def _translated(call: Awaitable[T]) -> T:
    try:
        return await call
    except PermanentRemediationError as err:
        raise ApplicationError(str(err), type=err.kind, non_retryable=True) from None
    except RetryableRemediationError as err:
        delay = timedelta(seconds=err.retry_after) if err.retry_after else None
        raise ApplicationError(str(err), type=err.kind, next_retry_delay=delay) from None
    except RemediationError as err:
        raise ApplicationError(str(err), type=err.kind) from None


class RunbookActivities:
    def __init__(
        self,
        policy: Policy,
        kubernetes: Callable[[], Kubernetes] | None = None,
        env: Mapping[str, str] | None = None,
        prometheus_url: str | None = None,
    ) -> None:
        self._policy = policy
        self._env = os.environ if env is None else env
        self._make_kubernetes = kubernetes or (lambda: HttpKubernetes.from_env(self._env))
        self._kubernetes: Kubernetes | None = None
        self._prometheus_url = prometheus_url

    def _cluster(self) -> Kubernetes:
        # Built on first use: a worker without cluster credentials starts, and only Kubernetes steps fail.
        if self._kubernetes is None:
            try:
                self._kubernetes = self._make_kubernetes()
            except (OSError, ValueError) as err:  # a kubeconfig that cannot be read or parsed
                raise PermanentRemediationError(f"no Kubernetes credentials: {err}", "NoCluster") from None
        return self._kubernetes

    @activity.defn(name="runbook_preflight")
    async def preflight(self, needs: Preflight) -> PreflightAnswer:
        missing = []
        if needs.kubernetes:
            try:
                self._cluster()
            except RemediationError as err:
                missing.append(f"Kubernetes ({err})")
        if needs.prometheus and not (self._prometheus_url or prometheus_url_from_env(self._env)):
            missing.append("Prometheus (TOCSIN_PROMETHEUS_URL)")
        missing += [name for name in needs.settings if not setting(self._env, name)]
        return PreflightAnswer(missing=missing)

    @activity.defn(name="runbook_get_scale")
    async def get_scale(self, call: ScaleRead) -> Scale:
        async def run() -> Scale:
            check_namespace(call.namespace, allowed_namespaces(self._policy, call.runbook))
            return await self._cluster().get_scale(call.namespace, call.deployment)

        return await _translated(run())

    @activity.defn(name="runbook_apply_scale")
    async def apply_scale(self, call: ScaleApply) -> RolloutResult:
        async def run() -> RolloutResult:
            check_namespace(call.based_on.namespace, allowed_namespaces(self._policy, call.runbook))
            ceiling = scale_ceiling(self._policy, call.runbook, call.step)
            if ceiling is not None and call.target > ceiling:
                raise GuardrailViolation(f"{call.target} replicas is above the policy's ceiling of {ceiling}")
            cluster = self._cluster()
            # Writes only if the deployment is still as the workflow read it; a retry after success is a no-op.
            done = await apply_scale(cluster, call.target, call.based_on)
            detail = f"{done.namespace}/{done.deployment}: {call.based_on.replicas} → {done.replicas} replicas"
            if not call.wait_for_rollout:
                return RolloutResult(changed=done.replicas != call.based_on.replicas, detail=detail)
            status = await wait_for_rollout(
                cluster, done.namespace, done.deployment, within=call.rollout_within, on_progress=_heartbeat
            )
            return RolloutResult(
                changed=True, revision=status.revision, done=status.done, detail=f"{detail}; {status.message}"
            )

        return await _translated(run())

    @activity.defn(name="runbook_rollout")
    async def rollout(self, call: RolloutCall) -> RolloutResult:
        async def run() -> RolloutResult:
            check_namespace(call.namespace, allowed_namespaces(self._policy, call.runbook))
            cluster = self._cluster()
            if call.action == "status":
                status = await cluster.rollout_status(call.namespace, call.deployment)
                return RolloutResult(changed=False, revision=status.revision, done=status.done, detail=status.message)
            if call.action == "restart":
                # `at` is workflow time: a retried restart finds the same restartedAt and starts no second rollout.
                change = await cluster.rollout_restart(call.namespace, call.deployment, at=call.at)
            else:
                change = await cluster.rollout_undo(
                    call.namespace, call.deployment, to_revision=call.to_revision, if_revision=call.if_revision
                )
            if not call.wait_for_rollout:
                return RolloutResult(changed=change.changed, revision=change.revision_before, detail=change.message)
            status = await wait_for_rollout(
                cluster, call.namespace, call.deployment, within=call.rollout_within, on_progress=_heartbeat
            )
            if status.failed:
                raise PermanentRemediationError(status.message, "RolloutFailed")
            return RolloutResult(
                changed=change.changed, revision=status.revision, done=status.done, detail=status.message
            )

        return await _translated(run())

    @activity.defn(name="runbook_http")
    async def http(self, call: HttpCall) -> HttpResult:
        async def run() -> HttpResult:
            step = authorized_http(self._policy, call.runbook, call.step)
            return await execute_http(step, env=self._env, idempotency_key=call.idempotency_key)

        return await _translated(run())

    @activity.defn(name="runbook_query_prometheus")
    async def query_prometheus(self, call: VerifyQuery) -> list[Sample]:
        url = self._prometheus_url or prometheus_url_from_env(self._env)
        if not url:
            raise ApplicationError(
                "TOCSIN_PROMETHEUS_URL is not set: a verify step cannot check anything",
                type="NoPrometheus",
                non_retryable=True,
            )
        return await _translated(query_prometheus(url, call.query, call.query_timeout))


def _heartbeat(status: object) -> None:
    # Long rollouts heartbeat, so a dead worker is noticed in a heartbeat timeout, not the rollout's.
    activity.heartbeat(str(getattr(status, "message", "")))


class GuardActivities:
    """Asks the runbook guard for a service, starting the guard the first time it is needed. The rate limit
    is the worker's policy's for the runbook, whatever the request says."""

    def __init__(self, client: Client, policy: Policy) -> None:
        self.client = client
        self._policy = policy

    @activity.defn(name="runbook_acquire")
    async def acquire(self, request: AcquireRequest) -> AcquireAnswer:
        try:
            limit = policy_runbook(self._policy, request.runbook).guardrails.rate_limit
        except GuardrailViolation as err:
            return AcquireAnswer(granted=False, reason=str(err))
        request = request.model_copy(
            update={"max_runs": limit.max_runs if limit else None, "per": limit.per if limit else None}
        )
        handle = await self.client.start_workflow(
            "RunbookGuardWorkflow",
            GuardState(),
            id=GUARD_WORKFLOW_ID,
            task_queue=INCIDENT_TASK_QUEUE,
            # It gates remediation, not pages: after every incident's pages.
            priority=Priority(priority_key=RUNBOOK_GUARD),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary="Runbook guard: one runbook per service, rate limits",
        )
        info = activity.info()
        # The same update id on every attempt: the guard answers a retried request once.
        update_id = f"{info.workflow_id}/{info.activity_id}"
        answer: AcquireAnswer = await handle.execute_update("acquire", request, id=update_id, result_type=AcquireAnswer)
        return answer
