"""Terminal colour names → RGB: the xterm 16/256-colour palette and attribute rules.

The terminal hands us colours as strings (``'default'``, an ANSI name such as ``'red'`` or
``'brightcyan'``, or six hex digits for 256-colour and true-colour SGR).  ``resolve`` turns a
cell's colours and attributes into the two RGB triples a cell is painted with.  It is pure
and memoised: a screen holds few distinct combinations, so the renderer's inner loop never
parses a colour twice.

Defaults (documented choice): light grey ``#e5e5e5`` (xterm's colour 7) on black, like a Linux
console or ``xterm -rv`` — high contrast, and black backgrounds compress best over RFB.  The
16 base colours are a ``Palette``: ``--palette`` picks xterm's, the Linux console's, the VGA
text mode's, or 16 from a file (``load``); the default is xterm's with colour 4 raised to
``#4040ff`` so that dark blue on the black background stays readable (xterm's ``#0000ee``
has a contrast ratio of 2.2 against black, ``#4040ff`` 3.3).
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
XTERM_16: tuple[RGB, ...] = (
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

#: The default 16: xterm's, with a blue that is readable on black (see the module docstring).
ANSI_16: tuple[RGB, ...] = XTERM_16[:4] + ((0x40, 0x40, 0xFF),) + XTERM_16[5:]

#: The IBM VGA text-mode colours (CGA's, brown included), which the Linux kernel's console
#: also uses as its default palette: the two names give the same 16.
VGA_16: tuple[RGB, ...] = tuple(
    (0xAA, 0x55, 0x00)  # CGA monitors turned dark yellow into brown
    if i == 3
    else (
        0x55 * (i >= 8) + 0xAA * bool(i & 1),
        0x55 * (i >= 8) + 0xAA * bool(i & 2),
        0x55 * (i >= 8) + 0xAA * bool(i & 4),
    )
    for i in range(16)
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

#: ``--palette`` names → their 16 colours.
NAMED: dict[str, tuple[RGB, ...]] = {
    "default": ANSI_16,
    "xterm": XTERM_16,
    "linux": VGA_16,
    "vga": VGA_16,
}


class PaletteError(ValueError):
    """A palette name or file that cannot be used; the message says why."""


def parse_colour_line(text: str) -> RGB | None:
    """One colour as a palette file writes it: ``#rrggbb``, ``rrggbb``, ``#rgb`` or
    ``rgb:rr/gg/bb`` (X11's form); None when it is none of those."""
    text = text.strip().lower()
    if text.startswith("rgb:"):
        parts = text[4:].split("/")
        if len(parts) == 3 and all(len(p) == 2 for p in parts):
            text = "".join(parts)
        else:
            return None
    text = text.removeprefix("#")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    if len(text) != 6 or any(c not in "0123456789abcdef" for c in text):
        return None
    value = int(text, 16)
    return (value >> 16, (value >> 8) & 0xFF, value & 0xFF)


def parse_palette_text(text: str, where: str = "palette") -> tuple[RGB, ...]:
    """A palette file's text → 16 colours.  One colour a line, in order 0–15, as its first
    word (the rest of the line is free for a note); blank lines and lines starting with
    ``#`` or ``!`` that are not a colour are comments; anything else is an error naming
    the line.  Pure: the caller reads the file."""
    colours: list[RGB] = []
    for number, raw in enumerate(text.splitlines(), 1):
        words = raw.split()
        if not words:
            continue
        rgb = parse_colour_line(words[0])
        if rgb is None:
            if words[0][0] in "#!":
                continue
            raise PaletteError(f"{where}:{number}: not a colour (#rrggbb): {raw.strip()!r}")
        colours.append(rgb)
    if len(colours) != 16:
        raise PaletteError(f"{where}: needs exactly 16 colours (0-15), found {len(colours)}")
    return tuple(colours)


class Palette:
    """The 16 base colours and the rules that turn a cell's colours and attributes into
    the two RGB triples it is painted with (``resolve``, memoised per palette)."""

    def __init__(self, base16: tuple[RGB, ...] = ANSI_16) -> None:
        if len(base16) != 16:
            raise PaletteError(f"a palette has 16 colours, not {len(base16)}")
        self.base16 = tuple(base16)
        self.default_fg = self.base16[7]
        self.default_bg = self.base16[0]
        self.default_bold_fg = self.base16[15]
        self.resolve = lru_cache(maxsize=4096)(self._resolve)

    def parse(self, color: str, default: RGB) -> RGB:
        """One colour string → RGB; ``default`` for ``'default'`` and the unparseable."""
        index = NAME_INDEX.get(color)
        if index is not None:
            return self.base16[index]
        if len(color) == 6:
            try:
                value = int(color, 16)
            except ValueError:
                return default
            return (value >> 16, (value >> 8) & 0xFF, value & 0xFF)
        return default

    def _resolve(
        self, fg: str, bg: str, bold: bool, faint: bool, reverse: bool, screen_reverse: bool
    ) -> tuple[RGB, RGB]:
        """A cell's (foreground, background) RGB after bold, faint and reverse rules.
        Bounded memo: hostile true-colour input can name 2**48 pairs."""
        index = NAME_INDEX.get(fg)
        if bold and fg == "default":
            fg_rgb = self.default_bold_fg
        elif bold and index is not None and index < 8:
            fg_rgb = self.base16[index + 8]
        else:
            fg_rgb = self.parse(fg, self.default_fg)
        bg_rgb = self.parse(bg, self.default_bg)
        if faint:
            fg_rgb = blend(fg_rgb, bg_rgb, 0.5)
        if reverse != screen_reverse:
            fg_rgb, bg_rgb = bg_rgb, fg_rgb
        return fg_rgb, bg_rgb


def blend(a: RGB, b: RGB, weight: float) -> RGB:
    """``weight`` of ``a`` plus ``1 - weight`` of ``b``, rounded (used for faint and shades)."""
    return (
        round(a[0] * weight + b[0] * (1 - weight)),
        round(a[1] * weight + b[1] * (1 - weight)),
        round(a[2] * weight + b[2] * (1 - weight)),
    )


#: The default palette; ``resolve`` and ``parse`` below are its, for callers that have none.
DEFAULT = Palette()


def parse(color: str, default: RGB) -> RGB:
    """One colour string → RGB with the default palette (see ``Palette.parse``)."""
    return DEFAULT.parse(color, default)


def resolve(
    fg: str, bg: str, bold: bool, faint: bool, reverse: bool, screen_reverse: bool
) -> tuple[RGB, RGB]:
    """A cell's (foreground, background) RGB with the default palette."""
    return DEFAULT.resolve(fg, bg, bold, faint, reverse, screen_reverse)


def named(name: str) -> Palette | None:
    """The palette called ``name`` (``NAMED``), or None when it is not a name."""
    base = NAMED.get(name.lower())
    return Palette(base) if base is not None else None
