"""Settings from the environment. Names are part of the interface: README documents each one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    home: Path = Field(description="TOCSIN_HOME: state dir (Temporal's SQLite file, outbox, post-mortems)")
    temporal_port: int = 7233
    ui_port: int = 8233
    http_port: int = 8080
    # The alert receiver's address: loopback unless credentials are configured (tocsin.receiver.serve.bind).
    http_host: str = "127.0.0.1"
    policy: Path = Path("policies/default.yaml")
    # Set: connect to that server and start none. Unset: run the embedded dev server.
    temporal_address: str | None = None
    namespace: str = "default"

    @property
    def embedded(self) -> bool:
        return self.temporal_address is None

    @property
    def target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def outbox_path(self) -> Path:
        return self.home / "outbox.jsonl"

    @property
    def postmortem_dir(self) -> Path:
        return self.home / "postmortems"

    @property
    def artifacts_dir(self) -> Path:
        """Where post-mortem activities keep what is too big for a history (a shared volume for several workers)."""
        return self.home / "artifacts"

    @property
    def temporal_db(self) -> Path:
        return self.home / "temporal.sqlite"


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{name}={raw!r} is not a TCP port")
    return int(raw)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    return Settings(
        home=Path(env.get("TOCSIN_HOME") or ".tocsin").absolute(),
        temporal_port=_port(env, "TOCSIN_TEMPORAL_PORT", 7233),
        ui_port=_port(env, "TOCSIN_UI_PORT", 8233),
        http_port=_port(env, "TOCSIN_HTTP_PORT", 8080),
        http_host=env.get("TOCSIN_HTTP_HOST") or "127.0.0.1",
        policy=Path(env.get("TOCSIN_POLICY") or "policies/default.yaml"),
        temporal_address=env.get("TEMPORAL_ADDRESS") or None,
        namespace=env.get("TEMPORAL_NAMESPACE") or "default",
    )
