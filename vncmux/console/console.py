"""One console: its terminal, its place on the hub, its framebuffer, and its viewers' input.

``Console`` owns the three pieces that make a virtual console and wires them through their
constructors: the ``Terminal`` reports to the console (``ITerminalEvents``), the
``VirtualConsole`` (the hub backend) tells it when a batch was fed, and the ``Display``
renders and paces frames for the viewers.  Events fan out from here: replies go to the
device, bells and titles to the viewers and listeners, scrolled-off rows to listeners as
text.

``ViewerSession`` is one viewer's hold on the console: the key mapper, the mouse state,
the paste buffer and the viewer's view (live, scrolled back into the scrollback, or showing
its selection: ``viewport``) live here, so a protocol (RFB today) only forwards what the
viewer sent and encodes what the session crops.  Nothing here knows a protocol; several
consoles may live in one process.
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
    ITerminalClipboard,
    ITerminalEvents,
    IViewer,
    IViewerSession,
)
from vncmux.console.keys import (
    KeyMapper,
    XK_Next,
    XK_Prior,
    is_paste_key,
    mouse_report,
    paste_bytes,
)
from vncmux.console.keysyms import is_modifier_keysym
from vncmux.console.modes import Modes
from vncmux.console.render import Renderer
from vncmux.console.scrollback import DEFAULT_LINES, Scrollback
from vncmux.console.selection import Pos, Selection, Selector, selected_text
from vncmux.console.statusline import StatusLine, is_takeover_key
from vncmux.console.terminal import Terminal
from vncmux.console.textrow import TextRow
from vncmux.console.vc import VirtualConsole
from vncmux.console.viewport import Viewport
from vncmux.events import Client
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
    ) -> None:
        self.hub = hub
        self.events = hub.events  # who did what (``vncmux.events``), shared with the hub
        self.clock = clock
        self.encoding = encoding
        self.osc52 = osc52
        self.make_renderer = make_renderer
        self._on_resize = on_resize
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


#: Buttons of the RFB pointer mask: left, middle, wheel up (4), wheel down (5).
LEFT, MIDDLE, WHEEL_UP, WHEEL_DOWN = 1, 2, 8, 16
#: Lines one wheel step scrolls back or forth.
WHEEL_LINES = 5
#: Pause and Break: with Ctrl+Alt held, a serial BREAK to the device (``Hub.sendBreak``).
BREAK_KEYSYMS = (0xFF13, 0xFF6B)


@implementer(IViewerSession, IViewer)
class ViewerSession:
    """One viewer attached to a console: its keyboard, mouse, paste buffer and view.

    Promises: input from a view-only session is dropped, with one log line per viewer;
    the clipboard is typed only on Shift+Insert or a middle click (never on arrival), with
    bracketed paste when the application asked for it; while the application tracks the
    mouse, the pointer becomes xterm reports, motion once per cell (Shift held: the
    pointer selects instead, as in xterm); after ``detach`` nothing reaches the console.

    The view: Shift+PgUp/PgDn and the wheel (when the application does not track the
    mouse, or with Shift) scroll this viewer alone back into the scrollback; output does
    not move a scrolled-back view; typing brings it back to the live screen.  A drag, a
    double click (a word) or a triple click (a line) selects text, shown in inverse video
    to this viewer and sent to its clipboard (``IViewer.cutText``).  View-only viewers may
    scroll and select: neither reaches the device.

    The display knows the session as its viewer (``IViewer``): damage of the shared
    picture lands in ``_live``; ``damage`` (what the viewer takes) is fed from it while the
    view is live, and from the session's own picture (``Viewport``) while it is not.
    """

    def __init__(
        self,
        console: Console,
        viewer: IViewer,
        *,
        view_only: bool = False,
        peer: str = "",
        client: Client | None = None,
    ) -> None:
        self.console = console
        self.viewer = viewer
        self.view_only = view_only
        self.peer = peer or "?"
        #: Who this viewer is, for the event bus (``hub.events``) and the keyboard lock.
        self.client = client or Client.of("vnc", self.peer, view_only=view_only)
        self.damage = Damage(console.display.lines)  # the terminal's rows + the status line
        self.damage.mark_all()
        self._live = console.display.attach(self)
        self._requested = False
        self._stale = False  # the view moved or its selection changed since the last sync
        self._view = Viewport(console.terminal, console.scrollback, console.make_renderer)
        self._mapper = KeyMapper(encoding=console.encoding)
        self._buttons = 0
        self._cell: tuple[int, int] | None = None
        self._paste_buffer = ""
        self._dropped_logged = False
        self._attached = True
        self._selector = Selector()

    # -- updates -----------------------------------------------------------------------

    @property
    def offset(self) -> int:
        """How many lines this viewer is scrolled back (0: it sees the live screen)."""
        return self._view.offset

    @property
    def selection(self) -> Selection | None:
        """What this viewer has selected (absolute lines, see ``scrollback``), if anything."""
        return self._view.selection

    def requestUpdate(self) -> None:
        if not self._attached:
            return
        self._requested = True
        self.console.display.requestUpdate(self)  # may answer at once (updateAvailable)
        if self._requested and self._sync():
            self._answer()

    def cancelRequest(self) -> None:
        if self._attached:
            self._requested = False
            self.console.display.cancelRequest(self)

    def crop(self, box: tuple[int, int, int, int]) -> Any:
        """The shared crop while the view is live, this viewer's own picture otherwise."""
        if self._view.active:
            return self.console.display.with_status(self._view.crop(box), box)
        return self.console.crop(box)

    def detach(self) -> None:
        if self._attached:
            self._attached = False
            self._requested = False
            self._view.stop()
            self.console._detached(self)
            self.console.hub.keyboard.release(self.client)

    def _sync(self) -> bool:
        """Bring ``damage`` up to date with what this viewer should see; True when the
        viewer has something to take."""
        view, live = self._view, self._live
        if self.console.terminal.alternate_screen:
            view.bottom()  # the alternate screen has no scrollback
        if view.own:
            if not view.active:
                view.start()
                self.damage.mark_all()
            elif live or self._stale:
                view.update(self.damage)
                self.damage.mark(r for r in live.rows if r >= view.rows)  # the status line
            live.clear()
        elif view.active:
            view.stop()
            self.damage.mark_all()
            live.clear()
        elif live:
            self.damage.merge(live)
            live.clear()
        self._stale = False
        return bool(self.damage)

    def _answer(self) -> None:
        self._requested = False
        self.console.display.cancelRequest(self)
        self.viewer.updateAvailable()

    def _viewChanged(self) -> None:
        """The view scrolled or the selection changed: redraw it now, and tell the viewer
        if it waits."""
        self._stale = True
        if self._sync() and self._requested:
            self._answer()

    # -- IViewer: what the display tells this viewer -----------------------------------

    def updateAvailable(self) -> None:
        """The shared picture changed; whether this view did is ours to say."""
        if not (self._attached and self._requested):
            return
        if self._sync():
            self._answer()
        else:
            self.console.display.requestUpdate(self)  # nothing for this view: wait on

    def bell(self) -> None:
        self.viewer.bell()

    def nameChanged(self, name: str) -> None:
        self.viewer.nameChanged(name)

    def sizeChanged(self, width: int, height: int) -> None:
        """A resize brings the view back to the live screen and drops the selection."""
        self._view.bottom()
        self._view.selection = None
        self._view.stop()
        self._live.clear()
        self.damage.lines = self.console.display.lines
        self.damage.mark_all()
        self.viewer.sizeChanged(width, height)

    def cutText(self, text: str) -> None:
        """Text for this viewer's clipboard (its selection, or OSC 52 when allowed)."""
        if self._attached:
            self.viewer.cutText(text)

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
        if not self._attached:
            return
        if down and self._scrollKey(keysym):
            return
        if self.view_only and is_modifier_keysym(keysym):
            self._mapper.key(keysym, down, self.console.modes)  # Shift+PgUp scrolls
        if down and keysym in BREAK_KEYSYMS and self._mapper.ctrl and self._mapper.alt:
            self.console.hub.sendBreak(self.client, how="Ctrl+Alt+Break")  # refused if view-only
            return
        if self._dropped("key events"):
            return
        lock = self.console.hub.keyboard  # Ctrl+Alt+T takes it (exclusive policy only)
        if down and lock.exclusive and is_takeover_key(keysym, self._mapper):
            lock.takeover(self.client)  # not sent to the device
            return
        if down and is_paste_key(keysym, self._mapper):
            self._paste()
            return
        data = self._mapper.key(keysym, down, self.console.modes)
        if data:
            self._typed()
            self.console.input(data, self.client)

    def _scrollKey(self, keysym: int) -> bool:
        """Shift+PgUp/PgDn scroll this view a page (less one line) when there is a
        scrollback to move in; True when the key was taken for that."""
        m = self._mapper
        if keysym not in (XK_Prior, XK_Next) or not m.shift or m.ctrl or m.alt or m.meta:
            return False
        if self.console.scrollback is None or self.console.terminal.alternate_screen:
            return False  # nothing to scroll: the key goes to the application
        page = max(1, self.console.rows - 1)
        self._scroll(page if keysym == XK_Prior else -page)
        return True

    def _scroll(self, lines: int) -> None:
        if self._view.scroll(lines):
            self._viewChanged()

    def _typed(self) -> None:
        """Input goes to the device: back to the live screen, the highlight dropped (the
        text is on the viewer's clipboard already)."""
        moved = self._view.bottom()
        if self._view.selection is not None:
            self._view.selection = None
            moved = True
        if moved:
            self._viewChanged()

    def clipboard(self, text: str) -> None:
        """Kept as the paste buffer (a view-only viewer's is never used: dropped)."""
        if self._attached and not self.view_only:
            self._paste_buffer = text

    def _paste(self) -> None:
        if self._dropped("paste") or not self._paste_buffer:
            return
        data = paste_bytes(self._paste_buffer, self.console.modes, self.console.encoding)
        if data:
            self._typed()
            self.console.input(data, self.client)

    def pointer(self, buttons: int, x: int, y: int) -> None:
        if not self._attached:
            return
        prev, self._buttons = self._buttons, buttons
        modes = self.console.modes
        col, row = self._cellAt(x, y)
        if modes.mouse_tracking and not self._mapper.shift and not self._selector.active:
            if self._dropped("pointer events"):
                return
            cell, self._cell = self._cell, (col, row)
            if buttons == prev and cell == (col, row):
                return  # xterm reports motion per cell, not per pixel
            data = mouse_report(buttons, prev, col, row, modes)
            if data:
                self.console.input(data, self.client)
            return
        pressed = buttons & ~prev
        if pressed & WHEEL_UP:
            self._scroll(WHEEL_LINES)
        if pressed & WHEEL_DOWN:
            self._scroll(-WHEEL_LINES)
        self._select(buttons, prev, (self._view.view_line(row), col))
        if pressed & MIDDLE:
            self._paste()

    def _select(self, buttons: int, prev: int, pos: Pos) -> None:
        """The left button selects (see ``Selector``); the release copies."""
        view, selector, cols = self._view, self._selector, self.console.cols
        if buttons & LEFT and not prev & LEFT:
            now = self.console.clock.seconds()
            chosen = selector.press(pos, now, view.cells_of, cols)
        elif buttons & LEFT and selector.active:
            chosen = selector.drag(pos, view.selection, view.cells_of, cols)
        elif prev & LEFT and selector.active:
            selector.active = False
            text = selected_text(view.selection, view.cells_of, cols) if view.selection else ""
            if text:
                self.cutText(text)
            return
        else:
            return
        if chosen != view.selection:
            view.selection = chosen
            self._viewChanged()

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
