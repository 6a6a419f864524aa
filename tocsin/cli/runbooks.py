"""`tocsin runbook dry-run | run | approve`: see a runbook's plan, run it for an incident, decide an approval.

`dry-run NAME --service S` renders the runbook exactly as a real request would (tocsin.runbook.planner) and
prints RunbookPlan.describe(); it reads neither the cluster, nor Prometheus, nor any secret. A guardrail the
plan already breaks is printed as REFUSED and the exit code is 1; a template that cannot render is one
message and exit code 2. `run NAME --incident KEY` asks the incident (update `run_runbook`) to run the
runbook by name as `runbook-<key>-<n>`: the worker plans it from its own policy against the incident's labels
(and any `--label`), so what runs is never written here; a run the worker refuses says why on the incident's
timeline. `approve KEY STEP --by NAME` decides that run's approval step (NAME must hold an approving role).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from temporalio.client import WorkflowUpdateFailedError

from tocsin.cli.common import CliError, Connect, IncidentKey, PolicyOption, RequiredBy, on_temporal, parse_labels
from tocsin.incident.client import get_incident, send_update
from tocsin.policy.loader import load_policy
from tocsin.policy.schema import ExecuteRunbook, Policy
from tocsin.runbook.contracts import ApproveStepRequest, RunRunbookRequest
from tocsin.runbook.plan_contracts import plan_digest
from tocsin.runbook.planner import plan_from_policy
from tocsin.settings import Settings, load_settings

app = typer.Typer(help="runbooks from the policy: show what one would do")

RunbookName = Annotated[str, typer.Argument(metavar="NAME", help="a runbook of the policy's `runbooks:` section")]


def default_severity(policy: Policy, runbook: str) -> str:
    """The severity an incident that runs `runbook` opens with: that of the first response workflow naming it."""
    for flow in policy.automated_response_workflows.values():
        names = any(isinstance(a, ExecuteRunbook) and a.runbook == runbook for a in flow.actions)
        if names and flow.create_incident is not None:
            return flow.create_incident.severity
    return policy.lifecycle.default_severity


@app.command("dry-run", help="print the resolved plan of a runbook without touching anything")
def dry_run(
    name: RunbookName,
    service: Annotated[str, typer.Option("--service")],
    severity: Annotated[
        str | None, typer.Option("--severity", help="default: the severity of the response workflow that runs it")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", metavar="NAME=VALUE", help="incident label (repeatable)")
    ] = None,
    policy: PolicyOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="the plan as JSON (the runbook workflow's input)")] = False,
) -> None:
    settings = load_settings()  # first, as for every command: a malformed setting is reported even here
    loaded = load_policy(policy or settings.policy)
    severity = severity or default_severity(loaded, name)
    if severity not in loaded.incident_classification.severity_levels:
        known = ", ".join(loaded.incident_classification.severity_levels)
        raise CliError(f"unknown severity {severity!r} (known: {known})")
    plan = plan_from_policy(loaded, name, service=service, severity=severity, labels=parse_labels(label))
    if as_json:
        print(json.dumps(plan.model_dump(mode="json"), indent=2))
    else:
        print(plan.describe())
        # The same digest is on the timeline when a worker with this policy runs the runbook.
        print(f"Plan sha256: {plan_digest(plan)}")
        print("Dry run: nothing was changed.")
    if plan.violations:
        raise typer.Exit(1)


@app.command("run", help="run a runbook for an open incident (as runbook-<key>-<n>)")
def run_command(
    name: RunbookName,
    incident: Annotated[str, typer.Option("--incident", metavar="KEY")],
    by: Annotated[str, typer.Option("--by", help="who asks for it (on the incident's timeline)")],
    label: Annotated[
        list[str] | None, typer.Option("--label", metavar="NAME=VALUE", help="over the incident's labels (repeatable)")
    ] = None,
) -> None:
    labels = parse_labels(label)

    async def running(settings: Settings, connect: Connect) -> None:
        await run_for_incident(connect, name, incident, by, labels)

    on_temporal(running)


async def run_for_incident(connect: Connect, name: str, incident: str, by: str, labels: dict[str, str]) -> None:
    client = await connect()
    result = await send_update(client, incident, "run_runbook", RunRunbookRequest(runbook=name, by=by, labels=labels))
    print(f"{result.key}: {result.message}")


@app.command("approve", help="approve (or --reject) a runbook step that waits for a person")
def approve_command(
    key: IncidentKey,
    step: Annotated[str, typer.Argument(metavar="STEP", help="the approval step's name")],
    by: RequiredBy,
    reject: Annotated[bool, typer.Option("--reject", help="reject instead: the runbook compensates and stops")] = False,
    note: Annotated[str, typer.Option("--note")] = "",
    run: Annotated[int | None, typer.Option("--run", help="which run of the incident (default: its latest)")] = None,
) -> None:
    request = ApproveStepRequest(step=step, by=by, approve=not reject, note=note)

    async def approving(settings: Settings, connect: Connect) -> None:
        await approve_step(connect, key, request, run)

    on_temporal(approving)


async def approve_step(connect: Connect, key: str, request: ApproveStepRequest, run: int | None = None) -> None:
    """Decide `request.step` of the incident's run `run` (default: its latest runbook run)."""
    client = await connect()
    state = await get_incident(client, key)
    if not state.runbooks:
        raise CliError(f"incident {key} has run no runbook")
    if run is not None and not 1 <= run <= len(state.runbooks):
        raise CliError(f"incident {key} has runs 1 to {len(state.runbooks)}")
    workflow_id = state.runbooks[(run or len(state.runbooks)) - 1]
    try:
        answer = await client.get_workflow_handle(workflow_id).execute_update("approve_step", request, result_type=str)
    except WorkflowUpdateFailedError as err:
        raise CliError(f"{workflow_id}: {err.cause or err}") from None
    print(f"{workflow_id}: {answer}")
