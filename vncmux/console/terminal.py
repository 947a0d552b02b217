"""The terminal emulator: pyte's screen behind our own hardened parser, with exact damage.

pyte 0.8.2 draws text well but its stream parser loses whole chunks on malformed input, can be
made to work for minutes or grow memory without bound, and its screen misses things real
programs use (alternate screen, faint, colon SGR, secondary DA, ...).  See
``/work/shared/notes/pyte.md``.  So this module keeps pyte's ``Screen`` (and its per-character
``draw``) but replaces the stream with a small ECMA-48 parser that

  - never lets an exception out of ``feed`` and drops only the sequence that failed;
  - bounds every sequence: CSI parameters, OSC/DCS strings, combining marks per cell, counts;
  - parses complete CSI sequences with one regular expression instead of per character;

and subclasses the screen to record :class:`~vncmux.console.damage.Damage` precisely: a
scroll is recorded as a scroll (not 24 dirty rows), cursor moves mark the rows they touch.
Runs of common output (text, CR/LF, SGR, CUP, EL, ED, ...) bypass all of that through
:mod:`vncmux.console.fastpath`, which gives the same screen much faster.

The one public class is :class:`Terminal`; :class:`Cell` is what ``Terminal.line`` returns.
"""

from __future__ import annotations

import codecs
import copy
import functools
import itertools
import operator
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from pyte import modes as mo
from pyte.screens import Margins, Savepoint, Screen, StaticDefaultDict
from pyte.screens import wcwidth as _cached_wcwidth
from twisted.logger import Logger
from wcwidth import wcwidth as _wcwidth

from vncmux.console.damage import Damage
from vncmux.console.fastpath import FastPath
from vncmux.console.modes import Modes
from vncmux.console.palette import COLOUR_NAMES

log = Logger()

# -- limits -----------------------------------------------------------------------------

MAX_PARAM_CHARS = 256  # a longer CSI parameter string is dropped whole
MAX_PARAMS = 32  # parameters beyond this are ignored
MAX_SUBPARAMS = 8  # colon sub-parameters per parameter
MAX_PARAM_VALUE = 9999  # like pyte and the VT manuals: larger values are clamped
MAX_INTERMEDIATES = 4  # ESC/CSI intermediate bytes kept (more: sequence dropped)
MAX_OSC_STORED = 4096  # characters of an OSC string kept for interpretation
MAX_STRING = 64 * 1024  # an OSC/DCS/APC/PM/SOS string longer than this is aborted
MAX_COMBINING = 8  # combining marks kept per cell; more are dropped
MAX_TITLE = 256  # characters of a window title kept

# -- cells and colours ----------------------------------------------------------------


class Cell(NamedTuple):
    """One character cell: pyte's ``Char`` plus ``faint`` (SGR 2).

    ``fg``/``bg`` are ``'default'``, one of the 16 names in :data:`COLOUR_NAMES`, or six
    lowercase hex digits.  ``data`` is ``''`` in the right half of a wide character and may
    hold a base character followed by (a bounded number of) combining marks.
    """

    data: str
    fg: str = "default"
    bg: str = "default"
    bold: bool = False
    italics: bool = False
    underscore: bool = False
    strikethrough: bool = False
    reverse: bool = False
    blink: bool = False
    faint: bool = False


def _palette256() -> tuple[str, ...]:
    """The xterm 256-colour palette: 0-15 by name (so the renderer's palette applies),
    16-231 the 6x6x6 cube, 232-255 the grey ramp, the rest as hex."""
    steps = (0x00, 0x5F, 0x87, 0xAF, 0xD7, 0xFF)
    out = list(COLOUR_NAMES)
    for i in range(216):
        out.append(f"{steps[i // 36]:02x}{steps[(i // 6) % 6]:02x}{steps[i % 6]:02x}")
    for i in range(24):
        v = 8 + 10 * i
        out.append(f"{v:02x}{v:02x}{v:02x}")
    return tuple(out)


PALETTE_256 = _palette256()
DEFAULT_CELL = Cell(" ")
_DATA = operator.itemgetter(0)  # a cell's data

_Param = int | None | tuple[int | None, ...]


def _clamp8(v: int | None) -> int:
    return 0 if v is None else (min(v, 255))


def _rgb(r: int | None, g: int | None, b: int | None) -> str:
    return f"{_clamp8(r):02x}{_clamp8(g):02x}{_clamp8(b):02x}"


# -- characters draw() must not see raw -------------------------------------------------

_HANGUL_JAMO = (range(0x1160, 0x1200), range(0xD7B0, 0xD800))


