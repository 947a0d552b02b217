"""``IEncoder``: the one contract every RFB image encoder fulfils.

The server (its encode manager) talks to encoders only through these attributes and
``encode``; nothing is discovered by probing an instance.
"""

from __future__ import annotations

import zope.interface
from PIL import Image

from vncmux.rfb.pixels import PixelFormat


class IEncoder(zope.interface.Interface):
    """Turns one RGB rectangle into the payload of an RFB rectangle.

    An encoder may keep state between calls (a zlib stream): one instance serves exactly
    one viewer, and its calls must be made in the order the payloads are sent.  Work that
    does not depend on that state (pixel conversion, tile data) goes through the
    ``SharedWork`` the encoder was built with, so viewers of one console compute it once.
    """

    number = zope.interface.Attribute("int: the encoding number written in the rectangle header.")
    max_width = zope.interface.Attribute(
        "int | None: the widest rectangle encode() accepts; None for any width."
    )
    max_pixels = zope.interface.Attribute(
        "int | None: the most pixels (width x height) encode() accepts; None for any."
    )
    stream_shareable = zope.interface.Attribute(
        "bool: True when the compressed output of a frame may be built once for every "
        "viewer (see share_stream); a class-level fact about the encoding."
    )
    share_stream = zope.interface.Attribute(
        "bool: set by the caller before each frame; True while enough viewers watch that "
        "building the compressed output once for all of them pays.  Ignored when "
        "stream_shareable is False."
    )

    def encode(image: Image.Image, fmt: PixelFormat) -> bytes:  # type: ignore[empty-body]
        """Return the rectangle payload (without the 12-byte rectangle header).

        ``image`` is an RGB image exactly the size of the rectangle, within
        ``max_width``/``max_pixels``; ``fmt`` is the viewer's current (validated) pixel
        format.
        """
