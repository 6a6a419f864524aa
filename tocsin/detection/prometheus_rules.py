"""`tocsin rules export`: Prometheus alerting rules and an Alertmanager route from the policy.

One source of truth for both detection paths: the rules Prometheus evaluates are the triggers Tocsin's own
detector evaluates, with the same names, so either path opens the same incident.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from tocsin.policy.schema import Policy


def prometheus_duration(value: timedelta) -> str:
    """Prometheus' duration syntax ("2m", "1h30m", "45s")."""
    seconds = int(value.total_seconds())
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out or "0s"


def _severity_label(policy: Policy, severity: str | None) -> str | None:
    """The label value that maps back to this severity in intake.severity_map (e.g. sev1 -> critical)."""
    return next((value for value, sev in policy.intake.severity_map.items() if sev == severity), None)


def prometheus_rules(policy: Policy) -> dict[str, Any]:
    groups = []
    for flow_name, flow in policy.automated_response_workflows.items():
        create = flow.create_incident
        rules = []
        for trigger in flow.triggers:
            if not (trigger.name and trigger.expr):
                continue
            labels = {"tocsin_workflow": flow_name}
            severity = _severity_label(policy, create.severity if create else None)
            if severity:
                labels["severity"] = severity
            rules.append(
                {
                    "alert": trigger.name,
                    "expr": " ".join(trigger.expr.split()),
                    "for": prometheus_duration(trigger.duration),
                    "labels": labels,
                    "annotations": {"summary": f"{trigger.alert} for {prometheus_duration(trigger.duration)}"},
                }
            )
        if rules:
            groups.append({"name": f"tocsin-{flow_name}", "rules": rules})
    return {"groups": groups}


def alertmanager_config(policy: Policy, receiver_url: str, token_file: str | None = None) -> dict[str, Any]:
    """A receiver and a route that send every alert to Tocsin, grouped as Tocsin groups incidents."""
    # The receiver takes at most 1000 alerts a payload; Alertmanager drops a 4xx, so it must cut groups first
    # (and it then reports how many it left out, in truncatedAlerts).
    webhook: dict[str, Any] = {"url": receiver_url, "send_resolved": True, "max_alerts": 1000}
    auth = {"authorization": {"type": "Bearer", "credentials_file": token_file}} if token_file else None
    if auth:
        webhook["http_config"] = auth
    config: dict[str, Any] = {
        "route": {
            "receiver": "tocsin",
            "group_by": list(policy.intake.group_by),
            "group_wait": "10s",
            "group_interval": "1m",
            "repeat_interval": "1h",
        },
        "receivers": [{"name": "tocsin", "webhook_configs": [webhook]}],
    }
    watchdog = _watchdog_heartbeat(policy)
    if watchdog is not None:
        name, interval = watchdog
        # The always-firing Watchdog, repeated well inside the heartbeat's interval: when Prometheus or
        # Alertmanager dies, the pings stop and Tocsin's heartbeat opens an incident (tocsin.policy.heartbeats).
        beat: dict[str, Any] = {"url": f"{_origin(receiver_url)}/api/v1/heartbeats/{name}", "send_resolved": False}
        if auth:
            beat["http_config"] = auth
        config["route"]["routes"] = [
            {
                "receiver": f"tocsin-heartbeat-{name}",
                "matchers": ['alertname="Watchdog"'],
                "group_wait": "0s",
                "group_interval": "10s",
                "repeat_interval": prometheus_duration(max(interval / 2, timedelta(seconds=10))),
            }
        ]
        config["receivers"].append({"name": f"tocsin-heartbeat-{name}", "webhook_configs": [beat]})
    return config


def _watchdog_heartbeat(policy: Policy) -> tuple[str, timedelta] | None:
    """The heartbeat the standard Watchdog alert feeds: the first declared one whose name ends in 'watchdog'
    (e.g. prometheus-watchdog), else the only one declared; None when that choice would be a guess."""
    named = [(n, b.interval) for n, b in policy.heartbeats.items() if n.endswith("watchdog")]
    if named:
        return named[0]
    only = list(policy.heartbeats.items())
    return (only[0][0], only[0][1].interval) if len(only) == 1 else None


def _origin(url: str) -> str:
    """scheme://host:port of the receiver's alert URL: the heartbeat endpoint is on the same receiver."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
