"""The encode manager: the encoder chosen from SetEncodings (and kept per connection), the
announced capabilities, rectangles cut to the encoder's limits, and stream sharing from
three viewers on."""

from __future__ import annotations

import struct

from PIL import Image

from vncmux.rfb import encodings
from vncmux.rfb.encode_manager import SHARE_STREAMS_AT, Capabilities, EncodeManager
from vncmux.rfb.encodings.shared import SharedWork
from vncmux.rfb.pixels import NATIVE


class Frame:
    """A plain image to crop from, counting the crops."""

    def __init__(self, width: int, height: int) -> None:
        self.image = Image.new("RGB", (width, height), (10, 20, 30))
        self.crops: list[tuple[int, int, int, int]] = []

    def crop(self, box: tuple[int, int, int, int]) -> Image.Image:
        self.crops.append(box)
        return self.image.crop(box)


def make(viewers: int = 1, width: int = 80, height: int = 64) -> tuple[EncodeManager, Frame]:
    frame = Frame(width, height)
    return EncodeManager(SharedWork(), frame.crop, lambda: viewers), frame


def test_raw_until_told_and_raw_fallback() -> None:
    manager, _ = make()
    assert manager.encoder is not None and manager.encoder.number == encodings.RAW
    manager.setEncodings((9999, encodings.COPYRECT, -223))
    assert manager.encoder.number == encodings.RAW


def test_first_supported_in_client_order_and_reused() -> None:
    manager, _ = make()
    manager.setEncodings((9999, encodings.ZRLE, encodings.ZLIB))
    zrle = manager.encoder
    assert zrle is not None and zrle.number == encodings.ZRLE
    manager.setEncodings((encodings.ZLIB,))
    assert manager.encoder is not None and manager.encoder.number == encodings.ZLIB
    manager.setEncodings((encodings.ZRLE,))
    assert manager.encoder is zrle  # its zlib stream continues


def test_capabilities_from_encodings() -> None:
    caps = Capabilities.from_encodings(
        (encodings.COPYRECT, encodings.DESKTOP_NAME, encodings.FENCE, encodings.EXTENDED_CLIPBOARD)
    )
    assert caps == Capabilities(copyrect=True, desktop_name=True, fence=True, ext_clipboard=True)
    manager, _ = make()
    assert manager.setEncodings((encodings.EXTENDED_DESKTOP_SIZE,)) == Capabilities(
        ext_desktop_size=True
    )


def test_raw_rectangle_is_header_and_pixels() -> None:
    manager, frame = make()
    (rect,) = manager.encode((8, 16, 4, 2), NATIVE)
    assert rect[:12] == struct.pack("!HHHHi", 8, 16, 4, 2, encodings.RAW)
    assert len(rect) == 12 + 4 * 4 * 2
    assert rect[12:15] == bytes([10, 20, 30])
    assert frame.crops == [(8, 16, 12, 18)]


def test_rectangles_cut_to_the_encoders_limits() -> None:
    manager, frame = make(width=3000, height=40)
    manager.setEncodings((encodings.TIGHT,))
    encoder = manager.encoder
    assert encoder is not None and encoder.max_width is not None
    rects = manager.encode((0, 0, 3000, 40), NATIVE)
    pieces = [struct.unpack_from("!HHHHi", r) for r in rects]
    assert len(pieces) > 1
    assert all(w <= encoder.max_width for _x, _y, w, _h, _e in pieces)
    if encoder.max_pixels is not None:
        assert all(w * h <= encoder.max_pixels for _x, _y, w, h, _e in pieces)
    assert sum(w * h for _x, _y, w, h, _e in pieces) == 3000 * 40
    assert len(frame.crops) == len(pieces)


def test_streams_shared_from_three_viewers() -> None:
    for viewers in (1, SHARE_STREAMS_AT - 1, SHARE_STREAMS_AT, 10):
        manager, _ = make(viewers=viewers)
        manager.setEncodings((encodings.ZRLE,))
        encoder = manager.encoder
        assert encoder is not None and encoder.stream_shareable
        manager.encode((0, 0, 16, 16), NATIVE)
        assert encoder.share_stream == (viewers >= SHARE_STREAMS_AT)


def test_close_frees_the_encoders() -> None:
    manager, _ = make()
    manager.setEncodings((encodings.ZLIB,))
    manager.close()
    assert manager.encoder is None
