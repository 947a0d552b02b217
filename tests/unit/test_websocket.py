"""RFB over WebSocket: a real listening port on loopback, a wsproto client in the test.

The server runs on the global reactor, which the test iterates while it polls a
non-blocking client socket, so everything happens in one thread and every wait is on a
condition with a deadline.  The RFB side is the real RFBFactory with the fake display of
the RFB server tests, so what arrives is what a TCP viewer would get.  The limits of the
port (rfb/http_limits.py) are tested here too: timing with a test clock and an in-memory
transport, the connection cap and the close grace on a real port.
"""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    Request,
    TextMessage,
)

from tests.support.fake_console import FakeConsole as FakeDisplay
from tests.support.rfb_client import server_init
from tests.support.ws_client import DEADLINE, WSClient, http_get, listen, pump, reactor
from vncmux.errors import ConfigError
from vncmux.rfb import http_limits, novnc_page
from vncmux.rfb.http_limits import MAX_MESSAGE, RefusalLog
from vncmux.rfb.server import RFBFactory
from vncmux.rfb.websocket import listenWebSocket, makeWebSocketSite, path_fault
from vncmux.specs import VncSpec


@pytest.fixture
def events() -> Any:
    """Log events emitted while the test runs."""
    from twisted.logger import ILogObserver, globalLogPublisher
    from zope.interface import implementer

    seen: list[dict[str, Any]] = []

    @implementer(ILogObserver)
    class Observer:
        def __call__(self, event: dict[str, Any]) -> None:
            seen.append(event)

    observer = Observer()
    globalLogPublisher.addObserver(observer)
    try:
        yield seen
    finally:
        globalLogPublisher.removeObserver(observer)


