"""Terminal cells → pixels: the console's framebuffer, kept up to date from row damage.

``Renderer`` owns one RGB ``PIL.Image`` of the whole screen.  It never draws text per frame:
each distinct cell appearance (text, attributes, colours, cursor) becomes a cell-sized tile,
drawn once and kept in a bounded LRU cache, and a frame is a sequence of tile pastes.  A
scroll is applied by moving pixel rows, exactly as a viewer applies a CopyRect, so the shared
picture and every viewer's picture follow the same ``Damage`` algebra (see damage.py).

What it draws, and why by code where it does:

- glyphs from the font faces of ``vncmux.fonts`` (bold and oblique faces; a one-face user
  font gets an overstruck bold), crisp (1-bit) by default because a two-colour cell costs a
  fraction of an anti-aliased one on the wire;
- box drawing (U+2500–U+257F) and block elements (U+2580–U+259F) from rectangles computed
  from the cell size (``boxdraw``), so lines meet exactly across cells whatever the font;
- a replacement glyph (a solid box with a '?' cut out, one or two cells wide) for characters
  the font lacks, detected by comparing a glyph's rendering with the font's ``.notdef``;
- wide characters over two cells (the terminal marks the second cell with ``''``);
  combining marks over their base; underline, strikethrough, faint, reverse, bold-is-bright;
  a steady block cursor (the cell in reverse) when the terminal says it is visible.

Blink is drawn steady: a blinking cell would damage the screen twice a second forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from PIL import Image, ImageFont

from vncmux import fonts as fontmod
from vncmux.console import palette as palettemod
from vncmux.console.damage import Damage, Scroll
from vncmux.console.glyphs import LRU, Glyphs

__all__ = ["LRU", "CellView", "Renderer", "TerminalView"]

#: Most tiles kept; 4096 RGB 8×16 tiles are about 3 MB.  Bounded so hostile input (every
#: code point in every true colour) cannot grow memory.
TILE_CACHE_SIZE = 4096
#: Largest ``scale``: each cell pixel becomes scale×scale framebuffer pixels.
MAX_SCALE = 4


class CellView(Protocol):
    """What the renderer reads from one terminal cell (the terminal's ``Cell`` namedtuple)."""

    @property
    def data(self) -> str: ...
    @property
    def fg(self) -> str: ...
    @property
    def bg(self) -> str: ...
    @property
    def bold(self) -> bool: ...
    @property
    def italics(self) -> bool: ...
    @property
    def underscore(self) -> bool: ...
    @property
    def strikethrough(self) -> bool: ...
    @property
    def reverse(self) -> bool: ...
    @property
    def blink(self) -> bool: ...
    @property
    def faint(self) -> bool: ...


class TerminalView(Protocol):
    """What the renderer reads from the terminal (vncmux.console.terminal.Terminal)."""

    @property
    def cols(self) -> int: ...
    @property
    def rows(self) -> int: ...
    @property
    def cursor(self) -> tuple[int, int]: ...
    @property
    def cursor_visible(self) -> bool: ...
    @property
    def reverse_screen(self) -> bool: ...
    def line(self, y: int) -> Sequence[CellView]: ...


def _scanlines(image: Image.Image) -> tuple[bytes, ...]:
    """An RGB tile as one bytes object per pixel row, the form ``_draw_row`` joins."""
    data = image.tobytes()
    stride = image.width * 3
    return tuple(data[i : i + stride] for i in range(0, len(data), stride))


# --- the renderer ----------------------------------------------------------------------------


class Renderer:
    """The console framebuffer and the rules that draw terminal cells into it.

    ``image`` is always a complete, current picture of what has been rendered; the RFB side
    reads rectangles from it (``row_box``) after ``render``.
    """

    def __init__(
        self,
        cols: int,
        rows: int,
        font_path: str | None = None,
        font_size: int = fontmod.DEFAULT_SIZE,
        *,
        antialias: bool = False,
        scale: int = 1,
        palette: palettemod.Palette | None = None,
        fallback: bool = True,
    ) -> None:
        if not 1 <= scale <= MAX_SCALE:
            raise ValueError(f"scale must be 1 to {MAX_SCALE}, not {scale}")
        self.fonts = fontmod.load_fonts(font_path, font_size, fallback=fallback)
        self.palette = palette if palette is not None else palettemod.DEFAULT
        self._resolve = self.palette.resolve
        regular = self.fonts.regular
        ascent, descent = regular.getmetrics()
        self.ascent = ascent
        #: The font's cell (``base_cell``) is drawn ``scale`` times larger in the
        #: framebuffer: ``cell_width``/``cell_height`` are framebuffer pixels.
        self.scale = scale
        base_w = max(1, round(regular.getlength("M")))
        base_h = max(1, ascent + descent)
        self.base_cell = (base_w, base_h)
        self.cell_width = base_w * scale
        self.cell_height = base_h * scale
        self.glyphs = Glyphs(self.fonts, base_w, base_h, antialias=antialias)
        t = self.glyphs.box.t1
        self._underline_y = min(base_h - t, ascent + max(1, descent // 4))
        self._strike_y = ascent - (ascent * 3) // 8
        self._tiles = LRU(TILE_CACHE_SIZE)
        self.cols = cols
        self.rows = rows
        #: Rows drawn below the terminal's (0 or 1: the status line, ``draw_status``).
        self.status_rows = 0
        self.width = cols * self.cell_width
        self.height = rows * self.cell_height
        self.image = Image.new("RGB", (self.width, self.height), self.palette.default_bg)
        # What the image currently shows, so cursor moves and DECSCNM are redrawn.
        self._cursor_drawn: tuple[int, int] | None = None
        self._screen_reverse = False

    # -- geometry

    def row_box(self, first_row: int, count: int) -> tuple[int, int, int, int]:
        """Pixel rectangle (x, y, w, h) of ``count`` character rows from ``first_row``."""
        return (0, first_row * self.cell_height, self.width, count * self.cell_height)

    def resize(self, cols: int, rows: int) -> None:
        """New screen size; the old picture is kept at the top left, the rest is background.
        The caller redraws (``render_all``) once the terminal has the new size too."""
        bg = self._resolve("default", "default", False, False, False, self._screen_reverse)[1]
        height = (rows + self.status_rows) * self.cell_height
        image = Image.new("RGB", (cols * self.cell_width, height), bg)
        image.paste(self.image, (0, 0))
        self.image = image
        self.cols, self.rows = cols, rows
        self.width, self.height = image.size
        if self._cursor_drawn is not None:
            x, y = self._cursor_drawn
            if x >= cols or y >= rows:
                self._cursor_drawn = None

    def set_status_rows(self, count: int) -> None:
        """Make room for ``count`` rows (0 or 1) below the terminal's: the framebuffer
        grows by that many cell rows, which ``render`` never touches (``draw_status``)."""
        self.status_rows = count
        self.resize(self.cols, self.rows)

    # -- drawing

    def draw_status(self, cells: Sequence[CellView]) -> None:
        """Draw the status row below the terminal (``row_box(rows, 1)``) from ``cells``."""
        if self.status_rows:
            self._draw_row(cells, self.rows, -1, False)

    def render_all(self, term: TerminalView) -> None:
        """Redraw every row from ``term``."""
        damage = Damage(self.rows)
        damage.mark_all()
        self.render(term, damage)

    def render(self, term: TerminalView, damage: Damage) -> None:
        """Bring the image up to date: apply ``damage.scroll`` by moving pixel rows (as a
        viewer's CopyRect would), then redraw every row of ``damage.rows`` from ``term``.

        Rows that change only because the cursor moved (or appeared, or vanished) or because
        the screen's reverse-video mode flipped are added to ``damage`` before drawing, so a
        caller that forwards the same damage to its viewers sends them those rows as well.
        """
        if damage.scroll is not None:
            self._scroll(damage.scroll)
        screen_reverse = bool(term.reverse_screen)
        if screen_reverse != self._screen_reverse:
            damage.mark(range(self.rows))
        cursor = self._cursor_target(term)
        if cursor != self._cursor_drawn:
            if self._cursor_drawn is not None:
                damage.mark((self._cursor_drawn[1],))
            if cursor is not None:
                damage.mark((cursor[1],))
        limit = min(self.rows, term.rows)
        for y in sorted(damage.rows):
            if 0 <= y < self.rows:
                if y < limit:
                    self._draw_row(
                        term.line(y),
                        y,
                        cursor[0] if cursor and cursor[1] == y else -1,
                        screen_reverse,
                    )
                else:
                    self._blank_rows(y, 1, screen_reverse)
        self._cursor_drawn = cursor
        self._screen_reverse = screen_reverse

    def _cursor_target(self, term: TerminalView) -> tuple[int, int] | None:
        if not term.cursor_visible:
            return None
        x, y = term.cursor
        if not (0 <= y < min(self.rows, term.rows)):
            return None
        return (max(0, min(x, min(self.cols, term.cols) - 1)), y)

    def _scroll(self, scroll: Scroll) -> None:
        src, count = scroll.source_rows()
        if count > 0:
            x, y, w, h = self.row_box(src, count)
            strip = self.image.crop((x, y, x + w, y + h))
            self.image.paste(strip, (0, scroll.dest_top() * self.cell_height))
        if self._cursor_drawn is not None:
            cx, cy = self._cursor_drawn
            if scroll.top <= cy <= scroll.bottom:
                cy -= scroll.count
                self._cursor_drawn = (cx, cy) if scroll.top <= cy <= scroll.bottom else None

    def _blank_rows(self, first: int, count: int, screen_reverse: bool) -> None:
        bg = self._resolve("default", "default", False, False, False, screen_reverse)[1]
        x, y, w, h = self.row_box(first, count)
        self.image.paste(bg, (x, y, x + w, y + h))

    def _draw_row(
        self, line: Sequence[CellView], y: int, cursor_x: int, screen_reverse: bool
    ) -> None:
        """Draw one character row: look up each cell's tile (its scanlines as bytes), join
        them scanline by scanline in C (zip + bytes.join), and paste the strip once.

        One paste per row instead of one per cell: Pillow's per-call overhead, not pixel
        copying, is what dominated (about 16 µs a cell, 30 ms a frame).
        """
        data = self._tiles._data
        get = data.get
        refresh = data.move_to_end
        tiles: list[tuple[bytes, ...]] = []
        append = tiles.append
        n = min(len(line), self.cols)
        x = 0
        while x < n:
            cell = line[x]
            wide = x + 1 < n and cell.data != "" and line[x + 1].data == ""
            cursor = x == cursor_x or (wide and x + 1 == cursor_x)
            key = (cell, wide, cursor, screen_reverse)
            tile = get(key)
            if tile is None:
                image = self._make_tile(cell, 2 if wide else 1, cursor, screen_reverse)
                tile = _scanlines(image)
                self._tiles.put(key, tile)
            else:
                refresh(key)
            append(tile)  # type: ignore[arg-type]
            x += 2 if wide else 1
        h = self.cell_height
        if n < self.cols:
            bg = self._resolve("default", "default", False, False, False, screen_reverse)[1]
            append((bytes(bg) * ((self.cols - n) * self.cell_width),) * h)
        strip = Image.frombytes("RGB", (self.width, h), b"".join(map(b"".join, zip(*tiles))))
        self.image.paste(strip, (0, y * h))

    def tile_for(
        self,
        cell: CellView,
        cells: int = 1,
        cursor: bool = False,
        screen_reverse: bool = False,
    ) -> Image.Image:
        """The tile drawn for ``cell`` (``cells`` wide); exposed for tests and tools."""
        return self._make_tile(cell, cells, cursor, screen_reverse)

    def _make_tile(
        self, cell: CellView, cells: int, cursor: bool, screen_reverse: bool
    ) -> Image.Image:
        fg, bg = self._resolve(
            cell.fg,
            cell.bg,
            cell.bold,
            cell.faint,
            cell.reverse != cursor,
            screen_reverse,
        )
        if cursor and fg == bg:
            # an invisible cell (fg == bg) would hide the cursor: show the default inverse
            bg, fg = self._resolve("default", "default", False, False, False, screen_reverse)
        base_w, h = self.base_cell
        w = cells * base_w
        tile = Image.new("RGB", (w, h), bg)
        mask = self.glyphs.mask(cell.data or " ", cell.bold, cell.italics, cells)
        if mask is not None:
            tile.paste(fg, (0, 0, w, h), mask)
        t = self.glyphs.box.t1
        if cell.underscore:
            tile.paste(fg, (0, self._underline_y, w, self._underline_y + t))
        if cell.strikethrough:
            tile.paste(fg, (0, self._strike_y, w, self._strike_y + t))
        if self.scale > 1:  # drawn at the font's size, then every pixel made a square: crisp
            tile = tile.resize((w * self.scale, h * self.scale), Image.Resampling.NEAREST)
        return tile

    # -- glyphs

    def has_glyph(self, face: ImageFont.FreeTypeFont, char: str) -> bool:
        """Whether ``face`` has a glyph for ``char`` (see ``Glyphs.has_glyph``)."""
        return self.glyphs.has_glyph(face, char)
