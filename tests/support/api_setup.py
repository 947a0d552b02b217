"""An API over a real hub, history and console on a test clock, and fake HTTP requests
for it: what the API's route tests and the tests of its users (BREAK, events) share."""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import parse_qsl

from twisted.internet.testing import Clock
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from tests.support.fakes import FakeDevice
from vncmux.api.auth import Tokens
from vncmux.api.resource import Api
from vncmux.console.console import Console
from vncmux.history import HistoryBackend, OutputHistory
from vncmux.hub import Hub

FULL = b"Bearer full-token"
VIEW = b"Bearer view-token"
TOKENS = Tokens(full="full-token", view="view-token")


class Request(DummyRequest):
    """A DummyRequest with what the API reads: path, method, body, query."""

    def __init__(self, method: str, path: str, body: bytes = b"", **headers: str) -> None:
        route, _sep, query = path.partition("?")
        super().__init__([part.encode() for part in route.lstrip("/").split("/")])
        self.method = method.encode()
        self.path = route.encode()
        self.content = io.BytesIO(body)
        self.channel = None
        for key, value in parse_qsl(query, keep_blank_values=True):  # as twisted.web does
            self.addArg(key.encode(), value.encode())
        for name, value in headers.items():
            self.requestHeaders.setRawHeaders(name.replace("_", "-"), [value])

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        assert streaming  # DummyRequest's own loop is for pull producers
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    @property
    def body(self) -> bytes:
        return b"".join(self.written)

    def json(self) -> Any:
        return json.loads(self.body)


class Setup:
    def __init__(self, tokens: Tokens = TOKENS) -> None:
        self.clock = Clock()
        self.hub = Hub(self.clock)
        self.history = OutputHistory(64, self.clock.seconds)
        self.hub.attach(HistoryBackend(self.history))
        self.device = FakeDevice()
        self.hub.deviceConnected(self.device)
        self.console = Console(self.hub, self.clock, 20, 3)
        self.console.start()
        self.api = Api(self.hub, self.clock, tokens, self.console, self.history)

    def feed(self, data: bytes) -> None:
        self.hub.deviceOutput(data)
        self.clock.advance(0)

    def call(
        self, method: str, path: str, body: bytes = b"", auth: bytes | None = FULL, **headers: str
    ) -> Request:
        request = Request(method, path, body, **headers)
        if auth is not None:
            request.requestHeaders.setRawHeaders(b"authorization", [auth])
        answer = self.api.handle(request)
        if answer is not NOT_DONE_YET:
            assert isinstance(answer, bytes)
            request.write(answer)
            request.finish()
        return request


__all__ = ["FULL", "TOKENS", "VIEW", "Request", "Setup"]
