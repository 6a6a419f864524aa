"""docker-compose.yml and the Dockerfile, checked by reading them: no Docker engine needed."""

from __future__ import annotations

import json
import re
from typing import Any, cast

import pytest
import yaml
from temporalio.common import SearchAttributeIndexedValueType

from tests.support.paths import ROOT
from tocsin import search_attributes
from worker.main import GRACEFUL_SHUTDOWN

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

SERVICES = ("postgresql", "temporal", "temporal-admin-tools", "temporal-ui", "tocsin-worker")
SEARCH_ATTRIBUTE_JOB = "temporal-admin-tools"
CLI_TYPE = {SearchAttributeIndexedValueType.KEYWORD: "Keyword", SearchAttributeIndexedValueType.INT: "Int"}
SECRET_KEY = re.compile(r"PASSWORD|PWD|SECRET|TOKEN|API_KEY", re.IGNORECASE)
# A required variable (`${NAME}` or `${NAME:?message}`), never one with a default that would be a literal secret.
REQUIRED_VAR = re.compile(r"\$\{(?P<name>\w+)(?::?\?[^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return cast(dict[str, Any], yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")))


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    return cast(dict[str, Any], compose["services"][name])


def env(svc: dict[str, Any]) -> dict[str, str]:
    """A service's environment, in either compose syntax (mapping or list of NAME=value)."""
    raw = svc.get("environment") or {}
    if isinstance(raw, list):
        return dict(cast(str, item).partition("=")[::2] for item in raw)
    return {key: "" if value is None else str(value) for key, value in cast(dict[str, Any], raw).items()}


def depends_on(svc: dict[str, Any]) -> dict[str, str]:
    """Dependency -> condition; the short list syntax means `service_started`."""
    raw = svc.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(cast(list[str], raw), "service_started")
    return {name: cast(dict[str, Any], spec).get("condition", "service_started") for name, spec in raw.items()}