def _zero_width_tables() -> tuple[str, frozenset[str]]:
    """Characters of width <= 0 that pyte's ``draw`` would choke on.

    pyte's ``draw`` stops at the first zero-width character that is not "combining"
    (U+FE0F, U+200D, Hangul medial vowels, ...) and silently loses the rest of the chunk,
    and its combining path is quadratic.  We route all of them through our own bounded
    path: marks are attached to the previous cell, the rest (format characters) dropped.
    Returns (regex character class body, the set of characters to drop).
    """
    special: list[int] = []
    drop: set[str] = set()
    wanted = {"Mn", "Me", "Mc", "Cf", "Zl", "Zp"}
    category = unicodedata.category
    candidates = [
        cp
        for cp in itertools.chain(range(0xA0, 0x20000), range(0xE0000, 0xE1000))
        if category(chr(cp)) in wanted
    ]
    candidates.extend(cp for r in _HANGUL_JAMO for cp in r)
    for cp in sorted(set(candidates)):
        ch = chr(cp)
        if _wcwidth(ch) > 0:
            continue
        special.append(cp)
        if category(ch) in ("Cf", "Zl", "Zp"):
            drop.add(ch)
    # Compress into ranges for the character class.
    parts: list[str] = []
    start = prev = special[0]
    for cp in special[1:] + [-1]:
        if cp == prev + 1:
            prev = cp
            continue
        parts.append(
            re.escape(chr(start))
            if start == prev
            else f"{re.escape(chr(start))}-{re.escape(chr(prev))}"
        )
        start = prev = cp
    return "".join(parts), frozenset(drop)


_ZW_CLASS, _ZW_DROP = _zero_width_tables()
_ZERO_WIDTH_RUN = re.compile(f"[{_ZW_CLASS}]+")

# -- the screen ------------------------------------------------------------------------


if TYPE_CHECKING:
    from pyte.screens import Cursor

    class _CellCursor(Cursor):
        attrs: Cell  # type: ignore[assignment]


