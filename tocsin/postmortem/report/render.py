"""The post-mortem report rendered as Markdown and HTML from its view-model (tocsin.postmortem.report.view).

Both templates render in Jinja2's immutable sandbox with StrictUndefined, from the built-in `templates/`
(found as the status page's is, tocsin.sandboxed_templates: beside the package, else /app/templates). A
template in `$TOCSIN_HOME/templates/` with the same name (`postmortem.md.j2`, `postmortem.html.j2`) replaces the
built-in one, and is sandboxed the same way: a template that reaches for `__class__` fails to render.

Titles, alert summaries, log lines and the analysis' claims are untrusted text (anyone who can post an alert
writes some of it). The Markdown environment runs every `{{ ... }}` through `md_escape` (its `finalize`): line
breaks fold into spaces, and `|`, `\\`, backticks, brackets and angle brackets are escaped, so such text can
break neither a table row nor the page (no HTML, no links, no images, no code spans). The HTML template renders
the same view-model with autoescape on, and links only http(s) URLs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from tocsin.postmortem.contracts import PublishedItem, ReportRequest
from tocsin.postmortem.report.view import ReportView, build_view
from tocsin.sandboxed_templates import TemplateMissing, builtin_dir, search_path

MARKDOWN_TEMPLATE = "postmortem.md.j2"
HTML_TEMPLATE = "postmortem.html.j2"
_MD_ESCAPES = str.maketrans({"\\": "\\\\", "`": "\\`", "|": "\\|", "[": "\\[", "]": "\\]", "<": "&lt;", ">": "&gt;"})
# What starts a block at the start of a line: a heading, a list item, a thematic break or setext underline.
_BLOCK_START = re.compile(r"^(?:#{1,6}|[-+*])(?=\s|$)|^(?:[-*_=]\s*){3,}$")
_NUMBERED = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")


class ReportTemplateError(Exception):
    """A template that does not render: a syntax error, an undefined name, or an unsafe access."""


def md_escape(value: Any) -> str:
    """Untrusted text made inert in Markdown: one line, and nothing that opens a cell, a tag, a link or code."""
    if isinstance(value, Markup):  # explicitly marked safe (`|safe` in a template)
        return str(value)
    text = " ".join(str(value).split()).translate(_MD_ESCAPES)
    # A block marker at the start is inert behind a backslash.
    text = _BLOCK_START.sub(r"\\\g<0>", text, count=1)
    return _NUMBERED.sub(r"\1\\\2", text, count=1)


def template_dir() -> Path:
    """The built-in templates directory that holds both report templates, found as every built-in template is
    (tocsin.sandboxed_templates: beside the package, else the image's /app/templates; never the working
    directory, where any `templates/` would otherwise replace the report's)."""
    try:
        return builtin_dir([MARKDOWN_TEMPLATE, HTML_TEMPLATE])
    except TemplateMissing as err:
        raise ReportTemplateError(str(err)) from None


@dataclass(frozen=True)
class RenderedReport:
    markdown: str
    html: str


class ReportRenderer:
    """Both templates, from `$TOCSIN_HOME/templates/` when a file of the same name is there, else built in.

    Templates are looked up at each render (Jinja reloads a changed file), so an override takes effect without
    a worker restart; the built-in ones must exist when the renderer is made."""

    def __init__(self, home: Path | None = None, templates: Path | None = None) -> None:
        searchpath = [str(p) for p in search_path(home, templates or template_dir())]
        self.searchpath = searchpath
        loader = jinja2.FileSystemLoader(searchpath)
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": jinja2.StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": True,
        }
        self._markdown = ImmutableSandboxedEnvironment(autoescape=False, finalize=md_escape, **common)
        self._html = ImmutableSandboxedEnvironment(autoescape=True, **common)

    def render(self, request: ReportRequest, published: Sequence[PublishedItem] = ()) -> RenderedReport:
        view = build_view(request, published)
        return RenderedReport(
            markdown=self._render(self._markdown, MARKDOWN_TEMPLATE, view),
            html=self._render(self._html, HTML_TEMPLATE, view),
        )

    def markdown(self, view: ReportView) -> str:
        return self._render(self._markdown, MARKDOWN_TEMPLATE, view)

    def html(self, view: ReportView) -> str:
        return self._render(self._html, HTML_TEMPLATE, view)

    def _render(self, env: jinja2.Environment, name: str, view: ReportView) -> str:
        where = name
        try:
            template = env.get_template(name)
            where = template.filename or name
            return template.render(view=view)
        except jinja2.TemplateSyntaxError as err:
            raise ReportTemplateError(f"{err.filename or where}:{err.lineno}: {err.message}") from None
        except jinja2.TemplateNotFound:
            raise ReportTemplateError(f"{name} not found in {', '.join(self.searchpath)}") from None
        except jinja2.exceptions.SecurityError as err:
            raise ReportTemplateError(f"{where}: refused by the sandbox: {err}") from None
        except jinja2.TemplateError as err:
            raise ReportTemplateError(f"{where}: {type(err).__name__}: {err}") from None
