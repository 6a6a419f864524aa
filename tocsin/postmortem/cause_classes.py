"""The classes of cause an SRE recognises in a stated or found cause, and the remediation each usually calls for.

The seed knows one class (a deployment: validate before deploying, roll out by canary; tocsin.postmortem
.action_items). These are the next most common in public post-mortems, each with the items a review would
expect whatever the system: an operator's command that did too much (safeguards in the tool, and an audit of
its siblings), a resource run out (a limit and an alert before exhaustion, profiling before release, and, when
the words name the one rule, query or job that took it, an inspection of the others like it), and a failover
or partition that went wrong (rehearse the failure, and review what may fail over where, naming the system
that failed over when the words do). Pure:
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
# What one item of many that took the resource is called ("an XSS rule whose regular expression backtracked"):
# its siblings may do the same.
_UNITS = (
    ("rule", "rules"),
    ("regular expression", "regular expressions"),
    ("regex", "regexes"),
    ("query", "queries"),
    ("job", "jobs"),
    ("script", "scripts"),
    ("migration", "migrations"),
)
_UNIT = re.compile(r"\b(" + "|".join(one for one, _ in _UNITS) + r")\b", re.IGNORECASE)
# The system that failed over, when the words name it with a capital ("made Orchestrator promote", "Patroni
# failed over"): a lower-case subject ("the primary failed over") is no name.
_FAILOVER_ACTOR = re.compile(
    r"\b(?:made|let|had|caused)\s+(?P<a>[A-Z][\w-]+)\s+(?:to\s+)?(?:promote|fail)|"
    r"(?<![.!?]\s)(?<!^)\b(?P<b>[A-Z][\w-]+)\s+(?:automatically\s+)?(?:promoted|failed over)\b"
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
        unit = _UNIT.search(words)
        if unit is not None:
            many = dict(_UNITS)[unit[1].lower()]
            found.append(
                Remedy(
                    f"Inspect the other {many} for the same {resource} cost",
                    f"One of them took the {resource}; check the rest like it (against worst-case inputs) before "
                    "another one does.",
                    "P2",
                )
            )
    if _FAILOVER.search(words):
        actor = _FAILOVER_ACTOR.search(words)
        who = f"{actor['a'] or actor['b']}'s automatic failover" if actor else "automatic failover"
        found.append(
            Remedy(
                f"Review {who}: what may be promoted across regions, and when",
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
