"""`tocsin rules export` writes rules that promtool accepts and a route that amtool accepts (Debian's
prometheus and prometheus-alertmanager packages); what they hold: tests/unit/test_rules_export.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.paths import ROOT
from tocsin.cli.main import main


def tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is missing: `make test` installs Debian's prometheus and prometheus-alertmanager")
    return found


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


def test_the_watchdog_route_to_a_heartbeat_passes_amtool(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    text = (ROOT / "policies" / "default.yaml").read_text(encoding="utf-8")
    beats = "heartbeats:\n  prometheus-watchdog: {interval: 1 minute, grace: 30 seconds, service: monitoring}\n"
    policy.write_text(text + "\n" + beats, encoding="utf-8")
    assert main(["rules", "export", "--out", str(tmp_path), "--policy", str(policy)]) == 0
    config = tmp_path / "alertmanager-tocsin.yml"
    amcheck = subprocess.run([tool("amtool"), "check-config", str(config)], capture_output=True, text=True)
    assert amcheck.returncode == 0, amcheck.stdout + amcheck.stderr
    (route,) = yaml.safe_load(config.read_text())["route"]["routes"]
    assert route["receiver"] == "tocsin-heartbeat-prometheus-watchdog"
