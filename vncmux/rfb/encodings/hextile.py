"""Hextile encoding (5): 16x16 tiles of background + rectangles, or raw.

The universal fallback: every viewer since the 1990s decodes it, it needs no zlib state
and text tiles (a background and one foreground colour) shrink to a couple of bytes per
glyph stroke.  Subrectangles are found per tile and colour from maximal horizontal runs,
merged downwards while the identical run repeats on the next row.  The runs come from a
per-colour bit mask per row, built with ``bytes.translate`` and big-integer AND (no
Python loop over pixels); tiles with more than 16 colours use a C-level regular
expression over the pixel bytes instead.  A tile whose description would not be smaller
than its raw pixels is sent raw.

Background and foreground carry over between tiles of one rectangle as rfbproto allows;
like TigerVNC we treat both as unknown after a raw tile and the foreground as unknown after
a tile with coloured subrectangles, so no decoder quirk can bite.
"""

from __future__ import annotations

import re
from functools import lru_cache

from PIL import Image
from zope.interface import implementer

from vncmux.rfb.encodings.common import colour_bytes, pixel_image
from vncmux.rfb.encodings.interface import IEncoder
from vncmux.rfb.encodings.numbers import HEXTILE
from vncmux.rfb.encodings.shared import SharedWork
from vncmux.rfb.pixels import PixelFormat

__all__ = ["HextileEncoder"]

TILE = 16
RAW = 1
BACKGROUND_SPECIFIED = 2
FOREGROUND_SPECIFIED = 4
ANY_SUBRECTS = 8
SUBRECTS_COLOURED = 16

_RUNS = {n: re.compile(b"(.{%d})\\1*" % n, re.DOTALL) for n in (1, 2, 4)}
# A tile with more colours than this is always cheaper raw (each colour costs a subrect).
_MAX_COLOURS = 128
# Up to this many foreground colours, subrects come from per-colour bit masks (fast);
# beyond, from runs found by a regular expression (general).
_MASK_COLOURS = 16

Rect = tuple[bytes, int, int, int, int]  # colour, x, y, w, h


@lru_cache(maxsize=65536)
def _row_runs(bits: int, width: int) -> tuple[tuple[int, int], ...]:
    """Runs of set bits, as (x0, x1), in a row bit mask whose leftmost pixel is the MSB."""
    runs = []
    x = 0
    while x < width:
        if bits >> (width - 1 - x) & 1:
            start = x
            while x < width and bits >> (width - 1 - x) & 1:
                x += 1
            runs.append((start, x))
        else:
            x += 1
    return tuple(runs)


# _EQUAL[c] translates a byte to ASCII "1" when it equals c, else "0".
_EQUAL = [bytes(0x31 if v == c else 0x30 for v in range(256)) for c in range(256)]


def _mask_rows(
    data: bytes, bpp: int, tw: int, th: int, colour: bytes, bands: list[int]
) -> list[int]:
    """Per row, a bit mask (leftmost pixel = MSB) of the pixels equal to ``colour``.

    Each byte lane of the pixels becomes a string of ASCII digits (one ``translate``)
    read as one big binary integer; AND-ing the lanes leaves the pixels whose every
    byte matches.  ``bands`` lists the lanes that differ between the tile's colours; the
    others cannot tell colours apart and are skipped.
    """
    mask = -1
    for b in bands:
        mask &= int(data[b::bpp].translate(_EQUAL[colour[b]]), 2)
    full = (1 << tw) - 1
    return [(mask >> (tw * (th - 1 - y))) & full for y in range(th)]


def _mask_subrects(
    data: bytes, bpp: int, tw: int, th: int, palette: list[bytes], limit: int
) -> list[Rect] | None:
    """Rectangles covering the pixels of each of ``colours``, or None beyond ``limit``.

    ``palette`` is every colour of the tile, background first; the background gets no
    rectangles.  Identical runs on consecutive rows merge into one rectangle; identical
    consecutive rows (the vertical strokes of glyphs) cost nothing.
    """
    bands = [b for b in range(bpp) if len({c[b] for c in palette}) > 1]
    done: list[Rect] = []
    for colour in palette[1:]:
        open_: dict[tuple[int, int], int] = {}
        prev = -1
        for y, bits in enumerate(_mask_rows(data, bpp, tw, th, colour, bands)):
            if bits == prev:
                continue
            prev = bits
            row_open = {run: open_.pop(run, y) for run in _row_runs(bits, tw)}
            for (x0, x1), y0 in open_.items():
                done.append((colour, x0, y0, x1 - x0, y - y0))
            open_ = row_open
            if len(done) + len(open_) > limit:
                return None
        for (x0, x1), y0 in open_.items():
            done.append((colour, x0, y0, x1 - x0, th - y0))
    return done


