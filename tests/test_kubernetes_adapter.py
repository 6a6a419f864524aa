"""The Kubernetes adapter against a loopback server playing apps/v1 (tests/fake_kubernetes.py): scale, restart,
undo, rollout status, the API's errors and their retry semantics, and credentials from a kubeconfig file."""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest
import yaml

from tests.fake_kubernetes import FakeKubernetes
from tests.tls import self_signed
from tests.vendor_server import Reply, VendorServer
from tocsin.runbooks.errors import PermanentRemediationError, RetryableRemediationError
from tocsin.runbooks.guardrails import target_replicas
from tocsin.runbooks.kubeconfig import ClusterAccess, KubernetesConfigError, in_cluster, load_kubeconfig
from tocsin.runbooks.kubernetes import RESTARTED_AT, ConflictError, RolloutStatus, apply_scale, wait_for_rollout
from tocsin.runbooks.kubernetes_api import HttpKubernetes, label_selector

NS = "production"
AT = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC)


@pytest.fixture
def server() -> Iterator[VendorServer]:
    with VendorServer() as running:
        yield running


@pytest.fixture
def cluster(server: VendorServer) -> FakeKubernetes:
    fake = FakeKubernetes(server, token="t0ken")
    fake.add_deployment(NS, "checkout", replicas=3)
    return fake


@pytest.fixture
def kube(server: VendorServer) -> HttpKubernetes:
    return HttpKubernetes(ClusterAccess(server=server.url, verify=False, source="test", token="t0ken"))


# --- scale ------------------------------------------------------------------------------------------------


async def test_get_and_set_scale(server: VendorServer, cluster: FakeKubernetes, kube: HttpKubernetes) -> None:
    scale = await kube.get_scale(NS, "checkout")
    assert (scale.replicas, scale.current) == (3, 3)
    assert scale.resource_version == cluster.deployment(NS, "checkout")["metadata"]["resourceVersion"]

    after = await kube.set_scale(NS, "checkout", 5, resource_version=scale.resource_version)
    assert after.replicas == 5
    assert cluster.deployment(NS, "checkout")["spec"]["replicas"] == 5
    patch = server.received("PATCH")[0]
    assert patch.path == "/apis/apps/v1/namespaces/production/deployments/checkout/scale"
    assert patch.headers["content-type"] == "application/merge-patch+json"
    assert patch.headers["authorization"] == "Bearer t0ken"
    assert patch.json == {"spec": {"replicas": 5}, "metadata": {"resourceVersion": scale.resource_version}}


async def test_scale_out_is_clamped_and_a_repeated_attempt_changes_nothing(
    server: VendorServer, cluster: FakeKubernetes, kube: HttpKubernetes
) -> None:
    found = await kube.get_scale(NS, "checkout")
    target, clamped = target_replicas("current * 2", found.replicas, max_replicas=5)
    assert (target, clamped) == (5, True)
    assert (await apply_scale(kube, target, found)).replicas == 5
    # The activity's answer was lost and it runs again with the same read: the 409 shows the work is done.
    again = await apply_scale(kube, target, found)
    assert again.replicas == 5
    assert cluster.deployment(NS, "checkout")["spec"]["replicas"] == 5
    scale_path = "/apis/apps/v1/namespaces/production/deployments/checkout/scale"
    assert [r.method for r in server.received(path=scale_path)] == ["GET", "PATCH", "PATCH", "GET"]


async def test_a_concurrent_change_is_a_retryable_conflict(cluster: FakeKubernetes, kube: HttpKubernetes) -> None:
    found = await kube.get_scale(NS, "checkout")
    await kube.set_scale(NS, "checkout", 7)  # someone else (an HPA, a person) scales in between
    with pytest.raises(ConflictError) as err:
        await kube.set_scale(NS, "checkout", 6, resource_version=found.resource_version)
    assert isinstance(err.value, RetryableRemediationError) and err.value.kind == "Conflict"
    assert "the object has been modified" in str(err.value)
    with pytest.raises(ConflictError, match="it was 3, is 7 now \\(wanted 6\\)"):
        await apply_scale(kube, 6, found)
    assert cluster.deployment(NS, "checkout")["spec"]["replicas"] == 7


# --- errors -----------------------------------------------------------------------------------------------


async def test_missing_deployment_is_permanent(cluster: FakeKubernetes, kube: HttpKubernetes) -> None:
    with pytest.raises(PermanentRemediationError) as err:
        await kube.get_scale(NS, "nope")
    assert err.value.kind == "NotFound"
    assert str(err.value) == 'Kubernetes get scale of production/nope: 404 NotFound: deployments.apps "nope" not found'


