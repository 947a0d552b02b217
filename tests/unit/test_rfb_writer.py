"""Server→client byte layouts, each checked byte for byte against the specification."""

from __future__ import annotations

import struct

from vncmux.rfb import encodings, writer
from vncmux.rfb.pixels import NATIVE


def test_handshake_layouts() -> None:
    assert writer.SERVER_VERSION == b"RFB 003.008\n"
    assert writer.version_refused("no") == b"\0\0\0\0\2no"
    assert writer.security_refused("r", (3, 3)) == b"\0\0\0\0\0\0\0\1r"
    assert writer.security_refused("r", (3, 8)) == b"\0\0\0\0\1r"
    assert writer.security_type(2) == b"\0\0\0\2"
    assert writer.security_types((19, 2)) == b"\2\x13\2"
    assert writer.security_result_ok() == b"\0\0\0\0"
    assert writer.security_result_failed((3, 8), b"bad") == b"\0\0\0\1\0\0\0\3bad"
    assert writer.security_result_failed((3, 7), b"bad") == b"\0\0\0\1"
    name = "ü".encode()
    assert writer.server_init(80, 64, NATIVE, "ü") == (
        b"\0\x50\0\x40" + NATIVE.pack() + struct.pack("!I", len(name)) + name
    )


def test_update_and_rectangle_layouts() -> None:
    rect = writer.rect_header(1, 2, 3, 4, encodings.ZRLE)
    assert rect == struct.pack("!HHHHi", 1, 2, 3, 4, 16)
    assert writer.framebuffer_update([rect, b"xy"]) == b"\0\0\0\2" + rect + b"xy"
    assert writer.framebuffer_update([]) == b"\0\0\0\0"
    assert writer.copy_rect(0, 16, 80, 32, 0, 0) == (
        struct.pack("!HHHHi", 0, 16, 80, 32, 1) + b"\0\0\0\0"
    )
    assert writer.desktop_size(96, 80) == struct.pack("!HHHHi", 0, 0, 96, 80, -223)
    assert writer.extended_desktop_size(1, 1, 96, 80) == (
        struct.pack("!HHHHi", 1, 1, 96, 80, -308)
        + b"\1\0\0\0"
        + struct.pack("!IHHHHI", 0, 0, 0, 96, 80, 0)
    )
    title = "t☃".encode()
    assert writer.desktop_name("t☃") == (
        struct.pack("!HHHHi", 0, 0, 0, 0, -307) + struct.pack("!I", len(title)) + title
    )


def test_other_server_messages() -> None:
    assert writer.bell() == b"\x02"
    assert writer.set_colour_map_entries([(1, 2, 3), (65535, 0, 257)]) == (
        b"\x01\0\0\0\0\x02" + struct.pack("!6H", 1, 2, 3, 65535, 0, 257)
    )
    assert writer.server_cut_text("é") == b"\x03\0\0\0\0\0\0\x01\xe9"
    assert writer.extended_clipboard(1 << 27) == struct.pack("!BxxxiI", 3, -4, 1 << 27)
    assert writer.extended_clipboard(1, b"abcd") == struct.pack("!BxxxiI", 3, -8, 1) + b"abcd"
    assert writer.fence(7, b"p" * 3) == b"\xf8\0\0\0\0\0\0\x07\x03ppp"
