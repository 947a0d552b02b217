"""Finding and loading the console font (bundled Terminus, or a user's ``--font`` file) and
the ``--palette`` file.

The bundled font is Terminus as OpenType bitmap strikes (OFL).  It lives in ``fonts/`` of a
source checkout and is installed by ``setup.cfg`` into ``<prefix>/share/vncmux/fonts``; we
look in every place an install can put it and, failing that, say where we looked.  A crisp
bitmap font is the default because it decides the bandwidth: two colours a cell keep a full
text screen small in every encoding.  A user font (``--font PATH``: TrueType/OpenType, or a
bitmap font FreeType reads: OTB, BDF, PCF) has one face only: bold is synthesised by the
renderer and italics fall back to upright.

Behind either stands GNU Unifont (OFL-1.1 or GPL-2+ with the font embedding exception,
``fonts/UNIFONT-LICENSE.txt``): ``unifont.otf`` covers the Basic Multilingual Plane,
``unifont_upper.otf`` the planes above (monochrome emoji).  Its glyphs are 8×16 or 16×16
pixels at ``UNIFONT_SIZE``; the renderer fits them into the cell (``console/glyphs.py``).
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from PIL import ImageFont

from vncmux.console import palette as palettemod
from vncmux.console.palette import Palette

#: Pixel sizes at which the bundled Terminus has bitmap strikes.
TERMINUS_SIZES: tuple[int, ...] = (12, 14, 16, 18, 20, 24, 28, 32)
DEFAULT_SIZE = 16

#: The four faces of the bundled font, by (bold, italic).
TERMINUS_FILES: dict[tuple[bool, bool], str] = {
    (False, False): "terminus-normal.otb",
    (True, False): "terminus-bold.otb",
    (False, True): "terminus-oblique.otb",
    (True, True): "terminus-bold-oblique.otb",
}

#: The fallback faces behind the main font, in the order they are asked.
UNIFONT_FILES: tuple[str, ...] = ("unifont.otf", "unifont_upper.otf")
#: The pixel size at which Unifont's outlines are its 8×16 / 16×16 bitmaps exactly.
UNIFONT_SIZE = 16

#: Environment variable that overrides where the bundled fonts are looked for.
FONT_DIR_ENV = "VNCMUX_FONT_DIR"


class FontError(ValueError):
    """The font cannot be found or loaded; the message says what to do about it."""


def candidate_dirs() -> list[Path]:
    """Every directory the bundled fonts may be in, most specific first."""
    dirs: list[Path] = []
    env = os.environ.get(FONT_DIR_ENV)
    if env:
        dirs.append(Path(env))
    dirs.append(Path(__file__).resolve().parent.parent / "fonts")  # source checkout
    share = Path("share") / "vncmux" / "fonts"
    dirs.append(Path(sys.prefix) / share)
    try:
        dirs.append(Path(sysconfig.get_path("data")) / share)
    except KeyError:  # pragma: no cover - exotic install schemes
        pass
    user_base = getattr(site, "USER_BASE", None)
    if user_base:
        dirs.append(Path(user_base) / share)
    if sys.base_prefix != sys.prefix:
        dirs.append(Path(sys.base_prefix) / share)
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def find_font_dir() -> Path:
    """The directory holding the bundled Terminus faces, or ``FontError`` naming the places
    searched (a broken install must fail loudly at startup, not render nothing)."""
    wanted = TERMINUS_FILES[(False, False)]
    searched = candidate_dirs()
    for d in searched:
        if (d / wanted).is_file():
            return d
    places = ", ".join(str(d) for d in searched)
    raise FontError(
        f"bundled font {wanted} not found (looked in: {places}); reinstall vncmux, set "
        f"{FONT_DIR_ENV}, or pass --font PATH to a TrueType/OpenType font"
    )


@dataclass(frozen=True)
class FontSet:
    """The faces a terminal needs.  ``synthetic_bold`` says the bold face is the regular
    one and the renderer must embolden it itself."""

    regular: ImageFont.FreeTypeFont
    bold: ImageFont.FreeTypeFont
    italic: ImageFont.FreeTypeFont
    bold_italic: ImageFont.FreeTypeFont
    synthetic_bold: bool
    bitmap: bool
    #: Faces asked, in order, for a character the main faces lack (at ``UNIFONT_SIZE``).
    fallbacks: tuple[ImageFont.FreeTypeFont, ...] = ()

    def face(self, bold: bool, italic: bool) -> ImageFont.FreeTypeFont:
        if bold:
            return self.bold_italic if italic else self.bold
        return self.italic if italic else self.regular


def _open(path: Path | str, size: int) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)
    except OSError as e:
        hint = "; a bitmap font has fixed sizes only" if "pixel size" in str(e) else ""
        raise FontError(f"cannot load font {path} at size {size}: {e}{hint}") from e


def load_fallbacks() -> tuple[ImageFont.FreeTypeFont, ...]:
    """The bundled Unifont faces that can be found (each looked for in every candidate
    directory); a missing one only means more replacement boxes, so it is skipped."""
    found: list[ImageFont.FreeTypeFont] = []
    for name in UNIFONT_FILES:
        for d in candidate_dirs():
            if (d / name).is_file():
                found.append(_open(d / name, UNIFONT_SIZE))
                break
    return tuple(found)


def load_fonts(
    font_path: str | None = None, font_size: int = DEFAULT_SIZE, *, fallback: bool = True
) -> FontSet:
    """Open the bundled Terminus (``font_path`` None) or a user font at ``font_size``
    pixels, with the Unifont fallbacks behind it unless ``fallback`` is false."""
    fallbacks = load_fallbacks() if fallback else ()
    if font_size <= 0:
        raise FontError(f"font size must be positive, not {font_size}")
    if font_path is None:
        if font_size not in TERMINUS_SIZES:
            sizes = ", ".join(map(str, TERMINUS_SIZES))
            raise FontError(
                f"the bundled Terminus font has sizes {sizes}, not {font_size}; "
                "use one of those or --font PATH"
            )
        d = find_font_dir()
        faces = {}
        for key, name in TERMINUS_FILES.items():
            path = d / name
            faces[key] = _open(
                path if path.is_file() else d / TERMINUS_FILES[(False, False)],
                font_size,
            )
        return FontSet(
            regular=faces[(False, False)],
            bold=faces[(True, False)],
            italic=faces[(False, True)],
            bold_italic=faces[(True, True)],
            synthetic_bold=False,
            bitmap=True,
            fallbacks=fallbacks,
        )
    if not Path(font_path).is_file():
        raise FontError(f"font file {font_path} does not exist")
    face = _open(font_path, font_size)
    bitmap = Path(font_path).suffix.lower() in BITMAP_SUFFIXES
    return FontSet(face, face, face, face, synthetic_bold=True, bitmap=bitmap, fallbacks=fallbacks)


#: File name endings of bitmap fonts (FreeType reads them; they have fixed sizes only).
BITMAP_SUFFIXES = (".otb", ".bdf", ".pcf", ".gz")


def load_palette(value: str) -> Palette:
    """``--palette``: a name of ``palette.NAMED``, or the path of a file of 16 colours
    (``palette.parse_palette_text`` says the format); ``FontError`` says what is wrong."""
    found = palettemod.named(value)
    if found is not None:
        return found
    try:
        with open(value, encoding="utf-8") as f:
            text = f.read(1 << 16)
    except (OSError, UnicodeError) as e:
        why = os.strerror(e.errno).lower() if isinstance(e, OSError) and e.errno else str(e)
        names = ", ".join(palettemod.NAMED)
        raise FontError(f"not a palette name ({names}) nor a readable file: {why}") from None
    try:
        return palettemod.Palette(palettemod.parse_palette_text(text, value))
    except palettemod.PaletteError as e:
        raise FontError(str(e)) from None
