"""The policy's `status_page:` block: what the public may see of incidents, on Tocsin's own page (`GET /status`,
tocsin/receiver/public_status.py) and on Atlassian Statuspage (tocsin/channels/statuspage.py).

Public text is curated, never copied: an incident's title comes from an alert summary, i.e. from whoever can post
an alert, and its labels name hosts and internal systems. So the public sees only

- components the policy lists (`components`, service names; `TOCSIN_STATUS_COMPONENTS` replaces the list): an
  incident whose service is not listed is not shown at all, neither as a component nor in the history;
- titles from the policy's per-severity templates (`titles`, whose only placeholder is `{component}`), else the
  impact in words: "Major outage on checkout" (sev1), "Partial outage on checkout" (sev2), "Degraded performance
  on checkout" (any other severity);
- update sentences per status from `PUBLIC_UPDATES`, which name the component and nothing else.

`enabled: false` (or `TOCSIN_STATUS_PAGE=off`) switches Tocsin's own page off: /status and /status.json answer
404. Statuspage is on when its API key is configured, and publishes the same components and titles.
Pure, and safe to import in the workflow sandbox (tocsin.policy.following words the Statuspage syncs with it).
"""

from __future__ import annotations

from collections.abc import Mapping
from string import Formatter
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationError, field_validator

from tocsin.policy.fields import Strict
from tocsin.policy.limits import STORM_SERVICE

# Severity -> the component's status while an incident is open; any other severity is degraded performance.
# The same table as tocsin.channels.statuspage.COMPONENT_STATUS (a test holds them equal): the policy package
# cannot import the channels, which import it.
SEVERITY_IMPACT = {"sev1": "major_outage", "sev2": "partial_outage"}
IMPACT_WORDS = {
    "operational": "Operational",
    "degraded_performance": "Degraded performance",
    "partial_outage": "Partial outage",
    "major_outage": "Major outage",
}
# What the public reads as an incident moves on (Statuspage's update bodies). No names, no internals.
PUBLIC_UPDATES = {
    "triggered": "We are investigating an issue affecting {component}.",
    "acknowledged": "The issue affecting {component} has been identified and a fix is in progress.",
    "mitigated": "A fix for {component} has been applied and we are monitoring the results.",
    "resolved": "This incident affecting {component} has been resolved.",
}
MAX_TITLE = 200  # Statuspage takes 255; a component name is substituted into the template


def impact(severity: str) -> str:
    return SEVERITY_IMPACT.get(severity, "degraded_performance")


def _title_template(value: str) -> str:
    """`{component}` is the only field: str.format would otherwise reach attributes (`{component.__class__}`)."""
    if "\n" in value or "\r" in value or not value.strip():
        raise ValueError("a public title is one non-empty line")
    if len(value) > MAX_TITLE:
        raise ValueError(f"a public title is at most {MAX_TITLE} characters")
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in Formatter().parse(value) if name is not None]
    except ValueError as err:
        raise ValueError(f"{value!r}: {err} (write a literal brace as {{{{ or }}}})") from None
    for name, spec, conversion in fields:
        if name != "component" or spec or conversion:
            raise ValueError(f"{value!r}: the only placeholder a public title may use is {{component}}")
    return value


TitleTemplate = Annotated[str, AfterValidator(_title_template)]
Severity = Annotated[str, Field(pattern=r"^sev[1-9]$")]
Component = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f{}]+$")]


class StatusPagePolicy(Strict):
    # Tocsin's own page at GET /status and /status.json. Off: both answer 404.
    enabled: bool = True
    # The public components: services, in the order the page lists them. Nothing else is ever shown.
    components: list[Component] = Field(default_factory=list)
    # Public incident titles per severity; a severity without one gets the impact in words.
    titles: dict[Severity, TitleTemplate] = Field(default_factory=dict)

    @field_validator("components")
    @classmethod
    def _components(cls, value: list[str]) -> list[str]:
        if STORM_SERVICE in value:
            raise ValueError(f"{STORM_SERVICE!r} is Tocsin's storm incident, not a component (its members are)")
        return list(dict.fromkeys(value))

    def lists(self, service: str) -> bool:
        return service in self.components

    def title(self, severity: str, component: str) -> str:
        template = self.titles.get(severity) or f"{IMPACT_WORDS[impact(severity)]} on {{component}}"
        return template.format(component=component)


def public_update(status: str, component: str) -> str:
    return PUBLIC_UPDATES.get(status, PUBLIC_UPDATES["triggered"]).format(component=component)


def resolve(section: StatusPagePolicy, env: Mapping[str, str]) -> StatusPagePolicy:
    """The policy's section with the environment's say: `TOCSIN_STATUS_COMPONENTS` (comma-separated) replaces
    the components, `TOCSIN_STATUS_PAGE` (`on`/`off`) the switch. ValueError names the variable."""
    data = section.model_dump()
    listed = [name.strip() for name in (env.get("TOCSIN_STATUS_COMPONENTS") or "").split(",") if name.strip()]
    if listed:
        data["components"] = listed
    switch = (env.get("TOCSIN_STATUS_PAGE") or "").strip().lower()
    if switch:
        if switch not in ("on", "off"):
            raise ValueError("TOCSIN_STATUS_PAGE must be on or off")
        data["enabled"] = switch == "on"
    try:
        return StatusPagePolicy.model_validate(data)
    except ValidationError as err:
        raise ValueError(f"TOCSIN_STATUS_COMPONENTS: {err.errors()[0]['msg']}") from None
