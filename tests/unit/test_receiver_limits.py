"""Intake refuses before it applies: limits answered 422 with the field path and nothing ingested, Temporal's
permanent refusals answered 4xx/500 (never a 503 "retry"), and no payload at all that makes a 5xx."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tests.support.alerts import ALERTMANAGER, GRAFANA, PAGERDUTY_TRIGGER, ROUTING_KEY, json_values
from tests.support.fake_temporal import FakeTemporal
from tests.support.paths import ROOT
from tests.unit.test_receiver import FakeIngest, Receiver, healthy
from tocsin.intake.contracts import IngestResult, IntakeRefused, NormalizedAlert, TemporalRefused
from tocsin.intake.ingest import ingest_alerts
from tocsin.policy.loader import load_policy
from tocsin.receiver.app import ENDPOINTS, create_app
from tocsin.receiver.config import ReceiverConfig


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver(ReceiverConfig(), FakeIngest(), healthy())
    yield receiver
    await receiver.http.aclose()


def am_alert(labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    alert: dict[str, Any] = copy.deepcopy(ALERTMANAGER["alerts"][0])
    alert["labels"].update(labels or {})
    alert["annotations"].update(annotations or {})
    return alert


# --- The four cases of the issue: 422, the field path, nothing ingested ------------------------------------


async def test_a_201_character_service_is_422_and_nothing_is_ingested(receiver: Receiver) -> None:
    alerts = [{"labels": {"alertname": "A", "service": "ok"}}, {"labels": {"alertname": "A", "service": "s" * 201}}]
    r = await receiver.post(ENDPOINTS["generic"], alerts)
    assert r.status_code == 422
    assert r.json() == {
        "reason": "invalid_payload",
        "message": "1.labels.service: String should have at most 200 characters",
        "errors": ["1.labels.service: String should have at most 200 characters"],
    }
    assert receiver.ingest.calls == []


async def test_a_10000_character_title_is_422_and_nothing_is_ingested(receiver: Receiver) -> None:
    payload = {**ALERTMANAGER, "alerts": [am_alert(), am_alert(annotations={"summary": "t" * 10_000})]}
    r = await receiver.post(ENDPOINTS["alertmanager"], payload)
    assert (r.status_code, r.json()["errors"]) == (
        422,
        ["alerts.1.annotations.summary: String should have at most 1024 characters"],
    )
    r = await receiver.post(ENDPOINTS["generic"], {"labels": {"alertname": "A"}, "summary": "t" * 10_000})
    assert (r.status_code, r.json()["errors"]) == (422, ["summary: String should have at most 1024 characters"])
    event = {**PAGERDUTY_TRIGGER, "payload": {**PAGERDUTY_TRIGGER["payload"], "summary": "t" * 10_000}}
    r = await receiver.post(ENDPOINTS["pagerduty"], event)
    assert (r.status_code, r.json()["errors"]) == (400, ["payload.summary: String should have at most 1024 characters"])
    assert receiver.ingest.calls == []


async def test_nul_in_a_label_is_422_and_nothing_is_ingested(receiver: Receiver) -> None:
    payload = {**ALERTMANAGER, "alerts": [am_alert(), am_alert(labels={"pod": "api-\x00-1"})]}
    r = await receiver.post(ENDPOINTS["alertmanager"], payload)
    assert r.status_code == 422
    assert r.json()["errors"] == [
        "alerts.1.labels.pod: String should not contain control characters (U+0000 at position 4)"
    ]
    assert receiver.ingest.calls == []


async def test_a_300_character_alertname_is_422_and_nothing_is_ingested(receiver: Receiver) -> None:
    grafana = copy.deepcopy(GRAFANA)
    grafana["alerts"][0]["labels"]["alertname"] = "a" * 300
    r = await receiver.post(ENDPOINTS["grafana"], grafana)
    assert r.status_code == 422
    assert r.json()["errors"] == ["alerts.0.labels.alertname: String should have at most 200 characters"]
    assert receiver.ingest.calls == []


# --- What ingest reports, as the sender hears it -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "reason"),
    [("too_large", 413, "temporal_too_large"), ("invalid", 422, "temporal_refused"), ("failed", 500, "temporal_error")],
)
async def test_a_permanent_temporal_refusal_is_never_a_503(
    receiver: Receiver, kind: Any, status: int, reason: str
) -> None:
    message = "Temporal refused the alerts of incident x: INVALID_ARGUMENT: Blob data size exceeds limit."
    receiver.ingest.error = TemporalRefused(message, kind)
    r = await receiver.post(ENDPOINTS["generic"], {"labels": {"alertname": "A"}})
    assert (r.status_code, r.json()) == (status, {"reason": reason, "message": message})
    assert "Retry-After" not in r.headers
    assert await receiver.metric("tocsin_ingest_rejects_total", source="generic", reason=reason) == 1
    r = await receiver.post(ENDPOINTS["pagerduty"], PAGERDUTY_TRIGGER)
    assert r.status_code == (400 if status == 422 else status)
    assert "Retry-After" not in r.headers


async def test_an_alert_triage_cannot_place_is_422_untriageable(receiver: Receiver) -> None:
    errors = ["alert 0 (incident a-1): template '{{ labels.x.y }}' failed: 'str object' has no attribute 'y'"]
    receiver.ingest.error = IntakeRefused(errors)
    r = await receiver.post(ENDPOINTS["generic"], {"labels": {"alertname": "A"}})
    assert (r.status_code, r.json()) == (422, {"reason": "untriageable", "message": errors[0], "errors": errors})
    assert await receiver.metric("tocsin_ingest_rejects_total", source="generic", reason="untriageable") == 1


# --- Property: whatever is posted, never a 5xx, and what the schemas accept triage and Temporal accept -------

POLICY = load_policy(ROOT / "policies" / "default.yaml")
TEMPORAL = FakeTemporal()
UNTRIAGEABLE: list[list[str]] = []


async def real_ingest(alerts: list[NormalizedAlert]) -> IngestResult:
    """The receiver's own ingest in front of a Temporal that refuses what the dev server refuses: it raises
    on a programming error (a 500, which fails the property) or a refusal (recorded, and asserted absent)."""
    try:
        return await ingest_alerts(TEMPORAL.client, POLICY, alerts)
    except IntakeRefused as err:
        UNTRIAGEABLE.append(err.errors)
        raise


@pytest.fixture(scope="module")
def http() -> Iterator[TestClient]:
    app = create_app(ingest=real_ingest, healthcheck=healthy(), config=ReceiverConfig())
    # A loopback name: an open receiver answers no other (tests/unit/test_receiver_host.py).
    with TestClient(app, base_url="http://localhost:8080") as client:
        yield client


LENGTHS = [0, 1, 170, 199, 200, 201, 300, 1024, 1025, 4096, 4097, 10_000, 10_001]
printable = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=30)
# At and around every bound, in characters that count 1, 2, 4 and 12 bytes (UTF-8 and JSON-escaped).
long_text = st.builds(
    lambda c, n: c * n, st.sampled_from(["s", "é", "😀", "\\", '"', "\u2028", "\ufeff"]), st.sampled_from(LENGTHS)
)
control_text = st.builds(
    lambda a, c, b: a + c + b,
    st.text(max_size=5),
    st.characters(max_codepoint=0x1F) | st.just("\x7f"),
    st.text(max_size=5),
)
odd_text = st.integers(0, 3).flatmap(lambda n: (long_text, long_text, control_text, st.text(max_size=30))[n])
alertnames = st.sampled_from(
    [t.name for flow in POLICY.automated_response_workflows.values() for t in flow.triggers if t.name] + ["Other"]
)
labels = st.builds(
    lambda fixed, extra: {**extra, **fixed},
    st.fixed_dictionaries(
        {
            "alertname": alertnames | printable,
            "service": printable,
            "environment": printable,
            "severity": st.sampled_from([*POLICY.intake.severity_map, "CRITICAL"]) | printable,
        }
    ),
    st.dictionaries(printable, printable, max_size=3),
)
annotation_sets = st.fixed_dictionaries(
    {"summary": printable}, optional={"description": printable, "runbook": printable}
)
status = st.sampled_from(["firing", "resolved"])
am_alerts = st.fixed_dictionaries(
    {"status": status, "labels": labels, "annotations": annotation_sets},
    optional={"fingerprint": printable, "startsAt": st.just("2026-03-01T10:00:00Z")},
)
generic_alert = st.fixed_dictionaries(
    {"labels": labels}, optional={"status": status, "summary": printable, "fingerprint": printable}
)
pagerduty_payload = st.fixed_dictionaries(
    {"summary": printable, "source": printable, "severity": st.sampled_from(["critical", "error", "warning", "info"])},
    optional={"component": printable, "group": printable, "class": printable, "custom_details": json_values},
)
valid_bodies = st.one_of(
    st.tuples(st.just("generic"), generic_alert | st.lists(generic_alert, min_size=1, max_size=3)),
    st.tuples(
        st.just("alertmanager"),
        st.fixed_dictionaries({"version": st.just("4"), "status": status, "alerts": st.lists(am_alerts, max_size=3)}),
    ),
    st.tuples(st.just("grafana"), st.fixed_dictionaries({"status": status, "alerts": st.lists(am_alerts, max_size=3)})),
    st.tuples(
        st.just("pagerduty"),
        st.fixed_dictionaries(
            {
                "routing_key": st.just(ROUTING_KEY),
                "event_action": st.sampled_from(["trigger", "acknowledge", "resolve"]),
                "dedup_key": printable,
                "payload": pagerduty_payload,
            }
        ),
    ),
)
# The fields a limit guards, named as they appear anywhere in a payload.
GUARDED = ["service", "alertname", "severity", "summary", "description", "source", "component", "class", "dedup_key"]


def poke(node: object, key: str | None, target: int, value: str) -> tuple[object, int]:
    """The payload with one string replaced by `value`: every value under `key`, or else the `target`-th
    string (dict keys included, depth first). Returns the new payload and how many strings it passed."""
    if isinstance(node, str):
        return (value if key is None and target == 0 else node), 1
    seen = 0
    if isinstance(node, list):
        items = []
        for item in node:
            new, n = poke(item, key, target - seen, value)
            items.append(new)
            seen += n
        return items, seen
    if isinstance(node, dict):
        out: dict[str, object] = {}
        for name, item in node.items():
            renamed = value if key is None and target - seen == 0 else name
            seen += 1
            new, n = poke(item, key, target - seen, value)
            out[renamed] = value if name == key else new
            seen += n
        return out, seen
    return node, 0


@st.composite
def near_valid(draw: st.DrawFn) -> tuple[str, object]:
    """A valid payload with one field made odd: a guarded field, or any string at all."""
    source, body = draw(valid_bodies)
    value = draw(odd_text)
    if draw(st.integers(0, 3)) > 0:
        return source, poke(body, draw(st.sampled_from(GUARDED)), -1, value)[0]
    _, strings = poke(body, None, -1, value)
    return source, poke(body, None, draw(st.integers(0, max(strings - 1, 0))), value)[0]


# Half near-valid, a quarter valid, a quarter any JSON at all.
bodies = st.integers(0, 3).flatmap(
    lambda n: (valid_bodies, near_valid(), near_valid(), st.tuples(st.sampled_from(list(ENDPOINTS)), json_values))[n]
)


@settings(
    max_examples=int(os.environ.get("TOCSIN_HYPOTHESIS_EXAMPLES", "600")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=bodies)
# The cases of the issue, and the search attribute's byte limit, on every run whatever is drawn.
@example(
    body=(
        "generic",
        [{"labels": {"alertname": "A", "service": "ok"}}, {"labels": {"alertname": "A", "service": "s" * 201}}],
    )
)
@example(
    body=(
        "alertmanager",
        {
            "version": "4",
            "status": "firing",
            "alerts": [{"status": "firing", "labels": {"alertname": "A", "service": "😀" * 200}}],
        },
    )
)
@example(body=("grafana", {"status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": "a" * 300}}]}))
@example(body=("generic", {"labels": {"alertname": "A", "pod": "x\x00y"}, "summary": "t" * 10_000}))
@example(
    body=("pagerduty", {**PAGERDUTY_TRIGGER, "payload": {"summary": "s", "source": "h" * 201, "severity": "info"}})
)
def test_no_payload_makes_a_5xx_and_what_the_schema_accepts_is_ingested(
    http: TestClient, body: tuple[str, object]
) -> None:
    source, data = body
    TEMPORAL.refused.clear()
    UNTRIAGEABLE.clear()
    r = http.post(ENDPOINTS[source], content=json.dumps(data), headers={"Content-Type": "application/json"})  # type: ignore[index]
    event(f"{source} {r.status_code}")  # shown by --hypothesis-show-statistics: every endpoint reaches 202
    assert r.status_code < 500, r.text
    assert r.status_code in (202, 400, 413, 422), r.text
    assert UNTRIAGEABLE == [], "the schema accepted an alert triage refuses"
    assert TEMPORAL.refused == [], "the schema accepted what Temporal refuses"
