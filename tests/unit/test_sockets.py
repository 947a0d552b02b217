"""Unit tests of vncmux.sockets: socket backends, max-clients, flow control, log file, pty."""

from __future__ import annotations

import errno
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import reactor as globalReactor
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.testing import Clock, MemoryReactorClock, StringTransport
from zope.interface.verify import verifyObject

from tests.support.fakes import FakeDevice
from vncmux.config import ConfigError
from vncmux.hub import Hub
from vncmux.interfaces import IBackend, IPausableInput
from vncmux.sockets import (
    BackendFactory,
    ByteServerService,
    ClientSet,
    LogFileBackend,
    PtyBackend,
    StreamBackend,
    makeByteClientService,
    makeByteServerService,
    makeLogFileService,
    makePtyService,
    withPrivateMode,
)


def hubWithDevice(clock: Any = None) -> tuple[Hub, FakeDevice, Any]:
    clock = clock if clock is not None else Clock()
    hub = Hub(clock, stallTimeout=5)
    device = FakeDevice()
    hub.deviceConnected(device, "fake connected")
    return hub, device, clock


def connect(factory: Any, port: int = 40000) -> tuple[StreamBackend, StringTransport]:
    proto = factory.buildProtocol(None)
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
    proto.makeConnection(transport)
    return proto, transport


# -- endpoints ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("unix:/run/x.sock", "unix:/run/x.sock:mode=600"),
        ("unix:/run/x.sock:mode=660", "unix:/run/x.sock:mode=660"),
        ("unix:/run/x.sock:backlog=5", "unix:/run/x.sock:backlog=5:mode=600"),
        ("unix:/run/mode=7.sock", "unix:/run/mode=7.sock:mode=600"),
        ("tcp:4555", "tcp:4555"),
        ("tcp:4555:interface=127.0.0.1", "tcp:4555:interface=127.0.0.1"),
    ],
)
def test_unix_endpoints_are_private_unless_told(given: str, expected: str) -> None:
    assert withPrivateMode(given) == expected


def test_unix_server_listens_with_mode_600_synchronously() -> None:
    reactor = MemoryReactorClock()
    hub, _, _ = hubWithDevice(reactor)
    ByteServerService("unix:/tmp/vncmux-test.sock", hub, reactor, 4, "sock0")
    # listening happened while creating the service, before any reactor ran
    [(path, _factory, _backlog, mode, _wantPID)] = reactor.unixServers
    assert path == "/tmp/vncmux-test.sock"
    assert mode == 0o600


def test_port_in_use_is_one_line_config_error() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    hub, _, _ = hubWithDevice()
    try:
        with pytest.raises(ConfigError) as info:
            service = makeByteServerService(
                f"tcp:{port}:interface=127.0.0.1", hub, globalReactor, 4, "s"
            )
            service.stopService()  # only reached if the test is about to fail
    finally:
        taken.close()
    message = str(info.value)
    assert message == f"cannot listen on tcp:{port}:interface=127.0.0.1: address already in use"
    assert "\n" not in message


def test_bad_endpoint_string_is_config_error() -> None:
    hub, _, _ = hubWithDevice()
    with pytest.raises(ConfigError, match="bogus"):
        makeByteServerService("bogus:1234", hub, MemoryReactorClock(), 4, "s")
    with pytest.raises(ConfigError, match="bogus"):
        makeByteClientService("bogus:1234", hub, MemoryReactorClock(), "c")


# -- one connection as a backend ---------------------------------------------------------


def test_connection_is_an_attached_backend_both_ways() -> None:
    hub, device, _ = hubWithDevice()
    factory = BackendFactory(hub, "tcp:4555", ClientSet(4))
    proto, transport = connect(factory, 5555)
    assert verifyObject(IBackend, proto)
    assert proto.label == "127.0.0.1:5555"
    assert proto.stallable is True
    assert hub.backends == (proto,)
    hub.deviceOutput(b"boot log\r\n")
    assert transport.value() == b"boot log\r\n"
    proto.dataReceived(b"root\n")
    assert device.written == [b"root\n"]
    # a streaming producer is registered on the transport for flow control
    assert transport.producer is proto and transport.streaming


def test_transport_pause_blocks_hub_and_resume_unblocks() -> None:
    hub, device, _ = hubWithDevice()
    factory = BackendFactory(hub, "tcp:4555", ClientSet(4))
    proto, transport = connect(factory)
    assert transport.producer is proto
    proto.pauseProducing()  # what the transport does when its send buffer is full
    assert hub.paused and device.paused
    proto.resumeProducing()
    assert not hub.paused and not device.paused


