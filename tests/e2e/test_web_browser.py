"""The web entry's index in headless Chromium (driven over DevTools by
tests/support/browser.py), against a real ``twistd -n vncmux`` with a config file of
three consoles on ptys: the page shows the three consoles with their state and a thumbnail
that loads; a mouse click on a console's link opens its viewer, whose noVNC canvas shows
that console's screen (the very picture its thumbnail was reduced from) and not another's.
Screenshots are kept under tests/e2e/artifacts/.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.support.browser import CDP, CHROMIUM, NOVNC, browser, canvas, status, wait_for
from tests.support.pty_device import Pty
from tests.support.vncmux_process import VncmuxProcess
from tests.support.web_site import NAMES, get, site

__all__ = ["browser", "site"]  # fixtures used by the tests below

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.skipif(not NOVNC, reason="noVNC is not installed (apt-get install novnc)"),
    pytest.mark.timeout(240),
]

CARDS = """[...document.querySelectorAll('article')].map(a => ({
  name: a.dataset.name,
  state: a.querySelector('.state').textContent,
  loaded: (i => !!i && i.complete && i.naturalWidth > 0)(a.querySelector('img.thumb')),
}))"""


def click(cdp: CDP, selector: str) -> None:
    """A real mouse click in the middle of the element ``selector`` names."""
    box = cdp.evaluate(
        f"(r => [r.x + r.width / 2, r.y + r.height / 2])"
        f"(document.querySelector({selector!r}).getBoundingClientRect())"
    )
    x, y = box
    for kind in ("mousePressed", "mouseReleased"):
        cdp.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


def screenshot(cdp: CDP, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = cdp.call("Page.captureScreenshot", format="png")
    (ARTIFACTS / name).write_bytes(base64.b64decode(shot["data"]))


def thumbnail(port: int, name: str) -> Image.Image:
    status_code, _, png = get(port, f"/c/{name}/thumbnail.png")
    assert status_code == 200
    return Image.open(io.BytesIO(png)).convert("RGB")


def test_index_shows_the_consoles_and_a_link_opens_that_consoles_viewer(
    site: tuple[int, dict[str, Pty], VncmuxProcess], browser: CDP
) -> None:
    port, ptys, proc = site
    for name, pty in ptys.items():
        pty.write(f"hello from {name}\r\n".encode())
    cdp = browser
    cdp.call("Page.enable")
    cdp.call("Runtime.enable")
    cdp.call("Page.navigate", url=f"http://127.0.0.1:{port}/")

    def cards() -> list[dict[str, Any]] | None:
        found = cdp.evaluate(CARDS)
        ready = found and len(found) == 3 and all(c["loaded"] for c in found)
        return found if ready else None

    shown = wait_for(cards, "three consoles with their thumbnails loaded")
    assert [c["name"] for c in shown] == list(NAMES)
    assert {c["state"] for c in shown} == {"up"}
    screenshot(cdp, "web-index.png")

    click(cdp, 'article[data-name="beta"] h2 a')
    wait_for(lambda: cdp.evaluate("location.pathname") == "/c/beta/" or None, "the viewer of beta")
    assert (
        wait_for(
            lambda: (s := status(cdp)) in ("connected", "disconnected", "connection lost") and s,
            "noVNC to connect",
        )
        == "connected"
    ), proc.describe()

    def same_as_thumbnail() -> Image.Image | None:
        shown = canvas(cdp)
        small = thumbnail(port, "beta")
        if shown.width < small.width:
            return None
        reduced = shown.reduce(shown.width // small.width)
        return shown if reduced.tobytes() == small.tobytes() else None

    screen = wait_for(same_as_thumbnail, "the canvas to show beta's screen")
    assert screen.reduce(2).tobytes() != thumbnail(port, "alpha").tobytes()
    screenshot(cdp, "web-viewer-beta.png")
    assert "WebSocket connection from 127.0.0.1" in proc.log
    assert "(path /c/beta/websockify)" in proc.log
