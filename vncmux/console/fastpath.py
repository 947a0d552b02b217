"""The terminal's fast path: common output interpreted without pyte's per-character draw.

pyte's ``Screen.draw`` costs a width lookup, a translate and a namedtuple ``_replace`` per
character, and every line feed at the bottom moves 24 rows; that caps the console near
1 MB/s.  Most console output is text lines and full-screen programs (vim, less, htop, tmux,
dialog), made of a limited set of tokens: text of one- and two-cell characters, CR, LF,
BS, TAB, SGR, CUP, EL, ED, ECH, REP, cursor show/hide, BEL (a run of them is one token),
the C0 controls that do nothing, cursor moves (CUU/CUD/CUF/CUB/CHA/HPA/VPA and the rest),
scroll regions (DECSTBM, with LF/IND/NEL/RI scrolling inside them), IL/DL/ICH/DCH/SU/SD,
DECSC/DECRC, the G0/G1 character sets (DEC line drawing included), the keypad modes, the
ANSI modes (SM/RM), XTWINOPS (reports and the title stack) and the DEC private modes that
touch no cell (autowrap, cursor keys, mouse reporting, bracketed paste).
Sequences programs send back to back are one token where that saves work: SGRs with
``ESC ( B`` among them (ncurses' sgr0), DECSTBM and the CUP after it, DECTCEM pairs.
:class:`FastPath` consumes a maximal run of exactly those tokens in one call and gives the
*same* screen as the slow path (cells with their attributes, cursor including the
pending-wrap column, modes, last character for REP, and damage with the same effect), only
faster:

  - rows are pending (:mod:`vncmux.console.fastrows`): writes are operations, a scroll of
    the whole screen appends a row, a scroll inside a region (LF, IND, RI, SU, SD) moves
    the pending rows alone while the screen records it as damage; cells are built only
    when someone needs the screen (:meth:`~vncmux.console.fastrows.PendingRows.settle`);
  - cells come from a cache per attribute set, and SGR moves between attribute sets
    through a per-set transition table keyed by the parameter string;
  - cursor moves, DECSTBM and ECH are interpreted in place; IL and DL move the stored rows
    through the screen's own method and the pending rows with them (as a region scroll);
    the rarer edits (ICH, DCH, DECSC, DECRC, charsets, modes) call the screen's own
    method, named by the parser's own table, after settling what they change (ICH and
    DCH: the cursor's row alone).

The fast path never writes the screen's rows or damage itself: it reads rows with
``TermScreen.stored_line`` and hands over what it ran with ``TermScreen.apply_run`` and
``TermScreen.scrolled_off``; the cursor, attributes and last character it keeps current.

Anything else (zero-width characters, other controls and sequences, sequences split across
chunks) ends the run and is left to the slow path (which settles before a call that touches
cells), and so is every state the fast path does not model: left/right margins (DECSLRM),
origin mode, insert mode, reverse wraparound.  While ISO protection is on (after SPA) only
the erases it changes, ED, EL and ECH, are left to the slow path; the rest runs here.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyte import modes as mo
from pyte.charsets import LAT1_MAP, MAPS
from pyte.screens import Margins
from twisted.logger import Logger
from twisted.python.failure import Failure

from vncmux.console.editing import MORE_FIX
from vncmux.console.fastrows import Attrs, PendingRows, Row
from vncmux.console.fasttokens import DECTCEM_KEY, EDITS, MOVES, QUIET_MODES, SD, TOKEN

if TYPE_CHECKING:
    from vncmux.console.cells import Cell
    from vncmux.console.screen import TermScreen

log = Logger()

_MAX_STATES = 512  # attribute sets kept (truecolour output can make very many)
_MAX_TRANS = 64  # SGR transitions kept per attribute set
_MAX_STBMS = 64  # DECSTBM parameter strings kept
_MAX_PENDING = 4096  # pending rows before they are settled anyway (bounds memory) ...
_MAX_PENDING_CHARS = 256 * 1024  # ... and characters (bounds the pending operations)


class FastPath(PendingRows):
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
        super().__init__(screen)
        self._apply_sgr = apply_sgr
        self._parse_params = parse_params
        self._states: dict[Cell, Attrs] = {}
        self._ints: dict[str, list[int] | None] = {}
        self._cups: dict[str, tuple[int, int] | tuple[()]] = {}  # CUP parameters -> x, y
        self._cups_size = (0, 0)
        # DECSTBM parameters -> (margins, top, bottom), () when ignored: ``_stbm``
        self._stbms: dict[str, tuple[Margins | None, int, int] | tuple[()]] = {}
        # The slow path's tables of screen methods, so that both call the same ones.
        from vncmux.console.parser import _CSI, _ESCAPES

        self._csi = _CSI
        self._escapes = _ESCAPES

    # -- caches ----------------------------------------------------------------------

    def _state(self, attrs: Cell) -> Attrs:
        st = self._states.get(attrs)
        if st is None:
            if len(self._states) >= _MAX_STATES:
                self._states.clear()
            st = self._states[attrs] = Attrs(attrs)
        return st

    def _after_sgr(self, st: Attrs, params: str) -> Attrs:
        """Where SGR ``params`` lead from ``st`` (several SGRs in a row, each applied in
        turn, a malformed one dropped alone, as the slow path does)."""
        attrs = st.attrs
        for one in params.replace("\x1b(B", "").split("m\x1b["):
            parsed = self._parse_params(one)
            if parsed is not None:
                attrs = self._apply_sgr(attrs, tuple(parsed[1]))
        nxt = self._state(attrs)
        if len(params) <= 256:  # (a long run of SGRs is not worth keeping)
            if len(st.trans) >= _MAX_TRANS:
                st.trans.clear()
            st.trans[params] = nxt
        return nxt

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

    def _cup(self, params: str) -> tuple[int, int] | tuple[()]:
        """Where CUP with ``params`` puts the cursor (origin mode is never on here); ``()``
        for parameters the slow path drops.  Cached per size in ``_cups``."""
        ints = self._params(params)
        if ints is None:
            return ()
        s = self.screen
        row_n = (ints[0] if ints else 0) or 1
        col_n = (ints[1] if len(ints) > 1 else 0) or 1
        pos = (min(max(0, col_n - 1), s.columns - 1), min(max(0, row_n - 1), s.lines - 1))
        self._cups[params] = pos
        return pos

    def _stbm(
        self, params: str, top: int, bottom: int
    ) -> tuple[Margins | None, int, int] | tuple[()]:
        """What DECSTBM with ``params`` does from margins ``top..bottom``, as
        ``TermScreen.set_margins``: the new margins (None: none) and their rows, or ``()``
        when it is ignored.  Cached in ``_stbms`` when it does not depend on the margins
        in place (both or neither given)."""
        last = self.screen.lines - 1
        ints = self._params(params)
        if ints is None:
            got: tuple[Margins | None, int, int] | tuple[()] = ()
            t_ = b_ = 1
        else:
            t_ = ints[0] if ints else 0
            b_ = ints[1] if len(ints) > 1 else 0
            if not b_ and not t_:
                got = (None, 0, last)
            else:
                tt = max(0, min(t_ - 1, last)) if t_ else top
                bb = max(0, min(b_ - 1, last)) if b_ else bottom
                got = (Margins(tt, bb), tt, bb) if bb - tt >= 1 else ()
        if bool(t_) == bool(b_):
            self._stbms[params] = got
        return got

    # -- the run ---------------------------------------------------------------------

    def usable(self) -> bool:
        """True when the screen is in a state the fast path models exactly."""
        s = self.screen
        mode = s.mode
        return (
            s.lr_margins is None
            and not s.reverse_wrap
            and mo.IRM not in mode
            and mo.DECOM not in mode
        )

    def run(self, data: str, start: int) -> int:
        """Interpret the longest run of fast tokens at ``data[start:]``; returns its end
        (``start`` when there is none, or when the screen's state needs the slow path)."""
        if not self.usable():
            return start
        if self.compiled is not None:  # (the same loop, compiled: see compiled.py)
            return self.compiled.run(self, data, start)  # type: ignore[no-any-return]
        # ``scanner().match`` matches token after token, each where the previous ended:
        # the cheapest tokenizer loop CPython's ``re`` has (undocumented, but in ``sre``
        # since Python 2 and what ``re.Scanner`` is built on).
        scanner = TOKEN.scanner(data, start)  # type: ignore[attr-defined]
        match = scanner.match
        m = match()
        if m is None:
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
        top, bottom = s.margins or (0, last)
        full = top == 0 and bottom == last  # no scroll region: a scroll is the screen's
        # ISO protection (SPA) spares protected cells from ED, EL and ECH: those end the run
        # then.  No fast token turns it on or off (SPA, DECSCA, DECSTR and RIS are slow).
        iso = s.iso_protection
        tr: Any = self._charset()  # (a translation table: see ``_charset``)
        g0_ascii = s.g0_charset is LAT1_MAP  # (G0 is ASCII: an sgr0's "ESC ( B" does nothing)
        stored: Callable[[int], Any] = s.stored_line
        default: Any = s.default_char
        rows = self._begin()
        off = self._off
        last_text = ""
        end = start
        narrow = self._narrow
        plain = data.isascii()  # (kept by the string: no text token needs checking then)
        asis = plain and tr is None  # text goes in as it is (kept with ``tr``)
        pints = self._ints  # (the cache behind ``_params``, read inline)
        row: Row | None
        cups = self._cups
        stbms = self._stbms

        # (A token's groups are read as ``m[i]``: a subscript costs far less than a call
        # to ``m.group``, which shows on every token.)
        prev = m  # the last token taken (where the run ends when it takes them all)
        try:
            while m is not None:
                k = m.lastindex
                if k <= 6 or k == 17 or k == 9:  # text, maybe after SGR, CUP or charset
                    if k == 4:  # SGR, then maybe text (group 4 always takes part)
                        params = m[3]
                        t = m[4]
                        nxt = st.trans.get(params)
                        st = nxt if nxt is not None else self._after_sgr(st, params)
                        if not g0_ascii and "(" in params:  # "\x1b(B" in it
                            s.g0_charset = LAT1_MAP
                            g0_ascii = True
                            if not s.charset:
                                tr = None
                                asis = plain
                    elif k == 6:  # CUP, then maybe text (as SGR)
                        params = m[5]
                        t = m[6]
                        pos = cups.get(params)
                        if pos is None:
                            pos = self._cup(params)
                        if pos:
                            x, y = pos
                    elif k == 17:  # a character set designated, then maybe SGR and text
                        # (as pyte's ``define_charset``: a set it does not know is ignored)
                        code = m[15]
                        g = m[14]
                        params = m[16]
                        t = m[17]
                        table = MAPS.get(code)
                        if table is not None:
                            if g == "(":
                                s.g0_charset = table
                            else:
                                s.g1_charset = table
                            if (g == ")") == bool(s.charset):  # the set in use
                                tr = None if table is LAT1_MAP else table
                            g0_ascii = s.g0_charset is LAT1_MAP
                        if params is not None:
                            nxt = st.trans.get(params)
                            st = nxt if nxt is not None else self._after_sgr(st, params)
                            if not g0_ascii and "(" in params:
                                s.g0_charset = LAT1_MAP
                                g0_ascii = True
                                if not s.charset:
                                    tr = None
                        asis = plain and tr is None
                    elif k == 9:  # REP: at most a screenful, as ``_Screen.repeat_last``
                        ints = self._params(m[5])
                        ch = last_text[-1] if last_text else s.last_char
                        if ints is None:
                            t = ""
                        elif tr is None and (ch in narrow or self._narrow_prefix(ch)):
                            t = ch * min((ints[0] if ints else 0) or 1, cols * lines)
                        else:
                            end = m.start()
                            break
                    else:
                        t = m[1]
                    if not t:
                        pass
                    elif asis or (tr is None and (t.isascii() or narrow.issuperset(t))):
                        last_text = t  # (the common case: one-cell characters, no charset)
                        e = x + len(t)
                        if e <= cols:  # the common case: it fits on the row
                            row = rows[off + y]
                            if row is None:
                                a = off + y
                                if a < lines:
                                    line = stored(a)
                                    row = rows[a] = [default if line is None else line]
                                else:
                                    row = rows[a] = [default]
                            row.append((x, t, st))
                            x = e
                        else:
                            x, y, off, rows = self._wrapped(t, x, y, off, rows, st, wrap, full)
                    else:
                        raw = t
                        if tr is not None:
                            t = t.translate(tr)  # (one character for one: lengths agree)
                        if t.isascii() or narrow.issuperset(t):
                            last_text = raw
                            x, y, off, rows = self._wrapped(t, x, y, off, rows, st, wrap, full)
                        else:
                            # Wide characters, or one the slow path must draw: character by
                            # character, stopping before the first of the latter.
                            x, y, off, used = self._mixed(t, x, y, off, rows, st, wrap, full)
                            if used:
                                last_text = raw[:used]
                            if used < len(t):
                                end = m.start(k if k == 4 or k == 6 or k == 17 else 1) + used
                                break
                    if k == 2:  # CR LF after the text: the line feed written out as in the
                        # LF branch below, not called (once per log line: a call slows a flood)
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
                elif k < 14:  # CSI: DECSTBM, HVP/EL/ED, edits and moves, DECTCEM, DEC modes
                    if k == 10:  # DECSTBM, as ``TermScreen.set_margins``, then maybe CUP
                        params = m[5]
                        got = stbms.get(params)
                        if got is None:
                            got = self._stbm(params, top, bottom)
                        if got:
                            s.margins, top, bottom = got
                            x = y = 0
                            full = top == 0 and bottom == last
                        params = m[10]
                        if params:
                            params = params[2:-1]
                            pos = cups.get(params)
                            if pos is None:
                                pos = self._cup(params)
                            if pos:
                                x, y = pos
                    elif k == 8 or k == 7:  # HVP, EL, ED (8); edits, moves, modes (7)
                        p = m[5]
                        final = m[k]
                        if iso and (final == "K" or final == "J" or final == "X"):
                            end = m.start()  # (ED, EL, ECH: the slow path spares the
                            break  # protected cells)
                        ints = pints.get(p)  # (as ``_params``; read inline on this hot branch)
                        if ints is None:
                            ints = self._params(p)
                        if ints is None:
                            pass
                        elif final == "f":  # HVP
                            row_n = (ints[0] if ints else 0) or 1
                            col_n = (ints[1] if len(ints) > 1 else 0) or 1
                            x = min(max(0, col_n - 1), cols - 1)
                            y = min(max(0, row_n - 1), last)
                        elif k == 8:
                            off = self._erase(final, ints[0] if ints else 0, x, y, st, rows, off)
                        elif final == "X":  # ECH
                            xx = min(x, cols - 1)
                            a = off + y
                            row = rows[a]
                            if row is None:
                                row = rows[a] = [self._base(a)]
                            fill = self._fill(st)
                            count = min((ints[0] if ints else 0) or 1, cols - xx)
                            row.append((xx, " " * count, fill))
                        elif final in MOVES and not s.declrmm:  # the common moves, in place
                            n = (ints[0] if ints else 0) or 1
                            xx = x if x < cols else cols - 1  # (from the pending-wrap column)
                            if final == "C":  # CUF
                                x = min(xx + n, cols - 1)
                            elif final == "D":  # CUB
                                x = max(xx - n, 0)
                            elif final == "G" or final == "`":  # CHA, HPA
                                x = min(n - 1, cols - 1)
                            else:
                                x = xx
                                if final == "A":  # CUU: stops at the top margin from below it
                                    y = max(y - n, top if y >= top else 0)
                                elif final == "B":  # CUD: stops at the bottom margin from above
                                    y = min(y + n, bottom if y <= bottom else last)
                                else:  # VPA
                                    y = min(n - 1, last)
                        elif (final == "S" or final == "T") and len(ints) <= 1:
                            # SU / SD: the region scrolls (on the pending rows), the cursor stays
                            n = min((ints[0] if ints else 0) or 1, lines)
                            if final == "S":
                                rows = self._scroll(rows, off, top, bottom, n, True)
                            else:
                                rows = self._scroll(rows, off, top, bottom, -n, False)
                            off = 0
                        elif (final == "L" or final == "M") and top <= y <= bottom:
                            # IL / DL: the rows from the cursor's down to the bottom margin
                            # scroll (on the pending rows), the cursor goes to the first column
                            n = min((ints[0] if ints else 0) or 1, lines)
                            rows = self._scroll(
                                rows, off, y, bottom, -n if final == "L" else n, False
                            )
                            off = 0
                            x = 0
                        else:
                            entry = self._csi.get(final) if final != "T" else SD
                            if entry is None or (final == "T" and len(ints) > 1):
                                end = m.start()
                                break
                            name, arity = entry
                            args = tuple(ints if arity is None else ints[:arity])
                            rows, off, x, y, st, last_text = self._call(
                                name, args, EDITS[final], x, y, st, last_text, rows, off
                            )
                            if final == "h" or final == "l":  # (insert mode, newline mode)
                                lnm = mo.LNM in mode
                                if not self.usable():
                                    end = m.end()
                                    break
                    elif k == 11:  # DECTCEM: what ``set_mode`` / ``reset_mode`` do for 25
                        on = m[11] == "h"
                        s.other_modes[DECTCEM_KEY] = on  # (as ``note_mode``, for DECRQM)
                        if on:
                            mode.add(mo.DECTCEM)
                        else:
                            mode.discard(mo.DECTCEM)
                        s.cursor.hidden = not on
                    else:  # (13) DEC private modes, when all are quiet ones
                        ints = self._params(m[12])
                        if ints is None or not QUIET_MODES.issuperset(ints):
                            end = m.start()
                            break
                        if m[13] == "h":
                            s.set_mode(*ints, private=True)
                        else:
                            s.reset_mode(*ints, private=True)
                        wrap = mo.DECAWM in mode
                elif k == 19 or k == 21 or k == 18:  # (CR) LF; ESC 7 8 D E M = >
                    if k == 18:
                        esc = m[18]
                        if esc == "=" or esc == ">":  # keypad modes: the screen's own
                            s.set_keypad(esc == "=")
                            prev = m
                            m = match()
                            continue
                        if esc == "M" or esc == "7" or esc == "8":  # RI, DECSC, DECRC
                            if esc == "M":
                                if y == top:
                                    rows = self._scroll(rows, off, top, bottom, -1, False)
                                    off = 0
                                elif y > 0:
                                    y -= 1
                                prev = m
                                m = match()
                                continue
                            rows, off, x, y, st, last_text = self._call(
                                self._escapes[esc], (), 0, x, y, st, last_text, rows, off
                            )
                            cursor = s.cursor  # (DECRC puts a new cursor in place)
                            if not self.usable():
                                end = m.end()
                                break
                            top, bottom = s.margins or (0, last)
                            full = top == 0 and bottom == last
                            tr = self._charset()
                            g0_ascii = s.g0_charset is LAT1_MAP
                            asis = plain and tr is None
                            prev = m
                            m = match()
                            continue
                        if esc == "E":
                            x = 0
                    elif k == 19 or lnm:
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
                elif k == 20:  # CR
                    x = 0
                elif k == 23:  # the rarer controls
                    c = m[23][0]
                    if c == "\x08":  # BS (from the pending-wrap column it goes back two)
                        if x == cols:
                            x -= 1
                        x = min(max(0, x - 1), cols - 1)
                    elif c == "\t":  # HT (from the pending-wrap column: stays there)
                        if x < cols:
                            stops = sorted(s.tabstops)
                            i = bisect_right(stops, x)
                            x = stops[i] if i < len(stops) else cols - 1
                        elif s.other_modes.get(MORE_FIX, False) and wrap:
                            end = m.start()  # (a wrap first: the screen's ``tab``)
                            break
                    elif c == "\x07":  # BEL (a run of them rings once)
                        s.bell()
                    else:  # SO, SI: the screen's own methods
                        if c == "\x0e":
                            s.shift_out()
                        else:
                            s.shift_in()
                        tr = self._charset()
                        asis = plain and tr is None
                # k == 22: ignored controls (CAN and SUB only abort sequences: none here)
                prev = m
                m = match()
        except Exception as e:  # noqa: BLE001 -- as the slow path: drop that token alone
            self._dropped(e)
            if m is not None:  # (the text after an SGR or CUP is a token of its own)
                k = m.lastindex
                end = m.start(k) if k == 4 or k == 6 or k == 17 else m.end()
        if m is None:  # (ran to the last token: it ends the run; a break set ``end``)
            end = prev.end()

        self._finish(cursor, x, y, st, last_text, rows, off, end - start)
        return end

    def _begin(self) -> list[Row | None]:
        """A run's start: the caches that depend on the size checked, and the pending rows
        (a fresh list when none are)."""
        s = self.screen
        cols, lines = s.columns, s.lines
        cups, stbms = self._cups, self._stbms
        if self._cups_size != (cols, lines) or len(cups) > _MAX_STATES or len(stbms) > _MAX_STBMS:
            cups.clear()  # (positions and margins are clamped to the size)
            stbms.clear()
            self._cups_size = (cols, lines)
        rows = self._rows
        return [None] * lines if rows is None else rows  # None: the original row, untouched

    def _finish(
        self,
        cursor: Any,
        x: int,
        y: int,
        st: Attrs,
        last_text: str,
        rows: list[Row | None],
        off: int,
        taken: int,
    ) -> None:
        """A run's end: the cursor and last character written back, the pending rows kept
        (and settled when they grow too many; ``taken``: the characters the run took)."""
        self._put_cursor(cursor, x, y, st, last_text)
        self._rows = rows
        self._off = off
        self._since += taken
        if len(rows) > _MAX_PENDING or self._since > _MAX_PENDING_CHARS:
            self.settle()

    def _put_cursor(self, cursor: Any, x: int, y: int, st: Attrs, last_text: str) -> None:
        """The run's cursor, attributes and last character written back to the screen."""
        cursor.x, cursor.y = x, y
        cursor.attrs = st.attrs
        if last_text:
            self.screen.last_char = last_text[-1]

    def _dropped(self, error: BaseException) -> None:
        """A token failed: it is dropped alone (logged here, for both loops)."""
        log.failure(
            "Terminal fast path: dropped a token that failed",
            failure=Failure(error, type(error), error.__traceback__),
        )

    def _charset(self) -> dict[int, str] | None:
        """The translation table of the character set in use; None: Latin-1 (identity)."""
        s = self.screen
        cs = s.g1_charset if s.charset else s.g0_charset
        return None if cs is LAT1_MAP else cs  # type: ignore[return-value]

    def _call(
        self,
        name: str,
        args: tuple[int, ...],
        edits: int,
        x: int,
        y: int,
        st: Attrs,
        last_text: str,
        rows: list[Row | None],
        off: int,
    ) -> tuple[list[Row | None], int, int, int, Attrs, str]:
        """Hand one sequence to the screen's own method, as the slow path would: the
        cursor first, and the pending rows too when it ``edits`` cells (1: the cursor's row
        only, 2: anywhere).  Returns the run's new rows, scroll count, cursor, attribute
        set and last text."""
        s = self.screen
        self._put_cursor(s.cursor, x, y, st, last_text)
        if edits == 1 and not off:
            self._settle_row(rows, y)
        elif edits:
            self._rows, self._off = rows, off
            self.settle()
            rows, off = [None] * s.lines, 0
        try:
            getattr(s, name)(*args)
        except Exception:  # noqa: BLE001 -- here, where the pending rows are known
            log.failure("Terminal fast path: dropped a sequence that failed ({name})", name=name)
            s.repair()
        c = s.cursor
        return rows, off, c.x, c.y, self._state(c.attrs), ""


__all__ = ["FastPath"]
