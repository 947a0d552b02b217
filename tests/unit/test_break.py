"""Serial BREAK: the hub's one entry (who may, what is logged and audited) and what each
kind of device does with it, with fakes for pyserial, the reactor and the child."""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from typing import Any

import pytest
from twisted.internet.testing import Clock, MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs, formatEvent
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.support.fakes import FakeDevice
from vncmux.devices import ExecDevice, SerialDevice, StreamDevice
from vncmux.devices_net import Rfc2217Device
from vncmux.events import API, BREAK, TELNET, VNC, Client, EventRecorder
from vncmux.hub import Hub
from vncmux.interfaces import BreakUnsupported, IDevice
from vncmux.specs import DeviceSpec
from vncmux.ttyline import TtyLine

FULL = Client.of(VNC, "10.0.0.1:5000")
OTHER = Client.of(TELNET, "10.0.0.2:6000")


def hubWith(device: Any = None) -> tuple[Hub, EventRecorder]:
    hub = Hub(Clock(), breakDuration=0.3)
    recorder = EventRecorder()
    hub.events.subscribe(recorder)
    if device is not None:
        hub.deviceConnected(device, "up")
    return hub, recorder


def messages(logs: Sequence[dict[str, Any]]) -> str:
    return "\n".join(formatEvent(e) for e in logs)


# -- the hub -------------------------------------------------------------------------------


def test_a_break_reaches_the_device_with_the_configured_duration_logged_and_audited() -> None:
    device = FakeDevice()
    hub, recorder = hubWith(device)
    with capturedLogs() as logs:
        done = hub.sendBreak(FULL, how="Ctrl+Alt+Break")
    assert done == "break of 0.3 s" and device.breaks == [0.3] and hub.breaks == 1
    assert "BREAK from vnc 10.0.0.1:5000 (Ctrl+Alt+Break) to fake0" in messages(logs)
    event = recorder.events[-1]
    assert (event.name, event.client, event.detail) == (BREAK, FULL, "break of 0.3 s")


def test_a_duration_given_with_the_request_wins() -> None:
    device = FakeDevice()
    hub, _ = hubWith(device)
    hub.sendBreak(FULL, 1.5)
    assert device.breaks == [1.5]


@pytest.mark.parametrize("why", ["view-only", "down", "raw socket", "keyboard"])
def test_a_refused_break_is_logged_and_audited_and_reaches_nothing(why: str) -> None:
    device = FakeDevice()
    client = FULL
    if why == "raw socket":
        device = StreamDevice("unix:/tmp/g.sock", lambda d: None, lambda d, w: None)  # type: ignore[assignment]
    hub, recorder = hubWith(None if why == "down" else device)
    if why == "view-only":
        client = Client.of(VNC, "10.0.0.1:5000", view_only=True)
    if why == "keyboard":
        hub.keyboard.configure(exclusive=True, idle=30)
        assert hub.keyboard.allow(OTHER, 1)  # the other client holds the keyboard
    with capturedLogs() as logs:
        assert hub.sendBreak(client) is None
    assert "refused" in messages(logs)
    assert recorder.events[-1].name == BREAK and recorder.events[-1].detail.startswith("refused")
    if why != "raw socket":
        assert device.breaks == []


# -- tty: a real break, timed by the reactor -----------------------------------------------


