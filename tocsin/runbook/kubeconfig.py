"""Which Kubernetes API server, and how to authenticate to it: a lightkube configuration, chosen from the environment.

`cluster_access_from_env` picks, in order: `KUBECONFIG` (one or more files, merged as kubectl merges them: the
first file that sets a name or `current-context` wins), the in-cluster service account (when
`KUBERNETES_SERVICE_HOST` is set), `~/.kube/config`. `TOCSIN_KUBE_CONTEXT` picks a context other than the
current one. Not lightkube's `KubeConfig.from_env`: it reads `os.environ` (the activities are given their
environment), tries the pod's account before an explicit KUBECONFIG, reads one file only, and lets the YAML
parser's message (which quotes the offending line, perhaps a password) through.

Authentication is lightkube's, as kubectl's: bearer `token` / `tokenFile` (read again when the server answers
401: projected service-account tokens rotate), `exec` credential plugins (aws eks get-token,
gke-gcloud-auth-plugin, kubelogin; apiVersion client.authentication.k8s.io/v1beta1, run again on a 401), client
certificates, basic auth; the cluster's `certificate-authority(-data)` or `insecure-skip-tls-verify`. Refused
here with the reason: `auth-provider` (gone from kubectl since 1.26) and `tls-server-name` (lightkube would
ignore it and check the certificate against the wrong name).

KubernetesConfigError is permanent: it names the file, context and setting, never a credential, the file's
text or an exec plugin's output.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec
import yaml
from lightkube import ConfigError, SingleConfig
from lightkube.config.models import Cluster, Context, User

from tocsin.addresses import is_loopback
from tocsin.runbook.errors import PermanentRemediationError

M = TypeVar("M", Context, Cluster, User)
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
log = logging.getLogger("tocsin.kubernetes")
# Sources already warned about (once per process, not once per runbook step).
_WARNED: set[str] = set()
# Settings naming files, resolved against the directory of the kubeconfig file that holds them, as kubectl does.
_CLUSTER_FILES = ("certificate-authority",)
_USER_FILES = ("client-certificate", "client-key", "tokenFile")


class KubernetesConfigError(PermanentRemediationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "KubernetesNotConfigured")


@dataclass(frozen=True)
class ClusterAccess:
    """One API server: lightkube's configuration of it (not in the repr: its user holds credentials), and where
    it came from, for messages."""

    config: SingleConfig = field(repr=False)
    source: str

    @property
    def server(self) -> str:
        return self.config.cluster.server


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
    """The pod's service account (lightkube re-reads the token file when a rotated token gets a 401)."""
    host = (env.get("KUBERNETES_SERVICE_HOST") or "").strip()
    port = (env.get("KUBERNETES_SERVICE_PORT") or "443").strip()
    if not host:
        raise KubernetesConfigError("not in a cluster: KUBERNETES_SERVICE_HOST is not set")
    token, ca = root / "token", root / "ca.crt"
    if not token.is_file():
        raise KubernetesConfigError(f"in-cluster: no service-account token at {token} (automountServiceAccountToken?)")
    if not ca.is_file():
        raise KubernetesConfigError(f"in-cluster: no cluster CA at {ca}")
    host = f"[{host}]" if ":" in host else host
    cluster = Cluster(server=f"https://{host}:{port}", certificate_auth=str(ca))
    context = Context(cluster="in-cluster", user="in-cluster")
    config = SingleConfig("in-cluster", context, cluster, User(token_file=str(token)))
    return ClusterAccess(config, "in-cluster")


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
    _check(source, cluster, user, str(ctx.get("user")))
    cluster = _resolved(source, cluster, _CLUSTER_FILES, cluster_path.parent)
    user = _resolved(source, user, _USER_FILES, user_path.parent)
    if cluster.get("insecure-skip-tls-verify") and source not in _WARNED:
        _WARNED.add(source)
        log.warning("%s: insecure-skip-tls-verify: the API server's certificate is not checked", source)
    user_name = str(ctx.get("user"))
    config = SingleConfig(
        name,
        _model(f"{source}: context {name!r}", ctx, Context),
        _model(f"{source}: cluster {ctx.get('cluster')!r}", cluster, Cluster),
        _model(f"{source}: user {user_name!r}", user, User),
    )
    return ClusterAccess(config, source)


