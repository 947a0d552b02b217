"""RFB over WebSocket (QEMU's ``--vnc ...,websocket=PORT``), so a browser's noVNC connects
to vncmux directly, without websockify in between.

One HTTP port does three things:

* a WebSocket upgrade on *any* path (noVNC asks for ``/websockify``, other clients ``/``)
  becomes one RFB session from the very same ``RFBFactory`` the TCP port uses, so the
  connection limit, the password, the blacklist and the share policy apply unchanged;
* ``GET /`` answers a small page of ours (:mod:`vncmux.rfb.novnc_page`) that runs noVNC;
* ``/novnc/...`` serves the installed noVNC directory read-only, if there is one.

The framing is Twisted's (``twisted.web.websocket``, on wsproto).  What this module adds:

* ``_WebSocketTransport`` — the adapter that makes a WebSocket look like the byte
  transport ``RFBServerProtocol`` expects: binary messages in are ``dataReceived``
  (message boundaries mean nothing to RFB), every ``write`` is one binary message,
  ``loseConnection`` sends a Close frame, producer registration reaches the TCP
  transport so flow control and the stalled-viewer timeout work as on TCP.
* ``_GuardedChannel`` — a byte counter under the HTTP channel.  Twisted reassembles a
  WebSocket message in memory before delivering it; a client that declares a huge frame
  (or never finishes a fragmented message) would grow that buffer without bound.  The
  guard aborts the connection once more than ``max_message`` bytes have arrived without
  a message being delivered, so memory per connection stays bounded whatever length a
  frame header claims (LibVNCServer CVE-2017-18922 was this bug).
* an Origin/Host check: a web page on another site must not be able to open a
  WebSocket to a console on localhost (cross-site WebSocket hijacking, DNS rebinding).

TLS (``wss://``) seam: :func:`listenWebSocket` takes ``tls=`` (a Twisted
``IOpenSSLServerConnectionCreator``, e.g. ``CertificateOptions``); when it is given the
port listens with ``listenSSL`` and same-origin means ``https://``.  The certificate
options of the TLS issue only need to be passed through.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from twisted.web.pages import errorPage, notFound
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site
from twisted.web.static import File
from twisted.web.websocket import WebSocketResource
from wsproto.utilities import LocalProtocolError

from vncmux.config import ConfigError, VncSpec
from vncmux.rfb.listen import _addresses, _describe, _reason
from vncmux.rfb.novnc_page import find_novnc, page
from vncmux.rfb.server import peer_label

log = Logger()

#: Bytes a client may send without completing a WebSocket message.  RFB client messages
#: are tiny except ClientCutText, so this only has to exceed the cut-text cap.
MAX_MESSAGE = 1 << 20
#: Idle limit for plain HTTP connections (before any upgrade); upgraded ones have none.
HTTP_TIMEOUT = 60
#: WebSocket close codes (RFC 6455 §7.4.1).
CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_TOO_BIG = 1009


class _GuardedChannel(ProtocolWrapper):
    """Sits between the TCP transport and the HTTP channel; counts the bytes received
    since the last delivered WebSocket message (before the upgrade: since the current
    HTTP request began) and aborts the connection past the limit."""

    factory: _GuardedFactory
    pending = 0
    ws: _WebSocketTransport | None = None

    def dataReceived(self, data: bytes) -> None:
        self.pending += len(data)
        if self.pending > self.factory.max_message:
            if self.ws is not None:
                self.ws.tooBig(self.pending)
            else:
                log.warn(
                    "HTTP client {peer}: {n} bytes in one request (limit {limit}); closing",
                    peer=peer_label(self.getPeer()),
                    n=self.pending,
                    limit=self.factory.max_message,
                )
                self.abortConnection()
            return
        ProtocolWrapper.dataReceived(self, data)

    def delivered(self) -> None:
        """A message (or a new HTTP request) has begun: count from zero again."""
        self.pending = 0


class _Request(Request):
    """An HTTP request that restarts its connection's byte count: a limit per request,
    not per keep-alive connection that loads all of noVNC's files."""

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(channel, *args, **kwargs)
        guard = getattr(channel, "transport", None)
        if isinstance(guard, _GuardedChannel):
            guard.delivered()


class _GuardedFactory(WrappingFactory):  # type: ignore[type-arg]
    protocol = _GuardedChannel  # type: ignore[assignment]
    noisy = False

    def __init__(self, site: Site, max_message: int) -> None:
        super().__init__(site)
        self.max_message = max_message


