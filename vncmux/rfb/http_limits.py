"""The limits of the HTTP/WebSocket port: what one client, or many, can make vncmux hold.

The WebSocket port speaks HTTP to anyone who connects, before any password is asked, so
every resource a connection takes must be bounded by something other than the client's
good will:

* **descriptors** — :class:`GuardedFactory` counts connections from the moment they are
  accepted (a half-open request counts as much as a viewer) and closes new ones at once
  past ``max_connections``, which defaults to a quarter of the process's descriptor limit
  (:func:`default_max_connections`), so a flood on this port leaves descriptors for the
  VNC port, the byte sockets and the device;
* **time** — :class:`LimitedChannel` gives each request a total deadline (request line,
  headers and any body within ``request_timeout`` seconds of the connection or of the
  previous response, however slowly the bytes trickle), where Twisted's idle timeout
  restarted with every byte;
* **memory** — :class:`ConnectionGuard` counts bytes received since the last delivered
  WebSocket message (before the upgrade: since the current request began) and aborts past
  ``max_message``: Twisted reassembles a message in memory, and a frame header may declare
  any length (LibVNCServer CVE-2017-18922 was this bug);
* **unread output** — once upgraded, what is written while the viewer is not reading is
  counted, pongs included (Twisted answers every ping, and a client that pings without
  reading would otherwise grow our send buffer until the stall timeout), and past
  ``MAX_UNREAD`` the connection is aborted;
* **closing** — once upgraded, a close must finish: a viewer that stopped reading never
  takes the Close frame queued behind what it did not read, so the connection is aborted
  ``CLOSE_GRACE`` seconds after the close began.

Too-long request lines and header blocks get a 414/431 answer instead of Twisted's
silent close.  Everything takes the reactor (or a test clock) as a parameter.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.server import Request, Site

from vncmux.rfb.server import peer_label

log = Logger()

#: Bytes a client may send without completing a WebSocket message.  RFB client messages
#: are tiny except ClientCutText, so this only has to exceed the cut-text cap.
MAX_MESSAGE = 1 << 20
#: Seconds a request may take to arrive whole (line, headers, body), counted from the
#: connection or from the end of the previous response on a keep-alive connection.
REQUEST_TIMEOUT = 10.0
#: Seconds an upgraded connection may take to close before it is aborted.
CLOSE_GRACE = 5.0
#: Bytes an upgraded connection may have written to it while its viewer is not reading
#: (the transport's buffer is full): more than the RFB session's own output cap, so this
#: only catches what the session does not write itself, the pongs to a ping flood.
MAX_UNREAD = 8 << 20
#: Bounds of the default connection cap, whatever the descriptor limit says.
MIN_CONNECTIONS = 16
MAX_CONNECTIONS = 1024
#: Refused connections are logged at most once per this many seconds (plus a count).
REFUSAL_LOG_INTERVAL = 10.0


def default_max_connections(nofile: int | None = None) -> int:
    """The default cap on connections to the HTTP/WebSocket port: a quarter of the soft
    ``RLIMIT_NOFILE`` (256 under the common 1024), between 16 and 1024.

    A quarter leaves three quarters of the descriptors to the other listeners (at most
    ``connections=`` viewers plus 16 handshakes on the VNC port, ``--max-clients`` per byte
    endpoint), the device, log files and Python itself."""
    if nofile is None:
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if nofile == resource.RLIM_INFINITY or nofile <= 0:
        return MAX_CONNECTIONS
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, nofile // 4))


class RefusalLog:
    """Rate-limits the "connection refused" line: the first refusal is logged at once,
    later ones at most once per ``interval`` seconds with the count of those not logged
    (a flood of thousands must not become thousands of log lines)."""

    def __init__(self, clock: Any, interval: float = REFUSAL_LOG_INTERVAL) -> None:
        self._clock = clock
        self.interval = interval
        self._last: float | None = None
        self.suppressed = 0

    def note(self) -> int | None:
        """One more refusal: the number of unlogged refusals to report with it if it should
        be logged now, None if it should not."""
        now = self._clock.seconds()
        if self._last is not None and now - self._last < self.interval:
            self.suppressed += 1
            return None
        self._last = now
        count, self.suppressed = self.suppressed, 0
        return count


class _ProducerProxy:
    """Registered with the TCP transport in place of a streaming producer, so the guard
    knows when the transport's buffer is full (it cannot be the producer itself: to the
    channel above, the guard's ``pauseProducing`` means "stop reading")."""

    def __init__(self, guard: ConnectionGuard, producer: Any) -> None:
        self.guard = guard
        self.producer = producer

    def pauseProducing(self) -> None:
        self.guard.full = True
        self.producer.pauseProducing()

    def resumeProducing(self) -> None:
        self.guard.full = False
        self.guard.unread = 0
        self.producer.resumeProducing()

    def stopProducing(self) -> None:
        self.producer.stopProducing()