class _Screen(Screen):
    """pyte's screen with xterm's missing pieces and exact damage recording.

    Damage is kept in two parts: pyte's own ``dirty`` set (rows its methods touch) and
    ``damage``; every scroll first folds ``dirty`` into ``damage`` and then records the
    scroll, so marks made before a scroll are shifted with it.
    """

    # pyte types its cells as Char; ours are Cell (Char plus faint), made the same way.
    buffer: defaultdict[int, StaticDefaultDict[int, Cell]]  # type: ignore[assignment]
    cursor: _CellCursor  # type: ignore[assignment]

    def __init__(self, columns: int, lines: int, term: Terminal) -> None:
        self._term = term
        self.damage = Damage(lines)
        self.in_alt = False
        self._main_buffer: defaultdict[int, StaticDefaultDict[int, Cell]] | None = None
        self._alt_saved: Savepoint | None = None
        self.reverse_screen = False
        self.last_char = " "
        # Where the cursor / status banner drawn in the last taken picture now sits.
        self.cursor_ref: int | None = None
        self.banner_ref: int | None = None
        self.fast: FastPath | None = None  # set by the parser when it has one
        super().__init__(columns, lines)

    # -- attributes ----------------------------------------------------------------

    @property
    def default_char(self) -> Cell:  # type: ignore[override]
        return DEFAULT_CELL

    def reset(self) -> None:
        """RIS: also leaves the alternate screen and resets the input modes."""
        if getattr(self, "in_alt", False) and self._main_buffer is not None:
            self.buffer = self._main_buffer
            self.in_alt = False
        super().reset()
        self.g1_charset = self.g0_charset  # as xterm: G1 is ASCII until designated
        self.cursor.attrs = DEFAULT_CELL
        self.savepoints = []
        self._alt_saved = None
        self.reverse_screen = False
        modes = self._term.modes
        for name, value in vars(Modes()).items():
            setattr(modes, name, value)

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
        if data.isascii() or _ZERO_WIDTH_RUN.search(data) is None:
            super().draw(data)
            self.last_char = data[-1]
            return
        pos = 0
        for m in _ZERO_WIDTH_RUN.finditer(data):
            if m.start() > pos:
                super().draw(data[pos : m.start()])
                self.last_char = data[m.start() - 1]
            for ch in m.group():
                if ch not in _ZW_DROP:
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

    def cursor_to_line(self, line: int | None = None) -> None:
        """VPA; pyte's version asserts (leaving the cursor off-screen) under DECOM
        without margins."""
        y = (line or 1) - 1
        if mo.DECOM in self.mode:
            top, bottom = self._region()
            y = min(y + top, bottom)
        self.cursor.y = y
        self.ensure_vbounds()

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
        self.cursor.x = self.cursor.y = 0
        self.dirty.update(range(self.lines))

    # -- scrolling -----------------------------------------------------------------

    def scroll_region(self, top: int, bottom: int, count: int) -> None:
        """Move rows ``top..bottom`` by ``count`` (positive: up) and record it as a scroll."""
        height = bottom - top + 1
        if count == 0 or height <= 0:
            return
        n = min(abs(count), height)
        buf = self.buffer
        if count > 0:
            for y in range(top, bottom - n + 1):
                moved = buf.pop(y + n, None)
                if moved is None:
                    buf.pop(y, None)
                else:
                    buf[y] = moved
            for y in range(bottom - n + 1, bottom + 1):
                buf.pop(y, None)
        else:
            for y in range(bottom, top + n - 1, -1):
                moved = buf.pop(y - n, None)
                if moved is None:
                    buf.pop(y, None)
                else:
                    buf[y] = moved
            for y in range(top, top + n):
                buf.pop(y, None)
        signed = n if count > 0 else -n
        d = self.damage
        if self.dirty:
            d.mark(self.dirty)
            self.dirty.clear()
        d.scrolled(top, bottom, signed)
        self.cursor_ref = self._shift_ref(self.cursor_ref, top, bottom, signed)
        self.banner_ref = self._shift_ref(self.banner_ref, top, bottom, signed)

    @staticmethod
    def _shift_ref(ref: int | None, top: int, bottom: int, count: int) -> int | None:
        if ref is None or not top <= ref <= bottom:
            return ref
        ref -= count
        return ref if top <= ref <= bottom else None

    def _region(self) -> tuple[int, int]:
        return self.margins or Margins(0, self.lines - 1)

    def index(self) -> None:
        top, bottom = self._region()
        if self.cursor.y == bottom:
            self.scroll_region(top, bottom, 1)
        else:
            self.cursor_down()

    def reverse_index(self) -> None:
        top, bottom = self._region()
        if self.cursor.y == top:
            self.scroll_region(top, bottom, -1)
        else:
            self.cursor_up()

    def scroll_up(self, count: int = 0) -> None:
        """SU (CSI n S): scroll the region up, cursor stays."""
        top, bottom = self._region()
        self.scroll_region(top, bottom, min(count or 1, self.lines))

    def scroll_down(self, count: int = 0) -> None:
        """SD (CSI n T): scroll the region down, cursor stays."""
        top, bottom = self._region()
        self.scroll_region(top, bottom, -min(count or 1, self.lines))

    def insert_lines(self, count: int | None = None) -> None:
        """IL: a downward scroll of the region from the cursor row to the bottom margin."""
        top, bottom = self._region()
        if top <= self.cursor.y <= bottom:
            self.scroll_region(self.cursor.y, bottom, -min(count or 1, self.lines))
            self.carriage_return()

    def delete_lines(self, count: int | None = None) -> None:
        """DL: an upward scroll of the region from the cursor row to the bottom margin.

        (pyte's own version leaves stale rows behind when the source rows were never
        written; this one does not.)
        """
        top, bottom = self._region()
        if top <= self.cursor.y <= bottom:
            self.scroll_region(self.cursor.y, bottom, min(count or 1, self.lines))
            self.carriage_return()

    # -- erasing (with the background colour, as xterm does) ------------------------

    def erase_in_display(self, how: int = 0, *args: Any, **kwargs: Any) -> None:
        fill = self._erase_cell()
        y = self.cursor.y
        if how == 0:
            rows = range(y + 1, self.lines)
        elif how == 1:
            rows = range(y)
        elif how in (2, 3):
            rows = range(self.lines)
        else:
            return
        for r in rows:
            self.buffer[r] = self._new_line(fill)
        self.dirty.update(rows)
        if how in (0, 1):
            self.erase_in_line(how)

    def erase_in_line(self, how: int = 0, private: bool = False) -> None:
        x = min(self.cursor.x, self.columns - 1)
        fill = self._erase_cell()
        if how == 0:
            cols = range(x, self.columns)
        elif how == 1:
            cols = range(x + 1)
        elif how == 2:
            self.buffer[self.cursor.y] = self._new_line(fill)
            self.dirty.add(self.cursor.y)
            return
        else:
            return
        line = self.buffer[self.cursor.y]
        for c in cols:
            line[c] = fill
        self.dirty.add(self.cursor.y)

    def erase_characters(self, count: int | None = None) -> None:
        fill = self._erase_cell()
        line = self.buffer[self.cursor.y]
        for c in range(self.cursor.x, min(self.cursor.x + (count or 1), self.columns)):
            line[c] = fill
        self.dirty.add(self.cursor.y)

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
        for flag, mode in ((sp.origin, mo.DECOM), (sp.wrap, mo.DECAWM)):
            if flag:
                self.mode.add(mode)
            else:
                self.mode.discard(mode)
        hidden = self.cursor.hidden
        self.cursor = copy.copy(sp.cursor)  # type: ignore[assignment]
        self.cursor.hidden = hidden
        self.ensure_hbounds()
        self.ensure_vbounds(use_margins=True)

    def save_cursor(self) -> None:
        self.savepoints = [self._savepoint()]

    def restore_cursor(self) -> None:
        if self.savepoints:
            self._restore(self.savepoints[-1])
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
        """CSI s: save cursor (only without parameters: with them it is DECSLRM)."""
        if not any(params):
            self.save_cursor()

    # -- modes -----------------------------------------------------------------------

    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        self._modes(modes, bool(kwargs.get("private")), True)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        self._modes(modes, bool(kwargs.get("private")), False)

    def _modes(self, modes: Sequence[int], private: bool, on: bool) -> None:
        m = self._term.modes
        rest: list[int] = []
        if not private:
            for mode in modes:
                if mode == 20:
                    m.newline_mode = on
                    rest.append(mode)
                elif mode == 4:
                    rest.append(mode)
        else:
            for mode in modes:
                if mode == 1:
                    m.app_cursor = on
                elif mode in (9, 1000, 1002, 1003):
                    m.mouse_tracking = mode if on else 0  # xterm: any reset turns it off
                elif mode == 1006:
                    m.mouse_sgr = on
                elif mode == 2004:
                    m.bracketed_paste = on
                elif mode == 5:
                    if self.reverse_screen != on:
                        self.reverse_screen = on
                        self.dirty.update(range(self.lines))
                elif mode in (47, 1047, 1049):
                    self._alternate(mode, on)
                elif mode == 1048:
                    if on:
                        self.save_cursor()
                    else:
                        self.restore_cursor()
                elif mode in (6, 7, 25):
                    rest.append(mode)
                # DECCOLM (3) is ignored on purpose, as xterm does by default: a remote
                # program must not resize every viewer's screen.
        if rest:
            if on:
                super().set_mode(*rest, private=private)
            else:
                super().reset_mode(*rest, private=private)

    def _alternate(self, mode: int, on: bool) -> None:
        """Modes 47, 1047, 1049: the alternate screen (1049 also saves/restores the cursor)."""
        if on:
            if mode == 1049:
                self._alt_saved = self._savepoint()
            if not self.in_alt:
                self._main_buffer = self.buffer
                self.buffer = defaultdict(lambda: StaticDefaultDict(DEFAULT_CELL))
                self.in_alt = True
            elif mode == 1049:
                self.buffer.clear()
        else:
            if self.in_alt and self._main_buffer is not None:
                self.buffer = self._main_buffer
                self._main_buffer = None
                self.in_alt = False
            if mode == 1049 and self._alt_saved is not None:
                self._restore(self._alt_saved)
        self.dirty.update(range(self.lines))

    # -- replies -------------------------------------------------------------------

    def write_process_input(self, data: str) -> None:
        self._term._reply(data.encode("ascii", "replace"))

    def report_device_attributes(self, mode: int = 0, **kwargs: Any) -> None:
        """Primary DA: a VT220 with ANSI colour."""
        if mode == 0:
            self.write_process_input("\x1b[?62;22c")

    def report_secondary_attributes(self, mode: int = 0) -> None:
        """Secondary DA (CSI > c): terminal type 0, version 10, no ROM cartridge."""
        if mode == 0:
            self.write_process_input("\x1b[>0;10;0c")

    def _cursor_report(self) -> tuple[int, int]:
        x = min(self.cursor.x, self.columns - 1) + 1
        y = self.cursor.y + 1
        if mo.DECOM in self.mode and self.margins is not None:
            y -= self.margins.top
        return y, x

    def report_device_status(self, mode: int = 0, **kwargs: Any) -> None:
        if kwargs.get("private"):
            if mode == 6:  # DECXCPR
                row, col = self._cursor_report()
                self.write_process_input(f"\x1b[?{row};{col}R")
            return
        if mode == 5:
            self.write_process_input("\x1b[0n")
        elif mode == 6:
            row, col = self._cursor_report()
            self.write_process_input(f"\x1b[{row};{col}R")

    # -- bell and title ------------------------------------------------------------

    def bell(self, *args: Any) -> None:
        self._term.on_bell()

    def set_title(self, param: str) -> None:
        self._term._set_title(param)

    def set_icon_name(self, param: str) -> None:
        pass

    # -- SGR -----------------------------------------------------------------------

    def sgr(self, params: Sequence[_Param]) -> None:
        """SGR with colon sub-parameters, faint, and well-formed colour names only."""
        self.cursor.attrs = apply_sgr(self.cursor.attrs, tuple(params))

    def select_graphic_rendition(self, *attrs: int) -> None:
        self.sgr(attrs)


