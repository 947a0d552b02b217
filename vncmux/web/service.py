"""``--web``: one HTTP entry for every console of the site, and the service that listens.

The resource tree::

    /                       the index (vncmux.web.index)
    /consoles.json          what the index refreshes from
    /healthz                200 or 503 (vncmux.web.health)
    /metrics                Prometheus (vncmux.web.metrics)
    /c/NAME/                the console's noVNC page  } rfb.websocket.ViewerResource,
    /c/NAME/websockify      its WebSocket (RFB)       } on the console's own RFBFactory
    /c/NAME/novnc/...       noVNC's files             }
    /c/NAME/thumbnail.png   its thumbnail (vncmux.web.thumbnails), public consoles only
    /c/NAME/api/v1/...      its API (vncmux.api), when it has one with a token

Consoles are looked up at each request (``site.get(name)``), so consoles added or removed by
a reload appear and vanish without anything to update here.  Authentication is the
console's own: a WebSocket viewer meets the VNC server's password or users (the page asks
with its form), the API its bearer tokens; an API without a token (allowed only on a UNIX
socket) is not mounted here.  The port has the WebSocket port's limits
(``rfb.http_limits``: connection cap, request deadline, message and unread-output caps,
close grace), its path check and its Origin check.
"""

from __future__ import annotations

import json
import re
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.web.pages import errorPage, notFound
from twisted.web.resource import IResource, Resource

from vncmux.api.resource import ApiRequest, ApiResource
from vncmux.listening import listenNow
from vncmux.rfb.factory import MAX_CUT_TEXT, MAX_OUTPUT
from vncmux.rfb.http_limits import (
    MAX_MESSAGE,
    MAX_UNREAD,
    REQUEST_TIMEOUT,
    GuardedFactory,
    LimitedSite,
)
from vncmux.rfb.novnc_page import find_novnc
from vncmux.rfb.server import peer_label
from vncmux.rfb.websocket import ViewerResource, local_names, path_refusal
from vncmux.web.health import HealthResource
from vncmux.web.index import IndexResource, ListingResource
from vncmux.web.metrics import MetricsResource, makeRegistry
from vncmux.web.state import is_public
from vncmux.web.thumbnails import ThumbnailResource, Thumbnails

log = Logger()


def _refused(request: Any, what: str) -> None:
    log.info(
        "Web client {peer}: {path} refused: {what}",
        peer=peer_label(request.getClientAddress()),
        path=request.path.decode("latin-1"),
        what=what,
    )


class ConsoleResource(Resource):
    """``/c/NAME/``: one console's viewer, thumbnail and API."""

    def __init__(self, web: WebRoot, instance: Any) -> None:
        super().__init__()
        self._web = web
        self._instance = instance

    def _viewer(self) -> ViewerResource | None:
        instance = self._instance
        factory = getattr(instance, "vnc_factory", None)
        if factory is None or getattr(instance, "console", None) is None:
            return None
        return ViewerResource(
            factory,
            novnc=self._web.novnc,
            title=f"{instance.name}: {factory.desktopName()}",
            names=self._web.names,
            ws_path=f"c/{instance.name}/websockify",
            index="../../",
        )

    def getChildWithDefault(self, path: bytes, request: Any) -> IResource:  # type: ignore[override]
        instance = self._instance
        upgrade = (request.getHeader(b"upgrade") or b"").lower() == b"websocket"
        if path == b"thumbnail.png" and not upgrade and not request.postpath:
            if getattr(instance, "console", None) is None:
                return notFound("No screen", "This console has no virtual console.")
            if not is_public(getattr(instance, "vnc_factory", None)):
                _refused(request, "the thumbnail of a password-protected console")
                return errorPage(
                    403, "Forbidden", "This console's screen is protected by a VNC password."
                )
            return ThumbnailResource(self._web.thumbnails, instance.name, instance.console)
        if path == b"api" and not upgrade:
            service = getattr(instance, "api", None)
            if service is None:
                return _JsonError(404, "this console has no API (--api)")
            if service.api.tokens.open:
                _refused(request, "an API without a token (UNIX socket only)")
                return _JsonError(
                    403, "this console's API has no token: it is served on its UNIX socket only"
                )
            return ApiResource(service.api, mount=f"/c/{instance.name}".encode())
        viewer = self._viewer()
        if viewer is None:
            return notFound("No viewer", "This console has no VNC server (--vnc none).")
        return viewer.getChildWithDefault(path, request)

    def render(self, request: Any) -> bytes:
        """``/c/NAME`` without the slash: to the page (an upgrade is served as is)."""
        viewer = self._viewer()
        if viewer is None:
            return notFound("No viewer", "This console has no VNC server.").render(request)  # type: ignore[no-any-return]
        return viewer.render(request)


