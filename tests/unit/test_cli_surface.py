"""The `tocsin` command surface, held against the list taken from the argparse CLI it replaced.

Scripts, the README and docs/commands.md use these names, flags and defaults: a command, an option, an alias,
a default or a help string that changes, appears or goes away fails here. Every command and group answers
`-h`/`--help` with exit 0; bad usage is exit 2 with the error on stderr; tables piped anywhere stay one line
a row, without colour codes. Nothing here connects to Temporal.
"""

from __future__ import annotations

from typing import Any

import pytest
from typer.main import get_command

from tocsin.cli.main import app, main
from tocsin.cli.output import print_table

# --- the surface --------------------------------------------------------------------------------------------
#
# Per command path: its help, then its parameters. Positional arguments are "<n name>" in their order; options
# are their flags ("--a/--b" for aliases). Each parameter is (what it is, its help): "required", "optional"
# (an argument that may be left out), "flag" (present or not), "repeatable", or "default X".

Param = tuple[str, str | None]

KEY_HELP = "incident key (as printed by `tocsin trigger`)"
BY: Param = ("required", "who is acting")
REQUEST_ID: Param = ("default None", "idempotency key: repeating the call with it changes nothing")
JSON: Param = ("flag", None)
POLICY: Param = ("default None", "default: TOCSIN_POLICY or policies/default.yaml")
OVERRIDES: Param = ("default None", "overrides file (default: $TOCSIN_HOME/overrides.yaml)")
HUMAN: dict[str, Param] = {
    "<1 key>": ("required", KEY_HELP),
    "--by": BY,
    "--request-id": REQUEST_ID,
    "--json": ("flag", "machine-readable output"),
}

