"""A small policy with a roster (people, teams, weekly and daily rotations), for the roster's tests."""

from __future__ import annotations

from datetime import datetime

from tocsin.policy.loader import parse_policy
from tocsin.policy.roster_schema import RosterOverride
from tocsin.policy.schema import Policy

BASE = """\
lifecycle: {default_severity: sev1, paging_severities: [sev1], postmortem_severities: [sev1]}
# Set, so that a JSON round trip (as a workflow gets its policy) does not meet Tocsin's sev1..sev4 default.
intake: {severity_map: {critical: sev1}}
incident_classification:
  severity_levels:
    sev1: {name: Critical, response_time: 5 minutes, escalation_time: 15 minutes}
escalation_policies:
  primary_oncall:
    - {type: pagerduty, escalation_delay: 5 minutes}
"""

ROSTER = """\
roster:
  people:
    alice: {timezone: Europe/Berlin, email: alice@example.com, phone: "+49 151 0000 0001"}
    bob: {timezone: America/New_York, email: bob@example.com, slack: U0BOB0002}
    carol: {timezone: Europe/Berlin, pagerduty: PCAROL3}
    dave: {name: Dave Okafor, timezone: America/New_York, phone: "+12025550104"}
  teams:
    sre: {members: [alice, bob, carol], channel: "#sre"}
    ghosts: {members: []}
    lurkers: {channel: "#lurk"}
  rotations:
    primary_oncall:
      type: weekly
      handoff: "09:00"
      timezone: Europe/Berlin
      start: 2025-03-03
      members: [alice, bob, carol]
    daily_ny:
      type: daily
      handoff: "09:00"
      timezone: America/New_York
      start: 2025-03-01
      members: [alice, bob]
    nobody:
      type: weekly
      timezone: UTC
      start: 2025-01-06
"""


def roster_policy(extra: str = "", roster: str = ROSTER) -> Policy:
    return parse_policy(BASE + roster + extra, "test.yaml")


def ro(rotation: str, by: str, start: datetime, end: datetime, covering: str | None = None) -> RosterOverride:
    return RosterOverride(rotation=rotation, by=by, covering=covering, start=start, end=end)
