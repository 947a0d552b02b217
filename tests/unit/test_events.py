"""The per-console event bus (vncmux.events) and the clients that report on it: the hub
(device up/down, input with its client), byte sockets, the console's viewer sessions, the
RFB session (attach after auth, detach, auth failure), the API."""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import Clock, StringTransport
from twisted.logger import capturedLogs, formatEvent
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.support.fakes import FakeDevice
from tests.support.rfb_client import Client as RfbClient
from tests.support.rfb_client import connected, make_factory, server_init
from vncmux import events
from vncmux.console.interfaces import IViewer
from vncmux.events import (
    ATTACH,
    AUTH_FAILURE,
    DETACH,
    DEVICE_DOWN,
    DEVICE_UP,
    INPUT,
    Client,
    Event,
    EventBus,
    EventRecorder,
    IEventListener,
)
from vncmux.hub import Hub
from vncmux.rfb import auth


@implementer(IViewer)
class Viewer:
    """A viewer that wants nothing."""

    def updateAvailable(self) -> None: ...
    def bell(self) -> None: ...
    def nameChanged(self, name: str) -> None: ...
    def sizeChanged(self, width: int, height: int) -> None: ...
    def cutText(self, text: str) -> None: ...


def recorded(hub: Hub) -> EventRecorder:
    rec = EventRecorder()
    hub.events.subscribe(rec)
    return rec


# -- the bus -------------------------------------------------------------------------------


def test_emit_tells_every_listener_in_order_with_the_clock_time() -> None:
    clock = Clock()
    clock.advance(12.5)
    bus = EventBus(clock)
    first, second = EventRecorder(), EventRecorder()
    bus.subscribe(first)
    bus.subscribe(second)
    bus.subscribe(first)  # twice is once
    who = Client.of("vnc", "127.0.0.1:5000")
    bus.emit(ATTACH, who)
    bus.emit(INPUT, who, data=bytearray(b"ls\r"))
    assert first.events == second.events
    assert first.events == [
        Event(12.5, ATTACH, who),
        Event(12.5, INPUT, who, data=b"ls\r"),
    ]
    assert isinstance(first.events[1].data, bytes)
    bus.unsubscribe(first)
    bus.emit(DETACH, who)
    assert first.names() == [ATTACH, INPUT]
    assert second.names() == [ATTACH, INPUT, DETACH]


def test_an_unknown_event_is_a_programming_error() -> None:
    bus = EventBus(Clock())
    with pytest.raises(ValueError, match="unknown console event 'typed'"):
        bus.emit("typed")


def test_a_listener_that_raises_is_logged_and_the_others_still_hear() -> None:
    @implementer(IEventListener)
    class Broken:
        def event(self, event: Event) -> None:
            raise RuntimeError("boom")

    bus = EventBus(Clock())
    after = EventRecorder()
    bus.subscribe(Broken())
    bus.subscribe(after)
    with capturedLogs() as logged:
        bus.emit(DEVICE_UP, detail="/dev/ttyUSB0 connected")
    assert after.names() == [DEVICE_UP]
    assert any("failed on device-up" in formatEvent(e) for e in logged)


def test_listeners_provide_the_interface() -> None:
    assert verifyObject(IEventListener, EventRecorder())


def test_client_credentials() -> None:
    assert Client.of("vnc", "h:1").credential == "full"
    viewer = Client.of("websocket", "h:2", view_only=True)
    assert (viewer.credential, viewer.view_only) == ("view-only", True)
    user = Client.of("vnc", "h:3", user="alice")
    assert (user.credential, user.view_only) == ("alice", False)
    assert Client.of("vnc", "h:3", view_only=True, user="bob") == Client("vnc", "h:3", "bob", True)
    assert str(user) == "vnc h:3"
    assert user.asdict() == {"kind": "vnc", "peer": "h:3", "credential": "alice"}
    assert set(events.KINDS) >= {"vnc", "websocket", "socket", "telnet", "api"}


# -- the hub -------------------------------------------------------------------------------


