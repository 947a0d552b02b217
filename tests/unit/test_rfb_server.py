"""The RFB server session, byte-exact, over StringTransport with a fake console.

Each test plays a client: it writes the bytes a viewer would send and checks the exact bytes
the server answers (or that it closed).  The fake console (tests/support/fake_console.py)
implements IConsole and IViewerSession -- checked here with verifyObject -- over a
patterned image (every row band a different colour), so an update's pixels can be checked
against what should have been sent; the input a session passes on is recorded as calls
(turning them into terminal bytes is the console's job, tested in test_console.py).
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IPushProducer, ITCPTransport
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.support.fake_console import FakeConsole, FakeViewerSession
from tests.support.rfb_client import (
    CLIP_CAPS,
    CLIP_NOTIFY,
    CLIP_PEEK,
    CLIP_PROVIDE,
    CLIP_REQUEST,
    CLIP_TEXT,
    NATIVE_BYTES,
    Client,
    connected,
    ext_clipboard_client,
    ext_cut,
    make_factory,
    paste_buffer,
    server_init,
    set_encodings,
)
from vncmux.config import ConfigError, VncSpec
from vncmux.console.interfaces import IConsole, IViewer, IViewerSession
from vncmux.rfb import auth, encodings
from vncmux.rfb.listen import listenVNC
from vncmux.rfb.pixels import colour_map_entries
from vncmux.rfb.reader import IMessageHandler
from vncmux.rfb.security import ISecuritySession
from vncmux.rfb.server import (
    State,
    negotiate_version,
)

XK_Shift_L = 0xFFE1
XK_Insert = 0xFF63
XK_Return = 0xFF0D

FakeDisplay = FakeConsole  # the name these tests use for it


def fbur(incremental: int, x: int, y: int, w: int, h: int) -> bytes:
    return struct.pack("!BBHHHH", 3, incremental, x, y, w, h)


def key(down: int, keysym: int) -> bytes:
    return struct.pack("!BBxxI", 4, down, keysym)


def cut_text(text: bytes, length: int | None = None) -> bytes:
    return struct.pack("!BxxxI", 6, len(text) if length is None else length) + text


def parse_update(
    data: bytes, bpp: int = 4
) -> tuple[list[tuple[int, int, int, int, int, bytes]], bytes]:
    """(rects, rest): each rect (x, y, w, h, encoding, payload) for Raw/CopyRect/pseudo."""
    assert data[0] == 0 and data[1] == 0, data[:4]
    (count,) = struct.unpack_from("!H", data, 2)
    pos = 4
    rects = []
    for _ in range(count):
        x, y, w, h, enc = struct.unpack_from("!HHHHi", data, pos)
        pos += 12
        if enc == encodings.RAW:
            size = w * h * bpp
        elif enc == encodings.COPYRECT:
            size = 4
        elif enc == encodings.DESKTOP_SIZE:
            size = 0
        elif enc == encodings.EXTENDED_DESKTOP_SIZE:
            size = 4 + 16 * data[pos]
        elif enc == encodings.DESKTOP_NAME:
            size = 4 + struct.unpack_from("!I", data, pos)[0]
        else:
            raise AssertionError(f"unexpected encoding {enc}")
        rects.append((x, y, w, h, enc, data[pos : pos + size]))
        pos += size
    return rects, data[pos:]


def native_pixels(img: Image.Image) -> bytes:
    """R, G, B, 0 per pixel: the native format, computed here independently."""
    rgb = img.tobytes()
    return b"".join(rgb[i : i + 3] + b"\0" for i in range(0, len(rgb), 3))


def assert_raw_matches(display: FakeDisplay, rect: tuple[int, int, int, int, int, bytes]) -> None:
    x, y, w, h, enc, payload = rect
    assert enc == encodings.RAW
    got = bytes(b for i, b in enumerate(payload) if i % 4 != 3)
    want = native_pixels(display.image.crop((x, y, x + w, y + h)))
    assert got == bytes(b for i, b in enumerate(want) if i % 4 != 3)


# -- interfaces ---------------------------------------------------------------------------


def test_fake_console_and_session_provide_the_console_interfaces() -> None:
    """The fake these tests run on is held to the interfaces the real Console provides."""
    factory, display, _ = make_factory()
    assert verifyObject(IConsole, display)
    c = connected(factory)
    assert verifyObject(IViewerSession, c.proto.session)


def test_session_provides_its_interfaces() -> None:
    factory, _display, _ = make_factory()
    c = connected(factory)
    for iface in (IViewer, IPushProducer, IMessageHandler, ISecuritySession):
        assert verifyObject(iface, c.proto)


# -- versions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, expected",
    [
        (b"RFB 003.003\n", (3, 3)),
        (b"RFB 003.007\n", (3, 7)),
        (b"RFB 003.008\n", (3, 8)),
        (b"RFB 003.005\n", (3, 3)),
        (b"RFB 003.889\n", (3, 8)),
        (b"RFB 003.014\n", (3, 8)),
        (b"RFB 004.000\n", (4, 0)),
        (b"RFB 03.008\n\n", None),
        (b"GET / HTTP/1", None),
        (b"RFB 003.008\r", None),
    ],
)
def test_negotiate_version(line: bytes, expected: tuple[int, int] | None) -> None:
    assert negotiate_version(line) == expected


@pytest.mark.parametrize("line", [b"RFB 003.008\n", b"RFB 003.889\n", b"RFB 003.014\n"])
def test_version_38_offers_list_and_result_after_none(line: bytes) -> None:
    factory, display, _ = make_factory()
    c = Client(factory)
    assert c.take() == b"RFB 003.008\n"
    c.send(line)
    assert c.take() == b"\x01\x01"
    c.send(b"\x01")
    assert c.take() == b"\0\0\0\0"
    c.send(b"\x01")
    assert c.take() == server_init(display)
    assert c.proto.version == (3, 8)


def test_version_37_no_security_result_after_none() -> None:
    factory, display, _ = make_factory()
    c = Client(factory)
    c.take()
    c.send(b"RFB 003.007\n")
    assert c.take() == b"\x01\x01"
    c.send(b"\x01")
    assert c.take() == b""
    c.send(b"\x01")
    assert c.take() == server_init(display)


@pytest.mark.parametrize("line", [b"RFB 003.003\n", b"RFB 003.005\n", b"RFB 003.006\n"])
def test_version_33_server_chooses_none(line: bytes) -> None:
    factory, display, _ = make_factory()
    c = Client(factory)
    c.take()
    c.send(line)
    assert c.take() == b"\0\0\0\x01"
    c.send(b"\x00")
    assert c.take() == server_init(display)
    assert c.proto.version == (3, 3)


def test_version_4_refused_with_reason() -> None:
    factory, _, _ = make_factory()
    c = Client(factory)
    c.take()
    c.send(b"RFB 004.000\n")
    out = c.take()
    reason = b"unsupported RFB protocol version 4.0"
    assert out == b"\0" + struct.pack("!I", len(reason)) + reason
    assert c.closed


def test_garbage_version_closes() -> None:
    factory, _, _ = make_factory()
    c = Client(factory)
    c.take()
    c.send(b"GET / HTTP/1.1\r\n")
    assert c.take() == b""
    assert c.closed


def test_version_split_across_reads() -> None:
    factory, _display, _ = make_factory()
    c = Client(factory)
    c.take()
    for b in b"RFB 003.008\n":
        c.send(bytes([b]))
    assert c.take() == b"\x01\x01"


# -- security ----------------------------------------------------------------------------


def _vnc_auth(version: bytes, password: bytes, typed: bytes) -> tuple[Client, FakeDisplay, bytes]:
    factory, display, _ = make_factory(password=password)
    c = Client(factory)
    c.take()
    c.send(version)
    if version == b"RFB 003.003\n":
        out = c.take()
        assert out[:4] == b"\0\0\0\x02"
        challenge = out[4:]
    else:
        assert c.take() == b"\x01\x02"
        c.send(b"\x02")
        challenge = c.take()
    assert len(challenge) == 16
    c.send(auth.vnc_auth_response(challenge, typed))
    return c, display, c.take()


@pytest.mark.parametrize("version", [b"RFB 003.003\n", b"RFB 003.007\n", b"RFB 003.008\n"])
def test_vnc_auth_success(version: bytes) -> None:
    c, display, out = _vnc_auth(version, b"pw", b"pw")
    assert out == b"\0\0\0\0"
    assert not c.closed
    c.send(b"\x01")
    assert c.take() == server_init(display)


@pytest.mark.parametrize(
    "version, tail",
    [
        (b"RFB 003.003\n", b""),
        (b"RFB 003.007\n", b""),
        (b"RFB 003.008\n", struct.pack("!I", 21) + b"authentication failed"),
    ],
)
def test_vnc_auth_wrong_password(version: bytes, tail: bytes) -> None:
    c, _, out = _vnc_auth(version, b"pw", b"wrong")
    assert out == b"\0\0\0\x01" + tail
    assert c.closed
    c.send(b"\x01")  # a ClientInit after failure is ignored
    assert c.take() == b""
    assert c.proto.damage is None


def test_type_not_offered_38_refused_with_reason() -> None:
    factory, _, _ = make_factory(password=b"pw")
    c = Client(factory)
    c.take()
    c.send(b"RFB 003.008\n")
    assert c.take() == b"\x01\x02"
    c.send(b"\x01")  # None, though only VNC auth was offered
    reason = b"security type not offered"
    assert c.take() == b"\0\0\0\x01" + struct.pack("!I", len(reason)) + reason
    assert c.closed
    c.send(b"\x01")
    assert c.take() == b""


@pytest.mark.parametrize("choice", [0, 1, 16, 19, 255])
def test_type_not_offered_37_closes(choice: int) -> None:
    factory, _, _ = make_factory(password=b"pw")
    c = Client(factory)
    c.take()
    c.send(b"RFB 003.007\n")
    assert c.take() == b"\x01\x02"
    c.send(bytes([choice]))
    assert c.take() == b""
    assert c.closed


def test_vnc_auth_not_offered_without_password() -> None:
    factory, _, _ = make_factory()
    c = Client(factory)
    c.take()
    c.send(b"RFB 003.008\n")
    assert c.take() == b"\x01\x01"
    c.send(b"\x02")
    assert c.take()[:4] == b"\0\0\0\x01"
    assert c.closed


def test_blacklist_after_five_failures() -> None:
    factory, _, clock = make_factory(password=b"pw")
    for _ in range(5):
        c = Client(factory)
        c.take()
        c.send(b"RFB 003.008\n")
        c.take()
        c.send(b"\x02")
        c.take()
        c.send(b"\0" * 16)
        assert c.take().startswith(b"\0\0\0\x01")
        c.proto.connectionLost()
    c = Client(factory)
    c.take()
    c.send(b"RFB 003.008\n")
    out = c.take()
    assert out[0] == 0 and b"too many authentication failures" in out
    assert c.closed
    other = Client(factory, host="10.1.1.1")  # another host is not affected
    other.take()
    other.send(b"RFB 003.008\n")
    assert other.take() == b"\x01\x02"
    clock.advance(10.5)
    c = Client(factory)
    c.take()
    c.send(b"RFB 003.008\n")
    assert c.take() == b"\x01\x02"


def test_handshake_timeout() -> None:
    factory, _, clock = make_factory()
    c = Client(factory)
    c.send(b"RFB 003.008\n")
    clock.advance(factory.handshake_timeout - 0.1)
    assert not c.closed
    clock.advance(0.2)
    assert c.closed
    done = connected(factory)
    clock.advance(factory.handshake_timeout * 3)
    assert not done.closed


# -- ClientInit: sharing and limits -------------------------------------------------------


@pytest.mark.parametrize("policy", ["force-shared", "ignore"])
def test_exclusive_request_ignored(policy: str) -> None:
    factory, _, _ = make_factory(share=policy)
    first = connected(factory)
    second = connected(factory, shared=0)
    assert not first.closed and not second.closed
    assert second.proto.shared


def test_allow_exclusive_disconnects_others() -> None:
    factory, _, _ = make_factory(share="allow-exclusive")
    first = connected(factory)
    half = Client(factory, port=40001)  # still in the handshake
    second = connected(factory, shared=0, port=40002)
    assert first.closed and half.closed
    assert not second.closed
    first.proto.connectionLost()
    half.proto.connectionLost()
    # While the exclusive viewer is there, a shared one is refused.
    c = Client(factory, port=40003)
    c.take()
    c.send(b"RFB 003.008\n\x01\x01")
    assert c.take() == b"\x01\x01\0\0\0\0"
    assert c.closed
    assert not second.closed


def test_allow_exclusive_shared_clients_coexist() -> None:
    factory, _, _ = make_factory(share="allow-exclusive")
    first = connected(factory)
    second = connected(factory)
    assert not first.closed and not second.closed


def test_connection_limit() -> None:
    factory, _, _ = make_factory(connections=2)
    a = connected(factory)
    b = Client(factory, port=40001)
    c = Client(factory, port=40002)
    assert c.closed and c.take() == b""
    assert not a.closed and not b.closed
    b.proto.connectionLost()
    d = Client(factory, port=40003)
    assert not d.closed


def test_server_init_bytes() -> None:
    factory, display, _ = make_factory()
    c = connected(factory)  # asserts ServerInit
    name = "vncmux: test ü".encode()
    assert server_init(display) == (
        b"\x00\x50\x00\x40" + NATIVE_BYTES + struct.pack("!I", len(name)) + name
    )
    assert c.proto in display.accs


def test_disconnect_detaches() -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    c.proto.connectionLost()
    assert c.proto not in display.accs
    assert factory.clients == []


# -- SetPixelFormat ----------------------------------------------------------------------


def spf(
    bpp: int,
    depth: int,
    be: int,
    tc: int,
    rm: int,
    gm: int,
    bm: int,
    rs: int,
    gs: int,
    bs: int,
) -> bytes:
    return b"\0\0\0\0" + struct.pack("!BBBBHHHBBBxxx", bpp, depth, be, tc, rm, gm, bm, rs, gs, bs)


@pytest.mark.parametrize(
    "fmt, bpp_bytes",
    [
        ((32, 24, 0, 1, 255, 255, 255, 0, 8, 16), 4),
        ((32, 24, 1, 1, 255, 255, 255, 16, 8, 0), 4),
        ((16, 16, 0, 1, 31, 63, 31, 11, 5, 0), 2),
        ((8, 8, 0, 1, 7, 7, 3, 0, 3, 6), 1),
    ],
)
def test_set_pixel_format_valid(fmt: tuple[int, ...], bpp_bytes: int) -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(spf(*fmt) + fbur(0, 0, 0, display.width, display.height))
    assert not c.closed
    rects, rest = parse_update(c.take(), bpp=bpp_bytes)
    assert rest == b""
    assert sum(w * h for _x, _y, w, h, _e, _p in rects) == display.width * display.height


@pytest.mark.parametrize(
    "fmt",
    [
        (0, 24, 0, 1, 255, 255, 255, 0, 8, 16),
        (1, 1, 0, 1, 1, 1, 1, 0, 0, 0),
        (7, 7, 0, 1, 3, 3, 1, 0, 2, 4),
        (24, 24, 0, 1, 255, 255, 255, 0, 8, 16),
        (33, 24, 0, 1, 255, 255, 255, 0, 8, 16),
        (32, 24, 0, 1, 0, 255, 255, 0, 8, 16),  # max 0
        (32, 24, 0, 1, 5, 255, 255, 0, 8, 16),  # max not 2^n-1
        (16, 16, 0, 1, 31, 63, 31, 16, 5, 0),  # shift >= bpp
        (32, 24, 0, 1, 255, 255, 255, 0, 4, 16),  # overlap
        (16, 24, 0, 1, 31, 63, 31, 11, 5, 0),  # depth > bpp
        (32, 24, 0, 0, 0, 0, 0, 0, 0, 0),  # colour map not at 8 bpp
    ],
)
def test_set_pixel_format_invalid_closes(fmt: tuple[int, ...]) -> None:
    factory, _display, _ = make_factory()
    c = connected(factory)
    c.send(spf(*fmt) + fbur(0, 0, 0, 10, 10))
    assert c.closed
    assert c.take() == b""


def test_colour_map_mode() -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(spf(8, 8, 0, 0, 0, 0, 0, 0, 0, 0))
    out = c.take()
    entries = colour_map_entries()
    assert out[:6] == struct.pack("!BxHH", 1, 0, len(entries))
    assert out[6:] == b"".join(struct.pack("!HHH", *e) for e in entries)
    c.send(fbur(0, 0, 0, display.width, display.height))
    rects, rest = parse_update(c.take(), bpp=1)
    assert rest == b"" and rects
    # Each pixel value indexes a palette entry close to the pixel's colour.
    x, y, w, _h, _e, payload = rects[0]
    r, g, b = display.image.getpixel((x + 5, y + 3))  # type: ignore[misc]
    er, eg, eb = entries[payload[3 * w + 5]]
    assert abs(er / 257 - r) < 40 and abs(eg / 257 - g) < 40 and abs(eb / 257 - b) < 90


# -- SetEncodings ------------------------------------------------------------------------


def test_set_encodings_65535_entries_in_pieces() -> None:
    factory, _display, _ = make_factory()
    c = connected(factory)
    numbers = [0x7F000000 + i for i in range(65533)] + [
        encodings.COPYRECT,
        encodings.RAW,
    ]
    msg = set_encodings(*numbers)
    assert len(msg) == 4 + 4 * 65535
    for i in range(0, len(msg), 7000):
        c.send(msg[i : i + 7000])
    assert c.proto.caps.copyrect and not c.closed
    assert c.proto.encoders is not None and c.proto.encoders.encoder is not None
    assert c.proto.encoders.encoder.number == encodings.RAW
    assert len(c.proto._buf) == 0
    c.send(fbur(0, 0, 0, 8, 8))
    assert parse_update(c.take())[0]


def test_set_encodings_flags_and_choice() -> None:
    factory, _, _ = make_factory()
    c = connected(factory)
    c.send(
        set_encodings(9999, encodings.ZLIB, encodings.RAW, encodings.DESKTOP_NAME, encodings.FENCE)
    )
    p, manager = c.proto, c.proto.encoders
    assert manager is not None and manager.encoder is not None
    assert manager.encoder.number == encodings.ZLIB
    assert p.caps.desktop_name and p.caps.fence
    caps = p.caps
    assert not (caps.copyrect or caps.desktop_size or caps.ext_desktop_size or caps.last_rect)
    zlib_encoder = manager.encoder
    c.send(set_encodings(encodings.RAW))
    c.send(set_encodings(encodings.ZLIB))
    assert manager.encoder is zlib_encoder  # one zlib stream for the whole connection
    assert not p.caps.desktop_name


def test_qemu_extended_key_never_acknowledged() -> None:
    factory, _display, _ = make_factory()
    c = connected(factory)
    c.send(set_encodings(encodings.RAW, encodings.QEMU_EXTENDED_KEY) + fbur(0, 0, 0, 80, 64))
    rects, _ = parse_update(c.take())
    assert all(r[4] != encodings.QEMU_EXTENDED_KEY for r in rects)


# -- FramebufferUpdateRequest ------------------------------------------------------------


def test_non_incremental_whole_area_at_once() -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(fbur(0, 0, 0, display.width, display.height))
    rects, rest = parse_update(c.take())
    assert rest == b""
    covered = set()
    for rect in rects:
        assert_raw_matches(display, rect)
        x, y, w, h = rect[:4]
        covered |= {(i, j) for i in range(x, x + w) for j in range(y, y + h)}
    assert len(covered) == display.width * display.height


def test_non_incremental_covers_margin_rows() -> None:
    display = FakeDisplay(margin=5)
    factory, _, _ = make_factory(display=display)
    c = connected(factory)
    c.send(fbur(0, 0, 0, display.width, display.height))
    rects, _ = parse_update(c.take())
    assert sum(r[2] * r[3] for r in rects) == display.width * display.height
    assert any(r[1] == display.rows * display.cell_height and r[3] == 5 for r in rects)


def test_non_incremental_answered_even_without_damage() -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(fbur(0, 0, 0, display.width, display.height))
    c.take()
    c.send(fbur(0, 0, 16, display.width, 16))
    rects, _ = parse_update(c.take())
    assert [(r[1], r[3]) for r in rects] == [(16, 16)]
    assert_raw_matches(display, rects[0])


def test_incremental_waits_for_damage() -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(fbur(0, 0, 0, display.width, display.height))
    c.take()
    c.send(fbur(1, 0, 0, display.width, display.height))
    assert c.take() == b""
    display.change(rows=[2])
    rects, rest = parse_update(c.take())
    assert rest == b""
    assert [r[:4] for r in rects] == [(0, 32, 80, 16)]
    assert_raw_matches(display, rects[0])
    display.change(rows=[1])  # no request pending: nothing sent
    assert c.take() == b""
    c.send(fbur(1, 0, 0, display.width, display.height))
    rects, _ = parse_update(c.take())
    assert [r[:4] for r in rects] == [(0, 16, 80, 16)]


def test_first_incremental_request_gets_everything() -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(fbur(1, 0, 0, display.width, display.height))
    rects, _ = parse_update(c.take())
    assert [r[:4] for r in rects] == [(0, 0, 80, 64)]


def test_no_unrequested_update() -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    display.change(rows=[0, 1])
    assert c.take() == b""


def test_copyrect_on_scroll() -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(set_encodings(encodings.RAW, encodings.COPYRECT))
    c.send(fbur(0, 0, 0, display.width, display.height))
    c.take()
    c.send(fbur(1, 0, 0, display.width, display.height))
    display.change(rows=[3], scroll=(0, 3, 1))
    rects, rest = parse_update(c.take())
    assert rest == b""
    assert rects[0] == (0, 0, 80, 48, encodings.COPYRECT, struct.pack("!HH", 0, 16))
    assert [r[:5] for r in rects[1:]] == [(0, 48, 80, 16, encodings.RAW)]
    assert_raw_matches(display, rects[1])


def test_scroll_without_copyrect_redraws_rows() -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(fbur(0, 0, 0, display.width, display.height))
    c.take()
    c.send(fbur(1, 0, 0, display.width, display.height))
    display.change(rows=[3], scroll=(0, 3, 1))
    rects, _ = parse_update(c.take())
    assert [r[:5] for r in rects] == [(0, 0, 80, 64, encodings.RAW)]


def test_reverse_scroll_copyrect() -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(set_encodings(encodings.COPYRECT) + fbur(0, 0, 0, 80, 64))
    c.take()
    c.send(fbur(1, 0, 0, 80, 64))
    display.change(scroll=(1, 3, -1))
    rects, _ = parse_update(c.take())
    assert rects[0] == (0, 32, 80, 32, encodings.COPYRECT, struct.pack("!HH", 0, 16))
    assert [r[:4] for r in rects[1:]] == [(0, 16, 80, 16)]


@pytest.mark.parametrize(
    "x, y, w, h",
    [
        (0, 0, 0, 64),
        (0, 0, 80, 0),
        (65535, 0, 1, 1),
        (0, 65535, 80, 1),
        (65000, 65000, 65535, 65535),
    ],
)
def test_fbur_empty_or_out_of_range(x: int, y: int, w: int, h: int) -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(fbur(0, x, y, w, h))
    rects, rest = parse_update(c.take())
    assert rects == [] and rest == b""
    c.send(fbur(1, x, y, w, h))
    display.change(rows=[0, 1, 2, 3])
    assert c.take() == b""
    assert not c.closed
    c.send(fbur(1, 0, 0, 80, 64))  # the damage was kept
    rects, _ = parse_update(c.take())
    assert sum(r[3] for r in rects) == 64


def test_fbur_overflowing_width_is_clipped() -> None:
    factory, _display, _ = make_factory()
    c = connected(factory)
    c.send(fbur(0, 10, 20, 65535, 65535))
    rects, _ = parse_update(c.take())
    assert rects and all(r[0] + r[2] <= 80 and r[1] + r[3] <= 64 for r in rects)
    assert {r[1] for r in rects} == {16}  # rows 1..3 intersect y >= 20


def test_only_requested_rows_sent_rest_kept() -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(fbur(0, 0, 0, 80, 64))
    c.take()
    c.send(fbur(1, 0, 0, 80, 16))  # row 0 only
    display.change(rows=[3])
    assert c.take() == b""  # nothing in the requested area
    display.change(rows=[0])
    rects, _ = parse_update(c.take())
    assert [r[:4] for r in rects] == [(0, 0, 80, 16)]
    c.send(fbur(1, 0, 0, 80, 64))
    rects, _ = parse_update(c.take())
    assert [r[:4] for r in rects] == [(0, 48, 80, 16)]


# -- ClientCutText -----------------------------------------------------------------------


@pytest.mark.parametrize("length", [0xFFFFFFFF, 0x80000000])
def test_cut_text_huge_length_not_allocated_and_stall(length: int) -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(cut_text(b"x" * 1000, length=length))
    assert not c.closed
    assert c.proto.reader.cut_held == 1000  # what arrived, not what was declared
    assert len(c.proto._buf) == 0
    for _ in range(15):  # keeps streaming: kept up to the cap only
        c.send(b"y" * 65536)
    assert c.proto.reader.cut_held == 1000 + 15 * 65536
    c.send(b"z" * (1 << 20))
    assert c.proto.reader.cut_held == factory.max_cut_text
    assert paste_buffer(c) == ""  # never complete, never used
    assert display.inputs == []
    # Then the client stalls: nothing happens, nothing is sent.
    assert c.take() == b""
    assert not c.closed


def test_cut_text_over_cap_is_truncated_and_stream_resyncs() -> None:
    factory, display, _ = make_factory(max_cut_text=16)
    c = connected(factory)
    text = bytes(range(0x41, 0x41 + 40))
    c.send(cut_text(text)[:20])
    c.send(cut_text(text)[20:] + fbur(0, 0, 0, 8, 8))
    assert paste_buffer(c) == text[:16].decode("latin-1")
    rects, _ = parse_update(c.take())
    assert rects
    assert display.inputs == [("clipboard", text[:16].decode("latin-1"))]  # kept, not typed


def test_cut_text_latin1() -> None:
    factory, _display, _ = make_factory()
    c = connected(factory)
    c.send(cut_text("héllo\n".encode("latin-1")))
    assert paste_buffer(c) == "héllo\n"


def test_clipboard_and_keys_reach_the_console_session_in_order() -> None:
    """Clipboard text is handed over (the console keeps it and types it only on
    Shift+Insert or a middle click); keys follow as keysyms, in order."""
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(cut_text(b"ls -l\n"))
    c.send(key(1, XK_Shift_L) + key(1, XK_Insert) + key(0, XK_Insert) + key(0, XK_Shift_L))
    assert display.inputs == [
        ("clipboard", "ls -l\n"),
        ("key", XK_Shift_L, True),
        ("key", XK_Insert, True),
        ("key", XK_Insert, False),
        ("key", XK_Shift_L, False),
    ]


def test_pointer_events_reach_the_console_session_unclamped() -> None:
    """Pixel coordinates as sent: mapping them to cells (and clamping) is the console's."""
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(struct.pack("!BBHH", 5, 1, 20, 40) + struct.pack("!BBHH", 5, 0, 20, 40))
    c.send(struct.pack("!BBHH", 5, 2, 60000, 60000))
    assert display.inputs == [
        ("pointer", 1, 20, 40),
        ("pointer", 0, 20, 40),
        ("pointer", 2, 60000, 60000),
    ]