@pytest.fixture
def server() -> Any:
    """An RFB factory with the fake display behind a WebSocket port on 127.0.0.1
    (no noVNC directory)."""
    display = FakeDisplay()
    factory = RFBFactory(display, password=None, clock=reactor, connections=2)
    port, listening, _ = listen(factory)
    try:
        yield factory, port, [listening]
    finally:
        listening.stopListening()
        for c in list(factory.clients):
            c.transport.abortConnection()
        reactor.iterate(0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_version_string_arrives_as_a_binary_message(server: Any) -> None:
    factory, port, _ = server
    c = WSClient(port)
    assert c.accepted
    assert c.take(12) == b"RFB 003.008\n"
    assert c.messages[0] == b"RFB 003.008\n"
    (proto,) = factory.clients
    assert proto.peer.startswith("127.0.0.1:")  # the TCP peer, as on the TCP port
    c.close()


def test_full_handshake_both_ways_then_server_init(server: Any) -> None:
    factory, port, _ = server
    c = WSClient(port, path="/")
    assert c.take(12) == b"RFB 003.008\n"
    c.send(b"RFB 003.008\n")
    assert c.take(2) == b"\x01\x01"
    c.send(b"\x01")
    assert c.take(4) == b"\0\0\0\0"
    c.send(b"\x01")
    expected = server_init(factory.console)
    assert c.take(len(expected)) == expected
    # A FramebufferUpdateRequest gets a FramebufferUpdate back over the same socket.
    c.send(struct.pack("!BBHHHH", 3, 0, 0, 0, 8, 16))
    head = c.take(4)
    assert head[0] == 0 and struct.unpack("!H", head[2:])[0] >= 1
    c.close()


def test_one_byte_messages_and_fragments_and_one_byte_writes(server: Any) -> None:
    factory, port, _ = server
    c = WSClient(port)
    assert c.take(12) == b"RFB 003.008\n"
    for b in b"RFB 003.008\n":  # one message per byte
        c.send(bytes([b]))
    assert c.take(2) == b"\x01\x01"
    frame = c.ws.send(BytesMessage(data=b"\x01"))
    for i in range(len(frame)):  # one TCP write per byte of a frame
        c.raw(frame[i : i + 1])
        reactor.iterate(0.001)
    assert c.take(4) == b"\0\0\0\0"
    c.send(b"", finished=False)  # ClientInit as a fragmented message: empty, then the byte
    c.send(b"\x01", finished=True)
    expected = server_init(factory.console)
    assert c.take(len(expected)) == expected
    c.close()


def test_huge_declared_frame_is_refused_without_being_buffered(
    server: Any, events: list[dict[str, Any]]
) -> None:
    factory, port, _ = server
    c = WSClient(port)
    assert c.take(12) == b"RFB 003.008\n"
    (proto,) = factory.clients
    seen: list[bytes] = []
    original = proto.dataReceived

    def spy(data: bytes) -> None:
        seen.append(data)
        original(data)

    proto.dataReceived = spy  # type: ignore[method-assign]
    # A masked binary frame that claims 2**62 bytes of payload, then data streaming in.
    c.raw(bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 62) + b"\0\0\0\0")
    sent = 0
    chunk = b"\0" * 65536
    while not c.closed and sent < 8 << 20:
        try:
            c.raw(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
        reactor.iterate(0)
        c.poll()
    c.wait_closed()
    assert sent < 8 << 20  # the server closed; it did not wait for the whole thing
    # What the server held when it gave up: the limit plus at most one read.
    (held,) = [e["n"] for e in events if "closing" in e.get("log_format", "") and "n" in e]
    limit = max(MAX_MESSAGE, factory.max_cut_text + 65536)
    assert limit < held <= limit + 65536, held  # Twisted reads at most 64 KiB at a time
    assert seen == []  # nothing of it ever reached the RFB parser
    pump(lambda: not factory.clients, "the RFB session to end")


def test_text_messages_close_the_connection(server: Any) -> None:
    factory, port, _ = server
    c = WSClient(port)
    c.take(12)
    c.raw(c.ws.send(TextMessage(data="RFB 003.008\n")))
    c.wait_closed()
    assert c.close_code == 1003
    pump(lambda: not factory.clients, "the RFB session to end")


def test_client_close_ends_the_rfb_session(server: Any) -> None:
    factory, port, _ = server
    c = WSClient(port)
    c.take(12)
    assert len(factory.clients) == 1
    c.raw(c.ws.send(CloseConnection(code=1000)))
    c.wait_closed()
    pump(lambda: not factory.clients, "the RFB session to end")


def test_connection_limit_is_the_factorys(server: Any) -> None:
    factory, port, _ = server
    a, b = WSClient(port), WSClient(port)
    a.take(12)
    b.take(12)
    third = WSClient(port)
    third.wait_closed()
    assert third.received == b""  # refused before the version string
    assert len(factory.clients) == 2
    for c in (a, b, third):
        c.close()


def test_cross_site_origin_is_refused_own_origin_accepted(server: Any) -> None:
    factory, port, _ = server
    evil = WSClient(port, headers=[(b"origin", b"http://evil.example")])
    assert evil.rejected == 403 and not evil.accepted
    assert factory.clients == []
    own = WSClient(port, headers=[(b"origin", f"http://127.0.0.1:{port}".encode())])
    assert own.accepted
    assert own.take(12) == b"RFB 003.008\n"
    own.close()
    evil.close()


def test_rebound_dns_name_is_refused(server: Any) -> None:
    _, port, _ = server
    # Host and Origin agree, but the name is not this machine's: DNS rebinding.
    c = WSClient(port, handshake=False)
    c.raw(
        c.ws.send(
            Request(
                host=f"attacker.example:{port}",
                target="/",
                extra_headers=[(b"origin", f"http://attacker.example:{port}".encode())],
            )
        )
    )
    pump(lambda: c.rejected is not None or c.closed, "the refusal", c.poll)
    assert c.rejected == 403
    c.close()


def test_plain_get_without_novnc_explains_how_to_install(server: Any) -> None:
    _, port, _ = server
    status, headers, body = http_get(port, "/")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert b"apt install novnc" in body and b"npm install @novnc/novnc" in body
    status, _, _ = http_get(port, "/novnc/vnc.html")
    assert status == 404


def test_plain_get_with_novnc_serves_the_page_and_files(tmp_path: Path) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "rfb.js").write_text("export default class RFB {}\n")
    assert novnc_page.find_novnc({"VNCMUX_NOVNC": str(tmp_path)}) == str(tmp_path.resolve())
    with capturedLogs() as events:
        assert novnc_page.find_novnc({"VNCMUX_NOVNC": str(tmp_path / "nope")}) in (
            None,
            novnc_page.DEBIAN_NOVNC,
        )
    assert any("nope holds no noVNC" in formatEvent(e) for e in events)  # (a typo is seen)
    factory = RFBFactory(FakeDisplay(), password=None, clock=reactor)
    port, listening, _ = listen(factory, novnc=str(tmp_path))
    try:
        status, _, body = http_get(port, "/")
        assert status == 200
        assert b"./novnc/core/rfb.js" in body and b"apt install" not in body
        assert b'id="login"' in body and b"prompt(" not in body  # a form, not a dialog
        status, _, body = http_get(port, "/novnc/core/rfb.js")
        assert status == 200 and body == b"export default class RFB {}\n"
        status, _, body = http_get(port, "/novnc/core/")  # no listings
        assert status == 404
        status, _, _ = http_get(port, "/novnc/../../etc/passwd")
        assert status == 404
    finally:
        listening.stopListening()


