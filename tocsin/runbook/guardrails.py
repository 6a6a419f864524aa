"""The runbook guardrails as pure functions: replica ceiling, namespace allow-list, rate limit, label values in URLs.

No I/O and no clock (the caller passes `now`): the runbook workflow can call them as they are, and the
activities call the same ones again at the moment they act (defence in depth: a plan is checked when it is
made, a step when it runs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from urllib.parse import unquote

from tocsin.policy.fields import evaluate_replicas
from tocsin.runbook.errors import GuardrailViolation
from tocsin.runbook.schema import RateLimit

# RFC 1123: what Kubernetes accepts as a namespace (a label) and as a deployment name (a subdomain).
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# C0 and C1 control characters and DEL: never part of a name a URL should carry.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def target_replicas(
    expression: str, current: int, max_replicas: int | None, previous: int | None = None
) -> tuple[int, bool]:
    """(the count to set, whether the ceiling or the floor of 0 changed it).

    `current * 2` of 4 with max_replicas 6 is (6, True). `previous` (a compensation) is the count the
    compensated step found, restored as it was: it is not clamped, since it only puts back what was there.
    """
    if expression == "previous":
        if previous is None:
            raise GuardrailViolation("replicas 'previous': the count before the step is not known")
        return previous, False
    if current < 0:
        raise ValueError(f"current replicas cannot be negative ({current})")
    wanted = evaluate_replicas(expression, current)
    target = max(wanted, 0)
    if max_replicas is not None:
        target = min(target, max_replicas)
    return target, target != wanted


def namespace_problem(namespace: str, allowed: Iterable[str]) -> str | None:
    """Why a step may not touch `namespace`, or None when it may."""
    listed = list(allowed)
    if namespace not in listed:
        return f"namespace {namespace!r} is not in the runbook's allowed_namespaces ({', '.join(listed) or 'none'})"
    return None


def check_namespace(namespace: str, allowed: Iterable[str]) -> None:
    """Raise GuardrailViolation unless the runbook may touch `namespace` (activities call it before acting)."""
    problem = namespace_problem(namespace, allowed)
    if problem:
        raise GuardrailViolation(problem)


def kubernetes_name_problem(kind: str, value: str) -> str | None:
    """Why a rendered namespace or deployment name is not one Kubernetes accepts (labels come from alerts:
    a value such as `a/../b` must never reach an API path)."""
    if kind == "namespace":
        ok = bool(_DNS_LABEL.match(value))
    else:
        ok = len(value) <= 253 and bool(_DNS_SUBDOMAIN.match(value))
    if ok:
        return None
    shown = value if len(value) <= 80 else value[:77] + "..."
    return f"{kind} {shown!r} is not a valid Kubernetes name (lower-case letters, digits and '-')"


def url_label_problem(value: str) -> str | None:
    """Why a label value may not be rendered into a URL, or None. Percent-encoding keeps a value in one
    segment, but `..` and `.` survive it (clients and servers collapse them: `/databases/../read-replicas`
    is `/read-replicas`), an empty value drops a segment, and a server that decodes before routing would
    split `a%2Fb` again."""
    if value == "":
        return "is empty"
    if value in (".", ".."):
        return "is a dot segment"
    if "/" in value or "\\" in value:
        return "contains a slash or a backslash"
    if _CONTROL.search(value):
        return "contains a control character"
    return None


def url_path_problem(path: str) -> str | None:
    """Why a rendered URL path is not the one its template meant, or None: an empty segment (a label that
    is missing), or a segment that is `.`, `..` (also percent-encoded) or holds a control character."""
    segments = path.split("/")[1:]
    for i, segment in enumerate(segments):
        decoded = unquote(segment)
        if segment == "" and i < len(segments) - 1:  # a trailing slash is the template's own
            return "has an empty path segment: is a label missing?"
        if decoded in (".", ".."):
            return f"has a {decoded!r} path segment"
        if _CONTROL.search(decoded):
            return "has a control character in its path"
    return None


def next_run_allowed_at(started: Sequence[datetime], now: datetime, limit: RateLimit | None) -> datetime | None:
    """None when a run may start at `now`; else the moment the oldest run in the window leaves it.

    `started` are the start times of this runbook's earlier runs (any order, older ones are ignored)."""
    if limit is None:
        return None
    window_start = now - limit.per
    recent = sorted(t for t in started if t > window_start)
    if len(recent) < limit.max_runs:
        return None
    # The run that must leave the window before another fits.
    return recent[len(recent) - limit.max_runs] + limit.per
