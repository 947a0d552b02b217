"""``/c/NAME/thumbnail.png``: a small PNG of a console's screen for the index page.

A thumbnail is drawn from the shared framebuffer (brought up to date first, as the API's
``screen.png`` does), reduced to at most ``THUMB_WIDTH`` pixels wide and kept per console
with the frame it shows (``Display.frame``): asked again before the image changed, it is
the same bytes.  A console whose output streams changes every frame, so a new thumbnail is
drawn at most once per ``MIN_INTERVAL`` seconds per console, however many index pages are
open; in between the last one is served.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import Request

#: The widest thumbnail, in pixels (an 80-column console in Terminus is 640 wide: halved).
THUMB_WIDTH = 320
#: Seconds between two thumbnails of one console while its screen keeps changing.
MIN_INTERVAL = 1.0


@dataclass
class _Drawn:
    console: Any  # the Console it shows (a console restarted by a reload is another one)
    frame: int
    made: float
    png: bytes


def thumbnail_png(image: Any, width: int = THUMB_WIDTH) -> bytes:
    """``image`` (a PIL image) reduced by a whole factor to at most ``width`` pixels wide,
    as a PNG: box filtering keeps text legible as grey, and it is fast."""
    factor = max(1, math.ceil(image.width / width))
    small = image.reduce(factor) if factor > 1 else image
    out = io.BytesIO()
    small.convert("RGB").save(out, format="PNG", compress_level=1)
    return out.getvalue()


class Thumbnails:
    """The thumbnails of a site's consoles, one per console name (see the module)."""

    def __init__(
        self, clock: Any, width: int = THUMB_WIDTH, min_interval: float = MIN_INTERVAL
    ) -> None:
        self._clock = clock
        self.width = width
        self.min_interval = min_interval
        self._drawn: dict[str, _Drawn] = {}
        self.drawn = 0  # thumbnails drawn so far (the tests count them)

    def png(self, name: str, console: Any) -> bytes:
        """The thumbnail of ``console`` (named ``name``), drawn now only if its screen
        changed since the last one and that one is at least ``min_interval`` old."""
        now = self._clock.seconds()
        last = self._drawn.get(name)
        if last is not None and last.console is console and now - last.made < self.min_interval:
            return last.png
        display = console.display
        display.refresh()
        if last is not None and last.console is console and last.frame == display.frame:
            last.made = now
            return last.png
        png = thumbnail_png(display.image, self.width)
        self._drawn[name] = _Drawn(console, display.frame, now, png)
        self.drawn += 1
        return png

    def keep(self, names: set[str]) -> None:
        """Forget the thumbnails of consoles not in ``names`` (removed by a reload)."""
        for name in list(self._drawn):
            if name not in names:
                del self._drawn[name]


class ThumbnailResource(Resource):
    """One console's ``thumbnail.png``."""

    isLeaf = True

    def __init__(self, thumbnails: Thumbnails, name: str, console: Any) -> None:
        super().__init__()
        self._thumbnails = thumbnails
        self._name = name
        self._console = console

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"image/png")
        request.setHeader(b"cache-control", b"no-store")
        return self._thumbnails.png(self._name, self._console)
