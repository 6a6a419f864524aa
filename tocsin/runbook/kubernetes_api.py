"""HttpKubernetes: the `Kubernetes` protocol over the apps/v1 API, with lightkube's AsyncClient.

    get      Deployment.Scale   get_scale
    patch    Deployment.Scale   set_scale (merge patch carrying metadata.resourceVersion: a precondition)
    patch    Deployment         rollout_restart (strategic merge patch of the restartedAt annotation)
    list     ReplicaSet         rollout_undo: the revisions...
    replace  Deployment         ...and the old template back, as read (PUT)
    get      Deployment         rollout_status

`rollout_undo` does what `kubectl rollout undo` does: the ReplicaSets the deployment owns carry its revisions
(annotation deployment.kubernetes.io/revision); the template of the previous one (without its
pod-template-hash label) becomes the deployment's template again, and the controller rolls it out as a new
revision. Unlike kubectl it writes with PUT and the resourceVersion it read, so a concurrent change is a 409,
not a silent overwrite; it does not copy the old revision's change-cause annotation.

Deployments and ReplicaSets are lightkube's generic resources, the JSON objects as the API server sent them:
a typed model would drop the fields it does not know (newer than lightkube's models), and the PUT would then
clear them. Writes carry fieldManager=tocsin, so the objects' managedFields say who changed them.

No retries of its own (each attempt is a Temporal activity attempt, in its history): lightkube sends each
request once, on httpx2's default transport (retries=0), and every failure is raised as the errors of
tocsin.runbook.errors. The one resend is lightkube's authentication, as client-go's: a 401 re-reads the token
file or runs the exec plugin again and sends once more, since a request refused as unauthenticated was not
executed.
"""

from __future__ import annotations

import copy
import ssl
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import httpx2
import msgspec
from lightkube import AsyncClient, operators
from lightkube.core.client import LabelSelector
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.autoscaling_v1 import Scale as ScaleObject
from lightkube.types import PatchType

from tocsin.channels._http import retry_after
from tocsin.runbook.errors import PermanentRemediationError, RemediationError, RetryableRemediationError
from tocsin.runbook.guardrails import kubernetes_name_problem
from tocsin.runbook.kubeconfig import ClusterAccess, KubernetesConfigError, cluster_access_from_env, credential_problem
from tocsin.runbook.kubernetes import (
    RESTARTED_AT,
    REVISION,
    ConflictError,
    RolloutChange,
    RolloutStatus,
    Scale,
    rollout_status_of,
)

T = TypeVar("T")
Deployment = create_namespaced_resource("apps", "v1", "Deployment", "deployments")
ReplicaSet = create_namespaced_resource("apps", "v1", "ReplicaSet", "replicasets")
_PERMANENT_KINDS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 422: "Invalid"}
_OPERATORS: dict[str, Callable[[list[str]], operators.Operator[Any]]] = {
    "In": operators.in_,
    "NotIn": operators.not_in,
    "Exists": lambda values: operators.exists(),
    "DoesNotExist": lambda values: operators.not_exists(),
}