def _run_subrects(
    data: bytes, tw: int, th: int, bpp: int, bg: bytes, limit: int
) -> list[Rect] | None:
    """Rectangles (colour, x, y, w, h) covering every non-background pixel of the tile.

    None as soon as more than ``limit`` are needed (the caller then sends the tile raw).
    """
    runs = _RUNS[bpp]
    stride = tw * bpp
    done: list[Rect] = []
    open_: dict[tuple[int, int, bytes], int] = {}  # (x0, x1, colour) -> first row
    for y in range(th):
        row_open: dict[tuple[int, int, bytes], int] = {}
        for m in runs.finditer(data, y * stride, (y + 1) * stride):
            colour = m.group(1)
            if colour == bg:
                continue
            x0 = (m.start() - y * stride) // bpp
            key = (x0, (m.end() - y * stride) // bpp, colour)
            row_open[key] = open_.pop(key, y)
        for (x0, x1, colour), y0 in open_.items():
            done.append((colour, x0, y0, x1 - x0, y - y0))
        open_ = row_open
        if len(done) + len(open_) > limit:
            return None
    for (x0, x1, colour), y0 in open_.items():
        done.append((colour, x0, y0, x1 - x0, th - y0))
    return done


@implementer(IEncoder)
class HextileEncoder:
    """Stateless between rectangles (Hextile carries colours only within one).

    Its output depends only on the pixels and the format, so it comes from ``work``: with
    no stream, there is nothing more to share (``stream_shareable`` is False).
    """

    number = HEXTILE
    max_width: int | None = None
    max_pixels: int | None = None
    stream_shareable = False

    def __init__(self, work: SharedWork) -> None:
        self.work = work
        self.share_stream = False

    def encode(self, image: Image.Image, fmt: PixelFormat) -> bytes:
        """The tiles, left to right, top to bottom, each subencoding byte + data."""
        return self.work.get("hextile", image, fmt, lambda: self._encode(image, fmt))

    def _encode(self, image: Image.Image, fmt: PixelFormat) -> bytes:
        pimg = pixel_image(image, fmt)
        bpp = fmt.bytes_per_pixel
        width, height = pimg.size
        out = bytearray()
        bg: bytes | None = None
        fg: bytes | None = None
        for ty in range(0, height, TILE):
            for tx in range(0, width, TILE):
                tile = pimg.crop((tx, ty, min(tx + TILE, width), min(ty + TILE, height)))
                bg, fg = self._tile(tile, bpp, bg, fg, out)
        return bytes(out)

    @staticmethod
    def _tile(
        tile: Image.Image, bpp: int, bg: bytes | None, fg: bytes | None, out: bytearray
    ) -> tuple[bytes | None, bytes | None]:
        """Append one tile; return the background and foreground the decoder now holds."""
        tw, th = tile.size
        data = tile.tobytes()
        raw_size = 1 + tw * th * bpp
        colours = tile.getcolors(_MAX_COLOURS)
        if colours is None:
            out.append(RAW)
            out += data
            return None, None
        colours.sort(key=lambda c: -c[0])
        counted = [colour_bytes(px) for _, px in colours]
        new_bg = counted[0]
        flags = 0
        head = bytearray()
        if new_bg != bg:
            flags |= BACKGROUND_SPECIFIED
            head += new_bg
        if len(counted) == 1:
            out.append(flags)
            out += head
            return new_bg, fg
        mono = len(counted) == 2
        per_rect = 2 if mono else 2 + bpp
        budget = raw_size - 1 - len(head) - 1 - (bpp if mono else 0)
        limit = min(255, (budget - 1) // per_rect)
        if limit <= 0:
            rects = None
        elif len(counted) - 1 <= _MASK_COLOURS:
            rects = _mask_subrects(data, bpp, tw, th, counted, limit)
        else:
            rects = _run_subrects(data, tw, th, bpp, new_bg, limit)
        if rects is None:
            out.append(RAW)
            out += data
            return None, None
        flags |= ANY_SUBRECTS
        if mono:
            new_fg: bytes | None = counted[1]
            if new_fg != fg:
                flags |= FOREGROUND_SPECIFIED
                head += counted[1]
        else:
            new_fg = None
            flags |= SUBRECTS_COLOURED
        out.append(flags)
        out += head
        out.append(len(rects))
        for colour, x, y, w, h in rects:
            if not mono:
                out += colour
            out.append(x << 4 | y)
            out.append((w - 1) << 4 | (h - 1))
        return new_bg, new_fg