def test_view_only_is_passed_to_the_console() -> None:
    factory, _display, _ = make_factory()
    c = connected(factory)
    session = c.proto.session
    assert isinstance(session, FakeViewerSession)
    assert not session.view_only and session.peer == "127.0.0.1:40000"


# -- keys ----------------------------------------------------------------------------------


def test_key_events_reach_the_console_session() -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(key(1, ord("a")) + key(0, ord("a")) + key(1, XK_Return) + key(0, XK_Return))
    assert display.inputs == [
        ("key", ord("a"), True),
        ("key", ord("a"), False),
        ("key", XK_Return, True),
        ("key", XK_Return, False),
    ]


def test_qemu_extended_key_event() -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(
        struct.pack("!BBHII", 255, 0, 1, ord("q"), 0x10)
        + struct.pack("!BBHII", 255, 0, 0, ord("q"), 0x10)
    )
    c.send(struct.pack("!BBHII", 255, 0, 1, 0, 0x10))  # keysym 0: ignored
    assert display.inputs == [("key", ord("q"), True), ("key", ord("q"), False)]
    assert not c.closed
    c.send(struct.pack("!BBH", 255, 1, 0))
    assert c.closed


# -- other messages ----------------------------------------------------------------------


@pytest.mark.parametrize("mtype", [1, 7, 8, 100, 149, 200, 249, 254])
def test_unknown_message_type_closes(mtype: int) -> None:
    factory, _, _ = make_factory()
    c = connected(factory)
    c.send(bytes([mtype]) + b"\0" * 30)
    assert c.closed
    assert c.take() == b""


