"""Tight encoding (7), lossless subset: fill, palette filter, copy filter, zlib.

TigerVNC's and noVNC's first choice (and the best one older noVNC releases have besides
Hextile).  We never use JPEG or the gradient filter: a terminal is flat colours, and a
lossless picture is what users of a console expect.

Limits imposed by the protocol, which the caller must respect by splitting rectangles
(see :attr:`TightEncoder.max_width` and :attr:`TightEncoder.max_pixels`): a Tight
rectangle is at most 2048 pixels wide, and the compact length field tops out at 4 MiB,
which we guarantee by never encoding more than 65536 pixels at once (TightVNC's own
limit).  :meth:`TightEncoder.encode` raises ValueError beyond them rather than emit a
stream the client would reject.

For the common 32-bit formats with 8-bit channels a TPIXEL is 3 bytes, R, G, B: the spare
byte is not sent and the viewer fills it in.  gtk-vnc fills it with 0 for a fill rectangle
and with 0xff for palette and copy-filter pixels, and ``gvncviewer`` saves it as the
screenshot's alpha.  So for those formats a single colour goes as a two-entry palette with
an all-zero bitmap, deflated: 18 bytes for 64x16, 63 for 640x96, instead of a 4-byte fill.

Each viewer's encoder owns three zlib streams (0 full colour, 1 two-colour bitmaps,
2 indexed), sync-flushed per rectangle, freed with the encoder; with several viewers a
frame is built once for all of them on freshly reset streams (see ``TightEncoder``).
"""

from __future__ import annotations

import zlib
from typing import Any

from PIL import Image
from zope.interface import implementer

from vncmux.rfb.encodings.common import colour_bytes, index_bytes, pixel_image
from vncmux.rfb.encodings.interface import IEncoder
from vncmux.rfb.encodings.numbers import TIGHT
from vncmux.rfb.encodings.shared import SharedWork
from vncmux.rfb.pixels import PixelFormat

__all__ = ["MAX_PIXELS", "MAX_WIDTH", "TightEncoder", "compact_length", "tpixel_image"]

FILL = 0x80
EXPLICIT_FILTER = 0x40
FILTER_PALETTE = 1
MIN_TO_COMPRESS = 12
STREAM_FULL, STREAM_MONO, STREAM_INDEXED = 0, 1, 2
MAX_WIDTH = 2048  # rfbproto's limit on a Tight rectangle
MAX_PIXELS = 65536  # keeps every compact length under 4 MiB (TightVNC's own limit)
_MAX_PALETTE = 16  # palettes are indexed in C by common.index_bytes, which stops at 16


def compact_length(n: int) -> bytes:
    """Tight's 1-3 byte little-endian base-128 length (at most 4194303)."""
    if n < 0 or n > 0x3FFFFF:
        raise ValueError(f"Tight length {n} out of range")
    if n < 0x80:
        return bytes((n,))
    if n < 0x4000:
        return bytes((n & 0x7F | 0x80, n >> 7))
    return bytes((n & 0x7F | 0x80, (n >> 7) & 0x7F | 0x80, n >> 14))


def is_888(fmt: PixelFormat) -> bool:
    """True when TPIXELs are 3 bytes R, G, B (rfbproto; TigerVNC's ``is888``)."""
    return (
        fmt.true_colour
        and fmt.bpp == 32
        and fmt.depth == 24
        and (fmt.red_max, fmt.green_max, fmt.blue_max) == (255, 255, 255)
        and all(s % 8 == 0 for s in (fmt.red_shift, fmt.green_shift, fmt.blue_shift))
    )


def tpixel_image(image: Image.Image, fmt: PixelFormat) -> Image.Image:
    """``image`` as an image whose bands are the TPIXEL bytes (3 R,G,B or a whole pixel)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    if is_888(fmt):
        return image
    return pixel_image(image, fmt)


@implementer(IEncoder)
class TightEncoder:
    """One per viewer: owns the connection's zlib streams.

    Like ZRLE (see ``ZRLEEncoder``), a frame is either compressed on this viewer's own
    streams (history kept: fewer bytes) or, while several viewers watch (``share_stream``,
    set by the caller), built once for all of them through ``work``: the rectangle then
    asks the client to reset the zlib stream it uses (a bit of the compression-control
    byte) and carries a fresh zlib stream, so its bytes do not depend on anything sent
    before.  A stream that a shared rectangle reset is reset again, with a fresh
    compressor, the next time this viewer's own compressor uses it."""

    number = TIGHT
    max_width: int | None = MAX_WIDTH
    max_pixels: int | None = MAX_PIXELS
    stream_shareable = True

    def __init__(self, work: SharedWork, level: int = 1) -> None:
        self.work = work
        self.level = level
        self.share_stream = False
        self._streams: list[Any] = [zlib.compressobj(level) for _ in range(3)]
        self._reset: set[int] = set()  # streams the client reset since we last used them

    def encode(self, image: Image.Image, fmt: PixelFormat) -> bytes:
        """Fill for one colour (a palette with 3-byte TPIXELs), palette filter for 2..16,
        else the copy filter."""
        w, h = image.size
        if w > MAX_WIDTH or w * h > MAX_PIXELS:
            raise ValueError(f"Tight rectangle {w}x{h} too large: split it")
        if self.share_stream:
            payload = self.work.get(
                f"tight-{self.level}", image, fmt, lambda: self._build(image, fmt, None)
            )
            if not payload[0] & FILL:
                self._reset.add((payload[0] >> 4) & 3)
            return payload
        return self._build(image, fmt, self._streams)

    def _build(self, image: Image.Image, fmt: PixelFormat, own: list[Any] | None) -> bytes:
        """The rectangle on ``own`` streams, or (None) on a fresh stream it resets."""
        w, h = image.size
        timg = tpixel_image(image, fmt)
        colours = timg.getcolors(_MAX_PALETTE)
        palette = None if colours is None else [colour_bytes(px) for _, px in colours]
        index = b""
        if palette is not None and len(palette) == 1:
            if not is_888(fmt):
                return bytes((FILL,)) + palette[0]
            palette = palette * 2  # the bitmap never points at the second entry
            index = bytes(w * h)
        elif palette is not None and w * h > len(palette):
            index = index_bytes(timg.tobytes(), len(palette[0]), palette)
        else:
            palette = None
        if palette is not None:
            if len(palette) == 2:
                stream = STREAM_MONO
                data = Image.frombytes("P", (w, h), index).tobytes("raw", "P;1")
            else:
                stream = STREAM_INDEXED
                data = index
            control = EXPLICIT_FILTER | stream << 4
            middle = bytes((FILTER_PALETTE, len(palette) - 1)) + b"".join(palette)
        else:
            stream, data, control, middle = STREAM_FULL, timg.tobytes(), STREAM_FULL << 4, b""
        if len(data) < MIN_TO_COMPRESS:
            return bytes((control,)) + middle + data
        if own is None or stream in self._reset:
            control |= 1 << stream  # the client starts this stream afresh
            z = zlib.compressobj(self.level)
            if own is not None:
                own[stream] = z
                self._reset.discard(stream)
        else:
            z = own[stream]
        packed = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
        return bytes((control,)) + middle + compact_length(len(packed)) + packed