def test_the_hub_reports_the_device_coming_and_going() -> None:
    hub = Hub(Clock())
    rec = recorded(hub)
    hub.deviceConnected(FakeDevice("ttyUSB0"), "ttyUSB0 at 115200")
    hub.deviceLost("ttyUSB0: unplugged")
    assert [(e.name, e.detail) for e in rec.events] == [
        (DEVICE_UP, "ttyUSB0 at 115200"),
        (DEVICE_DOWN, "ttyUSB0: unplugged"),
    ]


def test_the_hub_reports_input_that_reached_the_device_with_its_client() -> None:
    hub = Hub(Clock())
    rec = recorded(hub)
    who = Client.of("socket", "127.0.0.1:4000")
    assert not hub.input(b"lost", client=who)  # the device is down: dropped, not reported
    device = FakeDevice()
    hub.deviceConnected(device)
    assert hub.input(b"ls\r", client=who)
    assert hub.input(b"\x1b[0n")  # a terminal reply: no client, not reported
    assert device.written == [b"ls\r", b"\x1b[0n"]
    inputs = [e for e in rec.events if e.name == INPUT]
    assert [(e.client, e.data) for e in inputs] == [(who, b"ls\r")]


# -- byte sockets --------------------------------------------------------------------------


def test_a_byte_client_reports_attach_input_and_detach() -> None:
    from vncmux.sockets import BackendFactory

    hub = Hub(Clock())
    hub.deviceConnected(FakeDevice())
    rec = recorded(hub)
    factory = BackendFactory(hub, "tcp:4555")
    addr = IPv4Address("TCP", "192.0.2.7", 41000)
    proto = factory.buildProtocol(addr)
    proto.makeConnection(StringTransport(peerAddress=addr))
    proto.dataReceived(b"reboot\n")
    proto.connectionLost(None)
    who = Client("socket", "192.0.2.7:41000", "full")
    assert [(e.name, e.client, e.data) for e in rec.events] == [
        (ATTACH, who, b""),
        (INPUT, who, b"reboot\n"),
        (DETACH, who, b""),
    ]


def test_a_read_only_byte_client_is_view_only_and_its_input_is_not_reported() -> None:
    from vncmux.sockets import BackendFactory

    hub = Hub(Clock())
    hub.deviceConnected(FakeDevice())
    rec = recorded(hub)
    addr = IPv4Address("TCP", "192.0.2.8", 41001)
    proto = BackendFactory(hub, "tcp:4556", readonly=True).buildProtocol(addr)
    proto.makeConnection(StringTransport(peerAddress=addr))
    proto.dataReceived(b"ignored")
    proto.connectionLost(None)
    assert rec.names() == [ATTACH, DETACH]
    assert rec.events[0].client == Client("socket", "192.0.2.8:41001", "view-only", True)


# -- the console's viewers -----------------------------------------------------------------


def test_a_viewer_session_types_as_its_client() -> None:
    from vncmux.console.console import Console

    clock = Clock()
    hub = Hub(clock)
    hub.deviceConnected(FakeDevice())
    rec = recorded(hub)
    console = Console(hub, clock, 20, 4)
    assert console.events is hub.events

    who = Client.of("websocket", "[::1]:5000", user="alice")
    session = console.attach(Viewer(), peer="[::1]:5000", client=who)
    assert session.client is who
    session.key(ord("x"), True)
    session.key(ord("x"), False)
    plain = console.attach(Viewer(), peer="127.0.0.1:6000")
    assert plain.client == Client("vnc", "127.0.0.1:6000", "full")
    plain.key(ord("y"), True)
    assert [(e.client, e.data) for e in rec.events if e.name == INPUT] == [
        (who, b"x"),
        (plain.client, b"y"),
    ]


# -- the RFB session -----------------------------------------------------------------------


def test_an_rfb_viewer_reports_attach_once_connected_and_detach_when_gone() -> None:
    factory, console, _ = make_factory()
    rec = EventRecorder()
    console.events.subscribe(rec)
    c = connected(factory, host="192.0.2.9", port=5555)
    who = Client("vnc", "192.0.2.9:5555", "full")
    assert rec.names() == [ATTACH] and rec.events[0].client == who
    assert c.proto.session is not None
    assert c.proto.session.client == who  # type: ignore[attr-defined]
    c.proto.connectionLost()
    assert rec.names() == [ATTACH, DETACH] and rec.events[1].client == who