class HttpKubernetes:
    def __init__(self, access: ClusterAccess, *, timeout: float = 10.0) -> None:
        self.access = access
        self._timeout = timeout
        try:
            # One client for the worker's life: its connections, and the token an exec plugin printed, are reused.
            self._client = AsyncClient(access.config, timeout=httpx2.Timeout(timeout), field_manager="tocsin")
        except OSError as err:  # ssl.SSLError included: a CA or client certificate that does not load
            raise KubernetesConfigError(f"{access.source}: cannot load its certificates: {err}") from None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HttpKubernetes:
        return cls(cluster_access_from_env(env))

    def __repr__(self) -> str:
        return f"HttpKubernetes({self.access.server!r}, {self.access.source!r})"

    async def _call(self, what: str, request: Awaitable[T]) -> T:
        try:
            return await request
        except httpx2.HTTPStatusError as err:  # lightkube's ApiError is one
            raise _refused(err.response, what) from None
        except httpx2.TimeoutException:
            raise RetryableRemediationError(f"Kubernetes {what}: no answer within {self._timeout:g}s") from None
        except (httpx2.TransportError, ssl.SSLError) as err:
            # A TLS alert after the handshake (a client certificate refused) reaches here as ssl's own error.
            reason = f"{type(err).__name__}: {err.reason}" if isinstance(err, ssl.SSLError) else type(err).__name__
            raise RetryableRemediationError(f"Kubernetes {what}: {self.access.server} unreachable ({reason})") from None
        except Exception as err:
            answer = _unread_answer(err)
            if answer is not None:
                raise _refused(answer, what) from None
            if isinstance(err, msgspec.DecodeError):
                raise RetryableRemediationError(f"Kubernetes {what}: the answer is not the expected JSON") from None
            problem = credential_problem(self.access, err)
            if problem is None:
                raise
            raise problem from None

    async def _deployment(self, namespace: str, deployment: str) -> dict[str, Any]:
        what = f"get deployment {namespace}/{deployment}"
        name, ns = _checked("deployment", deployment), _checked("namespace", namespace)
        return dict(await self._call(what, self._client.get(Deployment, name, namespace=ns)))

    async def get_scale(self, namespace: str, deployment: str) -> Scale:
        name, ns = _checked("deployment", deployment), _checked("namespace", namespace)
        what = f"get scale of {namespace}/{deployment}"
        return _scale(
            namespace, deployment, await self._call(what, self._client.get(Deployment.Scale, name, namespace=ns))
        )

    async def set_scale(
        self, namespace: str, deployment: str, replicas: int, *, resource_version: str | None = None
    ) -> Scale:
        if replicas < 0:
            raise PermanentRemediationError(f"cannot scale {namespace}/{deployment} to {replicas}", "Invalid")
        name, ns = _checked("deployment", deployment), _checked("namespace", namespace)
        patch: dict[str, Any] = {"spec": {"replicas": replicas}}
        if resource_version:
            patch["metadata"] = {"resourceVersion": resource_version}  # a precondition: 409 if it changed
        write = self._client.patch(Deployment.Scale, name, patch, namespace=ns, patch_type=PatchType.MERGE)
        return _scale(namespace, deployment, await self._call(f"scale {namespace}/{deployment} to {replicas}", write))

    async def rollout_restart(self, namespace: str, deployment: str, *, at: datetime) -> RolloutChange:
        if at.tzinfo is None:
            raise ValueError("rollout_restart needs an aware datetime")
        stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        current = await self._deployment(namespace, deployment)
        revision = _revision(current.get("metadata", {}))
        spec = current.get("spec", {})
        _refuse_paused(spec, f"restart {namespace}/{deployment}")
        annotations = (spec.get("template", {}).get("metadata") or {}).get("annotations") or {}
        if annotations.get(RESTARTED_AT) == stamp:
            return RolloutChange(
                namespace=namespace, deployment=deployment, changed=False, revision_before=revision,
                message=f"already restarted at {stamp}",
            )  # fmt: skip
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        # Names checked by _deployment above.
        write = self._client.patch(Deployment, deployment, patch, namespace=namespace, patch_type=PatchType.STRATEGIC)
        await self._call(f"restart {namespace}/{deployment}", write)
        return RolloutChange(
            namespace=namespace, deployment=deployment, changed=True, revision_before=revision,
            message=f"restarted at {stamp}",
        )  # fmt: skip

    async def rollout_undo(
        self, namespace: str, deployment: str, *, to_revision: int | None = None, if_revision: int | None = None
    ) -> RolloutChange:
        name = f"{namespace}/{deployment}"
        current = await self._deployment(namespace, deployment)
        meta, spec = current.get("metadata", {}), current.get("spec", {})
        revision = _revision(meta)

        def unchanged(message: str) -> RolloutChange:
            return RolloutChange(
                namespace=namespace, deployment=deployment, changed=False, revision_before=revision, message=message
            )

        if if_revision is not None and revision != if_revision:
            return unchanged(f"{name} is at revision {revision}, not {if_revision}: nothing to undo")
        _refuse_paused(spec, f"undo {name}")
        history = await self._revisions(namespace, current)
        if to_revision is None:
            older = [r for r in history if revision is None or r < revision]
            if not older:
                raise PermanentRemediationError(f"undo {name}: no previous revision in its history", "NoHistory")
            to_revision = max(older)
        template = history.get(to_revision)
        if template is None:
            known = ", ".join(str(r) for r in sorted(history)) or "none"
            raise PermanentRemediationError(f"undo {name}: no revision {to_revision} (known: {known})", "NoHistory")
        if template == _without_hash(spec.get("template", {})):
            return unchanged(f"{name} already runs the template of revision {to_revision}")
        updated = copy.deepcopy(current)  # metadata.resourceVersion as read: the PUT's precondition
        updated.setdefault("spec", {})["template"] = template
        updated.pop("status", None)
        updated["metadata"]["namespace"] = namespace  # lightkube would otherwise fall back to the context's
        write = self._client.replace(Deployment(**updated))
        await self._call(f"undo {name} to revision {to_revision}", write)
        return RolloutChange(
            namespace=namespace, deployment=deployment, changed=True, revision_before=revision,
            message=f"rolled back to the template of revision {to_revision}",
        )  # fmt: skip

    async def _revisions(self, namespace: str, deployment: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
        """revision -> pod template (without pod-template-hash), from the ReplicaSets the deployment owns."""
        uid = deployment.get("metadata", {}).get("uid")
        labels = labels_of(deployment.get("spec", {}).get("selector") or {})
        what = f"list replicasets of {namespace}/{deployment.get('metadata', {}).get('name')}"
        ns = _checked("namespace", namespace)

        async def listed() -> list[dict[str, Any]]:
            return [dict(rs) async for rs in self._client.list(ReplicaSet, namespace=ns, labels=labels or None)]

        found: dict[int, dict[str, Any]] = {}
        for rs in await self._call(what, listed()):
            meta = rs.get("metadata", {})
            owners = meta.get("ownerReferences") or []
            if uid and not any(o.get("uid") == uid and o.get("controller") for o in owners):
                continue
            revision = _revision(meta)
            if revision is not None:
                found[revision] = _without_hash(rs.get("spec", {}).get("template", {}))
        return found

    async def rollout_status(self, namespace: str, deployment: str) -> RolloutStatus:
        return rollout_status_of(await self._deployment(namespace, deployment))


def labels_of(selector: Mapping[str, Any]) -> LabelSelector:
    """A Deployment's label selector as lightkube's `labels=`. One constraint per key: the ReplicaSets listed are
    filtered again by their controller's uid, so a selector narrowed less than the deployment's is still right."""
    labels: LabelSelector = {str(k): str(v) for k, v in (selector.get("matchLabels") or {}).items()}
    for expr in selector.get("matchExpressions") or []:
        operator = _OPERATORS.get(str(expr.get("operator")))
        if operator is not None:
            labels[str(expr.get("key"))] = operator([str(v) for v in expr.get("values") or []])
    return labels


def _checked(kind: str, value: str) -> str:
    # Defence in depth: lightkube puts names in URL paths as they are, so they are validated again right here.
    problem = kubernetes_name_problem(kind, value)
    if problem:
        raise PermanentRemediationError(problem, "Invalid")
    return value


def _scale(namespace: str, deployment: str, answer: ScaleObject) -> Scale:
    return Scale(
        namespace=namespace,
        deployment=deployment,
        replicas=(answer.spec.replicas if answer.spec else None) or 0,
        current=answer.status.replicas if answer.status else 0,
        resource_version=(answer.metadata.resourceVersion if answer.metadata else None) or "",
    )


def _revision(meta: Mapping[str, Any]) -> int | None:
    value = (meta.get("annotations") or {}).get(REVISION)
    return int(value) if value is not None and str(value).isdigit() else None


def _without_hash(template: Mapping[str, Any]) -> dict[str, Any]:
    clean = copy.deepcopy(dict(template))
    labels = (clean.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop("pod-template-hash", None)
    return clean


def _refuse_paused(spec: Mapping[str, Any], what: str) -> None:
    if spec.get("paused"):
        raise PermanentRemediationError(f"{what}: the deployment is paused (resume it first)", "Paused")


def _unread_answer(err: BaseException) -> httpx2.Response | None:
    """The error answer lightkube failed on while making it an ApiError (from a body that is no Status, or
    without Content-Type): `err` was raised while it handled that answer's HTTPStatusError."""
    cause = err.__context__
    while cause is not None and not isinstance(cause, httpx2.HTTPStatusError):
        cause = cause.__context__
    return cause.response if cause is not None else None


def _refused(response: httpx2.Response, what: str) -> RemediationError:
    """Kubernetes answers errors with a Status object: its reason and message name the problem."""
    code = response.status_code
    reason, message = "", ""
    try:
        status = response.json()
        if isinstance(status, dict):
            reason, message = str(status.get("reason") or ""), str(status.get("message") or "")
    except ValueError:
        message = " ".join(response.text.split())[:200]
    text = f"Kubernetes {what}: {code}" + (f" {reason}" if reason else "") + (f": {message}" if message else "")
    if code == 409:
        return ConflictError(text)
    if code == 429 or code >= 500:
        # retry_after reads an httpx.Response; lightkube's is httpx2's: only the headers matter to it.
        delay = retry_after(httpx.Response(code, headers=response.headers.multi_items()))
        return RetryableRemediationError(text, "KubernetesUnavailable", delay)
    return PermanentRemediationError(text, _PERMANENT_KINDS.get(code, "KubernetesRefused"))
