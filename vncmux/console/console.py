"""One console: its terminal, its place on the hub, its framebuffer, and its viewers' input.

``Console`` owns the three pieces that make a virtual console and wires them through their
constructors: the ``Terminal`` reports to the console (``ITerminalEvents``), the
``VirtualConsole`` (the hub backend) tells it when a batch was fed, and the ``Display``
renders and paces frames for the viewers.  Events fan out from here: replies go to the
device, bells and titles to the viewers and listeners, scrolled-off rows to listeners as
text.

``ViewerSession`` is one viewer's hold on the console: the key mapper, the mouse state and
the paste buffer live here, so a protocol (RFB today) only forwards what the viewer sent.
Nothing here knows a protocol; several consoles may live in one process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from vncmux.console.damage import Damage
from vncmux.console.display import Display
from vncmux.console.interfaces import (
    IConsole,
    IConsoleListener,
    ITerminalEvents,
    IViewer,
    IViewerSession,
)
from vncmux.console.keys import KeyMapper, is_paste_key, mouse_report, paste_bytes
from vncmux.console.modes import Modes
from vncmux.console.render import Renderer
from vncmux.console.terminal import Terminal
from vncmux.console.vc import VirtualConsole
from vncmux.hub import Hub

log = Logger()

# A console larger than this (either way) is refused by ``resize``: the framebuffer of a
# 1000×1000 console is already some 500 MB.
MAX_CELLS = 1000


def console_size(
    cols: int, rows: int, width: int | None = None, height: int | None = None
) -> tuple[int, int]:
    """cols×rows for a console: ``width``/``height`` in pixels (QEMU's ``vc`` meaning),
    when given, win over ``cols``/``rows`` and are divided by the font's cell size."""
    if width or height:
        probe = Renderer(1, 1)
        if width:
            cols = max(1, width // probe.cell_width)
        if height:
            rows = max(1, height // probe.cell_height)
    return cols, rows


def row_text(cells: Sequence[Any]) -> str:
    """One row of cells as text: a wide character once (its right half is empty), combining
    marks with their base, trailing blanks removed."""
    return "".join(cell.data for cell in cells).rstrip()


@implementer(IConsole, ITerminalEvents)
class Console:
    """One virtual console (see the module docstring).

    Promises: every terminal reply reaches the hub as input from this console's backend;
    every viewer hears ``bell`` at most once per frame interval however often the
    terminal rings, and ``nameChanged`` when the title changes; every listener hears each
    event once, and a listener that raises is logged and does not stop the others or the
    feed.  ``start`` attaches the console to the hub, ``stop`` detaches it and drops what
    was not fed yet; ``on_resize(cols, rows)`` is told of every size change (an ``exec:``
    device resizes its pty).
    """

    def __init__(
        self,
        hub: Hub,
        clock: IReactorTime,
        cols: int = 80,
        rows: int = 24,
        *,
        encoding: str = "utf-8",
        default_name: str = "vncmux",
        on_resize: Callable[[int, int], None] | None = None,
        renderer: Any = None,
    ) -> None:
        self.hub = hub
        self.encoding = encoding
        self._on_resize = on_resize
        self._listeners: list[IConsoleListener] = []
        self._sessions: list[ViewerSession] = []
        self.terminal = Terminal(
            cols, rows, encoding=encoding, events=self, report_scrolled_off=False
        )
        self.vc = VirtualConsole(hub, self.terminal, clock, on_change=self._changed)
        self.display = Display(
            self.terminal,
            renderer if renderer is not None else Renderer(cols, rows),
            clock,
            default_name=default_name,
            busy=lambda: self.vc.backlog > 0,
        )

    # -- life ------------------------------------------------------------------------------

    def start(self) -> None:
        """Take device output from the hub from now on."""
        self.hub.attach(self.vc)

    def stop(self) -> None:
        """Leave the hub and stop every pending feed and frame; viewers stay attached but
        hear nothing more."""
        self.hub.detach(self.vc)
        self.vc.close()
        self.display.close()

    # -- IConsole: geometry and state ------------------------------------------------------

    @property
    def name(self) -> str:
        return self.display.name

    @property
    def width(self) -> int:
        return self.display.width

    @property
    def height(self) -> int:
        return self.display.height

    @property
    def cols(self) -> int:
        return self.terminal.cols

    @property
    def rows(self) -> int:
        return self.terminal.rows

    @property
    def viewers(self) -> int:
        return len(self._sessions)

    def crop(self, box: tuple[int, int, int, int]) -> Any:
        return self.display.crop(box)

    def row_box(self, first_row: int, count: int) -> tuple[int, int, int, int]:
        return self.display.row_box(first_row, count)

    def text(self) -> list[str]:
        """The screen, one string per row, trailing blanks removed (the device-down
        banner, when shown, is the last row)."""
        return [row_text(self.terminal.line(y)) for y in range(self.terminal.rows)]

    def resize(self, cols: int, rows: int) -> None:
        """New size for the terminal and the framebuffer; every viewer hears
        ``sizeChanged`` and gets a full frame; ``on_resize`` tells the device."""
        if not (0 < cols <= MAX_CELLS and 0 < rows <= MAX_CELLS):
            raise ValueError(f"console size {cols}x{rows} out of range (1..{MAX_CELLS})")
        if (cols, rows) == (self.cols, self.rows):
            return
        self.display.resize(cols, rows)
        if self._on_resize is not None:
            self._on_resize(cols, rows)
        self._tell("changed")

    # -- IConsole: viewers and listeners ---------------------------------------------------

    def attach(self, viewer: IViewer, view_only: bool = False, peer: str = "") -> ViewerSession:
        damage = self.display.attach(viewer)
        session = ViewerSession(self, viewer, damage, view_only=view_only, peer=peer)
        self._sessions.append(session)
        return session

    def _detached(self, session: ViewerSession) -> None:
        if session in self._sessions:
            self._sessions.remove(session)
            self.display.detach(session.viewer)

    def subscribe(self, listener: IConsoleListener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)
        self.terminal.report_scrolled_off = True

    def unsubscribe(self, listener: IConsoleListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)
        self.terminal.report_scrolled_off = bool(self._listeners)

    def _tell(self, event: str, *args: Any) -> None:
        for listener in list(self._listeners):
            try:
                getattr(listener, event)(*args)
            except Exception:  # noqa: BLE001 -- one listener must not break the console
                log.failure(
                    "Console listener {listener!r} failed on {event}",
                    listener=listener,
                    event=event,
                )

    # -- input from viewers ----------------------------------------------------------------

    def input(self, data: bytes) -> None:
        """Bytes a viewer typed (keys, pastes, mouse reports): to the device."""
        self.vc.input(data)

    @property
    def modes(self) -> Modes:
        """What the application asked of keys, pastes and the mouse."""
        return self.terminal.modes

    # -- what the terminal and the backend report ------------------------------------------

    def _changed(self) -> None:
        """The backend fed a batch that left damage (or the device banner changed)."""
        self.display.changed()
        self._tell("changed")

    def reply(self, data: bytes) -> None:
        self.vc.input(data)

    def bell(self) -> None:
        self.display.bell()
        self._tell("bell")

    def title(self, title: str) -> None:
        self.display.titleChanged()
        self._tell("titleChanged", title)

    def scrolledOff(self, rows: list) -> None:  # type: ignore[type-arg]
        if self._listeners:
            self._tell("scrolledOff", [row_text(row) for row in rows])


@implementer(IViewerSession)
class ViewerSession:
    """One viewer attached to a console: its keyboard, mouse and paste buffer.

    Promises: input from a view-only session is dropped, with one log line per viewer;
    the clipboard is typed only on Shift+Insert or a middle click (never on arrival), with
    bracketed paste when the application asked for it; while the application tracks the
    mouse, the pointer becomes xterm reports, motion once per cell; after ``detach``
    nothing reaches the console.
    """

    def __init__(
        self,
        console: Console,
        viewer: IViewer,
        damage: Damage,
        *,
        view_only: bool = False,
        peer: str = "",
    ) -> None:
        self.console = console
        self.viewer = viewer
        self.damage = damage
        self.view_only = view_only
        self.peer = peer or "?"
        self._mapper = KeyMapper(encoding=console.encoding)
        self._buttons = 0
        self._cell: tuple[int, int] | None = None
        self._paste_buffer = ""
        self._dropped_logged = False
        self._attached = True

    # -- updates -----------------------------------------------------------------------

    def requestUpdate(self) -> None:
        if self._attached:
            self.console.display.requestUpdate(self.viewer)

    def cancelRequest(self) -> None:
        if self._attached:
            self.console.display.cancelRequest(self.viewer)

    def detach(self) -> None:
        if self._attached:
            self._attached = False
            self.console._detached(self)

    # -- input -------------------------------------------------------------------------

    def _dropped(self, what: str) -> bool:
        """True (the input is dropped) when this viewer may not type; logged once."""
        if not self._attached:
            return True
        if not self.view_only:
            return False
        if not self._dropped_logged:
            self._dropped_logged = True
            log.info(
                "VNC viewer {peer} is view-only: its {what} (and all later input) ignored",
                peer=self.peer,
                what=what,
            )
        return True

    def key(self, keysym: int, down: bool) -> None:
        if self._dropped("key events"):
            return
        if down and is_paste_key(keysym, self._mapper):
            self._paste()
            return
        data = self._mapper.key(keysym, down, self.console.modes)
        if data:
            self.console.input(data)

    def clipboard(self, text: str) -> None:
        """Kept as the paste buffer (a view-only viewer's is never used: dropped)."""
        if self._attached and not self.view_only:
            self._paste_buffer = text

    def _paste(self) -> None:
        if self._dropped("paste") or not self._paste_buffer:
            return
        data = paste_bytes(self._paste_buffer, self.console.modes, self.console.encoding)
        if data:
            self.console.input(data)

    def pointer(self, buttons: int, x: int, y: int) -> None:
        if self._dropped("pointer events"):
            return
        prev, self._buttons = self._buttons, buttons
        modes = self.console.modes
        if modes.mouse_tracking:
            col, row = self._cellAt(x, y)
            cell, self._cell = self._cell, (col, row)
            if buttons == prev and cell == (col, row):
                return  # xterm reports motion per cell, not per pixel
            data = mouse_report(buttons, prev, col, row, modes)
            if data:
                self.console.input(data)
        elif buttons & 2 and not prev & 2:
            self._paste()

    def _cellAt(self, x: int, y: int) -> tuple[int, int]:
        """The cell under framebuffer pixel (x, y), clamped to the screen."""
        display = self.console.display
        ox, oy, _w, _h = display.row_box(0, 1)
        cw, ch = max(1, display.cell_width), max(1, display.cell_height)
        col = min(max(0, (x - ox) // cw), display.cols - 1)
        row = min(max(0, (y - oy) // ch), display.rows - 1)
        return col, row


class ConsoleService(Service):
    """Keeps a console on the hub while the service runs (named ``console``)."""

    def __init__(self, console: Console) -> None:
        self.setName("console")
        self.console = console

    def startService(self) -> None:
        Service.startService(self)
        self.console.start()

    def stopService(self) -> None:
        Service.stopService(self)
        self.console.stop()
