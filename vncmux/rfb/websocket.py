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
* an Origin/Host check: a web page on another site must not be able to open a
  WebSocket to a console on localhost (cross-site WebSocket hijacking, DNS rebinding).
* a check of the request path: NUL, control characters, broken percent-encoding,
  non-UTF-8 or an over-long path is answered 400/414 before anything touches the disk.

What a client may make the port hold (connections, time, memory, a close that never
finishes) is bounded in :mod:`vncmux.rfb.http_limits`.

One console's part of this (``ViewerResource``: the upgrade, the page, noVNC's files) is a
resource of its own, so the ``--web`` site (:mod:`vncmux.web.service`) mounts one per
console under ``/c/NAME/``, with the same path and Origin checks (``path_refusal``,
``origin_refusal``) and the same limits.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.pages import errorPage, notFound
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request
from twisted.web.static import File
from twisted.web.websocket import WebSocketResource
from wsproto.utilities import LocalProtocolError

from vncmux.errors import ConfigError
from vncmux.rfb.http_limits import (
    MAX_MESSAGE,
    MAX_UNREAD,
    REQUEST_TIMEOUT,
    ConnectionGuard,
    GuardedFactory,
    LimitedSite,
)
from vncmux.rfb.listen import _addresses, _describe, _reason
from vncmux.rfb.novnc_page import find_novnc, page
from vncmux.rfb.server import peer_label
from vncmux.specs import VncSpec

log = Logger()

#: WebSocket close codes (RFC 6455 §7.4.1).
CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED_DATA = 1003
#: The longest request path served (noVNC's own are under 100 bytes).
MAX_PATH = 2048

_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


def path_fault(target: bytes) -> tuple[int, str] | None:
    """What is wrong with a request target's path (status, reason), or None if nothing.

    Twisted decodes percent escapes into path segments and hands them to the resources,
    and the static file server passes them on to the operating system: a ``%00`` there
    was a ValueError, a 500 and a traceback.  Checked once, at the root, for every
    request, the upgrade included."""
    path = target.split(b"?", 1)[0]
    if len(path) > MAX_PATH:
        return 414, f"path longer than {MAX_PATH} bytes"
    if _BAD_ESCAPE.search(path):
        return 400, "malformed percent-encoding in the path"
    decoded = unquote_to_bytes(path)
    if _CONTROL.search(decoded):
        return 400, "control character (NUL included) in the path"
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        return 400, "path is not UTF-8"
    return None


class _WebSocketTransport:
    """One WebSocket connection carrying one RFB session.

    To Twisted's WebSocket layer this is the ``WebSocketProtocol``; to the RFB protocol
    it is the transport (``write``, ``loseConnection``, ``abortConnection``,
    ``getPeer``/``getHost``, ``registerProducer``/``unregisterProducer``).  The RFB
    protocol starts only once the 101 response has gone out (``negotiationFinished``)."""

    clientKind = "websocket"  # what the RFB session reports on the event bus

    def __init__(self, rfb: Protocol, request: Request) -> None:
        self.rfb = rfb
        self._request = request
        self._wire: Any = None  # twisted's WebSocketTransport (the wire protocol)
        self._tcp: Any = None  # the transport below it (our ConnectionGuard)
        self.peer = peer_label(request.getClientAddress())
        self.connected = False
        self.disconnecting = False

    # -- WebSocketProtocol -------------------------------------------------------------

    def negotiationStarted(self, transport: Any) -> None:
        self._wire = transport
        self._tcp = transport.transport
        if isinstance(self._tcp, ConnectionGuard):
            self._tcp.overflow = self.tooBig
            self._tcp.upgraded = True

    def negotiationFinished(self) -> None:
        tcp = self._tcp
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
        if isinstance(self._tcp, ConnectionGuard):
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


def origin_refusal(request: Any, names: set[str]) -> str:
    """Why this WebSocket upgrade must be refused ('' = accept).

    Browsers send Origin; other clients do not, and are not at risk.  A browser page may
    connect only from this server's own origin (our page), and only under a Host name that
    is an address or one of ``names``, the names of this machine (a rebound DNS name
    pointing at 127.0.0.1 is someone else's site)."""
    host = (request.getHeader(b"host") or b"").decode("latin-1")
    origin = (request.getHeader(b"origin") or b"").decode("latin-1").rstrip("/")
    if not origin:
        return ""
    scheme = "https" if request.isSecure() else "http"
    if origin.lower() != f"{scheme}://{host}".lower():
        return f"origin {origin} is not this server ({scheme}://{host})"
    name = _host_name(host)
    try:
        ipaddress.ip_address(name)
        return ""
    except ValueError:
        pass
    if name in names:
        return ""
    return f"host name {name!r} is not a name of this machine"


def path_refusal(request: Any) -> IResource | None:
    """The 400/414 answer for a request whose path is malformed (logged with the peer), or
    None when the path is sound.  Asked once, at the root, for every request."""
    fault = path_fault(request.uri)
    if fault is None:
        return None
    status, why = fault
    log.info(
        "HTTP client {peer}: {why}; answered {status}",
        peer=peer_label(request.getClientAddress()),
        why=why,
        status=status,
    )
    return errorPage(status, "Bad Request" if status == 400 else "URI Too Long", why)


class _AddSlash(Resource):
    """``/c/NAME`` → ``/c/NAME/``: the page's relative links need the slash."""

    isLeaf = True

    def render(self, request: Request) -> bytes:
        request.redirect(request.uri.split(b"?", 1)[0] + b"/")
        return b""


