"""`tocsin simulate` over the recorded 3-alert stream (tests/fixtures/simulate/three-alerts.jsonl): the real
workers on their own time-skipping server print the expected pages in seconds; `--compare` with a policy whose
first escalation delay differs shows the difference. And `tocsin incidents export` against a dev server writes
a file that simulate reads back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import run_workers
from tests.support.paths import FIXTURES, ROOT
from tests.support.product import CLI_TIMEOUT, TOCSIN
from tocsin.cli.main import main
from tocsin.incident.client import get_incident
from tocsin.intake.ingest import ingest_alerts
from tocsin.policy.loader import load_policy
from tocsin.settings import Settings
from tocsin.simulate.engine import prepare, simulate
from tocsin.simulate.pages import format_offset
from tocsin.simulate.stream import parse_stream

ALERTS = FIXTURES / "simulate" / "three-alerts.jsonl"
CHECKOUT = "serviceavailabilitylow-checkout-production-147610bbfc"
BILLING = "paymenterrors-billing-production-d776694dd7"
# The default chain (pagerduty x3 five minutes apart, phone x2 two apart, sms x3 one apart) from each opening:
# checkout's sev1 at +0s, billing's sev2 at +2m. The second checkout alert (+90s) joins the first's incident.
LEVELS = [(1, "alice", "pagerduty")] * 3 + [(2, "alice", "phone")] * 2 + [(3, "alice", "sms")] * 3
CHECKOUT_AT = ["+0s", "+5m", "+10m", "+15m", "+17m", "+19m", "+20m", "+21m"]
BILLING_AT = ["+2m", "+7m", "+12m", "+17m", "+19m", "+21m", "+22m", "+23m"]


def policy_file(tmp_path: Path, name: str, first_delay: str = "5 minutes") -> Path:
    """The default policy with one person on call (today's shift must not decide who a test expects), response
    and mitigation targets off the pages' minutes (a target due within a second of a page delays that page by
    the incident's one-second floor), and the first level's delay as given."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    for rotation in data["roster"]["rotations"].values():
        rotation["members"] = ["alice"]
    levels = data["incident_classification"]["severity_levels"]
    levels["sev1"].update(response_time="4 minutes", escalation_time="14 minutes")
    levels["sev2"].update(response_time="14 minutes", escalation_time="29 minutes")
    data["escalation_policies"]["primary_oncall"][0]["escalation_delay"] = first_delay
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load_policy(path)  # valid, or the test is wrong
    return path


async def settled(env: WorkflowEnvironment, key: str) -> None:
    for _ in range(100):
        with contextlib.suppress(RPCError):
            if (await get_incident(env.client, key)).timeline:
                return
        await asyncio.sleep(0.1)
    pytest.fail(f"incident {key} did not answer its status query within 10s")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TOCSIN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_simulate_prints_each_incidents_pages(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = policy_file(tmp_path, "candidate.yaml")
    began = time.monotonic()
    code, out, err = run(capsys, "simulate", "--policy", str(policy), "--alerts", str(ALERTS), "--json")
    took = time.monotonic() - began
    assert code == 0, err
    assert took < 30, f"simulate took {took:.1f}s"
    incidents = {i["key"]: i for i in json.loads(out)["incidents"]}
    assert list(incidents) == [CHECKOUT, BILLING]
    assert (incidents[CHECKOUT]["severity"], incidents[CHECKOUT]["opened"]) == ("sev1", "+0s")
    assert (incidents[BILLING]["severity"], incidents[BILLING]["opened"]) == ("sev2", "+2m")
    for key, times in ((CHECKOUT, CHECKOUT_AT), (BILLING, BILLING_AT)):
        pages = [(p["offset"], p["level"], p["person"], p["channel"]) for p in incidents[key]["pages"]]
        assert pages == [(at, *level) for at, level in zip(times, LEVELS, strict=True)], key
    # Nothing was sent anywhere, and nothing of the run is left in the operator's state dir.
    assert not home.exists() or not any(home.iterdir())

    # The table a person reads: one per incident, a row per page.
    code, out, _ = run(capsys, "simulate", "--policy", str(policy), "--alerts", str(ALERTS))
    assert code == 0
    assert f"{CHECKOUT}  [sev1] Service checkout experiencing outage (checkout), opened +0s" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("+")]
    assert rows[:4] == [
        ["+0s", "1", "alice", "pagerduty"],
        ["+5m", "1", "alice", "pagerduty"],
        ["+10m", "1", "alice", "pagerduty"],
        ["+15m", "2", "alice", "phone"],
    ]


def test_compare_shows_a_different_first_delay(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOCSIN_POLICY", str(policy_file(tmp_path, "current.yaml")))
    candidate = policy_file(tmp_path, "candidate.yaml", first_delay="2 minutes")
    began = time.monotonic()
    code, out, err = run(capsys, "simulate", "--policy", str(candidate), "--alerts", str(ALERTS), "--compare")
    took = time.monotonic() - began
    assert code == 0, err
    assert took < 30, f"simulate --compare took {took:.1f}s"
    # Side by side: the current policy's second page at +5m beside the candidate's at +2m.
    assert "CURRENT AT" in out and "CANDIDATE AT" in out
    assert any(
        line.split()[:9] == ["+5m", "1", "alice", "pagerduty", "|", "+2m", "1", "alice", "pagerduty"]
        for line in out.splitlines()
    )
    differences = out.split("\ndifferences:\n", 1)[1]
    assert f"{CHECKOUT}: page 2 of level 1 alice via pagerduty: +5m -> +2m" in differences
    assert f"{CHECKOUT}: page 1 of level 2 alice via phone: +15m -> +6m" in differences
    assert f"{BILLING}: page 2 of level 1 alice via pagerduty: +7m -> +4m" in differences
    # The first page does not move: the opening pages at once under both.
    assert "page 1 of level 1" not in differences

    code, out, _ = run(capsys, "simulate", "--policy", str(candidate), "--alerts", str(ALERTS), "--compare", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["differences"] and set(report) == {"current", "candidate", "differences"}


def test_same_policy_compares_equal(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = policy_file(tmp_path, "same.yaml")
    monkeypatch.setenv("TOCSIN_POLICY", str(policy))
    code, out, err = run(capsys, "simulate", "--policy", str(policy), "--alerts", str(ALERTS), "--compare")
    assert code == 0, err
    assert out.rstrip().endswith("differences: none")


def test_an_alert_that_fires_again_after_resolving_is_a_second_incident(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Resolved at +1m, the incident resolves itself after the flap window (+6m); firing again at +20m opens a
    # new incident under the same key, with pages of its own.
    alert = '"labels": {"alertname": "ServiceAvailabilityLow", "service": "checkout", "environment": "production"}'
    alerts = tmp_path / "again.jsonl"
    alerts.write_text(
        f'{{"at": "+0s", {alert}}}\n{{"at": "+1m", "status": "resolved", {alert}}}\n{{"at": "+20m", {alert}}}\n'
    )
    code, out, err = run(
        capsys, "simulate", "--policy", str(policy_file(tmp_path, "p.yaml")), "--alerts", str(alerts), "--json"
    )
    assert code == 0, err
    incidents = json.loads(out)["incidents"]
    assert [(i["occurrence"], i["opened"]) for i in incidents] == [(1, "+0s"), (2, "+20m")]
    assert len({i["key"] for i in incidents}) == 1
    assert [p["offset"] for p in incidents[0]["pages"]] == ["+0s", "+5m"]
    assert [p["offset"] for p in incidents[1]["pages"]][:2] == ["+20m", "+25m"]


async def test_export_writes_a_file_simulate_replays(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """Against a dev server: real incidents from the receiver's intake, exported by the command, read back as a
    stream that groups into the same incidents."""
    settings = Settings(home=tmp_path / "home")
    policy = load_policy(settings.policy)
    stream = parse_stream(ALERTS.read_text())
    out = tmp_path / "export.jsonl"
    env = {**os.environ, "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host}
    env["TOCSIN_HOME"] = str(tmp_path / "cli-home")
    async with run_workers(dev_env.client, settings):
        for timed in stream.alerts:
            await ingest_alerts(dev_env.client, policy, [timed.alert])
        # Both incidents have run their first task (a query before it fails), and the workers answer the
        # export's status queries meanwhile.
        for key in (CHECKOUT, BILLING):
            await settled(dev_env, key)
        command = await asyncio.create_subprocess_exec(
            str(TOCSIN), "incidents", "export", "--since", "10m", "--out", str(out), env=env, stderr=PIPE
        )
        _, err = await asyncio.wait_for(command.communicate(), CLI_TIMEOUT)
    assert command.returncode == 0, err.decode()
    assert "alerts of" in err.decode()
    again = parse_stream(out.read_text(), "export")
    ours = [t for t in again.alerts if t.alert.labels["alertname"] in ("ServiceAvailabilityLow", "PaymentErrors")]
    # Two checkout alerts (their own fingerprints, the incident's labels), one billing. Their order is when each
    # incident took its alert, which for three alerts sent at once is not the order they were sent in.
    assert {t.alert.fingerprint for t in ours} == {t.alert.fingerprint for t in stream.alerts}
    assert sorted(t.alert.labels["service"] for t in ours) == ["billing", "checkout", "checkout"]
    assert [t.offset for t in again.alerts] == sorted(t.offset for t in again.alerts)

    # The recording replays: the same two incidents, each paging the whole chain from its opening (the three
    # alerts were taken within moments of each other here, in an order of the workers' making).
    policy_path = policy_file(tmp_path, "replay.yaml")
    replay, _ = prepare(policy_path, again, tmp_path / "home", "export")
    result = await simulate(policy_path, replay, again)
    expected = [(at, *level) for at, level in zip(CHECKOUT_AT, LEVELS, strict=True)]
    for incident in result.incidents:
        if incident.key in (CHECKOUT, BILLING):
            since = incident.pages[0].offset
            pages = [(format_offset(p.offset - since), p.level, p.person, p.channel) for p in incident.pages]
            assert pages == expected, incident.key
    assert {CHECKOUT, BILLING} <= {i.key for i in result.incidents}
