"""An incident's recorded alerts as lines of a `tocsin simulate` file (`tocsin incidents export`). Pure.

The incident's state keeps one record per alert fingerprint (when it was first and last seen, its status),
and the labels of the alert that opened it; it does not keep every alert's own labels. So each line carries
the incident's labels and the alert's own fingerprint: replayed, the alerts group into the same incident
and stay distinct alerts, which is what paging depends on.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tocsin.incident.contracts import IncidentState

# For an incident whose labels lack one (opened by hand, then alerted on): the generic schema requires it.
FALLBACK_ALERTNAME = "incident"


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alert_lines(state: IncidentState) -> list[tuple[datetime, dict[str, Any]]]:
    """A firing line when each alert was first seen, and a resolved line when it was last seen if it has
    resolved since; an incident without alerts (a manual trigger) has nothing to replay."""
    labels = {"alertname": FALLBACK_ALERTNAME, **state.labels}
    lines: list[tuple[datetime, dict[str, Any]]] = []
    for fingerprint, record in state.alerts.items():
        base = {"labels": labels, "fingerprint": fingerprint, **({"summary": record.summary} if record.summary else {})}
        if record.status == "firing" or record.count > 1:
            lines.append((record.first_seen, {"at": rfc3339(record.first_seen), **base}))
        if record.status == "resolved":
            lines.append((record.last_seen, {"at": rfc3339(record.last_seen), "status": "resolved", **base}))
    return lines


def stream_text(states: list[IncidentState]) -> str:
    """Every incident's lines, in time order: a file `tocsin simulate --alerts` reads back."""
    # By time, not by the text: RFC 3339 strings with and without fractions do not sort as their instants.
    lines = sorted((line for state in states for line in alert_lines(state)), key=lambda pair: pair[0])
    return "".join(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n" for _, line in lines)
