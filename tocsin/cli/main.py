"""The `tocsin` command line. Every failure is one message on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import NoReturn

from pydantic import ValidationError
from temporalio.client import Client
from temporalio.service import RPCError

from tocsin.channels.base import DeliveryError
from tocsin.cli import commands, oncall, postmortems, runbooks
from tocsin.cli.commands import CliError, Connect
from tocsin.cli.rules import export as export_rules
from tocsin.cli.up import receiver_only, up, worker_only
from tocsin.client import ServerUnreachable, connect
from tocsin.devserver import DevServerError
from tocsin.incidents import IncidentError
from tocsin.policy.loader import PolicyError, load_policy
from tocsin.receiver.config import ReceiverError
from tocsin.settings import Settings, load_settings
from tocsin.state_dir import StateDirError

Command = Callable[[Connect, Settings, argparse.Namespace], Awaitable[None]]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tocsin", description="Durable incident response on Temporal.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser(
        "up",
        help="start Temporal (unless TEMPORAL_ADDRESS is set), the worker and the alert receiver, in the foreground",
    )
    sub.add_parser("worker", help="run the worker alone against TEMPORAL_ADDRESS or the local server")
    sub.add_parser(
        "receiver", help="run the alert receiver alone (TOCSIN_HTTP_HOST:TOCSIN_HTTP_PORT) against TEMPORAL_ADDRESS"
    )

    def incident_cmd(name: str, help: str) -> argparse.ArgumentParser:
        """A human action on one incident (see commands.HUMAN_ACTIONS)."""
        cmd = sub.add_parser(name, help=help)
        cmd.add_argument("key", help="incident key (as printed by `tocsin trigger`)")
        cmd.add_argument("--by", required=True, help="who is acting")
        cmd.add_argument("--request-id", help="idempotency key: repeating the call with it changes nothing")
        cmd.add_argument("--json", action="store_true", help="machine-readable output")
        cmd.set_defaults(func=commands.human_action)
        return cmd

    t = sub.add_parser("trigger", help="open an incident by hand; prints its key")
    t.add_argument("--service", required=True)
    t.add_argument("--severity", help="sev1..sev4 (default: from the response workflow or the policy)")
    t.add_argument("--title")
    t.add_argument("--label", action="append", default=[], metavar="NAME=VALUE", help="alert label (repeatable)")
    t.add_argument("--workflow", help="response workflow from the policy (default: matched by labels)")
    t.add_argument("--key", help="incident key (default: generated from the service and time)")
    t.add_argument("--policy", help="policy file (default: TOCSIN_POLICY or policies/default.yaml)")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=commands.trigger)

    inc = sub.add_parser("incidents", help="list or show incidents")
    inc_sub = inc.add_subparsers(dest="incidents_command", required=True, metavar="SUBCOMMAND")
    ls = inc_sub.add_parser("list", help="incidents, newest first (a visibility query)")
    ls.add_argument("--status", choices=["triggered", "acknowledged", "mitigated", "resolved"])
    ls.add_argument("--severity")
    ls.add_argument("--service")
    ls.add_argument("--limit", type=int, default=100)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=commands.list_cmd)
    show = inc_sub.add_parser("show", help="one incident's state and timeline")
    show.add_argument("key")
    show.add_argument("--json", action="store_true")
    show.add_argument("--page", type=int, default=1, help="timeline page, newest first (default 1: the latest)")
    show.add_argument("--page-size", type=int, default=50, help="timeline entries per page (default 50)")
    show.add_argument("--all", action="store_true", help="the whole timeline on one page")
    show.set_defaults(func=commands.show)

    incident_cmd("ack", "acknowledge: stops paging")
    incident_cmd("escalate", "page the next escalation level now").add_argument("--reason", default="")
    incident_cmd("mitigate", "mark mitigated (impact stopped, not yet resolved)").add_argument("--summary", default="")
    incident_cmd("resolve", "resolve: stops escalation, notifies, starts the post-mortem").add_argument(
        "--summary", default=""
    )
    incident_cmd("annotate", "add a note to the timeline").add_argument("--text", required=True)
    sev = incident_cmd("severity", "change the severity (re-plans response and escalation)")
    sev.add_argument("severity")
    sev.add_argument("--reason", default="")

    pol = sub.add_parser("policies", help="policy files")
    pol_sub = pol.add_subparsers(dest="policies_command", required=True, metavar="SUBCOMMAND")
    check = pol_sub.add_parser("check", help="validate a policy file; non-zero exit on error")
    check.add_argument("file", nargs="?", help="default: TOCSIN_POLICY or policies/default.yaml")
    channels = sub.add_parser("channels", help="which channels are live or go to the outbox; checks credentials")
    channels.add_argument("--json", action="store_true")

    rules = sub.add_parser("rules", help="Prometheus rules and the Alertmanager route, from the policy")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True, metavar="SUBCOMMAND")
    export = rules_sub.add_parser("export", help="write tocsin-rules.yml and alertmanager-tocsin.yml")
    export.add_argument("--out", default=".", help="directory to write into (default: here)")
    export.add_argument("--policy", help="default: TOCSIN_POLICY or policies/default.yaml")
    export.add_argument("--receiver-url", help="default: http://127.0.0.1:$TOCSIN_HTTP_PORT/api/v1/alerts/alertmanager")
    export.add_argument("--token-file", help="file Alertmanager reads the receiver's bearer token from")
    oncall.add_parser(sub)
    runbooks.add_parser(sub)
    postmortems.add_parser(sub)
    return p


async def _run(func: Command, settings: Settings, args: argparse.Namespace) -> None:
    async def connect_once() -> Client:
        try:
            return await connect(settings)
        except RuntimeError:
            # The SDK's reason is a Rust transport dump; the address and the likely cause help more.
            hint = " (is `tocsin up` running?)" if settings.embedded else ""
            raise CliError(f"cannot reach Temporal at {settings.target}{hint}") from None

    await func(connect_once, settings, args)


def _check_policy(settings: Settings, file: str | None) -> None:
    path = file or str(settings.policy)
    policy = load_policy(path)
    levels = policy.incident_classification.severity_levels
    print(
        f"{path}: ok ({len(levels)} severities, {len(policy.automated_response_workflows)} response workflows, "
        f"{len(policy.escalation_policies.primary_oncall)} primary escalation steps)"
    )


def main(argv: list[str] | None = None) -> int:
    code = _main(argv)
    if argv is None:
        # Run as the `tocsin` program: leave without interpreter finalization. temporalio's Rust threads can still
        # take the GIL while Python tears down, killing a command that already succeeded with SIGABRT ("Fatal
        # Python error: PyGILState_Release") or SIGSEGV, about one run in twelve (temporalio/sdk-python#300).
        _exit_now(code)
    return code


def _exit_now(code: int) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe (`tocsin incidents list | head`) has nothing more to hear.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.command in ("up", "worker", "receiver") else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings()
        if args.command == "up":
            asyncio.run(up(settings))
        elif args.command == "worker":
            asyncio.run(worker_only(settings))
        elif args.command == "receiver":
            asyncio.run(receiver_only(settings))
        elif args.command == "policies":
            _check_policy(settings, args.file)
        elif args.command == "rules":
            export_rules(settings, args)
        elif args.command == "channels":
            from tocsin.cli.channels import channels_command  # imports every vendor adapter: only here

            return channels_command(args)
        elif args.command == "oncall":
            oncall.run(settings, args)
        elif args.command == "runbook" and args.runbook_command == "dry-run":
            return runbooks.run(settings, args)
        else:
            asyncio.run(_run(args.func, settings, args))
    except PolicyError as err:
        print(f"tocsin: {err}", file=sys.stderr)
        return 2
    except (
        CliError,
        IncidentError,
        DevServerError,
        ServerUnreachable,
        ReceiverError,
        DeliveryError,
        StateDirError,
    ) as err:
        print(f"tocsin: {err}", file=sys.stderr)
        return 1
    except ValidationError as err:
        first = err.errors()[0]
        print(f"tocsin: {'.'.join(map(str, first['loc']))}: {first['msg']}", file=sys.stderr)
        return 2
    except RPCError as err:
        print(f"tocsin: Temporal refused: {err.message}", file=sys.stderr)
        return 1
    except ValueError as err:  # settings such as a malformed port
        print(f"tocsin: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
