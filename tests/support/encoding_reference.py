"""Independent decoders for what vncmux's encoders produce, written from rfbproto (every
pixel format, every subencoding of ZRLE and Hextile, raw pixels), and the pixel formats the
encoders are tested in (``ENC_FORMATS``)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Literal

from tests.support.pixel_reference import FORMATS, mask
from vncmux.rfb.pixels import PixelFormat

#: The valid formats of ``FORMATS`` (no ``problem()``), and two 32-bit ones more.
ENC_FORMATS = [f for f in FORMATS if f.problem() is None] + [
    # colour only in the middle bytes: fits both 3-byte CPIXEL layouts
    PixelFormat(32, 16, True, True, 31, 63, 31, 19, 13, 8),
    PixelFormat(32, 16, False, True, 31, 63, 31, 19, 13, 8),
]


def byte_order(fmt: PixelFormat) -> Literal["big", "little"]:
    """The byte order of ``fmt``'s pixels on the wire, as ``int.from_bytes`` names it."""
    return "big" if fmt.big_endian else "little"


def pixel_value(fmt: PixelFormat, data: bytes, full: bool = False) -> int:
    """The colour bits of one pixel; with ``full``, every bit (spare bits included)."""
    value = int.from_bytes(data, byte_order(fmt))
    return value if full else value & mask(fmt)


def cpixel_reader(fmt: PixelFormat, full: bool = False) -> tuple[int, Callable[[bytes], int]]:
    """CPIXEL size and decoder, per rfbproto 7.7.6 (independent of the encoder's code).

    When the colour fits both the 3 least and the 3 most significant bytes, TigerVNC's
    and LibVNCServer's decoders read the first 3 wire bytes; so does this one.  With
    ``full``, the byte a 3-byte CPIXEL leaves out counts as all ones (only what is sent
    can be checked).
    """
    m = mask(fmt)
    gap = b"\xff" if full else b"\0"
    if fmt.true_colour and fmt.bpp == 32 and fmt.depth <= 24:
        ls, ms = m <= 0xFFFFFF, m & 0xFF == 0
        if fmt.big_endian and ms:
            return 3, lambda b: pixel_value(fmt, b + gap, full)
        if not fmt.big_endian and ls:
            return 3, lambda b: pixel_value(fmt, b + gap, full)
        if ls or ms:
            return 3, lambda b: pixel_value(fmt, gap + b, full)
    return fmt.bytes_per_pixel, lambda b: pixel_value(fmt, b, full)


class Reader:
    """A cursor over a decoded payload that fails on a read past its end."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        assert self.pos + n <= len(self.data), "read past the end"
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def run_length(self) -> int:
        """A ZRLE run length: 255-bytes summed until one is not 255, plus one."""
        total = 1
        while True:
            b = self.u8()
            total += b
            if b != 255:
                return total


def zrle_decode(
    payload: bytes,
    fmt: PixelFormat,
    w: int,
    h: int,
    inflater: Any,
    seen: set[int] | None = None,
    full: bool = False,
) -> list[int]:
    """The pixel values of a ``w`` x ``h`` ZRLE rectangle, tile by tile, with ``inflater``
    (the connection's one zlib stream); each subencoding met is added to ``seen``."""
    (length,) = struct.unpack("!I", payload[:4])
    assert len(payload) == 4 + length
    r = Reader(inflater.decompress(payload[4:]))
    cp, cval = cpixel_reader(fmt, full)
    out = [-1] * (w * h)
    for ty in range(0, h, 64):
        for tx in range(0, w, 64):
            tw, th = min(64, w - tx), min(64, h - ty)
            n = tw * th
            sub = r.u8()
            if seen is not None:
                seen.add(sub)
            tile: list[int] = []
            if sub == 0:
                tile = [cval(r.take(cp)) for _ in range(n)]
            elif sub == 1:
                tile = [cval(r.take(cp))] * n
            elif 2 <= sub <= 16:
                pal = [cval(r.take(cp)) for _ in range(sub)]
                bits = 1 if sub == 2 else 2 if sub <= 4 else 4
                for _ in range(th):
                    row = r.take((tw * bits + 7) // 8)
                    for x in range(tw):
                        bit = x * bits
                        index = (row[bit // 8] >> (8 - bits - bit % 8)) & ((1 << bits) - 1)
                        assert index < sub
                        tile.append(pal[index])
            elif sub == 128:
                while len(tile) < n:
                    c = cval(r.take(cp))
                    tile += [c] * r.run_length()
            elif 130 <= sub:
                pal = [cval(r.take(cp)) for _ in range(sub - 128)]
                while len(tile) < n:
                    b = r.u8()
                    assert (b & 127) < len(pal)
                    tile += [pal[b & 127]] * (r.run_length() if b & 128 else 1)
            else:
                raise AssertionError(f"invalid subencoding {sub}")
            assert len(tile) == n, "run went past the tile"
            for y in range(th):
                out[(ty + y) * w + tx : (ty + y) * w + tx + tw] = tile[y * tw : (y + 1) * tw]
    assert r.pos == len(r.data), "trailing bytes"
    return out


def hextile_decode(
    payload: bytes,
    fmt: PixelFormat,
    w: int,
    h: int,
    seen: set[int] | None = None,
    full: bool = False,
) -> list[int]:
    """The pixel values of a ``w`` x ``h`` Hextile rectangle, with the background and
    foreground carried from tile to tile; each subencoding met is added to ``seen``."""
    r = Reader(payload)
    bpp = fmt.bytes_per_pixel
    out = [-1] * (w * h)
    bg: int | None = None
    fg: int | None = None
    for ty in range(0, h, 16):
        for tx in range(0, w, 16):
            tw, th = min(16, w - tx), min(16, h - ty)
            sub = r.u8()
            assert sub < 32
            if seen is not None:
                seen.add(sub)
            if sub & 1:
                for y in range(th):
                    for x in range(tw):
                        out[(ty + y) * w + tx + x] = pixel_value(fmt, r.take(bpp), full)
                bg = fg = None  # undefined after a raw tile
                continue
            if sub & 2:
                bg = pixel_value(fmt, r.take(bpp), full)
            assert bg is not None, "background carried over from nothing"
            for y in range(th):
                out[(ty + y) * w + tx : (ty + y) * w + tx + tw] = [bg] * tw
            if sub & 4:
                assert not sub & 16, "foreground with coloured subrects"
                fg = pixel_value(fmt, r.take(bpp), full)
            if sub & 8:
                count = r.u8()
                assert count > 0
                for _ in range(count):
                    if sub & 16:
                        colour = pixel_value(fmt, r.take(bpp), full)
                    else:
                        assert fg is not None, "foreground carried over from nothing"
                        colour = fg
                    xy, wh = r.u8(), r.u8()
                    sx, sy, sw, sh = xy >> 4, xy & 15, (wh >> 4) + 1, (wh & 15) + 1
                    assert sx + sw <= tw and sy + sh <= th, "subrect outside tile"
                    for y in range(sy, sy + sh):
                        for x in range(sx, sx + sw):
                            out[(ty + y) * w + tx + x] = colour
            if sub & 16:
                fg = None
    assert r.pos == len(payload), "trailing bytes"
    return out


def raw_values(fmt: PixelFormat, data: bytes, full: bool = False) -> list[int]:
    """The pixel values of Raw pixel data."""
    n = fmt.bytes_per_pixel
    return [pixel_value(fmt, data[i : i + n], full) for i in range(0, len(data), n)]
