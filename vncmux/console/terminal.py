"""The terminal emulator: device bytes in, a screen of cells with exact damage out.

pyte 0.8.2 draws text well, but its stream parser loses whole chunks on malformed input and
its screen misses things real programs use (alternate screen, faint, colon SGR, ...).  So
the terminal is made of four rooms:

  - :mod:`vncmux.console.parser`: our hardened ECMA-48 parser;
  - :mod:`vncmux.console.screen`: pyte's ``Screen`` subclassed with xterm's missing
    pieces (with its mixins ``editing``, ``reports``, ``modeswitch``; see
    ``docs/terminal.rst``), recording :class:`~vncmux.console.damage.Damage` precisely (a
    scroll as a scroll, cursor moves as the rows they touch);
  - :mod:`vncmux.console.fastpath`: runs of common output (text, CR/LF, SGR, CUP, EL,
    ED, ...) without pyte's per-character work, giving the same screen;
  - this module: the public face, :class:`Terminal`.

Everything the terminal tells its owner goes through one
:class:`~vncmux.console.interfaces.ITerminalEvents` object given to the constructor.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from typing import Any

from twisted.logger import Logger
from wcwidth import wcwidth as _wcwidth
from zope.interface import implementer

from vncmux.console.cells import (
    COLOUR_NAMES,
    DEFAULT_CELL,
    PALETTE_256,
    Cell,
    line_cells,
    well_formed,
)
from vncmux.console.damage import Damage
from vncmux.console.interfaces import ITerminalClipboard, ITerminalEvents
from vncmux.console.modes import Modes
from vncmux.console.parser import GROUND, Parser, parse_params
from vncmux.console.reports import SYNC_KEY
from vncmux.console.screen import MAX_COMBINING, TermScreen, sanitize_title

log = Logger()


@implementer(ITerminalEvents)
class NoEvents:
    """The events object of a terminal nobody listens to: every event is dropped."""

    def reply(self, data: bytes) -> None:
        pass

    def bell(self) -> None:
        pass

    def title(self, title: str) -> None:
        pass

    def scrolledOff(self, rows: list[Any]) -> None:
        pass


@implementer(ITerminalEvents, ITerminalClipboard)
class _Guarded:
    """The owner's events object behind a guard: a failing handler is logged, and the
    parsing that raised the event goes on.  OSC 52 reaches the owner only if it provides
    ``ITerminalClipboard``."""

    def __init__(self, events: ITerminalEvents) -> None:
        self._events = events

    def reply(self, data: bytes) -> None:
        try:
            self._events.reply(data)
        except Exception:  # noqa: BLE001 -- a handler must not break parsing
            log.failure("Terminal: the reply handler failed")

    def bell(self) -> None:
        try:
            self._events.bell()
        except Exception:  # noqa: BLE001
            log.failure("Terminal: the bell handler failed")

    def title(self, title: str) -> None:
        try:
            self._events.title(title)
        except Exception:  # noqa: BLE001
            log.failure("Terminal: the title handler failed")

    def scrolledOff(self, rows: list[Any]) -> None:
        try:
            self._events.scrolledOff(rows)
        except Exception:  # noqa: BLE001
            log.failure("Terminal: the scrolled-off handler failed")

    def clipboard(self, text: str) -> None:
        owner = ITerminalClipboard(self._events, None)
        if owner is None:
            return
        try:
            owner.clipboard(text)
        except Exception:  # noqa: BLE001
            log.failure("Terminal: the clipboard handler failed")


def _status_cells(message: str, cols: int) -> list[Cell]:
    """The banner row: the message in bright white on red, padded to the width."""
    attrs = Cell(" ", "brightwhite", "red", bold=True)
    cells: list[Cell] = []
    for ch in message:
        if len(cells) >= cols:
            break
        w = _wcwidth(ch)
        if w == 1:
            cells.append(attrs._replace(data=ch))
        elif w == 2 and len(cells) + 2 <= cols:
            cells.append(attrs._replace(data=ch))
            cells.append(attrs._replace(data=""))
    cells.extend([attrs] * (cols - len(cells)))
    return cells


class Terminal:
    """A VT/xterm-compatible screen fed with the device's bytes.

    Promises: ``feed`` never raises and spends bounded time per byte; ``take_damage``
    returns everything that changed since its previous call (content, cursor, banner),
    such that the old picture + the damage = the new picture; ``line`` always returns
    exactly ``cols`` well-formed cells.

    Events go to ``events`` (an :class:`~vncmux.console.interfaces.ITerminalEvents`;
    None: dropped): replies the terminal owes the program (DA, DSR), never to the screen;
    at most one ``bell`` per ``feed``, however many BELs it held; ``title`` when the
    title changes; ``scrolledOff`` with every row leaving the top of the main screen,
    whichever path fed it.  A handler that raises is logged and parsing goes on.

    ``fast`` (the default) routes common output through
    :class:`~vncmux.console.fastpath.FastPath`, many times faster and giving the same
    screen, damage and events as the pyte-based slow path (``fast=False``, kept for the
    differential tests and as the reference).
    """

    def __init__(
        self,
        cols: int,
        rows: int,
        encoding: str = "utf-8",
        events: ITerminalEvents | None = None,
        fast: bool = True,
        report_scrolled_off: bool | None = None,
    ) -> None:
        self.cols = cols
        self.rows = rows
        self.encoding = encoding
        self.events: ITerminalEvents = NoEvents() if events is None else events
        self.modes = Modes()
        self._status: str | None = None
        self._decoder = codecs.getincrementaldecoder(encoding)("replace")
        self._screen = TermScreen(cols, rows, self.modes, _Guarded(self.events))
        # None: on when an events object is given (see the report_scrolled_off property)
        if report_scrolled_off is None:
            report_scrolled_off = events is not None and not isinstance(events, NoEvents)
        self._screen.scrollback = report_scrolled_off
        self._parser = Parser(self._screen, fast)
        self._screen.dirty.clear()
        self._screen.damage.mark_all()
        self._last_cursor: tuple[int, int, bool] | None = None

    @property
    def report_scrolled_off(self) -> bool:
        """Whether rows leaving the top go to ``events.scrolledOff``.  Off by default:
        turning each scrolled row into cells costs the fast path about half its speed, so
        the owner switches it on only while something (a scrollback, a listener) wants
        the rows."""
        return self._screen.scrollback

    @report_scrolled_off.setter
    def report_scrolled_off(self, on: bool) -> None:
        self._screen.scrollback = on

    # -- input ---------------------------------------------------------------------

    def _settle(self) -> None:
        """Bring the screen up to date with what the fast path has run (see fastpath)."""
        fast = self._parser.fast
        if fast is not None and fast.pending:
            fast.settle()

    def feed(self, data: bytes) -> None:
        """Interpret device output.  Never raises; a failing sequence is dropped alone."""
        try:
            text = self._decoder.decode(data)
        except Exception:  # noqa: BLE001 -- feed never raises
            log.failure("Terminal: cannot decode output; resetting the decoder")
            self._decoder = codecs.getincrementaldecoder(self.encoding)("replace")
            return
        try:
            self._parser.feed(text)
        except Exception:  # noqa: BLE001 -- defensive: the parser guards every call
            log.failure("Terminal: parser failure; resetting its state")
            self._parser.state = GROUND
        screen = self._screen
        fast = self._parser.fast
        if fast is not None and screen.reports_scrolled_off:
            fast.report_scrolled_off()  # a scrollback is never a feed behind
        if screen.rang:
            screen.rang = False
            screen.events.bell()

    # -- state -----------------------------------------------------------------------

    @property
    def title(self) -> str:
        """The window title the application set (control characters removed)."""
        return self._screen.title

    @property
    def cursor(self) -> tuple[int, int]:
        c = self._screen.cursor
        return min(c.x, self.cols - 1), c.y

    @property
    def cursor_visible(self) -> bool:
        return not self._screen.cursor.hidden

    @property
    def reverse_screen(self) -> bool:
        return self._screen.reverse_screen

    @property
    def alternate_screen(self) -> bool:
        return self._screen.in_alt

    @property
    def open_update(self) -> int:
        """The synchronized update the program holds open (DEC mode 2026: set before it
        draws a frame, reset after) by its serial number, 0 when none is: the display holds
        frames back meanwhile, and tells one update from the next by the number."""
        s = self._screen
        return s.sync_updates if s.other_modes.get(SYNC_KEY, False) else 0

    @property
    def status(self) -> str | None:
        return self._status

    def line(self, y: int) -> Sequence[Cell]:
        """Row ``y`` as exactly ``cols`` cells (the status banner on the last row if set).

        Wide characters are made well-formed here (pyte can leave a half when one is
        partly overwritten): the left half has the character, the right half ``''``.
        """
        if self._status is not None and y == self.rows - 1:
            return _status_cells(self._status, self.cols)
        self._settle()
        return well_formed(line_cells(self._screen.stored_line(y), self.cols))

    # -- damage ----------------------------------------------------------------------

    @property
    def has_damage(self) -> bool:
        """True when ``take_damage`` would return something non-empty."""
        self._settle()
        s = self._screen
        return bool(s.dirty or s.damage or self._overlay_rows())

    def _cursor_state(self) -> tuple[int, int, bool]:
        x, y = self.cursor
        return x, y, self.cursor_visible

    def _overlay_rows(self) -> list[int]:
        """Rows to redraw because of what is drawn over the screen's content.

        The last picture showed the cursor and maybe the banner at rows that scrolls may
        since have moved (``cursor_ref``/``banner_ref`` follow them); the new picture shows
        them at their current rows.  Both places must be redrawn when they differ.
        """
        s = self._screen
        rows: list[int] = []
        now = self._cursor_state()
        last = self._last_cursor
        if last is None:
            rows.append(now[1])
        elif (now != last or s.cursor_ref != last[1]) and (now[2] or last[2]):
            rows.append(now[1])
            if last[2] and s.cursor_ref is not None:
                rows.append(s.cursor_ref)
        bottom = self.rows - 1
        if s.banner_ref is not None and (self._status is None or s.banner_ref != bottom):
            rows.append(s.banner_ref)
        if self._status is not None and s.banner_ref != bottom:
            rows.append(bottom)
        return rows

    def take_damage(self) -> Damage:
        """Everything that changed since the previous call; resets the record."""
        self._settle()
        s = self._screen
        d = s.damage
        if s.dirty:
            d.mark(s.dirty)
            s.dirty.clear()
        d.mark(self._overlay_rows())
        self._last_cursor = self._cursor_state()
        s.cursor_ref = self._last_cursor[1]
        s.banner_ref = self.rows - 1 if self._status is not None else None
        s.damage = Damage(self.rows)
        return d

    # -- control -----------------------------------------------------------------------

    def set_status(self, message: str | None) -> None:
        """Show ``message`` as a banner on the last row (None: remove it).

        The emulated screen underneath is untouched and shows again once cleared.
        """
        self._settle()
        if message is not None:
            message = sanitize_title(message) if message else " "
        if message != self._status:
            self._status = message
            self._screen.dirty.add(self.rows - 1)

    def set_cell_pixels(self, width: int, height: int) -> None:
        """The size of one cell in the picture, for the pixel-size reports (XTWINOPS 14,
        15 and 16); the owner that renders the cells says it."""
        self._screen.cell_pixels = (max(1, width), max(1, height))

    def resize(self, cols: int, rows: int) -> None:
        """New size, everything marked dirty.  When rows shrink, lines leave at the top
        only as far as needed to keep the cursor on screen (as xterm does); they are
        reported as scrolled off."""
        cols, rows = max(1, cols), max(1, rows)
        self._settle()
        self._screen.change_size(cols, rows)
        self.cols, self.rows = cols, rows
        self._last_cursor = None


__all__ = [
    "COLOUR_NAMES",
    "DEFAULT_CELL",
    "MAX_COMBINING",
    "PALETTE_256",
    "Cell",
    "NoEvents",
    "Terminal",
    "parse_params",
]