def test_fence_over_64_closes() -> None:
    factory, _, _ = make_factory()
    c = connected(factory)
    c.send(struct.pack("!BxxxIB", 248, 0, 65))
    assert c.closed


def test_fence_request_answered_when_announced() -> None:
    factory, _, _ = make_factory()
    c = connected(factory)
    c.send(set_encodings(encodings.FENCE))
    payload = b"p" * 64
    c.send(struct.pack("!BxxxIB", 248, (1 << 31) | 0x7 | 0x8, 64) + payload)
    assert c.take() == struct.pack("!BxxxIB", 248, 0x7, 64) + payload
    assert not c.closed


def test_fence_ignored_when_not_announced() -> None:
    factory, _, _ = make_factory()
    c = connected(factory)
    c.send(struct.pack("!BxxxIB", 248, 1 << 31, 2) + b"ab")
    assert c.take() == b"" and not c.closed


def test_enable_continuous_updates_parsed() -> None:
    factory, _display, _ = make_factory()
    c = connected(factory)
    c.send(struct.pack("!BBHHHH", 150, 1, 0, 0, 80, 64) + fbur(0, 0, 0, 8, 8))
    assert not c.closed
    assert parse_update(c.take())[0]


def _eds(reason: int, status: int, w: int, h: int) -> tuple[int, int, int, int, int, bytes]:
    return (
        reason,
        status,
        w,
        h,
        encodings.EXTENDED_DESKTOP_SIZE,
        struct.pack("!BxxxIHHHHI", 1, 0, 0, 0, w, h, 0),
    )


