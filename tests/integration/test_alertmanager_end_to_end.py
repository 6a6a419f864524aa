"""The real chain: a target's metric → Prometheus (rules exported from the policy) → Alertmanager (route
exported from the policy) → Tocsin's receiver → an IncidentWorkflow on a real Temporal dev server; and back:
the metric recovers, the alert resolves, the incident resolves itself after the flap window.

Prometheus 2.42 and Alertmanager 0.25 come from Debian's packages (`make test` installs them when missing)
and run on loopback ports chosen at run time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import run_workers
from tests.support.paths import ROOT
from tests.support.promstack import Process, Target, free_port, system_binary, wait_http
from tocsin.detection.prometheus_rules import alertmanager_config, prometheus_rules
from tocsin.incident.client import IncidentError, get_incident
from tocsin.incident.contracts import IncidentState
from tocsin.intake.contracts import NormalizedAlert
from tocsin.intake.routing import incident_key
from tocsin.policy.loader import load_policy
from tocsin.policy.schema import Policy
from tocsin.receiver.config import ReceiverConfig
from tocsin.receiver.serve import bind, build_server, serve_until, temporal_app
from tocsin.settings import Settings

SERVICE, ENVIRONMENT = "shop", "e2e"
AVAILABILITY = f'service_availability{{service="{SERVICE}",environment="{ENVIRONMENT}"}}'


def e2e_policy(tmp: Path) -> Path:
    """The default policy with seconds for minutes: the outage rule holds for 1s, quiet alerts close in 2s."""
    text = (ROOT / "policies" / "default.yaml").read_text()
    text = text.replace(
        'duration: "2 minutes"\n        name: ServiceAvailabilityLow',
        'duration: "1 second"\n        name: ServiceAvailabilityLow',
    )
    text = text.replace("flap_window: 5 minutes", "flap_window: 2 seconds")
    path = tmp / "policy.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("promstack")
    policy_path = e2e_policy(tmp)
    policy = load_policy(policy_path)
    target = Target()
    target.set(AVAILABILITY, 1.0)
    settings = Settings(home=tmp / "home", http_port=free_port())
    prom_port, am_port = free_port(), free_port()

    (tmp / "rules.yml").write_text(yaml.safe_dump(prometheus_rules(policy)))
    (tmp / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(tmp / "rules.yml")],
                "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
                "scrape_configs": [{"job_name": "shop", "static_configs": [{"targets": [f"127.0.0.1:{target.port}"]}]}],
            }
        )
    )
    am = alertmanager_config(policy, f"http://127.0.0.1:{settings.http_port}/api/v1/alerts/alertmanager")
    am["route"].update({"group_wait": "1s", "group_interval": "1s"})
    (tmp / "alertmanager.yml").write_text(yaml.safe_dump(am))

    alertmanager = Process(
        [
            system_binary("prometheus-alertmanager"),
            f"--config.file={tmp / 'alertmanager.yml'}",
            f"--storage.path={tmp / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ],
        tmp / "alertmanager.log",
    )
    prometheus = Process(
        [
            system_binary("prometheus"),
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        tmp / "prometheus.log",
    )
    try:
        wait_http(f"http://127.0.0.1:{am_port}/-/ready", alertmanager)
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready", prometheus)
        yield {"policy": policy, "target": target, "settings": settings, "prometheus": prom_port}
    finally:
        prometheus.stop()
        alertmanager.stop()
        target.server.shutdown()


@pytest.fixture
async def receiver(stack: dict[str, Any], dev_env: WorkflowEnvironment) -> AsyncIterator[None]:
    settings: Settings = stack["settings"]
    listener = bind(settings, ReceiverConfig())
    server = build_server(temporal_app(dev_env.client, stack["policy"], ReceiverConfig()))
    stop = asyncio.Event()
    serving = asyncio.create_task(serve_until(server, listener, stop))
    async with run_workers(dev_env.client, settings):
        yield
    stop.set()
    await serving


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds:.0f}s waiting for {what}")
        await asyncio.sleep(0.5)


async def test_prometheus_alertmanager_tocsin_and_back(
    stack: dict[str, Any], receiver: None, dev_env: WorkflowEnvironment
) -> None:
    policy: Policy = stack["policy"]
    expected = NormalizedAlert(
        source="alertmanager",
        status="firing",
        labels={"alertname": "ServiceAvailabilityLow", "service": SERVICE, "environment": ENVIRONMENT},
        fingerprint="x",
    )
    key = incident_key(policy, expected)
    seen: dict[str, IncidentState] = {}

    async def incident_is(status: str) -> bool:
        try:
            seen["state"] = await get_incident(dev_env.client, key)
        except IncidentError:
            return False
        return seen["state"].status == status

    stack["target"].set(AVAILABILITY, 0.2)
    await eventually(lambda: incident_is("triggered"), 60, "Prometheus → Alertmanager → Tocsin to open the incident")
    state = seen["state"]
    assert state.severity == "sev1"
    assert state.service == SERVICE
    assert state.response_workflow == "service_down_detection"
    assert state.title == f"Service {SERVICE} experiencing outage"
    assert [r.status for r in state.alerts.values()] == ["firing"]

    stack["target"].set(AVAILABILITY, 1.0)
    await eventually(lambda: incident_is("resolved"), 90, "the resolved alert to auto-resolve the incident")
    final = seen["state"]
    assert final.resolved_by == "tocsin"
    assert all(r.status == "resolved" for r in final.alerts.values())
    assert [e.text for e in final.timeline if e.kind == "resolved"] == [f"auto-resolved: {final.resolution_summary}"]
