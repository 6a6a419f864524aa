"""The Kubernetes adapter against a loopback server playing apps/v1 (tests/support/fake_kubernetes.py): scale,
restart, undo, rollout status, the API's errors and their retry semantics, and credentials: kubeconfig tokens,
token files and exec plugins. Client certificates (mutual TLS) and the in-cluster service account, over TLS:
tests/integration/test_kubernetes_tls.py."""

from __future__ import annotations

import base64
import datetime as dt
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from lightkube.core.selector import build_selector

from tests.support.fake_kubernetes import FakeKubernetes, token_access, write_kubeconfig
from tests.support.vendor_server import Reply, VendorServer
from tocsin.runbook.errors import PermanentRemediationError, RetryableRemediationError
from tocsin.runbook.guardrails import target_replicas
from tocsin.runbook.kubeconfig import KubernetesConfigError, cluster_access_from_env, load_kubeconfig
from tocsin.runbook.kubernetes import RESTARTED_AT, ConflictError, RolloutStatus, apply_scale, wait_for_rollout
from tocsin.runbook.kubernetes_api import HttpKubernetes, labels_of

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
    return HttpKubernetes(token_access(server.url, "t0ken"))


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
    assert patch.query == {"fieldManager": ["tocsin"]}  # managedFields name who scaled it


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
    kube = HttpKubernetes(token_access(server.url, "wr0ng-s3cret"))
    with pytest.raises(PermanentRemediationError) as err:
        await kube.get_scale(NS, "checkout")
    assert err.value.kind == "Unauthorized"
    assert len(server.requests) == 1  # a static token is not sent again
    for shown in (str(err.value), repr(kube), repr(kube.access)):
        assert "wr0ng-s3cret" not in shown


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
    assert len(server.requests) == 1  # lightkube retries nothing: the next attempt is Temporal's


async def test_a_proxy_error_page_is_retryable(server: VendorServer, kube: HttpKubernetes) -> None:
    # Labelled JSON as the API server labels it, but no Status inside: lightkube cannot build its ApiError.
    page = Reply(502, body="<html>Bad Gateway</html>", headers={"Content-Type": "application/json"})
    server.on("GET", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale", page)
    with pytest.raises(RetryableRemediationError, match=r": 502: <html>Bad Gateway</html>$") as err:
        await kube.get_scale(NS, "checkout")
    assert err.value.kind == "KubernetesUnavailable"


async def test_an_unreachable_server_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    kube = HttpKubernetes(token_access(f"http://127.0.0.1:{port}", "t"))
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
            {"key": "zone", "operator": "NotIn", "values": ["b"]},
        ],
    }
    assert build_selector(labels_of(selector)) == "app=web,tier=front,track in (canary,stable),!legacy,zone notin (b)"


# --- credentials ------------------------------------------------------------------------------------------


async def test_kubeconfig_with_a_token(tmp_path: Path, server: VendorServer, cluster: FakeKubernetes) -> None:
    config = write_kubeconfig(tmp_path / "config", server.url, {"token": "t0ken"})
    kube = HttpKubernetes.from_env({"KUBECONFIG": str(config)})
    assert kube.access.source == f"kubeconfig {config} (context prod)"
    assert (await kube.get_scale(NS, "checkout")).replicas == 3


async def test_kubeconfig_token_file_is_read_again_when_rotated(
    tmp_path: Path, server: VendorServer, cluster: FakeKubernetes
) -> None:
    (tmp_path / "token").write_text("t0ken\n", encoding="utf-8")
    config = write_kubeconfig(tmp_path / "config", server.url, {"tokenFile": "token"})  # relative to the file
    kube = HttpKubernetes.from_env({"KUBECONFIG": str(config)})
    assert (await kube.get_scale(NS, "checkout")).replicas == 3
    cluster.token = "r0tated"
    (tmp_path / "token").write_text("r0tated", encoding="utf-8")
    assert (await kube.get_scale(NS, "checkout")).replicas == 3
    # The old token's 401 makes lightkube read the file again and send once more (nothing ran on the 401).
    sent = [r.headers["authorization"] for r in server.requests]
    assert sent == ["Bearer t0ken", "Bearer t0ken", "Bearer r0tated"]