SURFACE: dict[str, tuple[str, dict[str, Param]]] = {
    "": (
        "Durable incident response on Temporal.",
        {
            # typer's shell completion: the only options the argparse CLI did not have.
            "--install-completion": ("flag", "Install completion for the current shell."),
            "--show-completion": (
                "flag",
                "Show completion for the current shell, to copy it or customize the installation.",
            ),
        },
    ),
    "up": (
        "start Temporal (unless TEMPORAL_ADDRESS is set), the worker and the alert receiver, in the foreground",
        {},
    ),
    "worker": ("run the worker alone against TEMPORAL_ADDRESS or the local server", {}),
    "receiver": ("run the alert receiver alone (TOCSIN_HTTP_HOST:TOCSIN_HTTP_PORT) against TEMPORAL_ADDRESS", {}),
    "trigger": (
        "open an incident by hand; prints its key",
        {
            "--service": ("required", None),
            "--severity": ("default None", "sev1..sev4 (default: from the response workflow or the policy)"),
            "--title": ("default None", None),
            "--label": ("repeatable", "alert label (repeatable)"),
            "--workflow": ("default None", "response workflow from the policy (default: matched by labels)"),
            "--key": ("default None", "incident key (default: generated from the service and time)"),
            "--policy": ("default None", "policy file (default: TOCSIN_POLICY or policies/default.yaml)"),
            "--json": JSON,
        },
    ),
    "incidents": ("list or show incidents", {}),
    "incidents list": (
        "incidents, newest first (a visibility query)",
        {
            "--status": ("default None", None),
            "--severity": ("default None", None),
            "--service": ("default None", None),
            "--limit": ("default 100", None),
            "--json": JSON,
        },
    ),
    "incidents export": (
        "recent incidents' alerts as JSON lines with their times, for `tocsin simulate --alerts`",
        {
            "--since": ("default '7d'", "incidents opened this far back, e.g. 7d, 12h"),
            "--out": ("default None", "write here (default: standard output)"),
        },
    ),
    "incidents show": (
        "one incident's state and timeline",
        {
            "<1 key>": ("required", None),
            "--json": JSON,
            "--page": ("default 1", "timeline page, newest first (default 1: the latest)"),
            "--page-size": ("default 50", "timeline entries per page (default 50)"),
            "--all": ("flag", "the whole timeline on one page"),
        },
    ),
    "ack": ("acknowledge: stops paging", HUMAN),
    "escalate": ("page the next escalation level now", {**HUMAN, "--reason": ("default ''", None)}),
    "mitigate": ("mark mitigated (impact stopped, not yet resolved)", {**HUMAN, "--summary": ("default ''", None)}),
    "resolve": (
        "resolve: stops escalation, notifies, starts the post-mortem",
        {**HUMAN, "--summary": ("default ''", None)},
    ),
    "annotate": ("add a note to the timeline", {**HUMAN, "--text": ("required", None)}),
    "severity": (
        "change the severity (re-plans response and escalation)",
        {**HUMAN, "<2 severity>": ("required", None), "--reason": ("default ''", None)},
    ),
    # Added with issue #14 (responders): the two new verbs, the same options as every human action.
    "snooze": (
        "pause paging for a while (at most 4 hours); management escalation goes on",
        {**HUMAN, "--for": ("required", "how long, e.g. 30m or '1 hour'")},
    ),
    "take": ("make yourself the incident's owner (acknowledging it if nobody has)", HUMAN),
    # Added with issue #16: who was paged and why, or why not.
    "heartbeats": (
        "each heartbeat in the policy: its last ping and whether it is ok or missed",
        {"--json": JSON},
    ),
    "maintenance": ("maintenance windows: hold the pages of matching incidents, then page once when one ends", {}),
    "maintenance start": (
        "start a window now; prints its id",
        {
            "--service": ("required", "the service whose incidents it holds"),
            "--for": ("required", "how long, e.g. 30m or '2 hours' (at most 7 days)"),
            "--reason": ("required", "why, shown on every incident it holds"),
            "--label": ("repeatable", "hold only incidents with this label (repeatable)"),
            "--by": ("default None", "who starts it (default: your login name)"),
            "--json": JSON,
        },
    ),
    "maintenance list": ("open one-off windows and the policy's weekly ones (running or next)", {"--json": JSON}),
    "maintenance end": (
        "end a window now: incidents it held and that still fire page once",
        {
            "<1 window_id>": ("required", "the window id (`tocsin maintenance list`)"),
            "--by": ("default None", "who ends it (default: your login name)"),
        },
    ),
    "why": (
        "why each notification went out, and with --person, why that person was not paged",
        {
            "<1 key>": ("required", "the incident key"),
            "--person": ("default None", "also when and why this person was not paged"),
            "--json": JSON,
        },
    ),
    "simulate": (
        'replay an alerts file (JSON lines: a generic alert plus "at") through the real workflows in simulated '
        "time under a policy, and print who is paged when; nothing is sent",
        {
            "--policy": ("required", "the candidate policy file"),
            "--alerts": ("required", "the alerts file (`tocsin incidents export` writes one)"),
            "--compare": ("flag", "also under the current policy (TOCSIN_POLICY or the default), and diff"),
            "--json": JSON,
        },
    ),
    "report": (
        "MTTA/MTTR, pages per person, incidents per day; --out writes HTML, CSV and JSON",
        {
            "--since": ("default '30d'", "how far back, e.g. 30d, 12h (default 30d)"),
            "--out": ("default None", "write report.html, report.csv, report.json here"),
            "--limit": ("default 1000", "read at most this many incidents, newest first"),
            "--json": JSON,
        },
    ),
    "policies": ("policy files", {}),
    "policies check": (
        "validate a policy file; non-zero exit on error",
        {"<1 file>": ("optional", "default: TOCSIN_POLICY or policies/default.yaml")},
    ),
    "channels": ("which channels are live or go to the outbox; checks credentials", {"--json": JSON}),
    "rules": ("Prometheus rules and the Alertmanager route, from the policy", {}),
    "rules export": (
        "write tocsin-rules.yml and alertmanager-tocsin.yml",
        {
            "--out": ("default '.'", "directory to write into (default: here)"),
            "--policy": POLICY,
            "--receiver-url": (
                "default None",
                "default: http://127.0.0.1:$TOCSIN_HTTP_PORT/api/v1/alerts/alertmanager",
            ),
            "--token-file": ("default None", "file Alertmanager reads the receiver's bearer token from"),
        },
    ),
    "oncall": ("who is on call, rotation schedules, overrides (reads the policy)", {}),
    "oncall now": (
        "who is on call now, for one rotation or all",
        {
            "<1 rotation>": ("optional", "default: every rotation"),
            "--at": ("default None", "an ISO time instead of now"),
            "--json": JSON,
            "--policy": POLICY,
            "--overrides/--file": OVERRIDES,
        },
    ),
    "oncall schedule": (
        "a rotation's handoffs and overrides, in its timezone",
        {
            "<1 rotation>": ("required", None),
            "--days": ("default 14", "how far ahead (default 14)"),
            "--from": ("default None", "an ISO time to start from instead of now"),
            "--json": JSON,
            "--policy": POLICY,
            "--overrides/--file": OVERRIDES,
        },
    ),
    "oncall override": (
        "someone covers a rotation (or one member of it) for a while",
        {
            "<1 rotation>": ("required", None),
            "--by": ("required", "who is on call instead"),
            "--covering": ("default None", "the member they stand in for (default: the whole rotation)"),
            "--from": ("required", "ISO time, or 'now'"),
            "--until": ("required", "ISO time"),
            "--reason": ("default ''", "a note shown with the override"),
            "--policy": POLICY,
            "--overrides/--file": OVERRIDES,
        },
    ),
    "runbook": ("runbooks from the policy: show what one would do", {}),
    "runbook dry-run": (
        "print the resolved plan of a runbook without touching anything",
        {
            "<1 name>": ("required", "a runbook of the policy's `runbooks:` section"),
            "--service": ("required", None),
            "--severity": ("default None", "default: the severity of the response workflow that runs it"),
            "--label": ("repeatable", "incident label (repeatable)"),
            "--policy": POLICY,
            "--json": ("flag", "the plan as JSON (the runbook workflow's input)"),
        },
    ),
    "runbook run": (
        "run a runbook for an open incident (as runbook-<key>-<n>)",
        {
            "<1 name>": ("required", "a runbook of the policy's `runbooks:` section"),
            "--incident": ("required", None),
            "--by": ("required", "who asks for it (on the incident's timeline)"),
            "--label": ("repeatable", "over the incident's labels (repeatable)"),
        },
    ),
    "runbook approve": (
        "approve (or --reject) a runbook step that waits for a person",
        {
            "<1 key>": ("required", "the incident key"),
            "<2 step>": ("required", "the approval step's name"),
            "--by": ("required", None),
            "--reject": ("flag", "reject instead: the runbook compensates and stops"),
            "--note": ("default ''", None),
            "--run": ("default None", "which run of the incident (default: its latest)"),
        },
    ),
    "postmortem": ("post-mortems: show a draft, approve it or request changes", {}),
    "postmortem show": (
        "a post-mortem's state and its latest draft",
        {"<1 key>": ("required", "the incident key"), "--json": JSON},
    ),
    "postmortem approve": (
        "approve the draft: it is published and followed through",
        {"<1 key>": ("required", None), "--by": ("required", None)},
    ),
    "postmortem request-changes": (
        "have the draft regenerated with your notes",
        {"<1 key>": ("required", None), "--by": ("required", None), "--notes": ("required", None)},
    ),
}


