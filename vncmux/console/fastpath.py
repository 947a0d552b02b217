"""The terminal's fast path: common output interpreted without pyte's per-character draw.

pyte's ``Screen.draw`` costs a width lookup, a translate and a namedtuple ``_replace`` per
character, and every line feed at the bottom moves 24 rows; that caps the console near
1 MB/s.  Most console output is plain or coloured text lines and full-screen redraws, made
of a handful of tokens: text of one- and two-cell characters, CR, LF, BS, TAB, SGR, CUP,
EL, ED, REP, cursor show/hide, BEL (a run of them is one token) and the C0 controls that
do nothing.  :class:`FastPath`
consumes a maximal run of exactly those tokens in one call
and gives the *same* screen as the slow path (cells with their attributes, cursor
including the pending-wrap column, modes, last character for REP, and damage with the
same effect), only faster:

  - rows are kept in a local list ("pending rows"); a line feed at the bottom appends a
    row instead of moving 24, and writes are recorded as (column, text, cell cache)
    operations.  They are turned into cells only when someone needs the screen
    (:meth:`FastPath.settle`: the slow path, a read of the lines, the damage, a resize),
    and only for the rows still on screen, so a burst of 1000 lines builds the line dicts
    of the last 24 only (the rows that scrolled off become plain lists of cells, and only
    when the screen reports them: :meth:`FastPath.report_scrolled_off`);
  - cells come from a cache per attribute set, and SGR moves between attribute sets
    through a per-set transition table keyed by the parameter string;
  - the scrolls are recorded as one scroll of their total (a scroll of at least the
    screen height marks every row), which has the same effect as one scroll per line.

The fast path never writes the screen's rows or damage itself: it reads rows with
``TermScreen.stored_line`` and hands over what it ran with ``TermScreen.apply_run`` and
``TermScreen.scrolled_off``; the cursor, attributes and last character it keeps current.

Anything else (zero-width characters, other controls and sequences, sequences split across
chunks) ends the run and is left to the slow path (which settles first), and so is every
state the fast path does not model: scroll margins, origin mode, insert mode, a
non-ASCII character set.
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pyte import modes as mo
from pyte.charsets import LAT1_MAP
from pyte.screens import StaticDefaultDict
from pyte.screens import wcwidth as _wcwidth
from twisted.logger import Logger

from vncmux.console.cells import well_formed
from vncmux.console.textrow import TextRow

if TYPE_CHECKING:
    from vncmux.console.cells import Cell
    from vncmux.console.screen import TermScreen

# One token per match; ``lastindex`` tells which.  Only complete sequences: a sequence split
# across chunks does not match and goes to the slow path's state machine.
_TOKEN = re.compile(
    "([^\x00-\x1f\x7f-\x9f]+)(\r\n)?"  # 1: text, 2: followed by CR LF
    "|(\r\n)"  # 3: CR LF
    "|(\r)"  # 4: CR
    "|([\n\x0b\x0c])"  # 5: LF, VT, FF (all line feeds)
    "|\x1b\\[([0-9;:]*)m([^\x00-\x1f\x7f-\x9f]*)"  # 6: SGR, 7: text after it (or '')
    "|(\x08)"  # 8: BS
    "|(\t)"  # 9: HT
    "|\x1b\\[([0-9;:]*)([HfKJ])"  # 10, 11: CUP, EL, ED
    "|\x1b\\[\\?25([hl])"  # 12: cursor shown / hidden (DECTCEM)
    "|\x1b\\[([0-9;:]*)b"  # 13: REP (repeat the last character)
    "|([\x00-\x06\x10-\x1a\x1c-\x1f\x7f]+)"  # 14: C0 controls that do nothing here
    "|(\x07+)"  # 15: BEL (a run of them rings once)
)

# Text is taken as far as its characters are one cell wide (all printable ASCII is); a
# character of another width (wide, combining, format) ends the run.
_ASCII = frozenset(chr(c) for c in range(0x20, 0x7F))

log = Logger()

_MAX_STATES = 512  # attribute sets kept (truecolour output can make very many)
_MAX_TRANS = 64  # SGR transitions kept per attribute set
_MAX_CELLS = 1024  # cells cached per attribute set
_MAX_PENDING = 4096  # pending rows before they are settled anyway (bounds memory) ...
_MAX_PENDING_CHARS = 256 * 1024  # ... and characters (bounds the pending operations)

# A pending row: [base, op, op, ...].  ``base`` is the row's line dict (changed in place)
# or a Cell: a fresh line of that cell.  An op is (column, text, cells): write
# ``cells[ch]`` for each ``ch`` of ``text`` from ``column`` on.
_Row = list[Any]


class _Attrs(dict[str, "Cell"]):
    """One attribute set: character -> Cell with these attributes (built on first use),
    plus where each SGR parameter string leads and the cell erasing leaves behind."""

    __slots__ = ("attrs", "fill", "trans")

    def __init__(self, attrs: Cell) -> None:
        super().__init__()
        self.attrs = attrs
        self.trans: dict[str, _Attrs] = {}
        self.fill: _Attrs | None = None

    def __missing__(self, ch: str) -> Cell:
        # NUL never comes as text: it stands for the right half of a wide character.
        cell = self.attrs._replace(data="" if ch == "\x00" else ch)
        if len(self) < _MAX_CELLS:  # (any number of distinct characters may come)
            self[ch] = cell
        return cell


class FastPath:
    """Interprets runs of common tokens for a :class:`~vncmux.console.screen.TermScreen`.

    ``apply_sgr`` and ``parse_params`` are the slow path's own (pure, cached) functions, so
    both paths agree on every parameter by construction.  Between :meth:`run` and
    :meth:`settle` the screen's cursor is current but its ``buffer`` and damage are not:
    whoever reads those must call :meth:`settle` first.
    """

    def __init__(
        self,
        screen: TermScreen,
        apply_sgr: Callable[[Cell, tuple[Any, ...]], Cell],
        parse_params: Callable[[str], tuple[str, tuple[Any, ...]] | None],
    ) -> None:
        self.screen = screen
        self._apply_sgr = apply_sgr
        self._parse_params = parse_params
        self._states: dict[Cell, _Attrs] = {}
        self._ints: dict[str, list[int] | None] = {}
        self._rows: list[_Row | None] | None = None  # pending rows, None: none pending
        self._off = 0  # pending scrolls: screen row y is self._rows[self._off + y]
        self._since = 0  # characters run since the last settle (bounds pending operations)
        self._reported = 0  # pending rows below this were reported as scrolled off
        self._narrow: set[str] = set(_ASCII)  # characters known to be one cell wide
        self._wide: set[str] = set()  # characters known to be two cells wide

    # -- caches ----------------------------------------------------------------------

    def _state(self, attrs: Cell) -> _Attrs:
        st = self._states.get(attrs)
        if st is None:
            if len(self._states) >= _MAX_STATES:
                self._states.clear()
            st = self._states[attrs] = _Attrs(attrs)
        return st

    def _after_sgr(self, st: _Attrs, params: str) -> _Attrs:
        parsed = self._parse_params(params)
        attrs = st.attrs if parsed is None else self._apply_sgr(st.attrs, tuple(parsed[1]))
        nxt = self._state(attrs)
        if len(st.trans) >= _MAX_TRANS:
            st.trans.clear()
        st.trans[params] = nxt
        return nxt

    def _fill(self, st: _Attrs) -> _Attrs:
        """Erased cells take the colours and reverse of ``st`` (as ``_erase_cell`` does)."""
        if st.fill is None:
            a = st.attrs
            cell = self.screen.default_char
            if a.fg != "default" or a.bg != "default" or a.reverse:
                cell = cell._replace(fg=a.fg, bg=a.bg, reverse=a.reverse)
            st.fill = _Attrs(cell)
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
                    narrow.intersection_update(_ASCII)
                narrow.add(ch)
        return text

    def _params(self, params: str) -> list[int] | None:
        """Integer parameters exactly as the slow path's ``_csi`` computes them."""
        try:
            return self._ints[params]
        except KeyError:
            pass
        parsed = self._parse_params(params)
        ints = (
            None
            if parsed is None
            else [(p[0] if isinstance(p, tuple) else p) or 0 for p in parsed[1]]
        )
        if len(self._ints) >= 4 * _MAX_STATES:
            self._ints.clear()
        self._ints[params] = ints
        return ints

    # -- the run ---------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        """True while the screen's buffer and damage lag behind (see :meth:`settle`)."""
        return self._rows is not None

    def usable(self) -> bool:
        """True when the screen is in a state the fast path models exactly."""
        s = self.screen
        mode = s.mode
        return (
            s.margins is None
            and s.lr_margins is None
            and not s.reverse_wrap
            and not s.iso_protection
            and mo.IRM not in mode
            and mo.DECOM not in mode
            and (s.g1_charset if s.charset else s.g0_charset) is LAT1_MAP
        )

    def run(self, data: str, start: int) -> int:
        """Interpret the longest run of fast tokens at ``data[start:]``; returns its end
        (``start`` when there is none, or when the screen's state needs the slow path)."""
        # ``scanner().match`` matches token after token, each where the previous ended:
        # the cheapest tokenizer loop CPython's ``re`` has (undocumented, but in ``sre``
        # since Python 2 and what ``re.Scanner`` is built on).
        scanner = _TOKEN.scanner(data, start)  # type: ignore[attr-defined]
        match = scanner.match
        m = match()
        if m is None or not self.usable():
            return start
        s = self.screen
        cols, lines = s.columns, s.lines
        last = lines - 1
        cursor = s.cursor
        x, y = cursor.x, cursor.y
        st = self._state(cursor.attrs)
        mode = s.mode
        wrap = mo.DECAWM in mode
        lnm = mo.LNM in mode
        stored = s.stored_line
        default = s.default_char
        rows = self._rows
        if rows is None:
            rows = [None] * lines  # None: the original row, untouched
        off = self._off
        last_text = ""
        end = start
        narrow = self._narrow

        try:
            while m is not None:
                end = m.end()
                k = m.lastindex
                if k == 1 or k == 2 or k == 7 or k == 13:
                    if k == 7:  # SGR, then maybe text (group 7 always takes part)
                        params, t = m.group(6, 7)
                        nxt = st.trans.get(params)
                        st = nxt if nxt is not None else self._after_sgr(st, params)
                    elif k == 13:  # REP: at most a screenful, as ``_Screen.repeat_last``
                        ints = self._params(m.group(13))
                        ch = last_text[-1] if last_text else s.last_char
                        if ints is None:
                            t = ""
                        elif ch in narrow or self._narrow_prefix(ch):
                            t = ch * min((ints[0] if ints else 0) or 1, cols * lines)
                        else:
                            end = m.start()
                            break
                    else:
                        t = m.group(1)
                    if t and not (t.isascii() or narrow.issuperset(t)):
                        # Wide characters, or one the slow path must draw: character by
                        # character, stopping before the first of the latter.
                        x, y, off, used = self._mixed(t, x, y, off, rows, st, wrap)
                        if used:
                            last_text = t[:used]
                        if used < len(t):
                            end = m.start(7 if k == 7 else 1) + used
                            k = 0
                        t = ""
                    if t:
                        last_text = t
                        n = len(t)
                        if x + n <= cols:  # the common case: it fits on the row
                            a = off + y
                            row = rows[a]
                            if row is None:
                                if a < lines:
                                    line = stored(a)
                                    row = rows[a] = [default if line is None else line]
                                else:
                                    row = rows[a] = [default]
                            row.append((x, t, st))
                            x += n
                        else:
                            p = 0
                            while p < n:
                                if x >= cols:
                                    if wrap:
                                        x = 0
                                        if y == last:
                                            off += 1
                                            rows.append(None)
                                        else:
                                            y += 1
                                    else:
                                        x = cols - 1
                                room = cols - x
                                a = off + y
                                row = rows[a]
                                if row is None:
                                    if a < lines:
                                        line = stored(a)
                                        row = rows[a] = [default if line is None else line]
                                    else:
                                        row = rows[a] = [default]
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
                    if k == 2:
                        x = 0
                        if y == last:
                            off += 1
                            rows.append(None)
                        else:
                            y += 1
                    elif k == 0:
                        break
                elif k == 3 or k == 5:  # (CR) LF
                    if k == 3 or lnm:
                        x = 0
                    if y == last:
                        off += 1
                        rows.append(None)
                    else:
                        y += 1
                elif k == 4:
                    x = 0
                elif k == 8:  # BS (from the pending-wrap column it goes back two)
                    if x == cols:
                        x -= 1
                    x = min(max(0, x - 1), cols - 1)
                elif k == 9:  # HT
                    stops = sorted(s.tabstops)
                    i = bisect_right(stops, x)
                    x = stops[i] if i < len(stops) else cols - 1
                elif k == 11:
                    final = m.group(11)
                    ints = self._params(m.group(10))
                    if ints is None:
                        pass
                    elif final == "H" or final == "f":
                        row_n = (ints[0] if ints else 0) or 1
                        col_n = (ints[1] if len(ints) > 1 else 0) or 1
                        x = min(max(0, col_n - 1), cols - 1)
                        y = min(max(0, row_n - 1), last)
                    else:
                        off = self._erase(final, ints[0] if ints else 0, x, y, st, rows, off)
                elif k == 12:  # DECTCEM
                    if m.group(12) == "h":
                        s.set_mode(25, private=True)
                    else:
                        s.reset_mode(25, private=True)
                elif k == 15:
                    s.bell()
                # k == 14: ignored controls (CAN and SUB only abort sequences: none here)
                m = match()
        except Exception:  # noqa: BLE001 -- as the slow path: drop that token alone
            log.failure("Terminal fast path: dropped a token that failed")
            end = m.end() if m is not None else end

        cursor.x, cursor.y = x, y
        cursor.attrs = st.attrs
        if last_text:
            s.last_char = last_text[-1]
        self._rows = rows
        self._off = off
        self._since += end - start
        if len(rows) > _MAX_PENDING or self._since > _MAX_PENDING_CHARS:
            self.settle()
        return end

    def _mixed(
        self, t: str, x: int, y: int, off: int, rows: list[_Row | None], st: _Attrs, wrap: bool
    ) -> tuple[int, int, int, int]:
        """Text with characters two cells wide, as pyte's ``draw`` places them: a wide
        character at the pending-wrap column wraps first, one in the last column is cut
        to its left half, and its right half is a cell with data ``''``.  Stops before a
        character of any other width (and before a wide one without autowrap, an edge
        pyte handles oddly); returns the new x, y, scroll count and characters used."""
        s = self.screen
        cols, last = s.columns, s.lines - 1
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
                    x = 0
                    if y == last:
                        off += 1
                        rows.append(None)
                    else:
                        y += 1
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
        self, final: str, how: int, x: int, y: int, st: _Attrs, rows: list[_Row | None], off: int
    ) -> int:
        """ED / EL on the pending rows, as ``_Screen.erase_in_display`` / ``_in_line``."""
        lines = self.screen.lines
        cols = self.screen.columns
        fill = self._fill(st)
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
        lines = {r: build(row) for r, row in enumerate(rows[off:]) if row is not None}
        self.screen.apply_run(off, lines)

    def report_scrolled_off(self) -> None:
        """Report the rows run so far scrolled off the top, without settling the rest (the
        terminal calls this after each feed, so a scrollback is never behind)."""
        if self._rows is not None:
            self._report(self._rows, self._off)

    def _report(self, rows: list[_Row | None], off: int) -> None:
        start = self._reported
        if off > start and self.screen.reports_scrolled_off:
            cells = self._cells
            self.screen.scrolled_off([cells(rows[a], a) for a in range(start, off)])
            rows[start:off] = [None] * (off - start)  # (never read again: free the memory)
        self._reported = off

    def _cells(self, row: _Row | None, a: int) -> Sequence[Any]:
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

    def _build(self, row: _Row) -> Any:
        """The line dict of a pending row: its base with the live operations applied.

        A full-screen program rewrites the same rows again and again; operations that later
        ones cover completely are skipped: walking back from the last one, ``lo`` is where
        the contiguous covered stretch up to the right edge begins, and once it reaches
        column 0 nothing before matters.
        """
        base = row[0]
        line = base if isinstance(base, dict) else StaticDefaultDict(base)
        first = 1
        if len(row) > 3:
            lo = self.screen.columns
            for i in range(len(row) - 1, 0, -1):
                x, text, _ = row[i]
                if x <= lo <= x + len(text):
                    lo = x
                    if lo == 0:
                        first = i
                        break
        for i in range(first, len(row)):
            x, text, cells = row[i]
            if len(text) == 1:
                line[x] = cells[text]
            else:
                line.update(zip(range(x, x + len(text)), map(cells.__getitem__, text)))
        return line


__all__ = ["FastPath"]
