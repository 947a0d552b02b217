"""RFB encodings: the numbers, the encoder contract, and the one registration table.

Every real encoder is created per viewer with :func:`make_encoder`, because the
compressing ones own a zlib stream that belongs to one connection (the client keeps the
matching inflater) and must die with it.  Each is built with the console's
:class:`~vncmux.rfb.encodings.shared.SharedWork`, through which viewers share what does not
depend on their stream.

Adding an encoding: one file in this package implementing :class:`IEncoder` (a
constructor taking the ``SharedWork``), and one line in :data:`ENCODERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from vncmux.rfb.encodings.hextile import HextileEncoder
from vncmux.rfb.encodings.interface import IEncoder
from vncmux.rfb.encodings.numbers import (
    COMPRESS_LEVEL_0,
    CONTINUOUS_UPDATES,
    COPYRECT,
    CORRE,
    CURSOR,
    CURSOR_WITH_ALPHA,
    DESKTOP_NAME,
    DESKTOP_SIZE,
    EXTENDED_CLIPBOARD,
    EXTENDED_DESKTOP_SIZE,
    EXTENDED_MOUSE_BUTTONS,
    FENCE,
    GII,
    HEXTILE,
    JPEG,
    JPEG_QUALITY_0,
    LAST_RECT,
    POINTER_POS,
    QEMU_AUDIO,
    QEMU_EXTENDED_KEY,
    QEMU_LED_STATE,
    QEMU_POINTER_MOTION_CHANGE,
    RAW,
    RRE,
    TIGHT,
    TIGHT_PNG,
    TRLE,
    X_CURSOR,
    XVP,
    ZLIB,
    ZLIBHEX,
    ZRLE,
)
from vncmux.rfb.encodings.raw import RawEncoder
from vncmux.rfb.encodings.shared import SharedWork
from vncmux.rfb.encodings.tight import TightEncoder
from vncmux.rfb.encodings.zlib import ZlibEncoder
from vncmux.rfb.encodings.zrle import ZRLEEncoder

__all__ = [
    "COMPRESS_LEVEL_0",
    "CONTINUOUS_UPDATES",
    "COPYRECT",
    "CORRE",
    "CURSOR",
    "CURSOR_WITH_ALPHA",
    "DESKTOP_NAME",
    "DESKTOP_SIZE",
    "ENCODERS",
    "EXTENDED_CLIPBOARD",
    "EXTENDED_DESKTOP_SIZE",
    "EXTENDED_MOUSE_BUTTONS",
    "FENCE",
    "GII",
    "HEXTILE",
    "IEncoder",
    "JPEG",
    "JPEG_QUALITY_0",
    "LAST_RECT",
    "POINTER_POS",
    "QEMU_AUDIO",
    "QEMU_EXTENDED_KEY",
    "QEMU_LED_STATE",
    "QEMU_POINTER_MOTION_CHANGE",
    "RAW",
    "RRE",
    "SharedWork",
    "TIGHT",
    "TIGHT_PNG",
    "TRLE",
    "XVP",
    "X_CURSOR",
    "ZLIB",
    "ZLIBHEX",
    "ZRLE",
    "choose",
    "make_encoder",
    "split",
    "supported",
]

EncoderFactory = Callable[[SharedWork], IEncoder]

ENCODERS: Mapping[int, EncoderFactory] = MappingProxyType(
    {
        RAW: RawEncoder,
        HEXTILE: HextileEncoder,
        ZLIB: ZlibEncoder,
        TIGHT: TightEncoder,
        ZRLE: ZRLEEncoder,
    }
)
"""Every image encoder, by encoding number: the one place an encoding is registered.

CopyRect is not here: it is not an image encoder (see
:mod:`vncmux.rfb.encodings.copyrect`).  Tight needs rectangles of at most 2048 pixels
wide and 65536 pixels, which :func:`split` provides from its declared limits; TigerVNC and
noVNC list Tight first, so a server that wants them on ZRLE passes ``disabled={TIGHT}``.
"""

_NOTHING: frozenset[int] = frozenset()


def supported(disabled: frozenset[int] = _NOTHING) -> frozenset[int]:
    """Encoding numbers :func:`make_encoder` can build, less ``disabled``."""
    return frozenset(ENCODERS) - disabled


def make_encoder(
    number: int, work: SharedWork, disabled: frozenset[int] = _NOTHING
) -> IEncoder | None:
    """A fresh encoder for ``number`` sharing ``work``, or None.

    None for unknown numbers, pseudo-encodings, CopyRect and anything in ``disabled``.
    """
    factory = None if number in disabled else ENCODERS.get(number)
    return factory(work) if factory is not None else None


def choose(
    numbers: Sequence[int], work: SharedWork, disabled: frozenset[int] = _NOTHING
) -> IEncoder:
    """The encoder for the first supported real encoding in the client's order.

    Raw when none is supported: Raw is mandatory for every client even when it does not
    list it (vncsnapshot ``-encodings zrle`` omits it).  Raw cannot be disabled.
    """
    for n in numbers:
        encoder = make_encoder(n, work, disabled)
        if encoder is not None:
            return encoder
    return RawEncoder(work)


def split(encoder: IEncoder, x: int, y: int, w: int, h: int) -> list[tuple[int, int, int, int]]:
    """The rectangle cut into pieces ``encoder`` accepts, in row-major order.

    Uses the encoder's declared ``max_width`` and ``max_pixels`` (None: no limit); a
    rectangle within them, or an empty one, is returned whole.  Each piece is encoded as
    its own RFB rectangle.
    """
    max_width: int | None = encoder.max_width
    max_pixels: int | None = encoder.max_pixels
    if w <= 0 or h <= 0 or (max_width is None and max_pixels is None):
        return [(x, y, w, h)]
    cw = min(w, max_width or w)
    ch = h if max_pixels is None else max(1, min(h, max_pixels // cw))
    return [
        (x + dx, y + dy, min(cw, w - dx), min(ch, h - dy))
        for dy in range(0, h, ch)
        for dx in range(0, w, cw)
    ]