def test_full_device_buffer_stops_reading_the_client_until_it_drains() -> None:
    hub, device, _ = hubWithDevice()
    factory = BackendFactory(hub, "tcp:4555", ClientSet(4))
    proto, transport = connect(factory)
    other, otherTransport = connect(factory, 40001)
    assert verifyObject(IPausableInput, proto)
    producer = hub.inputProducer(device)
    producer.pauseProducing()  # the device's write buffer is full
    assert transport.producerState == "paused" and otherTransport.producerState == "paused"
    proto.dataReceived(b"already read")  # in flight when the pause came: still written
    assert device.written == [b"already read"]
    producer.resumeProducing()
    assert transport.producerState == "producing"
    assert otherTransport.producerState == "producing"
    # the output direction is separate: a full client buffer still pauses the device
    proto.pauseProducing()
    assert device.paused and transport.producerState == "producing"


def test_stalled_aborts_the_connection() -> None:
    hub, device, clock = hubWithDevice()
    factory = BackendFactory(hub, "tcp:4555", ClientSet(4))
    proto, transport = connect(factory)
    proto.pauseProducing()  # as the transport does
    clock.advance(5)  # the hub's stall timeout
    assert transport.disconnected
    assert proto not in hub.backends
    assert not device.paused
    proto.connectionLost(None)  # the abort completes later; must not break anything
    assert hub.backends == ()


def test_disconnect_detaches() -> None:
    hub, _, _ = hubWithDevice()
    clients = ClientSet(4)
    factory = BackendFactory(hub, "tcp:4555", clients)
    proto, _ = connect(factory)
    proto.connectionLost(None)
    assert hub.backends == ()
    assert clients.members == set()


def test_max_clients_refuses_the_extra_connection_then_admits_again() -> None:
    hub, device, _ = hubWithDevice()
    clients = ClientSet(2)
    factory = BackendFactory(hub, "tcp:4555", clients)
    (p1, t1), (p2, t2), (p3, t3) = (
        connect(factory, 1),
        connect(factory, 2),
        connect(factory, 3),
    )
    assert t3.disconnected and not t1.disconnecting and not t2.disconnecting
    assert hub.backends == (p1, p2)
    p3.dataReceived(b"sneaky")  # a refused client's bytes never reach the device
    p3.connectionLost(None)
    assert device.written == []
    hub.deviceOutput(b"x")
    assert t3.value() == b""
    p1.connectionLost(None)
    p4, t4 = connect(factory, 4)
    assert not t4.disconnecting and p4 in hub.backends


def test_server_service_applies_max_clients_per_endpoint() -> None:
    reactor = MemoryReactorClock()
    hub, _, _ = hubWithDevice(reactor)
    service = makeByteServerService("tcp:4555:interface=127.0.0.1", hub, reactor, 1, "sock0")
    [(port, factory, _backlog, interface)] = reactor.tcpServers
    assert (port, interface) == (4555, "127.0.0.1")
    _, ta = connect(factory, 1)
    _, tb = connect(factory, 2)
    assert not ta.disconnecting and tb.disconnected
    service.startService()
    service.stopService()
    assert ta.disconnected  # stopping closes the clients too


def test_peer_labels() -> None:
    from vncmux.sockets import peerLabel

    assert peerLabel(StringTransport(peerAddress=IPv6Address("TCP", "::1", 7)), "x") == "[::1]:7"
    label = peerLabel(StringTransport(peerAddress=UNIXAddress(None)), "unix:/tmp/s")
    assert label.startswith("unix:/tmp/s")


def test_client_service_connects_out_and_becomes_a_backend() -> None:
    reactor = MemoryReactorClock()
    hub, device, _ = hubWithDevice(reactor)
    service = makeByteClientService("tcp:host=127.0.0.1:port=4556", hub, reactor, "out0")
    service.startService()
    [(host, port, factory, _timeout, _bind)] = reactor.tcpClients
    assert (host, port) == ("127.0.0.1", 4556)
    proto: Any = factory.buildProtocol(IPv4Address("TCP", host, port))
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
    proto.makeConnection(transport)
    hub.deviceOutput(b"out")
    assert transport.value() == b"out"
    proto.dataReceived(b"in")
    assert device.written == [b"in"]
    service.stopService()


# -- log file ----------------------------------------------------------------------------


