"""Talking WebSocket and HTTP to a site on the global reactor from the same thread: a
WebSocket client and a plain GET over non-blocking sockets, each waiting by iterating the
reactor until a condition holds or a deadline passes (``pump``), and ``listen``, which puts
a WebSocket site on an ephemeral port of 127.0.0.1."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor as globalReactor
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

from vncmux.rfb.http_limits import GuardedFactory
from vncmux.rfb.websocket import makeWebSocketSite

#: The global reactor, typed loosely: the tests iterate it and listen on it.
reactor: Any = globalReactor
#: Seconds ``pump`` waits for a condition before failing.
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
        rcvbuf: int | None = None,
    ) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:  # before connecting: it sets the window offered
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setblocking(False)
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
        """Send bytes as they are (a handshake, or frames made by hand), all of them."""
        self.sock.setblocking(True)
        try:
            self.sock.sendall(data)
        finally:
            self.sock.setblocking(False)

    def poll(self) -> None:
        """Read what has arrived, without blocking, and record its events."""
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
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
        """One binary message, or a fragment of one when ``finished`` is false."""
        self.raw(self.ws.send(BytesMessage(data=data, message_finished=finished)))

    def take(self, n: int) -> bytes:
        """The next ``n`` bytes of the binary messages' payload, pumping until they came."""
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


def http_get(port: int, path: str | bytes, head: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """A plain HTTP/1.0 GET with a blocking socket while the reactor is pumped."""
    sock = socket.create_connection(("127.0.0.1", port))
    target = path.encode() if isinstance(path, str) else path
    sock.sendall(b"GET " + target + b" HTTP/1.0\r\nHost: x\r\n" + head + b"\r\n")
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

    pump(lambda: done[0], f"the answer to GET {path[:100]!r}", poll)
    sock.close()
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    return status, headers, body


def listen(factory: Any, **options: Any) -> tuple[int, Any, GuardedFactory]:
    """``makeWebSocketSite(factory, **options)`` on an ephemeral port of 127.0.0.1:
    (port number, listening port, the site's factory)."""
    options.setdefault("names", {"localhost"})
    site = makeWebSocketSite(factory, clock=reactor, **options)
    listening = reactor.listenTCP(0, site, interface="127.0.0.1")
    return listening.getHost().port, listening, site
