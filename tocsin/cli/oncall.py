"""`tocsin oncall`: who is on call, a rotation's handoffs, and overrides. Reads files only, never Temporal.

Times without a UTC offset are read in the rotation's timezone (for `now` over every rotation, in this
machine's); `now` is accepted wherever a time is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from tocsin.cli.common import CliError, JsonFlag, PolicyOption
from tocsin.cli.output import emit_json, print_table
from tocsin.policy.loader import load_policy, problem_text
from tocsin.policy.overrides import add_override, default_overrides_path, load_policy_with_overrides
from tocsin.policy.roster_schema import RosterOverride
from tocsin.policy.schema import Policy
from tocsin.roster import ResolvedTarget, local_text, resolve, schedule
from tocsin.roster.shifts import zone
from tocsin.settings import load_settings

MAX_DAYS = 366

app = typer.Typer(help="who is on call, rotation schedules, overrides (reads the policy)")

Rotation = Annotated[str, typer.Argument(metavar="ROTATION")]
OverridesOption = Annotated[
    str | None, typer.Option("--overrides", "--file", help="overrides file (default: $TOCSIN_HOME/overrides.yaml)")
]


def _files(policy: str | None, overrides: str | None) -> tuple[str | Path, Path]:
    """The policy file and the overrides file: the options, else TOCSIN_POLICY and $TOCSIN_HOME/overrides.yaml."""
    settings = load_settings()
    return policy or settings.policy, Path(overrides) if overrides else default_overrides_path(settings)


@app.command("now", help="who is on call now, for one rotation or all")
def now_command(
    rotation: Annotated[str | None, typer.Argument(metavar="ROTATION", help="default: every rotation")] = None,
    at: Annotated[str | None, typer.Option("--at", help="an ISO time instead of now")] = None,
    as_json: JsonFlag = False,
    policy: PolicyOption = None,
    overrides: OverridesOption = None,
) -> None:
    now = datetime.now(UTC)
    merged = load_policy_with_overrides(*_files(policy, overrides))
    names = [_rotation_name(merged, rotation)] if rotation else list(merged.roster.rotations)
    if not names:
        raise CliError("the policy has no rotations (see roster.rotations in policies/default.yaml)")
    tz = merged.roster.rotations[names[0]].timezone if rotation else None
    when = _time(at, "--at", tz, now) if at else now
    results = [resolve(merged.roster, name, when) for name in names]
    if as_json:
        emit_json([r.model_dump(mode="json") for r in results])
        return
    print_table(["rotation", "on call", "since", "until", "note"], [_now_row(merged, r) for r in results])


def _now_row(policy: Policy, result: ResolvedTarget) -> list[Any]:
    tz = policy.roster.rotations[result.name].timezone
    since = local_text(result.since, tz) if result.since else None
    until = local_text(result.until, tz) if result.until else None
    note = result.reason.partition(": ")[2] if result.empty else _override_note(result.override)
    person = ", ".join(p.id for p in result.people) or None
    return [result.name, person, since, until, note]


def _override_note(override: RosterOverride | None) -> str:
    if override is None:
        return ""
    whom = f"covering {override.covering}" if override.covering else "covering the whole rotation"
    return f"override, {whom}" + (f": {override.reason}" if override.reason else "")


@app.command("schedule", help="a rotation's handoffs and overrides, in its timezone")
def schedule_command(
    rotation: Rotation,
    days: Annotated[int, typer.Option("--days", help="how far ahead (default 14)", show_default=False)] = 14,
    start: Annotated[str | None, typer.Option("--from", help="an ISO time to start from instead of now")] = None,
    as_json: JsonFlag = False,
    policy: PolicyOption = None,
    overrides: OverridesOption = None,
) -> None:
    now = datetime.now(UTC)
    merged = load_policy_with_overrides(*_files(policy, overrides))
    name = _rotation_name(merged, rotation)
    shifts = merged.roster.rotations[name]
    if not 1 <= days <= MAX_DAYS:
        raise CliError(f"--days {days}: expected 1 to {MAX_DAYS}")
    begin = _time(start, "--from", shifts.timezone, now) if start else now
    end = begin + timedelta(days=days)
    segments = schedule(merged.roster, name, begin, end)
    tz = zone(shifts.timezone)
    if as_json:
        emit_json(
            {
                "rotation": name,
                "type": shifts.type,
                "timezone": shifts.timezone,
                "from": begin.astimezone(tz).isoformat(),
                "until": end.astimezone(tz).isoformat(),
                "segments": [
                    {
                        **s.model_dump(mode="json"),
                        "start": s.start.astimezone(tz).isoformat(),
                        "end": s.end.astimezone(tz).isoformat(),
                    }
                    for s in segments
                ],
            }
        )
        return
    members = ", ".join(shifts.members) or "no members"
    print(
        f"{name}: {shifts.type}, handoff {shifts.handoff:%H:%M} {shifts.timezone}; {members}\n"
        f"from {local_text(begin, shifts.timezone)} for {days} day{'' if days == 1 else 's'}"
    )
    rows = []
    for s in segments:
        if s.person is None:
            note = "no members" if not shifts.members else "before the first shift"
        else:
            note = _override_note(s.override)
        rows.append([local_text(s.start, shifts.timezone), local_text(s.end, shifts.timezone), s.person, note])
    print_table(["from", "until", "on call", "note"], rows)


@app.command("override", help="someone covers a rotation (or one member of it) for a while")
def override_command(
    rotation: Rotation,
    by: Annotated[str, typer.Option("--by", help="who is on call instead")],
    start: Annotated[str, typer.Option("--from", help="ISO time, or 'now'")],
    until: Annotated[str, typer.Option("--until", help="ISO time")],
    covering: Annotated[
        str | None, typer.Option("--covering", help="the member they stand in for (default: the whole rotation)")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="a note shown with the override")] = "",
    policy: PolicyOption = None,
    overrides: OverridesOption = None,
) -> None:
    now = datetime.now(UTC)
    policy_path, path = _files(policy, overrides)
    # The policy alone: the override is checked against the roster as written, not as overridden already.
    loaded = load_policy(policy_path)
    name = _rotation_name(loaded, rotation)
    tz = loaded.roster.rotations[name].timezone
    try:
        override = RosterOverride(
            rotation=name,
            by=by,
            covering=covering,
            start=_time(start, "--from", tz, now),
            end=_time(until, "--until", tz, now),
            reason=reason,
        )
    except ValidationError as err:
        first = err.errors()[0]
        option = {"by": "--by", "covering": "--covering", "from": "--from", "until": "--until"}
        where = option.get(str(first["loc"][0]), "override") if first["loc"] else "override"
        raise CliError(f"{where}: {problem_text(first)}") from None
    problems = loaded.roster.override_problems(override)
    if problems:
        field, problem = problems[0]
        raise CliError(f"--{field}: {problem}")
    if override.end <= now:
        raise CliError(f"--until {until}: that is already past; nothing written")
    try:
        added = add_override(loaded, path, override)
    except ValueError as err:  # does not fit the policy (checked above; kept for a file edited meanwhile)
        raise CliError(f"{err}; nothing written") from None
    whom = f"{override.covering} on {name}" if override.covering else f"the whole of {name}"
    text = f"{override.by} covers {whom} from {local_text(override.start, tz)} until {local_text(override.end, tz)}"
    print(f"{path}: {text}" + ("" if added else " (already recorded)"))


def _rotation_name(policy: Policy, name: str) -> str:
    if name not in policy.roster.rotations:
        known = ", ".join(policy.roster.rotations) or "none in the policy"
        raise CliError(f"no rotation named {name!r} (rotations: {known})")
    return name


def _time(text: str, option: str, tz: str | None, now: datetime) -> datetime:
    if text.strip().lower() == "now":
        return now.replace(microsecond=0)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(f"{option} {text!r}: expected an ISO time such as 2025-03-03T09:00+01:00, or 'now'") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(tz)) if tz else value.astimezone()
    return value
