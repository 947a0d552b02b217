"""The shared, rendered console that VNC viewers pull frames from.

One ``Display`` sits between the terminal (what the device wrote) and every viewer.  It
renders terminal damage into one framebuffer image, once, whoever is watching, and folds the
same damage into a per-viewer accumulator.  Viewers *pull*: a viewer with a pending update
request is told when its accumulator holds something, and encodes from the shared image in
its own pixel format and encoding.  Nothing is queued per byte and no viewer can slow the
device or another viewer: an idle viewer's accumulator just keeps absorbing damage (it is a
set of rows and at most one scroll, so its size is bounded by the screen's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from PIL import Image
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import Interface

from vncmux.console.damage import Damage
from vncmux.console.modes import Modes
from vncmux.console.render import TerminalView


class IViewer(Interface):
    """What the display calls back on a viewer (an RFB session)."""

    def updateAvailable() -> None:
        """Your accumulator holds damage; called once per ``Display.requestUpdate``."""

    def bell() -> None:
        """The console rang its bell."""

    def nameChanged(name: str) -> None:
        """The desktop name (the terminal title) changed."""

    def sizeChanged(width: int, height: int) -> None:
        """The console was resized: announce it and send a full frame when asked."""


class TerminalLike(TerminalView, Protocol):
    """The part of ``vncmux.console.terminal.Terminal`` the display relies on (beyond
    what the renderer reads)."""

    cols: int
    rows: int
    modes: Modes
    title: str
    on_bell: Callable[[], None]
    on_title: Callable[[str], None]

    def take_damage(self) -> Damage: ...

    def resize(self, cols: int, rows: int) -> None: ...


class RendererLike(Protocol):
    """The part of ``vncmux.console.render.Renderer`` the display relies on."""

    cell_width: int
    cell_height: int
    width: int
    height: int
    image: Image.Image

    def render(self, term: TerminalLike, damage: Damage) -> None: ...

    def render_all(self, term: TerminalLike) -> None: ...

    def resize(self, cols: int, rows: int) -> None: ...

    def row_box(self, first_row: int, count: int) -> tuple[int, int, int, int]: ...


class Display:
    """The rendered console and its viewers' damage accounting.

    Promises: ``image`` equals the terminal's screen after ``refresh()``; each viewer's
    accumulator, applied to the picture that viewer last received, yields ``image``; a
    viewer that asked (``requestUpdate``) hears ``updateAvailable`` exactly once, as soon as
    there is something for it.
    """

    log = Logger()

    def __init__(
        self,
        terminal: TerminalLike,
        renderer: RendererLike,
        send_input: Callable[[bytes], None],
        clock: IReactorTime,
        default_name: str = "vncmux",
        encoding: str = "utf-8",
    ) -> None:
        self.terminal = terminal
        self.renderer = renderer
        self._send_input = send_input
        self._clock = clock
        self._default_name = default_name
        self.encoding = encoding
        self._viewers: dict[IViewer, Damage] = {}
        self._waiting: set[IViewer] = set()
        terminal.on_bell = self._bell
        terminal.on_title = self._title
        renderer.render_all(terminal)
        terminal.take_damage()

    # -- geometry and state viewers read -------------------------------------------------

    @property
    def width(self) -> int:
        return self.renderer.width

    @property
    def height(self) -> int:
        return self.renderer.height

    @property
    def cols(self) -> int:
        return self.terminal.cols

    @property
    def rows(self) -> int:
        return self.terminal.rows

    @property
    def cell_width(self) -> int:
        return self.renderer.cell_width

    @property
    def cell_height(self) -> int:
        return self.renderer.cell_height

    @property
    def image(self) -> Image.Image:
        return self.renderer.image

    @property
    def modes(self) -> Modes:
        return self.terminal.modes

    @property
    def name(self) -> str:
        return self.terminal.title or self._default_name

    @property
    def viewers(self) -> tuple[IViewer, ...]:
        return tuple(self._viewers)

    def row_box(self, first_row: int, count: int) -> tuple[int, int, int, int]:
        return self.renderer.row_box(first_row, count)

    # -- viewers ---------------------------------------------------------------------------

    def attach(self, viewer: IViewer) -> Damage:
        """Register ``viewer``; its accumulator starts all dirty (it has seen nothing)."""
        acc = Damage(self.terminal.rows)
        acc.mark_all()
        self._viewers[viewer] = acc
        return acc

    def detach(self, viewer: IViewer) -> None:
        self._viewers.pop(viewer, None)
        self._waiting.discard(viewer)

    def requestUpdate(self, viewer: IViewer) -> None:
        """``viewer`` has a request pending: answer now if there is damage, else later."""
        acc = self._viewers.get(viewer)
        if acc is None:
            return
        self.refresh()
        if acc:
            self._waiting.discard(viewer)
            viewer.updateAvailable()
        else:
            self._waiting.add(viewer)

    def cancelRequest(self, viewer: IViewer) -> None:
        self._waiting.discard(viewer)

    # -- the console side --------------------------------------------------------------------

    def refresh(self) -> None:
        """Render what the terminal changed since last time, and tell every accumulator."""
        damage = self.terminal.take_damage()
        if not damage:
            return
        self.renderer.render(self.terminal, damage)
        for acc in self._viewers.values():
            acc.merge(damage)

    def changed(self) -> None:
        """The terminal was fed.  Render now only if somebody is waiting for a frame;
        otherwise the damage stays in the terminal until a viewer asks."""
        if not self._waiting:
            return
        self.refresh()
        for viewer in list(self._waiting):
            acc = self._viewers.get(viewer)
            if acc:
                self._waiting.discard(viewer)
                viewer.updateAvailable()

    def resize(self, cols: int, rows: int) -> None:
        """Change the console's size; every viewer gets a full frame after the resize."""
        if (cols, rows) == (self.terminal.cols, self.terminal.rows):
            return
        self.terminal.resize(cols, rows)
        self.renderer.resize(cols, rows)
        self.renderer.render_all(self.terminal)
        self.terminal.take_damage()
        for viewer, acc in list(self._viewers.items()):
            acc.lines = rows  # mutated, not replaced: the viewer holds this object
            acc.mark_all()
            viewer.sizeChanged(self.width, self.height)

    def input(self, data: bytes, viewer: IViewer | None = None) -> None:
        """Bytes a viewer typed (keys, paste, mouse reports): to the device."""
        self._send_input(data)

    def _bell(self) -> None:
        for viewer in list(self._viewers):
            viewer.bell()

    def _title(self, title: str) -> None:
        for viewer in list(self._viewers):
            viewer.nameChanged(self.name)
