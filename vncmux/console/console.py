"""One console: its terminal, its place on the hub, its framebuffer, and its viewers' input.

``Console`` owns the three pieces that make a virtual console and wires them through their
constructors: the ``Terminal`` reports to the console (``ITerminalEvents``), the
``VirtualConsole`` (the hub backend) tells it when a batch was fed, and the ``Display``
renders and paces frames for the viewers.  Events fan out from here: replies go to the
device, bells and titles to the viewers and listeners, scrolled-off rows to listeners as
text.

``ViewerSession`` (``vncmux.console.session``, importable from here too) is one viewer's
hold on the console.  A size a viewer asks for is decided here (``requestSize``: the
cells that fit, within ``sizing.LIMITS``, when ``viewer_resize`` allows it).  Nothing here
knows a protocol; several consoles may live in one process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from vncmux.console.display import Display
from vncmux.console.interfaces import (
    IConsole,
    IConsoleListener,
    ITerminalClipboard,
    ITerminalEvents,
    IViewer,
)
from vncmux.console.modes import Modes
from vncmux.console.render import Renderer
from vncmux.console.scrollback import DEFAULT_LINES, Scrollback
from vncmux.console.session import (  # noqa: F401 -- re-exported: their home used to be here
    BREAK_KEYSYMS,
    LEFT,
    MIDDLE,
    WHEEL_DOWN,
    WHEEL_LINES,
    WHEEL_UP,
    ViewerSession,
)
from vncmux.console.sizing import LIMITS, Limits, SizeStatus, cells_for
from vncmux.console.statusline import StatusLine
from vncmux.console.terminal import Terminal
from vncmux.console.textrow import TextRow
from vncmux.console.vc import VirtualConsole
from vncmux.events import Client
from vncmux.hub import Hub

log = Logger()

# A console larger than this (either way) is refused by ``resize``: the framebuffer of a
# 1000×1000 console is already some 500 MB.
MAX_CELLS = 1000


def console_size(
    cols: int,
    rows: int,
    width: int | None = None,
    height: int | None = None,
    make_renderer: Callable[[int, int], Any] = Renderer,
) -> tuple[int, int]:
    """cols×rows for a console: ``width``/``height`` in pixels (QEMU's ``vc`` meaning),
    when given, win over ``cols``/``rows`` and are divided by the cell size of the
    renderers ``make_renderer`` makes."""
    if width or height:
        probe = make_renderer(1, 1)
        if width:
            cols = max(1, width // probe.cell_width)
        if height:
            rows = max(1, height // probe.cell_height)
    return cols, rows


def row_text(cells: Sequence[Any]) -> str:
    """One row of cells as text: a wide character once (its right half is empty), combining
    marks with their base, trailing blanks removed."""
    if isinstance(cells, TextRow):
        return cells.plain()
    return "".join(cell.data for cell in cells).rstrip()


@implementer(IConsole, ITerminalEvents, ITerminalClipboard)
class Console:
    """One virtual console (see the module docstring).

    Promises: every terminal reply reaches the hub as input from this console's backend;
    every viewer hears ``bell`` at most once per frame interval however often the
    terminal rings, and ``nameChanged`` when the title changes; every listener hears each
    event once, and a listener that raises is logged and does not stop the others or the
    feed.  ``start`` attaches the console to the hub, ``stop`` detaches it and drops what
    was not fed yet; ``on_resize(cols, rows)`` is told of every size change (an ``exec:``
    device resizes its pty).

    ``scrollback``: how many lines scrolled off the main screen are kept for viewers to
    scroll back to (0: none).  ``osc52``: the application may set the viewers' clipboard
    with OSC 52 (off by default: a program on the device could otherwise plant text in
    every viewer's clipboard, or read back what a viewer pastes).  ``make_renderer(cols,
    rows)`` makes the renderers: the shared one (unless ``renderer`` is given) and the one
    of each viewer whose view differs from it.  ``status_line``: a row below the terminal
    says who has the keyboard (``hub.keyboard``) and whether the device is up.
    ``viewer_resize``: viewers may resize the console (``requestSize``), within ``limits``.
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
        scrollback: int = DEFAULT_LINES,
        osc52: bool = False,
        make_renderer: Callable[[int, int], Any] = Renderer,
        status_line: bool = False,
        viewer_resize: bool = False,
        limits: Limits = LIMITS,
    ) -> None:
        self.hub = hub
        self.events = hub.events  # who did what (``vncmux.events``), shared with the hub
        self.clock = clock
        self.encoding = encoding
        self.osc52 = osc52
        self.make_renderer = make_renderer
        self._on_resize = on_resize
        self.viewer_resize = viewer_resize
        self.limits = limits
        #: The viewer whose request is being applied (None: not a viewer's resize).
        self.resizing_for: ViewerSession | None = None
        self._listeners: list[IConsoleListener] = []
        self._sessions: list[ViewerSession] = []
        self._osc52_logged = False
        self.scrollback = Scrollback(scrollback) if scrollback > 0 else None
        self.terminal = Terminal(
            cols,
            rows,
            encoding=encoding,
            events=self,
            report_scrolled_off=self.scrollback is not None,
        )
        self.vc = VirtualConsole(hub, self.terminal, clock, on_change=self._changed)
        self.display = Display(
            self.terminal,
            renderer if renderer is not None else make_renderer(cols, rows),
            clock,
            default_name=default_name,
            busy=lambda: self.vc.backlog > 0,
            status_line=status_line,
        )
        self.status = StatusLine(hub, clock, self.display.set_status) if status_line else None
        # XTWINOPS pixel-size reports (e.g. `resize` over a serial line) give the real cell
        self.terminal.set_cell_pixels(self.display.cell_width, self.display.cell_height)

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
        if self.status is not None:
            self.status.stop()

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

    def requestSize(self, session: ViewerSession, width: int, height: int) -> SizeStatus:
        """A viewer asks for a ``width``×``height`` pixel framebuffer: the console becomes
        the cells that fit (the status line, when shown, is part of the height).

        Refused (``PROHIBITED``) unless ``viewer_resize``, for a view-only viewer, or
        while another client holds the keyboard; ``INVALID`` outside ``limits``;
        ``NO_RESOURCES`` if the framebuffer cannot be made.  Every viewer hears
        ``sizeChanged``; during it ``resizing_for`` names the session that asked."""
        display = self.display
        cols, rows = cells_for(
            width, height, display.cell_width, display.cell_height, display.status_rows
        )
        why, status = "", SizeStatus.PROHIBITED
        if not self.viewer_resize:
            why = "the device cannot be told of a new size (allow it with --viewer-resize on)"
        elif session.view_only:
            why = "the viewer is view-only"
        elif not self.hub.keyboard.permits(session.client):
            why = "another client holds the keyboard"
        elif not self.limits.allows(cols, rows):
            why = f"{cols}x{rows} cells is outside {self.limits.describe()}"
            status = SizeStatus.INVALID
        if why:
            log.info(
                "Console: viewer {peer} asked for {w}x{h} pixels: refused, {why}",
                peer=session.peer,
                w=width,
                h=height,
                why=why,
            )
            return status
        self.resizing_for = session
        try:
            self.resize(cols, rows)
        except MemoryError:
            log.warn("Console: no memory for {cols}x{rows} cells", cols=cols, rows=rows)
            return SizeStatus.NO_RESOURCES
        finally:
            self.resizing_for = None
        log.info(
            "Console: resized to {cols}x{rows} cells for viewer {peer}",
            cols=cols,
            rows=rows,
            peer=session.peer,
        )
        return SizeStatus.OK

    # -- IConsole: viewers and listeners ---------------------------------------------------

    def attach(
        self,
        viewer: IViewer,
        view_only: bool = False,
        peer: str = "",
        client: Client | None = None,
    ) -> ViewerSession:
        session = ViewerSession(self, viewer, view_only=view_only, peer=peer, client=client)
        self._sessions.append(session)
        return session

    def _detached(self, session: ViewerSession) -> None:
        if session in self._sessions:
            self._sessions.remove(session)
            self.display.detach(session)

    def subscribe(self, listener: IConsoleListener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)
        self._updateScrolledOff()

    def unsubscribe(self, listener: IConsoleListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)
        self._updateScrolledOff()

    def _updateScrolledOff(self) -> None:
        """Rows scrolled off are built (a cost on the fast path) only while the scrollback
        or a listener that wants them is there."""
        self.terminal.report_scrolled_off = self.scrollback is not None or any(
            getattr(x, "wantsScrolledOff", True) for x in self._listeners
        )

    def _tell(
        self, event: str, *args: Any, listeners: list[IConsoleListener] | None = None
    ) -> None:
        for listener in list(self._listeners if listeners is None else listeners):
            try:
                getattr(listener, event)(*args)
            except Exception:  # noqa: BLE001 -- one listener must not break the console
                log.failure(
                    "Console listener {listener!r} failed on {event}",
                    listener=listener,
                    event=event,
                )

    # -- input from viewers ----------------------------------------------------------------

    def input(self, data: bytes, client: Client | None = None) -> None:
        """Bytes a viewer typed (keys, pastes, mouse reports): to the device, as ``client``'s
        input (``vncmux.events``)."""
        self.vc.input(data, client)

    @property
    def modes(self) -> Modes:
        """What the application asked of keys, pastes and the mouse."""
        return self.terminal.modes

    # -- what the terminal and the backend report ------------------------------------------

    def _changed(self) -> None:
        """The backend fed a batch that left damage (or the device banner changed)."""
        if self.status is not None:
            self.status.update()  # the device may have come or gone
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
        if self.scrollback is not None:
            self.scrollback.add(rows)
        wanting = [x for x in self._listeners if getattr(x, "wantsScrolledOff", True)]
        if wanting:
            lines = [row_text(row) for row in rows]
            self._tell("scrolledOff", lines, listeners=wanting)

    def clipboard(self, text: str) -> None:
        """OSC 52 from the application: to every viewer's clipboard, if allowed."""
        if self.osc52:
            for session in list(self._sessions):
                session.cutText(text)
        elif not self._osc52_logged:
            self._osc52_logged = True
            log.info(
                "Console: the application tried to set the clipboard (OSC 52); "
                "ignored (allow it with --osc52)"
            )


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
