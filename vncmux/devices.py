"""The device side: open the one console device, feed the hub, reopen it with backoff.

``makeDeviceService`` returns a Twisted service that keeps one device open for as long as it
runs.  Four kinds of device, one shape each:

- ``tty``: a serial port (or any tty, e.g. a pty slave) opened with pyserial *exclusively*
  (flock + TIOCEXCL, so minicom cannot steal bytes) and read by a small reactor descriptor;
- ``unix`` / ``tcp``: a stream socket reached through a Twisted client endpoint
  (QEMU's ``-serial unix:PATH,server=on``);
- ``exec``: a command in a new pty whose window has the console's size, ``TERM`` set.
  Resizing later: ``ExecDeviceService.resize(cols, rows)`` (remembered for the next child
  too) or ``ExecDevice.resize(cols, rows)`` on the current ``hub.device``; the child gets
  SIGWINCH.  Other devices have no ``resize``: callers test with ``getattr``.

Whatever the kind, the life cycle is the same: an open attempt either yields an ``IDevice``
(handed to ``Hub.deviceConnected``) or fails (logged, retried after a growing delay); a device
that goes away (EOF, unplugged adapter, closed socket, child exit) is reported with
``Hub.deviceLost`` and reopened with the same backoff.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import termios
from collections.abc import Callable
from typing import Any, cast
from typing import Protocol as TypingProtocol

import serial
from twisted.application.service import IService, Service
from twisted.internet import abstract, main
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint
from twisted.internet.error import (
    ConnectionDone,
    ProcessDone,
    ProcessExitedAlready,
    ProcessTerminated,
)
from twisted.internet.protocol import Factory, ProcessProtocol, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from vncmux.config import DeviceSpec
from vncmux.hub import Hub
from vncmux.interfaces import IDevice

log = Logger()

READ_SIZE = 65536


# -- backoff -----------------------------------------------------------------------------


class Backoff:
    """Retry delays: ``initial``, then multiplied by ``factor`` up to ``maximum``.

    Pure arithmetic so the schedule is testable without a reactor.  ``reset`` starts again
    from ``initial`` (the service calls it once a device has proved stable).
    """

    def __init__(self, initial: float = 0.5, maximum: float = 10.0, factor: float = 2.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self._next = initial

    def next(self) -> float:
        """The delay to wait now; the following call returns a longer one (up to maximum)."""
        delay = self._next
        self._next = min(self._next * self.factor, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.initial


def describeFailure(reason: Failure | BaseException) -> str:
    """A short lower-case reason for logs: 'connection refused', 'no such file or directory'."""
    exc = reason.value if isinstance(reason, Failure) else reason
    osError = getattr(exc, "osError", None)
    if isinstance(exc, serial.SerialException) and exc.errno is not None:
        why = os.strerror(exc.errno).lower()
        if "exclusively lock" in str(exc):
            return f"in use by another program (exclusive lock: {why})"
        return why
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno).lower()
    if isinstance(osError, int):
        return os.strerror(osError).lower()
    name = type(exc).__name__
    if name == "ConnectionRefusedError":
        return "connection refused"
    if isinstance(exc, ConnectionDone):
        return "closed by the other side"
    text = str(exc).strip().rstrip(".")
    return text or name


# -- the common reopen loop --------------------------------------------------------------


class OpenDevice(TypingProtocol):
    """What an opener yields: an IDevice that can also be closed by us."""

    label: str

    def write(self, data: bytes) -> None: ...

    def pauseProducing(self) -> None: ...

    def resumeProducing(self) -> None: ...

    def close(self) -> Deferred[None]: ...


class DeviceService(Service):
    """Keeps one device open: open, report, reopen with backoff, close on stop.

    States: *idle* (not running), *opening* (an attempt in flight), *waiting* (a retry
    timer armed), *open* (``self.device`` set).  Subclasses only implement ``openDevice``,
    which returns (a Deferred of) an ``OpenDevice`` and arranges for ``gone(device, why)``
    to be called when that device goes away.

    The backoff is reset when a device that had been open for at least ``stableAfter``
    seconds goes away; one that dies right after opening (a command that exits at once,
    a server that accepts and closes) is retried at a growing interval, not every 0.5 s.
    """

    def __init__(
        self,
        hub: Hub,
        reactor: Any,
        label: str,
        backoff: Backoff | None = None,
        stableAfter: float = 5.0,
    ) -> None:
        self.hub = hub
        self.reactor = reactor
        self.label = label
        self.backoff = backoff if backoff is not None else Backoff()
        self.stableAfter = stableAfter
        self.device: OpenDevice | None = None
        self._openedAt = 0.0
        self._pending: Deferred[Any] | None = None
        self._timer: Any = None
        self._failures = 0
        self.attempts = 0

    def openDevice(self) -> Any:
        """Open once: return an OpenDevice or a Deferred firing with one (or failing)."""
        raise NotImplementedError

    # -- life cycle

    def startService(self) -> None:
        Service.startService(self)
        self._attempt()

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.cancel()
        device, self.device = self.device, None
        if device is None:
            return succeed(None)
        log.info("Closing device {label}", label=self.label)
        self.hub.deviceLost(f"{self.label} closed")
        return device.close()

    # -- opening

    def _attempt(self) -> None:
        self._timer = None
        if not self.running:
            return
        self.attempts += 1
        d: Deferred[OpenDevice] = maybeDeferred(self.openDevice)
        self._pending = d
        d.addCallbacks(self._opened, self._failed)

    def _opened(self, device: OpenDevice) -> None:
        self._pending = None
        if not self.running:
            device.close()
            return
        self.device = device
        self._openedAt = self.reactor.seconds()
        if self._failures:
            log.info(
                "Device {label} is up again after {count} failed attempt(s)",
                label=self.label,
                count=self._failures,
            )
        else:
            log.info("Device {label} opened", label=self.label)
        self._failures = 0
        self.hub.deviceConnected(cast(IDevice, device), f"{self.label} connected")

    def _failed(self, reason: Failure) -> None:
        self._pending = None
        if not self.running:
            return
        self._failures += 1
        delay = self.backoff.next()
        log.warn(
            "waiting for {label}: {why}, retrying in {delay:.1f}s",
            label=self.label,
            why=describeFailure(reason),
            delay=delay,
        )
        self._timer = self.reactor.callLater(delay, self._attempt)

    # -- going away

    def gone(self, device: object, why: str) -> None:
        """Called by a device when it went away (EOF, error, child exit)."""
        if device is not self.device:
            return
        self.device = None
        if self.reactor.seconds() - self._openedAt >= self.stableAfter:
            self.backoff.reset()
        self.hub.deviceLost(f"{self.label}: {why}")
        if not self.running:
            return
        delay = self.backoff.next()
        log.warn(
            "Device {label} lost ({why}); reopening in {delay:.1f}s",
            label=self.label,
            why=why,
            delay=delay,
        )
        self._timer = self.reactor.callLater(delay, self._attempt)


# -- tty ---------------------------------------------------------------------------------


def _setExclusive(fd: int, on: bool) -> None:
    """TIOCEXCL: further open()s of this tty fail with EBUSY (root excepted)."""
    try:
        fcntl.ioctl(fd, termios.TIOCEXCL if on else termios.TIOCNXCL)
    except OSError:
        pass


@implementer(IDevice)
class SerialDevice(abstract.FileDescriptor):
    """An open tty read and written by the reactor; pyserial only opens and configures it.

    Twisted's own SerialPort cannot pass ``exclusive=True``, hence this small descriptor.
    The fd is non-blocking with VMIN=1 so that a 0-byte read really means a hang-up
    (unplugged USB adapter) and EIO/ENXIO means the pty master went away: both are loss.
    """

    def __init__(
        self,
        port: serial.Serial,
        reactor: Any,
        label: str,
        output: Callable[[bytes], None],
        gone: Callable[[object, str], None],
    ) -> None:
        abstract.FileDescriptor.__init__(self, reactor)
        self.port = port
        self.label = label
        self._fd: int = port.fd
        self._output = output
        self._gone = gone
        self.connected = 1

    def fileno(self) -> int:
        return self._fd

    def logPrefix(self) -> str:
        return f"SerialDevice({self.label})"

    def doRead(self) -> Any:
        try:
            data = os.read(self._fd, READ_SIZE)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EINTR):
                return None
            return OSError(e.errno, os.strerror(e.errno or 0))
        if not data:
            return main.CONNECTION_DONE
        self._output(data)
        return None

    def writeSomeData(self, data: bytes) -> Any:
        try:
            return os.write(self._fd, data)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EINTR):
                return 0
            return OSError(e.errno, os.strerror(e.errno or 0))

    def connectionLost(self, reason: Failure) -> None:
        abstract.FileDescriptor.connectionLost(self, reason)
        self._closePort()
        if reason.check(ConnectionDone):
            why = "end of file (hung up)"
        else:
            why = describeFailure(reason)
        self._gone(self, why)

    def _closePort(self) -> None:
        if self._fd >= 0:
            _setExclusive(self._fd, False)
            self._fd = -1
            try:
                self.port.close()
            except (OSError, serial.SerialException):
                log.failure("Closing {label}", label=self.label)

    def close(self) -> Deferred[None]:
        """Close now, dropping unwritten input (we are shutting down)."""
        if self.connected:
            self.connectionLost(Failure(ConnectionDone("closed by vncmux")))
        return succeed(None)


def openSerial(spec: DeviceSpec) -> serial.Serial:
    """Open and configure ``spec.path`` exclusively; raises SerialException / OSError."""
    s = spec.serial
    port = serial.Serial()
    port.port = spec.path
    port.baudrate = s.baud
    port.bytesize = s.bytesize
    port.parity = s.parity
    port.stopbits = s.stopbits
    port.rtscts = s.rtscts
    port.xonxoff = s.xonxoff
    port.exclusive = True
    port.timeout = 0
    if s.dtr is not None:
        port.dtr = s.dtr
    if s.rts is not None:
        port.rts = s.rts
    port.open()
    try:
        _setExclusive(port.fd, True)
        attrs = termios.tcgetattr(port.fd)
        attrs[6][termios.VMIN] = 1
        attrs[6][termios.VTIME] = 0
        termios.tcsetattr(port.fd, termios.TCSANOW, attrs)
    except BaseException:
        port.close()
        raise
    return port


class SerialDeviceService(DeviceService):
    """A tty device (serial port or pty slave)."""

    def __init__(self, spec: DeviceSpec, hub: Hub, reactor: Any, **kw: Any) -> None:
        DeviceService.__init__(self, hub, reactor, spec.label, **kw)
        self.spec = spec

    def openDevice(self) -> OpenDevice:
        port = openSerial(self.spec)
        device = SerialDevice(port, self.reactor, self.label, self.hub.deviceOutput, self.gone)
        device.startReading()
        return device


# -- unix / tcp --------------------------------------------------------------------------


@implementer(IDevice)
class StreamDevice(Protocol):
    """A connected socket device: what it sends goes to the hub, input is written to it."""

    transport: Any

    def __init__(
        self, label: str, output: Callable[[bytes], None], gone: Callable[[object, str], None]
    ) -> None:
        self.label = label
        self._output = output
        self._gone = gone
        self._closed: Deferred[None] | None = None

    def dataReceived(self, data: bytes) -> None:
        self._output(data)

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def pauseProducing(self) -> None:
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.transport.resumeProducing()

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._gone(self, describeFailure(reason) if reason is not None else "closed")
        if self._closed is not None:
            closed, self._closed = self._closed, None
            closed.callback(None)

    def close(self) -> Deferred[None]:
        self._closed = Deferred()
        self.transport.abortConnection()
        return self._closed


class StreamDeviceService(DeviceService):
    """A unix: or tcp: device reached with a Twisted client endpoint."""

    def __init__(self, spec: DeviceSpec, hub: Hub, reactor: Any, **kw: Any) -> None:
        DeviceService.__init__(self, hub, reactor, spec.label, **kw)
        self.spec = spec

    def endpoint(self) -> Any:
        if self.spec.kind == "unix":
            return UNIXClientEndpoint(self.reactor, self.spec.path, timeout=10)
        return HostnameEndpoint(self.reactor, self.spec.host, self.spec.port, timeout=10)

    def openDevice(self) -> Deferred[OpenDevice]:
        proto = StreamDevice(self.label, self.hub.deviceOutput, self.gone)
        factory = Factory.forProtocol(lambda: proto)
        factory.noisy = False  # one attempt per retry: our own log lines say it better
        d: Deferred[OpenDevice] = self.endpoint().connect(factory)
        return d


# -- exec --------------------------------------------------------------------------------


def setWindowSize(fd: int, cols: int, rows: int) -> None:
    """TIOCSWINSZ on a pty (either side); the kernel sends SIGWINCH to the foreground job."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


