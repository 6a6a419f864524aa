"""Action items from how the response went (#15), each computed from the incident's own record and cited, each
with a case it matches and a counterexample it must not: the status page updated by hand, late or failing; a
slow mitigation no runbook helped; the dashboard down with the service. And the cause classes' two namings: the
other rules like the one that took the resource, the system that failed over.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from tocsin.policy.postmortem import PostmortemPolicy
from tocsin.postmortem.action_items import action_items
from tocsin.postmortem.cause_classes import remedies
from tocsin.postmortem.contracts import Analysis, Evidence, SourceName
from tocsin.postmortem.response_items import (
    communication,
    manual_mitigation,
    response_items,
    tools_down,
)


def at(hhmm: str) -> datetime:
    hour, minute = hhmm.split(":")
    return datetime(2026, 11, 27, int(hour), int(minute), tzinfo=UTC)


def ev(id: str, when: str, summary: str, **extra: Any) -> Evidence:
    source: SourceName = id.rsplit("-", 1)[0]  # type: ignore[assignment]
    return Evidence(id=id, source=source, at=at(when), summary=summary, **extra)


FIRST = ev("incident-1", "14:00", "first alert: Checkout errors (3s before the incident opened)", kind="first_alert")
OPENED = ev("incident-2", "14:00", "opened: Checkout errors", kind="opened")


def note(n: int, when: str, who: str, words: str) -> Evidence:
    return ev(f"incident-{n}", when, f"{who}, in a note: {words}", kind="note", said="note", by=who)


def status(n: int, when: str, kind: str = "delivered", text: str = "statuspage → checkout: inc-1") -> Evidence:
    return ev(f"incident-{n}", when, f"{kind}: {text}", kind=kind)


# -- customer communication -------------------------------------------------------------------------------


def test_a_status_page_updated_by_hand_earns_automation_citing_who() -> None:
    by_hand = note(5, "14:04", "tom", "status page updated by hand: investigating 502s")
    [item] = communication([FIRST, OPENED, by_hand])
    assert item.title == "Automate status page updates from the incident"
    assert item.description.startswith("This time it was updated by hand (tom).")
    assert item.evidence == ["incident-5"]


def test_a_late_first_update_earns_automation_citing_the_first_alert_and_the_update() -> None:
    late = status(6, "14:15")
    [item] = communication([FIRST, OPENED, late])
    assert "its first update came 15 min after the first alert" in item.description
    assert item.evidence == ["incident-1", "incident-6"]


def test_a_failed_update_also_earns_an_independent_status_page() -> None:
    failed = status(3, "14:00", "delivery_failed", "statuspage → checkout: 503 Service Unavailable")
    items = communication([FIRST, OPENED, failed, status(7, "14:03")])
    assert [(i.title, i.priority) for i in items] == [
        ("Automate status page updates from the incident", "P2"),
        ("Keep the status page independent of the systems it reports on", "P1"),
    ]
    assert items[1].evidence == ["incident-3"] and "503 Service Unavailable" in items[1].description


@pytest.mark.parametrize(
    "evidence",
    [
        [FIRST, OPENED, status(4, "14:03")],  # posted automatically, within 10 min
        [FIRST, OPENED],  # no status page on the record: nothing says there is one
        [FIRST, OPENED, note(5, "14:30", "tom", "the status of the rollback: done")],  # "status", not the page
        [FIRST, OPENED, status(4, "14:03"), note(5, "14:20", "tom", "status page looks right")],  # read, not updated
    ],
)
def test_no_communication_item_without_a_manual_late_or_failed_update(evidence: list[Evidence]) -> None:
    assert communication(evidence) == []


# -- manual, slow mitigation ------------------------------------------------------------------------------

MITIGATED = ev(
    "incident-9",
    "15:10",
    "kenji, at mitigation: index subsystem restarted",
    kind="mitigated",
    said="mitigation",
    by="kenji",
)


def test_a_slow_mitigation_without_a_runbook_earns_one_quoting_the_mitigation() -> None:
    [item] = manual_mitigation([FIRST, OPENED, MITIGATED])
    assert item.title == "Turn the manual mitigation into a tested runbook"
    assert item.description.startswith("Mitigating took 70 min from the first alert (index subsystem restarted)")
    assert item.evidence == ["incident-1", "incident-9"]


def test_no_runbook_item_when_a_runbook_ran_or_the_mitigation_was_quick() -> None:
    runbook = ev("incident-4", "14:20", "runbook: restart-index started: runbook-1", kind="runbook")
    assert manual_mitigation([FIRST, OPENED, runbook, MITIGATED]) == []
    quick = MITIGATED.model_copy(update={"at": at("14:25")})
    assert manual_mitigation([FIRST, OPENED, quick]) == []
    # A runbook that only ran after the mitigation did not help it.
    after = runbook.model_copy(update={"at": at("15:30")})
    assert len(manual_mitigation([FIRST, OPENED, MITIGATED, after])) == 1


# -- the responders' own tools down -----------------------------------------------------------------------


def test_a_dashboard_failing_in_the_logs_earns_independence() -> None:
    line = ev("logs-3", "14:02", "log line x1 (first 14:02Z): ERROR dashboard api: 502 from edge, login failed")
    [item] = tools_down([FIRST, line], "edge-proxy")
    assert (item.title, item.priority, item.evidence) == (
        "Keep the dashboard reachable independently of edge-proxy",
        "P1",
        ["logs-3"],
    )


@pytest.mark.parametrize(
    "evidence",
    [
        ev("logs-1", "14:02", "log line x4 (first 14:02Z): ERROR 502 Bad Gateway: no worker available"),  # no surface
        ev("logs-2", "14:02", "log line x1 (first 14:02Z): INFO dashboard refreshed"),  # nothing failed
        note(5, "14:04", "lena", "health dashboard cannot show status while S3 is down"),  # the status page's case
        ev("incident-6", "14:04", "delivery_failed: slack → #ops: console 503", kind="delivery_failed"),  # no one said
    ],
)
def test_no_tools_item_without_a_management_surface_failing(evidence: Evidence) -> None:
    assert tools_down([FIRST, evidence], "checkout") == []


def test_no_tools_item_when_the_dashboard_is_the_service_that_failed() -> None:
    line = ev("logs-3", "14:02", "log line x1 (first 14:02Z): ERROR dashboard: 502 from upstream")
    assert tools_down([FIRST, line], "billing-dashboard") == []


def test_response_items_reach_the_action_items_with_owners_and_due_dates() -> None:
    evidence = [FIRST, OPENED, note(5, "14:04", "tom", "status page updated by hand"), MITIGATED]
    assert len(response_items(evidence)) == 2
    analysis = Analysis(analyzer="built-in", confidence=0.2)
    items = action_items(analysis, PostmortemPolicy(), date(2026, 12, 3), evidence=evidence)
    assert [(i.title, i.owner, i.origin, i.evidence) for i in items] == [
        ("Automate status page updates from the incident", "sre", "rule", ["incident-5"]),
        ("Turn the manual mitigation into a tested runbook", "sre", "rule", ["incident-1", "incident-9"]),
    ]


# -- cause classes: the other rules like the one, the system that failed over ------------------------------


def test_a_resource_taken_by_one_rule_earns_an_inspection_of_the_others() -> None:
    titles = [r.title for r in remedies("an XSS rule whose regular expression backtracked and exhausted CPU")]
    assert "Inspect the other rules for the same CPU cost" in titles
    queries = [r.title for r in remedies("a report query saturated the connection pool")]
    assert "Inspect the other queries for the same connection pool cost" in queries


def test_no_inspection_when_no_rule_query_or_job_is_named() -> None:
    titles = [r.title for r in remedies("connection pool exhausted after deploy 2041 halved the pool size")]
    assert not any(t.startswith("Inspect") for t in titles)
    # A rule named without a resource run out is no such case either.
    assert remedies("a firewall rule was added") == []


@pytest.mark.parametrize(
    ("words", "title"),
    [
        (
            "a partition made Orchestrator promote US West primaries",
            "Review Orchestrator's automatic failover: what may be promoted across regions, and when",
        ),
        (
            "after the partition, Patroni failed over to eu-west",
            "Review Patroni's automatic failover: what may be promoted across regions, and when",
        ),
        # No name: a lower-case subject, or a capital only because a sentence starts there.
        (
            "the primary failed over to us-west",
            "Review automatic failover: what may be promoted across regions, and when",
        ),
        (
            "Replica promoted after a partition",
            "Review automatic failover: what may be promoted across regions, and when",
        ),
    ],
)
def test_the_failover_item_names_the_system_the_words_name(words: str, title: str) -> None:
    assert remedies(words)[0].title == title
