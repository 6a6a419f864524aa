"""The limits triage and Temporal enforce, checked by the source schemas: each refusal names its field path."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from tests.support.alerts import ALERTMANAGER, GRAFANA, PAGERDUTY_TRIGGER, ROUTING_KEY
from tocsin.intake.limits import ALERTNAME_MAX, DESCRIPTION_MAX, KEYWORD_BYTES_MAX, TITLE_MAX, Labels
from tocsin.intake.normalize import normalize
from tocsin.intake.sources import ReceiverSource, describe_errors
from tocsin.policy.triage import SERVICE_MAX, TriggerRequest


def errors_of(source: ReceiverSource, data: object) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        normalize(source, data)
    return describe_errors(caught.value)


def am_with(labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    payload = copy.deepcopy(ALERTMANAGER)
    alert = payload["alerts"][0]
    alert["labels"].update(labels or {})
    alert["annotations"].update(annotations or {})
    return payload


def generic(**fields: Any) -> dict[str, Any]:
    labels = {"alertname": "QueueBacklog", "service": "billing", **fields.pop("labels", {})}
    return {"labels": labels, **fields}


def test_the_service_bound_is_triage_s_own() -> None:
    # Defined once: a service the schema accepts is one triage accepts.
    longest = "s" * SERVICE_MAX
    assert normalize("generic", generic(labels={"service": longest})).alerts[0].labels["service"] == longest
    assert TriggerRequest(service=longest).service == longest
    with pytest.raises(ValidationError):
        TriggerRequest(service=longest + "s")


def test_a_201_character_service_is_refused_at_its_path() -> None:
    assert errors_of("alertmanager", am_with({"service": "s" * (SERVICE_MAX + 1)})) == [
        "alerts.0.labels.service: String should have at most 200 characters"
    ]
    assert errors_of("generic", [generic(), generic(labels={"service": "s" * 201})]) == [
        "1.labels.service: String should have at most 200 characters"
    ]


def test_a_service_within_200_characters_but_over_the_search_attribute_size_is_refused() -> None:
    # Temporal counts the JSON-escaped value: 12 bytes an emoji, so 200 of them are 2,402 bytes.
    assert errors_of("generic", generic(labels={"service": "😀" * 200})) == [
        f"labels.service: String should be at most {KEYWORD_BYTES_MAX} bytes as a Temporal search attribute, not 2402"
    ]
    assert normalize("generic", generic(labels={"service": "😀" * 170}))
    assert normalize("generic", generic(labels={"service": "é" * 200}))  # 1,202 bytes
    assert errors_of("generic", generic(labels={"severity": "😀" * 200}))[0].startswith("labels.severity: ")


def test_a_300_character_alertname_is_refused() -> None:
    assert errors_of("generic", generic(labels={"alertname": "a" * 300})) == [
        f"labels.alertname: String should have at most {ALERTNAME_MAX} characters"
    ]
    grafana = copy.deepcopy(GRAFANA)
    grafana["alerts"][1]["labels"]["alertname"] = "a" * 300
    assert errors_of("grafana", grafana) == ["alerts.1.labels.alertname: String should have at most 200 characters"]


def test_a_10000_character_title_is_refused_wherever_a_title_comes_from() -> None:
    long = "t" * 10_000
    too_long = f"String should have at most {TITLE_MAX} characters"
    assert errors_of("generic", generic(summary=long)) == [f"summary: {too_long}"]
    assert errors_of("generic", generic(annotations={"summary": long})) == [f"annotations.summary: {too_long}"]
    assert errors_of("alertmanager", am_with(annotations={"summary": long})) == [
        f"alerts.0.annotations.summary: {too_long}"
    ]
    assert errors_of("generic", generic(annotations={"description": long})) == [
        f"annotations.description: String should have at most {DESCRIPTION_MAX} characters"
    ]
    event = {**PAGERDUTY_TRIGGER, "payload": {**PAGERDUTY_TRIGGER["payload"], "summary": long}}
    assert errors_of("pagerduty", event) == [f"payload.summary: {too_long}"]
    # A description is longer prose than a summary; other annotations keep the larger text bound.
    fine = normalize("generic", generic(annotations={"description": "d" * 4000, "runbook": "r" * 20_000}))
    assert fine.alerts[0].summary == "d" * 4000


def test_nul_in_a_label_is_refused() -> None:
    assert errors_of("alertmanager", am_with({"instance": "checkout-1\x00:8080"})) == [
        "alerts.0.labels.instance: String should not contain control characters (U+0000 at position 10)"
    ]
    assert errors_of("generic", generic(labels={"service": "bill\x00ing"})) == [
        "labels.service: String should not contain control characters (U+0000 at position 4)"
    ]


def test_control_characters_in_names_values_and_text() -> None:
    # A label name is printed with its control character escaped, never written raw to a log line.
    assert errors_of("generic", generic(labels={"bad\x1bname": "v"})) == [
        "labels.bad\\x1bname: String should not contain control characters (U+001B at position 3)"
    ]
    assert errors_of("generic", generic(labels={"team": "a\nb"}))[0].startswith("labels.team: ")
    assert errors_of("generic", generic(annotations={"runbook": "x\x07"}))[0].startswith("annotations.runbook: ")
    assert errors_of("generic", generic(summary="bell\x07"))[0].startswith("summary: ")
    assert errors_of("generic", generic(fingerprint="fp\x00"))[0].startswith("fingerprint: ")
    # Free text may hold tab, newline and carriage return.
    text = "line one\n\tline two\r\n"
    (alert,) = normalize("generic", generic(summary=text, annotations={"description": text})).alerts
    assert alert.summary == text and alert.annotations["description"] == text


def test_pagerduty_fields_that_become_labels_keep_their_bounds() -> None:
    payload = PAGERDUTY_TRIGGER["payload"]
    no_component = {k: v for k, v in payload.items() if k != "component"}
    # The source becomes the service only without a component: only then is it held to the service's bound.
    assert errors_of("pagerduty", {**PAGERDUTY_TRIGGER, "payload": {**no_component, "source": "h" * 201}}) == [
        "payload.source: String should have at most 200 characters"
    ]
    (alert,) = normalize("pagerduty", {**PAGERDUTY_TRIGGER, "payload": {**payload, "source": "h" * 300}}).alerts
    assert alert.labels["service"] == "postgres"
    assert errors_of("pagerduty", {**PAGERDUTY_TRIGGER, "payload": {**payload, "component": "c" * 201}}) == [
        "payload.component: String should have at most 200 characters"
    ]
    assert errors_of("pagerduty", {**PAGERDUTY_TRIGGER, "payload": {**payload, "class": "c" * 201}}) == [
        "payload.class: String should have at most 200 characters"
    ]
    resolve = {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "key\x00"}
    assert errors_of("pagerduty", resolve)[0].startswith("dedup_key: String should not contain control")


def test_labels_the_sender_left_out_stay_out() -> None:
    (alert,) = normalize("generic", {"labels": {"alertname": "A"}}).alerts
    assert alert.labels == {"alertname": "A"}
    assert alert.annotations == {}
    # Triage's own check of a label set needs no alertname (the detector's alerts always have one anyway).
    assert Labels.model_validate({"service": "s"}).as_dict() == {"service": "s"}


def test_one_alerts_labels_together_are_bounded() -> None:
    """Each value within its own bound, all together too large to travel with an incident: a 422 path."""
    from pydantic import ValidationError

    from tocsin.intake.limits import LABELS_TOTAL_MAX
    from tocsin.intake.sources import parse_generic

    labels = {"alertname": "Big", **{f"l{i}": "v" * 9_000 for i in range(2)}}
    try:
        parse_generic({"labels": labels})
    except ValidationError as err:
        assert f"at most {LABELS_TOTAL_MAX} characters" in str(err)
        assert err.errors()[0]["loc"][0] == "labels"
    else:
        raise AssertionError("an alert with 18,000 characters of labels was accepted")
