"""Task-queue priority keys: which work a backed-up Temporal task queue hands out first.

Temporal orders a queue's backlog by `priority_key`, 1 first and 5 last (3 when none is given). During a storm
or a burst of sev3s the incidents queue backs up, and without keys a sev1's workflow task and its first page
waited behind thousands of others. The keys here put pages by severity first and everything that only
records, enriches or follows up after them. docs/paging-priority.md says which queue carries what.

Pure: no Temporal import. Workflows and clients wrap a key in temporalio.common.Priority themselves.
"""

from __future__ import annotations

from typing import Final

from tocsin.policy.schema import Policy

HIGHEST: Final = 1
# Temporal's own default: what an incident of a severity the policy does not rank gets.
DEFAULT: Final = 3
LOWEST: Final = 5
# Ranked by severity unless the policy's severity level sets its own `priority`.
SEVERITY_DEFAULTS: Final = {"sev1": 1, "sev2": 2}
# Bookkeeping: storm incidents (thousands of member signals), the runbook guard, detection ticks, runbooks,
# and what an incident does besides paging (looking up the previous incident, remediation, status pages).
BACKGROUND: Final = 4
POSTMORTEM: Final = LOWEST
# The storm guard is one workflow on every new incident's way to its first page (each waits for its answer
# before paging): behind the burst it counts, a sev1 would wait out the answer's timeout. It has one task at a
# time, so going first costs every other workflow at most that one task.
STORM_GUARD: Final = HIGHEST
DETECTION: Final = BACKGROUND
RUNBOOK: Final = BACKGROUND
RUNBOOK_GUARD: Final = BACKGROUND
# Deliveries on these channels record the incident elsewhere; nobody is woken by them.
BOOKKEEPING_CHANNELS: Final = frozenset({"statuspage", "github"})


def incident_priority(policy: Policy, severity: str, storm: bool = False) -> int:
    """An incident workflow's key, which its pages share: the severity level's `priority` if the policy sets
    one, else sev1 → 1, sev2 → 2, anything else → 3. A storm incident stands for many held incidents and
    takes their signals by the thousand, so it never gets ahead of an incident paging on its own."""
    if storm:
        return BACKGROUND
    level = policy.incident_classification.severity_levels.get(severity)
    if level is not None and level.priority is not None:
        return level.priority
    return SEVERITY_DEFAULTS.get(severity, DEFAULT)


def background(incident: int) -> int:
    """For an incident's enrichment and bookkeeping: after every page, never ahead of the incident itself."""
    return max(incident, BACKGROUND)


def delivery_priority(incident: int, channel: str, follow_up: bool = False) -> int:
    """A page, a stakeholder notice or a management email goes at the incident's own key; keeping a followed
    channel in step (`follow_up`) or writing to a status page or a tracker is bookkeeping."""
    if follow_up or channel in BOOKKEEPING_CHANNELS:
        return background(incident)
    return incident