def _plugin(tmp_path: Path, body: str) -> Path:
    """An exec credential plugin: a shell script that logs each run next to itself, then runs `body`."""
    script = tmp_path / "credential-plugin"
    script.write_text(f'#!/bin/sh\necho run >> "{tmp_path}/runs"\n{body}\n', encoding="utf-8")
    script.chmod(0o755)
    return script


def _exec_user(command: Path | str, *args: str) -> dict[str, object]:
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(command), "args": list(args)}}


async def test_kubeconfig_exec_plugin_authenticates(
    tmp_path: Path, server: VendorServer, cluster: FakeKubernetes
) -> None:
    # The token exists only in a file the plugin reads: the kubeconfig itself holds no credential.
    (tmp_path / "issued").write_text("plugin-t0ken-1", encoding="utf-8")
    cluster.token = "plugin-t0ken-1"
    credential = '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"%s"}}'
    plugin = _plugin(tmp_path, f'printf \'{credential}\' "$(cat "$1")"')
    config = write_kubeconfig(tmp_path / "config", server.url, _exec_user(plugin, str(tmp_path / "issued")))
    kube = HttpKubernetes.from_env({"KUBECONFIG": str(config)})
    assert (await kube.get_scale(NS, "checkout")).replicas == 3
    assert (await kube.set_scale(NS, "checkout", 4)).replicas == 4
    assert (tmp_path / "runs").read_text().split() == ["run"]  # its token is kept while the server takes it
    # The token expires (EKS's last 15 minutes): the 401 runs the plugin again, and the request goes through.
    (tmp_path / "issued").write_text("plugin-t0ken-2", encoding="utf-8")
    cluster.token = "plugin-t0ken-2"
    assert (await kube.get_scale(NS, "checkout")).replicas == 4
    assert (tmp_path / "runs").read_text().split() == ["run", "run"]
    sent = [r.headers["authorization"] for r in server.requests]
    assert sent == ["Bearer plugin-t0ken-1"] * 3 + ["Bearer plugin-t0ken-2"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("echo 'expired SSO session for s3cret-user' >&2; exit 3", "returned 3$"),
        ('echo \'{"status": {"t0ken": "s3cret"}}\'', "printed no token$"),
        ("echo 's3cret is not JSON'", "printed no token$"),
    ],
)
async def test_a_failing_exec_plugin_is_a_permanent_config_error_that_shows_nothing_it_printed(
    tmp_path: Path, server: VendorServer, cluster: FakeKubernetes, body: str, problem: str
) -> None:
    config = write_kubeconfig(tmp_path / "config", server.url, _exec_user(_plugin(tmp_path, body)))
    kube = HttpKubernetes.from_env({"KUBECONFIG": str(config)})
    with pytest.raises(KubernetesConfigError, match=problem) as err:
        await kube.get_scale(NS, "checkout")
    assert err.value.kind == "KubernetesNotConfigured" and isinstance(err.value, PermanentRemediationError)
    assert str(err.value).startswith(f"kubeconfig {config} (context prod): ") and "s3cret" not in str(err.value)
    assert server.requests == []


async def test_a_missing_exec_plugin_is_named(tmp_path: Path, server: VendorServer) -> None:
    config = write_kubeconfig(tmp_path / "config", server.url, _exec_user(tmp_path / "aws"))
    kube = HttpKubernetes.from_env({"KUBECONFIG": str(config)})
    with pytest.raises(KubernetesConfigError, match=f"cannot run the exec plugin '{tmp_path}/aws': No such file"):
        await kube.get_scale(NS, "checkout")


