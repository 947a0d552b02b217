"""Unit tests of vncmux.devices: backoff, the reopen loop, socket/tty/exec devices.

Time is a Clock; sockets are MemoryReactorClock + StringTransport; ttys are real ptys
(os.openpty) whose descriptors we drive by calling doRead ourselves.
"""

from __future__ import annotations

import errno
import fcntl
import grp
import os
import struct
import termios
from pathlib import Path
from typing import Any

import pytest
import serial
from twisted.internet import main
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import (
    ConnectionRefusedError,
    ProcessDone,
    ProcessTerminated,
)
from twisted.internet.testing import Clock, MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from zope.interface import implementer
from zope.interface.verify import verifyObject

from vncmux import devices
from vncmux.config import ConfigError, DeviceSpec, SerialSettings
from vncmux.devices import (
    Backoff,
    DeviceService,
    ExecDevice,
    ExecDeviceService,
    SerialDevice,
    SerialDeviceService,
    StreamDevice,
    execEnvironment,
    makeDeviceService,
    openSerial,
)
from vncmux.hub import Hub
from vncmux.interfaces import IBackend, IDevice, IPausableInput
from vncmux.reopen import cannotWait, failureHint


@implementer(IBackend)
class Recorder:
    label = "recorder"
    stallable = False

    def __init__(self) -> None:
        self.data = b""
        self.states: list[tuple[bool, str]] = []

    def write(self, data: bytes) -> None:
        self.data += data

    def deviceStateChanged(self, up: bool, description: str) -> None:
        self.states.append((up, description))

    def stalled(self) -> None:
        pass


def hubWith(clock: Any) -> tuple[Hub, Recorder]:
    hub = Hub(clock)
    rec = Recorder()
    hub.attach(rec)
    return hub, rec


def messages(events: Any) -> list[str]:
    return [formatEvent(e) for e in events]


# -- backoff -----------------------------------------------------------------------------