@implementer(IDevice)
class ExecDevice(ProcessProtocol):
    """A command running in a pty.  Besides IDevice it offers ``resize(cols, rows)``:
    the console calls it when its size changes, and the child gets SIGWINCH."""

    killAfter = 3.0
    transport: Any

    def __init__(
        self,
        label: str,
        reactor: Any,
        output: Callable[[bytes], None],
        gone: Callable[[object, str], None],
    ) -> None:
        self.label = label
        self.reactor = reactor
        self._output = output
        self._gone = gone
        self._ended: Deferred[None] | None = None
        self._killer: Any = None
        self.running = True

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        self._output(data)

    def write(self, data: bytes) -> None:
        if self.running:
            self.transport.write(data)

    def pauseProducing(self) -> None:
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.transport.resumeProducing()

    def resize(self, cols: int, rows: int) -> None:
        """Set the pty window size (the child sees SIGWINCH)."""
        fd = self.transport.fileno() if self.running else -1
        if fd >= 0:
            setWindowSize(fd, cols, rows)

    def processEnded(self, reason: Failure) -> None:
        self.running = False
        if self._killer is not None and self._killer.active():
            self._killer.cancel()
        if reason.check(ProcessDone):
            why = "command exited with status 0"
        elif reason.check(ProcessTerminated):
            v = reason.value
            if v.signal is not None:
                why = f"command killed by signal {v.signal}"
            else:
                why = f"command exited with status {v.exitCode}"
        else:
            why = describeFailure(reason)
        self._gone(self, why)
        if self._ended is not None:
            ended, self._ended = self._ended, None
            ended.callback(None)

    def close(self) -> Deferred[None]:
        """SIGHUP the child (as a closing terminal would), SIGKILL it if it lingers."""
        if not self.running:
            return succeed(None)
        self._ended = Deferred()
        self._signal("HUP")
        self._killer = self.reactor.callLater(self.killAfter, self._signal, "KILL")
        return self._ended

    def _signal(self, name: str) -> None:
        if not self.running:
            return
        transport: Any = self.transport
        try:
            transport.signalProcess(name)
        except ProcessExitedAlready:
            return
        if name == "KILL":
            transport.loseConnection()