class _WebSocketTransport:
    """One WebSocket connection carrying one RFB session.

    To Twisted's WebSocket layer this is the ``WebSocketProtocol``; to the RFB protocol
    it is the transport (``write``, ``loseConnection``, ``abortConnection``,
    ``getPeer``/``getHost``, ``registerProducer``/``unregisterProducer``).  The RFB
    protocol starts only once the 101 response has gone out (``negotiationFinished``)."""

    def __init__(self, rfb: Protocol, request: Request) -> None:
        self.rfb = rfb
        self._request = request
        self._wire: Any = None  # twisted's WebSocketTransport (the wire protocol)
        self._tcp: Any = None  # the transport below it (our _GuardedChannel)
        self.peer = peer_label(request.getClientAddress())
        self.connected = False
        self.disconnecting = False

    # -- WebSocketProtocol -------------------------------------------------------------

    def negotiationStarted(self, transport: Any) -> None:
        self._wire = transport
        self._tcp = transport.transport
        if isinstance(self._tcp, _GuardedChannel):
            self._tcp.ws = self

    def negotiationFinished(self) -> None:
        tcp = self._tcp
        channel = getattr(tcp, "wrappedProtocol", None)
        # The HTTP channel's idle timer is reset only by its own dataReceived, which the
        # upgrade bypassed: left running it would cut a quiet viewer off.
        if channel is not None and hasattr(channel, "setTimeout"):
            channel.setTimeout(None)
        # The HTTP channel registered itself as the TCP transport's producer; the RFB
        # session is the producer now (a transport holds only one).
        if getattr(tcp, "producer", None) is not None:
            tcp.unregisterProducer()
        log.info(
            "WebSocket connection from {peer} (path {path})",
            peer=self.peer,
            path=self._request.path.decode("latin-1"),
        )
        self.connected = True
        self.rfb.makeConnection(self)  # type: ignore[arg-type]

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        if isinstance(self._tcp, _GuardedChannel):
            self._tcp.delivered()
        if self.connected:
            self.rfb.dataReceived(bytes(data))

    def textMessageReceived(self, message: str) -> None:
        # websockify's old base64 text subprotocol; noVNC has sent binary since 1.0.
        log.info(
            "WebSocket viewer {peer} sent a text message; only binary RFB is spoken",
            peer=self.peer,
        )
        self._close(CLOSE_UNSUPPORTED_DATA)

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        was = self.connected
        self.connected = False
        self.disconnecting = True
        if self._tcp is not None and getattr(self._tcp, "ws", None) is self:
            self._tcp.ws = None
        if was:
            self.rfb.connectionLost(reason)

    def tooBig(self, pending: int) -> None:
        """The guard's verdict: a message larger than the limit is on its way."""
        log.warn(
            "WebSocket viewer {peer}: {n} bytes without a complete message; closing",
            peer=self.peer,
            n=pending,
        )
        self.abortConnection()

    # -- the transport the RFB protocol sees ---------------------------------------------

    def write(self, data: bytes) -> None:
        if not data or self.disconnecting or self._wire is None:
            return
        try:
            self._wire.sendBytesMessage(bytes(data))
        except LocalProtocolError:
            # The peer's Close frame has been answered; the TCP close follows shortly.
            self.disconnecting = True

    def writeSequence(self, seq: Iterable[bytes]) -> None:
        self.write(b"".join(seq))

    def loseConnection(self) -> None:
        self._close(CLOSE_NORMAL)

    def _close(self, code: int) -> None:
        if self.disconnecting or self._wire is None:
            return
        self.disconnecting = True
        try:
            self._wire.loseConnection(code)
        except LocalProtocolError:
            self._tcp.loseConnection()

    def abortConnection(self) -> None:
        self.disconnecting = True
        if self._tcp is not None:
            self._tcp.abortConnection()

    def getPeer(self) -> Any:
        return self._tcp.getPeer()

    def getHost(self) -> Any:
        return self._tcp.getHost()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._tcp.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        if getattr(self._tcp, "producer", None) is not None:
            self._tcp.unregisterProducer()


class _RFBWebSocketFactory:
    """Twisted's ``WebSocketServerFactory``: one RFB protocol per upgraded request."""

    def __init__(self, rfb_factory: Any) -> None:
        self.rfb_factory = rfb_factory

    def buildProtocol(self, request: Request) -> _WebSocketTransport:
        rfb = self.rfb_factory.buildProtocol(request.getClientAddress())
        return _WebSocketTransport(rfb, request)


class _AnyPathWebSocket(WebSocketResource):
    isLeaf = True  # the upgrade is accepted whatever path follows


class _Page(Resource):
    isLeaf = True

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-frame-options", b"DENY")
        return self.body


class _ReadOnlyFiles(File):
    """noVNC's files; no directory listings, nothing but GET/HEAD."""

    def directoryListing(self) -> IResource:  # type: ignore[override]
        return notFound("No such file", "")