def test_set_desktop_size_prohibited() -> None:
    factory, _display, _ = make_factory()
    c = connected(factory)
    c.send(set_encodings(encodings.RAW, encodings.EXTENDED_DESKTOP_SIZE))
    c.send(fbur(0, 0, 0, 80, 64))
    rects, _ = parse_update(c.take())
    assert rects[0] == _eds(0, 0, 80, 64)
    c.send(struct.pack("!BxHHBx", 251, 100, 100, 2) + b"\0" * 32)
    assert c.take() == b""  # not requested yet
    c.send(fbur(1, 0, 0, 80, 64))
    rects, _ = parse_update(c.take())
    assert rects == [_eds(1, 1, 80, 64)]


def test_set_desktop_size_without_announcement_ignored() -> None:
    factory, _display, _ = make_factory()
    c = connected(factory)
    c.send(struct.pack("!BxHHBx", 251, 100, 100, 1) + b"\0" * 16 + fbur(1, 0, 0, 80, 64))
    rects, _ = parse_update(c.take())
    assert all(r[4] == encodings.RAW for r in rects)


def test_bell() -> None:
    factory, _display, _ = make_factory()
    c = connected(factory)
    c.proto.bell()
    assert c.take() == b"\x02"


def test_desktop_name_only_when_announced() -> None:
    factory, display, _ = make_factory()
    plain = connected(factory, port=1)
    named = connected(factory, port=2)
    named.send(set_encodings(encodings.RAW, encodings.DESKTOP_NAME))
    for c in (plain, named):
        c.send(fbur(0, 0, 0, 80, 64))
        c.take()
        c.send(fbur(1, 0, 0, 80, 64))
    display.name = "new title ☃"
    for c in (plain, named):
        c.proto.nameChanged(display.name)
    assert plain.take() == b""
    rects, _ = parse_update(named.take())
    title = "new title ☃".encode()
    assert rects == [(0, 0, 0, 0, encodings.DESKTOP_NAME, struct.pack("!I", len(title)) + title)]


