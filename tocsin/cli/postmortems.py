"""`tocsin postmortem show | approve | request-changes`: read a post-mortem's state and draft, and review it.

`show KEY` prints the workflow's state (phase, revision, sources, action items) and the latest draft's
Markdown; `approve KEY --by NAME` publishes it; `request-changes KEY --by NAME --notes TEXT` has it
regenerated with the notes. Decisions are Temporal updates: refused (one line, exit 1) outside review.
"""

from __future__ import annotations

import argparse
import uuid

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from tocsin.cli.commands import CliError, Connect
from tocsin.cli.output import emit_json
from tocsin.models import postmortem_workflow_id
from tocsin.postmortem.state import ApproveRequest, PostMortemState, RequestChangesRequest, ReviewAnswer
from tocsin.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pm = sub.add_parser("postmortem", help="post-mortems: show a draft, approve it or request changes")
    pm_sub = pm.add_subparsers(dest="postmortem_command", required=True, metavar="SUBCOMMAND")
    show = pm_sub.add_parser("show", help="a post-mortem's state and its latest draft")
    show.add_argument("key", help="the incident key")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=show_postmortem)
    approve = pm_sub.add_parser("approve", help="approve the draft: it is published and followed through")
    approve.add_argument("key")
    approve.add_argument("--by", required=True)
    approve.set_defaults(func=approve_postmortem)
    changes = pm_sub.add_parser("request-changes", help="have the draft regenerated with your notes")
    changes.add_argument("key")
    changes.add_argument("--by", required=True)
    changes.add_argument("--notes", required=True)
    changes.set_defaults(func=request_changes)


async def _state(client: Client, key: str) -> PostMortemState:
    handle = client.get_workflow_handle(postmortem_workflow_id(key))
    try:
        state: PostMortemState = await handle.query("status", result_type=PostMortemState)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CliError(f"no post-mortem for incident {key!r}") from None
        raise
    return state


async def show_postmortem(connect: Connect, settings: Settings, args: argparse.Namespace) -> None:
    state = await _state(await connect(), args.key)
    if args.json:
        emit_json(state)
        return
    print(f"postmortem-{state.key}: {state.phase.replace('_', ' ')}, revision {state.revision}")
    for source, status in state.sources.items():
        print(f"  {source}: {status}")
    if state.approved_by:
        print(f"  approved by {state.approved_by}")
    if state.report_url:
        print(f"  published: {state.report_url}")
    for item in state.items:
        issue = f" {item.issue_url}" if item.issue_url else ""
        print(f"  [{'open' if item.open else 'done'}] {item.title} ({item.owner}, due {item.due:%Y-%m-%d}){issue}")
    draft = settings.postmortem_dir / f"{state.key}.md"
    if draft.exists():
        print()
        print(draft.read_text(encoding="utf-8"))


async def _decide(connect: Connect, key: str, update: str, request: ApproveRequest | RequestChangesRequest) -> None:
    handle = (await connect()).get_workflow_handle(postmortem_workflow_id(key))
    try:
        answer = await handle.execute_update(update, request, id=request.request_id, result_type=ReviewAnswer)
    except WorkflowUpdateFailedError as err:
        raise CliError(f"postmortem-{key}: {err.cause or err}") from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CliError(f"no post-mortem for incident {key!r} (or it has finished)") from None
        raise
    print(f"postmortem-{answer.key}: {answer.message}")


async def approve_postmortem(connect: Connect, settings: Settings, args: argparse.Namespace) -> None:
    await _decide(connect, args.key, "approve", ApproveRequest(by=args.by, request_id=str(uuid.uuid4())))


async def request_changes(connect: Connect, settings: Settings, args: argparse.Namespace) -> None:
    request = RequestChangesRequest(by=args.by, notes=args.notes, request_id=str(uuid.uuid4()))
    await _decide(connect, args.key, "request_changes", request)