def test_backoff_doubles_to_the_cap_and_resets() -> None:
    b = Backoff(initial=0.5, maximum=10.0, factor=2.0)
    assert [b.next() for _ in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    b.reset()
    assert b.next() == 0.5


# -- the reopen loop, with a scripted opener ---------------------------------------------


@implementer(IDevice)
class ScriptedDevice:
    def __init__(self, label: str) -> None:
        self.label = label
        self.closed = False
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def throttleInput(self, producer: Any) -> None:
        self.producer = producer

    def sendBreak(self, duration: float) -> str:
        return "break"

    def close(self) -> Deferred[None]:
        self.closed = True
        return succeed(None)


class ScriptedService(DeviceService):
    """openDevice answers from a script: an exception to fail, else a fresh device."""

    def __init__(self, hub: Hub, clock: Clock, script: list[BaseException | None]) -> None:
        super().__init__(hub, clock, "scripted:0")
        self.script = script
        self.opened: list[ScriptedDevice] = []

    def openDevice(self) -> Deferred[Any]:
        step = self.script.pop(0) if self.script else None
        if step is not None:
            return fail(step)
        dev = ScriptedDevice(self.label)
        self.opened.append(dev)
        return succeed(dev)


def test_failed_opens_are_retried_with_backoff_and_logged() -> None:
    clock = Clock()
    hub, rec = hubWith(clock)
    refused = ConnectionRefusedError()
    service = ScriptedService(hub, clock, [refused, refused, refused, None])
    with capturedLogs() as events:
        service.startService()
        assert service.attempts == 1 and hub.device is None
        for delay in (0.5, 1.0):
            assert [c.getTime() - clock.seconds() for c in clock.getDelayedCalls()] == [delay]
            clock.advance(delay)
        clock.advance(2.0)
    assert service.attempts == 4
    assert hub.device is service.opened[0]
    text = messages(events)
    assert "waiting for scripted:0: connection refused, retrying in 0.5s" in text
    assert "waiting for scripted:0: connection refused, retrying in 2.0s" in text
    assert any("up again after 3 failed" in m for m in text)
    assert rec.states[-1] == (True, "scripted:0 connected")


def test_device_lost_is_reported_and_reopened() -> None:
    clock = Clock()
    hub, rec = hubWith(clock)
    service = ScriptedService(hub, clock, [])
    service.startService()
    first = service.opened[0]
    hub.input(b"a", None)
    assert first.written == [b"a"]
    service.gone(first, "end of file")
    assert hub.device is None
    assert rec.states[-1] == (False, "scripted:0: end of file")
    hub.input(b"dropped", None)
    clock.advance(0.5)
    second = service.opened[1]
    assert hub.device is second and second.written == []
    # a stale report from the old device changes nothing
    service.gone(first, "late")
    assert hub.device is second


def test_backoff_keeps_growing_for_a_device_that_dies_at_once_and_resets_when_stable() -> None:
    clock = Clock()
    hub, _ = hubWith(clock)
    service = ScriptedService(hub, clock, [])
    service.startService()
    delays = []
    for _ in range(3):
        service.gone(service.opened[-1], "exited")
        [call] = clock.getDelayedCalls()
        delays.append(call.getTime() - clock.seconds())
        clock.advance(delays[-1])
    assert delays == [0.5, 1.0, 2.0]
    clock.advance(service.stableAfter)  # it stayed up: the next loss starts over
    service.gone(service.opened[-1], "exited")
    [call] = clock.getDelayedCalls()
    assert call.getTime() - clock.seconds() == 0.5


def test_stop_cancels_retry_and_closes_device() -> None:
    clock = Clock()
    hub, rec = hubWith(clock)
    service = ScriptedService(hub, clock, [OSError(2, "nope")])
    service.startService()
    assert len(clock.getDelayedCalls()) == 1
    service.stopService()
    assert clock.getDelayedCalls() == []

    service2 = ScriptedService(hub, clock, [])
    service2.startService()
    dev = service2.opened[0]
    service2.stopService()
    assert dev.closed and hub.device is None
    assert rec.states[-1] == (False, "scripted:0 closed")
    service2.gone(dev, "closed")  # the close's own report: no reopen
    assert clock.getDelayedCalls() == []


# -- unix / tcp devices --------------------------------------------------------------------


def test_unix_device_waits_for_listener_then_carries_bytes_and_reconnects() -> None:
    reactor = MemoryReactorClock()
    hub, rec = hubWith(reactor)
    service = makeDeviceService(DeviceSpec(kind="unix", path="/tmp/g.sock"), hub, reactor, 80, 24)
    with capturedLogs() as events:
        service.startService()
        [(path, factory, _t, _c)] = reactor.unixClients
        assert path == "/tmp/g.sock"
        factory.clientConnectionFailed(reactor.connectors[0], Failure(ConnectionRefusedError()))
    assert "waiting for unix:/tmp/g.sock: connection refused, retrying in 0.5s" in messages(events)
    reactor.advance(0.5)
    assert len(reactor.unixClients) == 2
    factory = reactor.unixClients[1][1]
    proto = factory.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    device = hub.device
    assert isinstance(device, StreamDevice) and verifyObject(IDevice, device)
    device.dataReceived(b"guest says hi")
    assert rec.data == b"guest says hi"
    hub.input(b"ls\n", None)
    assert transport.value() == b"ls\n"
    device.pauseProducing()
    assert transport.producerState == "paused"
    device.resumeProducing()
    assert transport.producerState == "producing"
    # the socket's write buffer throttles the hub's input sources
    assert transport.streaming is True
    transport.producer.pauseProducing()
    assert hub.inputFull
    transport.producer.resumeProducing()
    assert not hub.inputFull
    proto.connectionLost(Failure(main.CONNECTION_DONE))
    assert hub.device is None and rec.states[-1][0] is False
    # it had not been up for stableAfter seconds: the backoff goes on from where it was
    reactor.advance(0.99)
    assert len(reactor.unixClients) == 2
    reactor.advance(0.01)
    assert len(reactor.unixClients) == 3


def test_tcp_device_connects_to_host_and_port() -> None:
    reactor = MemoryReactorClock()
    hub, _ = hubWith(reactor)
    service = makeDeviceService(
        DeviceSpec(kind="tcp", host="127.0.0.1", port=4321), hub, reactor, 80, 24
    )
    service.startService()
    reactor.advance(0)  # HostnameEndpoint resolves through the reactor
    assert [(h, p) for h, p, *_ in reactor.tcpClients] == [("127.0.0.1", 4321)]
    service.stopService()


# -- tty devices (a real pty slave) --------------------------------------------------------


class ReadersClock(MemoryReactorClock):
    """MemoryReactorClock records readers/writers as sets; doRead is ours to call."""


def claimedPtyPaths() -> set[str]:
    """pty paths named on other processes' command lines (a leftover vncmux retrying
    ``--device /dev/pts/N`` would grab and lock a recycled pty with that number)."""
    claimed: set[str] = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        claimed.update(a.decode(errors="replace") for a in args if a.startswith(b"/dev/pts/"))
    return claimed


class Pty:
    """A pty pair whose fds are closed exactly once (by the test or at teardown)."""

    def __init__(self) -> None:
        rejected: list[tuple[int, int]] = []
        while True:
            self.master, self.slave = os.openpty()
            self.path = os.ttyname(self.slave)
            if self.path not in claimedPtyPaths() or len(rejected) > 16:
                break
            rejected.append((self.master, self.slave))
        for fds in rejected:
            for fd in fds:
                os.close(fd)
        os.set_blocking(self.master, False)  # a missing byte fails the test, no hang
        self.open = {self.master, self.slave}

    def close(self, fd: int) -> None:
        if fd in self.open:
            self.open.discard(fd)
            os.close(fd)


@pytest.fixture
def pty() -> Any:
    p = Pty()
    yield p
    for fd in list(p.open):
        p.close(fd)


def test_tty_device_reads_writes_and_reports_unplug(pty: Any) -> None:
    master, path = pty.master, pty.path
    reactor = ReadersClock()
    hub, rec = hubWith(reactor)
    service = makeDeviceService(DeviceSpec(kind="tty", path=path), hub, reactor, 80, 24)
    service.startService()
    device = hub.device
    assert isinstance(device, SerialDevice) and verifyObject(IDevice, device)
    assert device in reactor.getReaders()
    os.write(master, b"U-Boot 2024.01\r\n")
    device.doRead()
    assert rec.data == b"U-Boot 2024.01\r\n"
    hub.input(b"boot\r", None)
    assert device in reactor.getWriters()  # buffered until the reactor says writable
    device.doWrite()
    assert os.read(master, 100) == b"boot\r"
    device.pauseProducing()
    assert device not in reactor.getReaders()
    device.resumeProducing()
    assert device in reactor.getReaders()
    # a second exclusive opener (minicom-like) is refused
    with pytest.raises(serial.SerialException, match="exclusively lock"):
        openSerial(DeviceSpec(kind="tty", path=path))
    # unplug: the master side goes away
    pty.close(pty.master)
    pty.close(pty.slave)
    why = device.doRead()
    assert why is not None  # EIO or EOF: the reactor would now call connectionLost
    with capturedLogs() as events:
        device.connectionLost(Failure(why))
    assert hub.device is None
    assert rec.states[-1][0] is False
    assert any("lost" in m and "reopening in 0.5s" in m for m in messages(events))
    assert device.fileno() == -1
    with capturedLogs() as events:
        reactor.advance(0.5)  # the pty is gone for good: waiting, with backoff
    assert any(
        m.startswith(f"waiting for {path}: ") and "retrying in 1.0s" in m for m in messages(events)
    )
    service.stopService()


def test_tty_settings_are_applied(pty: Any) -> None:
    path = pty.path
    settings = SerialSettings(baud=9600, bytesize=7, parity="E", stopbits=2, xonxoff=True)
    port = openSerial(DeviceSpec(kind="tty", path=path, serial=settings))
    try:
        iflag, _o, cflag, _l, ispeed, ospeed, cc = termios.tcgetattr(port.fd)
        assert ispeed == ospeed == termios.B9600
        # Linux's pty driver forces CS8 without parity, so those two are checked on the port
        assert (port.bytesize, port.parity) == (7, "E")
        assert cflag & termios.CSTOPB
        assert iflag & termios.IXON
        assert cc[termios.VMIN] == 1  # a 0-byte read means hang-up, not 'no data'
    finally:
        port.close()


def test_missing_tty_is_retried(tmp_path: Any) -> None:
    clock = MemoryReactorClock()
    hub, _ = hubWith(clock)
    service = makeDeviceService(
        DeviceSpec(kind="tty", path=str(tmp_path / "ttyUSB9")), hub, clock, 80, 24
    )
    with capturedLogs() as events:
        service.startService()
    assert hub.device is None
    assert any("no such file or directory, retrying in 0.5s" in m for m in messages(events))
    service.stopService()
    assert clock.getDelayedCalls() == []


# -- exec devices --------------------------------------------------------------------------


class FakeProcessTransport:
    def __init__(self, master: int) -> None:
        self.master = master
        self.pid = 4242
        self.written = b""
        self.signals: list[str] = []

    def fileno(self) -> int:
        return self.master

    def write(self, data: bytes) -> None:
        self.written += data

    def signalProcess(self, name: str) -> None:
        self.signals.append(name)

    def loseConnection(self) -> None:
        pass

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.producer = producer
        self.streaming = streaming

    def unregisterProducer(self) -> None:
        self.producer = None


class SpawnRecorder(MemoryReactorClock):
    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[dict[str, Any]] = []

    def spawnProcess(
        self,
        proto: Any,
        executable: str,
        args: list[str],
        env: Any = None,
        usePTY: Any = None,
        **kw: Any,
    ) -> Any:
        master, slave, ttyname = usePTY
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\0" * 8))
        self.spawned.append(
            {
                "executable": executable,
                "args": args,
                "env": env,
                "size": (cols, rows),
                "tty": ttyname,
            }
        )
        os.close(slave)
        transport = FakeProcessTransport(master)
        proto.makeConnection(transport)
        return transport


def winsize(fd: int) -> tuple[int, int]:
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return cols, rows


def test_exec_spawns_in_sized_pty_with_term_and_respawns() -> None:
    reactor = SpawnRecorder()
    hub, rec = hubWith(reactor)
    spec = DeviceSpec(kind="exec", command=("/bin/sh", "-l"))
    service = makeDeviceService(spec, hub, reactor, 132, 43)
    assert isinstance(service, ExecDeviceService)
    service.startService()
    [spawn] = reactor.spawned
    assert spawn["executable"] == "/bin/sh" and spawn["args"] == ["/bin/sh", "-l"]
    assert spawn["env"]["TERM"] == "xterm-256color"
    assert spawn["size"] == (132, 43)  # set before the child could look
    device = hub.device
    assert isinstance(device, ExecDevice) and verifyObject(IDevice, device)
    device.childDataReceived(1, b"$ ")
    assert rec.data == b"$ "
    hub.input(b"exit\n", None)
    assert device.transport.written == b"exit\n"
    assert device.transport.streaming is True  # the pty's write buffer throttles input
    device.transport.producer.pauseProducing()
    assert hub.inputFull
    device.transport.producer.resumeProducing()
    service.resize(100, 30)
    assert winsize(device.transport.master) == (100, 30)
    device.processEnded(Failure(ProcessTerminated(exitCode=3)))
    assert hub.device is None
    assert rec.states[-1] == (False, "exec:/bin/sh -l: command exited with status 3")
    os.close(device.transport.master)
    reactor.advance(0.5)
    assert len(reactor.spawned) == 2
    assert reactor.spawned[1]["size"] == (
        100,
        30,
    )  # the new child gets the current size
    second = hub.device
    assert isinstance(second, ExecDevice)
    stopped = service.stopService()
    assert second.transport.signals == ["HUP"]
    results: list[Any] = []
    stopped.addBoth(results.append)
    assert results == []  # waits for the child
    reactor.advance(ExecDevice.killAfter)
    assert second.transport.signals == ["HUP", "KILL"]
    second.processEnded(Failure(ProcessDone(0)))
    assert results == [None]
    os.close(second.transport.master)
    assert reactor.getDelayedCalls() == []


def test_exec_environment_keeps_user_env() -> None:
    env = execEnvironment({"HOME": "/root", "TERM": "dumb"})
    assert env == {"HOME": "/root", "TERM": "xterm-256color"}


# -- input flow control on a real tty ----------------------------------------------------


@implementer(IBackend, IPausableInput)
class PausableRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.inputPaused = False

    def pauseInput(self) -> None:
        self.inputPaused = True

    def resumeInput(self) -> None:
        self.inputPaused = False


def test_tty_write_buffer_pauses_input_sources_until_it_drains(pty: Any) -> None:
    reactor = ReadersClock()
    hub = Hub(reactor)
    client = PausableRecorder()
    hub.attach(client)
    service = makeDeviceService(DeviceSpec(kind="tty", path=pty.path), hub, reactor, 80, 24)
    service.startService()
    device = hub.device
    assert isinstance(device, SerialDevice)
    hub.input(b"a" * 40_000, client)
    assert not client.inputPaused  # under the transport's 64 KiB bound
    hub.input(b"b" * 40_000, client)
    assert client.inputPaused and hub.inputFull
    received = b""
    while device in reactor.getWriters():  # the board reads; the buffer drains
        device.doWrite()
        try:
            received += os.read(pty.master, 65536)
        except BlockingIOError:
            pass
    assert not client.inputPaused and not hub.inputFull
    while len(received) < 80_000:
        received += os.read(pty.master, 65536)
    assert received == b"a" * 40_000 + b"b" * 40_000
    service.stopService()


# -- devices that cannot be opened -----------------------------------------------------------


class RefusedService(ScriptedService):
    """probeOpen fails as the real opener would."""

    def __init__(self, hub: Hub, clock: Clock, error: BaseException, wait: bool) -> None:
        super().__init__(hub, clock, [error])
        self.error = error
        self.wait = wait

    def probeOpen(self) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (OSError(errno.EACCES, "Permission denied"), "permission denied"),
        (OSError(errno.ENOTTY, "Inappropriate ioctl"), "not a tty"),
        (OSError(errno.EBUSY, "Device or resource busy"), "busy"),
        (OSError(errno.EISDIR, "Is a directory"), "is a directory"),
    ],
)
def test_what_waiting_cannot_cure_is_an_error_at_start(error: OSError, words: str) -> None:
    clock = Clock()
    hub, _ = hubWith(clock)
    with pytest.raises(ConfigError, match=f"cannot open device scripted:0: {words}"):
        RefusedService(hub, clock, error, wait=False).probe()
    # --wait-device: no error; the loop retries, saying why and what to do
    service = RefusedService(hub, clock, error, wait=True)
    service.probe()
    with capturedLogs() as events:
        service.startService()
    assert any(words in m and "retrying in 0.5s" in m for m in messages(events))
    service.stopService()


