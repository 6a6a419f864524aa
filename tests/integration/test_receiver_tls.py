"""HTTPS on the receiver (TOCSIN_HTTP_TLS_CERT, TOCSIN_HTTP_TLS_KEY): PagerDuty's official Events v2 client
(`pagerduty`, which takes only https URLs) against the served receiver, a real dev server and a worker, trusting
a CA made for the test; and the start-up errors, which stop the receiver before it listens."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import re
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pagerduty
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from tests.integration.test_receiver_pagerduty import state_when
from tests.support.alerts import ROUTING_KEY
from tests.support.harness import run_workers, settle_postmortem
from tocsin.incident.contracts import IncidentState, incident_workflow_id
from tocsin.intake.contracts import NormalizedAlert
from tocsin.intake.routing import incident_key
from tocsin.policy.schema import Policy
from tocsin.receiver.config import ReceiverConfig, ReceiverConfigError, ReceiverError, load_receiver_config
from tocsin.receiver.serve import announce, bind, build_server, serve_until, temporal_app
from tocsin.receiver.tls import server_context
from tocsin.settings import Settings


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_pki(directory: Path) -> Pki:
    """A test CA and a server certificate it signed for 127.0.0.1 and localhost, valid for a day."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tocsin test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(ca=directory / "ca.pem", cert=directory / "server.pem", key=directory / "server-key.pem")
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(_key_pem(key))
    return pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def trusting(pki: Pki) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca))


def loopback_settings(home: Path) -> Settings:
    return Settings(home=home).model_copy(update={"http_port": 0})


# The served receiver, end to end


@pytest.fixture
async def receiver_url(
    dev_env: WorkflowEnvironment, default_policy: Policy, tmp_path: Path, pki: Pki
) -> AsyncIterator[str]:
    settings = loopback_settings(tmp_path / "home")
    config = ReceiverConfig(pagerduty_routing_keys=(SecretStr(ROUTING_KEY),), tls_cert=pki.cert, tls_key=pki.key)
    listener = bind(settings, config)
    stop = asyncio.Event()
    serving = asyncio.create_task(
        serve_until(build_server(temporal_app(dev_env.client, default_policy, config)), listener, stop)
    )
    async with run_workers(dev_env.client, settings):
        yield listener.url
    stop.set()
    await serving


async def test_official_pagerduty_client_over_https_triggers_acknowledges_resolves(
    dev_env: WorkflowEnvironment, default_policy: Policy, receiver_url: str, pki: Pki
) -> None:
    assert receiver_url.startswith("https://127.0.0.1:")
    events = pagerduty.EventsApiV2Client(ROUTING_KEY, base_url=receiver_url, verify=trusting(pki))
    dedup_key = f"tls-{uuid.uuid4().hex[:8]}"
    key = incident_key(
        default_policy, NormalizedAlert(source="pagerduty", status="firing", fingerprint="x", dedup_key=dedup_key)
    )
    try:
        assert (
            await asyncio.to_thread(events.trigger, "cert expiry on lb-1", "lb-1", dedup_key, "critical") == dedup_key
        )
        await state_when(dev_env, key, "triggered")
        assert await asyncio.to_thread(events.acknowledge, dedup_key) == dedup_key
        await state_when(dev_env, key, "acknowledged")
        assert await asyncio.to_thread(events.resolve, dedup_key) == dedup_key
        await state_when(dev_env, key, "resolved")
    finally:
        events.close()

    handle = dev_env.client.get_workflow_handle(incident_workflow_id(key), result_type=IncidentState)
    final = await asyncio.wait_for(handle.result(), 60)
    assert final.resolved_by == "pagerduty event"
    assert [e.kind for e in final.timeline].count("resolved") == 1
    assert final.postmortem_workflow_id is not None  # a sev1: its resolution started the post-mortem
    await settle_postmortem(dev_env.client, final.postmortem_workflow_id)


async def test_https_receiver_refuses_an_untrusted_or_plain_client(receiver_url: str, pki: Pki) -> None:
    # The same receiver, without trusting the test CA: the handshake fails, nothing is sent. (httpx, not the
    # pagerduty client, which retries a connection error for 21 s before it gives up.)
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await http.post(f"{receiver_url}/v2/enqueue", json={})
    # Plain HTTP on the HTTPS port gets no HTTP answer.
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.HTTPError):
            await http.get(receiver_url.replace("https://", "http://") + "/healthz")
    # Trusting the CA, /healthz answers over HTTPS.
    async with httpx.AsyncClient(verify=trusting(pki)) as http:
        assert (await http.get(f"{receiver_url}/healthz")).status_code == 200