@functools.lru_cache(maxsize=4096)
def apply_sgr(attrs: Cell, params: tuple[_Param, ...]) -> Cell:
    """The attributes after SGR ``params``: a pure function, so its results are cached
    (programs repeat the same few SGR sequences endlessly).

    Colon sub-parameters (``38:2::R:G:B``, ``38:5:N``, ``4:3``), faint (2, cleared by 22)
    and only well-formed colours: names, or six hex digits with components clamped.
    """
    (data, fg, bg, bold, italics, underscore, strike, reverse, blink, faint) = attrs
    if not params:
        params = (0,)
    i, n = 0, len(params)
    while i < n:
        p = params[i]
        i += 1
        if isinstance(p, tuple):
            code = p[0] or 0
            if code in (38, 48, 58):
                colour = _sub_colour(p[1:])
                if colour is not None and code == 38:
                    fg = colour
                elif colour is not None and code == 48:
                    bg = colour
                continue
            if code == 4:
                underscore = len(p) < 2 or p[1] != 0
                continue
            p = code
        code = p or 0
        if code == 0:
            fg = bg = "default"
            bold = italics = underscore = strike = reverse = blink = faint = False
        elif 30 <= code <= 37:
            fg = COLOUR_NAMES[code - 30]
        elif 40 <= code <= 47:
            bg = COLOUR_NAMES[code - 40]
        elif 90 <= code <= 97:
            fg = COLOUR_NAMES[code - 82]
        elif 100 <= code <= 107:
            bg = COLOUR_NAMES[code - 92]
        elif code == 39:
            fg = "default"
        elif code == 49:
            bg = "default"
        elif code in (38, 48, 58):
            colour, used = _semicolon_colour(params, i)
            i += used
            if colour is not None and code == 38:
                fg = colour
            elif colour is not None and code == 48:
                bg = colour
        elif code == 1:
            bold = True
        elif code == 2:
            faint = True
        elif code == 3:
            italics = True
        elif code in (4, 21):
            underscore = True
        elif code in (5, 6):
            blink = True
        elif code == 7:
            reverse = True
        elif code == 9:
            strike = True
        elif code == 22:
            bold = faint = False
        elif code == 23:
            italics = False
        elif code == 24:
            underscore = False
        elif code == 25:
            blink = False
        elif code == 27:
            reverse = False
        elif code == 29:
            strike = False
    return Cell(data, fg, bg, bold, italics, underscore, strike, reverse, blink, faint)


