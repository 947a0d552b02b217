"""Finding and loading the console font: bundled Terminus, or a user's ``--font`` file.

The bundled font is Terminus as OpenType bitmap strikes (OFL).  It lives in ``fonts/`` of a
source checkout and is installed by ``setup.cfg`` into ``<prefix>/share/vncmux/fonts``; we
look in every place an install can put it and, failing that, say where we looked.  A crisp
bitmap font is the default because it decides the bandwidth: two colours a cell keep a full
text screen small in every encoding.  A user font (``--font PATH``, any TrueType/OpenType
file FreeType reads) has one face only: bold is synthesised by the renderer and italics fall
back to upright.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from PIL import ImageFont

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

    def face(self, bold: bool, italic: bool) -> ImageFont.FreeTypeFont:
        if bold:
            return self.bold_italic if italic else self.bold
        return self.italic if italic else self.regular


def _open(path: Path | str, size: int) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)
    except OSError as e:
        raise FontError(f"cannot load font {path} at size {size}: {e}") from e


def load_fonts(font_path: str | None = None, font_size: int = DEFAULT_SIZE) -> FontSet:
    """Open the bundled Terminus (``font_path`` None) or a user font at ``font_size`` pixels."""
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
        )
    if not Path(font_path).is_file():
        raise FontError(f"font file {font_path} does not exist")
    face = _open(font_path, font_size)
    return FontSet(face, face, face, face, synthetic_bold=True, bitmap=False)
