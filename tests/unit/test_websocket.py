"""RFB over WebSocket: a real listening port on loopback, a wsproto client in the test.

The server runs on the global reactor, which the test iterates while it polls a
non-blocking client socket, so everything happens in one thread and every wait is on a
condition with a deadline.  The RFB side is the real RFBFactory with the fake display of
the RFB server tests, so what arrives is what a TCP viewer would get.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import reactor as globalReactor
from twisted.internet.protocol import Factory, Protocol
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from tests.unit.test_rfb_server import FakeDisplay, server_init
from vncmux.config import ConfigError, VncSpec
from vncmux.rfb import novnc_page
from vncmux.rfb.server import RFBFactory
from vncmux.rfb.websocket import MAX_MESSAGE, listenWebSocket

reactor: Any = globalReactor
DEADLINE = 5.0


def pump(condition: Callable[[], bool], what: str, poll: Callable[[], None] = lambda: None) -> None:
    """Run the reactor (and ``poll`` the client) until ``condition()`` or fail at the deadline."""
    end = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        reactor.iterate(0.005)
        poll()


class WSClient:
    """A WebSocket client over a non-blocking socket: wsproto does the framing."""

    def __init__(
        self,
        port: int,
        path: str = "/websockify",
        headers: list[tuple[bytes, bytes]] | None = None,
        handshake: bool = True,
        tls: bool = False,
    ) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setblocking(False)
        if tls:
            self.sock = _tls_handshake(self.sock)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.received = bytearray()
        self.messages: list[bytes] = []
        self.texts: list[str] = []
        self.accepted = False
        self.rejected: int | None = None
        self.closed = False
        self.close_code: int | None = None
        if handshake:
            self.raw(
                self.ws.send(
                    Request(
                        host=f"127.0.0.1:{port}",
                        target=path,
                        extra_headers=headers or [],
                    )
                )
            )
            pump(
                lambda: self.accepted or self.rejected is not None or self.closed,
                "handshake",
                self.poll,
            )

    def raw(self, data: bytes) -> None:
        if isinstance(self.sock, ssl.SSLSocket):  # small writes in tests: the buffer takes them
            self.sock.sendall(data)
            return
        self.sock.setblocking(True)
        try:
            self.sock.sendall(data)
        finally:
            self.sock.setblocking(False)

    def poll(self) -> None:
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError):
                return
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = True
                self.ws.receive_data(None)
            else:
                self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, AcceptConnection):
                    self.accepted = True
                elif isinstance(event, RejectConnection):
                    self.rejected = event.status_code
                elif isinstance(event, RejectData):
                    pass
                elif isinstance(event, BytesMessage):
                    self.received += event.data
                    self.messages.append(bytes(event.data))
                elif isinstance(event, TextMessage):
                    self.texts.append(event.data)
                elif isinstance(event, CloseConnection) and self.close_code is None:
                    self.close_code = event.code  # the first: EOF adds a 1006 after it

    def send(self, data: bytes, finished: bool = True) -> None:
        self.raw(self.ws.send(BytesMessage(data=data, message_finished=finished)))

    def take(self, n: int) -> bytes:
        pump(
            lambda: len(self.received) >= n,
            f"{n} bytes (have {bytes(self.received)!r})",
            self.poll,
        )
        data = bytes(self.received[:n])
        del self.received[:n]
        return data

    def wait_closed(self) -> None:
        pump(lambda: self.closed, "the server to close the connection", self.poll)

    def close(self) -> None:
        self.sock.close()


def _tls_handshake(sock: socket.socket) -> ssl.SSLSocket:
    """Client side of a TLS handshake with a self-signed server, pumping the reactor."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    wrapped = context.wrap_socket(sock, do_handshake_on_connect=False)
    done = [False]

    def step() -> None:
        try:
            wrapped.do_handshake()
            done[0] = True
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass

    pump(lambda: done[0], "the TLS handshake", step)
    return wrapped