def _sub_colour(sub: tuple[int | None, ...]) -> str | None:
    """Colon form after 38/48: ``5:N``, ``2:R:G:B`` or ``2:CS:R:G:B`` (ITU T.416)."""
    if not sub:
        return None
    kind = sub[0]
    if kind == 5 and len(sub) >= 2:
        n = sub[1] or 0
        return PALETTE_256[n] if n < 256 else None
    if kind == 2:
        rgb = sub[1:]
        if len(rgb) >= 4:
            rgb = rgb[1:4]
        if len(rgb) == 3:
            return _rgb(*rgb)
    return None


def _semicolon_colour(params: Sequence[_Param], i: int) -> tuple[str | None, int]:
    """Semicolon form after 38/48: ``5;N`` or ``2;R;G;B``.  Returns (colour, used)."""
    if i >= len(params) or isinstance(params[i], tuple):
        return None, 0
    kind = params[i]
    if kind == 5:
        if i + 1 < len(params) and not isinstance(params[i + 1], tuple):
            n = params[i + 1] or 0
            return (PALETTE_256[n] if n < 256 else None), 2  # type: ignore[operator,index]
        return None, 1
    if kind == 2:
        rgb = params[i + 1 : i + 4]
        if len(rgb) == 3 and not any(isinstance(v, tuple) for v in rgb):
            return _rgb(*rgb), 4  # type: ignore[arg-type]
        return None, 1 + len(rgb)
    return None, 1


# -- the parser ------------------------------------------------------------------------

GROUND, ESCAPE, CSI, OSC, STRING, STRING_ESC = range(6)

ESC = "\x1b"
_TEXT = re.compile("[^\x00-\x1f\x7f-\x9f]+")
# A complete CSI sequence or a complete simple escape sequence, in one match.
_ESC_SEQ = re.compile(
    "\x1b(?:\\[([0-?]*)([ -/]*)([@-~])|([ -/]*)([0-OQ-WYZ\\\\`-~]))|\x9b([0-?]*)([ -/]*)([@-~])"
)
_CSI_PARAMS = re.compile("[0-?]+")
# The body of an OSC/DCS string up to a possible terminator.
_STRING_BODY = re.compile("[^\x07\x18\x1a\x1b\x9c]+")

# CSI final -> (screen method, how many parameters it takes); None: all of them.
_CSI: dict[str, tuple[str, int | None]] = {
    "@": ("insert_characters", 1),
    "A": ("cursor_up", 1),
    "B": ("cursor_down", 1),
    "C": ("cursor_forward", 1),
    "D": ("cursor_back", 1),
    "E": ("cursor_down1", 1),
    "F": ("cursor_up1", 1),
    "G": ("cursor_to_column", 1),
    "H": ("cursor_position", 2),
    "I": ("tab_forward", 1),
    "J": ("erase_in_display", 1),
    "K": ("erase_in_line", 1),
    "L": ("insert_lines", 1),
    "M": ("delete_lines", 1),
    "P": ("delete_characters", 1),
    "S": ("scroll_up", 1),
    "X": ("erase_characters", 1),
    "Z": ("tab_backward", 1),
    "`": ("cursor_to_column", 1),
    "a": ("cursor_forward", 1),
    "b": ("repeat_last", 1),
    "c": ("report_device_attributes", 1),
    "d": ("cursor_to_line", 1),
    "e": ("cursor_down", 1),
    "f": ("cursor_position", 2),
    "g": ("clear_tab_stop", 1),
    "h": ("set_mode", None),
    "l": ("reset_mode", None),
    "n": ("report_device_status", 1),
    "r": ("set_margins", 2),
    "s": ("scosc", None),
    "u": ("restore_cursor", 0),
}
_CSI_PRIVATE: dict[str, tuple[str, int | None]] = {
    "h": ("set_mode", None),
    "l": ("reset_mode", None),
    "J": ("erase_in_display", 1),
    "K": ("erase_in_line", 1),
    "n": ("report_device_status", 1),
}
_ESCAPES: dict[str, str] = {
    "c": "reset",
    "D": "index",
    "E": "linefeed",
    "M": "reverse_index",
    "H": "set_tab_stop",
    "7": "save_cursor",
    "8": "restore_cursor",
}
_C0: dict[str, str] = {
    "\x07": "bell",
    "\x08": "backspace",
    "\x09": "tab",
    "\x0a": "linefeed",
    "\x0b": "linefeed",
    "\x0c": "linefeed",
    "\x0d": "carriage_return",
    "\x0e": "shift_out",
    "\x0f": "shift_in",
}
_C1: dict[str, str] = {
    "\x84": "index",
    "\x85": "linefeed",
    "\x88": "set_tab_stop",
    "\x8d": "reverse_index",
}
_C1_STRINGS = "\x90\x98\x9e\x9f"  # DCS, SOS, PM, APC


