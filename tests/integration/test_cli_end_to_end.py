"""The issue's "Done when", proved offline against the real product, driven as a user drives it.

Everything goes through subprocesses: `tocsin up` (the embedded Temporal dev server plus the worker), the
`tocsin` commands, and the stock `temporal` CLI. Each run gets its own TOCSIN_HOME and free ports, so it
never touches a developer's `.tocsin` or a Temporal they have running.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import ROOT
from tests.support.product import Product, free_ports, ok, one_line_error, trigger_checkout_outage, wait_for
from tocsin.policy.loader import load_policy
from tocsin.roster import resolve

# --- the product, started once for the module --------------------------------------------------------------


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    running = Product(tmp_path_factory.mktemp("tocsin-home"))
    try:
        running.start()
        yield running
        running.stop_cleanly(signal.SIGTERM)
    finally:
        running.kill()


# --- 1. trigger, list, show, page ----------------------------------------------------------------------------


def test_trigger_matches_the_response_workflow_and_pages_at_once(product: Product) -> None:
    key = trigger_checkout_outage(product)
    assert key.startswith("checkout-")

    def listed() -> dict[str, Any] | None:
        rows = json.loads(ok(product.tocsin("incidents", "list", "--json")).stdout)
        return next((row for row in rows if row["key"] == key), None)

    row = wait_for(f"{key} in `tocsin incidents list`", listed)
    assert row["severity"] == "sev1", row  # from service_down_detection's create_incident action
    assert row["status"] == "triggered", row
    assert row["service"] == "checkout", row
    assert row["title"] == "Service checkout experiencing outage", row

    page = wait_for(f"a pagerduty page for {key} in the outbox", lambda: product.pages(key))[0]
    assert page["channel"] == "pagerduty", page
    # primary_oncall resolved through the default policy's roster: whoever is on call now, by PagerDuty id.
    on_call = resolve(load_policy(ROOT / "policies" / "default.yaml").roster, "primary_oncall", datetime.now(UTC))
    assert page["target"] == on_call.people[0].pagerduty, page
    assert "[sev1]" in page["message"], page

    shown = ok(product.tocsin("incidents", "show", key)).stdout
    assert "service_down_detection" in shown, shown
    events = [line.split()[2] for line in shown.splitlines() if line[:4].isdigit() and len(line.split()) > 2]
    assert events[:2] == ["opened", "triaged"], shown
    assert "page" in events, shown


# --- 2. the stock Temporal CLI acknowledges; visibility follows -----------------------------------------------


def test_stock_temporal_cli_acknowledges_and_search_attributes_follow(product: Product) -> None:
    key = trigger_checkout_outage(product)
    workflow_id = f"incident-{key}"
    wait_for(f"the first page of {key}", lambda: product.pages(key))

    acked = product.temporal(
        "workflow",
        "update",
        "execute",
        "--workflow-id",
        workflow_id,
        "--name",
        "acknowledge",
        "--input",
        '{"by":"bob"}',
    )
    ok(acked)
    assert "acknowledged by bob" in acked.stdout, acked.stdout

    state = product.show(key)
    assert state["status"] == "acknowledged", state
    assert state["acknowledged_by"] == "bob", state
    assert state["next_escalation_at"] is None, state  # paging stopped

    wait_for(
        f"{workflow_id} under IncidentSeverity='sev1'",
        lambda: workflow_id in product.workflow_ids("IncidentSeverity='sev1'"),
    )
    wait_for(
        f"{workflow_id} under IncidentStatus='acknowledged'",
        lambda: workflow_id in product.workflow_ids("IncidentStatus='acknowledged'"),
    )
    assert workflow_id not in product.workflow_ids("IncidentStatus='triggered'")


# --- 3. escalate, resolve, refuse, post-mortem ---------------------------------------------------------------


def test_resolve_refuses_later_acks_and_hands_off_to_the_postmortem(product: Product) -> None:
    key = trigger_checkout_outage(product)
    wait_for(f"the first page of {key}", lambda: product.pages(key))

    escalated = ok(product.tocsin("escalate", key, "--by", "x", "--reason", "r")).stdout
    assert "escalation to level 2 requested" in escalated, escalated
    wait_for(f"the level-2 page of {key}", lambda: [p for p in product.pages(key) if p["channel"] == "phone"])

    resolved = ok(product.tocsin("resolve", key, "--by", "carol", "--summary", "fixed")).stdout
    assert "resolved by carol" in resolved, resolved

    line = one_line_error(product.tocsin("ack", key, "--by", "dave"))
    assert key in line and "resolved" in line, line

    postmortem_id = f"postmortem-{key}"
    wait_for(
        f"{postmortem_id} in `temporal workflow list`",
        lambda: postmortem_id in product.workflow_ids(f"WorkflowId='{postmortem_id}'"),
    )
    handoff = product.home / "postmortems" / f"{key}.input.json"
    wait_for(f"{handoff}", handoff.exists)
    incident = json.loads(handoff.read_text(encoding="utf-8"))["incident"]
    assert incident["key"] == key and incident["status"] == "resolved", incident
    assert incident["resolved_by"] == "carol" and incident["resolution_summary"] == "fixed", incident

    state = product.show(key)  # the closed incident answers from its recorded result
    assert state["status"] == "resolved" and state["postmortem_workflow_id"] == postmortem_id, state
    assert [e["kind"] for e in state["timeline"]].count("escalated") == 1, state["timeline"]


# --- 4. errors are one line and a non-zero exit ----------------------------------------------------------------


def test_unknown_incident_is_one_line(product: Product) -> None:
    line = one_line_error(product.tocsin("ack", "nope", "--by", "x"))
    assert "no incident with key 'nope'" in line, line


def test_unknown_severity_is_refused_before_anything_starts(product: Product) -> None:
    before = product.workflow_ids("WorkflowType='IncidentWorkflow'")
    line = one_line_error(product.tocsin("trigger", "--service", "checkout", "--severity", "sev9"))
    assert "sev9" in line and "sev1" in line, line  # names the bad one and the known ones
    assert product.workflow_ids("WorkflowType='IncidentWorkflow'") == before


@pytest.mark.parametrize("name", ["bad-duration.yaml", "missing-section.yaml"])
def test_policies_check_rejects_a_bad_file_with_exit_2(product: Product, name: str) -> None:
    path = f"tests/fixtures/bad-policies/{name}"
    assert (ROOT / path).exists()
    result = product.tocsin("policies", "check", path)
    line = one_line_error(result)
    assert result.returncode == 2, result
    assert name in line, line


def test_policies_check_accepts_the_default_policy(product: Product) -> None:
    result = ok(product.tocsin("policies", "check", "policies/default.yaml"))
    assert result.stdout.startswith("policies/default.yaml: ok"), result.stdout
    assert result.stderr == ""


def test_unreachable_server_is_one_line(product: Product) -> None:
    (closed,) = free_ports(1)
    started = time.monotonic()
    result = product.tocsin("incidents", "list", env={"TOCSIN_TEMPORAL_PORT": str(closed)})
    elapsed = time.monotonic() - started
    line = one_line_error(result)
    assert f"cannot reach Temporal at 127.0.0.1:{closed}" in line, line
    assert elapsed < 10, f"a refused connection took {elapsed:.1f}s to report"


# --- 5. durability across a restart ---------------------------------------------------------------------------


def test_incident_survives_ctrl_c_and_restart(tmp_path: Path) -> None:
    first = Product(tmp_path / "home")
    try:
        first.start()
        key = first.trigger("--severity", "sev2", "--service", "api")
        wait_for(f"the first page of {key}", lambda: first.pages(key))
        first.stop_cleanly(signal.SIGINT)  # Ctrl-C
        assert "tocsin: worker stopped" in first.log()

        first.start()  # same TOCSIN_HOME, same ports
        state = first.show(key)
        assert state["status"] == "triggered" and state["severity"] == "sev2", state
        assert state["next_escalation_at"] is not None, state  # the next page is still scheduled
        assert [e["kind"] for e in state["timeline"]].count("page") == 1, state["timeline"]

        # Paging carries on after the restart: a manual escalation pages level 2 now.
        ok(first.tocsin("escalate", key, "--by", "x", "--reason", "after restart"))

        def two_pages() -> list[dict[str, Any]] | None:
            pages = first.pages(key)
            return pages if len(pages) >= 2 else None

        # The restarted worker's first tasks for this incident may wait out the dead worker's sticky queue
        # (5 s each on the dev server) and share two busy cores with the other tests: allow for both.
        try:
            pages = wait_for(f"the level-2 page of {key}", two_pages, timeout=45.0)
        except BaseException:
            print(json.dumps(first.show(key)["timeline"], indent=1), first.log()[-4000:], sep="\n")
            raise
        assert [p["channel"] for p in pages] == ["pagerduty", "phone"], pages

        ids = [line["id"] for line in first.outbox()]
        assert len(ids) == len(set(ids)), f"duplicate outbox ids after a restart: {ids}"
        first.stop_cleanly(signal.SIGTERM)
    finally:
        first.kill()
