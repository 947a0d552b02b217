"""Terminal colour names → RGB: the xterm 16/256-colour palette and attribute rules.

The terminal hands us colours as strings (``'default'``, an ANSI name such as ``'red'`` or
``'brightcyan'``, or six hex digits for 256-colour and true-colour SGR).  ``resolve`` turns a
cell's colours and attributes into the two RGB triples a cell is painted with.  It is pure
and memoised: a screen holds few distinct combinations, so the renderer's inner loop never
parses a colour twice.

Defaults (documented choice): light grey ``#e5e5e5`` (xterm's colour 7) on black, like a Linux
console or ``xterm -rv`` — high contrast, and black backgrounds compress best over RFB.
Bold with the default foreground or one of the eight normal ANSI colours switches to the
bright variant (xterm ``boldColors``); faint blends the foreground half-way toward the
background; reverse swaps foreground and background, and a reverse-video screen
(DECSCNM) inverts every cell once more.  Unknown colour strings (pyte produces a few, e.g.
``'bfightmagenta'``) fall back to the default rather than failing.
"""

from __future__ import annotations

from functools import lru_cache

RGB = tuple[int, int, int]

#: The 16 ANSI colours as xterm draws them, indices 0–15.
ANSI_16: tuple[RGB, ...] = (
    (0x00, 0x00, 0x00),
    (0xCD, 0x00, 0x00),
    (0x00, 0xCD, 0x00),
    (0xCD, 0xCD, 0x00),
    (0x00, 0x00, 0xEE),
    (0xCD, 0x00, 0xCD),
    (0x00, 0xCD, 0xCD),
    (0xE5, 0xE5, 0xE5),
    (0x7F, 0x7F, 0x7F),
    (0xFF, 0x00, 0x00),
    (0x00, 0xFF, 0x00),
    (0xFF, 0xFF, 0x00),
    (0x5C, 0x5C, 0xFF),
    (0xFF, 0x00, 0xFF),
    (0x00, 0xFF, 0xFF),
    (0xFF, 0xFF, 0xFF),
)

#: pyte's names for SGR 30–37 (``brown`` is yellow), in palette order.
ANSI_NAMES: tuple[str, ...] = (
    "black",
    "red",
    "green",
    "brown",
    "blue",
    "magenta",
    "cyan",
    "white",
)

#: The 16 colour names a terminal cell may carry, normal (0–7) then bright (8–15).
COLOUR_NAMES: tuple[str, ...] = ANSI_NAMES + tuple("bright" + name for name in ANSI_NAMES)

#: name → palette index, for the normal (0–7) and bright (8–15) names.
NAME_INDEX: dict[str, int] = {name: i for i, name in enumerate(COLOUR_NAMES)}


def _build_256() -> tuple[RGB, ...]:
    levels = (0, 0x5F, 0x87, 0xAF, 0xD7, 0xFF)
    cube = [(levels[r], levels[g], levels[b]) for r in range(6) for g in range(6) for b in range(6)]
    greys = [(v, v, v) for v in (8 + 10 * i for i in range(24))]
    return ANSI_16 + tuple(cube) + tuple(greys)


#: xterm's 256-colour palette: 16 ANSI colours, the 6×6×6 cube, 24 greys.
COLORS_256: tuple[RGB, ...] = _build_256()

DEFAULT_FG: RGB = ANSI_16[7]
DEFAULT_BG: RGB = ANSI_16[0]
#: What bold does to the default foreground (bright white, as a Linux console does).
DEFAULT_BOLD_FG: RGB = ANSI_16[15]


def parse(color: str, default: RGB) -> RGB:
    """One colour string → RGB; ``default`` for ``'default'`` and for anything unparseable."""
    index = NAME_INDEX.get(color)
    if index is not None:
        return ANSI_16[index]
    if len(color) == 6:
        try:
            value = int(color, 16)
        except ValueError:
            return default
        return (value >> 16, (value >> 8) & 0xFF, value & 0xFF)
    return default


def blend(a: RGB, b: RGB, weight: float) -> RGB:
    """``weight`` of ``a`` plus ``1 - weight`` of ``b``, rounded (used for faint and shades)."""
    return (
        round(a[0] * weight + b[0] * (1 - weight)),
        round(a[1] * weight + b[1] * (1 - weight)),
        round(a[2] * weight + b[2] * (1 - weight)),
    )


@lru_cache(maxsize=4096)
def resolve(
    fg: str, bg: str, bold: bool, faint: bool, reverse: bool, screen_reverse: bool
) -> tuple[RGB, RGB]:
    """A cell's (foreground, background) RGB after bold, faint and reverse rules.

    Bounded memo: hostile true-colour input can name 2**48 pairs, so the cache is an LRU.
    """
    index = NAME_INDEX.get(fg)
    if bold and fg == "default":
        fg_rgb = DEFAULT_BOLD_FG
    elif bold and index is not None and index < 8:
        fg_rgb = ANSI_16[index + 8]
    else:
        fg_rgb = parse(fg, DEFAULT_FG)
    bg_rgb = parse(bg, DEFAULT_BG)
    if faint:
        fg_rgb = blend(fg_rgb, bg_rgb, 0.5)
    if reverse != screen_reverse:
        fg_rgb, bg_rgb = bg_rgb, fg_rgb
    return fg_rgb, bg_rgb