def _host_name(value: str) -> str:
    """'Host' header or origin authority without the port, brackets removed, lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class _Root(Resource):
    """Dispatch: upgrade (any path) → RFB; ``/`` → the page; ``/novnc/`` → noVNC."""

    def __init__(
        self,
        ws: Resource,
        body: bytes,
        novnc: str | None,
        *,
        scheme: str,
        names: set[str],
        origins: tuple[str, ...] | None,
    ) -> None:
        super().__init__()
        self._ws = ws
        self._page = _Page(body)
        self._static = _ReadOnlyFiles(novnc) if novnc else None
        self._scheme = scheme
        self._names = names
        self._origins = origins

    def getChildWithDefault(self, path: bytes, request: Any) -> IResource:  # type: ignore[override]
        upgrade = (request.getHeader(b"upgrade") or b"").lower()
        if upgrade == b"websocket":
            why = self._refusal(request)
            if why:
                log.warn(
                    "WebSocket connection from {peer} refused: {why}",
                    peer=peer_label(request.getClientAddress()),
                    why=why,
                )
                return errorPage(403, "Forbidden", why)
            return self._ws
        if path == b"" and not request.postpath:
            return self._page
        if path == b"novnc" and self._static is not None:
            return self._static
        return notFound()

    def _refusal(self, request: Any) -> str:
        """Why this upgrade must be refused ('' = accept).

        Browsers send Origin; other clients do not, and are not at risk.  A browser page
        may connect only from this server's own origin (our page), unless the user listed
        other origins, and only under a Host name that is an address or a name of this
        machine (a rebound DNS name pointing at 127.0.0.1 is someone else's site)."""
        host = (request.getHeader(b"host") or b"").decode("latin-1")
        origin = (request.getHeader(b"origin") or b"").decode("latin-1").rstrip("/")
        if not origin:
            return ""
        if self._origins is not None and ("*" in self._origins or origin in self._origins):
            return ""
        if origin.lower() != f"{self._scheme}://{host}".lower():
            return f"origin {origin} is not this server ({self._scheme}://{host})"
        name = _host_name(host)
        try:
            ipaddress.ip_address(name)
            return ""
        except ValueError:
            pass
        if name in self._names:
            return ""
        return f"host name {name!r} is not a name of this machine"


def _local_names(spec_host: str) -> set[str]:
    names = {"localhost", "localhost.localdomain", socket.gethostname().lower()}
    try:
        names.add(socket.getfqdn().lower())
    except OSError:
        pass
    if spec_host:
        names.add(spec_host.strip("[]").lower())
    return names


def makeWebSocketSite(
    factory: Any,
    *,
    novnc: str | None = None,
    title: str = "vncmux",
    tls: bool = False,
    names: set[str] | None = None,
    origins: Iterable[str] | None = None,
    max_message: int = MAX_MESSAGE,
) -> _GuardedFactory:
    """The Twisted factory to listen with: WebSocket RFB on any path, the page, noVNC.

    ``origins`` lists extra browser origins allowed to connect (``"*"`` = any);
    ``max_message`` bounds the memory a client can make us hold for one message (raised
    to fit the factory's cut-text cap if that is larger)."""
    ws = _AnyPathWebSocket(_RFBWebSocketFactory(factory))
    root = _Root(
        ws,
        page(novnc, title),
        novnc,
        scheme="https" if tls else "http",
        names=names if names is not None else _local_names(""),
        origins=tuple(o.rstrip("/") for o in origins) if origins is not None else None,
    )
    site = Site(root, timeout=HTTP_TIMEOUT, requestFactory=_Request)
    site.noisy = False
    site.displayTracebacks = False
    limit = max(max_message, int(getattr(factory, "max_cut_text", 0)) + 65536)
    return _GuardedFactory(site, limit)


def listenWebSocket(
    spec: VncSpec,
    factory: Any,
    reactor: Any,
    *,
    tls: Any = None,
    origins: Iterable[str] | None = None,
    novnc: str | None = None,
) -> list[IListeningPort]:
    """Listen on ``spec.host:spec.websocket`` for WebSocket viewers; bound when it returns.

    ``factory`` is the RFBFactory of the TCP port (shared limits and auth).  ``tls``, an
    ``IOpenSSLServerConnectionCreator``, makes it ``wss://``.  ``novnc`` overrides the
    noVNC directory search (``$VNCMUX_NOVNC``, then /usr/share/novnc).  Returns [] when
    ``spec.websocket`` is None; raises ConfigError (closing what it opened) on failure."""
    if spec.websocket is None or spec.kind == "none":
        return []
    port = spec.websocket
    if not 0 < port < 65536:
        raise ConfigError(f"--vnc websocket: port {port} is out of range")
    directory = (novnc if novnc is not None else find_novnc()) or None
    title = getattr(factory, "desktopName", lambda: "vncmux")()
    site = makeWebSocketSite(
        factory,
        novnc=directory,
        title=title,
        tls=tls is not None,
        names=_local_names(spec.host),
        origins=origins,
    )
    ports: list[Any] = []
    try:
        for address in _addresses(spec.host, port):
            where = _describe(address, port)
            try:
                if tls is not None:
                    ports.append(reactor.listenSSL(port, site, tls, interface=address))
                else:
                    ports.append(reactor.listenTCP(port, site, interface=address))
            except CannotListenError as e:
                raise ConfigError(
                    f"--vnc websocket: cannot listen on {where}: {_reason(e)}"
                ) from None
            log.info(
                "VNC WebSocket server listening on {where} ({scheme}://{where}/, noVNC {novnc})",
                where=where,
                scheme="https" if tls is not None else "http",
                novnc=directory or "not installed",
            )
    except BaseException:
        for p in ports:
            p.stopListening()
        raise
    return ports