class ConnectionGuard(ProtocolWrapper):
    """Sits between the TCP transport and the HTTP channel (and, after the upgrade, the
    WebSocket wire protocol): the byte count, TCP_NODELAY, the unread output, and the
    close grace."""

    factory: GuardedFactory
    transport: Any  # the TCP transport (ITCPTransport, IConsumer, abortConnection)
    pending = 0
    upgraded = False
    aborted = False
    full = False  # the transport's buffer is full: the peer is not reading
    unread = 0  # bytes written since it filled
    #: Called with the byte count instead of the plain abort once upgraded (the WebSocket
    #: side logs it as a viewer's message).
    overflow: Callable[[int], None] | None = None
    _grace: IDelayedCall | None = None

    def makeConnection(self, transport: Any) -> None:
        # RFB messages are small and answered at once: Nagle's algorithm would hold a key
        # press or a small update back for a delayed ACK.
        if hasattr(transport, "setTcpNoDelay"):
            transport.setTcpNoDelay(True)
        super().makeConnection(transport)

    def dataReceived(self, data: bytes) -> None:
        self.pending += len(data)
        if self.pending > self.factory.max_message:
            if self.overflow is not None:
                self.overflow(self.pending)
            else:
                log.warn(
                    "HTTP client {peer}: {n} bytes in one request (limit {limit}); closing",
                    peer=peer_label(self.getPeer()),
                    n=self.pending,
                    limit=self.factory.max_message,
                )
                self.abortConnection()
            return
        super().dataReceived(data)

    def delivered(self) -> None:
        """A message (or a new HTTP request) has begun: count from zero again."""
        self.pending = 0

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        if streaming:
            producer = _ProducerProxy(self, producer)
        self.transport.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self.full = False
        self.transport.unregisterProducer()

    def write(self, data: bytes) -> None:
        if self.full and self.upgraded:
            self.unread += len(data)
            if self.unread > self.factory.max_unread:
                if not self.aborted:
                    log.warn(
                        "WebSocket viewer {peer}: {n} bytes queued while it does not read"
                        " (limit {limit}); aborting",
                        peer=peer_label(self.getPeer()),
                        n=self.unread,
                        limit=self.factory.max_unread,
                    )
                self.aborted = True
                self.abortConnection()
                return
        super().write(data)

    def writeSequence(self, seq: Any) -> None:
        self.write(b"".join(seq))

    def loseConnection(self) -> None:
        super().loseConnection()
        if self.upgraded and self._grace is None and self.factory.close_grace is not None:
            self._grace = self.factory.clock.callLater(self.factory.close_grace, self._stuck)

    def _stuck(self) -> None:
        self._grace = None
        log.info(
            "WebSocket viewer {peer}: close not finished in {t:g} s; aborting",
            peer=peer_label(self.getPeer()),
            t=self.factory.close_grace,
        )
        self.abortConnection()

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        if self._grace is not None and self._grace.active():
            self._grace.cancel()
        self._grace = None
        self.overflow = None
        super().connectionLost(reason)


