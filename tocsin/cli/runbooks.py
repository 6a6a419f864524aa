"""`tocsin runbook dry-run NAME --service S`: the plan a runbook would run for a service, touching nothing.

It renders the runbook exactly as a real request would (tocsin.runbooks.plan) and prints RunbookPlan.describe();
it reads neither the cluster, nor Prometheus, nor any secret. A guardrail the plan already breaks is printed as
REFUSED and the exit code is 1; a template that cannot render is one message and exit code 2.
"""

from __future__ import annotations

import argparse
import json

from tocsin.cli.commands import CliError
from tocsin.policy.loader import load_policy
from tocsin.policy.models import ExecuteRunbook, Policy
from tocsin.runbooks.plan import plan_from_policy
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


def _pairs(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CliError(f"--label {pair!r}: expected NAME=VALUE")
        found[name] = value
    return found


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
    plan = plan_from_policy(policy, args.name, service=args.service, severity=severity, labels=_pairs(args.label))
    if args.json:
        print(json.dumps(plan.model_dump(mode="json"), indent=2))
    else:
        print(plan.describe())
        print("Dry run: nothing was changed.")
    return 1 if plan.violations else 0
