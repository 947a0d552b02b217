"""Raw encoding (0): the rectangle's pixels in the client's format, row-major."""

from __future__ import annotations

from PIL import Image
from zope.interface import implementer

from vncmux.rfb.encodings.interface import IEncoder
from vncmux.rfb.encodings.numbers import RAW
from vncmux.rfb.encodings.shared import SharedWork
from vncmux.rfb.pixels import PixelFormat


@implementer(IEncoder)
class RawEncoder:
    """Stateless; mandatory for every client, the fallback when nothing else matches."""

    number = RAW
    max_width: int | None = None
    max_pixels: int | None = None
    stream_shareable = False

    def __init__(self, work: SharedWork) -> None:
        self.work = work
        self.share_stream = False

    def encode(self, image: Image.Image, fmt: PixelFormat) -> bytes:
        """The pixels, converted; no header, no compression; shared across viewers."""
        return self.work.get("pixels", image, fmt, lambda: fmt.convert(image))