class GuardedFactory(WrappingFactory):  # type: ignore[type-arg]
    """The factory to listen with: refuses connections past the cap, wraps the rest in a
    :class:`ConnectionGuard` around the site's channel."""

    protocol = ConnectionGuard  # type: ignore[assignment]
    noisy = False

    def __init__(
        self,
        site: Site,
        *,
        clock: Any,
        max_message: int = MAX_MESSAGE,
        max_connections: int | None = None,
        close_grace: float | None = CLOSE_GRACE,
        max_unread: int = MAX_UNREAD,
    ) -> None:
        super().__init__(site)
        self.clock = clock
        self.max_message = max_message
        self.max_connections = (
            max_connections if max_connections is not None else default_max_connections()
        )
        self.close_grace = close_grace
        self.max_unread = max_unread
        self._refusals = RefusalLog(clock)

    def buildProtocol(self, addr: Any) -> Any:
        if len(self.protocols) >= self.max_connections:
            unlogged = self._refusals.note()
            if unlogged is not None:
                log.warn(
                    "HTTP/WebSocket connection from {peer} refused: limit of {n} connections"
                    " reached{more}",
                    peer=peer_label(addr),
                    n=self.max_connections,
                    more=f" ({unlogged} more refused since the last report)" if unlogged else "",
                )
            return None  # the port closes the socket at once
        return super().buildProtocol(addr)


class CountingRequest(Request):
    """An HTTP request that restarts its connection's byte count: a limit per request,
    not per keep-alive connection that loads all of noVNC's files."""

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(channel, *args, **kwargs)
        guard = getattr(channel, "transport", None)
        if isinstance(guard, ConnectionGuard):
            guard.delivered()


class LimitedChannel(HTTPChannel):
    """Twisted's HTTP/1.1 channel with a total deadline per request and 414/431 answers
    for over-long lines (Twisted closes without a word)."""

    transport: Any  # our ConnectionGuard: ITransport + abortConnection
    request_timeout: float = REQUEST_TIMEOUT
    _deadline: IDelayedCall | None = None
    _lines = 0  # lines of the current request head so far
    _bytes = 0  # bytes of the current request so far

    def connectionMade(self) -> None:
        super().connectionMade()
        self._awaitRequest()

    def _awaitRequest(self) -> None:
        """The next request must arrive whole within ``request_timeout`` from now."""
        self._cancelDeadline()
        self._lines = self._bytes = 0
        self._deadline = self.callLater(self.request_timeout, self._late)

    def _cancelDeadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _late(self) -> None:
        self._deadline = None
        peer = peer_label(self.transport.getPeer())
        if not self._bytes:  # an idle keep-alive connection, or a silent client
            log.info(
                "HTTP client {peer}: no request in {t:g} s; closing",
                peer=peer,
                t=self.request_timeout,
            )
            self.transport.loseConnection()
            return
        log.warn(
            "HTTP client {peer}: request not complete after {t:g} s ({n} bytes); closing",
            peer=peer,
            t=self.request_timeout,
            n=self._bytes,
        )
        self.transport.abortConnection()  # it may not be reading either

    def dataReceived(self, data: bytes) -> None:
        self._bytes += len(data)
        super().dataReceived(data)

    def lineReceived(self, line: bytes) -> None:
        self._lines += 1
        super().lineReceived(line)

    def allContentReceived(self) -> None:
        self._cancelDeadline()
        super().allContentReceived()

    def requestDone(self, request: Any) -> None:
        # Armed before Twisted parses the next pipelined request (inside requestDone),
        # so that request's own completion cancels it.
        if self.persistent:
            self._awaitRequest()
        super().requestDone(request)

    def lineLengthExceeded(self, line: bytes) -> None:
        status = b"414 URI Too Long" if self._lines == 0 else b"431 Request Header Fields Too Large"
        log.warn(
            "HTTP client {peer}: a request line over {n} bytes; answered {status}",
            peer=peer_label(self.transport.getPeer()),
            n=self.MAX_LENGTH,
            status=status.decode(),
        )
        self._cancelDeadline()
        self.transport.write(b"HTTP/1.1 " + status + b"\r\nConnection: close\r\n\r\n")
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self._cancelDeadline()
        super().connectionLost(reason)


class LimitedSite(Site):
    """A ``Site`` whose channels are :class:`LimitedChannel` with this site's deadline."""

    protocol = LimitedChannel  # type: ignore[assignment]

    def __init__(self, resource: Any, *, request_timeout: float = REQUEST_TIMEOUT, **kw: Any):
        super().__init__(resource, requestFactory=CountingRequest, **kw)
        self.request_timeout = request_timeout

    def buildProtocol(self, addr: Any) -> Any:
        channel = super().buildProtocol(addr)
        if channel is not None:
            channel.request_timeout = self.request_timeout
        return channel
