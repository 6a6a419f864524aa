"""Golden histories of real runs, replayed against today's workflow code (see tests/replay/record_histories.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from tests.replay.changed_workflow import ReorderedIncidentWorkflow
from workflows.heartbeat import HeartbeatWorkflow
from workflows.incident import IncidentWorkflow
from workflows.maintenance import MaintenanceWorkflow
from workflows.postmortem import PostMortemWorkflow
from workflows.runbook import RunbookWorkflow
from workflows.runbook_guard import RunbookGuardWorkflow
from workflows.storm_guard import StormGuardWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    # The file is named after the workflow id it records.
    return WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))


def test_there_are_golden_histories_of_every_workflow() -> None:
    names = {p.stem.split("-golden-")[0] for p in HISTORIES}
    # Every workflow that lives longer than a moment; DetectionWorkflow is one schedule tick of seconds (its own
    # replay test is in tests/integration/test_detection_prometheus.py).
    assert names == {"incident", "maintenance", "postmortem", "runbook", "runbookguard", "stormguard", "heartbeat"}
    assert len(HISTORIES) >= 5


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_golden_history_replays(path: Path) -> None:
    replayer = Replayer(
        workflows=[
            IncidentWorkflow,
            MaintenanceWorkflow,
            PostMortemWorkflow,
            RunbookWorkflow,
            RunbookGuardWorkflow,
            StormGuardWorkflow,
            HeartbeatWorkflow,
        ],
        data_converter=pydantic_data_converter,
    )
    result = await replayer.replay_workflow(load(path))
    assert result.replay_failure is None


async def test_a_non_deterministic_change_fails_replay() -> None:
    history = load(next(p for p in HISTORIES if p.stem == "incident-golden-sev1-unacknowledged"))
    replayer = Replayer(workflows=[ReorderedIncidentWorkflow], data_converter=pydantic_data_converter)
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(history)


def test_the_golden_histories_hold_every_update_and_signal_of_the_incident() -> None:
    """Each handler a person or a vendor reaches is in some recorded history, so a change to any of them that
    breaks determinism fails here, not on an incident that is open in production."""
    seen: set[str] = set()
    for path in HISTORIES:
        for event in json.loads(path.read_text(encoding="utf-8"))["events"]:
            accepted = event.get("workflowExecutionUpdateAcceptedEventAttributes")
            signalled = event.get("workflowExecutionSignaledEventAttributes")
            if accepted:
                seen.add(accepted["acceptedRequest"]["input"]["name"])
            if signalled:
                seen.add(signalled["signalName"])
    updates = {"acknowledge", "escalate", "mitigate", "resolve", "annotate", "set_severity", "snooze", "take"}
    signals = {"alerts", "runbook_progress", "storm_decision", "storm_members", "maintenance", "ping"}
    # The maintenance registry's updates, too (maintenance-golden-registry).
    assert updates | {"run_runbook", "start_window", "end_window"} | signals <= seen
