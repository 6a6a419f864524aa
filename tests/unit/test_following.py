"""Which deliveries the incident keeps in step with its changes, and what each should show (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tocsin.incident.contracts import Follower, IncidentState
from tocsin.policy import following

OPENED = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def state(**changes: object) -> IncidentState:
    base = IncidentState(key="db-down", title="DB down", service="checkout", severity="sev1", opened_at=OPENED)
    return base.model_copy(update=changes)


def test_only_deliveries_that_leave_state_behind_are_followed() -> None:
    assert following.is_followed("pagerduty", "PALICE1", "db-down")
    assert following.is_followed("statuspage", "checkout", "db-down")
    assert following.is_followed("slack", "#inc-db-down", "db-down")
    # A post to a named channel, an email or a text message is done once it is sent.
    assert not following.is_followed("slack", "#incidents", "db-down")
    assert not following.is_followed("slack", "#inc-other", "db-down")
    assert not following.is_followed("email", "cto@company.com", "db-down")
    assert not following.is_followed("sms", "+4915100000001", "db-down")


def test_pagerduty_is_followed_once_per_incident_others_once_per_target() -> None:
    followers: list[Follower] = []
    now = state()
    following.follow(followers, "pagerduty", "PALICE1", now)
    following.follow(followers, "pagerduty", "PBOB002", now)  # the same PagerDuty alert (dedup_key)
    following.follow(followers, "slack", "#inc-db-down", now)
    following.follow(followers, "slack", "#inc-db-down", now)
    following.follow(followers, "email", "cto@company.com", now)
    assert [(f.channel, f.target, f.synced) for f in followers] == [
        ("pagerduty", "PALICE1", "triggered"),
        ("slack", "#inc-db-down", "triggered/sev1"),
    ]


def test_pagerduty_treats_mitigated_as_acknowledged_and_ignores_severity() -> None:
    followers = [Follower(channel="pagerduty", target="P", synced="triggered")]
    assert following.stale(followers, state(severity="sev2")) == []
    assert following.stale(followers, state(status="mitigated")) == followers
    assert following.delivery_status("pagerduty", state(status="mitigated")) == "acknowledged"
    followers[0].synced = "acknowledged"
    assert following.stale(followers, state(status="acknowledged")) == []
    assert following.stale(followers, state(status="mitigated")) == []
    assert following.stale(followers, state(status="resolved")) == followers


def test_war_room_and_status_page_follow_severity_and_status() -> None:
    room = Follower(channel="slack", target="#inc-db-down", synced="triggered/sev2")
    page = Follower(channel="statuspage", target="checkout", synced="triggered/sev1")
    assert following.stale([room, page], state()) == [room]
    assert following.stale([room, page], state(status="acknowledged", severity="sev2")) == [room, page]
    assert following.delivery_status("statuspage", state(status="mitigated")) == "mitigated"


def test_status_page_words_are_public_and_name_nobody() -> None:
    done = state(
        status="resolved",
        acknowledged_by="alice",
        acknowledged_at=OPENED + timedelta(minutes=4),
        resolved_by="alice",
        resolved_at=OPENED + timedelta(minutes=42),
        resolution_summary="rolled back deploy 1234 of payments-api",
    )
    public = following.sync_text("statuspage", done)
    assert public == "This incident affecting checkout has been resolved."
    assert "alice" not in public and "1234" not in public
    internal = following.sync_text("slack", done)
    assert internal == (
        "Status: resolved; severity sev1; acknowledged by alice at 03:04Z; resolved by alice after 42m 0s; "
        "rolled back deploy 1234 of payments-api"
    )
