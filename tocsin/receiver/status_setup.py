"""The status page's setup: its settings (from the environment and the policy) and its HTML template.

`TOCSIN_STATUS_HISTORY_DAYS` (default 14, at most 90): how far back resolved incidents are listed.
`TOCSIN_STATUS_COMPONENTS` (comma-separated service names): the components listed, in that order, even when
operational; unset, the services the policy's response workflows `match` on (`match: {service: [...]}`). Either
way every other service with a current or recently resolved incident is listed too, after them.

The template is `templates/status_page.html.j2`, looked up like the policy file: under the working directory
first (/app in the image, whose Dockerfile copies templates/ there), then in the repository this package was
installed from (an editable install, or running from a checkout). It renders with autoescape on: incident titles
come from alerts, i.e. from whoever can post one, so they are untrusted text.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jinja2
from pydantic import BaseModel

from tocsin.policy.models import Policy
from tocsin.receiver.config import ReceiverConfigError

TEMPLATE = "status_page.html.j2"
REPO_ROOT = Path(__file__).resolve().parents[2]
LABELS = {
    "operational": "Operational",
    "degraded_performance": "Degraded performance",
    "partial_outage": "Partial outage",
    "major_outage": "Major outage",
}


@dataclass(frozen=True)
class StatusPageConfig:
    history_days: int = 14
    components: tuple[str, ...] = ()
    cache_seconds: float = 10.0
    timeout: float = 5.0


def policy_services(policy: Policy) -> list[str]:
    """Services the policy names in a response workflow's `match: {service: [...]}`, in order, once each."""
    named = (v for flow in policy.automated_response_workflows.values() for v in flow.match.get("service", []))
    return list(dict.fromkeys(named))


def load_status_config(env: Mapping[str, str] | None = None, policy: Policy | None = None) -> StatusPageConfig:
    env = os.environ if env is None else env
    raw_days = env.get("TOCSIN_STATUS_HISTORY_DAYS") or "14"
    if not raw_days.isdigit() or not 1 <= int(raw_days) <= 90:
        raise ReceiverConfigError("TOCSIN_STATUS_HISTORY_DAYS must be a whole number of days from 1 to 90")
    listed = [name.strip() for name in (env.get("TOCSIN_STATUS_COMPONENTS") or "").split(",") if name.strip()]
    named = listed or (policy_services(policy) if policy else [])
    return StatusPageConfig(history_days=int(raw_days), components=tuple(dict.fromkeys(named)))


def template_dir() -> Path:
    for candidate in (Path.cwd() / "templates", REPO_ROOT / "templates"):
        if (candidate / TEMPLATE).is_file():
            return candidate
    raise ReceiverConfigError(f"templates/{TEMPLATE} not found under {Path.cwd()} or {REPO_ROOT}")


def when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def took(seconds: int) -> str:
    """A duration for readers, to the minute: "2 d 3 h", "1 h 5 min", "12 min", "under a minute"."""
    minutes = seconds // 60
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{mins} min" if mins and not days else ""]
    return " ".join(p for p in parts if p) or "under a minute"


def html_renderer(templates: Path | None = None) -> Callable[[BaseModel], str]:
    """Load the template now (a missing one stops the receiver at start, not at the first reader) and return
    `render(view)`. `autoescape=True` explicitly: `select_autoescape` would not recognise the .html.j2 suffix."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates or template_dir()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(when=when, took=took)
    env.globals["labels"] = LABELS
    template = env.get_template(TEMPLATE)

    def render(view: BaseModel) -> str:
        return template.render(view=view)

    return render