# Configuration and start-up errors


def test_tls_is_off_by_default(tmp_path: Path) -> None:
    config = load_receiver_config({})
    assert (config.tls_cert, config.tls_key) == (None, None)
    assert server_context(config) is None
    listener = bind(loopback_settings(tmp_path), config)
    try:
        assert listener.url.startswith("http://127.0.0.1:")
        assert listener.tls is None
    finally:
        listener.sock.close()


def test_both_set_serves_https_tls12_or_newer_and_announces_it(pki: Pki, tmp_path: Path) -> None:
    config = load_receiver_config({"TOCSIN_HTTP_TLS_CERT": str(pki.cert), "TOCSIN_HTTP_TLS_KEY": str(pki.key)})
    assert (config.tls_cert, config.tls_key) == (pki.cert, pki.key)
    listener = bind(loopback_settings(tmp_path), config)
    try:
        assert listener.tls is not None
        assert listener.tls.minimum_version == ssl.TLSVersion.TLSv1_2
        assert listener.url.startswith("https://127.0.0.1:")
        assert announce(listener, config).startswith(f"tocsin: receiver {listener.url} (")
    finally:
        listener.sock.close()


@pytest.mark.parametrize("given", ["cert", "key"])
def test_only_one_set_is_a_start_up_error(pki: Pki, tmp_path: Path, given: str) -> None:
    config = ReceiverConfig(tls_cert=pki.cert) if given == "cert" else ReceiverConfig(tls_key=pki.key)
    missing = "TOCSIN_HTTP_TLS_KEY" if given == "cert" else "TOCSIN_HTTP_TLS_CERT"
    with pytest.raises(ReceiverError, match=f"but {missing} is not: HTTPS needs both"):
        bind(loopback_settings(tmp_path), config)


def test_a_key_not_the_certificates_is_a_start_up_error(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    other = make_pki(tmp_path / "other")
    config = ReceiverConfig(tls_cert=pki.cert, tls_key=other.key)
    with pytest.raises(ReceiverError) as raised:
        bind(loopback_settings(tmp_path), config)
    message = str(raised.value)
    assert message == (
        f"TOCSIN_HTTP_TLS_KEY: {other.key} is not the private key of the certificate in TOCSIN_HTTP_TLS_CERT "
        f"({pki.cert})"
    )
    body = "".join(other.key.read_text().splitlines()[1:-1])
    assert body[:16] not in message  # never the key itself


def test_unreadable_or_non_pem_files_are_start_up_errors(pki: Pki, tmp_path: Path) -> None:
    settings = loopback_settings(tmp_path)
    missing = tmp_path / "absent.pem"
    with pytest.raises(ReceiverError, match=f"^TOCSIN_HTTP_TLS_CERT: cannot read {re.escape(str(missing))}: "):
        bind(settings, ReceiverConfig(tls_cert=missing, tls_key=pki.key))
    with pytest.raises(ReceiverError, match=f"^TOCSIN_HTTP_TLS_KEY: cannot read {re.escape(str(missing))}: "):
        bind(settings, ReceiverConfig(tls_cert=pki.cert, tls_key=missing))
    # Swapped: the key where the certificate belongs.
    with pytest.raises(ReceiverError, match=r"^TOCSIN_HTTP_TLS_CERT: .* holds no PEM certificate"):
        bind(settings, ReceiverConfig(tls_cert=pki.key, tls_key=pki.cert))
    encrypted = tmp_path / "encrypted.pem"
    key = serialization.load_pem_private_key(pki.key.read_bytes(), password=None)
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    with pytest.raises(ReceiverError, match=r"^TOCSIN_HTTP_TLS_KEY: .* is encrypted"):
        bind(settings, ReceiverConfig(tls_cert=pki.cert, tls_key=encrypted))


@pytest.mark.parametrize("name", ["TOCSIN_HTTP_TLS_CERT", "TOCSIN_HTTP_TLS_KEY"])
def test_a_file_form_is_refused_not_ignored(pki: Pki, name: str) -> None:
    with pytest.raises(ReceiverConfigError, match=f"^{name}_FILE is not read: set {name} to the PEM file's path"):
        load_receiver_config({f"{name}_FILE": str(pki.cert)})
