"""The on-call roster: validation, shifts across DST, overrides, targets and `tocsin oncall` (resolution inside
the workflow sandbox: tests/workflows/test_roster_sandbox.py)."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.support.paths import ROOT
from tests.support.roster import BASE, ROSTER, ro, roster_policy
from tocsin.cli.main import main
from tocsin.policy.loader import PolicyError, load_policy, parse_policy
from tocsin.policy.overrides import (
    add_override,
    load_policy_with_overrides,
    load_roster_overrides,
    merge_roster_overrides,
)
from tocsin.policy.roster_schema import Roster, RosterOverride
from tocsin.policy.schema import Policy
from tocsin.roster import ResolvedTarget, handoff_at, resolve, schedule, shift_at

DEFAULT = ROOT / "policies" / "default.yaml"
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def roster_error(text: str) -> str:
    with pytest.raises(PolicyError) as info:
        parse_policy(BASE + text, "test.yaml")
    return str(info.value)


def line_of(text: str, needle: str) -> int:
    """The 1-based line of `needle` in BASE + text (to check the loader points at the right place)."""
    return next(i for i, line in enumerate((BASE + text).splitlines(), 1) if needle in line)


def with_overrides(*overrides: RosterOverride) -> Roster:
    return roster_policy().with_overrides(list(overrides)).roster


# --- validation --------------------------------------------------------------------------------------------


def test_a_policy_without_roster_loads_and_targets_stay_names() -> None:
    policy = parse_policy(BASE, "test.yaml")
    assert policy.roster.is_empty()
    result = resolve(policy.roster, "primary_oncall", datetime(2025, 3, 3, tzinfo=UTC))
    assert result.kind == "unknown" and result.empty
    assert "no roster" in result.reason


def test_default_policy_roster_is_valid_and_names_the_stakeholders() -> None:
    policy = load_policy(DEFAULT)
    roster = policy.roster
    assert set(roster.rotations) == {"primary_oncall", "secondary_oncall"}
    stakeholders = {s for level in policy.incident_classification.severity_levels.values() for s in level.stakeholders}
    assert stakeholders <= set(roster.teams)
    at = datetime(2025, 1, 6, 8, tzinfo=UTC)  # the first handoff: Monday 09:00 Berlin
    assert resolve(roster, "primary_oncall", at).people[0].id == "alice"


def test_contact_methods_are_normalised_and_checked() -> None:
    alice = roster_policy().roster.people["alice"]
    assert alice.phone == "+4915100000001"
    text = ROSTER.replace('phone: "+49 151 0000 0001"', "phone: +4915100000001")
    assert "quote the phone number" in roster_error(text)
    text = ROSTER.replace('phone: "+49 151 0000 0001"', 'phone: "0151 0000 0001"')
    message = roster_error(text)
    assert f"test.yaml:{line_of(text, 'alice:')}: roster.people.alice.phone: " in message
    assert "E.164" in message
    assert "Slack member id" in roster_error(ROSTER.replace("U0BOB0002", "bob"))
    assert "at least one contact method" in roster_error(ROSTER.replace("pagerduty: PCAROL3", "name: Carol"))


def test_timezone_errors_name_file_line_and_path() -> None:
    text = ROSTER.replace("timezone: Europe/Berlin\n      start", "timezone: Europe/Berln\n      start")
    message = roster_error(text)
    assert message.startswith(f"test.yaml:{line_of(text, 'Europe/Berln')}: roster.rotations.primary_oncall.timezone:")
    assert "unknown timezone 'Europe/Berln'" in message
    for bad in ("CEST", "Europe", "/etc/passwd", "localtime", ""):
        assert "unknown timezone" in roster_error(ROSTER.replace("timezone: UTC", f"timezone: '{bad}'"))


def test_handoff_time_must_be_quoted_and_local() -> None:
    # YAML 1.1 reads 9:30 as the number 570: refuse it rather than hand off at 00:09:30.
    assert "in quotes" in roster_error(
        ROSTER.replace('handoff: "09:00"\n      timezone: Europe', "handoff: 9:30\n      timezone: Europe")
    )
    assert "no offset" in roster_error(
        ROSTER.replace('"09:00"\n      timezone: Europe', '"09:00+02:00"\n      timezone: Europe')
    )


@pytest.mark.parametrize(
    ("old", "new", "where", "problem"),
    [
        (
            "members: [alice, bob, carol]\n    daily",
            "members: [alice, zed, carol]\n    daily",
            "roster.rotations.primary_oncall.members.1",
            "unknown person 'zed' (known: alice, bob, carol, dave)",
        ),
        (
            "sre: {members: [alice, bob, carol]",
            "sre: {members: [alice, bob, zoe]",
            "roster.teams.sre.members.2",
            "unknown person 'zoe'",
        ),
        ("    nobody:", "    alice:", "roster.rotations.alice", "'alice' is also a person"),
    ],
)
def test_unknown_people_and_ambiguous_names(old: str, new: str, where: str, problem: str) -> None:
    text = ROSTER.replace(old, new)
    message = roster_error(text)
    assert f": {where}: {problem}" in message
    assert re.match(r"^test\.yaml:\d+: ", message)


@pytest.mark.parametrize(
    ("override", "field", "problem"),
    [
        (
            "{rotation: primary_oncall, by: zed, from: 2025-03-03T09:00:00+01:00, until: 2025-03-04T09:00:00+01:00}",
            "by",
            "unknown person 'zed'",
        ),
        (
            "{rotation: primary_oncall, by: dave, covering: dave2, from: 2025-03-03T09:00:00+01:00, "
            "until: 2025-03-04T09:00:00+01:00}",
            "covering",
            "unknown person 'dave2'",
        ),
        (
            "{rotation: primary_oncall, by: alice, covering: dave, from: 2025-03-03T09:00:00+01:00, "
            "until: 2025-03-04T09:00:00+01:00}",
            "covering",
            "dave is not a member of rotation primary_oncall",
        ),
        (
            "{rotation: tertiary, by: dave, from: 2025-03-03T09:00:00+01:00, until: 2025-03-04T09:00:00+01:00}",
            "rotation",
            "unknown rotation 'tertiary'",
        ),
    ],
)
def test_override_references_are_checked(override: str, field: str, problem: str) -> None:
    text = ROSTER + f"  overrides:\n    - {override}\n"
    message = roster_error(text)
    assert message.startswith(f"test.yaml:{line_of(text, '    - {rotation')}: roster.overrides.0.{field}: {problem}")


def test_override_shape_is_checked() -> None:
    naive = "  overrides:\n    - {rotation: nobody, by: dave, from: 2025-03-03 09:00, until: 2025-03-04T09:00:00Z}\n"
    assert "roster.overrides.0.from: 2025-03-03T09:00:00 has no UTC offset" in roster_error(ROSTER + naive)
    backwards = (
        "  overrides:\n    - {rotation: nobody, by: dave, from: 2025-03-04T09:00:00Z, until: 2025-03-03T09:00:00Z}\n"
    )
    assert "must be after 'from'" in roster_error(ROSTER + backwards)
    itself = (
        "  overrides:\n    - {rotation: primary_oncall, by: bob, covering: bob, "
        "from: 2025-03-03T09:00:00Z, until: 2025-03-04T09:00:00Z}\n"
    )
    assert "cannot cover themselves" in roster_error(ROSTER + itself)


def test_escalation_target_must_exist_once_there_is_a_roster() -> None:
    text = ROSTER.replace("    primary_oncall:\n      type", "    primary:\n      type")
    message = roster_error(text)
    assert "escalation_policies.primary_oncall.0.target: 'primary_oncall' is no person, team or rotation" in message
    # A #channel or an explicit kind is fine.
    base = BASE.replace(
        "{type: pagerduty, escalation_delay: 5 minutes}", "{type: slack, escalation_delay: 5 minutes, target: '#sre'}"
    )
    assert parse_policy(base + ROSTER, "t.yaml").escalation_policies.primary_oncall[0].target == "#sre"
    base = BASE.replace(
        "{type: pagerduty, escalation_delay: 5 minutes}",
        "{type: slack, escalation_delay: 5 minutes, target: 'team:sre'}",
    )
    assert parse_policy(base + ROSTER, "t.yaml")
    base = BASE.replace(
        "{type: pagerduty, escalation_delay: 5 minutes}",
        "{type: slack, escalation_delay: 5 minutes, target: 'team:alice'}",
    )
    with pytest.raises(PolicyError, match="'team:alice' is no person"):
        parse_policy(base + ROSTER, "t.yaml")


def test_policy_with_roster_round_trips_as_the_workflow_receives_it() -> None:
    start = datetime(2025, 3, 4, 9, tzinfo=BERLIN)
    policy = roster_policy().with_overrides([ro("primary_oncall", "dave", start, start + timedelta(days=1), "alice")])
    encoded = policy.model_dump_json()
    assert '"from":"2025-03-04T09:00:00+01:00"' in encoded and '"until":' in encoded
    assert Policy.model_validate_json(encoded) == policy
    at = datetime(2025, 3, 4, 12, tzinfo=UTC)
    assert resolve(Policy.model_validate_json(encoded).roster, "primary_oncall", at) == resolve(
        policy.roster, "primary_oncall", at
    )


# --- shifts and DST ----------------------------------------------------------------------------------------


def test_weekly_berlin_handoffs_keep_wall_clock_time_across_dst() -> None:
    rotation = Roster.model_validate(
        {
            "people": {"a": {"timezone": "UTC", "email": "a@x.io"}, "b": {"timezone": "UTC", "email": "b@x.io"}},
            "rotations": {
                "r": {
                    "type": "weekly",
                    "handoff": "09:00",
                    "timezone": "Europe/Berlin",
                    "start": "2025-03-24",
                    "members": ["a", "b"],
                }
            },
        }
    ).rotations["r"]
    # Spring forward on Sunday 2025-03-30: Monday 09:00 is 08:00Z before, 07:00Z after; that week is 167 hours.
    assert handoff_at(rotation, 0) == datetime(2025, 3, 24, 8, tzinfo=UTC)
    assert handoff_at(rotation, 1) == datetime(2025, 3, 31, 7, tzinfo=UTC)
    assert handoff_at(rotation, 1) - handoff_at(rotation, 0) == timedelta(hours=167)
    # Fall back on Sunday 2025-10-26: the week across it is 169 hours.
    week = (date(2025, 10, 20) - date(2025, 3, 24)).days // 7
    assert handoff_at(rotation, week) == datetime(2025, 10, 20, 7, tzinfo=UTC)
    assert handoff_at(rotation, week + 1) == datetime(2025, 10, 27, 8, tzinfo=UTC)
    assert handoff_at(rotation, week + 1) - handoff_at(rotation, week) == timedelta(hours=169)
    for k in range(0, 60):
        local = handoff_at(rotation, k).astimezone(BERLIN)
        assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)


def test_primary_rotation_across_the_spring_forward_week() -> None:
    roster = roster_policy().roster
    # Shift 3 (alice again) runs from Mon 2025-03-24 09:00 CET to Mon 2025-03-31 09:00 CEST.
    before = datetime(2025, 3, 31, 6, 59, 59, tzinfo=UTC)
    after = datetime(2025, 3, 31, 7, tzinfo=UTC)  # 09:00 CEST
    assert resolve(roster, "primary_oncall", before).people[0].id == "alice"
    handed = resolve(roster, "primary_oncall", after)
    assert handed.people[0].id == "bob"
    assert handed.since == after and handed.until == datetime(2025, 4, 7, 7, tzinfo=UTC)
    assert "since Mon 2025-03-31 09:00 CEST, until Mon 2025-04-07 09:00 CEST" in handed.reason
    # 08:30 UTC on the Monday before the change is 09:30 CET: bob's week has begun.
    assert shift_at(roster, "primary_oncall", datetime(2025, 3, 24, 8, 30, tzinfo=UTC)).index == 3


def test_handoff_in_the_spring_gap_and_the_autumn_repeat() -> None:
    rotation = Roster.model_validate(
        {
            "people": {"a": {"timezone": "UTC", "email": "a@x.io"}},
            "rotations": {
                "night": {
                    "type": "daily",
                    "handoff": "02:30",
                    "timezone": "Europe/Berlin",
                    "start": "2025-03-29",
                    "members": ["a"],
                }
            },
        }
    ).rotations["night"]
    # 02:30 does not exist on 2025-03-30 in Berlin: the handoff happens as the clocks jump, at 03:30 CEST.
    gap = handoff_at(rotation, 1)
    assert gap == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)
    assert gap.astimezone(BERLIN).strftime("%H:%M %Z") == "03:30 CEST"
    # 02:30 happens twice on 2025-10-26: the first time round (CEST).
    repeat = handoff_at(rotation, (date(2025, 10, 26) - date(2025, 3, 29)).days)
    assert repeat == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)
    assert repeat.astimezone(BERLIN).strftime("%H:%M %Z") == "02:30 CEST"


def test_daily_new_york_rotation_across_both_dst_changes() -> None:
    roster = roster_policy().roster
    # daily_ny: alice on 2025-03-01 (shift 0), bob on 03-02, and so on. Spring forward is Sunday 2025-03-09.
    saturday = shift_at(roster, "daily_ny", datetime(2025, 3, 8, 15, tzinfo=UTC))
    sunday = shift_at(roster, "daily_ny", datetime(2025, 3, 9, 14, tzinfo=UTC))
    assert saturday.start == datetime(2025, 3, 8, 14, tzinfo=UTC)  # 09:00 EST
    assert saturday.end == sunday.start == datetime(2025, 3, 9, 13, tzinfo=UTC)  # 09:00 EDT
    assert sunday.end - sunday.start == timedelta(hours=24)
    assert saturday.end - saturday.start == timedelta(hours=23)
    assert (saturday.scheduled, sunday.scheduled) == ("bob", "alice")  # shifts 7 and 8
    # Fall back is Sunday 2025-11-02: that Saturday's shift is 25 hours.
    fall = shift_at(roster, "daily_ny", datetime(2025, 11, 1, 20, tzinfo=UTC))
    assert fall.start == datetime(2025, 11, 1, 13, tzinfo=UTC)
    assert fall.end == datetime(2025, 11, 2, 14, tzinfo=UTC)
    for moment in (datetime(2025, 3, 9, 12, 59, tzinfo=UTC), datetime(2025, 11, 2, 13, 59, tzinfo=UTC)):
        assert resolve(roster, "daily_ny", moment).until == shift_at(roster, "daily_ny", moment).end


def test_daily_and_weekly_turn_order_wraps() -> None:
    roster = roster_policy().roster
    weekly = [
        shift_at(roster, "primary_oncall", datetime(2025, 3, 3, 9, tzinfo=BERLIN) + timedelta(weeks=k))
        for k in range(7)
    ]
    assert [s.scheduled for s in weekly] == ["alice", "bob", "carol", "alice", "bob", "carol", "alice"]
    daily = [
        shift_at(roster, "daily_ny", datetime(2025, 3, 1, 10, tzinfo=NEW_YORK) + timedelta(days=k)) for k in range(5)
    ]
    assert [s.scheduled for s in daily] == ["alice", "bob", "alice", "bob", "alice"]
    # A year on, the arithmetic still lands on the right member (52 weeks = 17 * 3 + 1 shifts).
    assert shift_at(roster, "primary_oncall", datetime(2026, 3, 2, 10, tzinfo=BERLIN)).scheduled == "bob"


def test_before_the_first_shift_nobody_is_scheduled() -> None:
    result = resolve(roster_policy().roster, "primary_oncall", datetime(2025, 3, 3, 7, 59, tzinfo=UTC))
    assert result.empty and result.kind == "rotation" and result.shift and result.shift.index == -1
    assert result.reason == "nobody is on call for primary_oncall: its first shift begins Mon 2025-03-03 09:00 CET"


def test_resolution_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        resolve(roster_policy().roster, "primary_oncall", datetime(2025, 3, 3, 12))


# --- overrides ---------------------------------------------------------------------------------------------

MON = datetime(2025, 3, 10, 9, tzinfo=BERLIN)  # bob's week on primary_oncall begins (shift 1)


def test_override_covering_one_person_applies_only_in_their_shift() -> None:
    # dave covers alice for two weeks; alice's shift is only the second half of that window.
    roster = with_overrides(ro("primary_oncall", "dave", MON, MON + timedelta(weeks=2), covering="bob"))
    assert resolve(roster, "primary_oncall", MON + timedelta(days=1)).people[0].id == "dave"
    assert resolve(roster, "primary_oncall", MON + timedelta(weeks=1, days=1)).people[0].id == "carol"
    result = resolve(roster, "primary_oncall", MON)
    assert result.override is not None and result.override.covering == "bob"
    assert result.reason.startswith("dave is on call for primary_oncall, covering bob (override;")
    assert result.shift is not None and result.shift.scheduled == "bob"


def test_override_of_the_whole_rotation_applies_whoever_is_scheduled() -> None:
    start, end = MON + timedelta(days=3), MON + timedelta(days=10)
    roster = with_overrides(ro("primary_oncall", "dave", start, end))
    segments = schedule(roster, "primary_oncall", MON, MON + timedelta(weeks=2))
    assert [(s.person, s.scheduled, s.start, s.end) for s in segments] == [
        ("bob", "bob", MON, start),
        ("dave", "bob", start, MON + timedelta(weeks=1)),
        ("dave", "carol", MON + timedelta(weeks=1), end),  # a handoff inside an override: still shown
        ("carol", "carol", end, MON + timedelta(weeks=2)),
    ]
    # `until` is exclusive.
    assert resolve(roster, "primary_oncall", end).people[0].id == "carol"
    assert resolve(roster, "primary_oncall", end - timedelta(microseconds=1)).people[0].id == "dave"


def test_overlapping_overrides_latest_start_wins_and_ties_go_to_the_last() -> None:
    long = ro("primary_oncall", "dave", MON, MON + timedelta(days=5))
    inner = ro("primary_oncall", "alice", MON + timedelta(days=1), MON + timedelta(days=2), covering="bob")
    tie_a = ro("primary_oncall", "carol", MON + timedelta(days=3), MON + timedelta(days=4))
    tie_b = ro("primary_oncall", "alice", MON + timedelta(days=3), MON + timedelta(hours=80))
    roster = with_overrides(long, inner, tie_a, tie_b)
    who = [resolve(roster, "primary_oncall", MON + timedelta(days=d, hours=1)).people[0].id for d in range(6)]
    assert who == ["dave", "alice", "dave", "alice", "dave", "bob"]
    # Order in the list does not matter, only the start (ties aside).
    swapped = with_overrides(tie_b, inner, long, tie_a)
    assert resolve(swapped, "primary_oncall", MON + timedelta(days=1, hours=1)).people[0].id == "alice"
    assert resolve(swapped, "primary_oncall", MON + timedelta(days=3, hours=1)).people[0].id == "carol"
    # The schedule agrees with resolve at every instant it reports.
    for s in schedule(roster, "primary_oncall", MON - timedelta(days=1), MON + timedelta(days=8)):
        assert resolve(roster, "primary_oncall", s.start).people[0].id == s.person


def test_empty_rotation_resolves_to_nobody_with_a_reason() -> None:
    roster = roster_policy().roster
    result = resolve(roster, "nobody", datetime(2025, 6, 1, tzinfo=UTC))
    assert result.empty and result.kind == "rotation" and result.people == []
    assert result.reason == "nobody is on call for nobody: the rotation has no members"
    # A whole-rotation override still finds someone, even in an empty rotation.
    covered = with_overrides(ro("nobody", "dave", datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 2, tzinfo=UTC)))
    assert resolve(covered, "nobody", datetime(2025, 6, 1, 12, tzinfo=UTC)).people[0].id == "dave"


def test_with_overrides_checks_what_it_merges() -> None:
    policy = roster_policy()
    with pytest.raises(ValueError, match=r"roster.overrides.0.by: unknown person 'zed'"):
        policy.with_overrides([ro("primary_oncall", "zed", MON, MON + timedelta(days=1))])
    assert policy.with_overrides([]) is policy


# --- other targets -----------------------------------------------------------------------------------------

AT = datetime(2025, 3, 12, 3, tzinfo=UTC)


def test_person_team_and_channel_targets() -> None:
    roster = roster_policy().roster
    person = resolve(roster, "dave", AT)
    assert (person.kind, [p.id for p in person.people], person.people[0].name) == ("person", ["dave"], "Dave Okafor")
    assert person.people[0].phone == "+12025550104"
    team = resolve(roster, "sre", AT)
    assert (team.kind, [p.id for p in team.people], team.channel) == ("team", ["alice", "bob", "carol"], "#sre")
    assert team.people[1].slack == "U0BOB0002"
    assert resolve(roster, "team:sre", AT).people == team.people
    lurkers = resolve(roster, "lurkers", AT)
    assert lurkers.channel == "#lurk" and not lurkers.empty and "no members" in lurkers.reason
    ghosts = resolve(roster, "ghosts", AT)
    assert ghosts.empty and ghosts.reason == "nobody to reach for team ghosts: it has no members and no channel"
    channel = resolve(roster, "#incidents", AT)
    assert (channel.kind, channel.channel, channel.people) == ("channel", "#incidents", [])
    explicit = resolve(roster, "rotation:primary_oncall", AT)
    assert explicit.kind == "rotation" and explicit.name == "primary_oncall" and explicit.people[0].id == "bob"
    for unknown in ("nobody-here", "team:alice", "person:sre"):
        result = resolve(roster, unknown, AT)
        assert result.kind == "unknown" and result.empty


def test_resolution_is_deterministic_and_serialisable() -> None:
    roster = with_overrides(ro("primary_oncall", "dave", MON, MON + timedelta(days=1), covering="bob"))
    first = resolve(roster, "primary_oncall", MON + timedelta(hours=2))
    assert first == resolve(roster, "primary_oncall", MON + timedelta(hours=2))
    assert ResolvedTarget.model_validate_json(first.model_dump_json()) == first


# --- the overrides file ------------------------------------------------------------------------------------


def write_policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(BASE + ROSTER, encoding="utf-8")
    return path


def test_overrides_file_errors_name_file_and_line(tmp_path: Path) -> None:
    policy_path = write_policy(tmp_path)
    file = tmp_path / "overrides.yaml"
    assert load_roster_overrides(file) == []  # no file: no overrides
    file.write_text(
        "overrides:\n"
        "  - {rotation: primary_oncall, by: dave, from: 2025-03-03T09:00:00+01:00, until: 2025-03-04T09:00:00+01:00}\n"
        "  - rotation: primary_oncall\n"
        "    by: zed\n"
        "    from: 2025-03-03T09:00:00+01:00\n"
        "    until: 2025-03-04T09:00:00+01:00\n",
        encoding="utf-8",
    )
    with pytest.raises(PolicyError) as info:
        load_policy_with_overrides(policy_path, file)
    assert str(info.value).startswith(f"{file}:4: overrides.1.by: unknown person 'zed'")
    merged, warnings = merge_roster_overrides(load_policy(policy_path), file)
    assert len(merged.roster.overrides) == 1 and len(warnings) == 1 and "override ignored" in warnings[0]
    file.write_text("overrides:\n  - {rotation: primary_oncall, by: dave, form: 2025-03-03T09:00:00Z}\n")
    with pytest.raises(PolicyError) as info:
        load_roster_overrides(file)
    assert f"{file}:2: overrides.0.form: unknown key (a typo?)" in str(info.value).splitlines()
    assert "ignored" in merge_roster_overrides(load_policy(policy_path), file)[1][0]


def test_add_override_is_atomic_and_idempotent(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path))
    file = tmp_path / "home" / "overrides.yaml"
    good = ro("primary_oncall", "dave", MON, MON + timedelta(days=1), covering="bob")
    assert add_override(policy, file, good) is True
    assert add_override(policy, file, good) is False
    assert load_roster_overrides(file, policy) == [good]
    before = file.read_bytes()
    with pytest.raises(ValueError, match="not a member"):
        add_override(policy, file, ro("primary_oncall", "bob", MON, MON + timedelta(days=1), covering="dave"))
    assert file.read_bytes() == before
    # No temporary file is left behind; the lock file stays (it is what writers lock).
    assert sorted(p.name for p in file.parent.iterdir()) == [".overrides.yaml.lock", "overrides.yaml"]


# --- the CLI -----------------------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    monkeypatch.setenv("TOCSIN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TOCSIN_POLICY", str(write_policy(tmp_path)))

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["oncall", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_cli_now_table_and_json(cli: Any) -> None:
    code, out, _ = cli("now", "--at", "2025-03-12T03:00:00Z")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ROTATION", "ON", "CALL", "SINCE", "UNTIL", "NOTE"]
    assert lines[1].split()[:2] == ["primary_oncall", "bob"]
    assert "Mon 2025-03-10 09:00 CET" in lines[1] and "Mon 2025-03-17 09:00 CET" in lines[1]
    assert lines[2].split()[:2] == ["daily_ny", "alice"]
    assert lines[3].split()[:2] == ["nobody", "-"] and lines[3].endswith("the rotation has no members")
    code, out, _ = cli("now", "primary_oncall", "--at", "2025-03-12T04:00", "--json")  # naive: Berlin time
    data = json.loads(out)
    assert code == 0 and len(data) == 1
    assert data[0]["people"][0]["id"] == "bob" and data[0]["at"] == "2025-03-12T04:00:00+01:00"
    assert data[0]["until"] == "2025-03-17T08:00:00Z"


def test_cli_schedule_in_the_rotation_timezone(cli: Any) -> None:
    code, out, _ = cli("schedule", "primary_oncall", "--days", "28", "--from", "2025-03-17T09:00")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "primary_oncall: weekly, handoff 09:00 Europe/Berlin; alice, bob, carol"
    rows = [line.split("  ") for line in lines[3:]]
    assert [line.split()[-1] for line in lines[3:]] == ["carol", "alice", "bob", "carol"]
    assert lines[4].startswith("Mon 2025-03-24 09:00 CET   Mon 2025-03-31 09:00 CEST")
    assert len(rows) == 4
    code, out, _ = cli("schedule", "daily_ny", "--days", "2", "--from", "2025-03-08T09:00", "--json")
    data = json.loads(out)
    assert [(s["start"], s["end"], s["person"]) for s in data["segments"]] == [
        ("2025-03-08T09:00:00-05:00", "2025-03-09T09:00:00-04:00", "bob"),
        ("2025-03-09T09:00:00-04:00", "2025-03-10T09:00:00-04:00", "alice"),
    ]


def test_cli_override_written_and_then_in_force(cli: Any, tmp_path: Path) -> None:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    until = start + timedelta(days=1)
    code, out, err = cli(
        "override",
        "primary_oncall",
        "--by",
        "dave",
        "--from",
        start.isoformat(),
        "--until",
        until.isoformat(),
        "--reason",
        "swap",
    )
    assert (code, err) == (0, "")
    file = tmp_path / "home" / "overrides.yaml"
    assert out.startswith(f"{file}: dave covers the whole of primary_oncall from ")
    written = yaml.safe_load(file.read_text(encoding="utf-8"))
    zulu = {"from": start.isoformat().replace("+00:00", "Z"), "until": until.isoformat().replace("+00:00", "Z")}
    assert written == {"overrides": [{"rotation": "primary_oncall", "by": "dave", **zulu, "reason": "swap"}]}
    code, out, _ = cli("now", "primary_oncall", "--at", (start + timedelta(hours=1)).isoformat())
    assert out.splitlines()[1].split()[:2] == ["primary_oncall", "dave"]
    assert out.rstrip().endswith("override, covering the whole rotation: swap")
    # The same again changes nothing.
    code, out, _ = cli(
        "override",
        "primary_oncall",
        "--by",
        "dave",
        "--from",
        start.isoformat(),
        "--until",
        until.isoformat(),
        "--reason",
        "swap",
    )
    assert code == 0 and out.rstrip().endswith("(already recorded)")
    assert len(yaml.safe_load(file.read_text(encoding="utf-8"))["overrides"]) == 1


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--by", "zed"], "--by: unknown person 'zed'"),
        (["--by", "alice", "--covering", "dave"], "--covering: dave is not a member of rotation primary_oncall"),
        (["--by", "alice", "--covering", "alice"], "override: alice cannot cover themselves"),
        (["--by", "dave", "--swap"], None),  # bad usage: exit 2, the usage and the error on stderr
    ],
)
def test_cli_bad_overrides_change_nothing(cli: Any, tmp_path: Path, args: list[str], problem: str | None) -> None:
    file = tmp_path / "elsewhere.yaml"
    file.write_text("# keep me\noverrides: []\n", encoding="utf-8")
    start = datetime.now(UTC) + timedelta(days=1)
    times = ["--from", start.isoformat(), "--until", (start + timedelta(hours=4)).isoformat()]
    if problem is None:
        code, out, err = cli("override", "primary_oncall", *args, *times, "--file", str(file))
        assert (code, out) == (2, "")
        assert "Usage: tocsin oncall override" in err and "No such option: --swap" in err, err
    else:
        code, out, err = cli("override", "primary_oncall", *args, *times, "--file", str(file))
        assert code != 0 and out == ""
        assert err.startswith(f"tocsin: {problem}") and err.count("\n") == 1
    assert file.read_text(encoding="utf-8") == "# keep me\noverrides: []\n"


def test_cli_rejects_times_backwards_past_or_garbled(cli: Any, tmp_path: Path) -> None:
    file = tmp_path / "home" / "overrides.yaml"
    soon = datetime.now(UTC) + timedelta(days=1)
    cases = [
        ([soon.isoformat(), (soon - timedelta(hours=1)).isoformat()], "must be after 'from'"),
        (["2020-01-01T00:00Z", "2020-01-02T00:00Z"], "that is already past; nothing written"),
        (["tomorrow", soon.isoformat()], "--from 'tomorrow': expected an ISO time"),
    ]
    for (start, until), problem in cases:
        code, _, err = cli("override", "primary_oncall", "--by", "dave", "--from", start, "--until", until)
        assert code == 1 and problem in err, err
    assert not file.exists()
    code, _, err = cli("override", "tertiary", "--by", "dave", "--from", "now", "--until", soon.isoformat())
    assert code == 1 and "no rotation named 'tertiary' (rotations: primary_oncall, daily_ny, nobody)" in err


def test_cli_a_broken_overrides_file_is_reported_not_overwritten(cli: Any, tmp_path: Path) -> None:
    file = tmp_path / "home" / "overrides.yaml"
    file.parent.mkdir(parents=True)
    file.write_text("overrides:\n  - {rotation: primary_oncall, by: dave\n", encoding="utf-8")
    before = file.read_text(encoding="utf-8")
    soon = datetime.now(UTC) + timedelta(days=1)
    code, _, err = cli("override", "primary_oncall", "--by", "dave", "--from", "now", "--until", soon.isoformat())
    assert code == 2 and err.startswith(f"tocsin: {file}:") and "not valid YAML" in err
    assert file.read_text(encoding="utf-8") == before
    code, _, err = cli("now")
    assert code == 2 and "not valid YAML" in err


def test_cli_naive_times_are_read_in_the_rotation_timezone(cli: Any, tmp_path: Path) -> None:
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    code, _, err = cli(
        "override",
        "daily_ny",
        "--by",
        "dave",
        "--covering",
        "bob",
        "--from",
        f"{day}T09:00",
        "--until",
        f"{day}T17:00",
    )
    assert code == 0, err
    override = load_roster_overrides(tmp_path / "home" / "overrides.yaml")[0]
    assert override.start == datetime.combine(day, datetime.min.time().replace(hour=9), tzinfo=NEW_YORK)
    assert override.start.utcoffset() == datetime.combine(day, datetime.min.time(), tzinfo=NEW_YORK).utcoffset()


def test_cli_unknown_rotation_and_empty_roster(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = cli("now", "tertiary")
    assert code == 1 and "no rotation named 'tertiary'" in err
    bare = tmp_path / "bare.yaml"
    bare.write_text(BASE, encoding="utf-8")
    code, _, err = cli("now", "--policy", str(bare))
    assert code == 1 and "the policy has no rotations" in err
    code, _, err = cli("schedule", "primary_oncall", "--days", "0")
    assert code == 1 and "--days 0" in err