async def test_forbidden_namespace_is_permanent(cluster: FakeKubernetes, kube: HttpKubernetes) -> None:
    with pytest.raises(PermanentRemediationError) as err:
        await kube.rollout_status("kube-system", "coredns")
    assert err.value.kind == "Forbidden"
    assert 'cannot get resource "deployments" in API group "apps" in the namespace "kube-system"' in str(err.value)


async def test_a_wrong_token_is_permanent_and_never_shown(server: VendorServer, cluster: FakeKubernetes) -> None:
    kube = HttpKubernetes(ClusterAccess(server=server.url, verify=False, source="test", token="wr0ng-s3cret"))
    with pytest.raises(PermanentRemediationError) as err:
        await kube.get_scale(NS, "checkout")
    assert err.value.kind == "Unauthorized"
    assert "wr0ng-s3cret" not in str(err.value) and "wr0ng-s3cret" not in repr(kube)


async def test_invalid_replicas_are_permanent(cluster: FakeKubernetes, kube: HttpKubernetes) -> None:
    with pytest.raises(PermanentRemediationError) as err:
        await kube.set_scale(NS, "checkout", -1)
    assert err.value.kind == "Invalid"


@pytest.mark.parametrize(("code", "retry"), [(503, "7"), (429, "3"), (500, None)])
async def test_overload_and_server_errors_are_retryable(
    server: VendorServer, cluster: FakeKubernetes, kube: HttpKubernetes, code: int, retry: str | None
) -> None:
    server.on(
        "GET",
        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
        Reply(code, json={"kind": "Status", "reason": "ServiceUnavailable", "message": "etcd is slow", "code": code},
              headers={"Retry-After": retry} if retry else {}),
    )  # fmt: skip
    with pytest.raises(RetryableRemediationError) as err:
        await kube.get_scale(NS, "checkout")
    assert err.value.kind == "KubernetesUnavailable"
    assert err.value.retry_after == (float(retry) if retry else None)
    assert f": {code} ServiceUnavailable: etcd is slow" in str(err.value)


async def test_an_unreachable_server_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    kube = HttpKubernetes(ClusterAccess(server=f"http://127.0.0.1:{port}", verify=False, source="test", token="t"))
    with pytest.raises(RetryableRemediationError, match="unreachable"):
        await kube.get_scale(NS, "checkout")


async def test_names_that_are_not_kubernetes_names_never_reach_the_api(
    server: VendorServer, kube: HttpKubernetes
) -> None:
    with pytest.raises(PermanentRemediationError, match="not a valid Kubernetes name"):
        await kube.get_scale(NS, "../../api/v1/secrets")
    assert server.requests == []


# --- rollouts ---------------------------------------------------------------------------------------------


async def test_restart_is_a_new_rollout_once_per_restart_time(
    server: VendorServer, cluster: FakeKubernetes, kube: HttpKubernetes
) -> None:
    assert cluster.revision(NS, "checkout") == 1
    change = await kube.rollout_restart(NS, "checkout", at=AT)
    assert change.changed and change.revision_before == 1
    template = cluster.deployment(NS, "checkout")["spec"]["template"]
    assert template["metadata"]["annotations"] == {RESTARTED_AT: "2026-03-01T12:30:00Z"}
    assert cluster.revision(NS, "checkout") == 2
    [patch] = server.received("PATCH")
    assert patch.headers["content-type"] == "application/strategic-merge-patch+json"
    # A retried activity restarts with the same time: no second rollout.
    again = await kube.rollout_restart(NS, "checkout", at=AT)
    assert not again.changed and cluster.revision(NS, "checkout") == 2
    assert len(server.received("PATCH")) == 1


