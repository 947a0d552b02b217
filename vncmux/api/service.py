"""The API's listening service: the endpoint, the HTTP limits, the connection log.

Listens when built (as the byte sockets do), so a port in use is a ``ConfigError`` before
twistd starts anything.  The HTTP limits are the WebSocket port's (``rfb.http_limits``): a
connection cap, a deadline for each request to arrive whole, bounded request lines; the
body cap is the API's own (``resource.MAX_BODY``).  Each connection is logged with its
peer (for a UNIX socket: the path and the peer's pid and uid).
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from vncmux.api.auth import Tokens, read_token
from vncmux.api.resource import MAX_BODY, Api, ApiRequest, ApiResource, transport_peer
from vncmux.listening import listenNow
from vncmux.rfb.http_limits import GuardedFactory, LimitedChannel, LimitedSite
from vncmux.specs import ApiSpec

log = Logger()


class ApiChannel(LimitedChannel):
    """An HTTP channel that logs its client when it connects."""

    def connectionMade(self) -> None:
        super().connectionMade()
        log.info("API client {peer} connected", peer=transport_peer(self.transport))


class ApiSite(LimitedSite):
    protocol = ApiChannel  # type: ignore[assignment]
    noisy = False

    def __init__(self, resource: Any, **kw: Any) -> None:
        super().__init__(resource, **kw)
        self.requestFactory = ApiRequest

    def log(self, request: Any) -> None:
        """No access log of its own: the API logs connections, refusals and input."""


class ApiService(Service):
    """``--api``: the HTTP/JSON API of one console, listening from construction."""

    def __init__(self, spec: ApiSpec, api: Api, reactor: Any) -> None:
        self.setName("api")
        self.spec = spec
        self.api = api
        site = ApiSite(ApiResource(api))
        self.factory = GuardedFactory(
            site, clock=reactor, max_message=MAX_BODY * 16, close_grace=None
        )
        self.port = listenNow(reactor, spec.endpoint, self.factory, "--api")
        mode = "no token (UNIX socket)" if api.tokens.open else "bearer token"
        if api.tokens.view is not None:
            mode += " (and a view-only token)"
        log.info("API on {endpoint}, {mode}", endpoint=spec.endpoint, mode=mode)

    def stopService(self) -> Deferred[Any]:
        Service.stopService(self)
        self.api.close()
        return self.port.stopListening() or succeed(None)  # type: ignore[no-any-return]


def makeApiService(
    spec: ApiSpec,
    hub: Any,
    reactor: Any,
    console: Any = None,
    history: Any = None,
    encoding: str = "utf-8",
) -> ApiService:
    """The API service for one console (``console`` None: a pure byte multiplexer, no
    screen routes); reads the token files (``vncmux.preflight`` checked them)."""
    tokens = Tokens(
        full=read_token(spec.token_file) if spec.token_file else None,
        view=read_token(spec.view_token_file) if spec.view_token_file else None,
    )
    api = Api(hub, reactor, tokens, console=console, history=history, encoding=encoding)
    return ApiService(spec, api, reactor)