class _JsonError(Resource):
    """A refusal under ``/c/NAME/api/``, in the API's own form (``{"error": ...}``), so a
    script reads it as it reads the API's other errors."""

    isLeaf = True

    def __init__(self, code: int, message: str) -> None:
        super().__init__()
        self.code = code
        self.message = message

    def render(self, request: Any) -> bytes:
        request.setResponseCode(self.code)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({"error": self.message}).encode() + b"\n"


class ConsolesResource(Resource):
    """``/c/``: a console by name, looked up when asked."""

    def __init__(self, web: WebRoot) -> None:
        super().__init__()
        self._web = web

    def getChild(self, path: bytes, request: Any) -> IResource:
        try:
            name = path.decode("utf-8")
        except UnicodeDecodeError:
            return notFound()
        instance = self._web.get(name)
        if instance is None:
            return notFound("No such console", f"There is no console named {name!r}.")
        return ConsoleResource(self._web, instance)


class WebRoot(Resource):
    """The root: the path check for every request, then the pages (see the module)."""

    def __init__(self, site: Any, clock: Any, names: set[str] | None = None) -> None:
        super().__init__()
        self._site = site
        self.clock = clock
        self.novnc = find_novnc()
        self.names = names if names is not None else local_names()
        self.thumbnails = Thumbnails(clock)
        self.registry = makeRegistry(self.instances)
        self._pages: dict[bytes, Resource] = {
            b"": IndexResource(self.instances, clock),
            b"consoles.json": ListingResource(self.instances, clock),
            b"healthz": HealthResource(self.instances),
            b"metrics": MetricsResource(self.registry),
            b"c": ConsolesResource(self),
        }

    def instances(self) -> list[Any]:
        """The running consoles, in the site's order."""
        found = list(self._site.instances())
        self.thumbnails.keep({i.name for i in found})
        return found

    def get(self, name: str) -> Any:
        return self._site.get(name)

    def getChildWithDefault(self, path: bytes, request: Any) -> IResource:  # type: ignore[override]
        refusal = path_refusal(request)
        if refusal is not None:
            return refusal
        page = self._pages.get(path)
        if page is None or (path == b"" and request.postpath):
            return notFound()
        return page


def endpoint_host(endpoint: str) -> str:
    """The ``interface=`` of a tcp/ssl endpoint string ('' when none); colons escaped with
    a backslash (an IPv6 address) are part of the value."""
    for part in re.split(r"(?<!\\):", endpoint)[1:]:
        key, sep, value = part.partition("=")
        if sep and key == "interface":
            return value.replace("\\:", ":")
    return ""


class WebSite(LimitedSite):
    """The HTTP side: the API's request type (its body cap; a ``CountingRequest`` for every
    other page) and no access log (the index refreshes every few seconds and Prometheus
    scrapes: WebSocket viewers and API clients are logged by their own code)."""

    noisy = False
    displayTracebacks = False

    def __init__(self, resource: Any, **kw: Any) -> None:
        super().__init__(resource, **kw)
        self.requestFactory = ApiRequest

    def log(self, request: Any) -> None:
        """No access log (see the class)."""


def makeWebFactory(
    site: Any, clock: Any, names: set[str], request_timeout: float = REQUEST_TIMEOUT
) -> GuardedFactory:
    """The factory to listen with: ``WebRoot`` over ``site`` in a ``WebSite`` behind the
    WebSocket port's guard (connection cap, message and unread-output caps, close grace);
    ``clock`` times the request deadline and the rest."""
    root = WebRoot(site, clock, names)
    http = WebSite(root, request_timeout=request_timeout, timeout=None, reactor=clock)
    return GuardedFactory(
        http,
        clock=clock,
        max_message=max(MAX_MESSAGE, MAX_CUT_TEXT + 65536),
        max_unread=max(MAX_UNREAD, 2 * MAX_OUTPUT),
    )


class WebService(Service):
    """``--web``: the site's HTTP entry, listening from construction (a port in use is a
    ``ConfigError`` before twistd starts anything)."""

    def __init__(self, endpoint: str, site: Any, reactor: Any) -> None:
        self.setName("web")
        self.endpoint = endpoint
        self.factory = makeWebFactory(site, reactor, local_names(endpoint_host(endpoint)))
        self.root: WebRoot = self.factory.wrappedFactory.resource
        self.port = listenNow(reactor, endpoint, self.factory, "--web")
        log.info(
            "Web entry on {endpoint}: index, /c/NAME/ viewers (noVNC {novnc}), /healthz,"
            " /metrics; at most {n} connections",
            endpoint=endpoint,
            novnc=self.root.novnc or "not installed",
            n=self.factory.max_connections,
        )

    def stopService(self) -> Deferred[Any]:
        Service.stopService(self)
        return self.port.stopListening() or succeed(None)  # type: ignore[no-any-return]


def makeWebService(endpoint: str, site: Any, reactor: Any) -> WebService:
    """The web entry on ``endpoint`` over ``site`` (anything with ``instances()`` and
    ``get(name)``: the running ``SiteService``)."""
    return WebService(endpoint, site, reactor)
