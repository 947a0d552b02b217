"""The emulated screen: pyte's ``Screen`` with xterm's missing pieces and exact damage.

It holds the cells, the cursor, the modes and the damage, and announces bells, titles and
rows scrolled off the top through the terminal's events object.  Three mixins hold the rest,
one job each: :mod:`~vncmux.console.editing` (margin-aware moves and edits, selective erase,
rectangles), :mod:`~vncmux.console.reports` (every answer to a query, in xterm's bytes) and
:mod:`~vncmux.console.modeswitch` (modes, alternate screens, soft reset).  The parser (:mod:`vncmux.console.parser`) calls its methods; the fast path
(:mod:`vncmux.console.fastpath`) reads lines with :meth:`TermScreen.stored_line` and hands
back what it ran with :meth:`TermScreen.apply_run`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

from pyte import modes as mo
from pyte.screens import Margins, Savepoint, Screen, StaticDefaultDict

from vncmux.console.cells import (
    DEFAULT_CELL,
    ZERO_WIDTH_RUN,
    ZW_DROP,
    Cell,
    Line,
    Param,
    apply_sgr,
    line_cells,
    well_formed,
)
from vncmux.console.damage import Damage
from vncmux.console.editing import EditingMixin
from vncmux.console.interfaces import ITerminalClipboard, ITerminalEvents
from vncmux.console.modes import Modes
from vncmux.console.modeswitch import ModesMixin
from vncmux.console.reports import ReportsMixin

if TYPE_CHECKING:
    from pyte.screens import Cursor

    from vncmux.console.fastpath import FastPath

    class _CellCursor(Cursor):
        attrs: Cell  # type: ignore[assignment]


MAX_COMBINING = 8  # combining marks kept per cell; more are dropped
MAX_TITLE = 256  # characters of a window title kept


def sanitize_title(title: str) -> str:
    """A title without control characters, at most ``MAX_TITLE`` characters."""
    clean = "".join(ch for ch in title[: MAX_TITLE * 4] if unicodedata.category(ch)[0] != "C")
    return clean[:MAX_TITLE]


# -- the screen ------------------------------------------------------------------------


class TermScreen(EditingMixin, ReportsMixin, ModesMixin, Screen):
    """pyte's screen with xterm's missing pieces and exact damage recording.

    Damage is kept in two parts: pyte's own ``dirty`` set (rows its methods touch) and
    ``damage``; every scroll first folds ``dirty`` into ``damage`` and then records the
    scroll, so marks made before a scroll are shifted with it.
    """

    # pyte types its cells as Char; ours are Cell (Char plus faint), made the same way.
    buffer: defaultdict[int, StaticDefaultDict[int, Cell]]  # type: ignore[assignment]
    cursor: _CellCursor  # type: ignore[assignment]

    def __init__(self, columns: int, lines: int, modes: Modes, events: ITerminalEvents) -> None:
        self.modes = modes
        self.events = events
        self.scrollback = True  # False: nobody wants the rows scrolled off (saves the work)
        self.rang = False  # BEL seen since the terminal last reported a bell
        self.title = ""
        self.damage = Damage(lines)
        self.in_alt = False
        self._main_buffer: defaultdict[int, StaticDefaultDict[int, Cell]] | None = None
        self._alt_store: defaultdict[int, StaticDefaultDict[int, Cell]] | None = None
        self._alt_saved: Savepoint | None = None
        self.reverse_screen = False
        self.last_char = " "
        # Where the cursor / status banner drawn in the last taken picture now sits.
        self.cursor_ref: int | None = None
        self.banner_ref: int | None = None
        self.fast: FastPath | None = None  # set by the parser when it has one
        self.cursor_style = 1  # DECSCUSR, reported by DECRQSS
        self.conformance = 64  # DECSCL's level (61..65), reported by DECRQSS
        self.attr_change_extent = 0  # DECSACE, reported by DECRQSS
        self._saved: dict[bool, Savepoint] = {}  # DECSC's slot per screen (main, alternate)
        self.saved_modes: dict[int, bool] = {}  # XTSAVE
        self.iso_protection = False  # SPA was used: ED/EL/ECH spare protected cells
        self.title_hex = [False, False]  # titles set / reported in hexadecimal
        self.sync_updates = 0  # synchronized updates opened so far (mode 2026; never reset)
        self._init_editing()
        self._init_reports()
        super().__init__(columns, lines)

    # -- attributes ----------------------------------------------------------------

    @property
    def default_char(self) -> Cell:  # type: ignore[override]
        return DEFAULT_CELL

    def reset(self) -> None:
        """RIS: also leaves the alternate screen and resets the input modes; the title
        stays (as in xterm)."""
        if getattr(self, "in_alt", False) and self._main_buffer is not None:
            self.buffer = self._main_buffer
            self.in_alt = False
        title = self.title
        self._alt_store = None
        super().reset()
        self.title = title
        self.g1_charset = self.g0_charset  # as xterm: G1 is ASCII until designated
        self.cursor.attrs = DEFAULT_CELL
        self.savepoints = []
        self._saved = {}
        self._alt_saved = None
        self.reverse_screen = False
        modes = self.modes
        for name, value in vars(Modes()).items():
            setattr(modes, name, value)
        self._init_editing()
        self._init_reports()
        self.cursor_style = 1
        self.conformance = 64
        self.attr_change_extent = 0
        self.iso_protection = False
        self.title_hex = [False, False]

    def _new_line(self, fill: Cell = DEFAULT_CELL) -> StaticDefaultDict[int, Cell]:
        return StaticDefaultDict(fill)

    def _erase_cell(self) -> Cell:
        """Erased cells take the current colours and reverse, not the other attributes."""
        a = self.cursor.attrs
        if a.fg == "default" and a.bg == "default" and not a.reverse:
            return DEFAULT_CELL
        return Cell(" ", a.fg, a.bg, reverse=a.reverse)

    # -- text ----------------------------------------------------------------------

    def draw(self, data: str) -> None:
        """pyte's draw for ordinary text; zero-width characters go through ``_mark``."""
        if self.lr_margins is not None and self.declrmm:
            self.draw_in_margins(data)
            return
        self.lr_wrap_at = None
        if data.isascii() or ZERO_WIDTH_RUN.search(data) is None:
            super().draw(data)
            self.last_char = data[-1]
            return
        pos = 0
        for m in ZERO_WIDTH_RUN.finditer(data):
            if m.start() > pos:
                super().draw(data[pos : m.start()])
                self.last_char = data[m.start() - 1]
            for ch in m.group():
                if ch not in ZW_DROP:
                    self._mark(ch)
            pos = m.end()
        if pos < len(data):
            super().draw(data[pos:])
            self.last_char = data[-1]

    def _mark(self, ch: str) -> None:
        """Attach a zero-width mark to the previous cell, at most ``MAX_COMBINING`` each."""
        x, y = self.cursor.x, self.cursor.y
        if x > 0:
            row, px = y, x - 1
        elif y > 0:
            row, px = y - 1, self.columns - 1
        else:
            return
        line = self.buffer[row]
        if px > 0 and line[px].data == "":
            px -= 1  # right half of a wide character: the mark belongs to its left half
        cell = line[px]
        if len(cell.data) > MAX_COMBINING:
            return
        line[px] = cell._replace(data=unicodedata.normalize("NFC", cell.data + ch))
        self.dirty.add(row)

    def repair(self) -> None:
        """After a handler failed half-way: put the cursor back inside the screen."""
        c = self.cursor
        c.x = min(max(0, c.x), self.columns)
        c.y = min(max(0, c.y), self.lines - 1)

    def repeat_last(self, count: int = 0) -> None:
        """REP (CSI n b): draw the last graphic character again, bounded by the screen."""
        n = min(count or 1, self.columns * self.lines)
        text = self.last_char * n
        if self.fast is not None:  # up to 1920 cells from 6 bytes: worth the fast path
            done = self.fast.run(text, 0)
            if done == n:
                return
            self.fast.settle()
            text = text[done:]
        self.draw(text)

    def alignment_display(self) -> None:
        """DECALN in O(rows): every row becomes a line whose default cell is 'E'."""
        e = DEFAULT_CELL._replace(data="E")
        for y in range(self.lines):
            self.buffer[y] = self._new_line(e)
        self.margins = None
        self.lr_margins = None
        self.cursor.x = self.cursor.y = 0
        self.dirty.update(range(self.lines))

    # -- scrolling -----------------------------------------------------------------

    def scroll_region(self, top: int, bottom: int, count: int, scrolls_off: bool = False) -> None:
        """Move rows ``top..bottom`` by ``count`` (positive: up) and record it as a scroll.

        ``scrolls_off``: the rows leaving the top leave the screen (LF, IND, SU: not DL),
        and are reported to ``events.scrolledOff`` when they are the main screen's top rows.
        """
        height = bottom - top + 1
        if count == 0 or height <= 0:
            return
        n = min(abs(count), height)
        buf = self.buffer
        if count > 0 and scrolls_off and top == 0 and self.reports_scrolled_off:
            cols = self.columns
            self.scrolled_off([well_formed(line_cells(buf.get(y), cols)) for y in range(n)])
        # (Every row of the region is taken out once and the survivors put back shifted:
        # rows never stored stay absent, exposed rows become absent, i.e. blank.)
        old = list(map(buf.pop, range(top, bottom + 1), repeat(None, height)))
        if count > 0:
            kept, dest, signed = old[n:], top, n
        else:
            kept, dest, signed = old[: height - n], top + n, -n
        buf.update({dest + i: line for i, line in enumerate(kept) if line is not None})
        self.note_scroll(top, bottom, signed)

    def note_scroll(self, top: int, bottom: int, signed: int) -> None:
        """Record that rows ``top..bottom`` moved by ``signed`` (positive: up) as damage,
        without moving the stored rows: the fast path moves its pending rows itself and
        hands them over later (``apply_run``'s ``moved``)."""
        d = self.damage
        if self.dirty:
            d.mark(self.dirty)
            self.dirty.clear()
        d.scrolled(top, bottom, signed)
        if self.cursor_ref is not None:
            self.cursor_ref = self._shift_ref(self.cursor_ref, top, bottom, signed)
        if self.banner_ref is not None:
            self.banner_ref = self._shift_ref(self.banner_ref, top, bottom, signed)

    @property
    def reports_scrolled_off(self) -> bool:
        """True when rows leaving the top are to be reported (main screen, a listener)."""
        return self.scrollback and not self.in_alt

    def scrolled_off(self, rows: Sequence[Sequence[Cell]]) -> None:
        """Report ``rows`` (well-formed, oldest first) as gone from the top of the main
        screen; nothing when :attr:`reports_scrolled_off` is False."""
        if rows and self.reports_scrolled_off:
            self.events.scrolledOff(list(rows))

    def stored_line(self, y: int) -> Line | None:
        """Row ``y`` as stored (None: never written, blank), without creating it."""
        return self.buffer.get(y)

    def apply_run(
        self, scrolled: int, lines: dict[int, Line], moved: dict[int, Line] | None = None
    ) -> None:
        """Take in what a fast-path run did: the whole screen scrolled up by ``scrolled``
        rows (any number; no margins; the rows that left were given to
        :meth:`scrolled_off`), then ``lines`` (row -> line) replaced rows, and ``moved``
        rows were put where region scrolls already recorded with :meth:`note_scroll`
        took them (no damage of their own: the scroll's damage covers them).  Damage is
        recorded as the slow path would have recorded it."""
        if scrolled:
            self.scroll_region(0, self.lines - 1, scrolled)
        buf = self.buffer
        if moved:
            buf.update(moved)
        for y, line in lines.items():
            buf[y] = line
        self.dirty.update(lines)

    def change_size(self, cols: int, rows: int) -> None:
        """New size, everything marked dirty.  When rows shrink, lines leave at the top
        only as far as needed to keep the cursor on screen (as xterm does); those of the
        main screen are reported as scrolled off."""
        delta = max(0, self.cursor.y - (rows - 1))
        main = self._main_buffer if self.in_alt else self.buffer
        if delta and self.scrollback and main is not None:
            cols = self.columns
            self.scrolled_off([well_formed(line_cells(main.get(y), cols)) for y in range(delta)])
        buffers = [b for b in (self.buffer, self._main_buffer) if b is not None]
        if delta:
            for buf in buffers:
                for y in range(self.lines):
                    moved = buf.pop(y + delta, None) if y + delta < self.lines else None
                    if moved is None:
                        buf.pop(y, None)
                    else:
                        buf[y] = moved
            self.cursor.y = max(0, self.cursor.y - delta)
        for buf in buffers:
            for y in [y for y in buf if y >= rows]:
                del buf[y]
        if cols < self.columns:
            for buf in buffers:
                for line in buf.values():
                    for x in range(cols, self.columns):
                        line.pop(x, None)
        self.lines, self.columns = rows, cols
        self._alt_store = None  # the stored alternate screen is not resized: dropped
        self.margins = None
        self.set_lrmm(self.declrmm)
        self.lr_margins = None
        self.tabstops = set(range(8, cols, 8))
        self.cursor.x = min(self.cursor.x, cols - 1)
        self.cursor.y = min(self.cursor.y, rows - 1)
        self.dirty.clear()
        self.damage = Damage(rows)
        self.damage.mark_all()
        self.cursor_ref = None
        self.banner_ref = None

    @staticmethod
    def _shift_ref(ref: int | None, top: int, bottom: int, count: int) -> int | None:
        if ref is None or not top <= ref <= bottom:
            return ref
        ref -= count
        return ref if top <= ref <= bottom else None

    def _region(self) -> tuple[int, int]:
        return self.margins or Margins(0, self.lines - 1)

    # -- erasing (with the background colour, as xterm does) ------------------------

    def erase_in_display(self, how: int = 0, *args: Any, **kwargs: Any) -> None:
        fill = self._erase_cell()
        y = self.cursor.y
        if how == 0:
            rows = range(y + 1, self.lines)
        elif how == 1:
            rows = range(y)
        elif how == 2:
            rows = range(self.lines)
        else:
            return  # 3: xterm erases the saved lines, not the screen; viewers keep theirs
        if self.iso_protection:
            for r in rows:
                self._erase_cols(r, range(self.columns), fill)
        else:
            for r in rows:
                self.buffer[r] = self._new_line(fill)
        self.dirty.update(rows)
        if how in (0, 1):
            self.erase_in_line(how)

    def _erase_cols(self, y: int, cols: range, fill: Cell) -> None:
        """Erase columns ``cols`` of row ``y``, sparing ISO-protected cells (SPA/EPA)."""
        line = self.buffer[y]
        spare = self.iso_protection
        for c in cols:
            if not (spare and line.get(c, line.default).protected):
                line[c] = fill
        self.dirty.add(y)

    def erase_in_line(self, how: int = 0, private: bool = False) -> None:
        x = min(self.cursor.x, self.columns - 1)
        fill = self._erase_cell()
        if how == 0:
            cols = range(x, self.columns)
        elif how == 1:
            cols = range(x + 1)
        elif how == 2:
            if not self.iso_protection:
                self.buffer[self.cursor.y] = self._new_line(fill)
                self.dirty.add(self.cursor.y)
                return
            cols = range(self.columns)
        else:
            return
        self._erase_cols(self.cursor.y, cols, fill)

    def erase_characters(self, count: int | None = None) -> None:
        fill = self._erase_cell()
        x = min(self.cursor.x, self.columns - 1)
        self._erase_cols(self.cursor.y, range(x, min(x + (count or 1), self.columns)), fill)

    def start_protected_area(self) -> None:
        """SPA (ESC V): characters written from now on are protected, and until DECSCA or
        DECSTR, ED, EL and ECH spare every protected character (xterm's "ISO" protection
        mode); meanwhile erasing takes the slow path."""
        self.iso_protection = True
        self.protection_used = True
        self.cursor.attrs = self.cursor.attrs._replace(protected=2)

    def end_protected_area(self) -> None:
        """EPA (ESC W)."""
        if self.cursor.attrs.protected == 2:
            self.cursor.attrs = self.cursor.attrs._replace(protected=0)

    # -- tabs ----------------------------------------------------------------------

    def tab_forward(self, count: int = 0) -> None:
        """CHT (CSI n I)."""
        for _ in range(min(count or 1, self.columns)):
            self.tab()

    def tab_backward(self, count: int = 0) -> None:
        """CBT (CSI n Z)."""
        for _ in range(min(count or 1, self.columns)):
            stops = [s for s in self.tabstops if s < self.cursor.x]
            self.cursor.x = max(stops) if stops else 0

    # -- cursor save/restore: one slot, as in xterm (pyte's stack grows without bound) ----

    def _savepoint(self) -> Savepoint:
        return Savepoint(
            copy.copy(self.cursor),
            self.g0_charset,
            self.g1_charset,
            self.charset,
            mo.DECOM in self.mode,
            mo.DECAWM in self.mode,
        )

    def _restore(self, sp: Savepoint) -> None:
        self.g0_charset, self.g1_charset, self.charset = sp.g0_charset, sp.g1_charset, sp.charset
        if sp.origin:  # autowrap is not restored (as xterm)
            self.mode.add(mo.DECOM)
        else:
            self.mode.discard(mo.DECOM)
        hidden = self.cursor.hidden
        self.cursor = copy.copy(sp.cursor)  # type: ignore[assignment]
        self.cursor.hidden = hidden
        self.ensure_hbounds()
        self.cursor.y = min(max(0, self.cursor.y), self.lines - 1)  # margins do not apply

    def save_cursor(self) -> None:
        """DECSC: one slot for each screen (main and alternate), as in xterm."""
        self._saved[self.in_alt] = self._savepoint()

    def restore_cursor(self) -> None:
        sp = self._saved.get(self.in_alt)
        if sp is not None:
            self._restore(sp)
        else:
            self.mode.discard(mo.DECOM)
            self.cursor.attrs = DEFAULT_CELL
            self.cursor_position()

    def set_margins(self, top: int | None = None, bottom: int | None = None) -> None:
        """DECSTBM; 0 means "default" for either margin, and the cursor always goes home."""
        super().set_margins(top or None, bottom or None)
        if not top and not bottom:
            self.cursor_position()

    def scosc(self, *params: int) -> None:
        """CSI s: DECSLRM while DECLRMM is set, else save cursor (without parameters)."""
        if self.declrmm:
            if self.conformance >= 64:
                self.set_lr_margins(*params[:2])
        elif not any(params):
            self.save_cursor()

    # -- bell and title ------------------------------------------------------------

    def bell(self, *args: Any) -> None:
        """Only noted: the terminal reports a run of bells once (see ``Terminal.feed``)."""
        self.rang = True

    def title_modes(self, *modes: int, **kwargs: Any) -> None:
        """CSI > Ps t / CSI > Ps T: titles set (0) and reported (1) in hexadecimal."""
        on = bool(kwargs.get("on"))
        for mode in modes:
            if mode in (0, 1):
                self.title_hex[mode] = on

    def decode_title(self, param: str) -> str:
        """A title as the program sent it: hexadecimal when it asked for that."""
        if self.title_hex[0]:
            try:
                return bytes.fromhex(param).decode("utf-8", "replace")
            except ValueError:
                return param
        return param

    def set_title(self, param: str) -> None:
        title = sanitize_title(self.decode_title(param))
        if title != self.title:
            self.title = title
            self.events.title(title)

    def set_clipboard(self, param: str) -> None:
        """OSC 52 ``Pc;Pd``: the application sets the clipboard to base64 ``Pd``.  A query
        (``?``) is never answered (we would leak a viewer's clipboard); undecodable data
        is ignored; the text goes to the owner, who decides (``ITerminalClipboard``)."""
        _targets, _, data = param.partition(";")
        if data == "?":
            return
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return
        text = raw.decode("utf-8", "replace")
        owner = ITerminalClipboard(self.events, None)
        if text and owner is not None:
            owner.clipboard(text)

    def set_cursor_style(self, style: int = 0) -> None:
        """DECSCUSR (CSI Ps SP q): remembered and reported; the picture keeps its cursor."""
        if 0 <= style <= 6:
            self.cursor_style = style

    def set_attr_change_extent(self, extent: int = 0) -> None:
        """DECSACE (CSI Ps * x): remembered and reported."""
        if 0 <= extent <= 2:
            self.attr_change_extent = extent

    def set_keypad(self, application: bool) -> None:
        """DECKPAM (ESC =) / DECKPNM (ESC >)."""
        self.modes.app_keypad = application

    def set_icon_name(self, param: str) -> None:
        pass

    # -- SGR -----------------------------------------------------------------------

    def sgr(self, params: Sequence[Param]) -> None:
        """SGR with colon sub-parameters, faint, and well-formed colour names only."""
        self.cursor.attrs = apply_sgr(self.cursor.attrs, tuple(params))

    def select_graphic_rendition(self, *attrs: int) -> None:
        self.sgr(attrs)


__all__ = [
    "MAX_COMBINING",
    "MAX_TITLE",
    "TermScreen",
    "sanitize_title",
]