def test_resize_with_extended_desktop_size() -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(set_encodings(encodings.RAW, encodings.EXTENDED_DESKTOP_SIZE, encodings.DESKTOP_SIZE))
    c.send(fbur(0, 0, 0, 80, 64))
    c.take()
    c.send(fbur(1, 0, 0, 80, 64))
    display.resize(12, 5)  # 96x80: every viewer hears sizeChanged
    rects, rest = parse_update(c.take())
    assert rest == b""
    assert rects[0] == _eds(0, 0, 96, 80)
    assert sum(r[2] * r[3] for r in rects[1:]) == 96 * 80
    for r in rects[1:]:
        assert_raw_matches(display, r)


def test_resize_with_desktop_size_only() -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(set_encodings(encodings.RAW, encodings.DESKTOP_SIZE) + fbur(0, 0, 0, 80, 64))
    c.take()
    display.resize(10, 5)  # 80x80
    assert c.take() == b""  # waits for a request
    c.send(fbur(1, 0, 0, 80, 64))
    rects, _ = parse_update(c.take())
    assert rects[0] == (0, 0, 80, 80, encodings.DESKTOP_SIZE, b"")
    assert sum(r[3] for r in rects[1:]) == 80


def test_resize_unannounced_keeps_old_size() -> None:
    factory, display, _ = make_factory()
    c = connected(factory)
    c.send(fbur(0, 0, 0, 80, 64))
    c.take()
    display.resize(10, 5)  # 80x80
    c.send(fbur(1, 0, 0, 80, 80))
    rects, _ = parse_update(c.take())
    assert all(r[1] + r[3] <= 64 for r in rects)


