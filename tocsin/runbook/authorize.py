"""What the worker's own policy allows one activity call of a runbook to do: the activities ask here, never the call.

A call names its runbook and step; everything that reaches the worker's credentials or bounds what a step may
change is read from the worker's policy: the secrets and the `${NAME}` URL base of an `http` step (and the
origin of a literal URL), its method, expected statuses and address permissions; the namespace allow-list and
the replica ceiling. A call that names a runbook or step the policy does not have, or asks for more than the
step declares, is refused (GuardrailViolation: permanent, the run compensates and escalates).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tocsin.runbook.errors import GuardrailViolation
from tocsin.runbook.plan_contracts import PlannedHttp
from tocsin.runbook.schema import Runbook
from tocsin.runbook.steps import LITERAL_ORIGIN, URL_BASE, HttpStep, ScaleStep, SecretRef, Step, compensation_of

if TYPE_CHECKING:
    from tocsin.policy.schema import Policy


def policy_runbook(policy: Policy, runbook: str | None) -> Runbook:
    if runbook is None:
        raise GuardrailViolation("the call names no runbook: this worker acts only on its own policy's runbooks")
    found = policy.runbooks.get(runbook)
    if found is None:
        raise GuardrailViolation(f"runbook {runbook!r} is not in this worker's policy")
    return found


def policy_step(policy: Policy, runbook: str | None, step: str | None) -> Step:
    """The step (or compensation) named `step` of the worker's runbook."""
    found = policy_runbook(policy, runbook)
    for candidate in found.steps:
        for named in (candidate, compensation_of(candidate)):
            if named is not None and named.name == step:
                return named
    raise GuardrailViolation(f"runbook {runbook} of this worker's policy has no step {step!r}")


def allowed_namespaces(policy: Policy, runbook: str | None) -> list[str]:
    return list(policy_runbook(policy, runbook).guardrails.allowed_namespaces)


def scale_ceiling(policy: Policy, runbook: str | None, step: str | None) -> int | None:
    """The most replicas the policy's scale step may set; None for a `previous` compensation, which only
    restores the count its step found."""
    declared = policy_step(policy, runbook, step)
    if not isinstance(declared, ScaleStep):
        raise GuardrailViolation(f"step {step} of runbook {runbook} is not a kubernetes.scale step in this policy")
    if declared.replicas == "previous":
        return None
    return policy_runbook(policy, runbook).ceiling(declared)


def authorized_http(policy: Policy, runbook: str | None, step: PlannedHttp) -> PlannedHttp:
    """`step` as the worker will send it: secrets, URL base or origin, method, expected statuses and address
    permissions from the policy's step of that name. The call contributes only what labels rendered: the
    path after the base, the values of non-secret headers the policy declares, and the body."""
    declared = policy_step(policy, runbook, step.name)
    if not isinstance(declared, HttpStep):
        raise GuardrailViolation(f"step {step.name} of runbook {runbook} is not an http step in this policy")
    where = f"step {step.name} of runbook {runbook}"
    base = URL_BASE.match(declared.url)
    if base is not None:
        prefix = base.group(0)
    else:
        origin = LITERAL_ORIGIN.match(declared.url)
        assert origin is not None  # HttpStep's validator guarantees one or the other
        prefix = origin.group(0)
    rest = step.url[len(prefix) :] if step.url.startswith(prefix) else None
    if rest is None or (rest and rest[0] not in "/?#"):
        raise GuardrailViolation(f"{where}: the URL does not start with the policy's {prefix!r}")
    headers: dict[str, SecretRef | str] = {}
    for name, value in declared.headers.items():
        if isinstance(value, SecretRef):
            headers[name] = value  # the policy's secret, whatever the call says
        elif isinstance(step.headers.get(name), str):
            headers[name] = step.headers[name]
    extra = sorted(set(step.headers) - set(declared.headers))
    if extra:
        raise GuardrailViolation(f"{where}: headers the policy does not declare: {', '.join(extra)}")
    return step.model_copy(
        update={
            "url": prefix + rest,
            "headers": headers,
            "method": declared.method,
            "expect": list(declared.expect),
            "allow_loopback": declared.allow_loopback,
            "allow_link_local": declared.allow_link_local,
        }
    )
