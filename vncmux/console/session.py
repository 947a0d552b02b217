"""One viewer's hold on a console: its keyboard, mouse, paste buffer, view and size requests.

``ViewerSession`` is what ``Console.attach`` hands a viewer: the key mapper, the mouse
state, the paste buffer and the viewer's view (live, scrolled back into the scrollback, or
showing its selection: ``viewport``) live here, so a protocol (RFB today) only forwards
what the viewer sent and encodes what the session crops.  A size the viewer asks for goes
to the console's policy (``Console.requestSize``).  Nothing here knows a protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger
from zope.interface import implementer

from vncmux.console.damage import Damage
from vncmux.console.interfaces import IViewer, IViewerSession
from vncmux.console.keys import (
    KeyMapper,
    XK_Next,
    XK_Prior,
    is_paste_key,
    mouse_report,
    paste_bytes,
)
from vncmux.console.keysyms import is_modifier_keysym
from vncmux.console.selection import Pos, Selection, Selector, selected_text
from vncmux.console.sizing import ResizeOrigin, SizeStatus
from vncmux.console.statusline import is_takeover_key
from vncmux.console.viewport import Viewport
from vncmux.events import Client

if TYPE_CHECKING:
    from vncmux.console.console import Console

log = Logger()

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
        #: Who caused the last resize this viewer heard of (``sizeChanged``).
        self.resize_origin = ResizeOrigin.SERVER

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

    def requestSize(self, width: int, height: int) -> int:
        """The viewer asks for a framebuffer of ``width``×``height`` pixels: the console
        decides (``Console.requestSize``); a ``sizing.SizeStatus``."""
        if not self._attached:
            return SizeStatus.PROHIBITED
        return self.console.requestSize(self, width, height)

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
        """A resize brings the view back to the live screen and drops the selection; the
        viewer can tell from ``resize_origin`` whether it asked for it."""
        by = self.console.resizing_for
        if by is None:
            self.resize_origin = ResizeOrigin.SERVER
        else:
            self.resize_origin = (
                ResizeOrigin.THIS_VIEWER if by is self else ResizeOrigin.OTHER_VIEWER
            )
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