def test_port_in_use_is_a_one_line_config_error(server: Any) -> None:
    factory, port, _ = server
    spec = VncSpec(kind="tcp", host="127.0.0.1", port=5900, websocket=port)
    with pytest.raises(ConfigError) as info:
        listenWebSocket(spec, factory, reactor)
    assert (
        str(info.value)
        == f"--vnc websocket: cannot listen on 127.0.0.1:{port}: address already in use"
    )


def test_no_websocket_option_listens_nowhere() -> None:
    spec = VncSpec(kind="tcp", host="127.0.0.1", port=5900)
    assert listenWebSocket(spec, RFBFactory(FakeDisplay(), clock=reactor), reactor) == []


class _Flood(Protocol):
    """Writes until paused, to see the transport's flow control reach it."""

    transport: Any

    def connectionMade(self) -> None:
        self.paused = False
        self.transport.registerProducer(self, True)
        self.resumeProducing()

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        for _ in range(64):  # bounded: without flow control this just stops
            if self.paused:
                return
            self.transport.write(b"x" * 65536)

    def stopProducing(self) -> None:
        self.paused = True


def test_a_viewer_that_does_not_read_pauses_the_session() -> None:
    protos: list[_Flood] = []

    class Recording(Factory):
        def buildProtocol(self, addr: Any) -> _Flood:
            protos.append(_Flood())
            return protos[-1]

    factory = Recording()
    port, listening, _ = listen(factory)
    try:
        c = WSClient(port)  # never reads after the handshake
        pump(lambda: bool(protos) and protos[0].paused, "the producer to be paused")
        c.close()
    finally:
        listening.stopListening()


def test_huge_http_request_body_is_cut_off(server: Any, events: list[dict[str, Any]]) -> None:
    factory, port, _ = server
    c = WSClient(port, handshake=False)
    c.raw(
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {1 << 40}\r\n\r\n".encode()
    )
    sent = 0
    chunk = b"\0" * 65536
    while not c.closed and sent < 8 << 20:
        try:
            c.raw(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
        reactor.iterate(0)
        c.poll()
    c.wait_closed()
    assert sent < 8 << 20  # the server closed; it did not wait for the whole thing
    # What the server held when it gave up: the limit plus at most one read.
    (held,) = [e["n"] for e in events if "closing" in e.get("log_format", "") and "n" in e]
    limit = max(MAX_MESSAGE, factory.max_cut_text + 65536)
    assert limit < held <= limit + 65536, held  # Twisted reads at most 64 KiB at a time


def test_keep_alive_connection_may_fetch_more_than_the_limit_in_requests(
    tmp_path: Path,
) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "rfb.js").write_text("x")
    factory = RFBFactory(FakeDisplay(), password=None, clock=reactor, max_cut_text=0)
    port, listening, _ = listen(factory, novnc=str(tmp_path))
    try:
        c = WSClient(port, handshake=False)
        padding = "a" * 4000  # ~4 KB a request, 400 requests: 1.6 MB on one connection
        request = f"GET /novnc/core/rfb.js HTTP/1.1\r\nHost: x\r\nX-Pad: {padding}\r\n\r\n".encode()
        answers = [0]

        def poll() -> None:
            try:
                data = c.sock.recv(1 << 20)
            except BlockingIOError:
                return
            answers[0] += data.count(b"HTTP/1.1 200 OK")
            if not data:
                c.closed = True

        for n in range(1, 401):
            c.raw(request)
            pump(lambda: answers[0] >= n or c.closed, f"answer {n}", poll)  # noqa: B023
            assert not c.closed, f"closed after {n} requests"
        c.close()
    finally:
        listening.stopListening()