# -- flow control ------------------------------------------------------------------------


def test_paused_transport_gets_no_updates_and_stall_drops() -> None:
    factory, display, clock = make_factory(stall_timeout=5)
    c = connected(factory)
    c.send(fbur(0, 0, 0, 80, 64))
    c.take()
    c.proto.pauseProducing()
    c.send(fbur(1, 0, 0, 80, 64))
    display.change(rows=[1])
    c.proto.bell()
    assert c.take() == b""
    c.proto.resumeProducing()
    rects, _ = parse_update(c.take())
    assert [r[:4] for r in rects] == [(0, 16, 80, 16)]
    c.proto.pauseProducing()
    clock.advance(4.9)
    assert not c.closed
    clock.advance(0.2)
    assert c.closed and c.tr.disconnected


def test_resume_cancels_stall_timer() -> None:
    factory, _display, clock = make_factory(stall_timeout=5)
    c = connected(factory)
    c.proto.pauseProducing()
    clock.advance(4)
    c.proto.resumeProducing()
    clock.advance(10)
    assert not c.closed


def test_tcp_nodelay_on_tcp_transports() -> None:
    """Small messages (a Bell, a one-row update) must not wait for Nagle's timer."""

    @implementer(ITCPTransport)
    class TCPTransport(StringTransport):
        nodelay = False

        def setTcpNoDelay(self, enabled: bool) -> None:
            self.nodelay = enabled

    factory, _, _ = make_factory()
    tcp = Client(factory, transport=TCPTransport)
    assert isinstance(tcp.tr, TCPTransport) and tcp.tr.nodelay
    assert tcp.take() == b"RFB 003.008\n"


def test_registered_as_streaming_producer() -> None:
    factory, _, _ = make_factory()
    c = connected(factory)
    assert c.tr.producer is c.proto and c.tr.streaming


def test_whole_session_one_byte_at_a_time() -> None:
    factory, display, _ = make_factory(password=b"pw")
    c = Client(factory)
    c.take()
    for b in b"RFB 003.008\n\x02":
        c.send(bytes([b]))
    challenge = c.take()[2:]
    stream = (
        auth.vnc_auth_response(challenge, b"pw")
        + b"\x01"
        + set_encodings(encodings.RAW, encodings.COPYRECT)
        + cut_text(b"hi")
        + key(1, ord("z"))
        + fbur(0, 0, 0, 80, 64)
    )
    for b in stream:
        c.send(bytes([b]))
    out = c.take()
    assert out.startswith(b"\0\0\0\0" + server_init(display))
    rects, rest = parse_update(out[4 + len(server_init(display)) :])
    assert rest == b"" and sum(r[2] * r[3] for r in rects) == 80 * 64
    assert display.inputs == [("clipboard", "hi"), ("key", ord("z"), True)]
    assert paste_buffer(c) == "hi"


# -- listening ---------------------------------------------------------------------------


class _FakeReactor:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[str, Any]] = []
        self.stopped = 0

    def _port(self) -> Any:
        outer = self

        class P:
            def stopListening(self) -> None:
                outer.stopped += 1

        return P()

    def listenTCP(self, port: int, factory: Any, interface: str = "") -> Any:
        self.calls.append(("tcp", (port, interface)))
        if self.fail and len(self.calls) > 1:
            raise CannotListenError(interface, port, OSError(98, "Address already in use"))
        return self._port()

    def listenUNIX(self, path: str, factory: Any, mode: int = 0o666) -> Any:
        self.calls.append(("unix", (path, mode)))
        return self._port()


def test_listen_tcp_port_in_use_is_config_error() -> None:
    from twisted.internet import reactor

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        with pytest.raises(ConfigError) as e:
            listenVNC(
                VncSpec(kind="tcp", host="127.0.0.1", port=port),
                make_factory()[0],
                reactor,
            )
        assert str(e.value) == f"--vnc: cannot listen on 127.0.0.1:{port}: address already in use"
    finally:
        busy.close()


def test_listen_ipv6_and_hostnames() -> None:
    r = _FakeReactor()
    listenVNC(VncSpec(kind="tcp", host="[::1]", port=5901), None, r)  # type: ignore[arg-type]
    listenVNC(VncSpec(kind="tcp", host="", port=5902), None, r)  # type: ignore[arg-type]
    assert r.calls == [("tcp", (5901, "::1")), ("tcp", (5902, ""))]
    assert listenVNC(VncSpec(kind="none"), None, r) == []  # type: ignore[arg-type]


