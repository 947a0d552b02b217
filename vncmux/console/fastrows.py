"""The fast path's pending rows: what a run wrote, kept as operations until it is needed.

A full-screen scroll appends a row instead of moving 24, a write is a (column, text, cell
cache) operation on its row, and a region scroll (LF/IND/RI at a margin, SU, SD, IL, DL)
moves the pending rows alone while the screen records it as damage.  A row of several
operations is laid out in a list first, each operation as a cached run of cells.
:meth:`PendingRows.settle` turns the rows still on screen into line dicts and hands them
over (``TermScreen.apply_run``); rows that scrolled off become cells only when the screen
reports them.  :class:`~vncmux.console.fastpath.FastPath` (the tokens) builds on it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from pyte.screens import StaticDefaultDict
from pyte.screens import wcwidth as _wcwidth
from twisted.logger import Logger

from vncmux.console.cells import well_formed
from vncmux.console.compiled import LOOP
from vncmux.console.textrow import TextRow

if TYPE_CHECKING:
    from vncmux.console.cells import Cell
    from vncmux.console.screen import TermScreen

# Text is taken as far as its characters are one cell wide (all printable ASCII is); a
# character of another width (wide, combining, format) ends the run.
ASCII = frozenset(chr(c) for c in range(0x20, 0x7F))

_MAX_CELLS = 1024  # cells cached per attribute set
_MAX_RUN_CELLS = 4096  # cells kept in runs per attribute set (see ``Attrs.run``) ...
_RUN_CHARS = 80  # ... each of at most this many characters
_MANY_OPS = 32  # operations on one row past which ``_build`` drops those rewritten later

log = Logger()
_first = itemgetter(0)  # (an operation's column ...)
_second = itemgetter(1)  # (... and text, read in C)

# A pending row: [base, op, op, ...].  ``base`` is the row's line dict (changed in place)
# or a Cell: a fresh line of that cell.  An op is (column, text, cells): write
# ``cells[ch]`` for each ``ch`` of ``text`` from ``column`` on.
Row = list[Any]


class Attrs(dict[str, "Cell"]):
    """One attribute set: character -> Cell with these attributes (built on first use),
    plus where each SGR parameter string leads and the cell erasing leaves behind."""

    __slots__ = ("attrs", "fill", "run_cells", "runs", "trans")

    def __init__(self, attrs: Cell) -> None:
        super().__init__()
        self.attrs = attrs
        self.trans: dict[str, Attrs] = {}
        self.fill: Attrs | None = None
        self.runs: dict[str, tuple[Cell, ...]] = {}  # texts -> their cells (``run``) ...
        self.run_cells = 0  # ... holding this many cells in all

    def run(self, text: str) -> tuple[Cell, ...]:
        """The cells of ``text`` in these attributes.  Texts up to a row long are kept: a
        full-screen program writes the same ones (borders, padding, labels, fields that
        did not change, an erased stretch) frame after frame, and a row is then built
        from whole runs, not character by character."""
        cells = self.runs.get(text)
        if cells is None:
            cells = tuple(map(self.__getitem__, text))
            if len(text) <= _RUN_CHARS:
                if self.run_cells + len(text) > _MAX_RUN_CELLS:
                    self.runs.clear()
                    self.run_cells = 0
                self.runs[text] = cells
                self.run_cells += len(text)
        return cells

    def __missing__(self, ch: str) -> Cell:
        # NUL never comes as text: it stands for the right half of a wide character.
        cell = self.attrs._replace(data="" if ch == "\x00" else ch)
        if len(self) < _MAX_CELLS:  # (any number of distinct characters may come)
            self[ch] = cell
        return cell


class PendingRows:
    """The pending rows of a run and their settling, for one screen.

    ``_rows`` is None when nothing is pending; else screen row ``y`` is
    ``_rows[_off + y]`` (None there: the stored row, untouched).  Between a run and
    :meth:`settle` the screen's cursor is current but its ``buffer`` and damage are not.
    """

    def __init__(self, screen: TermScreen) -> None:
        self.screen = screen
        self._rows: list[Row | None] | None = None  # pending rows, None: none pending
        self._off = 0  # pending scrolls: screen row y is self._rows[self._off + y]
        self._since = 0  # characters run since the last settle (bounds pending operations)
        self._reported = 0  # pending rows below this were reported as scrolled off
        self._narrow: set[str] = set(ASCII)  # characters known to be one cell wide
        self._wide: set[str] = set()  # characters known to be two cells wide
        self.compiled = LOOP  # the compiled token loop and row builder, or None: Python's

    @property
    def pending(self) -> bool:
        """True while the screen's buffer and damage lag behind (see :meth:`settle`)."""
        return self._rows is not None

    def _fill(self, st: Attrs) -> Attrs:
        """Erased cells take the colours and reverse of ``st`` (as ``_erase_cell`` does)."""
        if st.fill is None:
            a = st.attrs
            cell = self.screen.default_char
            if a.fg != "default" or a.bg != "default" or a.reverse:
                cell = cell._replace(fg=a.fg, bg=a.bg, reverse=a.reverse)
            st.fill = Attrs(cell)
            st.fill[" "] = cell
        return st.fill

    def _narrow_prefix(self, text: str) -> str:
        """The longest prefix of ``text`` whose characters are all one cell wide (as the
        slow path's ``draw`` sees them: pyte's cached ``wcwidth`` is 1)."""
        narrow = self._narrow
        for i, ch in enumerate(text):
            if ch not in narrow:
                if _wcwidth(ch) != 1:
                    return text[:i]
                if len(narrow) > 65536:
                    narrow.intersection_update(ASCII)
                narrow.add(ch)
        return text

    def _scroll(
        self, rows: list[Row | None], off: int, top: int, bottom: int, count: int, off_top: bool
    ) -> Any:
        """Rows ``top..bottom`` move up by ``count`` (negative: down), blank rows coming in,
        on the pending rows alone, as ``TermScreen.scroll_region`` would move the stored
        ones: IND/LF at the bottom margin, RI at the top, SU, SD, and IL/DL (from the
        cursor's row).  A stored row in the band becomes a pending row holding its line,
        unchanged (a *moved* row), and the screen records the scroll as damage
        (``TermScreen.note_scroll``) without moving its stored rows; :meth:`settle` puts
        the moved rows in place.  ``off_top``: rows leaving the top leave the screen (LF,
        IND, SU), reported as they are when they are the main screen's top rows.  Only
        when the screen has scrolled as a whole in this run is everything settled first.
        Returns the pending rows (the scroll count is 0 afterwards)."""
        s = self.screen
        height = bottom - top + 1
        n = count if count > 0 else -count
        if n > height:
            n = height
        if n == 0:
            return rows
        if off:
            self._rows, self._off = rows, off
            self.settle()
            rows = [None] * s.lines
        if count > 0 and off_top and top == 0 and s.reports_scrolled_off:
            cells = self._cells
            s.scrolled_off([cells(rows[a], a) for a in range(n)])
        blank = s.default_char
        seg = rows[top : bottom + 1]
        if None in seg:  # (the band's first scroll in this run)
            stored = s.stored_line
            for i, row in enumerate(seg):
                if row is None:
                    line = stored(top + i)
                    seg[i] = [StaticDefaultDict(blank) if line is None else line]
            rows[top : bottom + 1] = seg
        # Rows coming in are fresh rows of blanks (``[cell]``, as ``_erase`` leaves them):
        # built, and marked, at settle like any written row.
        if count > 0:
            if n == 1:  # (a line feed at the bottom margin: the common case)
                del rows[top]
                rows.insert(bottom, [blank])
            else:
                rows[top : bottom + 1] = seg[n:] + [[blank] for _ in range(n)]
            s.note_scroll(top, bottom, n)
        else:
            if n == 1:
                del rows[bottom]
                rows.insert(top, [blank])
            else:
                rows[top : bottom + 1] = [[blank] for _ in range(n)] + seg[: height - n]
            s.note_scroll(top, bottom, -n)
        return rows

    def _wrapped(
        self,
        t: str,
        x: int,
        y: int,
        off: int,
        rows: list[Row | None],
        st: Attrs,
        wrap: bool,
        full: bool,
    ) -> tuple[int, int, int, list[Row | None]]:
        """Text of one-cell characters, as pyte's ``draw`` places it (the run itself writes
        plain text that fits on the cursor's row): up to the right edge, then on the next
        rows (autowrap: scrolling the screen, or the region at its bottom margin) or,
        without autowrap, its last character over the last column.  Returns the new x, y,
        scroll count and rows."""
        s = self.screen
        cols, last = s.columns, s.lines - 1
        top, bottom = s.margins or (0, last)
        n = len(t)
        p = 0
        while p < n:
            if x >= cols:
                if wrap:
                    x = 0
                    if y == bottom:
                        if full:
                            off += 1
                            rows.append(None)
                        else:
                            rows = self._scroll(rows, off, top, bottom, 1, True)
                            off = 0
                    elif y < last:
                        y += 1
                else:
                    x = cols - 1
            room = cols - x
            a = off + y
            row = rows[a]
            if row is None:
                row = rows[a] = [self._base(a)]
            if n - p <= room:
                row.append((x, t[p:] if p else t, st))
                x += n - p
                break
            if wrap:
                row.append((x, t[p : p + room], st))
                x = cols
                p += room
            else:  # DECAWM off: the rest overwrites the last column
                row.append((x, t[p : p + room - 1] + t[-1], st))
                x = cols
                break
        return x, y, off, rows

    def _mixed(
        self,
        t: str,
        x: int,
        y: int,
        off: int,
        rows: list[Row | None],
        st: Attrs,
        wrap: bool,
        full: bool = True,
    ) -> tuple[int, int, int, int]:
        """Text with characters two cells wide, as pyte's ``draw`` places them: a wide
        character at the pending-wrap column wraps first, one in the last column is cut
        to its left half, and its right half is a cell with data ``''``.  Stops before a
        character of any other width (and before a wide one without autowrap, an edge
        pyte handles oddly, and before a wrap that scrolls a region: ``full`` False);
        returns the new x, y, scroll count and characters used."""
        s = self.screen
        cols, last = s.columns, s.lines - 1
        bottom = s.margins.bottom if s.margins is not None else last
        narrow, wide = self._narrow, self._wide
        for i, c in enumerate(t):
            if c in narrow:
                w = 1
            elif c in wide:
                w = 2
            else:
                w = _wcwidth(c)
                if w == 1:
                    self._narrow_prefix(c)  # remembers it
                elif w == 2 and len(wide) < 65536:
                    wide.add(c)
                elif w != 2:
                    return x, y, off, i
            if x >= cols:
                if wrap:
                    if y == bottom:
                        if not full:
                            return x, y, off, i
                        off += 1
                        rows.append(None)
                    elif y < last:
                        y += 1
                    x = 0
                elif w == 2:
                    return x, y, off, i
                else:
                    x = cols - 1
            a = off + y
            row = rows[a]
            if row is None:
                row = rows[a] = [self._base(a)]
            if w == 1:
                row.append((x, c, st))
                x += 1
            else:
                row.append((x, c + "\x00" if x + 1 < cols else c, st))
                x = min(x + 2, cols)
        return x, y, off, len(t)

    def _erase(
        self, final: str, how: int, x: int, y: int, st: Attrs, rows: list[Row | None], off: int
    ) -> int:
        """ED / EL on the pending rows, as ``_Screen.erase_in_display`` / ``_in_line``."""
        lines = self.screen.lines
        cols = self.screen.columns
        fill = st.fill if st.fill is not None else self._fill(st)
        blank = fill[" "]
        if final == "J":
            if how == 0:
                cleared = range(y + 1, lines)
            elif how == 1:
                cleared = range(y)
            elif how == 2:
                cleared = range(lines)
            else:
                return off  # 3 erases the saved lines only (as the slow path)
            for r in cleared:
                rows[off + r] = [blank]
            if how >= 2:
                return off
        a = off + y
        if how == 2:
            rows[a] = [blank]
        elif how == 0 or how == 1:
            row = rows[a]
            if row is None:
                row = rows[a] = [self._base(a)]
            xx = min(x, cols - 1)
            if how == 0:
                row.append((xx, " " * (cols - xx), fill))
            else:
                row.append((0, " " * (xx + 1), fill))
        return off

    def _base(self, a: int) -> Any:
        """What pending row ``a`` starts from: the original line, or a fresh one."""
        if a < self.screen.lines:
            line = self.screen.stored_line(a)
            if line is not None:
                return line
        return self.screen.default_char

    # -- settling --------------------------------------------------------------------

    def settle(self) -> None:
        """Hand everything run so far to the screen (:meth:`TermScreen.apply_run`).

        Every pending row still on screen becomes a line dict, and the scrolls are one
        scroll of their total.  The rows that scrolled off become lists of cells only when
        the screen reports them (the main screen, with a listener).
        """
        rows = self._rows
        if rows is None:
            return
        off = self._off
        self._rows = None
        self._off = 0
        self._since = 0
        self._report(rows, off)
        self._reported = 0
        build = self._build
        lines = {}
        moved = {}
        for r, row in enumerate(rows[off:]):
            if row is not None:
                if len(row) == 1 and row[0].__class__ is StaticDefaultDict:
                    moved[r] = row[0]  # (only a region scroll leaves a row so: moved)
                else:
                    lines[r] = build(row)
        self.screen.apply_run(off, lines, moved)

    def _settle_row(self, rows: list[Row | None], y: int) -> None:
        """Hand pending row ``y`` alone to the screen (no whole-screen scroll may be
        pending), for an edit of that row only; the others stay pending."""
        row = rows[y]
        if row is not None:
            rows[y] = None
            if len(row) == 1 and row[0].__class__ is StaticDefaultDict:
                self.screen.apply_run(0, {}, {y: row[0]})  # (a row that only moved)
            else:
                self.screen.apply_run(0, {y: self._build(row)})

    def report_scrolled_off(self) -> None:
        """Report the rows run so far scrolled off the top, without settling the rest (the
        terminal calls this after each feed, so a scrollback is never behind)."""
        if self._rows is not None:
            self._report(self._rows, self._off)

    def _report(self, rows: list[Row | None], off: int) -> None:
        start = self._reported
        if off > start and self.screen.reports_scrolled_off:
            cells = self._cells
            self.screen.scrolled_off([cells(rows[a], a) for a in range(start, off)])
            rows[start:off] = [None] * (off - start)  # (never read again: free the memory)
        self._reported = off

    def _cells(self, row: Row | None, a: int) -> Sequence[Any]:
        """The well-formed cells of a pending row that scrolled off (never stored as a
        line); tidied (``well_formed``) only where a wide character may have been cut."""
        cols = self.screen.columns
        base = self._base(a) if row is None else row[0]
        cells: list[Any]
        if base.__class__ is StaticDefaultDict:
            cells = list(map(base.get, range(cols), itertools.repeat(base.default, cols)))
            tidy = True
        elif row is not None and len(row) == 2 and row[1][0] == 0:
            # The common case: a fresh row written once from its start (a log line).
            _, text, attrs = row[1]
            if text.isascii() and base.data.isascii() and len(text) <= cols:
                return TextRow(text, attrs, base, cols)  # cells made only if looked at
            cells = list(map(attrs.__getitem__, text))
            cells += [base] * (cols - len(cells))
            return well_formed(cells)
        else:
            cells = [base] * cols
            tidy = not base.data.isascii()
        if row is not None:
            for i in range(1, len(row)):
                x, text, attrs = row[i]
                cells[x : x + len(text)] = map(attrs.__getitem__, text)
                tidy = tidy or not text.isascii()
        return well_formed(cells) if tidy else cells

    def _build(self, row: Row) -> Any:
        """The line dict of a pending row: its base with its operations applied.

        A few operations go straight into the line.  More are laid out in a list first,
        each as a run of cells (:meth:`Attrs.run`), later ones over earlier ones, and the
        list goes into the line in one C-level pass.  A full-screen program rewrites the
        same fields again and again (htop: frame after frame between two settles), so
        with many operations each one followed by another on exactly the same columns
        is dropped first.  (Walking back to skip operations covered by later ones cost
        more than laying them all out: the check is about as dear as the copy.)
        """
        if self.compiled is not None:
            built = self.compiled.build(self.screen.columns, StaticDefaultDict, row)
            if built is not None:  # (None: an operation past the last column, built below)
                return built
        base = row[0]
        line = base if isinstance(base, dict) else StaticDefaultDict(base)
        if len(row) <= 5:
            for i in range(1, len(row)):
                x, text, cells = row[i]
                if len(text) == 1:
                    line[x] = cells[text]
                else:
                    line.update(zip(range(x, x + len(text)), cells.run(text)))
            return line
        live = row[1:]
        if len(live) > _MANY_OPS:
            # The last operation on each exact span of columns, in order (in C: a dict
            # keyed by the columns, later ones replacing earlier ones).
            spans = zip(map(_first, live), map(len, map(_second, live)))
            last = dict(zip(spans, range(len(live))))
            live = list(map(live.__getitem__, sorted(last.values())))
        buf: list[Any] = [None] * self.screen.columns
        for x, text, cells in live:
            run = cells.runs.get(text)  # (``Attrs.run``'s cache, read inline)
            buf[x : x + len(text)] = run if run is not None else cells.run(text)
        line.update(itertools.compress(enumerate(buf), buf))
        return line


__all__ = ["ASCII", "Attrs", "PendingRows", "Row"]
