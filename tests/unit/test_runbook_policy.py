"""Runbooks in the policy: the seed's two load, and every mistake is one message naming the file, line and path."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.paths import FIXTURES, ROOT
from tocsin.policy.loader import PolicyError, load_policy, parse_policy
from tocsin.policy.schema import Policy
from tocsin.runbook.steps import (
    ApprovalStep,
    HttpStep,
    NotifyStep,
    RolloutRestartStep,
    ScaleStep,
    SecretRef,
    VerifyStep,
)

DEFAULT = ROOT / "policies" / "default.yaml"
SEED = FIXTURES / "seed-config.yaml"

# A small valid policy; each test appends the steps of runbook `fix`.
BASE = """\
lifecycle: {default_severity: sev2, paging_severities: [sev1], postmortem_severities: [sev1]}
incident_classification:
  severity_levels:
    sev1: {name: Down, response_time: 5 minutes, escalation_time: 15 minutes}
    sev2: {name: Degraded, response_time: 15 minutes, escalation_time: 30 minutes}
escalation_policies:
  primary_oncall: [{type: sms, escalation_delay: 1 minute}]
runbooks:
  fix:
    guardrails: {allowed_namespaces: [production], max_replicas: 10}
    steps:
"""
SCALE = """\
      - name: scale_out
        action: kubernetes.scale
        deployment: "{{ $labels.service }}"
        namespace: production
        replicas: current * 2