def test_what_waiting_may_cure_is_left_to_the_loop() -> None:
    clock = Clock()
    hub, _ = hubWith(clock)
    for error in (OSError(errno.ENOENT, "No such file"), ConnectionRefusedError()):
        RefusedService(hub, clock, error, wait=False).probe()  # no error


def test_tty_permission_denied_says_which_group(pty: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """We run as root, whom permission bits do not stop: the opener is injected."""

    def denied(spec: DeviceSpec) -> serial.Serial:
        raise serial.SerialException(
            errno.EACCES, f"could not open port {spec.path}: [Errno 13] Permission denied"
        )

    monkeypatch.setattr(devices, "openSerial", denied)
    group = grp.getgrgid(os.stat(pty.path).st_gid).gr_name  # 'tty' for a pty slave
    reactor = MemoryReactorClock()
    hub, _ = hubWith(reactor)
    with pytest.raises(ConfigError) as info:
        makeDeviceService(DeviceSpec(kind="tty", path=pty.path), hub, reactor, 80, 24)
    assert str(info.value) == (
        f"cannot open device {pty.path}: permission denied (add your user to the '{group}' "
        f"group that owns it (sudo usermod -aG {group} $USER, then log in again))"
    )
    spec = DeviceSpec(kind="tty", path=pty.path, wait=True)
    service = makeDeviceService(spec, hub, reactor, 80, 24)
    with capturedLogs() as events:
        service.startService()
    assert any(f"'{group}' group" in m for m in messages(events))
    service.stopService()


def test_a_char_device_that_is_not_a_tty_is_an_error_at_start() -> None:
    reactor = MemoryReactorClock()
    hub, _ = hubWith(reactor)
    with pytest.raises(ConfigError, match="cannot open device /dev/null: not a tty"):
        makeDeviceService(DeviceSpec(kind="tty", path="/dev/null"), hub, reactor, 80, 24)


def test_a_tty_locked_by_another_program_is_an_error_at_start(pty: Any) -> None:
    other = os.open(pty.path, os.O_RDWR | os.O_NOCTTY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # minicom has it
        reactor = MemoryReactorClock()
        hub, _ = hubWith(reactor)
        with pytest.raises(ConfigError, match="in use by another program.*--wait-device"):
            makeDeviceService(DeviceSpec(kind="tty", path=pty.path), hub, reactor, 80, 24)
    finally:
        os.close(other)


def test_the_probe_opened_tty_is_the_one_used(pty: Any) -> None:
    reactor = ReadersClock()
    hub, _ = hubWith(reactor)
    service = makeDeviceService(DeviceSpec(kind="tty", path=pty.path), hub, reactor, 80, 24)
    assert isinstance(service, SerialDeviceService)
    probed = service._probed
    assert probed is not None and probed.is_open
    service.startService()
    device = hub.device
    assert isinstance(device, SerialDevice) and device.port is probed
    service.stopService()
    # built and stopped without starting: the probed port is closed
    unused = makeDeviceService(DeviceSpec(kind="tty", path=pty.path), hub, reactor, 80, 24)
    assert isinstance(unused, SerialDeviceService)
    port = unused._probed
    unused.stopService()
    assert port is not None and not port.is_open


def test_unix_device_path_that_is_not_a_socket_is_an_error(tmp_path: Path) -> None:
    reactor = MemoryReactorClock()
    hub, _ = hubWith(reactor)
    plain = tmp_path / "not-a-socket"
    plain.write_text("")
    with pytest.raises(ConfigError, match="not a socket"):
        makeDeviceService(DeviceSpec(kind="unix", path=str(plain)), hub, reactor, 80, 24)
    # not there yet: QEMU may create it later
    makeDeviceService(DeviceSpec(kind="unix", path=str(tmp_path / "later")), hub, reactor, 80, 24)


def test_exec_of_a_missing_command_is_an_error_at_start_not_a_respawn_loop(
    tmp_path: Path,
) -> None:
    reactor = SpawnRecorder()
    hub, _ = hubWith(reactor)
    notExecutable = tmp_path / "script"
    notExecutable.write_text("echo hi\n")
    notExecutable.chmod(0o644)
    for command, words in [
        ("/nonexistent/vncmux-test", "command not found: /nonexistent/vncmux-test"),
        ("vncmux-no-such-command", "command not found: vncmux-no-such-command (not on PATH)"),
        (str(notExecutable), f"permission denied: {notExecutable} is not executable"),
    ]:
        spec = DeviceSpec(kind="exec", command=(command,))
        with pytest.raises(ConfigError) as info:
            makeDeviceService(spec, hub, reactor, 80, 24)
        assert str(info.value) == f"cannot run device exec:{command}: {words}"
    # --wait-device: retried with one clear line each time, never forked
    spec = DeviceSpec(kind="exec", command=("vncmux-no-such-command",), wait=True)
    service = makeDeviceService(spec, hub, reactor, 80, 24)
    with capturedLogs() as events:
        service.startService()
        reactor.advance(0.5)
    assert reactor.spawned == []
    assert (
        "waiting for exec:vncmux-no-such-command: command not found: vncmux-no-such-command "
        "(not on PATH), retrying in 1.0s" in messages(events)
    )
    service.stopService()


def test_failure_hints_say_what_to_do() -> None:
    busy = OSError(errno.EBUSY, "Device or resource busy")
    assert "--wait-device" in failureHint(busy)
    assert "--wait-device" not in failureHint(busy, waiting=True)  # already waiting
    assert "'dialout' group" in failureHint(OSError(errno.EACCES, "denied"), "dialout")
    assert failureHint(OSError(errno.ENOENT, "No such file")) == ""
    assert cannotWait(serial.SerialException(11, "Could not exclusively lock port /dev/x"))
    assert not cannotWait(OSError(errno.ENOENT, "No such file"))
