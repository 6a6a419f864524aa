"""Where the Kubernetes API is and how to authenticate to it: a kubeconfig file, or the pod's service account.

`cluster_access_from_env` picks, in order: `KUBECONFIG` (one or more files, merged as kubectl merges them:
the first file that sets a name or `current-context` wins), the in-cluster service account (when
`KUBERNETES_SERVICE_HOST` is set), `~/.kube/config`. `TOCSIN_KUBE_CONTEXT` picks a context other than the
current one.

Supported credentials: bearer `token` / `tokenFile`, client certificates (`client-certificate(-data)` +
`client-key(-data)`), basic auth; the cluster's `certificate-authority(-data)` or `insecure-skip-tls-verify`.
Not supported: `exec` and `auth-provider` plugins (aws eks get-token, gke-gcloud-auth-plugin) and
`tls-server-name`: give Tocsin a service-account token instead (a Secret of type
kubernetes.io/service-account-token, or run it in the cluster). Tokens are never logged or put in errors.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tocsin.addresses import is_loopback
from tocsin.runbooks.errors import PermanentRemediationError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
log = logging.getLogger("tocsin.kubernetes")
# Sources already warned about (once per process, not once per runbook step).
_WARNED: set[str] = set()


class KubernetesConfigError(PermanentRemediationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "KubernetesNotConfigured")


@dataclass(frozen=True)
class ClusterAccess:
    """How to reach one API server. `token_file` is read again for each request (projected service-account
    tokens rotate about hourly); `verify` is what httpx takes (an SSLContext, or False)."""

    server: str
    verify: ssl.SSLContext | bool
    source: str
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)

    def bearer(self) -> str | None:
        if self.token_file is not None:
            try:
                return self.token_file.read_text(encoding="utf-8").strip() or None
            except OSError as err:
                raise KubernetesConfigError(f"cannot read the token file {self.token_file}: {err.strerror}") from None
        return self.token


def cluster_access_from_env(env: Mapping[str, str] | None = None, home: Path | None = None) -> ClusterAccess:
    env = os.environ if env is None else env
    context = (env.get("TOCSIN_KUBE_CONTEXT") or "").strip() or None
    configured = [Path(p) for p in (env.get("KUBECONFIG") or "").split(os.pathsep) if p.strip()]
    if configured:
        return load_kubeconfig(configured, context)
    if env.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster(env)
    default = (home or Path.home()) / ".kube" / "config"
    if default.exists():
        return load_kubeconfig([default], context)
    raise KubernetesConfigError("no Kubernetes credentials: set KUBECONFIG, run in a cluster, or create ~/.kube/config")


def in_cluster(env: Mapping[str, str], root: Path = SERVICE_ACCOUNT) -> ClusterAccess:
    host = (env.get("KUBERNETES_SERVICE_HOST") or "").strip()
    port = (env.get("KUBERNETES_SERVICE_PORT") or "443").strip()
    if not host:
        raise KubernetesConfigError("not in a cluster: KUBERNETES_SERVICE_HOST is not set")
    token, ca = root / "token", root / "ca.crt"
    if not token.exists():
        raise KubernetesConfigError(f"in-cluster: no service-account token at {token} (automountServiceAccountToken?)")
    try:
        verify = ssl.create_default_context(cafile=str(ca))
    except (OSError, ssl.SSLError) as err:
        raise KubernetesConfigError(f"in-cluster: cannot load the cluster CA {ca}: {err}") from None
    host = f"[{host}]" if ":" in host else host
    return ClusterAccess(server=f"https://{host}:{port}", verify=verify, source="in-cluster", token_file=token)


def _named(docs: list[tuple[Path, dict[str, Any]]], section: str, name: str) -> tuple[Path, dict[str, Any]]:
    key = section[:-1]  # clusters -> cluster
    for path, doc in docs:
        for entry in doc.get(section) or []:
            if isinstance(entry, dict) and entry.get("name") == name and isinstance(entry.get(key), dict):
                return path, entry[key]
    raise KubernetesConfigError(f"kubeconfig: no {key} named {name!r}")


def load_kubeconfig(paths: list[Path], context: str | None = None) -> ClusterAccess:
    docs: list[tuple[Path, dict[str, Any]]] = []
    for path in paths:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise KubernetesConfigError(f"kubeconfig {path}: cannot read: {err.strerror}") from None
        except yaml.YAMLError as err:
            # Never the parser's own message: it quotes the offending line, which may be a password or token.
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise KubernetesConfigError(f"kubeconfig {path}: not valid YAML{where}") from None
        if isinstance(doc, dict):
            docs.append((path, doc))
    if not docs:
        raise KubernetesConfigError(f"kubeconfig {os.pathsep.join(map(str, paths))}: empty")
    name = context or next((str(d["current-context"]) for _, d in docs if d.get("current-context")), None)
    if not name:
        raise KubernetesConfigError("kubeconfig: no current-context (set TOCSIN_KUBE_CONTEXT)")
    _, ctx = _named(docs, "contexts", name)
    cluster_path, cluster = _named(docs, "clusters", str(ctx.get("cluster")))
    user_path, user = _named(docs, "users", str(ctx.get("user")))
    source = f"kubeconfig {cluster_path} (context {name})"
    server = str(cluster.get("server") or "").rstrip("/")
    if not server.startswith(("https://", "http://")):
        raise KubernetesConfigError(f"{source}: the cluster has no http(s) server")
    for unsupported in ("exec", "auth-provider"):
        if unsupported in user:
            raise KubernetesConfigError(
                f"{source}: user {ctx.get('user')!r} authenticates with {unsupported}, which Tocsin does not run; "
                "give it a service-account token (token or tokenFile)"
            )
    if cluster.get("tls-server-name"):
        raise KubernetesConfigError(f"{source}: tls-server-name is not supported")
    credentials = any(user.get(k) for k in ("token", "tokenFile", "username", "client-certificate", "client-key"))
    credentials = credentials or any(user.get(f"{k}-data") for k in ("client-certificate", "client-key"))
    if server.startswith("http://") and credentials and not is_loopback(urlsplit(server).hostname or ""):
        raise KubernetesConfigError(
            f"{source}: the server is http://, so its credentials would cross the network in clear text; "
            "use https (plain http is accepted only on loopback, e.g. kubectl proxy)"
        )
    if cluster.get("insecure-skip-tls-verify") and source not in _WARNED:
        _WARNED.add(source)
        log.warning("%s: insecure-skip-tls-verify: the API server's certificate is not checked", source)
    verify = _tls(source, cluster, cluster_path.parent, user, user_path.parent)
    token_file = _path(user.get("tokenFile"), user_path.parent)
    basic = (str(user["username"]), str(user.get("password") or "")) if user.get("username") else None
    return ClusterAccess(
        server=server,
        verify=verify,
        source=source,
        token=str(user["token"]) if user.get("token") else None,
        token_file=token_file,
        basic_auth=basic,
    )


def _path(value: Any, base: Path) -> Path | None:
    if not value:
        return None
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else base / path


def _data(source: str, item: str, value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise KubernetesConfigError(f"{source}: {item}-data is not base64") from None


def _tls(
    source: str, cluster: dict[str, Any], cluster_dir: Path, user: dict[str, Any], user_dir: Path
) -> ssl.SSLContext | bool:
    if cluster.get("insecure-skip-tls-verify"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        try:
            if cluster.get("certificate-authority-data"):
                ca = _data(source, "certificate-authority", cluster["certificate-authority-data"])
                context = ssl.create_default_context(cadata=ca.decode("ascii", errors="replace"))
            else:
                ca_file = _path(cluster.get("certificate-authority"), cluster_dir)
                context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        except (OSError, ssl.SSLError) as err:
            raise KubernetesConfigError(f"{source}: cannot load the cluster CA: {err}") from None
    cert = _pem(source, "client-certificate", user, user_dir)
    key = _pem(source, "client-key", user, user_dir)
    if cert and key:
        # ssl loads a key pair from files only: written to a private temporary directory, loaded, removed.
        with tempfile.TemporaryDirectory(prefix="tocsin-kube-") as tmp:
            cert_file, key_file = Path(tmp) / "client.crt", Path(tmp) / "client.key"
            for file, content in ((cert_file, cert), (key_file, key)):
                file.touch(mode=0o600)
                file.write_bytes(content)
            try:
                context.load_cert_chain(str(cert_file), str(key_file))
            except ssl.SSLError as err:
                raise KubernetesConfigError(f"{source}: the client certificate or key is not usable: {err}") from None
    elif cert or key:
        raise KubernetesConfigError(f"{source}: a client certificate needs its key, and a key its certificate")
    return context


def _pem(source: str, item: str, user: dict[str, Any], base: Path) -> bytes | None:
    if user.get(f"{item}-data"):
        return _data(source, item, user[f"{item}-data"])
    path = _path(user.get(item), base)
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as err:
        raise KubernetesConfigError(f"{source}: cannot read {item} {path}: {err.strerror}") from None
