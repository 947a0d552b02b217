"""Zlib encoding (6): raw pixels deflated through one zlib stream per viewer.

The client keeps a single inflater for the whole connection, so every rectangle
continues the same stream and ends with a sync flush (the client must be able to decode
it without seeing more data).
"""

from __future__ import annotations

import struct
import zlib

from PIL import Image
from zope.interface import implementer

from vncmux.rfb.encodings.interface import IEncoder
from vncmux.rfb.encodings.numbers import ZLIB
from vncmux.rfb.encodings.shared import SharedWork
from vncmux.rfb.pixels import PixelFormat

_LEN = struct.Struct("!I")


@implementer(IEncoder)
class ZlibEncoder:
    """Owns the viewer's deflate stream; drop the instance with the connection.

    Not stream-shareable: the stream has no reset, so its bytes always depend on what this
    viewer was sent before.  The pixel conversion comes from ``work``.
    """

    number = ZLIB
    max_width: int | None = None
    max_pixels: int | None = None
    stream_shareable = False

    def __init__(self, work: SharedWork, level: int = 6) -> None:
        self.work = work
        self.share_stream = False
        self._stream = zlib.compressobj(level)

    def encode(self, image: Image.Image, fmt: PixelFormat) -> bytes:
        """U32 length followed by that many bytes of the continuing zlib stream."""
        pixels = self.work.get("pixels", image, fmt, lambda: fmt.convert(image))
        data = self._stream.compress(pixels) + self._stream.flush(zlib.Z_SYNC_FLUSH)
        return _LEN.pack(len(data)) + data
