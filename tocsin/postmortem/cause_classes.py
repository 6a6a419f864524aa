"""The classes of cause an SRE recognises in a stated or found cause, and the remediation each usually calls for.

The seed knows one class (a deployment: validate before deploying, roll out by canary; tocsin.postmortem
.action_items). These are the next most common in public post-mortems, each with the items a review would
expect whatever the system: an operator's command that did too much (safeguards in the tool, and an audit of
its siblings), a resource run out (a limit and an alert before exhaustion, and profiling before release), and
a failover or partition that went wrong (rehearse the failure, and review what may fail over where). Pure:
words in, (title, description, priority) out; the caller cites the words they came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tocsin.postmortem.contracts import Priority


@dataclass(frozen=True)
class Remedy:
    title: str
    description: str
    priority: Priority


_OPERATOR = re.compile(r"\b(command|playbook|typo|mistyped|manual(ly)?|script|console|operator|input)\b", re.IGNORECASE)
# The resource named, as the item will name it: the first of these the words mention.
_RESOURCES = (
    ("CPU", re.compile(r"\bcpu\b", re.IGNORECASE)),
    ("memory", re.compile(r"\b(memory|out of memory|oom)\b", re.IGNORECASE)),
    ("connection pool", re.compile(r"\bconnection pool|pool size\b", re.IGNORECASE)),
    ("capacity", re.compile(r"\bcapacity\b", re.IGNORECASE)),
)
_EXHAUSTED = re.compile(
    # Lookarounds, not \b: "100%" ends in a non-word character.
    r"(?<!\w)(exhaust\w*|saturat\w*|100%|spike\w*|backtrack\w*|overload\w*|below\b.*\bminimum|ran out|too few)(?!\w)",
    re.IGNORECASE,
)
_FAILOVER = re.compile(
    r"\b(fail(ed)?[ -]?over|partition\w*|split[- ]brain|promot\w+|replica(tion)?|primar(y|ies)\b.*\bregion)",
    re.IGNORECASE,
)


def remedies(words: str) -> list[Remedy]:
    """What the classes the words fall into call for, in order; empty when the words name none of them."""
    found: list[Remedy] = []
    if _OPERATOR.search(words):
        found.append(
            Remedy(
                "Add safeguards to the tool that made the change",
                "Limit how much one command can remove at once and refuse to take a subsystem below its minimum "
                "capacity, so a mistyped input cannot do what this one did.",
                "P1",
            )
        )
        found.append(
            Remedy(
                "Audit other operational tools for the same missing safety checks",
                "Every tool that can remove or change capacity gets the same limits and confirmations.",
                "P2",
            )
        )
    resource = next((name for name, pattern in _RESOURCES if pattern.search(words)), None)
    if resource is not None and _EXHAUSTED.search(words):
        found.append(
            Remedy(
                f"Protect {resource} with a limit and an alert before it is exhausted",
                f"Bound what one request, job or change can take of the {resource}, and alert while there is "
                "still headroom, not when it is gone.",
                "P1",
            )
        )
        found.append(
            Remedy(
                "Add performance profiling of changes to the test suite",
                f"Measure each change's cost in {resource} before release, so one that takes far more is caught "
                "in testing.",
                "P2",
            )
        )
    if _FAILOVER.search(words):
        found.append(
            Remedy(
                "Review automatic failover: what may be promoted across regions, and when",
                "A brief partition must not move primaries somewhere the writes cannot follow.",
                "P1",
            )
        )
        found.append(
            Remedy(
                "Test failure assumptions with fault injection (chaos engineering)",
                "Rehearse partitions and failovers on purpose, so the next one runs a path that has been tried.",
                "P2",
            )
        )
    return found