def test_listen_failure_closes_what_was_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name with two addresses: the second bind fails, the first port is closed again."""
    import vncmux.rfb.listen as listen_module

    def two_addresses(host: str, port: int, **kw: Any) -> list[Any]:
        assert host == "dual.example"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
        ]

    monkeypatch.setattr(listen_module.socket, "getaddrinfo", two_addresses)
    r = _FakeReactor(fail=True)
    with pytest.raises(ConfigError) as e:
        listenVNC(VncSpec(kind="tcp", host="dual.example", port=5900), None, r)  # type: ignore[arg-type]
    assert str(e.value) == "--vnc: cannot listen on [::1]:5900: address already in use"
    assert r.calls == [("tcp", (5900, "127.0.0.1")), ("tcp", (5900, "::1"))]
    assert r.stopped == 1


def test_listen_unix_mode_and_stale_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "vnc.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens: a leftover
    r = _FakeReactor()
    listenVNC(VncSpec(kind="unix", path=path), None, r)  # type: ignore[arg-type]
    assert r.calls == [("unix", (path, 0o600))]
    assert not Path(path).exists()  # removed so the real bind can succeed


def test_listen_unix_live_socket_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "vnc.sock")
    live = socket.socket(socket.AF_UNIX)
    live.bind(path)
    live.listen()
    try:
        with pytest.raises(ConfigError, match="already in use"):
            listenVNC(VncSpec(kind="unix", path=path), None, _FakeReactor())  # type: ignore[arg-type]
    finally:
        live.close()
    regular = tmp_path / "file"
    regular.write_text("x")
    with pytest.raises(ConfigError, match="not a socket"):
        listenVNC(VncSpec(kind="unix", path=str(regular)), None, _FakeReactor())  # type: ignore[arg-type]


def test_repeated_set_desktop_size_does_not_queue_up() -> None:
    factory, _display, _ = make_factory()
    c = connected(factory)
    c.send(set_encodings(encodings.RAW, encodings.EXTENDED_DESKTOP_SIZE))
    c.proto.pauseProducing()
    c.send((struct.pack("!BxHHBx", 251, 100, 100, 1) + b"\0" * 16) * 1000)
    c.send(fbur(1, 0, 0, 80, 64) * 1000)
    assert c.take() == b""
    c.proto.resumeProducing()
    rects, rest = parse_update(c.take())
    assert rest == b""
    assert [r for r in rects if r[4] == encodings.EXTENDED_DESKTOP_SIZE] == [_eds(1, 1, 80, 64)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(min_size=1, max_size=64), max_size=20))
def test_fuzz_messages_never_raise(chunks: list[bytes]) -> None:
    """Arbitrary bytes after the handshake: handled or closed, never an exception, and the
    input buffer never holds more than the largest message (SetEncodings) plus a chunk."""
    factory, display, _ = make_factory(display=FakeDisplay(cols=4, rows=2))
    c = connected(factory)
    for chunk in chunks:
        c.send(chunk)
        assert len(c.proto._buf) <= 4 + 4 * 65535 + 64
    c.proto.connectionLost()  # the transport reports it, whether we or the peer closed
    assert c.proto not in display.accs and factory.clients == []


# -- extended clipboard ------------------------------------------------------------------


def test_extended_clipboard_provide_utf8() -> None:
    import zlib

    c, display, _ = ext_clipboard_client()
    text = "héllo ☃\r\nx".encode() + b"\0"
    c.send(ext_cut(CLIP_PROVIDE | CLIP_TEXT, zlib.compress(struct.pack("!I", len(text)) + text)))
    assert paste_buffer(c) == "héllo ☃\r\nx"
    assert display.inputs == [("clipboard", "héllo ☃\r\nx")]


def test_extended_clipboard_notify_is_answered_with_request() -> None:
    c, _display, _ = ext_clipboard_client()
    c.send(ext_cut(CLIP_NOTIFY | CLIP_TEXT))
    assert c.take() == struct.pack("!BxxxiI", 3, -4, CLIP_REQUEST | CLIP_TEXT)
    c.send(ext_cut(CLIP_NOTIFY))  # nothing we can use: no request
    c.send(ext_cut(CLIP_CAPS | CLIP_TEXT, struct.pack("!I", 1000)))
    assert c.take() == b""
    c.send(ext_cut(CLIP_PEEK))
    assert c.take() == struct.pack("!BxxxiI", 3, -4, CLIP_NOTIFY)
    assert not c.closed


def test_extended_clipboard_bomb_is_capped() -> None:
    import zlib

    c, _display, _ = ext_clipboard_client(max_cut_text=1000)
    bomb = zlib.compress(struct.pack("!I", 50_000_000) + b"a" * 500_000, 9)
    assert len(bomb) < 1000
    c.send(ext_cut(CLIP_PROVIDE | CLIP_TEXT, bomb) + fbur(0, 0, 0, 8, 8))
    assert paste_buffer(c) == "a" * 1000
    assert parse_update(c.take())[0]


def test_extended_clipboard_oversized_or_broken_dropped() -> None:
    c, _display, _ = ext_clipboard_client(max_cut_text=100)
    c.send(ext_cut(CLIP_PROVIDE | CLIP_TEXT, b"x" * 500) + fbur(0, 0, 0, 8, 8))
    assert paste_buffer(c) == ""
    assert parse_update(c.take())[0]
    c.send(ext_cut(CLIP_PROVIDE | CLIP_TEXT, b"not zlib") + ext_cut(0) + fbur(0, 0, 0, 8, 8))
    assert paste_buffer(c) == "" and not c.closed
    assert parse_update(c.take())[0]


# -- a close always finishes ---------------------------------------------------------------

JUNK = b"\x64" + b"\0" * 30  # message type 100: unknown, so the viewer is closed


class TLSLikeTransport(StringTransport):
    """Behaves as Twisted's TLS layer does on close: while a producer is registered,
    ``loseConnection`` only marks the connection as closing; the close alert (and so the
    end of the connection) waits for the producer to be unregistered."""

    close_started = False

    def loseConnection(self) -> None:
        super().loseConnection()
        if self.producer is None:
            self.close_started = True

    def unregisterProducer(self) -> None:
        super().unregisterProducer()
        if self.disconnecting:
            self.close_started = True


def test_a_close_the_peer_never_completes_is_aborted_after_the_grace() -> None:
    factory, _, clock = make_factory()
    c = connected(factory)
    c.send(JUNK)  # an unknown message type: closed, the transport never finishes
    assert c.closed and not c.tr.disconnected
    assert c.tr.producer is None  # unregistered, or TCP would wait for the producer
    clock.advance(factory.close_grace - 0.1)
    assert not c.tr.disconnected
    clock.advance(0.2)
    assert c.tr.disconnected  # aborted


def test_a_close_that_finishes_cancels_the_grace() -> None:
    factory, _, clock = make_factory()
    c = connected(factory)
    c.send(JUNK)
    c.proto.connectionLost()
    assert clock.getDelayedCalls() == []


def test_a_closed_viewer_gives_its_slot_back_at_once() -> None:
    factory, _, _ = make_factory(connections=2)
    connected(factory)
    b = connected(factory, port=40001)
    b.send(JUNK)  # closing, but its transport is still open
    assert b.closed and not b.tr.disconnected
    c = Client(factory, port=40002)
    assert not c.closed and c.take() == b"RFB 003.008\n"
    assert [p for p in factory.live()] == [factory.clients[0], c.proto]
    d = Client(factory, port=40003)
    assert d.closed  # the limit still holds for live viewers


def test_a_viewer_that_stops_reading_then_sends_junk_is_dropped_within_the_grace() -> None:
    """--stall-timeout's promise holds even when the viewer misbehaves while stalled."""
    factory, _, clock = make_factory(stall_timeout=30)
    c = connected(factory)
    c.proto.pauseProducing()  # its transport is full: it does not read
    c.send(JUNK)
    assert c.closed
    clock.advance(factory.close_grace + 0.1)
    assert c.tr.disconnected


