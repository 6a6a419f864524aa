"""A stateful fake of the Kubernetes apps/v1 API on a VendorServer: Deployments, their scale subresource and
the ReplicaSets that carry their revisions, answering errors with `Status` objects as the API server does.

    with VendorServer() as server:
        cluster = FakeKubernetes(server, token="t0ken")
        cluster.add_deployment("production", "checkout", replicas=3)
        ... HttpKubernetes(token_access(server.url, "t0ken")) ...
        assert cluster.deployment("production", "checkout")["spec"]["replicas"] == 6

What it plays: bearer-token auth (401, so a test knows which credential got through), namespaces the service
account may not touch (403), missing objects (404), resourceVersion preconditions on PATCH and PUT (409),
invalid replicas (422); errors are `Status` objects labelled application/json, as the API server's are. Every
write bumps the resourceVersion and, for spec changes, the generation. A template change is "rolled out" as the
deployment controller would: the ReplicaSet with that template (new, or an old one revived) gets the next
revision.
`rollout_reads` keeps a rollout in progress for that many reads of the deployment.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from lightkube import SingleConfig
from lightkube.config.models import Cluster, Context, User

from tests.support.vendor_server import Recorded, Reply, VendorServer
from tocsin.runbook.kubeconfig import ClusterAccess

BASE = "/apis/apps/v1/namespaces/{namespace}"
REVISION = "deployment.kubernetes.io/revision"


def token_access(server: str, token: str) -> ClusterAccess:
    """The fake cluster at `server`, with a bearer token: what a kubeconfig with `token:` loads to."""
    config = SingleConfig("test", Context(cluster="test", user="test"), Cluster(server=server), User(token=token))
    return ClusterAccess(config, "test")


def status(code: int, reason: str, message: str) -> Reply:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    # The API server's exact Content-Type: lightkube reads the Status into its ApiError only for that one.
    headers = {"Content-Type": "application/json"}
    return Reply(code, json={**body, "message": message, "reason": reason, "code": code}, headers=headers)


def merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7386); for the maps these tests patch, strategic merge does the same."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def _hash(template: dict[str, Any]) -> str:
    clean = copy.deepcopy(template)
    clean.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
    return hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()[:10]


class FakeKubernetes:
    def __init__(self, server: VendorServer, token: str = "t0ken", forbidden: tuple[str, ...] = ("kube-system",)):
        self.token = token
        self.forbidden = forbidden
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.replicasets: dict[tuple[str, str], dict[str, Any]] = {}
        self.rollout_reads = 0
        self._pending: dict[tuple[str, str], int] = {}
        self._version = 100
        deployment = BASE + "/deployments/{name}"
        for method in ("GET", "PATCH", "PUT"):
            server.on(method, deployment, self._guarded(self._deployment))
        for method in ("GET", "PATCH"):
            server.on(method, deployment + "/scale", self._guarded(self._scale))
        server.on("GET", BASE + "/replicasets", self._guarded(self._replicasets))

    # -- test set-up and inspection --------------------------------------------------------------------

    def add_deployment(self, namespace: str, name: str, replicas: int = 2, image: str = "app:1") -> dict[str, Any]:
        template = {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": name, "image": image}]},
        }
        self.deployments[(namespace, name)] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()), "generation": 1},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template},
        }
        self._rolled_out(namespace, name)
        return self.deployment(namespace, name)

    def deploy_image(self, namespace: str, name: str, image: str) -> None:
        """What a CI deploy does: a new template, so a new revision."""
        spec = self.deployments[(namespace, name)]["spec"]
        spec["template"]["spec"]["containers"][0]["image"] = image
        self.deployments[(namespace, name)]["metadata"]["generation"] += 1
        self._rolled_out(namespace, name)

    def deployment(self, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.deployments[(namespace, name)])

    def image(self, namespace: str, name: str) -> str:
        return str(self.deployments[(namespace, name)]["spec"]["template"]["spec"]["containers"][0]["image"])

    def revision(self, namespace: str, name: str) -> int:
        return int(self.deployments[(namespace, name)]["metadata"]["annotations"][REVISION])

    # -- the controller --------------------------------------------------------------------------------

    def _bump(self, obj: dict[str, Any]) -> None:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)

    def _rolled_out(self, namespace: str, name: str) -> None:
        dep = self.deployments[(namespace, name)]
        template = dep["spec"]["template"]
        digest = _hash(template)
        owned = [rs for (ns, _), rs in self.replicasets.items() if ns == namespace and rs["_owner"] == name]
        revision = max((int(rs["metadata"]["annotations"][REVISION]) for rs in owned), default=0) + 1
        key = (namespace, f"{name}-{digest}")
        rs = self.replicasets.get(key)
        if rs is None:
            rs_template = copy.deepcopy(template)
            rs_template["metadata"].setdefault("labels", {})["pod-template-hash"] = digest
            rs = {
                "_owner": name,
                "metadata": {
                    "name": key[1],
                    "namespace": namespace,
                    "labels": {**template["metadata"].get("labels", {}), "pod-template-hash": digest},
                    "annotations": {},
                    "ownerReferences": [
                        {"kind": "Deployment", "name": name, "uid": dep["metadata"]["uid"], "controller": True}
                    ],
                },
                "spec": {"template": rs_template},
            }
            self.replicasets[key] = rs
        # A new ReplicaSet, or an old one whose template is back (a rollback), takes the next revision.
        rs["metadata"]["annotations"][REVISION] = str(revision)
        dep["metadata"].setdefault("annotations", {})[REVISION] = str(revision)
        self._pending[(namespace, name)] = self.rollout_reads
        self._status(dep, done=self.rollout_reads == 0)
        self._bump(dep)

    def _status(self, dep: dict[str, Any], done: bool) -> None:
        replicas = dep["spec"]["replicas"]
        dep["status"] = {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": replicas + (0 if done else 1),
            "updatedReplicas": replicas if done else 1,
            "readyReplicas": replicas,
            "availableReplicas": replicas if done else 1,
        }

    # -- the API ---------------------------------------------------------------------------------------

    def _guarded(self, handler: Any) -> Any:
        def answer(request: Recorded) -> Reply:
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return status(401, "Unauthorized", "Unauthorized")
            namespace = request.params["namespace"]
            if namespace in self.forbidden:
                resource = "replicasets" if request.path.endswith("/replicasets") else "deployments"
                return status(
                    403,
                    "Forbidden",
                    f'{resource}.apps is forbidden: User "system:serviceaccount:tocsin:tocsin" cannot '
                    f'{request.method.lower()} resource "{resource}" in API group "apps" '
                    f'in the namespace "{namespace}"',
                )
            return handler(request)  # type: ignore[no-any-return]

        return answer

    def _find(self, request: Recorded) -> dict[str, Any] | Reply:
        key = (request.params["namespace"], request.params["name"])
        if key not in self.deployments:
            return status(404, "NotFound", f'deployments.apps "{key[1]}" not found')
        return self.deployments[key]

    def _precondition(self, dep: dict[str, Any], wanted: str | None) -> Reply | None:
        if wanted is not None and wanted != dep["metadata"]["resourceVersion"]:
            return status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on deployments.apps "{dep["metadata"]["name"]}": the object has '
                "been modified; please apply your changes to the latest version and try again",
            )
        return None

    def _deployment(self, request: Recorded) -> Reply:
        dep = self._find(request)
        if isinstance(dep, Reply):
            return dep
        key = (request.params["namespace"], request.params["name"])
        if request.method == "GET":
            if self._pending.get(key, 0) > 0:
                self._pending[key] -= 1
                self._status(dep, done=self._pending[key] == 0)
            return Reply(json=dep)
        body = request.json or {}
        conflict = self._precondition(dep, (body.get("metadata") or {}).get("resourceVersion"))
        if conflict:
            return conflict
        before = copy.deepcopy(dep["spec"])
        if request.method == "PATCH":
            merge(dep, {k: v for k, v in body.items() if k != "metadata"})
        else:  # PUT replaces the spec (the rest of the object is the server's)
            dep["spec"] = copy.deepcopy(body["spec"])
        if dep["spec"] != before:
            dep["metadata"]["generation"] += 1
        if dep["spec"]["template"] != before["template"]:
            self._rolled_out(*key)
        else:
            self._bump(dep)
        return Reply(json=dep)

    def _scale(self, request: Recorded) -> Reply:
        dep = self._find(request)
        if isinstance(dep, Reply):
            return dep
        if request.method == "PATCH":
            body = request.json or {}
            conflict = self._precondition(dep, (body.get("metadata") or {}).get("resourceVersion"))
            if conflict:
                return conflict
            replicas = (body.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                return status(422, "Invalid", f'Scale.autoscaling "{dep["metadata"]["name"]}" is invalid')
            if replicas != dep["spec"]["replicas"]:
                dep["spec"]["replicas"] = replicas
                dep["metadata"]["generation"] += 1
                self._status(dep, done=True)
            self._bump(dep)
        meta = dep["metadata"]
        return Reply(
            json={
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "resourceVersion": meta["resourceVersion"],
                },
                "spec": {"replicas": dep["spec"]["replicas"]},
                "status": {"replicas": dep["status"]["replicas"], "selector": f"app={meta['name']}"},
            }
        )

    def _replicasets(self, request: Recorded) -> Reply:
        namespace = request.params["namespace"]
        wanted = dict(p.split("=", 1) for p in (request.query.get("labelSelector") or [""])[0].split(",") if "=" in p)
        items = [
            {k: v for k, v in rs.items() if k != "_owner"}
            for (ns, _), rs in self.replicasets.items()
            if ns == namespace and all(rs["metadata"]["labels"].get(k) == v for k, v in wanted.items())
        ]
        return Reply(json={"kind": "ReplicaSetList", "apiVersion": "apps/v1", "items": items})


def write_kubeconfig(path: Path, server: str, user: Mapping[str, object], context: str = "prod") -> Path:
    """A kubeconfig with one cluster, one user and one context (namespace production), written to `path`."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u", "namespace": "production"}}],
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path