def test_listen_binds_the_spec_port_and_logs_its_limits(events: list[dict[str, Any]]) -> None:
    factory = RFBFactory(FakeDisplay(), password=None, clock=reactor)
    spec = VncSpec(kind="tcp", host="127.0.0.1", port=5900, websocket=_free_port())
    (listening,) = listenWebSocket(spec, factory, reactor)
    try:
        host: Any = listening.getHost()
        assert host.port == spec.websocket
        (line,) = [e for e in events if "WebSocket server listening" in e.get("log_format", "")]
        assert line["n"] == http_limits.default_max_connections()
        assert line["t"] == http_limits.REQUEST_TIMEOUT
    finally:
        listening.stopListening()


# -- malformed requests: 4xx, never a traceback -------------------------------------------


def test_path_faults() -> None:
    assert path_fault(b"/") is None
    assert path_fault(b"/novnc/core/rfb.js?x=%00") is None  # the query is not a path
    assert path_fault(b"/caf%C3%A9") is None
    assert path_fault(b"/a%00b") == (400, "control character (NUL included) in the path")
    assert path_fault(b"/a%0ab")[0] == 400  # type: ignore[index]
    assert path_fault(b"/a%7F")[0] == 400  # type: ignore[index]
    assert path_fault(b"/a%zz") == (400, "malformed percent-encoding in the path")
    assert path_fault(b"/a%4")[0] == 400  # type: ignore[index]
    assert path_fault(b"/a%ff") == (400, "path is not UTF-8")
    assert path_fault(b"/\xff")[0] == 400  # type: ignore[index]
    assert path_fault(b"/" + b"a" * 3000)[0] == 414  # type: ignore[index]


@pytest.mark.parametrize(
    ("target", "status"),
    [
        (b"/novnc/core/%00", 400),  # was a 500 and a traceback (os.stat: embedded null byte)
        (b"/novnc/core/rfb.js%00.html", 400),
        (b"/%00", 400),
        (b"/novnc/%ff", 400),  # was a UnicodeDecodeError traceback (and a 404)
        (b"/novnc/%zz", 400),
        (b"/novnc/%", 400),
        (b"/novnc/%0d%0aSet-Cookie:x", 400),
        (b"/novnc/" + b"a" * 3000, 414),
        (b"/" + b"a" * 20000, 414),  # longer than a request line may be: Twisted said nothing
        (b"/novnc/core/rfb.js", 200),
    ],
)
def test_malformed_paths_are_answered_4xx_without_a_traceback(
    tmp_path: Path, events: list[dict[str, Any]], target: bytes, status: int
) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "rfb.js").write_text("x")
    factory = RFBFactory(FakeDisplay(), password=None, clock=reactor)
    port, listening, _ = listen(factory, novnc=str(tmp_path))
    try:
        got, _, _ = http_get(port, target)
        assert got == status
        assert [e for e in events if e.get("log_failure") or e.get("isError")] == []
        if status != 200:  # one log line with the peer says why
            assert any("127.0.0.1:" in str(e.get("peer")) for e in events)
    finally:
        listening.stopListening()


def test_over_long_header_line_is_answered_431(server: Any) -> None:
    _, port, _ = server
    status, _, _ = http_get(port, "/", head=b"X-Pad: " + b"a" * 20000 + b"\r\n")
    assert status == 431


def test_malformed_upgrade_path_is_refused_before_the_upgrade(server: Any) -> None:
    factory, port, _ = server
    c = WSClient(port, path="/websockify%00")
    assert c.rejected == 400 and not c.accepted
    assert factory.clients == []
    c.close()


# -- the connection cap -------------------------------------------------------------------