class FakePort:
    """pyserial's Serial as far as SerialDevice uses it: a descriptor and break_condition."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.breaks: list[bool] = []

    @property
    def break_condition(self) -> bool:
        return bool(self.breaks and self.breaks[-1])

    @break_condition.setter
    def break_condition(self, on: bool) -> None:
        self.breaks.append(on)

    def close(self) -> None:
        pass


@pytest.fixture
def ptyPair() -> Any:
    master, slave = os.openpty()
    yield master, slave
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


def test_a_tty_break_holds_the_line_for_its_duration_and_input_waits(ptyPair: Any) -> None:
    master, slave = ptyPair
    os.set_blocking(slave, False)
    reactor = MemoryReactorClock()
    port = FakePort(slave)
    device = SerialDevice(port, reactor, "/dev/ttyFAKE", lambda d: None, lambda d, w: None)  # type: ignore[arg-type]
    assert verifyObject(IDevice, device) and isinstance(device.line, TtyLine)
    assert device.sendBreak(0.25) == "serial break of 0.25 s"
    assert port.breaks == [True]
    device.write(b"h")  # SysRq's letter, typed during the break
    device.doWrite()
    assert not _readable(master)
    reactor.advance(0.25)
    assert port.breaks == [True, False]
    device.doWrite()
    assert os.read(master, 10) == b"h"


def test_a_tty_break_waits_for_what_vncmux_queued_before_it(ptyPair: Any) -> None:
    master, slave = ptyPair
    reactor = MemoryReactorClock()
    port = FakePort(slave)
    device = SerialDevice(port, reactor, "/dev/ttyFAKE", lambda d: None, lambda d, w: None)  # type: ignore[arg-type]
    device.write(b"queued")
    device.sendBreak(0.1)
    assert port.breaks == []  # still in vncmux's buffer
    device.doWrite()
    assert port.breaks == [True] and os.read(master, 10) == b"queued"


def _readable(fd: int) -> bool:
    import select

    return bool(select.select([fd], [], [], 0)[0])


# -- exec: SIGINT to the foreground process group; raw sockets refuse ----------------------


def test_exec_break_is_sigint_to_the_foreground_process_group(monkeypatch: Any) -> None:
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "tcgetpgrp", lambda fd: 4242)
    monkeypatch.setattr(os, "killpg", lambda pgid, sig: sent.append((pgid, sig)))
    device = ExecDevice("exec:sh", None, lambda d: None, lambda d, w: None)
    transport = StringTransport()
    transport.fileno = lambda: 7  # type: ignore[attr-defined]
    device.transport = transport
    assert "SIGINT to process group 4242" in device.sendBreak(0.25)
    assert sent == [(4242, signal.SIGINT)]
    device.running = False
    with pytest.raises(BreakUnsupported):
        device.sendBreak(0.25)


def test_a_raw_socket_device_cannot_carry_a_break() -> None:
    device = StreamDevice("tcp:h:1", lambda d: None, lambda d, w: None)
    with pytest.raises(BreakUnsupported, match="raw socket"):
        device.sendBreak(0.25)


# -- rfc2217:// devices: pyserial's send_break, in order with the writes -------------------


class ThreadReactor:
    """callFromThread collected for the test's thread to run."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def callFromThread(self, f: Any, *a: Any) -> None:
        self.calls.append((f, a))


class FakeRfc2217Port:
    def __init__(self) -> None:
        self.log: list[Any] = []
        self.in_waiting = 0

    def read(self, size: int) -> bytes:
        import time

        time.sleep(0.01)
        return b""

    def write(self, data: bytes) -> int:
        self.log.append(data)
        return len(data)

    def send_break(self, duration: float) -> None:
        self.log.append(("break", duration))

    def close(self) -> None:
        self.log.append("closed")


def test_an_rfc2217_device_breaks_in_order_with_its_writes() -> None:
    from tests.support.waiting import wait_until

    port = FakeRfc2217Port()
    device = Rfc2217Device(
        port, ThreadReactor(), "rfc2217://h:1", lambda d: None, lambda d, w: None
    )
    assert verifyObject(IDevice, device)
    device.write(b"a")
    assert device.sendBreak(0.2) == "RFC 2217 break of 0.2 s"
    device.write(b"h")
    wait_until(lambda: len(port.log) >= 3, 5, lambda: f"port saw {port.log}")
    assert port.log[:3] == [b"a", ("break", 0.2), b"h"]
    device._stopping = True  # the threads end; the port is closed by close() in real use
    device._writes.put(None)


def test_serial_spec_kinds_for_the_network_devices() -> None:
    assert DeviceSpec(kind="telnet", host="h", port=1).label == "telnet:h:1"
    assert DeviceSpec(kind="rfc2217", host="::1", port=2).label == "rfc2217://[::1]:2"


