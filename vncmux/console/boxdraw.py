"""Box drawing (U+2500–U+257F) and block elements (U+2580–U+259F), drawn by code.

Font glyphs for these rarely meet across cell boundaries; here each character becomes an
'L' mask of one cell computed from the cell size (strokes centred, thickness from the
height), so lines join exactly whatever the font.  The renderer turns a mask into a tile.
"""

from __future__ import annotations

import unicodedata

from PIL import Image, ImageDraw

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


def parse_arms(name: str) -> dict[int, int]:
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
            table[cp] = ("arc", parse_arms(name.replace("ARC", "")))
        elif "DIAGONAL" in words:
            table[cp] = ("diagonal", name)
        else:
            table[cp] = ("lines", parse_arms(name))
    return table


BOX_TABLE = _box_table()


class BoxPainter:
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


def block_mask(cp: int, w: int, h: int) -> Image.Image:
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