"""


def _line_of(text: str, snippet: str) -> int:
    (index,) = [i for i, line in enumerate(text.splitlines(), start=1) if snippet in line]
    return index


def _error(text: str) -> str:
    with pytest.raises(PolicyError) as err:
        parse_policy(text, "p.yaml")
    return str(err.value)


# --- what loads -----------------------------------------------------------------------------------------


def test_the_default_policy_defines_the_seed_runbooks() -> None:
    policy = load_policy(DEFAULT)
    assert list(policy.runbooks) == [
        "service_recovery_playbook",
        "database_performance_optimization",
        # The seed's standalone remediation actions, each its own runbook.
        "scale_resources",
        "enable_read_replicas",
        "throttle_non_critical_queries",
    ]
    recovery = policy.runbooks["service_recovery_playbook"]
    assert [s.action for s in recovery.steps] == ["kubernetes.scale", "kubernetes.rollout_restart", "verify", "notify"]
    scale, restart, verify, notify = recovery.steps
    assert isinstance(scale, ScaleStep) and isinstance(restart, RolloutRestartStep)
    assert isinstance(verify, VerifyStep) and isinstance(notify, NotifyStep)
    assert scale.replicas == "current * 2" and recovery.ceiling(scale) == 20
    # The compensation names only what differs; the rest is the step's own.
    assert scale.compensate == ScaleStep(
        name="undo-scale_out",
        action="kubernetes.scale",
        deployment="{{ $labels.service }}",
        namespace="{{ $labels.namespace | default('production') }}",
        replicas="previous",
    )
    assert (verify.condition, verify.hold_for, verify.timeout) == (
        "< 0.05",
        timedelta(minutes=5),
        timedelta(minutes=15),
    )
    database = policy.runbooks["database_performance_optimization"]
    approve, enable = database.steps[0], database.steps[1]
    assert isinstance(approve, ApprovalStep) and isinstance(enable, HttpStep)
    assert (approve.default_for("sev1"), approve.timeout_for("sev1")) == ("approve", timedelta(minutes=5))
    assert (approve.default_for("sev3"), approve.timeout_for("sev3")) == ("reject", timedelta(minutes=15))
    assert enable.headers == {"Authorization": SecretRef(secret="TOCSIN_DB_ADMIN_TOKEN", prefix="Bearer ")}
    assert isinstance(enable.compensate, HttpStep) and enable.compensate.method == "DELETE"
    # No step of the default policy may reach loopback or link-local addresses; database labels have a pattern.
    for runbook in policy.runbooks.values():
        for step in runbook.steps:
            for http in (step, step.compensate if isinstance(step, HttpStep) else None):
                if isinstance(http, HttpStep):
                    assert not http.allow_loopback and not http.allow_link_local
    for name in ("database_performance_optimization", "enable_read_replicas", "throttle_non_critical_queries"):
        assert policy.runbooks[name].labels == {"database": "[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"}


def test_runbooks_survive_the_policy_snapshot_round_trip() -> None:
    policy = load_policy(DEFAULT)
    again = Policy.model_validate_json(policy.model_dump_json())
    assert again.runbooks == policy.runbooks
    assert '"for":"5 minutes"' in policy.model_dump_json()


def test_the_seed_names_runbooks_it_does_not_define() -> None:
    # The seed has no `runbooks:` section: its execute_runbook actions load, and planning one says it is
    # undefined (tocsin.runbook.planner). A policy that defines runbooks must define every one it names.
    assert load_policy(SEED).runbooks == {}
    text = DEFAULT.read_text(encoding="utf-8")
    broken = text.replace('runbook: "database_performance_optimization"', 'runbook: "db_tuning"')
    line = _line_of(broken, 'runbook: "db_tuning"')
    assert _error(broken) == (
        f"p.yaml:{line}: automated_response_workflows.database_performance_degradation.actions.1.runbook: "
        "unknown runbook 'db_tuning' (known: service_recovery_playbook, database_performance_optimization, "
        "scale_resources, enable_read_replicas, throttle_non_critical_queries)"
    )


# --- one message per mistake ----------------------------------------------------------------------------


def test_an_unregistered_action_is_a_policy_error_at_its_line() -> None:
    text = BASE + SCALE + '      - {name: cleanup, action: shell, command: "kubectl delete pod --all"}\n'
    assert _error(text) == (
        f"p.yaml:{_line_of(text, 'action: shell')}: runbooks.fix.steps.1.action: unknown action 'shell': runbooks "
        "run registered actions only (kubernetes.scale, kubernetes.rollout_restart, kubernetes.rollout_undo, "
        "http, verify, approval, wait, notify)"
    )


def test_an_unregistered_action_in_the_default_policy() -> None:
    text = DEFAULT.read_text(encoding="utf-8")
    broken = text.replace("action: kubernetes.rollout_restart", "action: kubernetes.exec")
    assert _error(broken).startswith(
        f"p.yaml:{_line_of(broken, 'action: kubernetes.exec')}: runbooks.service_recovery_playbook.steps.1.action: "
        "unknown action 'kubernetes.exec'"
    )


def test_a_step_without_an_action() -> None:
    text = BASE + "      - {name: nothing}\n"
    assert (
        _error(text) == f"p.yaml:{_line_of(text, 'name: nothing')}: runbooks.fix.steps.0.action: required, but missing"
    )


def test_a_compensation_of_the_wrong_kind() -> None:
    text = BASE + SCALE + "        compensate: {action: verify, query: up, condition: '< 1', timeout: 1 minute}\n"
    assert _error(text) == (
        f"p.yaml:{_line_of(text, 'compensate:')}: runbooks.fix.steps.0.compensate.action: 'verify' cannot "
        "compensate a step (compensating actions: kubernetes.scale, kubernetes.rollout_undo, http, notify)"
    )


def test_only_a_step_that_changes_something_has_a_compensation() -> None:
    text = BASE + "      - name: pause\n        action: wait\n        duration: 1 minute\n"
    text += "        compensate: {action: notify, channels: ['#x'], message: m}\n"
    assert _error(text) == (
        f"p.yaml:{_line_of(text, 'compensate:')}: runbooks.fix.steps.0.compensate: "
        "a wait step changes nothing: it has nothing to compensate"
    )


def test_a_compensation_has_no_compensation() -> None:
    inner = "{action: notify, channels: ['#x'], message: again}"
    text = BASE + SCALE + f"        compensate: {{action: kubernetes.scale, replicas: previous, compensate: {inner}}}\n"
    assert "steps.0.compensate.compensate: a compensation has no compensation of its own" in _error(text)


def test_duplicate_step_names() -> None:
    text = BASE + SCALE + SCALE.replace("current * 2", "current + 1")
    second = [i for i, line in enumerate(text.splitlines(), start=1) if "name: scale_out" in line][1]
    assert _error(text) == f"p.yaml:{second}: runbooks.fix.steps.1.name: duplicate step name (first at steps.0)"
    # A compensation's name counts too.
    text = BASE + SCALE + "        compensate: {name: scale_out, action: kubernetes.scale, replicas: previous}\n"
    assert "runbooks.fix.steps.0.compensate.name: duplicate step name (first at steps.0)" in _error(text)


@pytest.mark.parametrize(
    "header",
    ["Authorization: 'Bearer hunter2-hunter2'", "X-Api-Key: hunter2-hunter2", "X-Anything: 'Basic aHVudGVyMg=='"],
)
def test_a_literal_secret_in_headers_is_refused(header: str) -> None:
    text = BASE + "      - name: call\n        action: http\n        url: https://admin.internal/x\n"
    text += f"        headers:\n          {header}\n"
    message = _error(text)
    name = header.split(":")[0]
    assert message == (
        f"p.yaml:{_line_of(text, header)}: runbooks.fix.steps.0.headers.{name}: a credential is never written in "
        "a policy: reference the environment variable that holds it, e.g. {secret: TOCSIN_ADMIN_TOKEN, "
        "prefix: 'Bearer '}"
    )
    assert "hunter2" not in message and "aHVudGVyMg" not in message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://{{ $labels.host }}/x", "the URL must start with a literal http(s)://host"),
        ("https://admin:pw@admin.internal/x", "the URL must start with a literal http(s)://host"),
        ("ftp://admin.internal/x", "the URL must start with a literal http(s)://host"),
        ("https://admin.internal/${TOKEN}", "'${NAME}' may only start the URL"),
        ("${TOCSIN_DB_ADMIN_URL}replicas", "after ${TOCSIN_DB_ADMIN_URL} comes a path starting with '/'"),
    ],
)
def test_urls_have_a_fixed_origin(url: str, problem: str) -> None:
    text = BASE + f"      - name: call\n        action: http\n        url: '{url}'\n"
    assert _error(text).startswith(f"p.yaml:{_line_of(text, 'url:')}: runbooks.fix.steps.0.url: {problem}")


def test_address_permissions_and_label_patterns_load() -> None:
    text = BASE.replace("    steps:\n", "    labels: {database: '[a-z]+'}\n    steps:\n")
    text += "      - name: call\n        action: http\n        url: 'https://admin.internal/x'\n"
    text += "        allow_loopback: true\n        allow_link_local: true\n"
    fix = parse_policy(text, "p.yaml").runbooks["fix"]
    assert fix.labels == {"database": "[a-z]+"}
    assert isinstance(fix.steps[0], HttpStep) and fix.steps[0].allow_loopback and fix.steps[0].allow_link_local
    broken = text.replace("'[a-z]+'", "'[a-z'")
    assert _error(broken) == (
        f"p.yaml:{_line_of(broken, 'labels:')}: runbooks.fix.labels.database: not a regular expression: "
        "unterminated character set at position 0"
    )


def test_kubernetes_guardrails_are_required() -> None:
    no_namespaces = BASE.replace("allowed_namespaces: [production], ", "") + SCALE
    assert _error(no_namespaces) == (
        f"p.yaml:{_line_of(no_namespaces, 'guardrails:')}: runbooks.fix.guardrails: "
        "a runbook with Kubernetes steps must list the namespaces it may touch"
    )
    no_ceiling = BASE.replace(", max_replicas: 10", "") + SCALE
    assert _error(no_ceiling) == (
        f"p.yaml:{_line_of(no_ceiling, 'name: scale_out')}: runbooks.fix.steps.0: a scale step needs a ceiling: "
        "set max_replicas here or in the runbook's guardrails"
    )
    outside = BASE + SCALE.replace("namespace: production", "namespace: kube-system")
    assert _error(outside) == (
        f"p.yaml:{_line_of(outside, 'kube-system')}: runbooks.fix.steps.0.namespace: namespace 'kube-system' "
        "is not in guardrails.allowed_namespaces (production)"
    )
    previous = BASE + SCALE.replace("current * 2", "previous")
    assert "runbooks.fix.steps.0.replicas: 'previous' is for a compensation only" in _error(previous)


def test_approvals_name_defined_severities_and_roster_targets() -> None:
    step = "      - {name: ok, action: approval, approvers: [alice], timeout: {sev1: 5m, sev3: 1h}, default: approve}\n"
    assert _error(BASE + step).endswith(
        "runbooks.fix.steps.0.timeout.sev3: unknown severity 'sev3' (defined: sev1, sev2)"
    )
    uncovered = step.replace("sev3: 1h", "sev1: 5m").replace("{sev1: 5m, sev1: 5m}", "{sev1: 5m}")
    assert _error(BASE + uncovered).endswith(
        "runbooks.fix.steps.0.timeout: no timeout for sev2: name them or add 'otherwise'"
    )
    fine = step.replace("sev3: 1h", "otherwise: 1h")
    assert parse_policy(BASE + fine, "p.yaml").runbooks["fix"].steps[0].name == "ok"
    roster = (
        "roster:\n  people:\n    bob: {timezone: UTC, email: bob@example.com}\n"
        "  rotations:\n    primary_oncall: {type: weekly, timezone: UTC, start: 2025-01-06, members: [bob]}\n"
    )
    assert _error(roster + BASE + fine).endswith(
        "runbooks.fix.steps.0.approvers.0: 'alice' is no person, team or rotation of the roster"
    )


def test_verify_must_be_able_to_hold_long_enough() -> None:
    step = "      - {name: ok, action: verify, query: up, condition: '> 0', for: 10 minutes, timeout: 5 minutes}\n"
    assert _error(BASE + step).endswith(
        "runbooks.fix.steps.0: timeout must be at least `for`: the condition could never hold long enough"
    )


def test_templates_are_compiled_at_load() -> None:
    step = "      - {name: tell, action: notify, channels: ['#x'], message: '{{ $labels.service '}\n"
    assert "runbooks.fix.steps.0.message: invalid template '{{ $labels.service '" in _error(BASE + step)
    body = "      - {name: call, action: http, url: 'https://a.internal/x', body: {why: '{{ oops '}}\n"
    assert "runbooks.fix.steps.0.body: invalid template '{{ oops '" in _error(BASE + body)