def test_kubeconfig_files_merge_as_kubectl_merges_them(tmp_path: Path) -> None:
    first = tmp_path / "a"
    first.write_text(yaml.safe_dump({"current-context": "staging"}), encoding="utf-8")
    second = write_kubeconfig(tmp_path / "b", "http://127.0.0.1:1", {"token": "x"}, context="staging")
    access = load_kubeconfig([first, second])
    assert access.server == "http://127.0.0.1:1" and access.config.user is not None
    assert access.config.user.token == "x"
    with pytest.raises(KubernetesConfigError, match="no context named 'prod'"):
        load_kubeconfig([first, second], context="prod")


def test_the_environment_chooses_the_cluster(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "config", "https://k8s.example:6443", {"token": "t"})
    other = write_kubeconfig(tmp_path / "other", "https://other.example:6443", {"token": "t"}, context="other")
    pod = {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}
    # An explicit KUBECONFIG wins over the pod's service account; TOCSIN_KUBE_CONTEXT over current-context.
    assert cluster_access_from_env({**pod, "KUBECONFIG": str(kubeconfig)}).server == "https://k8s.example:6443"
    both = {"KUBECONFIG": f"{kubeconfig}:{other}", "TOCSIN_KUBE_CONTEXT": "other"}
    chosen = cluster_access_from_env(both)  # its cluster "c" is the first file's: the first to name one wins
    assert chosen.source == f"kubeconfig {kubeconfig} (context other)" and chosen.server == "https://k8s.example:6443"
    with pytest.raises(KubernetesConfigError, match="in-cluster: no service-account token"):
        cluster_access_from_env(pod, home=tmp_path)
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_bytes(kubeconfig.read_bytes())
    assert cluster_access_from_env({}, home=tmp_path).source == f"kubeconfig {tmp_path}/.kube/config (context prod)"
    with pytest.raises(KubernetesConfigError, match="no Kubernetes credentials: set KUBECONFIG"):
        cluster_access_from_env({}, home=tmp_path / "nobody")


@pytest.mark.parametrize(
    ("user", "problem"),
    [
        ({"auth-provider": {"name": "gcp"}}, "authenticates with auth-provider, which kubectl itself dropped"),
        ({"exec": {"command": "aws"}}, "missing required field `apiVersion` - at `\\$.exec`"),
        ({"tokenFile": "nowhere"}, "tokenFile .*/nowhere is not a readable file"),
        ({"client-certificate-data": "not base64!"}, "client-certificate-data is not base64"),
        ({"client-key-data": base64.b64encode(b"k").decode()}, "a client certificate needs its key"),
    ],
)
def test_kubeconfig_users_tocsin_cannot_use(tmp_path: Path, user: dict[str, object], problem: str) -> None:
    with pytest.raises(KubernetesConfigError, match=problem):
        load_kubeconfig([write_kubeconfig(tmp_path / "config", "https://k8s.example:6443", user)])


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
        {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws"}},
    ],
)
def test_credentials_are_refused_over_plain_http_off_loopback(tmp_path: Path, user: dict[str, object]) -> None:
    with pytest.raises(KubernetesConfigError, match="would cross the network in clear text"):
        load_kubeconfig([write_kubeconfig(tmp_path / "config", "http://k8s.example:8080", user)])
    # On loopback (kubectl proxy, the tests' fake cluster) plain http stays possible.
    local = load_kubeconfig([write_kubeconfig(tmp_path / "local", "http://127.0.0.1:8001", {"token": "t"})])
    assert local.config.user is not None and local.config.user.token == "t"


def test_skipping_tls_verification_is_warned_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_kubeconfig(tmp_path / "config", "https://k8s.example:6443", {"token": "t"})
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = True
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with caplog.at_level("WARNING", logger="tocsin.kubernetes"):
        load_kubeconfig([path])
        load_kubeconfig([path])
    warned = [r.getMessage() for r in caplog.records if "insecure-skip-tls-verify" in r.getMessage()]
    assert len(warned) == 1 and "is not checked" in warned[0]
