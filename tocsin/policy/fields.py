"""Field types shared by the policy's sections: strict models, label templates and replica expressions.

They live apart from tocsin.policy.schema so that sections defined in their own packages (the runbooks,
tocsin.runbook.schema) can use them while the Policy model holds those sections, without an import cycle.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo

from tocsin.policy.templating import check_template


class Strict(BaseModel):
    """Unknown keys are errors and loaded policies are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


LOADING = {"loading_policy_file": True}


def loading_file(info: ValidationInfo) -> bool:
    """True while a person's policy file is validated; False when a snapshot is decoded from JSON."""
    return bool(info.context and info.context.get("loading_policy_file"))


def _template(value: str, info: ValidationInfo) -> str:
    # Compiled when a policy file is loaded, not each time a workflow decodes its snapshot:
    # Jinja's compiler has no place in the workflow sandbox, and a snapshot was checked when it was made.
    if loading_file(info):
        check_template(value)
    return value


Template = Annotated[str, AfterValidator(_template)]

_REPLICAS_SEED = re.compile(r"^\{\{\s*\.current_replicas\s*(.*?)\s*\}\}$")
_REPLICAS = re.compile(r"^(current(\s*[*+-]\s*\d+)?|\d+)$")


def normalise_replicas(value: str | int) -> str:
    """`current * 2`, `current + 1` or a fixed count; the seed's Go-style `{{ .current_replicas * 2 }}` is accepted.

    It is not a label template: the runbook engine evaluates it against the live replica count.
    """
    text = str(value).strip()
    seed = _REPLICAS_SEED.match(text)
    if seed:
        text = f"current {seed.group(1)}".strip()
    text = re.sub(r"\s+", " ", text)
    if not _REPLICAS.match(text):
        raise ValueError(f"replicas {value!r} must be a count or 'current', 'current * N', 'current + N'")
    return text


ReplicaExpression = Annotated[str | int, AfterValidator(normalise_replicas)]


def evaluate_replicas(expression: str, current: int) -> int:
    """The count a normalised replica expression asks for, given the live count (`current * 2` of 3 is 6).

    Unbounded here: the runbook's ceiling is applied by tocsin.runbook.guardrails.target_replicas."""
    text = normalise_replicas(expression).replace(" ", "")
    if text.isdigit():
        return int(text)
    if text == "current":
        return current
    op, amount = text[len("current")], int(text[len("current") + 1 :])
    if op == "*":
        return current * amount
    return current + amount if op == "+" else current - amount


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