def test_log_file_appends_every_byte_private(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(b"old\n")
    path.chmod(0o600)
    hub, _, _ = hubWithDevice()
    service = makeLogFileService(str(path), hub)
    service.startService()
    backend = hub.backends[0]
    assert verifyObject(IBackend, backend) and backend.stallable is False
    payload = bytes(range(256)) * 1000
    hub.deviceOutput(payload)
    hub.deviceOutput(b"tail")
    assert path.read_bytes() == b"old\n" + payload + b"tail"
    service.stopService()
    assert hub.backends == ()


def test_new_log_file_is_mode_600(tmp_path: Path) -> None:
    path = tmp_path / "new.log"
    LogFileBackend(str(path)).close()
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_unopenable_log_file_is_config_error(tmp_path: Path) -> None:
    hub, _, _ = hubWithDevice()
    with pytest.raises(ConfigError, match="cannot open log file .*no such file or directory"):
        makeLogFileService(str(tmp_path / "missing-dir" / "x.log"), hub)


# -- pty ---------------------------------------------------------------------------------


class ReadersClock(Clock):
    """A Clock that also records addReader/removeReader, for the pty backend."""

    def __init__(self) -> None:
        super().__init__()
        self.readers: set[Any] = set()

    def addReader(self, reader: Any) -> None:
        self.readers.add(reader)

    def removeReader(self, reader: Any) -> None:
        self.readers.discard(reader)


def readAll(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk


def test_pty_backend_drops_without_reader_then_carries_both_ways() -> None:
    clock = ReadersClock()
    hub, device, _ = hubWithDevice(clock)
    service = makePtyService(hub, clock, label="serial0")
    backend: PtyBackend = service.backend  # type: ignore[attr-defined]
    assert backend.slavePath.startswith("/dev/pts/")
    service.startService()
    assert not backend.connected and clock.readers == set()
    hub.deviceOutput(b"nobody")  # must neither block nor pause
    assert backend.dropped == 6 and not hub.paused

    slave = os.open(backend.slavePath, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        clock.advance(backend.pollInterval)
        assert backend.connected and clock.readers == {backend}
        hub.deviceOutput(b"login: ")
        assert readAll(slave) == b"login: "  # not the dropped bytes: no replay
        os.write(slave, b"root\n")
        backend.doRead()
        assert device.written == [b"root\n"]  # raw mode: no echo, no CR/LF rewriting
    finally:
        os.close(slave)
    backend.doRead()  # EIO now that the last reader closed
    assert not backend.connected and clock.readers == set()
    hub.deviceOutput(b"gone")
    assert backend.dropped == 10
    clock.advance(backend.pollInterval)
    assert not backend.connected  # still nobody
    service.stopService()
    assert hub.backends == ()
    assert clock.getDelayedCalls() == []


def test_pty_backend_input_pauses_while_the_device_is_full() -> None:
    clock = ReadersClock()
    hub, device, _ = hubWithDevice(clock)
    service = makePtyService(hub, clock, label="serial0")
    backend: PtyBackend = service.backend  # type: ignore[attr-defined]
    assert verifyObject(IPausableInput, backend)
    service.startService()
    producer = hub.inputProducer(device)
    producer.pauseProducing()  # before anyone attached: remembered
    slave = os.open(backend.slavePath, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        clock.advance(backend.pollInterval)
        assert backend.connected and clock.readers == set()  # not read while paused
        producer.resumeProducing()
        assert clock.readers == {backend}
        producer.pauseProducing()
        assert clock.readers == set()
        producer.resumeProducing()
        os.write(slave, b"ls\n")
        backend.doRead()
        assert device.written == [b"ls\n"]
    finally:
        os.close(slave)
    service.stopService()


def test_pty_backend_drops_when_reader_is_slow_without_pausing() -> None:
    clock = ReadersClock()
    hub, _, _ = hubWithDevice(clock)
    backend = PtyBackend(hub, clock)
    backend.start()
    slave = os.open(backend.slavePath, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        clock.advance(backend.pollInterval)
        assert backend.connected
        total = 0
        for _ in range(100):  # 6.4 MB; the pty buffer holds far less
            hub.deviceOutput(b"y" * 65536)
            total += 65536
        assert not hub.paused
        assert backend.dropped > 0
        got = readAll(slave)
        assert len(got) + backend.dropped == total
        assert set(got) <= {ord("y")}
    finally:
        os.close(slave)
        backend.stop()


def test_pty_write_error_other_than_eagain_means_disconnected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = ReadersClock()
    hub, _, _ = hubWithDevice(clock)
    backend = PtyBackend(hub, clock)
    backend.connected = True

    def failing(fd: int, data: bytes) -> int:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "write", failing)
    backend.write(b"abc")
    monkeypatch.undo()
    assert not backend.connected and backend.dropped == 3
    backend.stop()
