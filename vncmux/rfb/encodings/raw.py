"""Raw encoding (0): the rectangle's pixels in the client's format, row-major."""

from __future__ import annotations

from PIL import Image
from zope.interface import implementer

from vncmux.rfb.encodings import RAW, IEncoder
from vncmux.rfb.encodings.shared import SHARED
from vncmux.rfb.pixels import PixelFormat


@implementer(IEncoder)
class RawEncoder:
    """Stateless; mandatory for every client, the fallback when nothing else matches."""

    number = RAW

    def encode(self, image: Image.Image, fmt: PixelFormat) -> bytes:
        """The pixels, converted; no header, no compression; shared across viewers."""
        return SHARED.get("pixels", image, fmt, lambda: fmt.convert(image))
