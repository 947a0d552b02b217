"""Which encoder a viewer gets, and turning framebuffer rectangles into encoded ones.

``Capabilities`` reads a SetEncodings list: the pseudo-encodings the viewer announced
(what it can be told) and CopyRect.  ``EncodeManager`` keeps one encoder instance per
encoding number for the whole connection -- the compressing ones own a zlib stream whose
inflater lives in the viewer, so switching away and back must reuse it -- picks the
viewer's preferred supported one (Raw when none is), cuts each rectangle to the limits the
encoder declares, and applies the sharing policy: while ``SHARE_STREAMS_AT`` or more viewers
watch, an encoder whose output may be built once for all of them is told so each frame.
Cross-viewer work (pixel conversion, shared payloads) lives in the ``SharedWork`` the
factory makes per console and hands to every manager.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vncmux.rfb import encodings, writer
from vncmux.rfb.encodings import IEncoder
from vncmux.rfb.encodings.shared import SharedWork
from vncmux.rfb.pixels import PixelFormat
from vncmux.rfb.rects import Rect

# From this many viewers on, stream-shareable encoders compress each frame once for all.
SHARE_STREAMS_AT = 3


@dataclass(frozen=True)
class Capabilities:
    """What a viewer announced in SetEncodings besides its image encodings."""

    copyrect: bool = False
    desktop_size: bool = False
    ext_desktop_size: bool = False
    desktop_name: bool = False
    last_rect: bool = False
    ext_clipboard: bool = False
    fence: bool = False
    continuous_updates: bool = False

    @classmethod
    def from_encodings(cls, numbers: Sequence[int]) -> Capabilities:
        present = set(numbers)
        return cls(
            copyrect=encodings.COPYRECT in present,
            desktop_size=encodings.DESKTOP_SIZE in present,
            ext_desktop_size=encodings.EXTENDED_DESKTOP_SIZE in present,
            desktop_name=encodings.DESKTOP_NAME in present,
            last_rect=encodings.LAST_RECT in present,
            ext_clipboard=encodings.EXTENDED_CLIPBOARD in present,
            fence=encodings.FENCE in present,
            continuous_updates=encodings.CONTINUOUS_UPDATES in present,
        )


class EncodeManager:
    """One viewer's encoders and the encoding of its rectangles.

    ``crop(box)`` gives the current frame's image of a (left, top, right, bottom) box;
    ``viewers()`` how many viewers watch the console now."""

    def __init__(
        self,
        work: SharedWork,  # one per console
        crop: Callable[[tuple[int, int, int, int]], Any],
        viewers: Callable[[], int],
    ) -> None:
        self.work = work
        self._crop = crop
        self._viewers = viewers
        self._encoders: dict[int, IEncoder] = {}
        self.encoder: IEncoder | None = encodings.choose((encodings.RAW,), work)
        self._encoders[encodings.RAW] = self.encoder

    def setEncodings(self, numbers: Sequence[int]) -> Capabilities:
        """Choose the encoder for this list; an encoder used before is used again (its
        stream continues).  Returns what else the list announced."""
        chosen = encodings.choose(numbers, self.work)
        self.encoder = self._encoders.setdefault(chosen.number, chosen)
        return Capabilities.from_encodings(numbers)

    def encode(self, rect: Rect, fmt: PixelFormat) -> list[bytes]:
        """``rect`` as one or more whole RFB rectangles (header and payload), cut to what
        the encoder accepts, from the current frame in the viewer's pixel format."""
        encoder = self.encoder
        assert encoder is not None, "encode after close"
        if encoder.stream_shareable:
            encoder.share_stream = self._viewers() >= SHARE_STREAMS_AT
        out = []
        for x, y, w, h in encodings.split(encoder, *rect):
            image = self._crop((x, y, x + w, y + h))
            payload = encoder.encode(image, fmt)
            out.append(writer.rect_header(x, y, w, h, encoder.number) + payload)
        return out

    def close(self) -> None:
        """Free the encoders (and their zlib streams) now: the connection is gone."""
        self._encoders.clear()
        self.encoder = None
