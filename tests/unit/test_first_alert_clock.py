"""Where the incident's clock starts (#15): the first alert's time is set where the incident is planned, and
every response time is measured from it; incidents recorded before the field fall back to the opening."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.alerts import alert
from tests.unit.test_postmortem_report import T0, report_request
from tocsin.cli.commands import _describe
from tocsin.detection.contracts import Transition
from tocsin.incident.contracts import IncidentState
from tocsin.intake.plan import plan_payload
from tocsin.policy.schema import Policy
from tocsin.policy.triage import TriggerRequest, plan_incident
from tocsin.postmortem.impact import compute_impact, time_to_first_page
from tocsin.postmortem.report.view import build_view
from workflows.detection import _detected

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def _state(**changes: object) -> IncidentState:
    fields: dict[str, object] = {
        "key": "ledger-1",
        "title": "ledger errors",
        "service": "ledger",
        "severity": "sev1",
        "opened_at": NOW + timedelta(seconds=42),
        "first_alert_at": NOW,
        **changes,
    }
    return IncidentState.model_validate(fields)


def test_the_cli_and_the_receiver_set_the_first_alert_where_they_plan_the_incident(default_policy: Policy) -> None:
    asked = plan_incident(default_policy, TriggerRequest(service="ledger", severity="sev1"), NOW)
    assert asked.first_alert_at == NOW
    (received,) = plan_payload(default_policy, [alert(service="ledger")], NOW).keys
    assert received.start is not None and received.start.first_alert_at == NOW
    # An alert that knows when Tocsin had it (the detector's run) keeps that time, not intake's clock.
    earlier = alert(service="ledger").model_copy(update={"received_at": NOW - timedelta(minutes=1)})
    (detected,) = plan_payload(default_policy, [earlier], NOW).keys
    assert detected.start is not None and detected.start.first_alert_at == NOW - timedelta(minutes=1)


def test_the_detector_stamps_its_alerts_with_the_run_time() -> None:
    firing = Transition(
        trigger="errors", fingerprint="f1", status="firing", labels={"service": "ledger"}, since=NOW, summary="x"
    )
    assert _detected(firing, NOW + timedelta(minutes=2)).received_at == NOW + timedelta(minutes=2)


def test_response_times_are_measured_from_the_first_alert(default_policy: Policy) -> None:
    state = _state(
        first_paged_at=NOW + timedelta(seconds=46),
        acknowledged_at=NOW + timedelta(seconds=50),
        mitigated_at=NOW + timedelta(minutes=5),
        resolved_at=NOW + timedelta(minutes=10),
    )
    impact = compute_impact(state, [], default_policy.postmortem)
    assert time_to_first_page(state) == timedelta(seconds=46)
    assert impact.time_to_acknowledge == timedelta(seconds=50)
    assert impact.time_to_mitigate == timedelta(minutes=5)
    assert impact.time_to_resolve == impact.duration == timedelta(minutes=10)
    # Recorded before the field existed: the opening stands in, as it always did.
    older = state.model_copy(update={"first_alert_at": None})
    assert compute_impact(older, [], default_policy.postmortem).time_to_acknowledge == timedelta(seconds=8)
    assert time_to_first_page(_state(first_paged_at=None)) is None


def test_the_report_says_when_the_first_alert_came_and_how_long_the_first_page_took() -> None:
    base = report_request().incident
    late = base.model_copy(update={"first_alert_at": T0 - timedelta(seconds=42)})
    facts = [(f.label, f.value) for f in build_view(report_request(incident=late)).impact]
    labels = [label for label, _ in facts]
    assert labels[:3] == ["Duration", "First alert", "Time to first page"]
    assert dict(facts)["First alert"] == "2026-03-01 09:59:18 UTC"
    assert dict(facts)["Time to first page"] == "48s"
    # Opened with its first alert: no separate line; nobody paged is said, not left out.
    unpaged = base.model_copy(update={"first_paged_at": None})
    facts = [(f.label, f.value) for f in build_view(report_request(incident=unpaged)).impact]
    assert "First alert" not in dict(facts)
    assert dict(facts)["Time to first page"] == "nobody paged"


def test_incidents_show_prints_the_first_alert_and_page_only_when_they_say_something() -> None:
    shown = _describe(_state(first_paged_at=NOW + timedelta(seconds=46)))
    assert "first alert: 2026-03-01 10:00:00Z (42s before it opened)" in shown
    assert "first page: 2026-03-01 10:00:46Z (46s after the first alert)" in shown
    same = _describe(_state(first_alert_at=NOW + timedelta(seconds=42)))
    assert "first alert" not in same and "first page" not in same
