"""Settings from the environment. Names are part of the interface: docs/configuration.md documents each one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tocsin.bundled import DEFAULT_POLICY

DEFAULT_OUTBOX_MAX_BYTES = 10 * 1024 * 1024
# Smaller is almost surely a unit mistake ("10" meaning 10 MiB), and would rotate every few deliveries.
MIN_OUTBOX_BYTES = 4096
DEFAULT_OUTBOX_KEEP = 5
MAX_OUTBOX_KEEP = 100
# Incident workflows a worker keeps in memory between their tasks; one not cached replays its history when it
# next has work (about 15 ms of CPU here). Chosen from `make bench`'s memory phase (worker RSS with 1,000 open
# incidents, budget 200 MiB): cache 100 -> 180 MiB, 200 -> 192 MiB, 1000 (the SDK's default) -> 388 MiB; about
# 0.2 MiB per cached workflow, most of it in the SDK's native core. 150 keeps a storm's 100 keys, its guard and
# its storm incident cached with margin under the budget. See docs/benchmark.md.
DEFAULT_WORKFLOW_CACHE = 150
MIN_WORKFLOW_CACHE = 10


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    home: Path = Field(description="TOCSIN_HOME: state dir (Temporal's SQLite file, outbox, post-mortems)")
    temporal_port: int = 7233
    ui_port: int = 8233
    http_port: int = 8080
    # The alert receiver's address: loopback unless credentials are configured (tocsin.receiver.serve.bind).
    http_host: str = "127.0.0.1"
    # TOCSIN_POLICY, else the policy shipped in the package (tocsin.bundled: the override order).
    policy: Path = DEFAULT_POLICY
    # Set: connect to that server and start none. Unset: run the embedded dev server.
    temporal_address: str | None = None
    namespace: str = "default"
    # The outbox rotates past this size, keeping this many old files (outbox.jsonl.1 is the newest).
    outbox_max_bytes: int = Field(default=DEFAULT_OUTBOX_MAX_BYTES, ge=MIN_OUTBOX_BYTES)
    outbox_keep: int = Field(default=DEFAULT_OUTBOX_KEEP, ge=1, le=MAX_OUTBOX_KEEP)
    workflow_cache: int = Field(default=DEFAULT_WORKFLOW_CACHE, ge=MIN_WORKFLOW_CACHE)

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


def _whole(env: Mapping[str, str], name: str, default: int, low: int, high: int | None, unit: str) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    bound = f"at least {low}" if high is None else f"from {low} to {high}"
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        raise ValueError(f"{name}={raw!r} is not a whole number of {unit} {bound}")
    return int(raw)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    return Settings(
        home=Path(env.get("TOCSIN_HOME") or ".tocsin").absolute(),
        temporal_port=_port(env, "TOCSIN_TEMPORAL_PORT", 7233),
        ui_port=_port(env, "TOCSIN_UI_PORT", 8233),
        http_port=_port(env, "TOCSIN_HTTP_PORT", 8080),
        http_host=env.get("TOCSIN_HTTP_HOST") or "127.0.0.1",
        policy=Path(env.get("TOCSIN_POLICY") or DEFAULT_POLICY),
        temporal_address=env.get("TEMPORAL_ADDRESS") or None,
        namespace=env.get("TEMPORAL_NAMESPACE") or "default",
        outbox_max_bytes=_whole(
            env, "TOCSIN_OUTBOX_MAX_BYTES", DEFAULT_OUTBOX_MAX_BYTES, MIN_OUTBOX_BYTES, None, "bytes"
        ),
        outbox_keep=_whole(env, "TOCSIN_OUTBOX_KEEP", DEFAULT_OUTBOX_KEEP, 1, MAX_OUTBOX_KEEP, "files"),
        workflow_cache=_whole(
            env, "TOCSIN_WORKFLOW_CACHE", DEFAULT_WORKFLOW_CACHE, MIN_WORKFLOW_CACHE, None, "workflows"
        ),
    )
