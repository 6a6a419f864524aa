"""A post-mortem's HTML in a real browser (tests/support/browser.py): every section renders in order, the
full timeline is folded in a <details> under the story, tables and text are painted."""

from __future__ import annotations

from pathlib import Path

from tests.support.browser import distinct_colours, dump_dom, screenshot
from tests.unit.test_postmortem_report import report_request
from tocsin.postmortem.report.render import ReportRenderer

WINDOW = (1000, 1800)


def test_a_post_mortem_renders_in_chromium_with_every_section(tmp_path: Path) -> None:
    rendered = ReportRenderer(tmp_path / "home").render(report_request())
    html = tmp_path / "postmortem.html"
    html.write_text(rendered.html, encoding="utf-8")
    png = tmp_path / "postmortem.png"
    screenshot(html, png, WINDOW)
    dom = dump_dom(html)
    titles = ["Summary", "Impact", "Timeline", "Root cause", "Action items", "Lessons learned", "Evidence sources"]
    positions = [dom.index(f">{title}</h2>") for title in titles]
    assert positions == sorted(positions), "the sections render in the report's order"
    assert "Peak error rate" in dom and "38.5%" in dom
    assert dom.index("<details") > dom.index(">Timeline</h2>"), "the full timeline is one click away"
    colours = distinct_colours(png)
    assert len(colours) > 20, f"the page is blank or nearly so: {len(colours)} distinct colours"
