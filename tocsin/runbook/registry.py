"""Which actions a runbook step may name, and the check that refuses every other one by name.

There is no shell action and no way to add one from a policy: a new action is code (a step model in
tocsin.runbook.steps, an executor, an activity) and a line here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

ACTIONS = (
    "kubernetes.scale",
    "kubernetes.rollout_restart",
    "kubernetes.rollout_undo",
    "http",
    "verify",
    "approval",
    "wait",
    "notify",
)
# Steps that change something, and so may declare a compensation; and the kinds a compensation may be.
COMPENSABLE = ("kubernetes.scale", "kubernetes.rollout_restart", "kubernetes.rollout_undo", "http")
COMPENSATING = ("kubernetes.scale", "kubernetes.rollout_undo", "http", "notify")
OTHERWISE = "otherwise"  # in a per-severity mapping: every severity it does not name


def located_error(loc: tuple[str | int, ...], value: Any, message: str) -> ValidationError:
    """An error at `loc` inside the value being validated, so a policy error points at that very key."""
    error = PydanticCustomError("runbook", message)  # without a context, the message is used as it is
    return ValidationError.from_exception_data("runbook step", [InitErrorDetails(type=error, loc=loc, input=value)])


def registered_action(role: Literal["step", "compensation"]) -> Callable[[Any], Any]:
    """Refuse an unregistered action by name, before the discriminated union would say something vaguer."""
    known = ACTIONS if role == "step" else COMPENSATING

    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        action = value.get("action")
        if action is None:
            raise ValidationError.from_exception_data(
                "runbook step", [InitErrorDetails(type="missing", loc=("action",), input=value)]
            )
        if role == "compensation":
            if action in ACTIONS and action not in COMPENSATING:
                raise located_error(
                    ("action",),
                    action,
                    f"{action!r} cannot compensate a step (compensating actions: {', '.join(COMPENSATING)})",
                )
            if value.get("compensate") is not None:
                raise located_error(
                    ("compensate",), value["compensate"], "a compensation has no compensation of its own"
                )
        if action not in known:
            raise located_error(
                ("action",),
                action,
                f"unknown action {action!r}: runbooks run registered actions only ({', '.join(known)})",
            )
        if role == "step":
            return _with_compensation_defaults(value)
        return value

    return check


def _with_compensation_defaults(step: dict[str, Any]) -> dict[str, Any]:
    action, compensation = step["action"], step.get("compensate")
    if compensation is None:
        return step
    if action not in COMPENSABLE:
        raise located_error(
            ("compensate",), compensation, f"a {action} step changes nothing: it has nothing to compensate"
        )
    if not isinstance(compensation, dict):
        return step
    filled = dict(compensation)
    if isinstance(step.get("name"), str):
        filled.setdefault("name", f"undo-{step['name']}")
    if str(action).startswith("kubernetes.") and str(filled.get("action", "")).startswith("kubernetes."):
        for key in ("deployment", "namespace"):
            if key in step:
                filled.setdefault(key, step[key])
    return {**step, "compensate": filled}


def dotted_loc(dotted: str) -> tuple[str | int, ...]:
    """ "steps.0.compensate" -> ("steps", 0, "compensate"): a location for located_error."""
    return tuple(int(p) if p.isdigit() else p for p in dotted.split("."))
