"""The Kubernetes adapter over TLS: a fake cluster on https with a certificate no system trusts, reached with a
kubeconfig's client certificate and cluster CA, and with in-cluster service-account credentials (the adapter
against plain loopback http: tests/unit/test_kubernetes_adapter.py)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.support.fake_kubernetes import FakeKubernetes, write_kubeconfig
from tests.support.tls import TlsVendorServer, self_signed
from tocsin.runbook.errors import RetryableRemediationError
from tocsin.runbook.kubeconfig import KubernetesConfigError, in_cluster, load_kubeconfig
from tocsin.runbook.kubernetes_api import HttpKubernetes

NS = "production"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@contextmanager
def _https_cluster(token: str, client_ca: bytes | None = None) -> Iterator[tuple[TlsVendorServer, bytes]]:
    """The fake cluster on https, as a certificate no system trusts (returned: the CA to give the client);
    with `client_ca`, it asks for a client certificate signed by it."""
    cert, key = self_signed("k8s-api")
    with TlsVendorServer(cert, key, client_ca=client_ca) as server:
        FakeKubernetes(server, token=token).add_deployment(NS, "checkout", replicas=3)
        yield server, cert


async def test_kubeconfig_with_a_client_certificate_and_cluster_ca(tmp_path: Path) -> None:
    cert, key = self_signed("tocsin")
    with _https_cluster("t0ken", client_ca=cert) as (server, ca):
        user = {"client-certificate-data": _b64(cert), "client-key-data": _b64(key), "token": "t0ken"}
        config = write_kubeconfig(tmp_path / "config", server.url, user)
        text = yaml.safe_load(config.read_text())
        text["clusters"][0]["cluster"]["certificate-authority-data"] = _b64(ca)
        config.write_text(yaml.safe_dump(text))
        assert (await HttpKubernetes(load_kubeconfig([config])).get_scale(NS, "checkout")).replicas == 3
        # Without its certificate the server turns the client away: the certificate above is what got it in.
        del text["users"][0]["user"]["client-certificate-data"], text["users"][0]["user"]["client-key-data"]
        config.write_text(yaml.safe_dump(text))
        with pytest.raises(RetryableRemediationError, match="unreachable"):
            await HttpKubernetes(load_kubeconfig([config])).get_scale(NS, "checkout")


async def test_in_cluster_credentials(tmp_path: Path) -> None:
    with _https_cluster("sa-token") as (server, ca):
        (tmp_path / "token").write_text("sa-token", encoding="utf-8")
        (tmp_path / "ca.crt").write_bytes(ca)
        env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(server.port)}
        access = in_cluster(env, root=tmp_path)
        assert access.server == server.url and access.source == "in-cluster"
        assert (await HttpKubernetes(access).get_scale(NS, "checkout")).replicas == 3
        assert [r.headers["authorization"] for r in server.requests] == ["Bearer sa-token"]
    v6 = in_cluster({"KUBERNETES_SERVICE_HOST": "fd00::1"}, root=tmp_path)
    assert v6.server == "https://[fd00::1]:443"
    with pytest.raises(KubernetesConfigError, match="no service-account token"):
        in_cluster({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, root=tmp_path / "missing")
    (tmp_path / "ca.crt").unlink()
    with pytest.raises(KubernetesConfigError, match=f"in-cluster: no cluster CA at {tmp_path}/ca.crt"):
        in_cluster(env, root=tmp_path)
