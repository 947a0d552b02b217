"""``--font``, ``--font-size``, ``--scale``, ``--palette`` → a ``FontSpec``: how the
console's cells are drawn.  Pure, like ``vncmux.config``, which calls ``parse_font``;
whether the font file loads at that size and the palette file holds 16 colours is for
``vncmux.preflight`` (it reads them)."""

from __future__ import annotations

from vncmux.errors import ConfigError
from vncmux.qemu_opts import parse_int
from vncmux.specs import FontSpec

#: Pixel sizes a font may be asked for (the bundled Terminus has 12–32: preflight checks).
FONT_SIZES = (6, 128)
#: Largest ``--scale`` (each font pixel becomes scale×scale framebuffer pixels).
MAX_SCALE = 4
#: The ``--palette`` names (``vncmux.console.palette.NAMED``); anything else is a file.
PALETTE_NAMES = ("default", "xterm", "linux", "vga")


def parse_font(
    font: str | None = None,
    font_size: str | int = 16,
    scale: str | int = 1,
    palette: str = "default",
) -> FontSpec:
    """The four options, checked for form: a size and scale in range, a non-empty font
    path, a palette name or path."""
    if font is not None and not font.strip():
        raise ConfigError("--font: give the path of a BDF, PCF, OTB, TTF or OTF font file")
    size = parse_int("--font-size", font_size, *FONT_SIZES)
    factor = parse_int("--scale", scale, 1, MAX_SCALE)
    palette = palette.strip()
    if not palette:
        raise ConfigError(
            f"--palette: give one of {', '.join(PALETTE_NAMES)} or a file of 16 colours"
        )
    name = palette.lower()
    return FontSpec(
        path=font,
        size=size,
        scale=factor,
        palette=name if name in PALETTE_NAMES else palette,
    )