class ViewerResource(Resource):
    """One console's viewers over HTTP: a WebSocket upgrade on any path under it becomes
    one RFB session of ``factory`` (the TCP port's RFBFactory: same limits, password,
    blacklist and share policy) after the Origin check; ``''`` is the page
    (:mod:`vncmux.rfb.novnc_page`); ``novnc/`` serves noVNC read-only.

    Mounted at the root of the ``websocket=`` port, and at ``/c/NAME/`` of the ``--web``
    site (``ws_path``: the WebSocket's path from the host's root, for noVNC's full client,
    which takes it as a parameter; ``index``: the page links back to the site's index)."""

    def __init__(
        self,
        factory: Any,
        *,
        novnc: str | None,
        title: str,
        names: set[str],
        ws_path: str = "websockify",
        index: str | None = None,
    ) -> None:
        super().__init__()
        self._ws = _AnyPathWebSocket(_RFBWebSocketFactory(factory))
        self._page = _Page(page(novnc, title, ws_path=ws_path, index=index))
        self._static = _ReadOnlyFiles(novnc) if novnc else None
        self._names = names

    def getChildWithDefault(self, path: bytes, request: Any) -> IResource:  # type: ignore[override]
        upgrade = (request.getHeader(b"upgrade") or b"").lower()
        if upgrade == b"websocket":
            why = origin_refusal(request, self._names)
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

    def render(self, request: Request) -> bytes:
        """Reached without a trailing slash: redirect to it (an upgrade is served too)."""
        if (request.getHeader(b"upgrade") or b"").lower() == b"websocket":
            return self.getChildWithDefault(b"", request).render(request)  # type: ignore[no-any-return]
        return _AddSlash().render(request)


class _Root(Resource):
    """The ``websocket=`` port: the path check, then one console's ``ViewerResource``."""

    def __init__(self, viewer: ViewerResource) -> None:
        super().__init__()
        self._viewer = viewer

    def getChildWithDefault(self, path: bytes, request: Any) -> IResource:  # type: ignore[override]
        refusal = path_refusal(request)
        if refusal is not None:
            return refusal
        return self._viewer.getChildWithDefault(path, request)


def local_names(spec_host: str = "") -> set[str]:
    """The host names of this machine (for the DNS-rebinding check), plus ``spec_host``."""
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
    clock: Any,
    novnc: str | None = None,
    title: str = "vncmux",
    names: set[str] | None = None,
    max_message: int = MAX_MESSAGE,
    max_connections: int | None = None,
    request_timeout: float = REQUEST_TIMEOUT,
) -> GuardedFactory:
    """The Twisted factory to listen with: WebSocket RFB on any path, the page, noVNC.

    ``factory`` is the RFBFactory of the TCP port (shared limits and auth); ``clock`` the
    reactor (timeouts, the close grace).  ``novnc`` is the noVNC directory to serve (None:
    the page explains how to install it); ``names`` the host names of this machine for
    the DNS-rebinding check.  ``max_message`` bounds the memory a client can make us hold
    for one message (raised to fit the factory's cut-text cap if that is larger; the
    unread-output cap likewise stays above the session's own ``max_output``);
    ``max_connections`` the connections at once (default: a quarter of the descriptor
    limit); ``request_timeout`` the seconds a request may take to arrive whole."""
    root = _Root(
        ViewerResource(
            factory,
            novnc=novnc,
            title=title,
            names=names if names is not None else local_names(""),
        )
    )
    # No idle timer: the request deadline is shorter, and an upgraded connection is the
    # RFB session's to time out.
    site = LimitedSite(root, request_timeout=request_timeout, timeout=None, reactor=clock)
    site.noisy = False
    site.displayTracebacks = False
    limit = max(max_message, int(getattr(factory, "max_cut_text", 0)) + 65536)
    # Above the session's own output cap, which is meant to act first.
    unread = max(MAX_UNREAD, 2 * int(getattr(factory, "max_output", 0)))
    return GuardedFactory(
        site,
        clock=clock,
        max_message=limit,
        max_connections=max_connections,
        max_unread=unread,
    )


def listenWebSocket(spec: VncSpec, factory: Any, reactor: Any) -> list[IListeningPort]:
    """Listen on ``spec.host:spec.websocket`` for WebSocket viewers; bound when it returns.

    ``factory`` is the RFBFactory of the TCP port (shared limits and auth).  noVNC is
    looked for in ``$VNCMUX_NOVNC``, then /usr/share/novnc.  Returns [] when
    ``spec.websocket`` is None; raises ConfigError (closing what it opened) on failure."""
    if spec.websocket is None or spec.kind == "none":
        return []
    port = spec.websocket
    if not 0 < port < 65536:
        raise ConfigError(f"--vnc websocket: port {port} is out of range")
    directory = find_novnc()
    title = getattr(factory, "desktopName", lambda: "vncmux")()
    site = makeWebSocketSite(
        factory,
        clock=reactor,
        novnc=directory,
        title=title,
        names=local_names(spec.host),
    )
    ports: list[Any] = []
    try:
        for address in _addresses(spec.host, port):
            where = _describe(address, port)
            try:
                ports.append(reactor.listenTCP(port, site, interface=address))
            except CannotListenError as e:
                raise ConfigError(
                    f"--vnc websocket: cannot listen on {where}: {_reason(e)}"
                ) from None
            log.info(
                "VNC WebSocket server listening on {where} (http://{where}/, noVNC {novnc};"
                " at most {n} connections, {t:g} s per request)",
                where=where,
                novnc=directory or "not installed",
                n=site.max_connections,
                t=site.wrappedFactory.request_timeout,
            )
    except BaseException:
        for p in ports:
            p.stopListening()
        raise
    return ports
