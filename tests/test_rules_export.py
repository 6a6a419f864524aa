"""`tocsin rules export`: the policy's triggers as Prometheus rules that promtool accepts, and a route
that amtool accepts, pointing at the receiver."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from tocsin.cli.main import main
from tocsin.detection.prometheus_rules import alertmanager_config, prometheus_duration, prometheus_rules
from tocsin.policy.schema import Policy


def tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is missing: `make test` installs Debian's prometheus and prometheus-alertmanager")
    return found


@pytest.mark.parametrize(
    ("value", "text"),
    [(timedelta(minutes=2), "2m"), (timedelta(seconds=90), "1m30s"), (timedelta(hours=1), "1h"), (timedelta(0), "0s")],
)
def test_prometheus_durations(value: timedelta, text: str) -> None:
    assert prometheus_duration(value) == text


def test_every_trigger_becomes_a_rule_with_its_name_duration_and_severity(default_policy: Policy) -> None:
    rules = {r["alert"]: r for g in prometheus_rules(default_policy)["groups"] for r in g["rules"]}
    assert set(rules) == {
        "ServiceAvailabilityLow",
        "ServiceErrorRateHigh",
        "ServiceResponseTimeHigh",
        "DatabaseConnectionPoolSaturated",
        "DatabaseQueryLatencyHigh",
    }
    assert rules["ServiceAvailabilityLow"]["for"] == "2m"
    assert rules["ServiceAvailabilityLow"]["labels"] == {
        "tocsin_workflow": "service_down_detection",
        "severity": "critical",
    }
    assert rules["DatabaseQueryLatencyHigh"]["for"] == "10m"
    assert rules["DatabaseQueryLatencyHigh"]["labels"]["severity"] == "error"


def test_the_route_groups_as_tocsin_groups_incidents(default_policy: Policy) -> None:
    config = alertmanager_config(default_policy, "http://tocsin:8080/api/v1/alerts/alertmanager", "/run/token")
    assert config["route"]["group_by"] == default_policy.intake.group_by
    (webhook,) = config["receivers"][0]["webhook_configs"]
    assert webhook["send_resolved"] is True
    assert webhook["http_config"]["authorization"]["credentials_file"] == "/run/token"


def test_exported_files_pass_promtool_and_amtool(tmp_path: Path) -> None:
    assert main(["rules", "export", "--out", str(tmp_path), "--token-file", str(tmp_path / "token")]) == 0
    rules = tmp_path / "tocsin-rules.yml"
    checked = subprocess.run([tool("promtool"), "check", "rules", str(rules)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout

    (tmp_path / "token").write_text("secret\n")
    config = tmp_path / "alertmanager-tocsin.yml"
    amcheck = subprocess.run([tool("amtool"), "check-config", str(config)], capture_output=True, text=True)
    assert amcheck.returncode == 0, amcheck.stdout + amcheck.stderr
    assert "secret" not in config.read_text()
    assert yaml.safe_load(config.read_text())["route"]["receiver"] == "tocsin"