def test_default_cap_is_a_quarter_of_the_descriptor_limit() -> None:
    assert http_limits.default_max_connections(1024) == 256
    assert http_limits.default_max_connections(40) == 16
    assert http_limits.default_max_connections(1 << 20) == 1024
    assert http_limits.default_max_connections(-1) == 1024  # RLIM_INFINITY


def test_refusal_log_is_rate_limited() -> None:
    clock = Clock()
    refusals = RefusalLog(clock, interval=10)
    assert refusals.note() == 0  # the first: logged, nothing was suppressed
    assert [refusals.note() for _ in range(5)] == [None] * 5
    clock.advance(9.9)
    assert refusals.note() is None
    clock.advance(0.1)
    assert refusals.note() == 6  # logged again, with the six kept quiet
    assert refusals.note() is None


def accepted(sock: socket.socket) -> bool | None:
    """True if the server closed ``sock``, False if it is open, None if unknown yet."""
    try:
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    return data == b""


def test_connections_past_the_cap_are_closed_at_once(events: list[dict[str, Any]]) -> None:
    factory = RFBFactory(FakeDisplay(), password=None, clock=reactor)
    port, listening, site = listen(factory, max_connections=3)
    socks: list[socket.socket] = []
    try:
        for _ in range(6):  # half-open requests: a request line, never the end of the head
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET / HTTP/1.1\r\n")
            socks.append(s)
        pump(lambda: sum(bool(accepted(s)) for s in socks) == 3, "three to be closed")
        assert [accepted(s) for s in socks] == [False] * 3 + [True] * 3
        assert len(site.protocols) == 3
        refused = [e for e in events if "refused: limit of" in e.get("log_format", "")]
        assert len(refused) == 1 and refused[0]["n"] == 3  # rate-limited: one line, not three
        socks[0].close()  # a slot frees up: the next one is served
        pump(lambda: len(site.protocols) == 2, "the server to see the close")
        status, _, _ = http_get(port, "/")
        assert status == 200
    finally:
        for s in socks:
            s.close()
        listening.stopListening()
        reactor.iterate(0)


def test_websocket_viewers_count_toward_the_cap() -> None:
    factory = RFBFactory(FakeDisplay(), password=None, clock=reactor)
    port, listening, _ = listen(factory, max_connections=1)
    try:
        viewer = WSClient(port)
        assert viewer.take(12) == b"RFB 003.008\n"
        second = socket.create_connection(("127.0.0.1", port))
        pump(lambda: bool(accepted(second)), "the second connection to be closed")
        viewer.close()
        second.close()
    finally:
        listening.stopListening()
        for c in list(factory.clients):
            c.transport.abortConnection()
        reactor.iterate(0)


# -- the request deadline (a test clock, an in-memory transport) --------------------------


def connect_memory(clock: Clock, **options: Any) -> tuple[Any, StringTransport]:
    """One HTTP connection to a site built on ``clock``, over a StringTransport."""
    factory = RFBFactory(FakeDisplay(), password=None, clock=clock)
    site = makeWebSocketSite(factory, clock=clock, names={"localhost"}, **options)
    proto = site.buildProtocol(IPv4Address("TCP", "192.0.2.7", 40000))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.7", 40000))
    proto.makeConnection(transport)
    return proto, transport


def test_a_trickled_request_head_is_aborted_at_the_deadline(
    events: list[dict[str, Any]],
) -> None:
    clock = Clock()
    proto, transport = connect_memory(clock)
    request = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 100
    for byte in request[:9]:  # a byte every second resets the idle timer, not this one
        proto.dataReceived(bytes([byte]))
        clock.advance(1)
    assert not transport.disconnecting
    proto.dataReceived(request[9:10])
    clock.advance(1)  # 10 s since the connection
    assert transport.disconnected and transport.disconnecting  # aborted
    (line,) = [e for e in events if "not complete after" in e.get("log_format", "")]
    assert line["peer"] == "192.0.2.7:40000" and line["t"] == 10


def test_a_silent_connection_is_closed_at_the_deadline() -> None:
    clock = Clock()
    _, transport = connect_memory(clock, request_timeout=4)
    clock.advance(3.9)
    assert not transport.disconnecting
    clock.advance(0.1)
    assert transport.disconnecting and not transport.disconnected  # closed, not aborted


