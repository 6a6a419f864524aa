"""Planning a runbook for an incident: rendering, escaping, guardrails, the replica ceiling and the dry-run text."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from tests.support.paths import FIXTURES, ROOT
from tocsin.cli.main import main
from tocsin.policy.fields import LOADING
from tocsin.policy.loader import load_policy
from tocsin.policy.schema import Policy
from tocsin.runbook.errors import GuardrailViolation
from tocsin.runbook.guardrails import check_namespace, next_run_allowed_at, target_replicas
from tocsin.runbook.plan_contracts import (
    PlannedApproval,
    PlannedHttp,
    PlannedNotify,
    PlannedRestart,
    PlannedScale,
    PlannedVerify,
    RunbookPlan,
    plan_digest,
)
from tocsin.runbook.planner import PlanError, plan_from_policy, plan_request, plan_runbook
from tocsin.runbook.schema import RateLimit, Runbook
from tocsin.runbook.steps import SecretRef


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(ROOT / "policies" / "default.yaml")


def _recovery(policy: Policy, **labels: str) -> RunbookPlan:
    return plan_from_policy(
        policy,
        "service_recovery_playbook",
        service="checkout",
        severity="sev1",
        labels={"environment": "prod", **labels},
    )


# --- rendering ------------------------------------------------------------------------------------------


def test_the_recovery_playbook_renders_for_an_incident(policy: Policy) -> None:
    plan = _recovery(policy)
    scale, restart, verify, notify = plan.steps
    assert scale == PlannedScale(
        name="scale_out",
        timeout=timedelta(minutes=2),
        namespace="production",  # the label is missing: the template's default
        deployment="checkout",
        replicas="current * 2",
        max_replicas=20,
        wait_for_rollout=False,
        compensate=PlannedScale(
            name="undo-scale_out",
            timeout=timedelta(minutes=2),
            namespace="production",
            deployment="checkout",
            replicas="previous",
            max_replicas=None,
            wait_for_rollout=False,
            restores="scale_out",
        ),
    )
    assert isinstance(restart, PlannedRestart) and restart.timeout == timedelta(minutes=10) and restart.wait_for_rollout
    assert isinstance(verify, PlannedVerify)
    assert verify.query == (
        'sum(rate(http_requests_total{service="checkout",code=~"5.."}[5m])) '
        '/ sum(rate(http_requests_total{service="checkout"}[5m]))'
    )
    assert (verify.condition, verify.hold_for, verify.interval) == (
        "< 0.05",
        timedelta(minutes=5),
        timedelta(seconds=30),
    )
    assert isinstance(notify, PlannedNotify) and notify.message.startswith("checkout scaled out and restarted")
    assert plan.labels == {"environment": "prod", "service": "checkout"}
    assert plan.violations == []
    plan.check()


def test_labels_service_and_parameters(policy: Policy) -> None:
    plan = plan_from_policy(
        policy,
        "service_recovery_playbook",
        service="checkout",
        severity="sev1",
        labels={"namespace": "staging", "service": "ignored"},
        parameters={"environment": "prod"},
    )
    assert plan.labels == {"environment": "prod", "namespace": "staging", "service": "checkout"}
    assert isinstance(plan.steps[0], PlannedScale) and plan.steps[0].namespace == "staging"


def test_the_database_playbook_renders_per_severity(policy: Policy) -> None:
    for severity, timeout, default in (("sev1", 5, "approve"), ("sev2", 15, "reject")):
        plan = plan_from_policy(
            policy, "database_performance_optimization", service="orders", severity=severity, labels={"database": "db1"}
        )
        approve, enable = plan.steps[0], plan.steps[1]
        assert isinstance(approve, PlannedApproval)
        assert (approve.timeout, approve.default) == (timedelta(minutes=timeout), default)
        assert approve.message == "Enable read replicas and throttle low-priority queries on db1?"
    assert isinstance(enable, PlannedHttp)
    assert enable.url == "${TOCSIN_DB_ADMIN_URL}/databases/db1/read-replicas"
    assert enable.headers == {"Authorization": SecretRef(secret="TOCSIN_DB_ADMIN_TOKEN", prefix="Bearer ")}
    assert enable.json_body == {"enabled": True, "reason": "tocsin runbook for orders"}
    assert isinstance(enable.compensate, PlannedHttp) and enable.compensate.method == "DELETE"


def test_a_plan_holds_names_of_secrets_never_their_values(policy: Policy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCSIN_DB_ADMIN_TOKEN", "s3cret-token")
    monkeypatch.setenv("TOCSIN_DB_ADMIN_URL", "https://admin.internal/s3cret-path")
    plan = plan_from_policy(
        policy, "database_performance_optimization", service="orders", severity="sev2", labels={"database": "db1"}
    )
    dumped = plan.model_dump_json()
    assert "s3cret" not in dumped and "TOCSIN_DB_ADMIN_TOKEN" in dumped


def test_planning_is_deterministic_and_the_plan_is_plain_data(policy: Policy) -> None:
    first, second = _recovery(policy), _recovery(policy)
    assert first == second
    assert RunbookPlan.model_validate_json(first.model_dump_json()) == first


# --- label values are escaped for where they land -------------------------------------------------------


def test_label_values_cannot_break_out_of_a_promql_string() -> None:
    runbook = _runbook(
        "steps:\n  - name: v\n    action: verify\n    query: 'up{job=\"{{ $labels.job }}\"}'\n"
        "    condition: '> 0'\n    timeout: 1 minute\n"
    )
    planned = plan_runbook("r", runbook, service="s", severity="sev1", labels={"job": 'a"} or vector(1) #\\'})
    assert isinstance(planned.steps[0], PlannedVerify)
    assert planned.steps[0].query == 'up{job="a\\"} or vector(1) #\\\\"}'


ADMIN = (
    "steps:\n  - name: enable\n    action: http\n"
    "    url: '${TOCSIN_DB_ADMIN_URL}/databases/{{ $labels.database }}/read-replicas?by={{ $labels[\"who\"] }}'\n"
)


def test_a_label_is_one_url_path_segment() -> None:
    plan = plan_runbook(
        "r", _runbook(ADMIN), service="s", severity="sev1", labels={"database": "a b?c=1&d", "who": "x#y"}
    )
    assert isinstance(plan.steps[0], PlannedHttp)
    assert plan.steps[0].url == "${TOCSIN_DB_ADMIN_URL}/databases/a%20b%3Fc%3D1%26d/read-replicas?by=x%23y"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        # `..` survives percent-encoding and collapses `/databases/../read-replicas` to `/read-replicas`.
        ("..", "'..' is a dot segment"),
        (".", "'.' is a dot segment"),
        ("", "'' is empty"),
        ("../../admin/users", "'../../admin/users' contains a slash or a backslash"),
        ("orders/eu", "'orders/eu' contains a slash or a backslash"),
        ("..\\admin", "'..\\\\admin' contains a slash or a backslash"),
        ("orders\x00", "'orders\\x00' contains a control character"),
        ("orders\n", "'orders\\n' contains a control character"),
        ("orders\x85", "'orders\\x85' contains a control character"),
    ],
)
def test_a_label_that_would_change_the_url_path_is_refused(value: str, problem: str) -> None:
    with pytest.raises(PlanError) as err:
        plan_runbook("r", _runbook(ADMIN), service="s", severity="sev1", labels={"database": value, "who": "w"})
    assert str(err.value) == f"step enable: label database={problem}: refused in a URL"


def test_a_missing_label_in_a_url_is_refused(policy: Policy) -> None:
    with pytest.raises(PlanError, match=r"step enable: label who='' is empty: refused in a URL"):
        plan_runbook("r", _runbook(ADMIN), service="s", severity="sev1", labels={"database": "orders"})


def test_a_dot_segment_written_in_the_policy_is_refused_too() -> None:
    runbook = _runbook("steps:\n  - name: call\n    action: http\n    url: https://admin.internal/a/%2E%2E/b\n")
    with pytest.raises(PlanError, match=r"the URL 'https://admin.internal/a/%2E%2E/b' has a '\.\.' path segment"):
        plan_runbook("r", runbook, service="s", severity="sev1", labels={})


def test_a_runbook_may_declare_a_pattern_per_label(policy: Policy) -> None:
    runbook = _runbook("labels: {database: '[a-z0-9_]+'}\n" + ADMIN)
    plan = plan_runbook("r", runbook, service="s", severity="sev1", labels={"database": "orders_2", "who": "w"})
    assert isinstance(plan.steps[0], PlannedHttp) and "/databases/orders_2/" in plan.steps[0].url
    # The whole value must match, and a missing label counts as empty.
    for labels, shown in (({"database": "orders;drop"}, "'orders;drop'"), ({}, "''")):
        with pytest.raises(PlanError) as err:
            plan_runbook("r", runbook, service="s", severity="sev1", labels={"who": "w", **labels})
        assert str(err.value) == f"label database={shown} does not match the runbook's pattern '[a-z0-9_]+'"
    # The default policy's database runbooks declare one.
    with pytest.raises(PlanError, match="label database='\\.\\.' does not match the runbook's pattern"):
        plan_from_policy(
            policy, "database_performance_optimization", service="s", severity="sev1", labels={"database": ".."}
        )


def test_an_invalid_label_pattern_is_a_policy_error() -> None:
    with pytest.raises(ValueError, match="not a regular expression"):
        _runbook("labels: {database: '[a-z'}\n" + ADMIN)


def test_a_plan_is_planned_again_from_its_request_to_the_same_digest(policy: Policy) -> None:
    plan = plan_from_policy(
        policy,
        "service_recovery_playbook",
        service="checkout",
        severity="sev1",
        labels={"namespace": "staging"},
        parameters={"service": "cart"},  # a parameter overriding the service's label is kept as such
    )
    again = plan_request(policy, plan.request())
    assert again == plan and plan_digest(again) == plan_digest(plan)
    assert re.fullmatch("[0-9a-f]{64}", plan_digest(plan))
    # Any change to what would run is another digest.
    other = plan.model_copy(update={"guardrails": plan.guardrails.model_copy(update={"max_replicas": 200})})
    assert plan_digest(other) != plan_digest(plan)


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        ({"namespace": "Production"}, "namespace 'Production' is not a valid Kubernetes name"),
        ({"namespace": "a/../kube-system"}, "namespace 'a/../kube-system' is not a valid Kubernetes name"),
    ],
)
def test_kubernetes_names_from_labels_are_validated(policy: Policy, labels: dict[str, str], problem: str) -> None:
    with pytest.raises(PlanError, match=f"^step scale_out: {problem}"):
        _recovery(policy, **labels)
    with pytest.raises(PlanError, match="deployment '' is not a valid Kubernetes name"):
        plan_from_policy(policy, "service_recovery_playbook", service="", severity="sev1", labels={})


def test_a_namespace_outside_the_allow_list_is_a_violation(policy: Policy) -> None:
    plan = _recovery(policy, namespace="kube-system")
    assert plan.violations == [
        "scale_out: namespace 'kube-system' is not in the runbook's allowed_namespaces (production, staging)",
        "undo-scale_out: namespace 'kube-system' is not in the runbook's allowed_namespaces (production, staging)",
        "restart: namespace 'kube-system' is not in the runbook's allowed_namespaces (production, staging)",
    ]
    with pytest.raises(GuardrailViolation, match=r"^runbook service_recovery_playbook refused: scale_out: namespace"):
        plan.check()
    assert "REFUSED: restart: namespace 'kube-system'" in plan.describe()


def test_an_unknown_runbook(policy: Policy) -> None:
    with pytest.raises(PlanError, match="unknown runbook 'nope' \\(service_recovery_playbook, database_perf"):
        plan_from_policy(policy, "nope", service="s", severity="sev1")
    seed = load_policy(FIXTURES / "seed-config.yaml")
    with pytest.raises(PlanError, match="unknown runbook 'service_recovery_playbook' \\(the policy defines none\\)"):
        plan_from_policy(seed, "service_recovery_playbook", service="s", severity="sev1")


def test_a_header_that_renders_two_lines_is_refused() -> None:
    runbook = _runbook(
        "steps:\n  - name: call\n    action: http\n    url: https://admin.internal/x\n"
        "    headers: {X-Service: '{{ $labels.service }}'}\n"
    )
    with pytest.raises(PlanError, match="step call: header 'X-Service' renders to more than one line"):
        plan_runbook("r", runbook, service="a\r\nX-Evil: 1", severity="sev1", labels={})


def _runbook(text: str) -> Runbook:
    return Runbook.model_validate(yaml.safe_load(text), context=LOADING)


# --- the replica ceiling and the other guardrails -------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "current", "ceiling", "expected"),
    [
        ("current * 2", 3, 10, (6, False)),
        ("current * 2", 6, 10, (10, True)),
        ("current + 1", 10, 10, (10, True)),
        ("current - 5", 3, 10, (0, True)),
        ("4", 1, 3, (3, True)),
        ("current", 5, None, (5, False)),
        ("current*3", 2, 20, (6, False)),
    ],
)
def test_target_replicas(expression: str, current: int, ceiling: int | None, expected: tuple[int, bool]) -> None:
    assert target_replicas(expression, current, ceiling) == expected


def test_previous_restores_the_count_unclamped() -> None:
    assert target_replicas("previous", 9, 5, previous=12) == (12, False)
    with pytest.raises(GuardrailViolation, match="the count before the step is not known"):
        target_replicas("previous", 9, 5)


def test_the_lower_ceiling_applies() -> None:
    runbook = _runbook(
        "guardrails: {allowed_namespaces: [production], max_replicas: 8}\nsteps:\n"
        "  - {name: a, action: kubernetes.scale, deployment: x, namespace: production, replicas: 9, max_replicas: 4}\n"
        "  - {name: b, action: kubernetes.scale, deployment: y, namespace: production, replicas: 9}\n"
    )
    plan = plan_runbook("r", runbook, service="s", severity="sev1", labels={})
    assert [s.max_replicas for s in plan.steps if isinstance(s, PlannedScale)] == [4, 8]


def test_namespace_and_rate_limit_checks() -> None:
    check_namespace("production", ["production"])
    with pytest.raises(GuardrailViolation, match="namespace 'default' is not in the runbook's allowed_namespaces"):
        check_namespace("default", ["production"])
    limit = RateLimit(max_runs=2, per=timedelta(hours=1))
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    old, a, b = now - timedelta(hours=2), now - timedelta(minutes=50), now - timedelta(minutes=10)
    assert next_run_allowed_at([old, a], now, limit) is None
    assert next_run_allowed_at([b, old, a], now, limit) == a + timedelta(hours=1)
    assert next_run_allowed_at([a, b], now, None) is None


# --- the dry run ----------------------------------------------------------------------------------------


def test_describe_is_the_dry_run_output(policy: Policy) -> None:
    assert _recovery(policy).describe() == "\n".join(
        [
            "Runbook service_recovery_playbook for checkout (sev1)",
            "  Scale the service out, restart it, and check that its error rate recovers",
            "Guardrails: one runbook per service at a time; another request is refused; namespaces production, "
            "staging; at most 20 replicas; at most 3 runs per 1 hour",
            "Labels: environment=prod, service=checkout",
            "Steps:",
            "  1. scale_out: scale deployment production/checkout to current * 2 (at most 20)  [timeout 2 minutes]",
            "     undo (undo-scale_out): scale deployment production/checkout back to the count scale_out found",
            "  2. restart: restart deployment production/checkout, wait for the rollout  [timeout 10 minutes]",
            '  3. error_rate_recovered: verify `sum(rate(http_requests_total{service="checkout",code=~"5.."}[5m])) '
            '/ sum(rate(http_requests_total{service="checkout"}[5m]))` < 0.05 for 5 minutes '
            "(every 30 seconds, fail after 15 minutes)  [timeout 15 minutes]",
            "  4. tell_responders: notify #incidents: checkout scaled out and restarted; its error rate has stayed "
            "below 5% for 5 minutes  [timeout 1 minute]",
            "If a step fails: undo-scale_out (for the steps done, latest first), then escalate.",
        ]
    )


def test_describe_names_secrets_by_variable(policy: Policy) -> None:
    text = plan_from_policy(
        policy, "database_performance_optimization", service="orders", severity="sev2", labels={"database": "db1"}
    ).describe()
    assert (
        "  2. enable_read_replicas: POST ${TOCSIN_DB_ADMIN_URL}/databases/db1/read-replicas "
        "(Authorization from $TOCSIN_DB_ADMIN_TOKEN), expect 200/204  [timeout 30 seconds]"
    ) in text.splitlines()
    assert text.splitlines()[-1] == (
        "If a step fails: undo-throttle_low_priority, undo-enable_read_replicas (for the steps done, latest first), "
        "then escalate."
    )


def test_the_dry_run_command(capsys: pytest.CaptureFixture[str]) -> None:
    policy = str(ROOT / "policies" / "default.yaml")
    dry_run = ["runbook", "dry-run", "service_recovery_playbook", "--service", "checkout", "--policy", policy]
    assert main([*dry_run, "--label", "environment=prod"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Runbook service_recovery_playbook for checkout (sev1)"  # the severity of service_down_detection
    assert out[-1] == "Dry run: nothing was changed."
    assert re.fullmatch("Plan sha256: [0-9a-f]{64}", out[-2])
    assert main([*dry_run, "--label", "namespace=kube-system", "--severity", "sev2"]) == 1
    assert "REFUSED: scale_out: namespace 'kube-system'" in capsys.readouterr().out
    assert main([*dry_run, "--json"]) == 0
    assert RunbookPlan.model_validate_json(capsys.readouterr().out).runbook == "service_recovery_playbook"
    assert main(["runbook", "dry-run", "nope", "--service", "checkout", "--policy", policy]) == 2
    assert capsys.readouterr().err == (
        "tocsin: unknown runbook 'nope' (service_recovery_playbook, database_performance_optimization, "
        "scale_resources, enable_read_replicas, throttle_non_critical_queries)\n"
    )
