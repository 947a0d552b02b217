"""A console with viewers on a fake clock, for the scrollback and selection tests.

``Setup`` feeds the console through a real hub (so the terminal, the display and the
scrollback run as in the process), each viewer a ``RecordingViewer``; ``row_picture``
draws what a row holding some text must look like, with a renderer of its own, so a
viewer's pixels are checked against text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image, ImageChops
from twisted.internet.testing import Clock

from tests.support.fakes import FakeDevice, RecordingViewer
from vncmux.console.cells import DEFAULT_CELL, Cell
from vncmux.console.console import Console, ViewerSession
from vncmux.console.render import Renderer
from vncmux.hub import Hub


class Setup:
    """A console on a real hub with a fake device, on a fake clock."""

    def __init__(self, cols: int = 20, rows: int = 5, **kw: Any) -> None:
        self.clock = Clock()
        self.clock.advance(1000)  # click times start far from zero
        self.hub = Hub(self.clock)
        self.device = FakeDevice()
        self.hub.deviceConnected(self.device, "fake connected")
        self.console = Console(self.hub, self.clock, cols, rows, default_name="vncmux: t", **kw)
        self.console.start()

    def feed(self, data: bytes) -> None:
        self.hub.deviceOutput(data)
        for _ in range(1000):
            if not self.console.vc.backlog:
                break
            self.clock.advance(0)
        self.clock.advance(0)
        assert self.console.vc.backlog == 0

    def lines(self, first: int, last: int) -> None:
        """Output lines 'line <n>' for n in first..last-1, each ending CR LF."""
        self.feed(b"".join(b"line %d\r\n" % n for n in range(first, last)))

    def typed(self) -> bytes:
        data = b"".join(self.device.written)
        self.device.written.clear()
        return data

    def attach(self, view_only: bool = False) -> tuple[RecordingViewer, ViewerSession]:
        viewer = RecordingViewer()
        session = self.console.attach(viewer, view_only=view_only, peer="10.0.0.9:4242")
        return viewer, session

    def cell_point(self, col: int, row: int) -> tuple[int, int]:
        """A framebuffer pixel inside cell (col, row)."""
        d = self.console.display
        return col * d.cell_width + 1, row * d.cell_height + 1

    def row_of(self, session: ViewerSession, row: int) -> Any:
        """What ``session`` shows on character row ``row`` (a PIL image)."""
        x, y, w, h = self.console.row_box(row, 1)
        return session.crop((x, y, x + w, y + h))

    def shared_row(self, row: int) -> Any:
        """What the shared picture shows on ``row``, once the display is up to date."""
        self.console.display.refresh()
        x, y, w, h = self.console.row_box(row, 1)
        return self.console.crop((x, y, x + w, y + h))


class _OneRow:
    """A one-row terminal holding ``cells``, for ``row_picture``."""

    def __init__(self, cells: Sequence[Cell]) -> None:
        self.cells = list(cells)
        self.cols = len(self.cells)
        self.rows = 1
        self.cursor = (0, 0)
        self.cursor_visible = False
        self.reverse_screen = False

    def line(self, y: int) -> Sequence[Cell]:
        return self.cells


def row_picture(text: str, cols: int, reverse: tuple[int, int] | None = None) -> Any:
    """``text`` on one row of ``cols`` cells in the default colours, as our renderer
    draws it; cells ``reverse`` = [first, last) in inverse video (a selection)."""
    cells = [Cell(ch) for ch in text[:cols]] + [DEFAULT_CELL] * (cols - len(text[:cols]))
    if reverse is not None:
        for x in range(*reverse):
            cells[x] = cells[x]._replace(reverse=True)
    renderer = Renderer(cols, 1)
    renderer.render_all(_OneRow(cells))  # type: ignore[arg-type]
    return renderer.image


def same(a: Image.Image, b: Image.Image) -> bool:
    """Two pictures are pixel for pixel equal."""
    return (
        a.size == b.size
        and ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None
    )