def test_each_keep_alive_request_gets_its_own_deadline() -> None:
    clock = Clock()
    proto, transport = connect_memory(clock)
    for _ in range(3):  # 3 requests, 8 s apart: 24 s on one connection is fine
        clock.advance(8)
        proto.dataReceived(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert not transport.disconnecting
    assert transport.value().count(b"HTTP/1.1 200 OK") == 3
    clock.advance(10)  # but not 10 s without the next one
    assert transport.disconnecting


def test_a_slow_body_is_cut_off_at_the_deadline() -> None:
    clock = Clock()
    proto, transport = connect_memory(clock)
    proto.dataReceived(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n")
    for _ in range(9):
        proto.dataReceived(b"x")
        clock.advance(1)
    assert not transport.disconnecting
    clock.advance(1)
    assert transport.disconnected


def test_the_upgraded_connection_has_no_deadline() -> None:
    clock = Clock()
    proto, transport = connect_memory(clock)
    client = WSConnection(ConnectionType.CLIENT)
    proto.dataReceived(client.send(Request(host="localhost", target="/websockify")))
    assert b"101 Switching Protocols" in transport.value()
    clock.advance(25)  # past the request deadline (the RFB handshake's own is 30 s)
    assert not transport.disconnecting


# -- TCP_NODELAY and the close grace (a real port) ----------------------------------------


def test_accepted_connections_have_tcp_nodelay(server: Any) -> None:
    factory = RFBFactory(FakeDisplay(), password=None, clock=reactor)
    port, listening, site = listen(factory)
    try:
        c = WSClient(port)
        assert c.take(12) == b"RFB 003.008\n"
        (guard,) = site.protocols
        handle = guard.transport.getHandle()
        assert handle.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        c.close()
    finally:
        listening.stopListening()
        for client in list(factory.clients):
            client.transport.abortConnection()
        reactor.iterate(0)


def test_a_close_the_viewer_never_reads_is_aborted_after_the_grace(
    events: list[dict[str, Any]],
) -> None:
    factory = RFBFactory(FakeDisplay(), password=None, clock=reactor)
    port, listening, site = listen(factory)
    site.close_grace = 0.5
    site.max_unread = 1 << 30  # this test is about the close, not the unread output cap
    try:
        c = WSClient(port, rcvbuf=4096)  # reads nothing from now on
        c.take(12)
        (proto,) = factory.clients
        transport = proto.transport
        chunk = b"\0" * 65536
        for _ in range(160):  # 10 MiB: more than any socket buffer holds
            transport._wire.sendBytesMessage(chunk)
        reactor.iterate(0.01)
        start = time.monotonic()
        transport.loseConnection()  # the Close frame waits behind 10 MiB nobody reads
        pump(lambda: not factory.clients, "the session to end despite the unread close")
        assert time.monotonic() - start < DEADLINE
        assert any("close not finished" in e.get("log_format", "") for e in events)
        c.close()
    finally:
        listening.stopListening()
        reactor.iterate(0)


def test_a_ping_flood_from_a_viewer_that_does_not_read_is_aborted(
    events: list[dict[str, Any]],
) -> None:
    factory = RFBFactory(FakeDisplay(), password=None, clock=reactor)
    port, listening, site = listen(factory)
    site.max_unread = 256 << 10
    try:
        c = WSClient(port, rcvbuf=4096)  # reads nothing after the handshake
        pings = c.ws.send(Ping(payload=b"p" * 125)) * 400  # ~52 KiB, as many pongs back
        empty = c.ws.send(BytesMessage(data=b""))  # a message now and then: not one big one
        sent = 0
        while not any("does not read" in e.get("log_format", "") for e in events):
            assert sent < 64 << 20, "64 MiB of pings and the server still answers"
            try:
                c.raw(pings + empty)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(pings)
            reactor.iterate(0)
        pump(lambda: not factory.clients, "the session to end")
        (line,) = [e for e in events if "does not read" in e.get("log_format", "")]
        assert line["n"] > 256 << 10
        c.close()
    finally:
        listening.stopListening()
        reactor.iterate(0)
