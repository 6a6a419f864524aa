"""The status page's setup: its settings (from the policy's `status_page:` block and the environment) and its
HTML template.

What is public, and whether the page is on at all, is the policy's `status_page:` section
(tocsin/policy/status_page.py): `components` (the only services shown; `TOCSIN_STATUS_COMPONENTS`, comma-
separated, replaces them), `titles` (per severity, else "Major outage on checkout"...) and `enabled`
(`TOCSIN_STATUS_PAGE=on|off` overrides it; off, /status and /status.json answer 404).
`TOCSIN_STATUS_HISTORY_DAYS` (default 14, at most 90): how far back resolved incidents are listed.

The template is `status_page.html.j2`, from `$TOCSIN_HOME/templates/` when an operator put one there, else the
built-in `templates/` found from the package's location (tocsin.sandboxed_templates), never the working
directory. It renders in Jinja's sandbox with autoescape on: whatever it is given, it can only format it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from tocsin.policy.schema import Policy
from tocsin.policy.status_page import IMPACT_WORDS, StatusPagePolicy, resolve
from tocsin.receiver.config import ReceiverConfigError
from tocsin.sandboxed_templates import TemplateMissing, builtin_dir, sandboxed_environment

TEMPLATE = "status_page.html.j2"
LABELS = IMPACT_WORDS


@dataclass(frozen=True)
class StatusPageConfig:
    history_days: int = 14
    # What is public: the components, their titles, and whether the page is on.
    public: StatusPagePolicy = field(default_factory=StatusPagePolicy)
    cache_seconds: float = 10.0
    timeout: float = 5.0


def load_status_config(env: Mapping[str, str] | None = None, policy: Policy | None = None) -> StatusPageConfig:
    env = os.environ if env is None else env
    raw_days = env.get("TOCSIN_STATUS_HISTORY_DAYS") or "14"
    if not raw_days.isdigit() or not 1 <= int(raw_days) <= 90:
        raise ReceiverConfigError("TOCSIN_STATUS_HISTORY_DAYS must be a whole number of days from 1 to 90")
    try:
        public = resolve(policy.status_page if policy else StatusPagePolicy(), env)
    except ValueError as err:
        raise ReceiverConfigError(str(err)) from None
    return StatusPageConfig(history_days=int(raw_days), public=public)


def template_dir() -> Path:
    """The built-in templates directory that holds the page."""
    try:
        return builtin_dir([TEMPLATE])
    except TemplateMissing as err:
        raise ReceiverConfigError(str(err)) from None


def when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def took(seconds: int) -> str:
    """A duration for readers, to the minute: "2 d 3 h", "1 h 5 min", "12 min", "under a minute"."""
    minutes = seconds // 60
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{mins} min" if mins and not days else ""]
    return " ".join(p for p in parts if p) or "under a minute"


def html_renderer(templates: Path | None = None, home: Path | None = None) -> Callable[[BaseModel], str]:
    """Load the template now (a missing or broken one stops the receiver at start, not at the first reader) and
    return `render(view)`, which looks it up again each time (Jinja's cache, reloaded when the file changes), so
    an override edited in place takes effect without a restart. `autoescape=True` explicitly: `select_autoescape`
    would not recognise the .html.j2 suffix."""
    env = sandboxed_environment(home, templates or template_dir(), autoescape=True)
    env.filters.update(when=when, took=took)
    env.globals["labels"] = LABELS
    env.get_template(TEMPLATE)

    def render(view: BaseModel) -> str:
        return env.get_template(TEMPLATE).render(view=view)

    return render
