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
  from the cell size, so lines meet exactly across cell boundaries whatever the font;
- a replacement glyph (a solid box with a '?' cut out, one or two cells wide) for characters
  the font lacks, detected by comparing a glyph's rendering with the font's ``.notdef``;
- wide characters over two cells (the terminal marks the second cell with ``''``);
  combining marks over their base; underline, strikethrough, faint, reverse, bold-is-bright;
  a steady block cursor (the cell in reverse) when the terminal says it is visible.

Blink is drawn steady: a blinking cell would damage the screen twice a second forever.
"""

from __future__ import annotations

import unicodedata
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Protocol

from PIL import Image, ImageDraw, ImageFont

from vncmux import fonts as fontmod
from vncmux.console import palette
from vncmux.console.damage import Damage, Scroll

#: Most tiles kept; 4096 RGB 8×16 tiles are about 3 MB.  Bounded so hostile input (every
#: code point in every true colour) cannot grow memory.
TILE_CACHE_SIZE = 4096
#: Most glyph masks kept (a mask is shared by every colour of a glyph).
MASK_CACHE_SIZE = 4096
#: Most combining marks drawn over one base (pyte lets a cell collect thousands).
MAX_MARKS = 8
#: Most code points whose presence in a face is remembered.
COVERAGE_CACHE_SIZE = 16384

_NOTDEF_PROBE = "\U0010ffff"  # a noncharacter: no font maps it, so it renders as .notdef


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


# --- box drawing and block elements --------------------------------------------------------

LIGHT, HEAVY, DOUBLE = 1, 2, 3
UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
_OPPOSITE = {UP: DOWN, DOWN: UP, LEFT: RIGHT, RIGHT: LEFT}
_WEIGHTS = {"LIGHT": LIGHT, "SINGLE": LIGHT, "HEAVY": HEAVY, "DOUBLE": DOUBLE}
_DIRECTIONS = {
    "UP": (UP,),
    "DOWN": (DOWN,),
    "LEFT": (LEFT,),
    "RIGHT": (RIGHT,),
    "VERTICAL": (UP, DOWN),
    "HORIZONTAL": (LEFT, RIGHT),
}


def _parse_arms(name: str) -> dict[int, int]:
    """Arms and weights from a Unicode box-drawing name, e.g. 'DOWN LIGHT AND RIGHT HEAVY'.

    Weights come before their directions ('HEAVY DOWN AND RIGHT') or after them
    ('UP HEAVY AND RIGHT DOWN LIGHT'); both forms occur, sometimes in one name.
    """
    arms: dict[int, int] = {}
    pending: list[int] = []
    prefix: int | None = None
    for word in name.split():
        if word in _WEIGHTS:
            if pending:
                for d in pending:
                    arms[d] = _WEIGHTS[word]
                pending = []
            else:
                prefix = _WEIGHTS[word]
        elif word in _DIRECTIONS:
            for d in _DIRECTIONS[word]:
                if prefix is not None:
                    arms[d] = prefix
                else:
                    pending.append(d)
    return arms


def _box_table() -> dict[int, tuple[str, object]]:
    """Code point → (kind, detail) for every box-drawing character we draw by code."""
    table: dict[int, tuple[str, object]] = {}
    for cp in range(0x2500, 0x2580):
        name = unicodedata.name(chr(cp))[len("BOX DRAWINGS ") :]
        words = name.split()
        if "DASH" in words:
            count = {"DOUBLE": 2, "TRIPLE": 3, "QUADRUPLE": 4}[words[words.index("DASH") - 1]]
            weight = HEAVY if words[0] == "HEAVY" else LIGHT
            table[cp] = ("dash", (count, weight, words[-1] == "VERTICAL"))
        elif "ARC" in words:
            table[cp] = ("arc", _parse_arms(name.replace("ARC", "")))
        elif "DIAGONAL" in words:
            table[cp] = ("diagonal", name)
        else:
            table[cp] = ("lines", _parse_arms(name))
    return table


BOX_TABLE = _box_table()


class _BoxPainter:
    """Draws box-drawing lines into an 'L' mask of one cell, with strokes placed so that the
    same character in adjacent cells continues exactly (centred, thickness from cell size)."""

    def __init__(
        self, width: int, height: int, strokes: tuple[int, int, int] | None = None
    ) -> None:
        self.w = width
        self.h = height
        if strokes is None:
            t1 = max(1, height // 16)
            strokes = (t1, 2 * t1, t1)
        # light and heavy thickness, and the gap between the two strokes of a double line
        self.t1, self.t2, self.gap = strokes

    def thickness(self, weight: int) -> int:
        return self.t2 if weight == HEAVY else self.t1

    def centre(self, length: int, weight: int) -> int:
        """Start of a single (light/heavy) stroke centred across ``length`` pixels."""
        return (length - self.thickness(weight)) // 2

    def doubles(self, length: int) -> tuple[int, int]:
        """Starts of the two strokes of a double line across ``length`` pixels."""
        a = (length - 2 * self.t1 - self.gap) // 2
        return a, a + self.t1 + self.gap

    def draw(self, mask: Image.Image, kind: str, detail: object) -> None:
        d = ImageDraw.Draw(mask)
        if kind == "lines":
            assert isinstance(detail, dict)
            self._lines(d, detail)
        elif kind == "dash":
            assert isinstance(detail, tuple)
            self._dash(d, *detail)
        elif kind == "arc":
            assert isinstance(detail, dict)
            self._arc(d, detail)
        else:
            self._diagonal(d, str(detail))

    @staticmethod
    def _fill(d: ImageDraw.ImageDraw, x0: int, y0: int, x1: int, y1: int) -> None:
        if x1 > x0 and y1 > y0:
            d.rectangle((x0, y0, x1 - 1, y1 - 1), fill=255)

    def _span(self, arm: int, inner: int) -> tuple[int, int]:
        """Along-axis extent of an arm from the cell edge to ``inner`` (a start coordinate
        for right/down arms, an end coordinate for left/up arms)."""
        if arm in (RIGHT, DOWN):
            return inner, (self.w if arm == RIGHT else self.h)
        return 0, inner

    def _lines(self, d: ImageDraw.ImageDraw, arms: dict[int, int]) -> None:
        """Each arm runs from its cell edge (centred across the cell, so it continues the
        neighbour's line) to an inner point chosen so the arms join without gaps or spurs:
        a single arm stops on the far side of the perpendicular stroke it meets; a double
        arm's two strokes stop at the perpendicular double's near or far stroke, which is
        what makes ╔ ╦ ╬ draw as separate inner and outer outlines."""
        w, h, t1 = self.w, self.h, self.t1
        xa, xb = self.doubles(w)
        ya, yb = self.doubles(h)
        for arm, weight in arms.items():
            horizontal = arm in (LEFT, RIGHT)
            perp = (UP, DOWN) if horizontal else (LEFT, RIGHT)
            length = w if horizontal else h  # the arm's own axis
            cross = h if horizontal else w  # the axis it is centred on
            # where a perpendicular double's two strokes cross this arm's axis
            p_a, p_b = (xa, xb) if horizontal else (ya, yb)
            start_side = arm in (
                RIGHT,
                DOWN,
            )  # runs from an inner point to the far edge
            near = p_b if start_side else p_a + t1
            far = p_a if start_side else p_b + t1
            through = 0 if start_side else length
            opposite = _OPPOSITE[arm] in arms
            if weight == DOUBLE:
                c_a, c_b = (ya, yb) if horizontal else (xa, xb)
                for side, cpos in ((perp[0], c_a), (perp[1], c_b)):
                    other = _OPPOSITE[side]
                    if arms.get(side) == DOUBLE:
                        inner = near
                    elif side in arms:
                        inner = self._inner_of(length, start_side, arms[side])
                    elif arms.get(other) == DOUBLE:
                        inner = far
                    elif other in arms:
                        inner = self._inner_of(length, start_side, arms[other])
                    elif opposite:
                        inner = through
                    else:
                        inner = self.centre(length, LIGHT) + (0 if start_side else t1)
                    lo, hi = self._span(arm, inner)
                    if horizontal:
                        self._fill(d, lo, cpos, hi, cpos + t1)
                    else:
                        self._fill(d, cpos, lo, cpos + t1, hi)
                continue
            t = self.thickness(weight)
            c = self.centre(cross, weight)
            perp_weights = [arms[p] for p in perp if p in arms]
            if opposite:
                inner = self._inner_of(length, start_side, weight)
            elif DOUBLE in perp_weights:
                inner = near if len(perp_weights) == 2 and perp_weights.count(DOUBLE) == 2 else far
            elif perp_weights:
                ends = [self._inner_of(length, start_side, pw) for pw in perp_weights]
                inner = min(ends) if start_side else max(ends)
            else:
                inner = self._inner_of(length, start_side, weight)
            lo, hi = self._span(arm, inner)
            if horizontal:
                self._fill(d, lo, c, hi, c + t)
            else:
                self._fill(d, c, lo, c + t, hi)

    def _inner_of(self, length: int, start_side: bool, weight: int) -> int:
        """Where an arm meets a centred perpendicular stroke of ``weight``."""
        c = self.centre(length, weight)
        return c if start_side else c + self.thickness(weight)

    def _dash(self, d: ImageDraw.ImageDraw, count: int, weight: int, vertical: bool) -> None:
        t = self.thickness(weight)
        length = self.h if vertical else self.w
        c = self.centre(self.w if vertical else self.h, weight)
        seg = length / count
        gap = max(1, round(seg / 3))
        for i in range(count):
            lo, hi = round(i * seg), round((i + 1) * seg) - gap
            if hi <= lo:
                hi = lo + 1
            if vertical:
                self._fill(d, c, lo, c + t, hi)
            else:
                self._fill(d, lo, c, hi, c + t)

    def _arc(self, d: ImageDraw.ImageDraw, arms: dict[int, int]) -> None:
        t = self.t1
        xc, yc = self.centre(self.w, LIGHT), self.centre(self.h, LIGHT)
        r = max(1, min(xc, self.w - xc - t, yc, self.h - yc - t))
        right, down = RIGHT in arms, DOWN in arms
        # circle centre, so that the arc's outer edge touches the centre strokes
        cx = xc + r if right else xc + t - 1 - r
        cy = yc + r if down else yc + t - 1 - r
        start = {
            (True, True): 180,
            (False, True): 270,
            (False, False): 0,
            (True, False): 90,
        }
        a = start[(right, down)]
        d.arc((cx - r, cy - r, cx + r, cy + r), a, a + 90, fill=255, width=t)
        if right:
            self._fill(d, cx, yc, self.w, yc + t)
        else:
            self._fill(d, 0, yc, cx + 1, yc + t)
        if down:
            self._fill(d, xc, cy, xc + t, self.h)
        else:
            self._fill(d, xc, 0, xc + t, cy + 1)

    def _diagonal(self, d: ImageDraw.ImageDraw, name: str) -> None:
        w, h, t = self.w - 1, self.h - 1, self.t1
        if "UPPER RIGHT" in name or "CROSS" in name:
            d.line((w, 0, 0, h), fill=255, width=t)
        if "UPPER LEFT" in name or "CROSS" in name:
            d.line((0, 0, w, h), fill=255, width=t)


def _block_mask(cp: int, w: int, h: int) -> Image.Image:
    """Block elements U+2580–U+259F as an 'L' mask (shades as partial coverage, which paste
    turns into the exact fg/bg mix: one solid colour, cheap on the wire)."""
    mask = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(mask)

    def rect(x0: int, y0: int, x1: int, y1: int, value: int = 255) -> None:
        if x1 > x0 and y1 > y0:
            d.rectangle((x0, y0, x1 - 1, y1 - 1), fill=value)

    hw, hh = w // 2, h // 2
    quadrants = {
        0x2596: "ll", 0x2597: "lr", 0x2598: "ul", 0x2599: "ul ll lr", 0x259A: "ul lr",
        0x259B: "ul ur ll", 0x259C: "ul ur lr", 0x259D: "ur", 0x259E: "ur ll", 0x259F: "ur ll lr",
    }  # fmt: skip
    if cp == 0x2580:
        rect(0, 0, w, hh)
    elif 0x2581 <= cp <= 0x2588:
        rect(0, h - round(h * (cp - 0x2580) / 8), w, h)
    elif 0x2589 <= cp <= 0x258F:
        rect(0, 0, round(w * (0x2590 - cp) / 8), h)
    elif cp == 0x2590:
        rect(hw, 0, w, h)
    elif 0x2591 <= cp <= 0x2593:
        rect(0, 0, w, h, (64, 128, 192)[cp - 0x2591])
    elif cp == 0x2594:
        rect(0, 0, w, round(h / 8))
    elif cp == 0x2595:
        rect(w - round(w / 8), 0, w, h)
    else:
        boxes = {
            "ul": (0, 0, hw, hh),
            "ur": (hw, 0, w, hh),
            "ll": (0, hh, hw, h),
            "lr": (hw, hh, w, h),
        }
        for q in quadrants[cp].split():
            rect(*boxes[q])
    return mask


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
    ) -> None:
        self.fonts = fontmod.load_fonts(font_path, font_size)
        regular = self.fonts.regular
        ascent, descent = regular.getmetrics()
        self.ascent = ascent
        self.cell_width = max(1, round(regular.getlength("M")))
        self.cell_height = max(1, ascent + descent)
        self._fontmode = "L" if antialias else "1"
        self._box = _BoxPainter(self.cell_width, self.cell_height, self._font_strokes(antialias))
        t = self._box.t1
        self._underline_y = min(self.cell_height - t, ascent + max(1, descent // 4))
        self._strike_y = ascent - (ascent * 3) // 8
        self._tiles = LRU(TILE_CACHE_SIZE)
        self._masks = LRU(MASK_CACHE_SIZE)
        self._coverage = LRU(COVERAGE_CACHE_SIZE)
        self._notdef: dict[int, tuple[object, object, bytes]] = {}
        self.cols = cols
        self.rows = rows
        self.width = cols * self.cell_width
        self.height = rows * self.cell_height
        self.image = Image.new("RGB", (self.width, self.height), palette.DEFAULT_BG)
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
        bg = palette.resolve("default", "default", False, False, False, self._screen_reverse)[1]
        image = Image.new("RGB", (cols * self.cell_width, rows * self.cell_height), bg)
        image.paste(self.image, (0, 0))
        self.image = image
        self.cols, self.rows = cols, rows
        self.width, self.height = image.size
        if self._cursor_drawn is not None:
            x, y = self._cursor_drawn
            if x >= cols or y >= rows:
                self._cursor_drawn = None

    # -- drawing

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
        bg = palette.resolve("default", "default", False, False, False, screen_reverse)[1]
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
            bg = palette.resolve("default", "default", False, False, False, screen_reverse)[1]
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
        fg, bg = palette.resolve(
            cell.fg,
            cell.bg,
            cell.bold,
            cell.faint,
            cell.reverse != cursor,
            screen_reverse,
        )
        if cursor and fg == bg:
            # an invisible cell (fg == bg) would hide the cursor: show the default inverse
            bg, fg = palette.resolve("default", "default", False, False, False, screen_reverse)
        w, h = cells * self.cell_width, self.cell_height
        tile = Image.new("RGB", (w, h), bg)
        mask = self._glyph_mask(cell.data or " ", cell.bold, cell.italics, cells)
        if mask is not None:
            tile.paste(fg, (0, 0, w, h), mask)
        t = self._box.t1
        if cell.underscore:
            tile.paste(fg, (0, self._underline_y, w, self._underline_y + t))
        if cell.strikethrough:
            tile.paste(fg, (0, self._strike_y, w, self._strike_y + t))
        return tile

    # -- glyphs

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

    def _glyph_mask(self, text: str, bold: bool, italic: bool, cells: int) -> Image.Image | None:
        """'L' mask of ``text`` over ``cells`` cells, or None when nothing is inked."""
        key = (text, bold, italic, cells)
        if key in self._masks:
            return self._masks.get(key)  # type: ignore[return-value]
        mask = self._draw_glyph(text, bold, italic, cells)
        if mask is not None and mask.getbbox() is None:
            mask = None
        self._masks.put(key, mask)
        return mask

    def _draw_glyph(self, text: str, bold: bool, italic: bool, cells: int) -> Image.Image | None:
        w, h = cells * self.cell_width, self.cell_height
        base = text[0]
        cp = ord(base)
        if base.isspace():
            return None
        if 0x2500 <= cp <= 0x259F and cells == 1:
            if cp >= 0x2580:
                return _block_mask(cp, w, h)
            mask = Image.new("L", (w, h), 0)
            kind, detail = BOX_TABLE[cp]
            self._box.draw(mask, kind, detail)
            return mask
        face = self.fonts.face(bold, italic)
        mask = Image.new("L", (w, h), 0)
        if not self.has_glyph(face, base):
            self._draw_replacement(mask)
            return mask
        draw = ImageDraw.Draw(mask)
        draw.fontmode = self._fontmode
        advance = face.getlength(base)
        x0 = max(0, (w - round(advance)) // 2) if cells > 1 else 0
        strikes = (0, 1) if bold and self.fonts.synthetic_bold else (0,)
        for dx in strikes:
            draw.text((x0 + dx, 0), base, fill=255, font=face)
        for mark in text[1 : MAX_MARKS + 1]:
            if not self.has_glyph(face, mark):
                continue  # a missing mark is dropped: the base alone is still legible
            # zero-advance marks (TrueType) hang left of the pen: put the pen after the base
            mx = x0 + (round(advance) if face.getlength(mark) == 0 else 0)
            for dx in strikes:
                draw.text((mx + dx, 0), mark, fill=255, font=face)
        return mask

    def _draw_replacement(self, mask: Image.Image) -> None:
        """A solid box with a '?' cut out: unmistakable, unlike any real glyph or a space."""
        w, h = mask.size
        draw = ImageDraw.Draw(mask)
        draw.fontmode = "1"
        draw.rectangle((0, 1, max(0, w - 2), max(1, h - 2)), fill=255)
        face = self.fonts.regular
        x = (w - 1 - round(face.getlength("?"))) // 2 + 1
        draw.text((max(0, x), 0), "?", fill=0, font=face)

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
                notdef = self._notdef[id(face)] = self._signature(face, _NOTDEF_PROBE)
            sig = self._signature(face, char)
            if notdef[2]:
                present = sig != notdef
            else:  # a blank .notdef: only inked glyphs can be told apart from it
                present = sig[2] != b""
        self._coverage.put(key, present)
        return present

    @staticmethod
    def _signature(face: ImageFont.FreeTypeFont, char: str) -> tuple[object, object, bytes]:
        mask, offset = face.getmask2(char, mode="1")
        data = bytes(mask) if any(bytes(mask)) else b""
        return (mask.size, offset, data)
