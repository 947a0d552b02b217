"""RFB encoding numbers, the encoder interface, and the per-viewer encoder registry.

Numbers are those of the community rfbproto specification (signed 32-bit, as they
appear in SetEncodings).  Every real encoder is created per viewer with
:func:`make_encoder`, because the compressing ones own a zlib stream that belongs to one
connection (the client keeps the matching inflater) and must die with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import zope.interface
from PIL import Image

from vncmux.rfb.pixels import PixelFormat

# Real encodings.
RAW = 0
COPYRECT = 1
RRE = 2
CORRE = 4
HEXTILE = 5
ZLIB = 6
TIGHT = 7
ZLIBHEX = 8
TRLE = 15
ZRLE = 16
JPEG = 21

# Pseudo-encodings.
DESKTOP_SIZE = -223
LAST_RECT = -224
POINTER_POS = -232
CURSOR = -239
X_CURSOR = -240
COMPRESS_LEVEL_0 = -256  # .. -247 for levels 0..9
QEMU_POINTER_MOTION_CHANGE = -257
QEMU_EXTENDED_KEY = -258
QEMU_AUDIO = -259
TIGHT_PNG = -260
QEMU_LED_STATE = -261
GII = -305
DESKTOP_NAME = -307
EXTENDED_DESKTOP_SIZE = -308
XVP = -309
FENCE = -312
CONTINUOUS_UPDATES = -313
CURSOR_WITH_ALPHA = -314
EXTENDED_MOUSE_BUTTONS = -316
JPEG_QUALITY_0 = -32  # .. -23 for levels 0..9
EXTENDED_CLIPBOARD = 0xC0A1E5CE - (1 << 32)  # -1063131698 as a signed S32


class IEncoder(zope.interface.Interface):
    """Turns one RGB rectangle into the payload of an RFB rectangle.

    An encoder may keep state between calls (a zlib stream): one instance serves exactly
    one viewer, and its calls must be made in the order the payloads are sent.
    """

    number = zope.interface.Attribute("The encoding number written in the rectangle header.")

    def encode(image: Image.Image, fmt: PixelFormat) -> bytes:  # type: ignore[empty-body]
        """Return the rectangle payload (without the 12-byte rectangle header).

        ``image`` is an RGB image exactly the size of the rectangle; ``fmt`` is the
        viewer's current (validated) pixel format.
        """


def colour_bytes(px: float | tuple[float, ...]) -> bytes:
    """One colour from ``Image.getcolors`` of a byte-band image, as its bytes in band order."""
    if isinstance(px, tuple):
        return bytes(int(v) for v in px)
    return bytes((int(px),))


# Tight needs rectangles of at most 2048 pixels wide and 65536 pixels: the server encodes
# through split().  TigerVNC and noVNC list Tight first, so this switch decides what they
# get (lossless Tight when on, ZRLE when off).
ENABLE_TIGHT = True


def _factories() -> dict[int, Callable[[], Any]]:
    # Imported lazily so the submodules can import the constants above.
    from vncmux.rfb.encodings.hextile import HextileEncoder
    from vncmux.rfb.encodings.raw import RawEncoder
    from vncmux.rfb.encodings.tight import TightEncoder
    from vncmux.rfb.encodings.zlib import ZlibEncoder
    from vncmux.rfb.encodings.zrle import ZRLEEncoder

    table: dict[int, Callable[[], Any]] = {
        RAW: RawEncoder,
        HEXTILE: HextileEncoder,
        ZLIB: ZlibEncoder,
        ZRLE: ZRLEEncoder,
    }
    if ENABLE_TIGHT:
        table[TIGHT] = TightEncoder
    return table


def split(encoder: Any, x: int, y: int, w: int, h: int) -> list[tuple[int, int, int, int]]:
    """The rectangle cut into pieces ``encoder`` accepts, in row-major order.

    Encoders may declare ``max_width`` and ``max_pixels`` (Tight does); the others take
    any rectangle, which is then returned whole.  Each piece is encoded as its own RFB
    rectangle.
    """
    max_width = getattr(encoder, "max_width", None)
    max_pixels = getattr(encoder, "max_pixels", None)
    if w <= 0 or h <= 0 or (max_width is None and max_pixels is None):
        return [(x, y, w, h)]
    cw = min(w, max_width or w)
    ch = h if max_pixels is None else max(1, min(h, max_pixels // cw))
    return [
        (x + dx, y + dy, min(cw, w - dx), min(ch, h - dy))
        for dy in range(0, h, ch)
        for dx in range(0, w, cw)
    ]


def supported() -> frozenset[int]:
    """Encoding numbers :func:`make_encoder` can build (CopyRect is separate)."""
    return frozenset(_factories())


def make_encoder(number: int) -> IEncoder | None:
    """A fresh encoder for ``number``, or None for unknown and pseudo-encodings.

    CopyRect is not an image encoder (see :mod:`vncmux.rfb.encodings.copyrect`), so it
    also yields None.
    """
    factory = _factories().get(number)
    return factory() if factory is not None else None


def choose(numbers: Sequence[int]) -> IEncoder:
    """The encoder for the first supported real encoding in the client's order.

    Raw when none is supported: Raw is mandatory for every client even when it does not
    list it (vncsnapshot ``-encodings zrle`` omits it).
    """
    factories = _factories()
    for n in numbers:
        factory = factories.get(n)
        if factory is not None:
            return factory()
    return factories[RAW]()
