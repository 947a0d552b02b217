"""Margin-aware cursor movement and editing, as xterm does it.

pyte knows only top and bottom margins, and clamps every vertical move to them even when
the cursor starts outside the scroll region.  This room holds what xterm does instead:
left and right margins (DECSLRM, enabled by DECLRMM), moves that stop at a margin only
when they start inside it, NEL, insert/delete of characters, lines and columns within the
margins, DECBI/DECFI, selective erase of unprotected cells (DECSCA, DECSED, DECSEL,
DECSERA) and the VT420 rectangle operations (DECFRA, DECERA, DECCRA).

:class:`EditingMixin` is part of :class:`~vncmux.console.screen.TermScreen`.  Everything
here works on bounded ranges of the screen (counts are clamped to its size), and none of
it is on the fast path: the fast path falls back whenever left/right margins are set.
"""

from __future__ import annotations

from pyte import modes as mo
from pyte.screens import Margins, StaticDefaultDict

from vncmux.console.cells import Cell
from vncmux.console.screenbase import ScreenBase

Box = tuple[int, int, int, int]  # top, left, bottom, right (0-based, inclusive)
MORE_FIX = (True, 41)  # xterm's "more(1) fix" mode's key in ``other_modes`` (see ``tab``)


class EditingMixin(ScreenBase):
    """Cursor moves and edits that honour all four margins."""

    def _init_editing(self) -> None:
        self.declrmm = False  # DECLRMM (mode 69): DECSLRM allowed, left/right margins on
        self.lr_margins: tuple[int, int] | None = None
        self.lr_wrap_at: tuple[int, int] | None = None  # (y, x) of a wrap due at the margin
        self.reverse_wrap = False  # mode 45 (or 1045): BS at the left edge goes up a line
        self.protection_used = False  # a protected character may be on the screen

    # -- margins -----------------------------------------------------------------------

    def lr_region(self) -> tuple[int, int] | None:
        """The left and right margins in force (0-based), or None."""
        return self.lr_margins if self.declrmm else None

    def _columns_at(self, x: int) -> tuple[int, int]:
        """The columns a horizontal edit at ``x`` may touch: the margins if ``x`` is
        inside them, else the whole row."""
        lr = self.lr_region()
        if lr is not None and lr[0] <= x <= lr[1]:
            return lr
        return 0, self.columns - 1

    def set_lr_margins(self, left: int = 0, right: int = 0) -> None:
        """DECSLRM (CSI Pl ; Pr s, with DECLRMM set); the cursor goes home."""
        left = max(1, left or 1) - 1
        right = min(self.columns, right or self.columns) - 1
        if right <= left:
            return
        self.lr_margins = None if (left, right) == (0, self.columns - 1) else (left, right)
        self.cursor_position()

    def set_lrmm(self, on: bool) -> None:
        self.declrmm = on
        if not on:
            self.lr_margins = None
            self.lr_wrap_at = None

    def _box(self) -> Box:
        """The scroll region as a box: top/bottom margins and left/right margins."""
        top, bottom = self.margins or Margins(0, self.lines - 1)
        left, right = self.lr_region() or (0, self.columns - 1)
        return top, left, bottom, right

    # -- cursor moves ------------------------------------------------------------------

    def _x(self) -> int:
        """The cursor's column, a pending wrap counted on the last column written."""
        x = self.cursor.x
        if x >= self.columns or (self.lr_wrap_at == (self.cursor.y, x) and self.declrmm):
            x -= 1
        return x

    def cursor_up(self, count: int | None = None) -> None:
        top = self.margins.top if self.margins is not None else 0
        y = self.cursor.y
        self.cursor.y = max(y - (count or 1), top if y >= top else 0)
        self.cursor.x = self._x()

    def cursor_down(self, count: int | None = None) -> None:
        bottom = self.margins.bottom if self.margins is not None else self.lines - 1
        y = self.cursor.y
        self.cursor.y = min(y + (count or 1), bottom if y <= bottom else self.lines - 1)
        self.cursor.x = self._x()

    def cursor_forward(self, count: int | None = None) -> None:
        x = self._x()
        lr = self.lr_region()
        right = lr[1] if lr is not None and x <= lr[1] else self.columns - 1
        self.cursor.x = min(x + (count or 1), right)

    def cursor_back(self, count: int | None = None) -> None:
        """CUB; with reverse wraparound (mode 45) and autowrap it goes on up the screen."""
        if self.reverse_wrap and mo.DECAWM in self.mode:
            n = min(count or 1, self.columns * self.lines)
            while n > 0:  # whole runs along a row at a time: O(rows) per CUB
                n -= self._reverse_wrap_step(n)
            return
        x = self._x()
        lr = self.lr_region()
        left = lr[0] if lr is not None and x >= lr[0] else 0
        self.cursor.x = max(x - (count or 1), left)

    def backspace(self) -> None:
        """BS: CUB 1 (see :meth:`cursor_back` for reverse wraparound)."""
        self.cursor_back(1)

    def _reverse_wrap_step(self, n: int) -> int:
        """Up to ``n`` steps left with reverse wraparound: along the row, or from the left
        edge to the right edge of the line above (from the top margin to the bottom one),
        as xterm 379 does.  Returns the steps taken."""
        c = self.cursor
        if c.x >= self.columns or (self.declrmm and self.lr_wrap_at == (c.y, c.x)):
            c.x = self._x()  # a pending wrap is only cancelled
            self.lr_wrap_at = None
            return 1
        lr = self.lr_region()
        left = lr[0] if lr is not None and c.x >= lr[0] else 0
        if c.x != left:
            steps = min(n, c.x - left)
            c.x -= steps
            return steps
        top, bottom = self.margins or Margins(0, self.lines - 1)
        if c.y == top:
            c.y = bottom
        elif c.y > 0:
            c.y -= 1
        c.x = lr[1] if lr is not None else self.columns - 1
        return 1

    def tab(self) -> None:
        """HT: to the next tab stop, stopping at the right margin when inside it.

        A tab right after a character written in the last column leaves the cursor where
        it is, the wrap still pending (as xterm; pyte moves it back onto the last cell, so
        that the next character overwrote it).  With xterm's "more(1) fix" (DEC mode 41)
        it wraps first, as a character would: ``more`` writes a line exactly as wide as the
        screen and then one that begins with a tab.  (The fast path leaves that to this
        method.)
        """
        lr = self.lr_region()
        if lr is None:
            if self.cursor.x >= self.columns:
                if not (self.other_modes.get(MORE_FIX, False) and mo.DECAWM in self.mode):
                    return
                self.carriage_return()
                self.linefeed()
            super().tab()  # pyte's, which the fast path reproduces exactly
            return
        x = self.cursor.x
        right = lr[1] if lr is not None and x <= lr[1] else self.columns - 1
        stops = [s for s in self.tabstops if s > x]
        self.cursor.x = min(min(stops), right) if stops else right

    def carriage_return(self) -> None:
        lr = self.lr_region()
        x = self.cursor.x
        self.cursor.x = lr[0] if lr is not None and x >= lr[0] else 0

    def cursor_position(self, line: int | None = None, column: int | None = None) -> None:
        """CUP/HVP; in origin mode relative to (and kept inside) the margins."""
        y, x = (line or 1) - 1, (column or 1) - 1
        top, bottom, left, right = 0, self.lines - 1, 0, self.columns - 1
        if mo.DECOM in self.mode:
            if self.margins is not None:
                top, bottom = self.margins
            lr = self.lr_region()
            if lr is not None:
                left, right = lr
        self.cursor.y = min(top + y, bottom)
        self.cursor.x = min(left + x, right)

    def cursor_to_column(self, column: int | None = None) -> None:
        """CHA/HPA; in origin mode relative to the left margin."""
        x = (column or 1) - 1
        left, right = 0, self.columns - 1
        lr = self.lr_region()
        if mo.DECOM in self.mode and lr is not None:
            left, right = lr
        self.cursor.x = min(left + x, right)

    def cursor_to_line(self, line: int | None = None) -> None:
        """VPA; in origin mode relative to the top margin."""
        y = (line or 1) - 1
        top, bottom = 0, self.lines - 1
        if mo.DECOM in self.mode and self.margins is not None:
            top, bottom = self.margins
        self.cursor.y = min(top + y, bottom)
        self.cursor.x = self._x()

    def cursor_forward_rows(self, count: int | None = None) -> None:
        """VPR (CSI n e): down, stopping at the last row only."""
        self.cursor.y = min(self.cursor.y + (count or 1), self.lines - 1)
        self.cursor.x = self._x()

    def cursor_forward_columns(self, count: int | None = None) -> None:
        """HPR (CSI n a): right, stopping at the last column only."""
        self.cursor.x = min(self._x() + (count or 1), self.columns - 1)

    def next_line(self) -> None:
        """NEL (ESC E): index, then to the left margin."""
        self.index()
        self.carriage_return()

    def cursor_down1(self, count: int | None = None) -> None:
        self.cursor_down(count)
        self.carriage_return()

    def cursor_up1(self, count: int | None = None) -> None:
        self.cursor_up(count)
        self.carriage_return()

    # -- text within left/right margins ---------------------------------------------------

    def draw_in_margins(self, data: str) -> None:
        """Draw with left/right margins in force: a line wraps from the right margin to the
        left one (and the region scrolls there).  One cell per character; slow, and only
        used while DECLRMM margins are set."""
        data = data.translate(self.g1_charset if self.charset else self.g0_charset)
        c = self.cursor
        for ch in data:
            left, right = self._columns_at(self._x())
            if self.lr_wrap_at == (c.y, c.x) or c.x >= self.columns:
                self.lr_wrap_at = None
                if mo.DECAWM in self.mode:
                    c.x = left
                    self.index()
                else:
                    c.x = right
            if mo.IRM in self.mode:
                self.insert_characters(1)
            line = self.buffer[c.y]
            line[c.x] = c.attrs._replace(data=ch)
            self.dirty.add(c.y)
            self.last_char = ch
            if c.x == right:
                c.x = right + 1
                self.lr_wrap_at = (c.y, c.x) if right + 1 < self.columns else None
            else:
                c.x += 1

    # -- moving rectangles -------------------------------------------------------------------

    def _cells(self, y: int, left: int, right: int) -> list[Cell]:
        line = self.buffer.get(y)
        if line is None:
            return [self.default_char] * (right - left + 1)
        return [line.get(x, line.default) for x in range(left, right + 1)]

    def _put(self, y: int, left: int, cells: list[Cell]) -> None:
        line = self.buffer[y]
        for i, cell in enumerate(cells):
            line[left + i] = cell
        self.dirty.add(y)

    def scroll_box(self, box: Box, count: int, scrolls_off: bool = False) -> None:
        """Move the rows of ``box`` up by ``count`` (negative: down), blank rows coming in;
        only the box's columns move.  A full-width box is a scroll of the screen (see
        ``scroll_region`` for ``scrolls_off``)."""
        top, left, bottom, right = box
        if left == 0 and right == self.columns - 1:
            self.scroll_region(top, bottom, count, scrolls_off=scrolls_off)
            return
        height = bottom - top + 1
        n = min(abs(count), height)
        if n == 0:
            return
        rows = [self._cells(y, left, right) for y in range(top, bottom + 1)]
        blank = [self._erase_cell()] * (right - left + 1)
        moved = rows[n:] + [blank] * n if count > 0 else [blank] * n + rows[:-n]
        for i, cells in enumerate(moved):
            self._put(top + i, left, cells)

    def shift_columns(self, box: Box, x: int, count: int) -> None:
        """In every row of ``box``, move the cells from column ``x`` to the box's right
        edge right by ``count`` (negative: left), blanks coming in."""
        top, left, bottom, right = box
        width = right - x + 1
        n = min(abs(count), width)
        if n <= 0 or not left <= x <= right:
            return
        blank = self._erase_cell()
        for y in range(top, bottom + 1):
            cells = self._cells(y, x, right)
            if count > 0:
                cells = [blank] * n + cells[:-n]
            else:
                cells = cells[n:] + [blank] * n
            self._put(y, x, cells)

    # -- insert / delete -------------------------------------------------------------------

    def insert_characters(self, count: int | None = None) -> None:
        """ICH: blanks at the cursor, the rest of the line (up to the right margin) moves
        right; nothing outside the margins."""
        x = self._x()
        lr = self.lr_region()
        if lr is not None and not lr[0] <= x <= lr[1]:
            return
        right = lr[1] if lr is not None else self.columns - 1
        y = self.cursor.y
        self.shift_columns((y, x, y, right), x, min(count or 1, self.columns))
        self.cursor.x = x

    def delete_characters(self, count: int | None = None) -> None:
        """DCH: the rest of the line (up to the right margin) moves left onto the cursor."""
        x = self._x()
        lr = self.lr_region()
        if lr is not None and not lr[0] <= x <= lr[1]:
            return
        right = lr[1] if lr is not None else self.columns - 1
        y = self.cursor.y
        self.shift_columns((y, x, y, right), x, -min(count or 1, self.columns))
        self.cursor.x = x

    def _lines_edit(self, count: int) -> None:
        top, left, bottom, right = self._box()
        y, x = self.cursor.y, self._x()
        if not (top <= y <= bottom and left <= x <= right):
            return
        self.scroll_box((y, left, bottom, right), count)
        self.cursor.x = left

    def insert_lines(self, count: int | None = None) -> None:
        """IL: within the scroll region and the left/right margins."""
        self._lines_edit(-min(count or 1, self.lines))

    def delete_lines(self, count: int | None = None) -> None:
        """DL: within the scroll region and the left/right margins."""
        self._lines_edit(min(count or 1, self.lines))

    def insert_columns(self, count: int = 0) -> None:
        """DECIC (CSI n ' }): blank columns at the cursor, within the margins."""
        top, left, bottom, right = self._box()
        x = self._x()
        if top <= self.cursor.y <= bottom and left <= x <= right:
            self.shift_columns((top, left, bottom, right), x, min(count or 1, self.columns))

    def delete_columns(self, count: int = 0) -> None:
        """DECDC (CSI n ' ~): columns at the cursor removed, within the margins."""
        top, left, bottom, right = self._box()
        x = self._x()
        if top <= self.cursor.y <= bottom and left <= x <= right:
            self.shift_columns((top, left, bottom, right), x, -min(count or 1, self.columns))

    def back_index(self) -> None:
        """DECBI (ESC 6): left, or at the left margin the region's columns move right."""
        top, left, bottom, right = self._box()
        x = self._x()
        if x == left and top <= self.cursor.y <= bottom:
            self.shift_columns((top, left, bottom, right), left, 1)
        elif x > 0:
            self.cursor.x = x - 1

    def forward_index(self) -> None:
        """DECFI (ESC 9): right, or at the right margin the region's columns move left."""
        top, left, bottom, right = self._box()
        x = self._x()
        if x == right and top <= self.cursor.y <= bottom:
            self.shift_columns((top, left, bottom, right), left, -1)
        elif x < self.columns - 1:
            self.cursor.x = x + 1

    # -- scrolling with left/right margins -----------------------------------------------------

    def index(self) -> None:
        top, left, bottom, right = self._box()
        y = self.cursor.y
        if y == bottom:
            if self.lr_region() is None or left <= self._x() <= right:
                self.scroll_box((top, left, bottom, right), 1, scrolls_off=True)
        elif y < self.lines - 1:
            self.cursor.y = y + 1

    def reverse_index(self) -> None:
        top, left, bottom, right = self._box()
        y = self.cursor.y
        if y == top:
            if self.lr_region() is None or left <= self._x() <= right:
                self.scroll_box((top, left, bottom, right), -1)
        elif y > 0:
            self.cursor.y = y - 1

    def scroll_up(self, count: int = 0) -> None:
        """SU (CSI n S): the region scrolls up, the cursor stays."""
        self.scroll_box(self._box(), min(count or 1, self.lines), scrolls_off=True)

    def scroll_down(self, count: int = 0) -> None:
        """SD (CSI n T): the region scrolls down, the cursor stays."""
        self.scroll_box(self._box(), -min(count or 1, self.lines))

    # -- protection and selective erase -------------------------------------------------------------

    def set_protection(self, mode: int = 0) -> None:
        """DECSCA (CSI Ps " q): 1 protects the characters written from now on."""
        self.cursor.attrs = self.cursor.attrs._replace(protected=1 if mode == 1 else 0)
        self.protection_used = self.protection_used or mode == 1
        self.iso_protection = False  # ED/EL/ECH erase protected characters again

    def _erase_box(self, box: Box, selective: bool, spare_iso: bool = True) -> None:
        """Erase a box with the current background; ``selective``: sparing protected
        characters (those of SPA/EPA too unless ``spare_iso`` is False, as xterm's
        DECSERA).  A whole row becomes one new line (O(1)) when nothing on it can be
        protected, so a flood of erases costs O(rows) each."""
        top, left, bottom, right = box
        kinds = (1, 2) if spare_iso else (1,)
        fill = self._erase_cell()
        spare = selective and self.protection_used
        whole = left == 0 and right == self.columns - 1
        cols = range(left, right + 1)
        for y in range(top, bottom + 1):
            if whole and not spare:
                self.buffer[y] = StaticDefaultDict(fill)
            elif whole and not self.buffer[y].default.protected:
                old = self.buffer[y]
                line = self.buffer[y] = StaticDefaultDict(fill)
                line.update({x: c for x, c in old.items() if c.protected in kinds})
            else:
                line = self.buffer[y]
                for x in cols:
                    if not (spare and line.get(x, line.default).protected in kinds):
                        line[x] = fill
            self.dirty.add(y)

    def selective_erase_in_display(self, how: int = 0, **kwargs: object) -> None:
        """DECSED (CSI ? Ps J): like ED, sparing protected characters."""
        y, x, last = self.cursor.y, self._x(), self.columns - 1
        if how == 0:
            self._erase_box((y, x, y, last), True)
            if y + 1 < self.lines:
                self._erase_box((y + 1, 0, self.lines - 1, last), True)
        elif how == 1:
            if y > 0:
                self._erase_box((0, 0, y - 1, last), True)
            self._erase_box((y, 0, y, x), True)
        elif how == 2:
            self._erase_box((0, 0, self.lines - 1, last), True)

    def selective_erase_in_line(self, how: int = 0, **kwargs: object) -> None:
        """DECSEL (CSI ? Ps K): like EL, sparing protected characters."""
        y, x, last = self.cursor.y, self._x(), self.columns - 1
        box = {0: (y, x, y, last), 1: (y, 0, y, x), 2: (y, 0, y, last)}.get(how)
        if box is not None:
            self._erase_box(box, True)

    # -- VT420 rectangles -------------------------------------------------------------------

    def fill_rect(self, ch: int = 0, *rect: int) -> None:
        """DECFRA (CSI Pch ; Pt ; Pl ; Pb ; Pr $ x): fill with a character in the current
        attributes (printable characters only)."""
        if not (32 <= ch <= 126 or 160 <= ch <= 255):
            return
        box = self.rect_bounds(rect)
        if box is None:
            return
        top, left, bottom, right = box
        cell = self.cursor.attrs._replace(data=chr(ch))
        for y in range(top, bottom + 1):
            if left == 0 and right == self.columns - 1:
                self.buffer[y] = StaticDefaultDict(cell)  # O(1) for a whole row
                self.dirty.add(y)
            else:
                self._put(y, left, [cell] * (right - left + 1))

    def erase_rect(self, *rect: int) -> None:
        """DECERA (CSI Pt ; Pl ; Pb ; Pr $ z)."""
        box = self.rect_bounds(rect)
        if box is not None:
            self._erase_box(box, False)

    def selective_erase_rect(self, *rect: int) -> None:
        """DECSERA (CSI Pt ; Pl ; Pb ; Pr $ {): sparing DECSCA-protected characters."""
        box = self.rect_bounds(rect)
        if box is not None:
            self._erase_box(box, True, spare_iso=False)

    def copy_rect(self, *params: int) -> None:
        """DECCRA (CSI Pts ; Pls ; Pbs ; Prs ; Pps ; Ptd ; Pld ; Ppd $ v): copy a rectangle
        (one page: the page numbers are ignored), clipped to the screen."""
        p = list(params[:8]) + [0] * (8 - len(params[:8]))
        src = self.rect_bounds(p[0:4])
        if src is None:
            return
        dest = self.rect_bounds([p[5], p[6], 0, 0])
        if dest is None:
            return
        top, left, bottom, right = src
        rows = [self._cells(y, left, right) for y in range(top, bottom + 1)]
        dt, dl, db, dr = dest
        for i, cells in enumerate(rows):
            y = dt + i
            if y > db:
                break
            self._put(y, dl, cells[: dr - dl + 1])


__all__ = ["Box", "EditingMixin"]