def execEnvironment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The user's environment with TERM set for our terminal emulator."""
    env = dict(os.environ if base is None else base)
    env["TERM"] = "xterm-256color"
    return env


class ExecDeviceService(DeviceService):
    """``exec:COMMAND``: a fresh child in a fresh pty of cols×rows at every (re)open."""

    def __init__(
        self, spec: DeviceSpec, hub: Hub, reactor: Any, cols: int, rows: int, **kw: Any
    ) -> None:
        DeviceService.__init__(self, hub, reactor, spec.label, **kw)
        self.spec = spec
        self.cols = cols
        self.rows = rows

    def openDevice(self) -> OpenDevice:
        argv = list(self.spec.command)
        if not argv:
            raise ValueError("empty command")
        master, slave = os.openpty()
        try:
            # Sized before the fork, so the child never sees 0x0.
            setWindowSize(slave, self.cols, self.rows)
            device = ExecDevice(self.label, self.reactor, self.hub.deviceOutput, self.gone)
            self.reactor.spawnProcess(
                device,
                argv[0],
                argv,
                env=execEnvironment(),
                usePTY=(master, slave, os.ttyname(slave)),
            )
        except BaseException:
            for fd in (master, slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
            raise
        log.info("Started {argv} (pid {pid})", argv=" ".join(argv), pid=device.transport.pid)
        return device

    def resize(self, cols: int, rows: int) -> None:
        """Remember the size for the next child and apply it to the current one."""
        self.cols, self.rows = cols, rows
        if isinstance(self.device, ExecDevice):
            self.device.resize(cols, rows)


# -- the factory -------------------------------------------------------------------------


def makeDeviceService(spec: DeviceSpec, hub: Hub, reactor: Any, cols: int, rows: int) -> IService:
    """The service that keeps ``spec`` open and attached to ``hub`` while it runs."""
    service: DeviceService
    if spec.kind == "tty":
        service = SerialDeviceService(spec, hub, reactor)
    elif spec.kind in ("unix", "tcp"):
        service = StreamDeviceService(spec, hub, reactor)
    elif spec.kind == "exec":
        service = ExecDeviceService(spec, hub, reactor, cols, rows)
    else:
        raise ValueError(f"unknown device kind {spec.kind!r}")
    return cast(IService, service)


__all__ = [
    "Backoff",
    "DeviceService",
    "ExecDevice",
    "ExecDeviceService",
    "SerialDevice",
    "SerialDeviceService",
    "StreamDevice",
    "StreamDeviceService",
    "makeDeviceService",
]