def test_wrong_password_inside_tls_starts_the_tls_close() -> None:
    """With a producer registered the TLS close never starts (X509Vnc, wrong password)."""
    factory, _, clock = make_factory(password=b"pw", auth_failure_delay=0.1)
    c = Client(factory, transport=TLSLikeTransport)
    c.take()
    c.send(b"RFB 003.008\n")
    c.take()
    c.send(b"\x02")
    challenge = c.take()
    c.send(auth.vnc_auth_response(challenge, b"wrong"))
    clock.advance(0.2)
    assert c.take().startswith(b"\0\0\0\x01")
    assert isinstance(c.tr, TLSLikeTransport) and c.tr.close_started
    clock.advance(factory.close_grace)
    assert c.tr.disconnected  # and the peer that never answers the close is dropped


@pytest.mark.parametrize("abort", [False, True])
def test_every_close_path_unregisters_and_is_bounded(abort: bool) -> None:
    factory, _, clock = make_factory()
    c = connected(factory)
    c.proto.close("test", abort=abort)
    assert c.tr.producer is None and c.closed
    c.tr.disconnected = False  # an abort the transport did not carry out
    clock.advance(factory.close_grace + 0.1)
    assert c.tr.disconnected


def test_a_refused_connection_is_closed_within_the_grace() -> None:
    factory, _, clock = make_factory(connections=1)
    connected(factory)
    c = Client(factory, port=40001)
    assert c.closed and c.proto not in factory.clients
    clock.advance(factory.close_grace + 0.1)
    assert c.tr.disconnected


def test_handshake_timeout_of_a_connection_that_never_closes() -> None:
    factory, _, clock = make_factory()
    c = Client(factory)
    clock.advance(factory.handshake_timeout + 0.1)
    assert c.tr.disconnected  # aborted: no grace needed


# -- pending handshakes: eviction by host ---------------------------------------------------


@pytest.mark.parametrize(
    "hosts, newcomer, victim",
    [
        (["a", "b", "c", "d"], "e", 0),  # one each: the oldest overall
        (["user", "x", "x", "x"], "x", 1),  # the flooding host loses its own oldest
        (["user", "x", "x", "x"], "user", 1),  # even when the user connects again
        (["x", "user", "user", "x"], "y", 0),  # as many each: the one whose oldest is oldest
        (["x", "user", "user", "x"], "user", 1),  # the newcomer counts with its host
        (["a"], "a", 0),
    ],
)
def test_eviction_victim(hosts: list[str], newcomer: str, victim: int) -> None:
    from vncmux.rfb.factory import eviction_victim

    assert eviction_victim(hosts, newcomer) == victim


def test_a_flood_from_one_host_evicts_its_own_handshakes_not_a_users() -> None:
    factory, _, _ = make_factory(password=b"pw", max_pending=4)
    user = Client(factory, host="10.0.0.2")
    user.take()
    user.send(b"RFB 003.008\n\x02")
    challenge = user.take()[2:]
    flood = [Client(factory, host="10.0.0.1", port=50000 + i) for i in range(64)]
    assert not user.closed
    assert all(f.closed for f in flood[:-3]) and not any(f.closed for f in flood[-3:])
    user.send(auth.vnc_auth_response(challenge, b"pw"))
    assert user.take() == b"\0\0\0\0"


def test_eviction_counts_loopback_as_one_host() -> None:
    factory, _, _ = make_factory(max_pending=2)
    first = Client(factory, host="127.0.0.2")
    Client(factory, host="127.0.0.1", port=40001)
    Client(factory, host="127.0.0.3", port=40002)
    assert first.closed  # the same host (loopback): its oldest


def test_handshakes_in_progress_are_capped() -> None:
    factory, _, _ = make_factory(max_pending=3)
    clients = [Client(factory, host=f"10.0.0.{i}") for i in range(1, 6)]
    assert [c.closed for c in clients] == [True, True, False, False, False]
    assert len([c for c in factory.live() if c.state is not State.NORMAL]) == 3


# -- a view-only viewer never takes exclusive access ---------------------------------------


def test_view_only_viewer_cannot_take_exclusive_access() -> None:
    factory, _, _ = make_factory(share="allow-exclusive", password=b"full", view_password=b"look")

    def login(password: bytes, shared: int, port: int) -> Client:
        c = Client(factory, port=port)
        c.take()
        c.send(b"RFB 003.008\n\x02")
        challenge = c.take()[2:]
        c.send(auth.vnc_auth_response(challenge, password))
        assert c.take() == b"\0\0\0\0"
        c.send(bytes([shared]))
        assert c.take() == server_init(factory.console)
        return c

    driver = login(b"full", 1, 40000)
    with capturedLogs() as events:
        watcher = login(b"look", 0, 40001)
    assert not driver.closed and not watcher.closed
    assert watcher.proto.shared and not watcher.proto.exclusive
    assert any("view-only: its request for exclusive" in formatEvent(e) for e in events)
    second = login(b"full", 1, 40002)  # full-control viewers are not locked out
    assert not second.closed
    owner = login(b"full", 0, 40003)  # a full-control viewer still may take it
    assert owner.proto.exclusive and driver.closed and watcher.closed and second.closed
