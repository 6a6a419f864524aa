"""The runbooks' world on one loopback server: a Kubernetes apps/v1 fake with production/checkout, a Prometheus
HTTP API answering one error rate, and a database admin API; plus the worker activities pointed at it.
Shared by the runbook workflow tests and the golden-history recorder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from activities.runbook import RunbookActivities
from tests.fake_kubernetes import FakeKubernetes
from tests.vendor_server import Recorded, Reply, VendorServer
from tocsin.runbooks.kubeconfig import ClusterAccess
from tocsin.runbooks.kubernetes_api import HttpKubernetes

TOKEN = "k8s-sa-t0ken"
DB_TOKEN = "db-admin-s3cret"


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

    def activities(self) -> RunbookActivities:
        access = ClusterAccess(server=self.server.url, verify=False, source="test", token=TOKEN)
        env = {"TOCSIN_DB_ADMIN_URL": self.server.url, "TOCSIN_DB_ADMIN_TOKEN": DB_TOKEN}
        return RunbookActivities(kubernetes=lambda: HttpKubernetes(access), env=env, prometheus_url=self.server.url)

    def replicas(self) -> int:
        return int(self.cluster.deployment("production", "checkout")["spec"]["replicas"])

    def writes(self, path_end: str) -> list[Recorded]:
        return [r for r in self.server.requests if r.method in ("PATCH", "PUT") and r.path.endswith(path_end)]


@contextmanager
def running_stack() -> Iterator[Stack]:
    with VendorServer() as server:
        yield Stack(server)
