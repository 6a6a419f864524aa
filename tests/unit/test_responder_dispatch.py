"""tocsin.responders.dispatch without a server: `act` alone decides that Temporal did not answer (every route
then answers 503 with Retry-After), a refusal by the incident is the person's answer, anything else stays
what it is; and finding "my latest page" is one visibility query, then status queries a batch at a time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from tocsin.incident.client import IncidentError, IncidentRow, list_incidents
from tocsin.incident.contracts import IncidentState
from tocsin.incident.updates import UpdateResult
from tocsin.intake.contracts import TemporalUnavailable
from tocsin.responders import dispatch
from tocsin.responders.codes import short_code
from tocsin.responders.contracts import InboundAction, NotActed

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
CLIENT: Any = object()  # never touched: the incident client's functions are replaced below


def action(**more: Any) -> InboundAction:
    fields = {"vendor": "slack", "verb": "acknowledge", "person": "alice", "event_id": "1700000000.1"}
    return InboundAction.model_validate({**fields, **more})


@pytest.mark.parametrize(
    "error",
    [
        RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b""),
        RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b""),
        RuntimeError("Failed client connect: transport error"),
    ],
)
async def test_temporal_not_answering_is_temporal_unavailable(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    async def failing(*_: object) -> UpdateResult:
        raise error

    monkeypatch.setattr(dispatch, "send_update", failing)
    with pytest.raises(TemporalUnavailable, match=r"^Temporal did not answer: "):
        await dispatch.act(CLIENT, action(key="checkout-1"))


async def test_a_refusal_is_the_persons_answer_and_other_errors_stay_themselves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    errors: list[Exception] = [IncidentError("acknowledge refused: incident checkout-1 is resolved")]

    async def failing(*_: object) -> UpdateResult:
        raise errors[0]

    monkeypatch.setattr(dispatch, "send_update", failing)
    with pytest.raises(NotActed) as refused:
        await dispatch.act(CLIENT, action(key="checkout-1"))
    assert refused.value.kind == "refused" and "is resolved" in refused.value.reason
    errors[0] = RPCError("permission denied", RPCStatusCode.PERMISSION_DENIED, b"")
    with pytest.raises(RPCError):  # not an outage: the route answers 500, never a 503 that is retried forever
        await dispatch.act(CLIENT, action(key="checkout-1"))
    with pytest.raises(NotActed, match="say for how long"):
        await dispatch.act(CLIENT, action(key="checkout-1", verb="snooze"))


def row(key: str, minutes_ago: int) -> IncidentRow:
    opened = NOW - timedelta(minutes=minutes_ago)
    return IncidentRow(
        key=key, severity="sev1", status="triggered", service="checkout", level=1, opened_at=opened, title="t"
    )


async def test_the_latest_page_is_one_visibility_query_then_status_queries_in_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [row(f"svc-{n:02d}", minutes_ago=n) for n in range(25)]  # svc-00 is the newest
    listed: list[object] = []
    in_flight = {"now": 0, "most": 0}

    async def list_incidents(client: Client, status: object = None, limit: int = 0, **_: object) -> list[IncidentRow]:
        listed.append(status)
        return list(reversed(rows))

    async def get_incident(client: Client, key: str) -> IncidentState:
        in_flight["now"] += 1
        in_flight["most"] = max(in_flight["most"], in_flight["now"])
        await asyncio.sleep(0)
        in_flight["now"] -= 1
        paged = ["alice"] if key == "svc-13" else ["bob"]
        return IncidentState(key=key, title="t", service="checkout", severity="sev1", opened_at=NOW, paged_people=paged)

    monkeypatch.setattr(dispatch, "list_incidents", list_incidents)
    monkeypatch.setattr(dispatch, "get_incident", get_incident)
    assert await dispatch.find_incident(CLIENT, "alice", None) == "svc-13"
    assert listed == [("triggered", "acknowledged", "mitigated")]  # one query for every open status
    assert in_flight["most"] == dispatch.BATCH
    assert await dispatch.find_incident(CLIENT, "bob", short_code("svc-07")) == "svc-07"
    with pytest.raises(NotActed, match="no open incident has paged you"):
        await dispatch.find_incident(CLIENT, "carol", None)


class RecordingVisibility:
    """A client whose visibility records each query and lists nothing."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def list_workflows(self, query: str, limit: int) -> Any:
        self.queries.append(query)

        async def nothing() -> Any:
            return
            yield

        return nothing()


@pytest.mark.parametrize(
    ("status", "running_only"),
    [(("triggered", "acknowledged", "mitigated"), True), ("triggered", True), ("resolved", False), (None, False)],
)
async def test_open_statuses_list_running_executions_only(status: Any, running_only: bool) -> None:
    """A run that continued as new keeps the status it had: searching open incidents without
    `ExecutionStatus = 'Running'` would list such an incident twice (`tocsin incidents list`, a person's latest
    page, a maintenance window's incidents)."""
    visibility = RecordingVisibility()
    assert await list_incidents(cast(Client, visibility), status=status, service="checkout") == []
    [query] = visibility.queries
    assert ("ExecutionStatus = 'Running'" in query) is running_only, query
    assert "IncidentService = 'checkout'" in query
    if status == ("triggered", "acknowledged", "mitigated"):
        assert "IncidentStatus IN ('triggered', 'acknowledged', 'mitigated')" in query