async def test_undo_rolls_back_to_the_previous_template_like_kubectl(
    server: VendorServer, cluster: FakeKubernetes, kube: HttpKubernetes
) -> None:
    cluster.deploy_image(NS, "checkout", "app:2")
    assert (cluster.image(NS, "checkout"), cluster.revision(NS, "checkout")) == ("app:2", 2)
    change = await kube.rollout_undo(NS, "checkout", if_revision=2)
    assert change.changed and change.revision_before == 2
    # The old ReplicaSet is revived as revision 3, as the deployment controller does.
    assert (cluster.image(NS, "checkout"), cluster.revision(NS, "checkout")) == ("app:1", 3)
    [put] = server.received("PUT")
    assert "pod-template-hash" not in put.json["spec"]["template"]["metadata"]["labels"]
    assert put.json["metadata"]["resourceVersion"]
    [listing] = server.received("GET", "/apis/apps/v1/namespaces/production/replicasets")
    assert listing.query["labelSelector"] == ["app=checkout"]
    # Repeated (a retried activity): the deployment has left revision 2, so the undo is not undone.
    again = await kube.rollout_undo(NS, "checkout", if_revision=2)
    assert not again.changed and "is at revision 3, not 2" in again.message
    assert cluster.image(NS, "checkout") == "app:1"


async def test_undo_to_a_named_revision_and_without_history(cluster: FakeKubernetes, kube: HttpKubernetes) -> None:
    with pytest.raises(PermanentRemediationError, match="no previous revision") as err:
        await kube.rollout_undo(NS, "checkout")
    assert err.value.kind == "NoHistory"
    cluster.deploy_image(NS, "checkout", "app:2")
    cluster.deploy_image(NS, "checkout", "app:3")
    await kube.rollout_undo(NS, "checkout", to_revision=1)
    assert cluster.image(NS, "checkout") == "app:1"
    with pytest.raises(PermanentRemediationError, match="no revision 9 \\(known: 2, 3, 4\\)"):
        await kube.rollout_undo(NS, "checkout", to_revision=9)
    same = await kube.rollout_undo(NS, "checkout", to_revision=4)
    assert not same.changed and "already runs the template of revision 4" in same.message


async def test_a_paused_deployment_is_not_touched(
    server: VendorServer, cluster: FakeKubernetes, kube: HttpKubernetes
) -> None:
    cluster.deployments[(NS, "checkout")]["spec"]["paused"] = True
    for attempt in (kube.rollout_restart(NS, "checkout", at=AT), kube.rollout_undo(NS, "checkout")):
        with pytest.raises(PermanentRemediationError, match="paused"):
            await attempt
    assert server.received("PATCH") == [] and server.received("PUT") == []


async def test_wait_for_rollout_polls_until_done(cluster: FakeKubernetes, kube: HttpKubernetes) -> None:
    cluster.rollout_reads = 3
    await kube.rollout_restart(NS, "checkout", at=AT)
    seen: list[RolloutStatus] = []
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    final = await wait_for_rollout(kube, NS, "checkout", within=60, interval=2, on_progress=seen.append, sleep=sleep)
    assert final.done and final.revision == 2 and final.message == "successfully rolled out"
    assert [s.done for s in seen] == [False, False, True]
    assert seen[0].message == "1 of 3 new replicas have been updated"
    assert slept == [2, 2]


async def test_rollout_status_reports_a_failed_rollout(
    server: VendorServer, cluster: FakeKubernetes, kube: HttpKubernetes
) -> None:
    dep = cluster.deployments[(NS, "checkout")]
    dep["status"]["conditions"] = [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "too slow"}
    ]
    status = await kube.rollout_status(NS, "checkout")
    assert status.failed and not status.done and status.message == "rollout failed: too slow"


