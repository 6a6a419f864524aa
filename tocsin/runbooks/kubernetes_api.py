"""HttpKubernetes: the `Kubernetes` protocol over the apps/v1 REST API, with httpx (no retries of its own).

    GET   /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale     get_scale
    PATCH /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale     set_scale (merge patch, resourceVersion)
    PATCH /apis/apps/v1/namespaces/{ns}/deployments/{name}           rollout_restart (strategic merge patch)
    GET   /apis/apps/v1/namespaces/{ns}/replicasets?labelSelector=   rollout_undo: the revisions...
    PUT   /apis/apps/v1/namespaces/{ns}/deployments/{name}           ...and the old template back, as read
    GET   /apis/apps/v1/namespaces/{ns}/deployments/{name}           rollout_status

`rollout_undo` does what `kubectl rollout undo` does: the ReplicaSets the deployment owns carry its revisions
(annotation deployment.kubernetes.io/revision); the template of the previous one (without its
pod-template-hash label) becomes the deployment's template again, and the controller rolls it out as a new
revision. Unlike kubectl it writes with PUT and the resourceVersion it read, so a concurrent change is a 409,
not a silent overwrite; it does not copy the old revision's change-cause annotation.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from tocsin.channels._http import retry_after
from tocsin.runbooks.errors import PermanentRemediationError, RetryableRemediationError
from tocsin.runbooks.kubeconfig import ClusterAccess, cluster_access_from_env
from tocsin.runbooks.kubernetes import (
    RESTARTED_AT,
    REVISION,
    ConflictError,
    RolloutChange,
    RolloutStatus,
    Scale,
    deployment_path,
    replicasets_path,
    rollout_status_of,
)

_PERMANENT_KINDS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 422: "Invalid"}
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class HttpKubernetes:
    def __init__(
        self, access: ClusterAccess, *, transport: httpx.AsyncBaseTransport | None = None, timeout: float = 10.0
    ) -> None:
        self.access = access
        self._transport = transport
        self._timeout = timeout

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HttpKubernetes:
        return cls(cluster_access_from_env(env))

    def __repr__(self) -> str:
        return f"HttpKubernetes({self.access.server!r}, {self.access.source!r})"

    def _client(self) -> httpx.AsyncClient:
        headers = {"Accept": "application/json", "User-Agent": "tocsin"}
        token = self.access.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.AsyncClient(
            base_url=self.access.server,
            headers=headers,
            auth=httpx.BasicAuth(*self.access.basic_auth) if self.access.basic_auth and not token else None,
            timeout=httpx.Timeout(self._timeout),
            # No retries inside httpx: each attempt is a Temporal activity attempt, visible in history.
            transport=self._transport or httpx.AsyncHTTPTransport(retries=0, verify=self.access.verify),
        )

    async def _call(
        self, method: str, path: str, what: str, *, body: Any = None, content_type: str = "application/json", **kw: Any
    ) -> dict[str, Any]:
        headers = {"Content-Type": content_type} if body is not None else {}
        try:
            async with self._client() as http:
                response = await http.request(method, path, json=body, headers=headers, **kw)
        except httpx.TimeoutException:
            raise RetryableRemediationError(f"Kubernetes {what}: no answer within {self._timeout:g}s") from None
        except httpx.TransportError as err:
            raise RetryableRemediationError(
                f"Kubernetes {what}: {self.access.server} unreachable ({type(err).__name__})"
            ) from None
        _raise_for_status(response, what)
        try:
            answer = response.json()
        except ValueError:
            raise RetryableRemediationError(f"Kubernetes {what}: the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise PermanentRemediationError(f"Kubernetes {what}: unexpected answer", "KubernetesRefused")
        return answer

    async def _deployment(self, namespace: str, deployment: str) -> dict[str, Any]:
        return await self._call(
            "GET", deployment_path(namespace, deployment), f"get deployment {namespace}/{deployment}"
        )

    async def get_scale(self, namespace: str, deployment: str) -> Scale:
        path = deployment_path(namespace, deployment, "scale")
        return _scale(namespace, deployment, await self._call("GET", path, f"get scale of {namespace}/{deployment}"))

    async def set_scale(
        self, namespace: str, deployment: str, replicas: int, *, resource_version: str | None = None
    ) -> Scale:
        if replicas < 0:
            raise PermanentRemediationError(f"cannot scale {namespace}/{deployment} to {replicas}", "Invalid")
        patch: dict[str, Any] = {"spec": {"replicas": replicas}}
        if resource_version:
            patch["metadata"] = {"resourceVersion": resource_version}  # a precondition: 409 if it changed
        path = deployment_path(namespace, deployment, "scale")
        what = f"scale {namespace}/{deployment} to {replicas}"
        return _scale(
            namespace, deployment, await self._call("PATCH", path, what, body=patch, content_type=MERGE_PATCH)
        )

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
        what = f"restart {namespace}/{deployment}"
        await self._call(
            "PATCH", deployment_path(namespace, deployment), what, body=patch, content_type=STRATEGIC_MERGE_PATCH
        )
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
        updated = copy.deepcopy(current)
        updated.setdefault("spec", {})["template"] = template
        updated.pop("status", None)
        what = f"undo {name} to revision {to_revision}"
        await self._call("PUT", deployment_path(namespace, deployment), what, body=updated)
        return RolloutChange(
            namespace=namespace, deployment=deployment, changed=True, revision_before=revision,
            message=f"rolled back to the template of revision {to_revision}",
        )  # fmt: skip

    async def _revisions(self, namespace: str, deployment: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
        """revision -> pod template (without pod-template-hash), from the ReplicaSets the deployment owns."""
        uid = deployment.get("metadata", {}).get("uid")
        selector = label_selector(deployment.get("spec", {}).get("selector") or {})
        what = f"list replicasets of {namespace}/{deployment.get('metadata', {}).get('name')}"
        params = {"labelSelector": selector} if selector else None
        answer = await self._call("GET", replicasets_path(namespace), what, params=params)
        found: dict[int, dict[str, Any]] = {}
        for rs in answer.get("items") or []:
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


def label_selector(selector: Mapping[str, Any]) -> str:
    """A LabelSelector object as the `labelSelector` query parameter: `app=web,tier in (a,b),!canary`."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), ",".join(expr.get("values") or [])
        parts.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": str(key)}.get(
                str(op), f"!{key}"
            )
        )
    return ",".join(parts)


def _scale(namespace: str, deployment: str, answer: Mapping[str, Any]) -> Scale:
    return Scale(
        namespace=namespace,
        deployment=deployment,
        replicas=int((answer.get("spec") or {}).get("replicas", 0)),
        current=int((answer.get("status") or {}).get("replicas", 0)),
        resource_version=str((answer.get("metadata") or {}).get("resourceVersion", "")),
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


def _raise_for_status(response: httpx.Response, what: str) -> None:
    """Kubernetes answers errors with a Status object: its reason and message name the problem."""
    if response.is_success:
        return
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
        raise ConflictError(text)
    if code == 429 or code >= 500:
        raise RetryableRemediationError(text, "KubernetesUnavailable", retry_after(response))
    raise PermanentRemediationError(text, _PERMANENT_KINDS.get(code, "KubernetesRefused"))