def _model(where: str, entry: dict[str, Any], model: type[M]) -> M:
    """`entry` as lightkube's model of it."""
    try:
        return msgspec.convert(entry, model)
    except msgspec.ValidationError as err:  # its message names the setting and the type, never the value
        raise KubernetesConfigError(f"{where}: {err}") from None


def _check(source: str, cluster: Mapping[str, Any], user: Mapping[str, Any], user_name: str) -> None:
    server = str(cluster.get("server") or "")
    if not server.startswith(("https://", "http://")):
        raise KubernetesConfigError(f"{source}: the cluster has no http(s) server")
    if "auth-provider" in user:
        raise KubernetesConfigError(
            f"{source}: user {user_name!r} authenticates with auth-provider, which kubectl itself dropped; "
            "use its exec plugin (gke-gcloud-auth-plugin, kubelogin) or a service-account token"
        )
    if cluster.get("tls-server-name"):
        raise KubernetesConfigError(f"{source}: tls-server-name is not supported")
    inline = {
        "certificate-authority-data": cluster.get("certificate-authority-data"),
        "client-certificate-data": user.get("client-certificate-data"),
        "client-key-data": user.get("client-key-data"),
    }
    for key, value in inline.items():
        try:
            base64.b64decode(str(value or ""), validate=True)
        except (binascii.Error, ValueError):
            raise KubernetesConfigError(f"{source}: {key} is not base64") from None
    has_cert = bool(user.get("client-certificate") or user.get("client-certificate-data"))
    if has_cert != bool(user.get("client-key") or user.get("client-key-data")):
        raise KubernetesConfigError(f"{source}: a client certificate needs its key, and a key its certificate")
    credentials = any(user.get(k) for k in ("token", "tokenFile", "username", "exec")) or has_cert
    if server.startswith("http://") and credentials and not is_loopback(urlsplit(server).hostname or ""):
        raise KubernetesConfigError(
            f"{source}: the server is http://, so its credentials would cross the network in clear text; "
            "use https (plain http is accepted only on loopback, e.g. kubectl proxy)"
        )


def _resolved(source: str, entry: dict[str, Any], keys: tuple[str, ...], base: Path) -> dict[str, Any]:
    """`entry` with its file settings made absolute, each one checked now rather than at the first request."""
    resolved = dict(entry)
    for key in keys:
        if not entry.get(key):
            continue
        path = Path(str(entry[key])).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise KubernetesConfigError(f"{source}: {key} {path} is not a readable file")
        resolved[key] = str(path)
    return resolved


def credential_problem(access: ClusterAccess, err: Exception) -> KubernetesConfigError | None:
    """What went wrong while lightkube authenticated a request (reading the token file, running the exec plugin),
    or None when `err` is not about credentials."""
    user = access.config.user or User()
    if isinstance(err, ConfigError):
        # lightkube appends a failed plugin's error output after ": ": it may quote credentials, so never that.
        return KubernetesConfigError(f"{access.source}: {str(err).partition(': ')[0]}")
    if user.exec is not None and isinstance(err, OSError):
        return KubernetesConfigError(
            f"{access.source}: cannot run the exec plugin {user.exec.command!r}: {err.strerror}"
        )
    if user.exec is not None and isinstance(err, json.JSONDecodeError | KeyError | TypeError):
        # lightkube reads status.token of the JSON the plugin printed: not JSON, or no token in it.
        return KubernetesConfigError(f"{access.source}: the exec plugin {user.exec.command!r} printed no token")
    if user.token_file is not None and isinstance(err, OSError):
        return KubernetesConfigError(f"{access.source}: cannot read the token file {user.token_file}: {err.strerror}")
    return None