def http_get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """A plain HTTP/1.0 GET with a blocking socket while the reactor is pumped."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    sock.setblocking(False)
    chunks: list[bytes] = []
    done = [False]

    def poll() -> None:
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            if not data:
                done[0] = True
                return
            chunks.append(data)

    pump(lambda: done[0], f"the answer to GET {path}", poll)
    sock.close()
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    return status, headers, body


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
    """An RFB factory with the fake display behind a WebSocket port on 127.0.0.1."""
    display = FakeDisplay()
    factory = RFBFactory(display, password=None, clock=reactor, connections=2)
    spec = VncSpec(kind="tcp", host="127.0.0.1", port=5900, websocket=_free_port())
    ports = listenWebSocket(spec, factory, reactor, novnc="")
    try:
        yield factory, spec.websocket, ports
    finally:
        for p in ports:
            p.stopListening()
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
    expected = server_init(factory.display)
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
    expected = server_init(factory.display)
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
    assert novnc_page.find_novnc({"VNCMUX_NOVNC": str(tmp_path / "nope")}) in (
        None,
        novnc_page.DEBIAN_NOVNC,
    )
    factory = RFBFactory(FakeDisplay(), password=None, clock=reactor)
    spec = VncSpec(kind="tcp", host="127.0.0.1", port=5900, websocket=_free_port())
    ports = listenWebSocket(spec, factory, reactor, novnc=str(tmp_path))
    try:
        assert spec.websocket is not None
        status, _, body = http_get(spec.websocket, "/")
        assert status == 200
        assert b"./novnc/core/rfb.js" in body and b"apt install" not in body
        status, _, body = http_get(spec.websocket, "/novnc/core/rfb.js")
        assert status == 200 and body == b"export default class RFB {}\n"
        status, _, body = http_get(spec.websocket, "/novnc/core/")  # no listings
        assert status == 404
        status, _, _ = http_get(spec.websocket, "/novnc/../../etc/passwd")
        assert status == 404
    finally:
        for p in ports:
            p.stopListening()


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
    spec = VncSpec(kind="tcp", host="127.0.0.1", port=5900, websocket=_free_port())
    ports = listenWebSocket(spec, factory, reactor, novnc="")
    try:
        assert spec.websocket is not None
        c = WSClient(spec.websocket)  # never reads after the handshake
        pump(lambda: bool(protos) and protos[0].paused, "the producer to be paused")
        c.close()
    finally:
        for p in ports:
            p.stopListening()


def test_tls_seam_serves_wss_with_https_as_own_origin() -> None:
    from twisted.internet.ssl import KeyPair

    key = KeyPair.generate(size=2048)
    cert = key.selfSignedCert(1, commonName="localhost")
    options = cert.options()  # the certificate options of the TLS issue go here
    factory = RFBFactory(FakeDisplay(), password=None, clock=reactor)
    spec = VncSpec(kind="tcp", host="127.0.0.1", port=5900, websocket=_free_port())
    ports = listenWebSocket(spec, factory, reactor, tls=options, novnc="")
    try:
        port = spec.websocket
        assert port is not None
        c = WSClient(port, tls=True, headers=[(b"origin", f"https://127.0.0.1:{port}".encode())])
        assert c.accepted
        assert c.take(12) == b"RFB 003.008\n"
        c.sock.close()
        plain = WSClient(port, tls=True, headers=[(b"origin", f"http://127.0.0.1:{port}".encode())])
        assert plain.rejected == 403  # an http: page is not this https: server
        plain.sock.close()
    finally:
        for p in ports:
            p.stopListening()
        for client in list(factory.clients):
            client.transport.abortConnection()
        reactor.iterate(0)


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
    spec = VncSpec(kind="tcp", host="127.0.0.1", port=5900, websocket=_free_port())
    ports = listenWebSocket(spec, factory, reactor, novnc=str(tmp_path))
    try:
        assert spec.websocket is not None
        c = WSClient(spec.websocket, handshake=False)
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
        for p in ports:
            p.stopListening()