# -- the sources: a VNC key combination and the API -----------------------------------------


def test_ctrl_alt_pause_in_a_viewer_sends_a_break_and_nothing_to_the_device() -> None:
    from tests.support.viewer_setup import Setup

    s = Setup()
    _viewer, session = s.attach()
    for keysym in (0xFFE3, 0xFFE9):  # Control_L, Alt_L
        session.key(keysym, True)
    session.key(0xFF13, True)  # Pause
    session.key(0xFF13, False)
    assert s.device.breaks == [0.25] and s.typed() == b""
    session.key(0xFF6B, True)  # Break (what Ctrl+Pause gives on X11)
    assert s.device.breaks == [0.25, 0.25]


def test_a_view_only_viewer_cannot_send_break() -> None:
    from tests.support.viewer_setup import Setup

    s = Setup()
    _viewer, session = s.attach(view_only=True)
    for keysym in (0xFFE3, 0xFFE9, 0xFF13):
        session.key(keysym, True)
    assert s.device.breaks == []


def test_post_break_sends_one_and_the_view_token_may_not() -> None:
    from tests.support.api_setup import VIEW, Setup

    s = Setup()
    answer = s.call("POST", "/api/v1/break?duration=0.5")
    assert answer.responseCode == 200 and answer.json() == {"sent": "break of 0.5 s"}
    assert s.device.breaks == [0.5]
    assert s.call("POST", "/api/v1/break", auth=VIEW).responseCode == 403
    assert s.call("POST", "/api/v1/break?duration=nan").responseCode == 400
    s.hub.deviceLost("gone")
    assert s.call("POST", "/api/v1/break").responseCode == 503
    assert s.device.breaks == [0.5]


@implementer(IDevice)
class NoBreakDevice(FakeDevice):
    def sendBreak(self, duration: float) -> str:
        raise BreakUnsupported("cannot")


def test_post_break_to_a_device_that_refuses_is_409() -> None:
    from tests.support.api_setup import Setup

    s = Setup()
    s.hub.deviceConnected(NoBreakDevice())
    assert s.call("POST", "/api/v1/break").responseCode == 409
    assert API == "api"


class BlockingPort(FakeRfc2217Port):
    """Writes wait for the test to let them through; reads fail once told to."""

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.go = threading.Event()
        self.fail = threading.Event()

    def write(self, data: bytes) -> int:
        self.go.wait(10)
        return super().write(data)

    def read(self, size: int) -> bytes:
        if self.fail.is_set():
            raise OSError(104, "connection reset")
        return super().read(size)


class Producer:
    def __init__(self) -> None:
        self.paused = 0
        self.resumed = 0

    def pauseProducing(self) -> None:
        self.paused += 1

    def resumeProducing(self) -> None:
        self.resumed += 1


def test_an_rfc2217_device_throttles_input_and_reports_its_loss() -> None:
    from tests.support.waiting import wait_until
    from vncmux.devices_net import HIGH_WATER

    port = BlockingPort()
    reactor = ThreadReactor()
    gone: list[str] = []
    device = Rfc2217Device(
        port, reactor, "rfc2217://h:1", lambda d: None, lambda d, w: gone.append(w)
    )
    producer = Producer()
    device.throttleInput(producer)  # type: ignore[arg-type]
    device.write(b"x" * (HIGH_WATER + 1))
    assert producer.paused == 1  # the hub's sources wait; nothing is dropped
    port.go.set()

    def drained() -> bool:
        for f, a in reactor.calls:
            f(*a)
        reactor.calls.clear()
        return producer.resumed == 1

    wait_until(drained, 5, "the writer never drained")
    port.fail.set()

    def lost() -> bool:
        drained_calls = list(reactor.calls)
        reactor.calls.clear()
        for f, a in drained_calls:
            f(*a)
        return bool(gone)

    wait_until(lost, 5, "the loss was never reported")
    assert "connection reset" in gone[0]
    wait_until(lambda: "closed" in port.log, 5, "the port was not closed")
