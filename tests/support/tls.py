"""TLS on loopback for tests: a self-signed certificate (SMTP STARTTLS, kubeconfig client certs), and a
VendorServer on https (the Kubernetes fake, with mutual TLS)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.vendor_server import VendorServer


def self_signed(common_name: str) -> tuple[bytes, bytes]:
    """(certificate, private key), PEM: a CA for itself, valid for localhost and 127.0.0.1 for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


class TlsVendorServer(VendorServer):
    """A VendorServer on https, as `certificate` (PEM, with its `key`); with `client_ca`, a client must present a
    certificate that CA signed (mutual TLS, as an API server checking client certificates does)."""

    def __init__(self, certificate: bytes, key: bytes, client_ca: bytes | None = None) -> None:
        super().__init__()
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as tmp:  # ssl loads a key pair from files only
            cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert_file.write_bytes(certificate)
            key_file.write_bytes(key)
            self._context.load_cert_chain(cert_file, key_file)
        if client_ca is not None:
            self._context.verify_mode = ssl.CERT_REQUIRED
            self._context.load_verify_locations(cadata=client_ca.decode())

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def start(self) -> TlsVendorServer:
        super().start()
        # Before any client connects: accept() then does the handshake (a refused one is dropped by the server).
        assert self._httpd is not None
        self._httpd.socket = self._context.wrap_socket(self._httpd.socket, server_side=True)
        return self

    def __enter__(self) -> TlsVendorServer:
        return self.start()
