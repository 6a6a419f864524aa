"""The receiver's credentials and limits, from the environment. Secrets never appear in a repr or a log.

Every secret is read from `NAME` or from the file `NAME_FILE` names (Docker and Kubernetes secrets), never
both. Set but empty is unset. Names (docs/receiving-alerts.md documents each):

- `TOCSIN_INGEST_TOKEN`: bearer token for the Alertmanager, Grafana and generic endpoints.
- `TOCSIN_INGEST_HMAC_SECRET`: HMAC-SHA256 secret for the same endpoints (`X-Tocsin-Signature`).
- `TOCSIN_INGEST_TOKEN_<SOURCE>`, `TOCSIN_INGEST_HMAC_SECRET_<SOURCE>` (SOURCE: ALERTMANAGER, GRAFANA,
  GENERIC): replace the shared token or secret for that endpoint only.
- `TOCSIN_PAGERDUTY_ROUTING_KEYS`: comma-separated 32-character integration keys `/v2/enqueue` accepts.
- `TOCSIN_INGEST_MAX_BYTES`: the largest body accepted (default 1 MiB).
- `TOCSIN_HTTP_TLS_CERT`, `TOCSIN_HTTP_TLS_KEY`: PEM files; both set serve HTTPS (tocsin/receiver/tls.py). Not
  secrets but paths, so they have no `_FILE` form.

With nothing configured the receiver is open: every endpoint accepts unauthenticated posts, it may only
listen on loopback, and it answers only requests whose Host is a loopback name (tocsin/receiver/host_check.py).
Once anything is configured, each endpoint accepts only its own credentials, and an endpoint with none
configured accepts nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from tocsin.intake.sources import PAGERDUTY_ROUTING_KEY_LENGTH
from tocsin.secret_settings import SecretSettingError, file_setting, read_secret_file, read_setting

DEFAULT_MAX_BYTES = 1024 * 1024
REPLAY_WINDOW_SECONDS = 300.0

# The endpoints that take a bearer token or an HMAC signature (PagerDuty's authenticates by routing key).
SignedSource = Literal["alertmanager", "grafana", "generic"]
SIGNED_SOURCES: tuple[SignedSource, ...] = ("alertmanager", "grafana", "generic")

TLS_CERT_VARIABLE = "TOCSIN_HTTP_TLS_CERT"
TLS_KEY_VARIABLE = "TOCSIN_HTTP_TLS_KEY"


class ReceiverConfigError(ValueError):
    """A setting is malformed: one line naming the variable, never its value."""


class ReceiverError(RuntimeError):
    """The receiver cannot start: an address it may not or cannot listen on, or TLS files it cannot use."""


@dataclass(frozen=True)
class Credentials:
    """What one endpoint accepts: a bearer token, an HMAC secret, either, or (both None) nothing."""

    token: SecretStr | None = None
    hmac_secret: SecretStr | None = None


@dataclass(frozen=True)
class ReceiverConfig:
    max_bytes: int = DEFAULT_MAX_BYTES
    token: SecretStr | None = None
    hmac_secret: SecretStr | None = None
    source_tokens: Mapping[SignedSource, SecretStr] = field(default_factory=dict)
    source_hmac_secrets: Mapping[SignedSource, SecretStr] = field(default_factory=dict)
    pagerduty_routing_keys: tuple[SecretStr, ...] = ()
    replay_window: float = REPLAY_WINDOW_SECONDS
    health_timeout: float = 5.0
    # Checked (both or neither, readable, matching) when the receiver binds: tls.server_context.
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def open(self) -> bool:
        """Nothing configured: no endpoint authenticates (and the receiver must stay on loopback)."""
        return not (
            self.token
            or self.hmac_secret
            or self.source_tokens
            or self.source_hmac_secrets
            or self.pagerduty_routing_keys
        )

    def credentials(self, source: SignedSource) -> Credentials:
        return Credentials(
            token=self.source_tokens.get(source, self.token),
            hmac_secret=self.source_hmac_secrets.get(source, self.hmac_secret),
        )

    def describe(self) -> str:
        """For the start-up line: which endpoint takes what, never a secret."""
        if self.open:
            return (
                "no TOCSIN_INGEST_TOKEN, TOCSIN_INGEST_HMAC_SECRET or TOCSIN_PAGERDUTY_ROUTING_KEYS configured: "
                "unauthenticated, listening on loopback only, for requests addressed to localhost, 127.0.0.1 or [::1]"
            )
        parts = []
        for source in SIGNED_SOURCES:
            creds = self.credentials(source)
            kinds = [k for k, v in (("bearer token", creds.token), ("HMAC", creds.hmac_secret)) if v]
            parts.append(f"{source}: {' or '.join(kinds) if kinds else 'disabled (no credentials)'}")
        keys = len(self.pagerduty_routing_keys)
        parts.append(f"pagerduty: {keys} routing key{'s' if keys != 1 else ''}" if keys else "pagerduty: disabled")
        return "; ".join(parts)


def _secret(env: Mapping[str, str], name: str) -> SecretStr | None:
    try:
        value = read_setting(env, name)
    except SecretSettingError as err:
        raise ReceiverConfigError(str(err)) from None
    return SecretStr(value) if value else None


def _routing_keys(env: Mapping[str, str]) -> tuple[SecretStr, ...]:
    name = "TOCSIN_PAGERDUTY_ROUTING_KEYS"
    try:
        value, path = file_setting(env, name)
        # A file holds one key a line (or comma-separated); blank lines and `#` comments are skipped.
        text = read_secret_file(path, f"{name}_FILE") if path else None
    except SecretSettingError as err:
        raise ReceiverConfigError(str(err)) from None
    raw = ",".join(line.split("#", 1)[0] for line in text.splitlines()) if text is not None else value or ""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    for i, key in enumerate(keys):
        if len(key) != PAGERDUTY_ROUTING_KEY_LENGTH:
            raise ReceiverConfigError(
                f"{name}: key {i + 1} has {len(key)} characters; PagerDuty integration keys have "
                f"{PAGERDUTY_ROUTING_KEY_LENGTH}"
            )
    return tuple(SecretStr(k) for k in dict.fromkeys(keys))


def _tls_path(env: Mapping[str, str], name: str) -> Path | None:
    """A PEM file's path; set but empty is unset. `NAME_FILE` is refused, not ignored: the value already is a
    path, and a misnamed variable must not silently leave the receiver on plain HTTP."""
    if env.get(f"{name}_FILE"):
        raise ReceiverConfigError(f"{name}_FILE is not read: set {name} to the PEM file's path (a mounted secret's)")
    value = env.get(name) or None
    return Path(value) if value else None


def _max_bytes(env: Mapping[str, str]) -> int:
    raw = env.get("TOCSIN_INGEST_MAX_BYTES")
    if not raw:
        return DEFAULT_MAX_BYTES
    if not raw.isdigit() or int(raw) <= 0:
        raise ReceiverConfigError(f"TOCSIN_INGEST_MAX_BYTES={raw!r} is not a positive number of bytes")
    return int(raw)


def load_receiver_config(env: Mapping[str, str] | None = None) -> ReceiverConfig:
    env = os.environ if env is None else env
    source_tokens = {}
    source_secrets = {}
    for source in SIGNED_SOURCES:
        if token := _secret(env, f"TOCSIN_INGEST_TOKEN_{source.upper()}"):
            source_tokens[source] = token
        if secret := _secret(env, f"TOCSIN_INGEST_HMAC_SECRET_{source.upper()}"):
            source_secrets[source] = secret
    return ReceiverConfig(
        max_bytes=_max_bytes(env),
        token=_secret(env, "TOCSIN_INGEST_TOKEN"),
        hmac_secret=_secret(env, "TOCSIN_INGEST_HMAC_SECRET"),
        source_tokens=source_tokens,
        source_hmac_secrets=source_secrets,
        pagerduty_routing_keys=_routing_keys(env),
        tls_cert=_tls_path(env, TLS_CERT_VARIABLE),
        tls_key=_tls_path(env, TLS_KEY_VARIABLE),
    )
