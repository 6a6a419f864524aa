"""`tocsin postmortem show | approve | request-changes`: read a post-mortem's state and draft, and review it.

`show KEY` prints the workflow's state (phase, revision, sources, action items) and the latest draft's
Markdown; `approve KEY --by NAME` publishes it; `request-changes KEY --by NAME --notes TEXT` has it
regenerated with the notes. Decisions are Temporal updates: refused (one line, exit 1) outside review.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from tocsin.cli.common import CliError, Connect, IncidentKey, JsonFlag, RequiredBy, on_temporal
from tocsin.cli.output import emit_json
from tocsin.incident.contracts import postmortem_workflow_id
from tocsin.postmortem.state import ApproveRequest, PostMortemState, RequestChangesRequest, ReviewAnswer
from tocsin.settings import Settings

app = typer.Typer(help="post-mortems: show a draft, approve it or request changes")

Key = Annotated[str, typer.Argument(metavar="KEY")]


@app.command("show", help="a post-mortem's state and its latest draft")
def show_command(key: IncidentKey, as_json: JsonFlag = False) -> None:
    async def showing(settings: Settings, connect: Connect) -> None:
        await show_postmortem(connect, settings, key, as_json)

    on_temporal(showing)


@app.command("approve", help="approve the draft: it is published and followed through")
def approve_command(key: Key, by: RequiredBy) -> None:
    async def approving(settings: Settings, connect: Connect) -> None:
        await approve_postmortem(connect, key, by)

    on_temporal(approving)


@app.command("request-changes", help="have the draft regenerated with your notes")
def request_changes_command(key: Key, by: RequiredBy, notes: Annotated[str, typer.Option("--notes")]) -> None:
    async def requesting(settings: Settings, connect: Connect) -> None:
        await request_changes(connect, key, by, notes)

    on_temporal(requesting)


async def _state(client: Client, key: str) -> PostMortemState:
    handle = client.get_workflow_handle(postmortem_workflow_id(key))
    try:
        state: PostMortemState = await handle.query("status", result_type=PostMortemState)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CliError(f"no post-mortem for incident {key!r}") from None
        raise
    return state


async def show_postmortem(connect: Connect, settings: Settings, key: str, as_json: bool = False) -> None:
    state = await _state(await connect(), key)
    if as_json:
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


async def approve_postmortem(connect: Connect, key: str, by: str) -> None:
    await _decide(connect, key, "approve", ApproveRequest(by=by, request_id=str(uuid.uuid4())))


async def request_changes(connect: Connect, key: str, by: str, notes: str) -> None:
    request = RequestChangesRequest(by=by, notes=notes, request_id=str(uuid.uuid4()))
    await _decide(connect, key, "request_changes", request)
