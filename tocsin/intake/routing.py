"""Where an alert goes, decided by the policy: its incident key, severity and response workflow. Pure."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime

from tocsin.incident.contracts import IncidentInput
from tocsin.intake.contracts import NormalizedAlert
from tocsin.policy.schema import Policy
from tocsin.policy.triage import TriggerRequest, match_response_workflow, plan_incident


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _key(parts: list[str], prefix: str = "") -> str:
    """Readable and collision-free: slugs can collide ("a-b"+"c" vs "a"+"b-c"), the hash of the exact values cannot."""
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:10]
    readable = "-".join(s for s in (_slug(p) for p in parts) if s)[:80].strip("-")
    return f"{prefix}{readable or 'alert'}-{digest}"


def incident_key(policy: Policy, alert: NormalizedAlert) -> str:
    """The sender's dedup_key when it has one (PagerDuty), else the policy's group_by label values."""
    if alert.dedup_key:
        return _key([alert.dedup_key], prefix="pd-")
    return _key([alert.labels.get(name, "") for name in policy.intake.group_by])


def severity_for(policy: Policy, alert: NormalizedAlert) -> str | None:
    """A response workflow that names a severity decides; else the alert's severity label; None = the default."""
    flow_name = match_response_workflow(policy, alert.labels)
    flow = policy.automated_response_workflows.get(flow_name) if flow_name else None
    if flow and flow.create_incident:
        return None
    value = alert.labels.get(policy.intake.severity_label, "").strip().lower()
    mapped = policy.intake.severity_map.get(value)
    return mapped if mapped in policy.incident_classification.severity_levels else None


def plan_for_alert(policy: Policy, alert: NormalizedAlert, key: str, now: datetime) -> IncidentInput:
    labels = dict(alert.labels)
    flow_name = match_response_workflow(policy, labels)
    flow = policy.automated_response_workflows.get(flow_name) if flow_name else None
    title = None
    if not (flow and flow.create_incident):
        name = labels.get("alertname", "alert")
        title = alert.summary or f"{name} on {labels.get('service', 'unknown service')}"
    request = TriggerRequest(
        service=labels.get("service") or "unknown",
        severity=severity_for(policy, alert),
        title=title[:300] if title else None,
        labels=labels,
        key=key,
        source=alert.source,
    )
    return plan_incident(policy, request, now)