def container_ports(svc: dict[str, Any]) -> set[int]:
    """Container-side ports of `ports:` entries ("7233", "7233:7233", "127.0.0.1:7233:7233", long syntax)."""
    ports: set[int] = set()
    for entry in svc.get("ports") or []:
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            ports.add(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def script(svc: dict[str, Any]) -> str:
    parts: list[Any] = []
    for key in ("entrypoint", "command"):
        value = svc.get(key) or []
        parts.extend(value if isinstance(value, list) else [value])
    return "\n".join(str(part) for part in parts)


def seconds(duration: str) -> float:
    """A compose duration such as "30s", "1m30s" or "500ms"."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    matches = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert matches and "".join(n + u for n, u in matches) == duration, f"not a compose duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in matches)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            pairs.append((instruction.upper(), args.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (instruction, _) in enumerate(instructions) if instruction == "FROM")
    return instructions[last_from:]


def worker_address(compose: dict[str, Any]) -> str:
    return env(service(compose, "tocsin-worker"))["TEMPORAL_ADDRESS"]


def test_all_services_are_defined(compose):
    assert set(SERVICES) <= set(compose["services"])


def test_worker_is_built_from_this_repo(compose):
    build = service(compose, "tocsin-worker")["build"]
    context = build if isinstance(build, str) else build.get("context")
    assert context in (".", "./")


def test_worker_targets_the_temporal_frontend(compose):
    host, _, port = worker_address(compose).rpartition(":")
    assert host == "temporal"
    assert host in compose["services"]
    assert int(port) in container_ports(service(compose, "temporal"))
    assert env(service(compose, "tocsin-worker"))["TEMPORAL_NAMESPACE"] == "default"


def test_ui_and_search_attribute_job_use_the_worker_address(compose):
    address = worker_address(compose)
    assert env(service(compose, "temporal-ui"))["TEMPORAL_ADDRESS"] == address
    job_addresses = set(re.findall(r"--address\s+(\S+)", script(service(compose, SEARCH_ATTRIBUTE_JOB))))
    assert job_addresses == {address}


def test_temporal_waits_for_a_healthy_database(compose):
    assert depends_on(service(compose, "temporal"))["postgresql"] == "service_healthy"
    healthcheck = service(compose, "postgresql")["healthcheck"]
    assert "pg_isready" in " ".join(healthcheck["test"])


def test_temporal_authenticates_as_the_database_user(compose):
    db, temporal = env(service(compose, "postgresql")), env(service(compose, "temporal"))
    assert temporal["DB"] == "postgres12"
    assert temporal["POSTGRES_SEEDS"] == "postgresql"
    assert temporal["POSTGRES_USER"] == db["POSTGRES_USER"]
    password_var = REQUIRED_VAR.fullmatch(db["POSTGRES_PASSWORD"])
    assert password_var is not None
    temporal_password_var = REQUIRED_VAR.fullmatch(temporal["POSTGRES_PWD"])
    assert temporal_password_var is not None
    assert temporal_password_var["name"] == password_var["name"]


def test_every_service_healthy_dependency_has_a_healthcheck(compose):
    # Compose refuses to start a stack whose service_healthy target has no healthcheck.
    waited_on = {
        name
        for svc in compose["services"].values()
        for name, condition in depends_on(svc).items()
        if condition == "service_healthy"
    }
    assert waited_on >= {"postgresql", "temporal"}
    for name in waited_on:
        assert service(compose, name).get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_temporal_healthcheck_probes_its_own_frontend(compose):
    test = service(compose, "temporal")["healthcheck"]["test"]
    command = " ".join(test)
    assert "cluster health" in command
    assert f"--address {worker_address(compose)}" in command


def test_worker_waits_for_temporal_and_the_search_attributes(compose):
    conditions = depends_on(service(compose, "tocsin-worker"))
    assert conditions["temporal"] == "service_healthy"
    assert conditions[SEARCH_ATTRIBUTE_JOB] == "service_completed_successfully"


def test_search_attribute_job_registers_exactly_tocsins_attributes(compose):
    job = service(compose, SEARCH_ATTRIBUTE_JOB)
    text = script(job)
    pairs = re.findall(r"search-attribute create\b[^\n]*?--name\s+(\w+)\s+--type\s+(\w+)", text)
    expected = {key.name: CLI_TYPE[key.indexed_value_type] for key in search_attributes.ALL}
    assert expected == {
        "IncidentSeverity": "Keyword",
        "IncidentStatus": "Keyword",
        "IncidentService": "Keyword",
        "EscalationLevel": "Int",
    }
    assert sorted(pairs) == sorted(expected.items())
    assert "--namespace default" in text
    # Re-running the job on every `compose up` must not fail on attributes it registered last time.
    assert "already exists" in text
    # A one-shot job that restarts never "completes", and the worker would wait for it forever.
    assert str(job.get("restart", "no")) in ("no", "on-failure")


def test_no_literal_secrets(compose):
    declared = compose.get("secrets") or {}
    for name, svc in compose["services"].items():
        for key, value in env(svc).items():
            if not SECRET_KEY.search(key):
                continue
            if key.endswith("_FILE"):
                # A Docker secret: the value is a path, the secret itself a file the repo does not hold.
                secret = value.removeprefix("/run/secrets/")
                assert value.startswith("/run/secrets/") and secret in (svc.get("secrets") or []), (name, key)
                assert "file" in declared[secret], f"secret {secret} must come from a file"
            else:
                assert REQUIRED_VAR.fullmatch(value), f"{name}: {key} must be a required ${{VAR}} reference"


def test_the_receiver_listens_beyond_loopback_only_with_a_token(compose):
    receiver = compose["services"]["tocsin-receiver"]
    variables = env(receiver)
    assert receiver["command"] == ["tocsin", "receiver"]
    assert variables["TOCSIN_HTTP_HOST"] == "0.0.0.0"
    assert variables["TOCSIN_INGEST_TOKEN_FILE"].startswith("/run/secrets/")
    assert variables["TEMPORAL_ADDRESS"] == env(compose["services"]["tocsin-worker"])["TEMPORAL_ADDRESS"]
    assert any(str(p).endswith(f":{variables['TOCSIN_HTTP_PORT']}") for p in receiver["ports"])


def test_named_volumes_are_declared(compose):
    declared = set(compose.get("volumes") or {})
    used = set()
    for svc in compose["services"].values():
        for mount in svc.get("volumes") or []:
            if isinstance(mount, dict):
                if mount.get("type", "volume") == "volume" and mount.get("source"):
                    used.add(mount["source"])
            elif ":" in mount and not mount.startswith(("/", ".", "~", "$")):
                used.add(mount.split(":", 1)[0])
    assert used, "expected named volumes for the database and the worker's state"
    assert used <= declared


def test_state_lives_on_named_volumes(compose):
    def mounted_at(svc: dict[str, Any]) -> dict[str, str]:
        targets = {}
        for mount in svc.get("volumes") or []:
            if isinstance(mount, str) and mount.count(":") >= 1:
                source, target = mount.split(":")[:2]
                targets[target] = source
        return targets

    declared = set(compose.get("volumes") or {})
    worker = service(compose, "tocsin-worker")
    assert mounted_at(worker).get(env(worker)["TOCSIN_HOME"]) in declared
    assert mounted_at(service(compose, "postgresql")).get("/var/lib/postgresql/data") in declared


def test_worker_gets_time_to_drain_on_stop(compose):
    worker = service(compose, "tocsin-worker")
    assert worker["restart"] == "unless-stopped"
    assert seconds(str(worker["stop_grace_period"])) > GRACEFUL_SHUTDOWN.total_seconds()


def test_the_image_builds_the_policy_and_templates_into_the_package(compose):
    """The wheel the build stage installs carries the default policy and templates (tocsin/bundled.py), so the
    worker needs no TOCSIN_POLICY and no files beside it."""
    instructions = dockerfile_instructions()
    last_from = max(i for i, (instruction, _) in enumerate(instructions) if instruction == "FROM")
    build = [args for instruction, args in instructions[:last_from] if instruction == "COPY"]
    assert any(args.split()[0] == "templates/" for args in build)
    assert any(args.split()[0] == "policies/" for args in build)
    for name in ("tocsin-worker", "tocsin-receiver"):
        assert "TOCSIN_POLICY" not in env(service(compose, name))


def test_dockerfile_runs_the_worker_as_non_root():
    assert DOCKERFILE.is_file()
    stage = final_stage()
    assert stage[0][1].split()[0] == "python:3.11-slim"
    cmd = [args for instruction, args in stage if instruction == "CMD"][-1]
    # Exec form, so the worker is PID 1 and gets SIGTERM itself.
    assert json.loads(cmd) == ["python", "-m", "worker"]
    user = [args for instruction, args in stage if instruction == "USER"][-1]
    assert user.split(":")[0] not in ("root", "0")


def test_dockerignore_keeps_local_state_out_of_the_build():
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".git", ".venv", ".tocsin", ".env"} <= ignored
