"""`tocsin oncall`: who is on call, a rotation's handoffs, and overrides. Reads files only, never Temporal.

Times without a UTC offset are read in the rotation's timezone (for `now` over every rotation, in this
machine's); `now` is accepted wherever a time is.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tocsin.cli.commands import CliError
from tocsin.cli.output import emit_json, table
from tocsin.policy.loader import load_policy
from tocsin.policy.models import Policy, RosterOverride
from tocsin.roster import ResolvedTarget, local_text, resolve, schedule
from tocsin.roster.overrides import add_override, default_overrides_path, load_policy_with_overrides
from tocsin.roster.resolve import zone
from tocsin.settings import Settings

Clock = Callable[[], datetime]
MAX_DAYS = 366


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `oncall` command and its subcommands, on the main parser's subparsers."""
    oncall = sub.add_parser("oncall", help="who is on call, rotation schedules, overrides (reads the policy)")
    oncall_sub = oncall.add_subparsers(dest="oncall_command", required=True, metavar="SUBCOMMAND")

    def files(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("--policy", help="default: TOCSIN_POLICY or policies/default.yaml")
        cmd.add_argument(
            "--overrides", "--file", dest="overrides", help="overrides file (default: $TOCSIN_HOME/overrides.yaml)"
        )

    now = oncall_sub.add_parser("now", help="who is on call now, for one rotation or all")
    now.add_argument("rotation", nargs="?", help="default: every rotation")
    now.add_argument("--at", help="an ISO time instead of now")
    now.add_argument("--json", action="store_true")
    files(now)

    plan = oncall_sub.add_parser("schedule", help="a rotation's handoffs and overrides, in its timezone")
    plan.add_argument("rotation")
    plan.add_argument("--days", type=int, default=14, help="how far ahead (default 14)")
    plan.add_argument("--from", dest="start", help="an ISO time to start from instead of now")
    plan.add_argument("--json", action="store_true")
    files(plan)

    over = oncall_sub.add_parser("override", help="someone covers a rotation (or one member of it) for a while")
    over.add_argument("rotation")
    over.add_argument("--by", required=True, help="who is on call instead")
    over.add_argument("--covering", help="the member they stand in for (default: the whole rotation)")
    over.add_argument("--from", dest="start", required=True, help="ISO time, or 'now'")
    over.add_argument("--until", required=True, help="ISO time")
    over.add_argument("--reason", default="", help="a note shown with the override")
    files(over)


def run(settings: Settings, args: argparse.Namespace, clock: Clock | None = None) -> None:
    now = (clock or (lambda: datetime.now(UTC)))()
    overrides_path = Path(args.overrides) if args.overrides else default_overrides_path(settings)
    policy_path = args.policy or settings.policy
    if args.oncall_command == "override":
        _override(load_policy(policy_path), overrides_path, args, now)
        return
    policy = load_policy_with_overrides(policy_path, overrides_path)
    if args.oncall_command == "now":
        _now(policy, args, now)
    else:
        _schedule(policy, args, now)


def _now(policy: Policy, args: argparse.Namespace, now: datetime) -> None:
    names = [_rotation_name(policy, args.rotation)] if args.rotation else list(policy.roster.rotations)
    if not names:
        raise CliError("the policy has no rotations (see roster.rotations in policies/default.yaml)")
    tz = policy.roster.rotations[names[0]].timezone if args.rotation else None
    at = _time(args.at, "--at", tz, now) if args.at else now
    results = [resolve(policy.roster, name, at) for name in names]
    if args.json:
        emit_json([r.model_dump(mode="json") for r in results])
        return
    rows = [_now_row(policy, r) for r in results]
    print(table(["rotation", "on call", "since", "until", "note"], rows))


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


def _schedule(policy: Policy, args: argparse.Namespace, now: datetime) -> None:
    name = _rotation_name(policy, args.rotation)
    rotation = policy.roster.rotations[name]
    if not 1 <= args.days <= MAX_DAYS:
        raise CliError(f"--days {args.days}: expected 1 to {MAX_DAYS}")
    start = _time(args.start, "--from", rotation.timezone, now) if args.start else now
    end = start + timedelta(days=args.days)
    segments = schedule(policy.roster, name, start, end)
    tz = zone(rotation.timezone)
    if args.json:
        emit_json(
            {
                "rotation": name,
                "type": rotation.type,
                "timezone": rotation.timezone,
                "from": start.astimezone(tz).isoformat(),
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
    members = ", ".join(rotation.members) or "no members"
    print(
        f"{name}: {rotation.type}, handoff {rotation.handoff:%H:%M} {rotation.timezone}; {members}\n"
        f"from {local_text(start, rotation.timezone)} for {args.days} day{'' if args.days == 1 else 's'}"
    )
    rows = []
    for s in segments:
        if s.person is None:
            note = "no members" if not rotation.members else "before the first shift"
        else:
            note = _override_note(s.override)
        rows.append([local_text(s.start, rotation.timezone), local_text(s.end, rotation.timezone), s.person, note])
    print(table(["from", "until", "on call", "note"], rows))


def _override(policy: Policy, path: Path, args: argparse.Namespace, now: datetime) -> None:
    name = _rotation_name(policy, args.rotation)
    tz = policy.roster.rotations[name].timezone
    try:
        override = RosterOverride(
            rotation=name,
            by=args.by,
            covering=args.covering,
            start=_time(args.start, "--from", tz, now),
            end=_time(args.until, "--until", tz, now),
            reason=args.reason,
        )
    except ValidationError as err:
        first = err.errors()[0]
        option = {"by": "--by", "covering": "--covering", "from": "--from", "until": "--until"}
        where = option.get(str(first["loc"][0]), "override") if first["loc"] else "override"
        raise CliError(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None
    problems = policy.roster.override_problems(override)
    if problems:
        field, problem = problems[0]
        raise CliError(f"--{field}: {problem}")
    if override.end <= now:
        raise CliError(f"--until {args.until}: that is already past; nothing written")
    try:
        added = add_override(policy, path, override)
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
