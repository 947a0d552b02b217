"""Every server→client byte layout of RFB, as pure functions returning bytes.

The session decides *what* to send and when; this module alone knows how each message
looks on the wire (field order, widths, padding), so a layout is written and tested once.
Pad bytes are always zero.  Names follow the community rfbproto specification.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Sequence

from vncmux.rfb import encodings
from vncmux.rfb.pixels import PixelFormat

SERVER_VERSION = b"RFB 003.008\n"

# Server→client message types.
FRAMEBUFFER_UPDATE = 0
SET_COLOUR_MAP_ENTRIES = 1
BELL = 2
SERVER_CUT_TEXT = 3
FENCE = 248

_RECT = struct.Struct("!HHHHi")
_U32 = struct.Struct("!I")


def string(text: bytes) -> bytes:
    """An RFB string: U32 length, then the bytes."""
    return _U32.pack(len(text)) + text


# -- handshake -------------------------------------------------------------------------------


def version_refused(reason: str) -> bytes:
    """Answer to a ProtocolVersion we cannot speak (3.7/3.8 layout: zero types, reason)."""
    return b"\0" + string(reason.encode())


def security_refused(reason: str, version: tuple[int, int]) -> bytes:
    """No security type for this client: 3.3 sends type 0 (invalid), later versions an
    empty list; both follow with the reason."""
    if version == (3, 3):
        return _U32.pack(0) + string(reason.encode())
    return b"\0" + string(reason.encode())


def security_type(number: int) -> bytes:
    """RFB 3.3: the server's choice of security type (U32)."""
    return _U32.pack(number)


def security_types(numbers: Sequence[int]) -> bytes:
    """RFB 3.7+: the list of security types offered (U8 count, U8 each)."""
    return bytes([len(numbers), *numbers])


def security_result_ok() -> bytes:
    return _U32.pack(0)


def security_result_failed(version: tuple[int, int], reason: bytes = b"") -> bytes:
    """SecurityResult failed; a reason string follows only in RFB 3.8."""
    return _U32.pack(1) + (string(reason) if version == (3, 8) else b"")


def server_init(width: int, height: int, fmt: PixelFormat, name: str) -> bytes:
    """ServerInit: framebuffer size, the server's pixel format, the desktop name (UTF-8)."""
    return struct.pack("!HH", width, height) + fmt.pack() + string(name.encode("utf-8"))


# -- normal phase ------------------------------------------------------------------------------


def framebuffer_update(rects: Sequence[bytes]) -> bytes:
    """A FramebufferUpdate: header with the rectangle count, then each whole rectangle."""
    return struct.pack("!BxH", FRAMEBUFFER_UPDATE, len(rects)) + b"".join(rects)


def rect_header(x: int, y: int, w: int, h: int, encoding: int) -> bytes:
    return _RECT.pack(x, y, w, h, encoding)


def copy_rect(dx: int, dy: int, w: int, h: int, sx: int, sy: int) -> bytes:
    """A CopyRect rectangle: (dx, dy, w, h) comes from (sx, sy) of the client's picture."""
    return _RECT.pack(dx, dy, w, h, encodings.COPYRECT) + struct.pack("!HH", sx, sy)


def desktop_size(width: int, height: int) -> bytes:
    """The DesktopSize pseudo-rectangle: the framebuffer is now ``width``×``height``."""
    return _RECT.pack(0, 0, width, height, encodings.DESKTOP_SIZE)


def extended_desktop_size(reason: int, status: int, width: int, height: int) -> bytes:
    """ExtendedDesktopSize with our one screen (id 0, at 0,0, flags 0); ``reason`` and
    ``status`` go in the header's x and y as the extension says."""
    screen = struct.pack("!IHHHHI", 0, 0, 0, width, height, 0)
    return (
        _RECT.pack(reason, status, width, height, encodings.EXTENDED_DESKTOP_SIZE)
        + struct.pack("!Bxxx", 1)
        + screen
    )


def desktop_name(name: str) -> bytes:
    return _RECT.pack(0, 0, 0, 0, encodings.DESKTOP_NAME) + string(name.encode("utf-8"))


def set_colour_map_entries(entries: Iterable[tuple[int, int, int]], first: int = 0) -> bytes:
    """SetColourMapEntries: 16-bit R, G, B per entry from ``first``."""
    rows = list(entries)
    out = [struct.pack("!BxHH", SET_COLOUR_MAP_ENTRIES, first, len(rows))]
    out.extend(struct.pack("!HHH", r, g, b) for r, g, b in rows)
    return b"".join(out)


def bell() -> bytes:
    return bytes([BELL])


def server_cut_text(text: str) -> bytes:
    """ServerCutText with Latin-1 text (what a viewer without Extended Clipboard reads)."""
    data = text.encode("latin-1", errors="replace")
    return struct.pack("!BxxxI", SERVER_CUT_TEXT, len(data)) + data


def extended_clipboard(flags: int, payload: bytes = b"") -> bytes:
    """An Extended Clipboard message: ServerCutText with a negative length, the flags
    (formats in the low bits, one action in the top byte), then the action's payload."""
    length = 4 + len(payload)
    return struct.pack("!BxxxiI", SERVER_CUT_TEXT, -length, flags) + payload


def clipboard_text_payload(text: str, limit: int) -> bytes:
    """The payload of an Extended Clipboard provide holding text: zlib of (U32 size, the
    text in UTF-8 with CR LF line ends and a terminating NUL), the text cut to ``limit``
    bytes (never inside a character)."""
    data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    if len(data) >= limit:
        data = data[: max(0, limit - 1)].decode("utf-8", "ignore").encode("utf-8")
    data += b"\0"
    return zlib.compress(_U32.pack(len(data)) + data)


def fence(flags: int, payload: bytes) -> bytes:
    return struct.pack("!BxxxIB", FENCE, flags, len(payload)) + payload
