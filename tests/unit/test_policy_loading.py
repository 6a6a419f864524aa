"""Loading policy files: the seed's configuration as written, round trips, and one clear message per mistake."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.paths import FIXTURES, ROOT
from tocsin.policy.loader import PolicyError, load_policy, parse_policy
from tocsin.policy.schema import Policy, ScaleResources
from tocsin.policy.triage import TriggerRequest, plan_incident

DEFAULT = ROOT / "policies" / "default.yaml"
SEED = FIXTURES / "seed-config.yaml"
BAD = FIXTURES / "bad-policies"


def _error(path: Path) -> str:
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    message = str(info.value)
    # One message for a person: raised `from None`, so not even a chained traceback is printed.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    assert "Traceback" not in message
    assert "pydantic" not in message.lower()
    assert "errors.pydantic.dev" not in message
    return message


# --- the seed's configuration -------------------------------------------------------------------------


def test_seed_fixture_has_only_the_seed_sections() -> None:
    raw = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    assert list(raw) == ["incident_classification", "automated_response_workflows", "escalation_policies"]
    scale = raw["automated_response_workflows"]["service_down_detection"]["actions"][2]
    assert scale["replicas"] == "{{ .current_replicas * 2 }}"


def test_seed_loads_unchanged() -> None:
    policy = load_policy(SEED)
    assert list(policy.incident_classification.severity_levels) == ["sev1", "sev2", "sev3", "sev4"]
    assert list(policy.automated_response_workflows) == ["service_down_detection", "database_performance_degradation"]
    # Where the seed is silent, Tocsin's defaults apply.
    assert policy.lifecycle.default_severity == "sev3"
    assert policy.lifecycle.paging_severities == ["sev1", "sev2"]


def test_default_policy_is_the_seed_section_for_section() -> None:
    seed, default = load_policy(SEED), load_policy(DEFAULT)
    # ack_timeout is Tocsin's addition (the seed has no such key).
    tocsin_levels: Any = {"severity_levels": {"__all__": {"ack_timeout"}}}
    assert seed.incident_classification.model_dump(exclude=tocsin_levels) == default.incident_classification.model_dump(
        exclude=tocsin_levels
    )
    assert seed.escalation_policies.model_dump() == default.escalation_policies.model_dump()
    assert list(seed.automated_response_workflows) == list(default.automated_response_workflows)
    tocsin_only: Any = {"match": True, "triggers": {"__all__": {"name", "expr"}}}
    for name, flow in default.automated_response_workflows.items():
        ours = flow.model_dump(exclude=tocsin_only)
        theirs = seed.automated_response_workflows[name].model_dump(exclude=tocsin_only)
        assert ours == theirs, name
        # Each trigger's alert name and PromQL are Tocsin's additions; the seed has neither.
        assert all(t.name and t.expr for t in flow.triggers)
        assert all(t.name is None and t.expr is None for t in seed.automated_response_workflows[name].triggers)


def test_seed_replicas_expression_is_normalised() -> None:
    actions = load_policy(SEED).automated_response_workflows["service_down_detection"].actions
    scale = actions[2]
    assert isinstance(scale, ScaleResources)
    assert scale.replicas == "current * 2"
    assert scale.target == "deployment/{{ $labels.service }}"


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("{{ .current_replicas * 2 }}", "current * 2"),
        ("{{.current_replicas * 3}}", "current * 3"),
        ("{{ .current_replicas }}", "current"),
        ("current  *  2", "current * 2"),
        ("current + 1", "current + 1"),
        (4, "4"),
    ],
)
def test_replica_expressions(written: str | int, normalised: str) -> None:
    action = ScaleResources.model_validate({"type": "scale_resources", "target": "x", "replicas": written})
    assert action.replicas == normalised


@pytest.mark.parametrize("written", ["double", "{{ .replicas * 2 }}", "current / 2", "{{ $labels.replicas }}"])
def test_bad_replica_expressions_are_rejected(written: str) -> None:
    with pytest.raises(ValueError, match="must be a count or 'current', 'current \\* N', 'current \\+ N'"):
        ScaleResources.model_validate({"type": "scale_resources", "target": "x", "replicas": written})


def test_seed_policy_triages_an_outage() -> None:
    request = TriggerRequest(
        service="checkout", labels={"environment": "prod"}, response_workflow="service_down_detection"
    )
    incident = plan_incident(load_policy(SEED), request, datetime(2026, 3, 1, tzinfo=UTC))
    assert incident.severity == "sev1"
    assert incident.title == "Service checkout experiencing outage"
    params = {action.type: action.params for action in incident.actions}
    assert params["execute_runbook"] == {
        "runbook": "service_recovery_playbook",
        "parameters.service": "checkout",
        "parameters.environment": "prod",
        # The seed defines no runbooks: the incident opens all the same and says why this one cannot run.
        "plan_error": "unknown runbook 'service_recovery_playbook' (the policy defines none)",
    }
    assert incident.runbooks == []
    # Nor a runbook named after the seed's scale_resources: nothing runs that the policy does not define.
    assert params["scale_resources"] == {
        "target": "deployment/checkout",
        "replicas": "current * 2",
        "plan_error": "unknown runbook 'scale_resources' (the policy defines none)",
    }


# --- round trip -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [DEFAULT, SEED], ids=["default", "seed"])
def test_round_trip_through_json(path: Path) -> None:
    policy = load_policy(path)
    again = Policy.model_validate_json(policy.model_dump_json())
    assert again == policy
    assert again.model_dump_json() == policy.model_dump_json()


def test_durations_serialise_as_human_text() -> None:
    dumped: dict[str, Any] = json.loads(load_policy(DEFAULT).model_dump_json())
    levels = dumped["incident_classification"]["severity_levels"]
    assert levels["sev1"]["response_time"] == "5 minutes"
    assert levels["sev1"]["escalation_time"] == "15 minutes"
    assert levels["sev3"]["response_time"] == "1 hour"
    assert levels["sev3"]["escalation_time"] == "2 hours"
    steps = dumped["escalation_policies"]["primary_oncall"]
    assert [s["escalation_delay"] for s in steps] == ["5 minutes", "2 minutes", "1 minute"]
    triggers = dumped["automated_response_workflows"]["service_down_detection"]["triggers"]
    assert [t["duration"] for t in triggers] == ["2 minutes", "3 minutes", "5 minutes"]
    assert dumped["lifecycle"]["delivery_timeout"] == "30 seconds"


# --- one message per mistake: small files, one error each -----------------------------------------------
# Each file in tests/fixtures/bad-policies/ is the same small valid policy with one mistake (line 1 says which).


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("yaml-syntax.yaml", "{path}:13: not valid YAML: expected ',' or ']', but got ':'"),
        ("top-level-list.yaml", "{path}: (top level): expected a mapping of policy sections, got list"),
        (
            "unknown-key.yaml",
            "{path}:9: incident_classification.severity_levels.sev1.response_time: required, but missing\n"
            "{path}:10: incident_classification.severity_levels.sev1.respone_time: unknown key (a typo?)",
        ),
        (
            "bad-duration.yaml",
            "{path}:11: incident_classification.severity_levels.sev1.escalation_time: "
            "invalid duration '5 minuts': unknown unit 'minuts'",
        ),
        (
            "bare-number-duration.yaml",
            "{path}:22: escalation_policies.primary_oncall.0.escalation_delay: "
            "bare number 5 is ambiguous: write a unit, e.g. '5 minutes'",
        ),
        (
            "unknown-automatic-action.yaml",
            "{path}:12: incident_classification.severity_levels.sev1.automatic_actions.1: "
            "'page_everyone' is not allowed; input should be 'create_war_room', 'notify_executives', "
            "'trigger_emergency_response', 'start_status_page_incident', 'create_slack_channel', "
            "'notify_team', 'notify_stakeholders', 'create_ticket' or 'schedule_fix'",
        ),
        (
            "unknown-action-type.yaml",
            "{path}:16: automated_response_workflows.service_down_detection.actions.0: "
            "unknown action type 'restart_service' (known: 'create_incident', 'execute_runbook', "
            "'scale_resources', 'notify_stakeholders', 'enable_read_replicas', 'throttle_non_critical_queries')",
        ),
        (
            "undefined-severity.yaml",
            "{path}:17: automated_response_workflows.service_down_detection.actions.0.severity: "
            "unknown severity 'sev5' (defined: sev1)",
        ),
        (
            "broken-template.yaml",
            "{path}:18: automated_response_workflows.service_down_detection.actions.0.title: "
            "invalid template 'Service {{ $labels.service ': "
            "unexpected end of template, expected 'end of print statement'. (line 1)",
        ),
        (
            "bad-condition.yaml",
            "{path}:28: escalation_policies.management_escalation.0.conditions.0: "
            "condition \"severity ~= 'sev1'\" is not of the form <field> <op> <value>, e.g. \"severity == 'sev1'\"",
        ),
        (
            "unknown-condition-field.yaml",
            "{path}:29: escalation_policies.management_escalation.0.conditions.1: "
            "condition \"priority == 'high'\": unknown field 'priority' "
            "(known: severity, status, service, duration, escalation_level, acknowledged)",
        ),
        # A missing key has no line of its own: the message points at the mapping that lacks it.
        (
            "missing-key.yaml",
            "{path}:9: incident_classification.severity_levels.sev1.escalation_time: required, but missing",
        ),
        ("missing-section.yaml", "{path}: escalation_policies: required, but missing"),
    ],
)
def test_bad_policy_files(name: str, expected: str) -> None:
    path = BAD / name
    assert _error(path) == expected.replace("{path}", str(path))


def test_every_bad_policy_file_is_tested() -> None:
    tested = {
        "yaml-syntax.yaml",
        "top-level-list.yaml",
        "unknown-key.yaml",
        "bad-duration.yaml",
        "bare-number-duration.yaml",
        "unknown-automatic-action.yaml",
        "unknown-action-type.yaml",
        "undefined-severity.yaml",
        "broken-template.yaml",
        "bad-condition.yaml",
        "unknown-condition-field.yaml",
        "missing-key.yaml",
        "missing-section.yaml",
    }
    assert {p.name for p in BAD.glob("*.yaml")} == tested


def test_bad_policy_files_differ_from_a_valid_policy_by_their_one_mistake() -> None:
    # The fixed version of each file loads: the expected message really is about the one mistake.
    fixes = {
        "unknown-key.yaml": ("respone_time:", "response_time:"),
        "bad-duration.yaml": ('"5 minuts"', '"5 minutes"'),
        "bare-number-duration.yaml": ("escalation_delay: 5", 'escalation_delay: "5 minutes"'),
        "unknown-automatic-action.yaml": (", page_everyone", ""),
        "unknown-action-type.yaml": ("restart_service", "create_incident"),
        "undefined-severity.yaml": ('"sev5"', '"sev1"'),
        "broken-template.yaml": ('service "', 'service }}"'),
        "bad-condition.yaml": ("~=", "=="),
        "unknown-condition-field.yaml": ("priority == 'high'", "service == 'api'"),
        "yaml-syntax.yaml": ("[create_war_room\n", "[create_war_room]\n"),
    }
    for name, (wrong, right) in fixes.items():
        text = (BAD / name).read_text(encoding="utf-8")
        assert text.count(wrong) == 1, name
        parse_policy(text.replace(wrong, right), name)


def test_missing_file() -> None:
    path = BAD / "no-such-policy.yaml"
    assert _error(path) == f"{path}: no such policy file"


def test_a_directory_is_not_a_policy_file(tmp_path: Path) -> None:
    assert _error(tmp_path).startswith(f"{tmp_path}: cannot read: ")


@pytest.mark.parametrize(
    ("text", "kind"), [("", "NoneType"), ("just words\n", "str"), ("42\n", "int")], ids=["empty", "str", "int"]
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    assert _error(path) == f"{path}: (top level): expected a mapping of policy sections, got {kind}"


# --- the same mistakes in the full default policy: the line and path are the edited ones ----------------


def _line_of(text: str, snippet: str) -> int:
    (index,) = [i for i, line in enumerate(text.splitlines(), start=1) if snippet in line]
    return index


@pytest.mark.parametrize(
    ("old", "new", "dotted", "problem"),
    [
        (
            'escalation_time: "2 hours"',
            'escalation_time: "5 minuts"',
            "incident_classification.severity_levels.sev3.escalation_time",
            "invalid duration '5 minuts': unknown unit 'minuts'",
        ),
        (
            'escalation_delay: "2 minutes"',
            "escalation_delay: 5",
            "escalation_policies.primary_oncall.1.escalation_delay",
            "bare number 5 is ambiguous: write a unit, e.g. '5 minutes'",
        ),
        (
            'duration: "10 minutes"',
            "duration: 10",
            "automated_response_workflows.database_performance_degradation.triggers.1.duration",
            "bare number 10 is ambiguous: write a unit, e.g. '10 minutes'",
        ),
        (
            "- notify_team",
            "- notify_teem",
            "incident_classification.severity_levels.sev3.automatic_actions.1",
            "'notify_teem' is not allowed; input should be",
        ),
        (
            'type: "enable_read_replicas"',
            'type: "enable_read_replica"',
            "automated_response_workflows.database_performance_degradation.actions.2",
            "unknown action type 'enable_read_replica' (known: ",
        ),
        (
            'severity: "sev2"',
            'severity: "sev5"',
            "automated_response_workflows.database_performance_degradation.actions.0.severity",
            "unknown severity 'sev5' (defined: sev1, sev2, sev3, sev4)",
        ),
        (
            'database: "{{ $labels.database }}"',
            'database: "{{ $labels.database "',
            "automated_response_workflows.database_performance_degradation.actions.2.database",
            "invalid template '{{ $labels.database ': unexpected end of template",
        ),
        (
            "\"duration > '60 minutes'\"",
            "\"duration ~= '60 minutes'\"",
            "escalation_policies.management_escalation.1.conditions.1",
            "condition \"duration ~= '60 minutes'\" is not of the form <field> <op> <value>",
        ),
        (
            "\"duration > '60 minutes'\"",
            "\"age > '60 minutes'\"",
            "escalation_policies.management_escalation.1.conditions.1",
            "condition \"age > '60 minutes'\": unknown field 'age'",
        ),
        (
            "\"duration > '60 minutes'\"",
            "\"severity == 'sev7'\"",
            "escalation_policies.management_escalation.1.conditions.1",
            "unknown severity 'sev7' (defined: sev1, sev2, sev3, sev4)",
        ),
        (
            "\"duration > '60 minutes'\"",
            "\"severity == 'sev1' and duration > '60 minutes'\"",
            "escalation_policies.management_escalation.1.conditions.1",
            "value \"'sev1' and duration > '60 minutes'\" is not one quoted text: write one comparison per condition",
        ),
        (
            "default_severity: sev3",
            "default_severity: sev9",
            "lifecycle.default_severity",
            "unknown severity 'sev9' (defined: sev1, sev2, sev3, sev4)",
        ),
    ],
)
def test_mistakes_in_the_default_policy(tmp_path: Path, old: str, new: str, dotted: str, problem: str) -> None:
    text = DEFAULT.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} no longer occurs exactly once in {DEFAULT}"
    broken = text.replace(old, new)
    path = tmp_path / "policy.yaml"
    path.write_text(broken, encoding="utf-8")
    message = _error(path)
    assert "\n" not in message
    assert message.startswith(f"{path}:{_line_of(broken, new)}: {dotted}: {problem}")


def test_typo_in_the_default_policy(tmp_path: Path) -> None:
    text = DEFAULT.read_text(encoding="utf-8")
    old = 'response_time: "15 minutes"'
    assert text.count(old) == 1
    broken = text.replace(old, 'respone_time: "15 minutes"')
    path = tmp_path / "policy.yaml"
    path.write_text(broken, encoding="utf-8")
    mapping = _line_of(broken, 'name: "High - Major Functionality Impaired"')
    typo = _line_of(broken, "respone_time")
    # The typo is two facts: the key that should be there is missing, and the one that is there is unknown.
    assert _error(path) == (
        f"{path}:{mapping}: incident_classification.severity_levels.sev2.response_time: required, but missing\n"
        f"{path}:{typo}: incident_classification.severity_levels.sev2.respone_time: unknown key (a typo?)"
    )


def test_missing_key_in_the_default_policy_points_at_its_mapping(tmp_path: Path) -> None:
    text = DEFAULT.read_text(encoding="utf-8")
    old = '      escalation_time: "30 minutes"\n'
    assert text.count(old) == 1
    broken = text.replace(old, "")
    path = tmp_path / "policy.yaml"
    path.write_text(broken, encoding="utf-8")
    line = _line_of(broken, 'name: "High - Major Functionality Impaired"')
    assert _error(path) == (
        f"{path}:{line}: incident_classification.severity_levels.sev2.escalation_time: required, but missing"
    )


def test_yaml_error_in_the_default_policy(tmp_path: Path) -> None:
    text = DEFAULT.read_text(encoding="utf-8")
    old = 'channels: ["#incidents", "#sre-alerts"]'
    assert text.count(old) == 1
    broken = text.replace(old, 'channels: ["#incidents", "#sre-alerts"')
    path = tmp_path / "policy.yaml"
    path.write_text(broken, encoding="utf-8")
    # YAML notices an unclosed list where the next line begins, one line after the mistake.
    line = _line_of(broken, 'channels: ["#incidents", "#sre-alerts"') + 1
    assert _error(path) == f"{path}:{line}: not valid YAML: expected ',' or ']', but got '<scalar>'"


def test_every_mistake_is_reported_at_once(tmp_path: Path) -> None:
    text = DEFAULT.read_text(encoding="utf-8")
    broken = text.replace('escalation_delay: "2 minutes"', "escalation_delay: 2").replace(
        "- notify_team", "- notify_teem"
    )
    path = tmp_path / "policy.yaml"
    path.write_text(broken, encoding="utf-8")
    lines = _error(path).splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "incident_classification.severity_levels.sev3.automatic_actions.1",
        "escalation_policies.primary_oncall.1.escalation_delay",
    ]
    assert all(line.startswith(f"{path}:") for line in lines)


def test_a_duplicate_key_is_an_error_not_a_silent_override() -> None:
    text = DEFAULT.read_text()
    # A second `sev1:` where `sev2:` stood would silently replace the first sev1 in plain YAML.
    broken = text.replace("    sev2:\n", "    sev1:\n", 1)
    with pytest.raises(PolicyError) as err:
        parse_policy(broken, "dup.yaml")
    first = _line_of(text, "    sev1:")
    second = _line_of(text, "    sev2:")
    assert str(err.value) == f"dup.yaml:{second}: not valid YAML: duplicate key 'sev1' (first on line {first})"


def test_a_status_condition_must_name_a_real_status() -> None:
    broken = DEFAULT.read_text().replace("\"severity == 'sev1'\"", "\"status == 'resolvd'\"", 1)
    with pytest.raises(PolicyError, match="status is one of triggered, acknowledged, mitigated, resolved"):
        parse_policy(broken, "status.yaml")


def test_a_failing_default_says_it_is_a_default() -> None:
    text = (
        "incident_classification:\n  severity_levels:\n"
        "    sev1: {name: Down, response_time: 5 minutes, escalation_time: 15 minutes}\n"
        "escalation_policies:\n  primary_oncall: [{type: sms, escalation_delay: 1 minute}]\n"
    )
    with pytest.raises(PolicyError) as err:
        parse_policy(text, "tiny.yaml")
    assert str(err.value) == (
        "tiny.yaml: lifecycle.default_severity: unknown severity 'sev3' (defined: sev1); "
        "Tocsin's default, set lifecycle.default_severity"
    )
