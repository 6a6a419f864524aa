"""The public status page in a real browser (tests/support/browser.py): a major outage of one component shows in
its red, the others green, with the resolved incident in the history; nothing of the alert's own text."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.support.browser import distinct_colours, dump_dom, screenshot
from tests.unit.test_status_page import LEAK, NOW, incident, listing, page
from tocsin.receiver.public_status import build_view

WINDOW = (900, 900)
MAJOR_OUTAGE_RED = (0xCF, 0x22, 0x2E)  # templates/status_page.html.j2: .bg-major_outage
OPERATIONAL_GREEN = (0x1F, 0x88, 0x3D)  # .bg-operational


def test_the_status_page_renders_in_chromium_with_its_colours(tmp_path: Path) -> None:
    view = build_view(
        [
            incident("checkout", severity="sev1", started=timedelta(minutes=12)),
            incident("search", "sev2", "resolved", started=timedelta(hours=3), resolved=timedelta(hours=2)),
        ],
        now=NOW,
        public=listing("checkout", "billing", "search"),
    )
    html = tmp_path / "status.html"
    html.write_text(page().html(view), encoding="utf-8")
    png = tmp_path / "status.png"
    screenshot(html, png, WINDOW)
    dom = dump_dom(html)
    for component in ("checkout", "billing", "search"):
        assert component in dom.lower(), f"{component} is not on the rendered page"
    assert "vault-int" not in dom and LEAK not in dom
    assert "Partial outage on search" in dom and "No incidents in the last" not in dom  # in the history now
    colours = distinct_colours(png)
    assert len(colours) > 20, f"the page is blank or nearly so: {len(colours)} distinct colours"
    assert MAJOR_OUTAGE_RED in colours and OPERATIONAL_GREEN in colours