def _kind(param: Any) -> str:
    if param.param_type_name == "argument":
        return "required" if param.required else "optional"
    if param.required:
        return "required"
    if param.multiple:
        return "repeatable"
    if param.is_flag:
        return "flag"
    return f"default {param.default!r}"


def _surface() -> dict[str, tuple[str, dict[str, Param]]]:
    """The built command tree in SURFACE's terms."""
    found: dict[str, tuple[str, dict[str, Param]]] = {}

    def walk(command: Any, path: str) -> None:
        params: dict[str, Param] = {}
        position = 0
        for param in command.params:
            if param.param_type_name == "argument":
                position += 1
                name = f"<{position} {param.name}>"
            else:
                name = "/".join(param.opts + param.secondary_opts)
            params[name] = (_kind(param), param.help)
        found[path] = (command.help, params)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(get_command(app), "")
    return found


def test_the_command_tree_is_the_argparse_one() -> None:
    surface = _surface()
    assert sorted(surface) == sorted(SURFACE), "commands added or gone"
    for path, (help_text, params) in SURFACE.items():
        assert surface[path] == (help_text, params), path


@pytest.mark.parametrize("path", sorted(SURFACE))
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_command_and_group_answers_help(path: str, flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*path.split(), flag]) == 0
    out, err = capsys.readouterr()
    assert f"Usage: {' '.join(['tocsin', *path.split()])} " in out, out
    assert err == ""


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        ([], "Missing command."),
        (["incidents"], "Missing command."),
        (["nope"], "No such command 'nope'."),
        (["ack", "checkout-1"], "Missing option '--by'."),
        (["severity", "checkout-1", "--by", "x"], "Missing argument 'SEVERITY'."),
        (["incidents", "list", "--limit", "many"], "Invalid value for '--limit'"),
        (["incidents", "list", "--status", "asleep"], "Invalid value for '--status'"),
        (["runbook", "approve", "k", "s", "--by", "x", "--run", "last"], "Invalid value for '--run'"),
        (["oncall", "now", "--json", "extra", "more"], "Got unexpected extra argument"),
    ],
)
def test_bad_usage_is_exit_2_on_stderr(argv: list[str], error: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "Usage: tocsin" in err and error in err, err
    assert "Traceback" not in err


def test_completion_script_names_the_program(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--show-completion", "bash"]) == 0
    out = capsys.readouterr().out
    assert "_TOCSIN_COMPLETE=complete_bash" in out and "complete -o default -F _tocsin_completion tocsin" in out


def test_a_piped_table_neither_wraps_nor_colours(capsys: pytest.CaptureFixture[str]) -> None:
    long = "x" * 300
    print_table(["key", "title"], [["checkout-1", long], ["[bold]api-2[/bold]", ":fire: up"]])
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "KEY                 TITLE",
        f"checkout-1          {long}",
        "[bold]api-2[/bold]  :fire: up",
    ]