def test_label_selectors() -> None:
    selector = {
        "matchLabels": {"app": "web", "tier": "front"},
        "matchExpressions": [
            {"key": "track", "operator": "In", "values": ["stable", "canary"]},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    assert label_selector(selector) == "app=web,tier=front,track in (stable,canary),!legacy"


# --- credentials ------------------------------------------------------------------------------------------


def _kubeconfig(path: Path, server: str, user: dict[str, object], context: str = "prod") -> Path:
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


async def test_kubeconfig_with_a_token(tmp_path: Path, server: VendorServer, cluster: FakeKubernetes) -> None:
    config = _kubeconfig(tmp_path / "config", server.url, {"token": "t0ken"})
    kube = HttpKubernetes.from_env({"KUBECONFIG": str(config)})
    assert kube.access.source == f"kubeconfig {config} (context prod)"
    assert (await kube.get_scale(NS, "checkout")).replicas == 3


async def test_kubeconfig_token_file_is_read_for_each_request(
    tmp_path: Path, server: VendorServer, cluster: FakeKubernetes
) -> None:
    (tmp_path / "token").write_text("t0ken\n", encoding="utf-8")
    config = _kubeconfig(tmp_path / "config", server.url, {"tokenFile": "token"})  # relative to the file
    kube = HttpKubernetes.from_env({"KUBECONFIG": str(config)})
    assert (await kube.get_scale(NS, "checkout")).replicas == 3
    cluster.token = "r0tated"
    (tmp_path / "token").write_text("r0tated", encoding="utf-8")
    assert (await kube.get_scale(NS, "checkout")).replicas == 3


def test_kubeconfig_files_merge_as_kubectl_merges_them(tmp_path: Path) -> None:
    first = tmp_path / "a"
    first.write_text(yaml.safe_dump({"current-context": "staging"}), encoding="utf-8")
    second = _kubeconfig(tmp_path / "b", "http://127.0.0.1:1", {"token": "x"}, context="staging")
    access = load_kubeconfig([first, second])
    assert access.server == "http://127.0.0.1:1" and access.token == "x"
    with pytest.raises(KubernetesConfigError, match="no context named 'prod'"):
        load_kubeconfig([first, second], context="prod")


@pytest.mark.parametrize(
    ("user", "problem"),
    [
        ({"exec": {"command": "aws"}}, "authenticates with exec, which Tocsin does not run"),
        ({"client-certificate-data": "not base64!"}, "client-certificate-data is not base64"),
        ({"client-key-data": base64.b64encode(b"k").decode()}, "a client certificate needs its key"),
    ],
)
def test_kubeconfig_users_tocsin_cannot_use(tmp_path: Path, user: dict[str, object], problem: str) -> None:
    with pytest.raises(KubernetesConfigError, match=problem):
        load_kubeconfig([_kubeconfig(tmp_path / "config", "https://k8s.example:6443", user)])


def test_kubeconfig_with_a_client_certificate_and_cluster_ca(tmp_path: Path) -> None:
    cert, key = self_signed("tocsin")

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    config = _kubeconfig(
        tmp_path / "config",
        "https://k8s.example:6443",
        {"client-certificate-data": b64(cert), "client-key-data": b64(key)},
    )
    text = yaml.safe_load(config.read_text())
    text["clusters"][0]["cluster"]["certificate-authority-data"] = b64(cert)
    config.write_text(yaml.safe_dump(text))
    access = load_kubeconfig([config])
    assert access.token is None and not isinstance(access.verify, bool)
    assert [c["subject"] for c in access.verify.get_ca_certs()] == [((("commonName", "tocsin"),),)]


def test_in_cluster_credentials(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token", encoding="utf-8")
    shutil.copy(certifi.where(), tmp_path / "ca.crt")
    access = in_cluster({"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}, root=tmp_path)
    assert access.server == "https://10.96.0.1:443" and access.source == "in-cluster"
    assert access.bearer() == "sa-token"
    v6 = in_cluster({"KUBERNETES_SERVICE_HOST": "fd00::1"}, root=tmp_path)
    assert v6.server == "https://[fd00::1]:443"
    with pytest.raises(KubernetesConfigError, match="no service-account token"):
        in_cluster({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, root=tmp_path / "missing")


def test_kubeconfig_yaml_errors_never_quote_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("users:\n- name: u\n  user: {password: hunter2-secret, : }\n  oops: [\n", encoding="utf-8")
    with pytest.raises(KubernetesConfigError) as refused:
        load_kubeconfig([config])
    assert "not valid YAML at line" in str(refused.value)
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    "user",
    [
        {"token": "t0ken"},
        {"username": "admin", "password": "pw"},
        {"client-certificate-data": "eA==", "client-key-data": "eA=="},
    ],
)
def test_credentials_are_refused_over_plain_http_off_loopback(tmp_path: Path, user: dict[str, object]) -> None:
    with pytest.raises(KubernetesConfigError, match="would cross the network in clear text"):
        load_kubeconfig([_kubeconfig(tmp_path / "config", "http://k8s.example:8080", user)])
    # On loopback (kubectl proxy, the tests' fake cluster) plain http stays possible.
    assert load_kubeconfig([_kubeconfig(tmp_path / "local", "http://127.0.0.1:8001", {"token": "t"})]).token == "t"


def test_skipping_tls_verification_is_warned_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _kubeconfig(tmp_path / "config", "https://k8s.example:6443", {"token": "t"})
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = True
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with caplog.at_level("WARNING", logger="tocsin.kubernetes"):
        load_kubeconfig([path])
        load_kubeconfig([path])
    warned = [r.getMessage() for r in caplog.records if "insecure-skip-tls-verify" in r.getMessage()]
    assert len(warned) == 1 and "is not checked" in warned[0]
