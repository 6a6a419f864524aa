"""Label templates, rendered in a Jinja2 sandbox that can see the alert's labels and nothing else.

Policies borrow Prometheus' spelling (`{{ $labels.service }}`) so rules can be pasted from
Alertmanager; `$labels` is rewritten to the Jinja name `labels` before compiling.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from jinja2 import Template, TemplateSyntaxError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

_PROM_VAR = re.compile(r"\$labels\b")


class TemplateError(ValueError):
    """A template that cannot compile or render; the message is fit to show a person."""


@lru_cache(maxsize=1)
def _env() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=Undefined, autoescape=False, keep_trailing_newline=False)
    # The default globals (range, lipsum, cycler, namespace...) are not labels: remove them so a policy
    # author cannot loop, allocate or reach anything beyond the alert's own labels.
    env.globals.clear()
    return env


def _source(template: str) -> str:
    return _PROM_VAR.sub("labels", template)


def check_template(template: str) -> None:
    """Compile a template once so a policy with a broken one is rejected at load time."""
    try:
        _env().from_string(_source(template))
    except TemplateSyntaxError as exc:
        raise TemplateError(f"invalid template {template!r}: {exc.message} (line {exc.lineno})") from None


@lru_cache(maxsize=1024)
def _compiled(template: str) -> Template:
    # Compiling costs milliseconds and a policy has a few dozen templates: every alert the receiver triages
    # renders them again, so compile each once.
    return _env().from_string(_source(template))


def render_template(template: str, labels: Mapping[str, str]) -> str:
    """Render with the labels as the only variable. A missing label renders as an empty string."""
    if "{" not in template:
        return template
    try:
        return _compiled(template).render(labels=dict(labels)).strip()
    except TemplateSyntaxError as exc:
        raise TemplateError(f"invalid template {template!r}: {exc.message}") from None
    except Exception as exc:  # SecurityError, UndefinedError on nested access, ...
        raise TemplateError(f"template {template!r} failed: {exc}") from None