def test_an_rfb_viewer_with_the_view_password_is_view_only_and_a_bad_one_fails() -> None:
    factory, console, clock = make_factory(password=b"full", view_password=b"look")
    rec = EventRecorder()
    console.events.subscribe(rec)

    def login(password: bytes, port: int) -> RfbClient:
        c = RfbClient(factory, port=port)
        c.take()
        c.send(b"RFB 003.008\n\x02")
        challenge = c.take()[2:]
        c.send(auth.vnc_auth_response(challenge, password))
        return c

    watcher = login(b"look", 40001)
    assert watcher.take() == b"\0\0\0\0"
    watcher.send(b"\x01")
    assert watcher.take() == server_init(factory.console)
    login(b"wrong", 40002)
    clock.advance(10)
    assert [(e.name, e.client) for e in rec.events] == [
        (ATTACH, Client("vnc", "127.0.0.1:40001", "view-only", True)),
        (AUTH_FAILURE, Client("vnc", "127.0.0.1:40002", "none")),
    ]
    assert rec.events[1].detail == "authentication failed"


def test_a_websocket_viewer_attaches_as_websocket() -> None:
    from twisted.internet import reactor

    from tests.support.fake_console import FakeConsole
    from tests.support.ws_client import WSClient, listen
    from vncmux.rfb.factory import RFBFactory

    console = FakeConsole()
    rec = EventRecorder()
    console.events.subscribe(rec)
    factory = RFBFactory(console, password=None, clock=reactor, connections=2)
    port, listening, _ = listen(factory)
    try:
        c = WSClient(port)
        assert c.take(12) == b"RFB 003.008\n"
        c.send(b"RFB 003.008\n")
        assert c.take(2) == b"\x01\x01"
        c.send(b"\x01")
        assert c.take(4) == b"\0\0\0\0"
        c.send(b"\x01")
        expected = server_init(console)
        assert c.take(len(expected)) == expected
        (proto,) = factory.clients
        assert [(e.name, e.client) for e in rec.events] == [
            (ATTACH, Client("websocket", proto.peer, "full"))
        ]
        c.close()
    finally:
        listening.stopListening()
        for proto in list(factory.clients):
            proto.transport.abortConnection()
        reactor.iterate(0)  # type: ignore[attr-defined]


# -- the API -------------------------------------------------------------------------------


def test_api_input_and_keys_and_a_bad_token_are_reported() -> None:
    from tests.support.api_setup import Setup

    s = Setup()
    rec = recorded(s.hub)
    assert s.call("POST", "/api/v1/input", b"ls\r").responseCode == 200
    assert s.call("POST", "/api/v1/keys", b"Enter").responseCode == 200
    assert s.call("GET", "/api/v1/screen", auth=b"Bearer nope").responseCode == 401
    peer = rec.events[0].client.peer if rec.events[0].client else "?"
    assert [(e.name, e.client, e.data) for e in rec.events] == [
        (INPUT, Client("api", peer, "full"), b"ls\r"),
        (INPUT, Client("api", peer, "full"), b"\r"),
        (AUTH_FAILURE, Client("api", peer, "none"), b""),
    ]


def test_a_pty_reader_reports_attach_input_and_detach() -> None:
    import os

    from vncmux.sockets import PtyBackend

    class Reactor(Clock):
        def addReader(self, reader: object) -> None: ...
        def removeReader(self, reader: object) -> None: ...

    hub = Hub(Clock())
    hub.deviceConnected(FakeDevice())
    rec = recorded(hub)
    backend = PtyBackend(hub, Reactor())
    backend.start()
    slave = os.open(backend.slavePath, os.O_RDWR | os.O_NOCTTY)
    try:
        backend.poll()
        os.write(slave, b"tio\n")
        backend.doRead()
    finally:
        os.close(slave)
    backend.connectionLost(None)  # type: ignore[arg-type]
    backend.stop()
    who = Client("pty", backend.slavePath)
    assert [(e.name, e.client, e.data) for e in rec.events] == [
        (ATTACH, who, b""),
        (INPUT, who, b"tio\n"),
        (DETACH, who, b""),
    ]
