"""What a character cell holds, how SGR changes it, and which characters take no cell.

:class:`Cell` is pyte's ``Char`` plus ``faint``; :func:`apply_sgr` is the one
implementation of SGR (select graphic rendition) that both the slow path and the fast path
use, so they agree on every parameter by construction.
"""

from __future__ import annotations

import functools
import itertools
import operator
import re
import unicodedata
from collections.abc import Sequence
from typing import NamedTuple

from pyte.screens import StaticDefaultDict
from pyte.screens import wcwidth as _cached_wcwidth
from wcwidth import wcwidth as _wcwidth

from vncmux.console.palette import COLOUR_NAMES


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
    protected: int = 0  # 1: DECSCA, 2: SPA; spared by selective erase (and by ED in ISO mode)


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
DATA = operator.itemgetter(0)  # a cell's data (faster than the attribute)

# A CSI parameter: a number, empty (None), or a colon group of sub-parameters.
Param = int | None | tuple[int | None, ...]


def _clamp8(v: int | None) -> int:
    return 0 if v is None else (min(v, 255))


def _rgb(r: int | None, g: int | None, b: int | None) -> str:
    return f"{_clamp8(r):02x}{_clamp8(g):02x}{_clamp8(b):02x}"


Line = StaticDefaultDict[int, Cell]


def well_formed(cells: list[Cell]) -> list[Cell]:
    """``cells`` with wide characters made whole (pyte can leave a half when one is partly
    overwritten): the left half has the character, the right half ``''``.  Changed in place."""
    cols = len(cells)
    text = "".join(map(DATA, cells))
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


def line_cells(line: Line | None, cols: int) -> list[Cell]:
    """Exactly ``cols`` cells of a stored line (None: a blank line), as stored."""
    if line is None:
        return [DEFAULT_CELL] * cols
    return list(map(line.get, range(cols), itertools.repeat(line.default, cols)))


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


_ZW_CLASS, ZW_DROP = _zero_width_tables()
ZERO_WIDTH_RUN = re.compile(f"[{_ZW_CLASS}]+")


@functools.lru_cache(maxsize=4096)
def apply_sgr(attrs: Cell, params: tuple[Param, ...]) -> Cell:
    """The attributes after SGR ``params``: a pure function, so its results are cached
    (programs repeat the same few SGR sequences endlessly).

    Colon sub-parameters (``38:2::R:G:B``, ``38:5:N``, ``4:3``), faint (2, cleared by 22)
    and only well-formed colours: names, or six hex digits with components clamped.
    """
    (data, fg, bg, bold, italics, underscore, strike, reverse, blink, faint, protected) = attrs
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
    return Cell(data, fg, bg, bold, italics, underscore, strike, reverse, blink, faint, protected)


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


def _semicolon_colour(params: Sequence[Param], i: int) -> tuple[str | None, int]:
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


__all__ = [
    "COLOUR_NAMES",
    "DATA",
    "DEFAULT_CELL",
    "PALETTE_256",
    "ZERO_WIDTH_RUN",
    "ZW_DROP",
    "Cell",
    "Line",
    "Param",
    "apply_sgr",
    "line_cells",
    "well_formed",
]
