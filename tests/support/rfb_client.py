"""A fake viewer connection for RFB session tests: an ``RFBServerProtocol`` built by a real
``RFBFactory`` over a fake console and a fake clock, fed bytes and read back through a
``StringTransport`` -- no sockets, no reactor.  Also the few client messages several test
modules send (SetEncodings, the extended clipboard's ClientCutText)."""

from __future__ import annotations

import struct
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import Clock, StringTransport

from tests.support.fake_console import FakeConsole, FakeViewerSession
from vncmux.rfb import encodings
from vncmux.rfb.server import RFBFactory, RFBServerProtocol, State

NATIVE_BYTES = bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0])


def paste_buffer(c: Client) -> str:
    """What the viewer's console session keeps as its paste buffer."""
    session = c.proto.session
    assert isinstance(session, FakeViewerSession)
    return session.paste_buffer


class Client:
    """One fake viewer connection."""

    def __init__(
        self,
        factory: RFBFactory,
        host: str = "127.0.0.1",
        port: int = 40000,
        transport: type[StringTransport] = StringTransport,
    ) -> None:
        addr = IPv4Address("TCP", host, port)
        self.proto: RFBServerProtocol = factory.buildProtocol(addr)
        self.tr = transport(peerAddress=addr)
        self.proto.makeConnection(self.tr)

    def send(self, data: bytes) -> None:
        self.proto.dataReceived(data)

    def take(self) -> bytes:
        data = self.tr.value()
        self.tr.clear()
        return data

    @property
    def closed(self) -> bool:
        return bool(self.tr.disconnecting)


def make_factory(**kw: Any) -> tuple[RFBFactory, FakeConsole, Clock]:
    display = kw.pop("display", None) or FakeConsole()
    clock = Clock()
    kw.setdefault("password", None)
    kw.setdefault("share", "force-shared")
    kw.setdefault("connections", 64)
    return RFBFactory(display, clock=clock, **kw), display, clock


def server_init(display: FakeConsole) -> bytes:
    name = display.name.encode("utf-8")
    return (
        struct.pack("!HH", display.width, display.height)
        + NATIVE_BYTES
        + struct.pack("!I", len(name))
        + name
    )


def connected(factory: RFBFactory, shared: int = 1, **kw: Any) -> Client:
    """A 3.8 client past the handshake (security None), ServerInit consumed."""
    c = Client(factory, **kw)
    assert c.take() == b"RFB 003.008\n"
    c.send(b"RFB 003.008\n")
    assert c.take() == b"\x01\x01"
    c.send(b"\x01")
    assert c.take() == b"\0\0\0\0"
    c.send(bytes([shared]))
    assert c.take() == server_init(factory.console)
    assert c.proto.state is State.NORMAL
    return c


def set_encodings(*numbers: int) -> bytes:
    return struct.pack(f"!BxH{len(numbers)}i", 2, len(numbers), *numbers)


CLIP_TEXT, CLIP_CAPS, CLIP_REQUEST, CLIP_PEEK, CLIP_NOTIFY, CLIP_PROVIDE = (
    1,
    1 << 24,
    1 << 25,
    1 << 26,
    1 << 27,
    1 << 28,
)


def ext_cut(flags: int, payload: bytes = b"") -> bytes:
    return struct.pack("!BxxxiI", 6, -(4 + len(payload)), flags) + payload


def ext_clipboard_client(**kw: Any) -> tuple[Client, FakeConsole, RFBFactory]:
    factory, display, _ = make_factory(**kw)
    c = connected(factory)
    c.send(set_encodings(encodings.RAW, encodings.EXTENDED_CLIPBOARD))
    caps = c.take()
    flags = CLIP_TEXT | CLIP_CAPS | CLIP_REQUEST | CLIP_NOTIFY | CLIP_PROVIDE
    assert caps == struct.pack("!BxxxiII", 3, -8, flags, factory.max_cut_text)
    return c, display, factory
