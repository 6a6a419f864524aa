"""A signed email link opened in a real browser (tests/support/browser.py): Chromium loading the link, as a
person's mail client or a link scanner's prefetch does, shows the confirmation with its one button, legibly,
and acts on nothing; only the button's POST would act."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.browser import distinct_colours, dump_dom, screenshot
from tests.support.receiver_socket import serving
from tests.unit.test_action_links import KEY, FakeAct, app_with, path
from tocsin.receiver.config import ReceiverConfig

WINDOW = (800, 600)


async def test_opening_the_link_in_chromium_shows_the_confirmation_and_acts_on_nothing(tmp_path: Path) -> None:
    act = FakeAct()
    async with serving(app_with(act), ReceiverConfig()) as (_, listener):
        url = listener.url + path()
        # In threads: the receiver answers on this test's event loop while the browser waits for it.
        dom = await asyncio.to_thread(dump_dom, url, tmp_path / "profile-dom")
        png = tmp_path / "link.png"
        await asyncio.to_thread(screenshot, url, png, WINDOW)
    assert f"Acknowledge incident {KEY}?" in dom
    assert '<button type="submit">Acknowledge as alice</button>' in dom
    assert "Nothing happens until you press the button" in dom
    assert act.actions == [], "a browser opening the link acted: a mail scanner's prefetch would acknowledge"
    colours = distinct_colours(png)
    assert len(colours) > 20, f"the page is blank or nearly so: {len(colours)} distinct colours"
