"""`tocsin runbook dry-run | run | approve`: see a runbook's plan, run it for an incident, decide an approval.

`dry-run NAME --service S` renders the runbook exactly as a real request would (tocsin.runbooks.plan) and
prints RunbookPlan.describe(); it reads neither the cluster, nor Prometheus, nor any secret. A guardrail the
plan already breaks is printed as REFUSED and the exit code is 1; a template that cannot render is one
message and exit code 2. `run NAME --incident KEY` asks the incident (update `run_runbook`) to run the
runbook by name as `runbook-<key>-<n>`: the worker plans it from its own policy against the incident's labels
(and any `--label`), so what runs is never written here; a run the worker refuses says why on the incident's
timeline. `approve KEY STEP --by NAME` decides that run's approval step (NAME must hold an approving role).
"""

from __future__ import annotations

import argparse
import json

from temporalio.client import WorkflowUpdateFailedError

from tocsin.cli.commands import CliError, Connect, parse_labels
from tocsin.incidents import get_incident, send_update
from tocsin.policy.loader import load_policy
from tocsin.policy.models import ExecuteRunbook, Policy
from tocsin.runbooks.contracts import ApproveStepRequest, RunRunbookRequest
from tocsin.runbooks.plan import plan_from_policy
from tocsin.runbooks.planned import plan_digest
from tocsin.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    runbook = sub.add_parser("runbook", help="runbooks from the policy: show what one would do")
    runbook_sub = runbook.add_subparsers(dest="runbook_command", required=True, metavar="SUBCOMMAND")
    dry = runbook_sub.add_parser("dry-run", help="print the resolved plan of a runbook without touching anything")
    dry.add_argument("name", help="a runbook of the policy's `runbooks:` section")
    dry.add_argument("--service", required=True)
    dry.add_argument("--severity", help="default: the severity of the response workflow that runs it")
    dry.add_argument("--label", action="append", default=[], metavar="NAME=VALUE", help="incident label (repeatable)")
    dry.add_argument("--policy", help="default: TOCSIN_POLICY or policies/default.yaml")
    dry.add_argument("--json", action="store_true", help="the plan as JSON (the runbook workflow's input)")
    start = runbook_sub.add_parser("run", help="run a runbook for an open incident (as runbook-<key>-<n>)")
    start.add_argument("name", help="a runbook of the policy's `runbooks:` section")
    start.add_argument("--incident", required=True, metavar="KEY")
    start.add_argument("--by", required=True, help="who asks for it (on the incident's timeline)")
    start.add_argument(
        "--label", action="append", default=[], metavar="NAME=VALUE", help="over the incident's labels (repeatable)"
    )
    start.set_defaults(func=run_for_incident)
    approve = runbook_sub.add_parser("approve", help="approve (or --reject) a runbook step that waits for a person")
    approve.add_argument("key", help="the incident key")
    approve.add_argument("step", help="the approval step's name")
    approve.add_argument("--by", required=True)
    approve.add_argument("--reject", action="store_true", help="reject instead: the runbook compensates and stops")
    approve.add_argument("--note", default="")
    approve.add_argument("--run", type=int, help="which run of the incident (default: its latest)")
    approve.set_defaults(func=approve_step)


def default_severity(policy: Policy, runbook: str) -> str:
    """The severity an incident that runs `runbook` opens with: that of the first response workflow naming it."""
    for flow in policy.automated_response_workflows.values():
        names = any(isinstance(a, ExecuteRunbook) and a.runbook == runbook for a in flow.actions)
        if names and flow.create_incident is not None:
            return flow.create_incident.severity
    return policy.lifecycle.default_severity


def run(settings: Settings, args: argparse.Namespace) -> int:
    policy = load_policy(args.policy or settings.policy)
    severity = args.severity or default_severity(policy, args.name)
    if severity not in policy.incident_classification.severity_levels:
        known = ", ".join(policy.incident_classification.severity_levels)
        raise CliError(f"unknown severity {severity!r} (known: {known})")
    plan = plan_from_policy(policy, args.name, service=args.service, severity=severity, labels=parse_labels(args.label))
    if args.json:
        print(json.dumps(plan.model_dump(mode="json"), indent=2))
    else:
        print(plan.describe())
        # The same digest is on the timeline when a worker with this policy runs the runbook.
        print(f"Plan sha256: {plan_digest(plan)}")
        print("Dry run: nothing was changed.")
    return 1 if plan.violations else 0


async def run_for_incident(connect: Connect, settings: Settings, args: argparse.Namespace) -> None:
    client = await connect()
    request = RunRunbookRequest(runbook=args.name, by=args.by, labels=parse_labels(args.label))
    result = await send_update(client, args.incident, "run_runbook", request)
    print(f"{result.key}: {result.message}")


async def approve_step(connect: Connect, settings: Settings, args: argparse.Namespace) -> None:
    client = await connect()
    state = await get_incident(client, args.key)
    if not state.runbooks:
        raise CliError(f"incident {args.key} has run no runbook")
    if args.run is not None and not 1 <= args.run <= len(state.runbooks):
        raise CliError(f"incident {args.key} has runs 1 to {len(state.runbooks)}")
    workflow_id = state.runbooks[(args.run or len(state.runbooks)) - 1]
    request = ApproveStepRequest(step=args.step, by=args.by, approve=not args.reject, note=args.note)
    try:
        answer = await client.get_workflow_handle(workflow_id).execute_update("approve_step", request, result_type=str)
    except WorkflowUpdateFailedError as err:
        raise CliError(f"{workflow_id}: {err.cause or err}") from None
    print(f"{workflow_id}: {answer}")
