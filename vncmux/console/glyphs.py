"""Glyph masks: what ink a cell's text puts where, whatever font has the character.

``Glyphs`` turns a cell's text (a base character and its combining marks), its bold and
italic flags and its width in cells into one 'L' mask the size of those cells, and keeps
the masks in a bounded LRU cache: a mask is shared by every colour of a glyph, so the
fallback chain costs nothing after a character's first use.

Where the ink comes from, first match wins:

- box drawing (U+2500–U+257F) and block elements (U+2580–U+259F) are drawn by code from the
  cell size (``boxdraw``), so lines meet exactly across cells;
- the main font's face for the cell's bold/italic (Terminus or ``--font``);
- the fallback faces in order (GNU Unifont: the BMP, then the planes above), drawn at their
  native 8×16 / 16×16 size, one-bit, then fitted into the cell: an integer nearest-neighbour
  enlargement when one fits closely, otherwise a nearest-neighbour one to the largest size
  that fits, or an ink-keeping reduction for cells smaller than Unifont's; centred.  Bold is
  overstruck, italic is upright (Unifont has one face);
- a replacement glyph (a solid box with a '?' cut out) for what no face has.

A character is "missing" from a face when it renders exactly as the face's ``.notdef``
does: Pillow exposes no glyph index.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from PIL import Image, ImageDraw, ImageFont

from vncmux import fonts as fontmod
from vncmux.console.boxdraw import BOX_TABLE, BoxPainter, block_mask

#: Most glyph masks kept (a mask is shared by every colour of a glyph).
MASK_CACHE_SIZE = 4096
#: Most combining marks drawn over one base (pyte lets a cell collect thousands).
MAX_MARKS = 8
#: Most code points whose presence in a face is remembered.
COVERAGE_CACHE_SIZE = 16384
#: A fallback glyph reduced to fit a small cell keeps a pixel whose share of ink is at
#: least this (of 255): a one-pixel stroke halved still shows.
SHRINK_INK = 64

_NOTDEF_PROBE = "\U0010ffff"  # a noncharacter: no font maps it, so it renders as .notdef


class LRU:
    """A small bounded least-recently-used map (OrderedDict based)."""

    __slots__ = ("_data", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, object] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def get(self, key: Hashable) -> object:
        """The value, refreshed as most recently used, or None if absent."""
        data = self._data
        value = data.get(key)
        if value is not None:
            data.move_to_end(key)
        return value

    def put(self, key: Hashable, value: object) -> None:
        data = self._data
        data[key] = value
        data.move_to_end(key)
        while len(data) > self.maxsize:
            data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()


def fit_mask(src: Image.Image, width: int, height: int) -> Image.Image:
    """``src`` ('L', one-bit values) fitted into a ``width``×``height`` mask, centred.

    Enlarging keeps the aspect ratio with nearest-neighbour pixels: by the integer factor
    that fits when it is within a quarter of the largest one (every stroke keeps one
    width), otherwise by that largest factor.  Reducing squeezes each axis that is too
    big on its own and keeps a pixel when its box holds ``SHRINK_INK`` of ink, so thin
    strokes survive.  The result stays one-bit: crisp.
    """
    sw, sh = src.size
    if (sw, sh) == (width, height):
        return src
    factor = min(width / sw, height / sh)
    if factor >= 1:
        whole = int(factor)
        if factor - whole < 0.25:
            factor = whole
        size = (max(1, round(sw * factor)), max(1, round(sh * factor)))
        scaled = src.resize(size, Image.Resampling.NEAREST) if size != src.size else src
    else:
        size = (min(sw, width), min(sh, height))
        scaled = src.resize(size, Image.Resampling.BOX)
        scaled = scaled.point(lambda v: 255 if v >= SHRINK_INK else 0)
    out = Image.new("L", (width, height), 0)
    out.paste(scaled, ((width - scaled.width) // 2, (height - scaled.height) // 2))
    return out


class Glyphs:
    """The glyph masks of one font set at one cell size (see the module docstring).

    ``cell_width``/``cell_height`` are the unscaled cell's pixels; ``antialias`` draws the
    main font's outlines with grey edges (fallback glyphs stay one-bit: they are bitmaps).
    """

    def __init__(
        self,
        fonts: fontmod.FontSet,
        cell_width: int,
        cell_height: int,
        *,
        antialias: bool = False,
    ) -> None:
        self.fonts = fonts
        self.cell_width = cell_width
        self.cell_height = cell_height
        self._fontmode = "L" if antialias else "1"
        self.box = BoxPainter(cell_width, cell_height, self._font_strokes(antialias))
        self._masks = LRU(MASK_CACHE_SIZE)
        self._coverage = LRU(COVERAGE_CACHE_SIZE)
        self._notdef: dict[int, tuple[object, object, bytes]] = {}

    def mask(self, text: str, bold: bool, italic: bool, cells: int) -> Image.Image | None:
        """'L' mask of ``text`` over ``cells`` cells, or None when nothing is inked."""
        key = (text, bold, italic, cells)
        if key in self._masks:
            return self._masks.get(key)  # type: ignore[return-value]
        mask = self._draw(text, bold, italic, cells)
        if mask is not None and mask.getbbox() is None:
            mask = None
        self._masks.put(key, mask)
        return mask

    def source(self, char: str, bold: bool = False, italic: bool = False) -> str:
        """Where ``char``'s ink comes from: ``'code'``, ``'font'``, ``'fallback'`` or
        ``'replacement'`` (for tests and tools; whitespace is ``'font'``)."""
        cp = ord(char)
        if 0x2500 <= cp <= 0x259F:
            return "code"
        if self.has_glyph(self.fonts.face(bold, italic), char):
            return "font"
        if self._fallback_face(char) is not None:
            return "fallback"
        return "replacement"

    # -- drawing

    def _draw(self, text: str, bold: bool, italic: bool, cells: int) -> Image.Image | None:
        w, h = cells * self.cell_width, self.cell_height
        base = text[0]
        cp = ord(base)
        if base.isspace():
            return None
        if 0x2500 <= cp <= 0x259F and cells == 1:
            if cp >= 0x2580:
                return block_mask(cp, w, h)
            mask = Image.new("L", (w, h), 0)
            kind, detail = BOX_TABLE[cp]
            self.box.draw(mask, kind, detail)
            return mask
        face = self.fonts.face(bold, italic)
        if self.has_glyph(face, base):
            return self._draw_main(face, text, bold, cells)
        fallback = self._fallback_face(base)
        if fallback is not None:
            return self._draw_fallback(fallback, text, bold, cells)
        mask = Image.new("L", (w, h), 0)
        self._draw_replacement(mask)
        return mask

    def _draw_main(
        self, face: ImageFont.FreeTypeFont, text: str, bold: bool, cells: int
    ) -> Image.Image:
        w, h = cells * self.cell_width, self.cell_height
        mask = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(mask)
        draw.fontmode = self._fontmode
        base = text[0]
        advance = face.getlength(base)
        x0 = max(0, (w - round(advance)) // 2) if cells > 1 else 0
        strikes = (0, 1) if bold and self.fonts.synthetic_bold else (0,)
        for dx in strikes:
            draw.text((x0 + dx, 0), base, fill=255, font=face)
        for mark in text[1 : MAX_MARKS + 1]:
            if self.has_glyph(face, mark):
                # zero-advance marks (TrueType) hang left of the pen: put the pen after the base
                mx = x0 + (round(advance) if face.getlength(mark) == 0 else 0)
                for dx in strikes:
                    draw.text((mx + dx, 0), mark, fill=255, font=face)
            else:
                fallback = self._fallback_face(mark)
                if fallback is not None:  # otherwise dropped: the base alone is still legible
                    layer = self._draw_fallback(fallback, " " + mark, bold, cells)
                    mask.paste(255, (0, 0), layer)
        return mask

    def _draw_fallback(
        self, face: ImageFont.FreeTypeFont, text: str, bold: bool, cells: int
    ) -> Image.Image:
        """A fallback face's glyph at its native size (8 pixels a column, or its advance if
        wider), marks over it, then fitted into the cells."""
        unit = fontmod.UNIFONT_SIZE // 2
        base = text[0]
        advance = round(face.getlength(base)) if not base.isspace() else unit * cells
        src = Image.new("L", (max(unit * cells, advance), fontmod.UNIFONT_SIZE), 0)
        draw = ImageDraw.Draw(src)
        draw.fontmode = "1"
        strikes = (0, 1) if bold else (0,)
        if not base.isspace():
            for dx in strikes:
                draw.text((dx, 0), base, fill=255, font=face)
        for mark in text[1 : MAX_MARKS + 1]:
            mark_face = face if self.has_glyph(face, mark) else self._fallback_face(mark)
            if mark_face is None:
                continue
            mx = advance if mark_face.getlength(mark) == 0 else 0
            for dx in strikes:
                draw.text((mx + dx, 0), mark, fill=255, font=mark_face)
        return fit_mask(src, cells * self.cell_width, self.cell_height)

    def _draw_replacement(self, mask: Image.Image) -> None:
        """A solid box with a '?' cut out: unmistakable, unlike any real glyph or a space."""
        w, h = mask.size
        draw = ImageDraw.Draw(mask)
        draw.fontmode = "1"
        draw.rectangle((0, 1, max(0, w - 2), max(1, h - 2)), fill=255)
        face = self.fonts.regular
        x = (w - 1 - round(face.getlength("?"))) // 2 + 1
        draw.text((max(0, x), 0), "?", fill=0, font=face)

    def _font_strokes(self, antialias: bool) -> tuple[int, int, int] | None:
        """Line thicknesses of the font's own box drawing ('─', '━', '═'), so that lines
        drawn by code match any the font draws; None when the font has no usable ones."""
        if antialias:
            return None
        w, h = self.cell_width, self.cell_height
        runs: list[list[tuple[int, int]]] = []
        for char in "─━═":
            mask = Image.new("L", (w, h), 0)
            draw = ImageDraw.Draw(mask)
            draw.fontmode = "1"
            draw.text((0, 0), char, fill=255, font=self.fonts.regular)
            px = mask.load()
            assert px is not None
            column: list[tuple[int, int]] = []
            for y in range(h):
                if px[0, y] and px[w - 1, y]:
                    if column and column[-1][1] == y:
                        column[-1] = (column[-1][0], y + 1)
                    else:
                        column.append((y, y + 1))
            runs.append(column)
        light, heavy, double = runs
        if len(light) != 1 or len(heavy) != 1 or len(double) != 2:
            return None
        t1 = light[0][1] - light[0][0]
        t2 = heavy[0][1] - heavy[0][0]
        gap = double[1][0] - double[0][1]
        if double[0][1] - double[0][0] != t1 or not (t1 <= t2 < h // 2) or gap < 1:
            return None
        return (t1, t2, gap)

    # -- coverage

    def _fallback_face(self, char: str) -> ImageFont.FreeTypeFont | None:
        for face in self.fonts.fallbacks:
            if self.has_glyph(face, char):
                return face
        return None

    def has_glyph(self, face: ImageFont.FreeTypeFont, char: str) -> bool:
        """Whether ``face`` has a glyph for ``char``: Pillow exposes no glyph index, so a
        character is missing when it renders exactly as the font's .notdef does."""
        key = (id(face), char)
        known = self._coverage.get(key)
        if known is not None:
            return bool(known)
        if char.isspace():
            present = True
        else:
            notdef = self._notdef.get(id(face))
            if notdef is None:
                notdef = self._notdef[id(face)] = _signature(face, _NOTDEF_PROBE)
            sig = _signature(face, char)
            if notdef[2]:
                present = sig != notdef
            else:  # a blank .notdef: only inked glyphs can be told apart from it
                present = sig[2] != b""
        self._coverage.put(key, present)
        return present


def _signature(face: ImageFont.FreeTypeFont, char: str) -> tuple[object, object, bytes]:
    mask, offset = face.getmask2(char, mode="1")
    data = bytes(mask) if any(bytes(mask)) else b""
    return (mask.size, offset, data)
