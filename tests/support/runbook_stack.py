"""The runbooks' world on one loopback server: a Kubernetes apps/v1 fake with production/checkout, a Prometheus
HTTP API answering one error rate, and a database admin API; plus the worker activities pointed at it.
Shared by the runbook workflow tests and the golden-history recorder.

The worker plans and checks every runbook with its own policy, and an http step reaches a loopback address
only when its policy step says `allow_loopback: true`: `write_policy` writes the default policy with that
flag on every http step (the fake admin API is on 127.0.0.1), plus whatever a test adds, for the worker's
Settings(policy=...) and for `Stack.activities(policy)`."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from activities.runbook import RunbookActivities
from tests.support.fake_kubernetes import FakeKubernetes, token_access
from tests.support.paths import ROOT
from tests.support.vendor_server import Recorded, Reply, VendorServer
from tocsin.policy.loader import load_policy
from tocsin.policy.schema import Policy
from tocsin.runbook.kubernetes_api import HttpKubernetes

TOKEN = "k8s-sa-t0ken"
DB_TOKEN = "db-admin-s3cret"
DEFAULT_POLICY = ROOT / "policies" / "default.yaml"


def write_policy(directory: Path, edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """The default policy, every http step allowed to reach loopback, then `edit`ed; written to `directory`."""
    raw = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    for runbook in raw["runbooks"].values():
        for step in runbook["steps"]:
            for one in (step, step.get("compensate")):
                if isinstance(one, dict) and one.get("action") == "http":
                    one["allow_loopback"] = True
    if edit is not None:
        edit(raw)
    path = directory / "runbook-policy.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


class Stack:
    """The cluster, Prometheus and the database admin API on one loopback server."""

    def __init__(self, server: VendorServer) -> None:
        self.server = server
        self.cluster = FakeKubernetes(server, token=TOKEN)
        self.cluster.add_deployment("production", "checkout", replicas=3)
        self.error_rate = "0.01"
        server.on("GET", "/api/v1/query", self.prometheus)
        server.on("POST", "/api/v1/query", self.prometheus)
        for method in ("POST", "PUT", "DELETE"):
            for what in ("read-replicas", "throttle"):
                server.on(method, f"/databases/{{db}}/{what}", Reply(204))

    def prometheus(self, request: Recorded) -> Reply:
        result = [{"metric": {}, "value": [1764000000, self.error_rate]}]
        return Reply(json={"status": "success", "data": {"resultType": "vector", "result": result}})

    def activities(self, policy: Policy | None = None, env: Mapping[str, str] | None = None) -> RunbookActivities:
        """The worker's runbook activities: `policy` (default: the default policy) and `env` over the stack's."""
        access = token_access(self.server.url, TOKEN)
        settings = {"TOCSIN_DB_ADMIN_URL": self.server.url, "TOCSIN_DB_ADMIN_TOKEN": DB_TOKEN, **(env or {})}
        return RunbookActivities(
            policy or load_policy(DEFAULT_POLICY),
            kubernetes=lambda: HttpKubernetes(access),
            env=settings,
            prometheus_url=self.server.url,
        )

    def replicas(self) -> int:
        return int(self.cluster.deployment("production", "checkout")["spec"]["replicas"])

    def writes(self, path_end: str) -> list[Recorded]:
        return [r for r in self.server.requests if r.method in ("PATCH", "PUT") and r.path.endswith(path_end)]


@contextmanager
def running_stack() -> Iterator[Stack]:
    with VendorServer() as server:
        yield Stack(server)