def _number(s: str) -> int | None:
    if not s:
        return None
    if len(s) > 9:
        return MAX_PARAM_VALUE
    v = int(s)
    return min(v, MAX_PARAM_VALUE)


@functools.lru_cache(maxsize=1024)
def parse_params(s: str) -> tuple[str, tuple[_Param, ...]] | None:
    """CSI parameter string -> (private prefix, parameters), or None when malformed.

    Only ASCII digits count (``isdigit`` accepts '²', which is what broke pyte); a colon
    group becomes a tuple of sub-parameters; empty parameters are ``None``.
    """
    prefix = ""
    if s and s[0] in "<=>?":
        prefix, s = s[0], s[1:]
    if not s:
        return prefix, ()
    if len(s) > MAX_PARAM_CHARS or "<" in s or "=" in s or ">" in s or "?" in s:
        return None
    out: list[_Param] = []
    for field in s.split(";", MAX_PARAMS)[:MAX_PARAMS]:
        if ":" in field:
            out.append(tuple(_number(p) for p in field.split(":", MAX_SUBPARAMS)[:MAX_SUBPARAMS]))
        else:
            out.append(_number(field))
    return prefix, tuple(out)


class _Parser:
    """An ECMA-48 parser in the spirit of the DEC/xterm state machine.

    Plain text and complete sequences are recognised with regular expressions; only
    sequences split across chunks, or containing embedded controls, go through the
    per-character state machine.  Every call into the screen is guarded: an exception
    drops that one sequence and parsing goes on with the next character.
    """

    def __init__(self, screen: _Screen, fast: bool = True) -> None:
        self.screen = screen
        self.fast = FastPath(screen, apply_sgr, parse_params) if fast else None
        screen.fast = self.fast
        self.state = GROUND
        self.buf = ""  # CSI parameters, or the stored part of an OSC string
        self.inter = ""  # intermediate bytes
        self.length = 0  # characters of the current string so far
        self.overflow = False  # the current sequence is being dropped
        self.string_kind = ""  # "]" for OSC, "P" etc. for the others
        self.errors = 0

    # -- main loop -----------------------------------------------------------------

    def feed(self, data: str) -> None:
        screen = self.screen
        draw = screen.draw
        text_match = _TEXT.match
        esc_match = _ESC_SEQ.match
        body_match = _STRING_BODY.match
        fast = self.fast.run if self.fast is not None else None
        settle = self.fast.settle if self.fast is not None else None
        i, n = 0, len(data)
        while i < n:
            state = self.state
            if state == GROUND:
                if fast is not None:
                    j = fast(data, i)
                    if j != i:
                        i = j
                        continue
                    settle()  # type: ignore[misc]  # the slow path needs the real screen
                m = text_match(data, i)
                if m is not None:
                    i = m.end()
                    self._guard(draw, m.group())
                    continue
                c = data[i]
                if c == ESC or c == "\x9b":
                    m = esc_match(data, i)
                    if m is not None:
                        i = m.end()
                        if m.group(3) is not None:
                            self._csi(m.group(1), m.group(2), m.group(3))
                        elif m.group(8) is not None:
                            self._csi(m.group(6), m.group(7), m.group(8))
                        else:
                            self._esc(m.group(4), m.group(5))
                        continue
            elif state == OSC or state == STRING:
                m = body_match(data, i)
                if m is not None:
                    i = self._string_body(data, i, m.end())
                    continue
            elif state == CSI and not self.inter:
                m = _CSI_PARAMS.match(data, i)
                if m is not None:  # a run of parameter characters split from its CSI
                    i = m.end()
                    if len(self.buf) + (i - m.start()) <= MAX_PARAM_CHARS:
                        self.buf += m.group()
                    else:
                        self.overflow = True
                    continue
            self._step(data[i])
            i += 1

    def _guard(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:  # noqa: BLE001 -- the point: one bad sequence, not the chunk
            self.screen.repair()
            self.errors += 1
            if self.errors <= 10 or self.errors % 1000 == 0:
                log.failure("Terminal: dropped a sequence that failed ({n} so far)", n=self.errors)

    # -- the per-character state machine ---------------------------------------------

    def _step(self, c: str) -> None:
        state = self.state
        if c == "\x18" or c == "\x1a":  # CAN, SUB: abort whatever is going on
            self.state = GROUND
            return
        if state == OSC or state == STRING:
            if c == ESC:
                self.state = STRING_ESC
            elif c == "\x07" or c == "\x9c":
                self._end_string()
            else:
                self._string_body(c, 0, 1)
            return
        if state == STRING_ESC:
            self._end_string()
            if c != "\\":
                self._step(ESC)
                self._step(c)
            return
        if c == ESC:
            self.state = ESCAPE
            self.inter = ""
            self.overflow = False
            return
        if c < " " or c == "\x7f":
            name = _C0.get(c)
            if name is not None:
                self._guard(getattr(self.screen, name))
            return
        if "\x80" <= c <= "\x9f":
            self._c1(c)
            return
        if state == GROUND:
            self._guard(self.screen.draw, c)
        elif state == ESCAPE:
            if " " <= c <= "/":
                self.inter += c
                self.overflow = self.overflow or len(self.inter) > MAX_INTERMEDIATES
            elif c == "[" and not self.inter:
                self._begin_csi()
            elif c in "]PX^_" and not self.inter:
                self._begin_string(c)
            else:
                self.state = GROUND
                if not self.overflow:
                    self._esc(self.inter, c)
        elif state == CSI:
            if "0" <= c <= "?":
                if self.inter:
                    self.overflow = True  # parameters after intermediates: malformed
                elif len(self.buf) < MAX_PARAM_CHARS:
                    self.buf += c
                else:
                    self.overflow = True
            elif " " <= c <= "/":
                self.inter += c
                self.overflow = self.overflow or len(self.inter) > MAX_INTERMEDIATES
            elif "@" <= c <= "~":
                self.state = GROUND
                if not self.overflow:
                    self._csi(self.buf, self.inter, c)
            else:
                self.overflow = True  # not ASCII: ignore the sequence up to its final byte
        else:
            self.state = GROUND

    def _c1(self, c: str) -> None:
        if c == "\x9b":
            self._begin_csi()
        elif c == "\x9d":
            self._begin_string("]")
        elif c in _C1_STRINGS:
            self._begin_string(c)
        else:
            self.state = GROUND
            name = _C1.get(c)
            if name is not None:
                self._guard(getattr(self.screen, name))

    def _begin_csi(self) -> None:
        self.state = CSI
        self.buf = ""
        self.inter = ""
        self.overflow = False

    def _begin_string(self, kind: str) -> None:
        self.state = OSC if kind == "]" else STRING
        self.string_kind = kind
        self.buf = ""
        self.length = 0

    def _string_body(self, data: str, start: int, end: int) -> int:
        """Take ``data[start:end]`` into the current string; returns where parsing goes on.

        Past ``MAX_STRING`` characters the string is abandoned (an unterminated OSC must
        not swallow all later output) and parsing resumes right there, as plain output.
        Only the first ``MAX_OSC_STORED`` characters of an OSC are kept in memory.
        """
        room = MAX_STRING - self.length
        if end - start > room:
            self.state = GROUND
            self.buf = ""
            return start + max(room, 0)
        self.length += end - start
        if self.state == OSC and len(self.buf) < MAX_OSC_STORED:
            self.buf += data[start : min(end, start + MAX_OSC_STORED - len(self.buf))]
        return end

    def _end_string(self) -> None:
        was_osc = self.string_kind == "]"
        self.state = GROUND
        body, self.buf = self.buf, ""
        if was_osc and self.length <= MAX_OSC_STORED:
            self._guard(self._osc, body)

    def _osc(self, body: str) -> None:
        code, _, param = body.partition(";")
        if code in ("0", "2"):
            self.screen.set_title(param)

    # -- dispatch --------------------------------------------------------------------

    def _esc(self, inter: str, final: str) -> None:
        screen = self.screen
        if not inter:
            name = _ESCAPES.get(final)
            if name is not None:
                self._guard(getattr(screen, name))
            elif final == "=":
                screen._term.modes.app_keypad = True
            elif final == ">":
                screen._term.modes.app_keypad = False
        elif inter == "#" and final == "8":
            self._guard(screen.alignment_display)
        elif inter in ("(", ")"):
            self._guard(screen.define_charset, final, inter)

    def _csi(self, params: str, inter: str, final: str) -> None:
        if inter:
            return  # DECSCUSR, DECSTR, ...: nothing we show
        parsed = parse_params(params)
        if parsed is None:
            return
        prefix, args = parsed
        screen = self.screen
        if final == "m":
            if not prefix:
                self._guard(screen.sgr, args)
            return
        if prefix == "":
            entry = _CSI.get(final)
            if final == "T" and len(args) <= 1:
                entry = ("scroll_down", 1)
            kwargs: dict[str, Any] = {}
        elif prefix == "?":
            entry = _CSI_PRIVATE.get(final)
            kwargs = {"private": True}
        elif prefix == ">" and final == "c":
            entry = ("report_secondary_attributes", 1)
            kwargs = {}
        else:
            return
        if entry is None:
            return
        name, arity = entry
        ints = [(p[0] if isinstance(p, tuple) else p) or 0 for p in args]
        if arity is not None:
            ints = ints[:arity]
        self._guard(getattr(screen, name), *ints, **kwargs)


# -- the public face -------------------------------------------------------------------


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


def _sanitize_title(title: str) -> str:
    clean = "".join(ch for ch in title[: MAX_TITLE * 4] if unicodedata.category(ch)[0] != "C")
    return clean[:MAX_TITLE]


class Terminal:
    """A VT/xterm-compatible screen fed with the device's bytes.

    Promises: ``feed`` never raises and spends bounded time per byte; ``take_damage``
    returns everything that changed since its previous call (content, cursor, banner),
    such that the old picture + the damage = the new picture; ``line`` always returns
    exactly ``cols`` well-formed cells.  Replies the terminal owes the program (DA, DSR)
    go to ``reply``, never to the screen.

    ``fast`` (the default) routes common output through
    :class:`~vncmux.console.fastpath.FastPath`, 20-60 times faster and giving the same
    screen and damage as the pyte-based slow path (``fast=False``, kept for the
    differential tests and as the reference).
    """

    def __init__(
        self,
        cols: int,
        rows: int,
        encoding: str = "utf-8",
        reply: Callable[[bytes], None] = lambda b: None,
        fast: bool = True,
    ) -> None:
        self.cols = cols
        self.rows = rows
        self.encoding = encoding
        self.reply = reply
        self.modes = Modes()
        self.title = ""
        self.on_bell: Callable[[], None] = lambda: None
        self.on_title: Callable[[str], None] = lambda t: None
        self._status: str | None = None
        self._decoder = codecs.getincrementaldecoder(encoding)("replace")
        self._screen = _Screen(cols, rows, self)
        self._parser = _Parser(self._screen, fast)
        self._screen.dirty.clear()
        self._screen.damage.mark_all()
        self._last_cursor: tuple[int, int, bool] | None = None

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

    def _reply(self, data: bytes) -> None:
        try:
            self.reply(data)
        except Exception:  # noqa: BLE001 -- a reply must not break parsing
            log.failure("Terminal: reply callback failed")

    def _set_title(self, title: str) -> None:
        title = _sanitize_title(title)
        if title != self.title:
            self.title = title
            self.on_title(title)

    # -- state -----------------------------------------------------------------------

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
        cols = self.cols
        row = self._screen.buffer.get(y)
        if row is None:
            return [DEFAULT_CELL] * cols
        cells = list(map(row.get, range(cols), itertools.repeat(row.default, cols)))
        text = "".join(map(_DATA, cells))
        if len(text) == cols and text.isascii():
            return cells  # one ASCII character a cell: nothing wide to tidy (the common case)
        x = 0
        while x < cols:
            d = cells[x].data
            if not d.isascii():
                if d == "":
                    cells[x] = cells[x]._replace(data=" ")  # orphan right half
                elif _cached_wcwidth(d[0]) == 2:
                    if x + 1 < cols and cells[x + 1].data == "":
                        x += 2
                        continue
                    cells[x] = cells[x]._replace(data=" ")  # lost its right half
            x += 1
        return cells

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
            message = _sanitize_title(message) if message else " "
        if message != self._status:
            self._status = message
            self._screen.dirty.add(self.rows - 1)

    def resize(self, cols: int, rows: int) -> None:
        """New size, everything marked dirty.  When rows shrink, lines leave at the top
        only as far as needed to keep the cursor on screen (as xterm does)."""
        cols, rows = max(1, cols), max(1, rows)
        self._settle()
        s = self._screen
        delta = max(0, s.cursor.y - (rows - 1))
        if delta:
            for buf in (s.buffer, s._main_buffer):
                if buf is None:
                    continue
                for y in range(s.lines):
                    moved = buf.pop(y + delta, None) if y + delta < s.lines else None
                    if moved is None:
                        buf.pop(y, None)
                    else:
                        buf[y] = moved
            s.cursor.y = max(0, s.cursor.y - delta)
        for buf in (s.buffer, s._main_buffer):
            for y in [y for y in (buf or {}) if y >= rows]:
                del buf[y]  # type: ignore[union-attr]
        if cols < s.columns:
            for buf in (s.buffer, s._main_buffer):
                for line in (buf or {}).values():
                    for x in range(cols, s.columns):
                        line.pop(x, None)
        s.lines, s.columns = rows, cols
        s.margins = None
        s.tabstops = set(range(8, cols, 8))
        s.cursor.x = min(s.cursor.x, cols - 1)
        s.cursor.y = min(s.cursor.y, rows - 1)
        self.cols, self.rows = cols, rows
        s.dirty.clear()
        s.damage = Damage(rows)
        s.damage.mark_all()
        s.cursor_ref = None
        s.banner_ref = None
        self._last_cursor = None


__all__ = ["COLOUR_NAMES", "PALETTE_256", "Cell", "Terminal", "parse_params"]
