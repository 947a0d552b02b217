"""A fake console for RFB tests: ``IConsole`` + ``IViewerSession`` over a patterned image.

Every row band has its own colour (and one odd pixel, so no band is uniform), so the
pixels of an update can be checked against what should have been sent.  Damage is injected
by the test (``change``); what viewers do (keys, pointer, clipboard) is recorded in
``inputs`` as tuples, except from view-only or detached sessions, whose input the real
console drops too.  ``tests/unit/test_rfb_server.py`` checks both classes against the
interfaces with ``verifyObject``.
"""

from __future__ import annotations

from typing import Any

from PIL import Image
from twisted.internet.task import Clock
from zope.interface import implementer

from vncmux.console.damage import Damage
from vncmux.console.interfaces import IConsole, IConsoleListener, IViewer, IViewerSession
from vncmux.events import Client, EventBus


@implementer(IViewerSession)
class FakeViewerSession:
    """One attached viewer: records its input in the console's ``inputs``."""

    def __init__(
        self,
        console: FakeConsole,
        viewer: IViewer,
        view_only: bool,
        peer: str,
        client: Client | None = None,
    ) -> None:
        self.console = console
        self.client = client
        self.viewer = viewer
        self.view_only = view_only
        self.peer = peer
        self.damage = Damage(console.rows)
        self.damage.mark_all()
        self.paste_buffer = ""
        self.attached = True
        self.resize_origin = 0  # ResizeOrigin.SERVER
        self.size_status = 1  # what requestSize answers: PROHIBITED, as a serial device

    def requestSize(self, width: int, height: int) -> int:
        self.console.size_requests.append((width, height))
        return self.size_status

    def requestUpdate(self) -> None:
        if self.attached:
            self.console.requestUpdate(self)

    def cancelRequest(self) -> None:
        self.console.waiting.discard(self)

    def crop(self, box: tuple[int, int, int, int]) -> Any:
        return self.console.crop(box)

    def _record(self, *event: Any) -> None:
        if self.attached and not self.view_only:
            self.console.inputs.append(event)

    def key(self, keysym: int, down: bool) -> None:
        self._record("key", keysym, down)

    def pointer(self, buttons: int, x: int, y: int) -> None:
        self._record("pointer", buttons, x, y)

    def clipboard(self, text: str) -> None:
        if self.attached and not self.view_only:
            self.paste_buffer = text
        self._record("clipboard", text)

    def detach(self) -> None:
        if self.attached:
            self.attached = False
            self.console.sessions.remove(self)
            self.console.waiting.discard(self)


@implementer(IConsole)
class FakeConsole:
    """The console API over a patterned image; damage is injected by the test."""

    def __init__(
        self, cols: int = 10, rows: int = 4, cw: int = 8, ch: int = 16, margin: int = 0
    ) -> None:
        self.cols, self.rows = cols, rows
        self.cell_width, self.cell_height = cw, ch
        self.margin = margin
        self.width, self.height = cols * cw, rows * ch + margin
        self.name = "vncmux: test ü"
        self.inputs: list[tuple[Any, ...]] = []
        self.size_requests: list[tuple[int, int]] = []
        self.sessions: list[FakeViewerSession] = []
        self.waiting: set[FakeViewerSession] = set()
        self.listeners: list[IConsoleListener] = []
        self.events = EventBus(Clock())
        self.pending = Damage(rows)
        self.image = self._pattern(0)

    def _pattern(self, seed: int) -> Image.Image:
        img = Image.new("RGB", (self.width, self.height), (1, 2, 3))
        for r in range(self.rows):
            colour = ((r * 50 + seed) % 256, (100 + r + seed) % 256, (200 - r) % 256)
            img.paste(
                colour,
                (0, r * self.cell_height, self.width, (r + 1) * self.cell_height),
            )
            img.putpixel((r, r * self.cell_height), (255, 255, 255))  # not uniform inside
        return img

    # -- IConsole ----------------------------------------------------------------------------

    @property
    def viewers(self) -> int:
        return len(self.sessions)

    @property
    def accs(self) -> dict[IViewer, Damage]:
        """Each attached viewer's accumulator."""
        return {s.viewer: s.damage for s in self.sessions}

    def attach(
        self,
        viewer: IViewer,
        view_only: bool = False,
        peer: str = "",
        client: Client | None = None,
    ) -> IViewerSession:
        session = FakeViewerSession(self, viewer, view_only, peer, client)
        self.sessions.append(session)
        return session

    def crop(self, box: tuple[int, int, int, int]) -> Image.Image:
        return self.image.crop(box)

    def row_box(self, first_row: int, count: int) -> tuple[int, int, int, int]:
        return (0, first_row * self.cell_height, self.width, count * self.cell_height)

    def text(self) -> list[str]:
        return [""] * self.rows

    def resize(self, cols: int, rows: int) -> None:
        """New size and picture; every accumulator all dirty; every viewer told."""
        self.cols, self.rows = cols, rows
        self.width, self.height = cols * self.cell_width, rows * self.cell_height + self.margin
        self.image = self._pattern(3)
        self.pending = Damage(rows)
        for s in list(self.sessions):
            s.damage.lines = rows
            s.damage.mark_all()
            s.viewer.sizeChanged(self.width, self.height)

    def subscribe(self, listener: IConsoleListener) -> None:
        self.listeners.append(listener)

    def unsubscribe(self, listener: IConsoleListener) -> None:
        self.listeners.remove(listener)

    # -- what a session asks ---------------------------------------------------------------

    def refresh(self) -> None:
        if self.pending:
            for s in self.sessions:
                s.damage.merge(self.pending)
            self.pending = Damage(self.rows)

    def requestUpdate(self, session: FakeViewerSession) -> None:
        self.refresh()
        if session.damage:
            self.waiting.discard(session)
            session.viewer.updateAvailable()
        else:
            self.waiting.add(session)

    # -- test drivers ------------------------------------------------------------------------

    def input(self, data: bytes) -> None:
        """Something typed by other means (it changes the next picture)."""
        self.inputs.append(("bytes", data))

    def change(self, rows: Any = (), scroll: tuple[int, int, int] | None = None) -> None:
        """The terminal changed: new picture, damage, wake waiting viewers."""
        d = Damage(self.rows)
        if scroll is not None:
            d.scrolled(*scroll)
        d.mark(rows)
        self.pending.merge(d)
        self.image = self._pattern(len(self.inputs) + 7)
        self.refresh()
        for s in list(self.waiting):
            if s.damage:
                self.waiting.discard(s)
                s.viewer.updateAvailable()
