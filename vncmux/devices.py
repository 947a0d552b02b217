"""The device side: open the one console device, feed the hub, reopen it with backoff.

``makeDeviceService`` returns a Twisted service that keeps one device open for as long as it
runs.  Four kinds of device here, one shape each (``telnet:`` and ``rfc2217://`` devices,
network serial ports, are in ``vncmux.devices_net``):

- ``tty``: a serial port (or any tty, e.g. a pty slave) opened with pyserial *exclusively*
  (flock + TIOCEXCL, so minicom cannot steal bytes) and read by a small reactor descriptor;
- ``unix`` / ``tcp``: a stream socket reached through a Twisted client endpoint
  (QEMU's ``-serial unix:PATH,server=on``);
- ``exec``: a command in a new pty whose window has the console's size, ``TERM`` set.
  Resizing later: ``ExecDeviceService.resize(cols, rows)`` (remembered for the next child
  too) or ``ExecDevice.resize(cols, rows)`` on the current ``hub.device``; the child gets
  SIGWINCH.  Other devices have no ``resize``: callers test with ``getattr``.

Whatever the kind, the life cycle is the same (``vncmux.reopen.DeviceService``): an open
attempt either yields an ``IDevice`` (handed to ``Hub.deviceConnected``, and its transport's
write buffer throttles the hub's input through ``throttleInput``) or fails (logged, retried
after a growing delay); a device that goes away (EOF, unplugged adapter, closed socket, child
exit) is reported with ``Hub.deviceLost`` and reopened with the same backoff.

``makeDeviceService`` tries the device once while the service is built: a tty is opened
then (and kept for the first attempt, so DTR does not toggle twice), a command is looked up
on ``PATH``, a socket path is checked.  What waiting cannot cure (permission denied, not a
tty, a port held by another program, no such command) is a ``ConfigError``: one line and
exit status 2, unless ``--wait-device`` asks to keep trying.
"""

from __future__ import annotations

import errno
import fcntl
import grp
import os
import shutil
import signal
import stat
import struct
import termios
from collections.abc import Callable
from typing import Any, cast

import serial
from twisted.application.service import IService
from twisted.internet import abstract, main
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint
from twisted.internet.error import (
    ConnectionDone,
    ProcessDone,
    ProcessExitedAlready,
    ProcessTerminated,
)
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, ProcessProtocol, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from vncmux.errors import ConfigError
from vncmux.hub import Hub
from vncmux.interfaces import BreakUnsupported, IDevice
from vncmux.reopen import (
    Backoff,
    DeviceService,
    OpenDevice,
    OpenError,
    describeFailure,
    failureHint,
)
from vncmux.specs import DeviceSpec, SerialSettings
from vncmux.ttyline import TtyLine

log = Logger()

READ_SIZE = 65536


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
        self.line = TtyLine(self._fd, label)  # RFC 2217 clients change it
        self._breakWanted: float | None = None
        self._breaking = False

    def fileno(self) -> int:
        return self._fd

    def sendBreak(self, duration: float) -> str:
        """The line held at space (TIOCSBRK) for ``duration`` seconds, timed by the
        reactor (never blocking it), once vncmux's own write buffer is empty; input
        written meanwhile waits until the break is over (SysRq's letter follows it)."""
        self._breakWanted = duration
        self._maybeBreak()
        return f"serial break of {duration:g} s"

    def _maybeBreak(self) -> None:
        pending = len(self.dataBuffer) - self.offset + self._tempDataLen
        if self._breakWanted is None or self._breaking or pending or self._fd < 0:
            return
        duration, self._breakWanted = self._breakWanted, None
        if not self._setBreak(True):
            return
        self._breaking = True
        cast(Any, self.reactor).callLater(duration, self._endBreak)

    def _endBreak(self) -> None:
        self._breaking = False
        if self._fd >= 0:
            self._setBreak(False)
            self.startWriting()

    def _setBreak(self, on: bool) -> bool:
        try:
            self.port.break_condition = on
        except (OSError, serial.SerialException) as e:
            log.warn("{label}: cannot set the break ({why})", label=self.label, why=e)
            return False
        return True

    def doWrite(self) -> Any:
        if self._breaking:
            self.stopWriting()
            return None
        result = abstract.FileDescriptor.doWrite(self)
        self._maybeBreak()
        return result

    def logPrefix(self) -> str:
        return f"SerialDevice({self.label})"

    def throttleInput(self, producer: IPushProducer) -> None:
        """Pause ``producer`` while more than ``bufferSize`` bytes wait to be written."""
        self.registerProducer(producer, True)

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


def setLine(port: Any, s: SerialSettings) -> None:
    """Give a pyserial port that is not open yet the line settings of the command line
    (``--baud``, ``--bytesize``, ``--parity``, ``--stopbits``, flow control, DTR/RTS):
    pyserial applies them when it opens the port."""
    port.baudrate = s.baud
    port.bytesize = s.bytesize
    port.parity = s.parity
    port.stopbits = s.stopbits
    port.rtscts = s.rtscts
    port.xonxoff = s.xonxoff
    if s.dtr is not None:
        port.dtr = s.dtr
    if s.rts is not None:
        port.rts = s.rts


def openSerial(spec: DeviceSpec) -> serial.Serial:
    """Open and configure ``spec.path`` exclusively; raises SerialException / OSError."""
    port = serial.Serial()
    port.port = spec.path
    setLine(port, spec.serial)
    port.exclusive = True
    port.timeout = 0
    try:
        port.open()
    except serial.SerialException as e:
        # pyserial words a failed tcgetattr (not a tty) without an errno: give it one
        cause = e.__context__
        if e.errno is None and isinstance(cause, termios.error) and cause.args:
            number = cause.args[0]
            if isinstance(number, int):
                why = os.strerror(number).lower()
                raise OpenError(
                    number, f"not a tty ({why})" if number == errno.ENOTTY else why
                ) from e
        raise
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
        self._probed: serial.Serial | None = None

    def probeOpen(self) -> None:
        """Open the port now and keep it for the first attempt (one open, one DTR edge)."""
        self._probed = openSerial(self.spec)

    def hint(self, reason: Failure | BaseException) -> str:
        group: str | None = None
        try:
            group = grp.getgrgid(os.stat(self.spec.path).st_gid).gr_name
        except (OSError, KeyError):
            pass
        return failureHint(reason, group, waiting=self.wait)

    def openDevice(self) -> OpenDevice:
        port, self._probed = self._probed, None
        if port is None:
            port = openSerial(self.spec)
        device = SerialDevice(port, self.reactor, self.label, self.hub.deviceOutput, self.gone)
        device.startReading()
        return device

    def stopService(self) -> Deferred[None]:
        if self._probed is not None:  # built and stopped without ever starting
            self._probed.close()
            self._probed = None
        return DeviceService.stopService(self)


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

    def sendBreak(self, duration: float) -> str:
        raise BreakUnsupported(
            "is a raw socket, which cannot carry a BREAK (QEMU's telnet serial can: "
            "-serial telnet:...,server=on with --device telnet:HOST:PORT)"
        )

    def pauseProducing(self) -> None:
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.transport.resumeProducing()

    def throttleInput(self, producer: IPushProducer) -> None:
        """Pause ``producer`` while the socket's write buffer is full."""
        self.transport.registerProducer(producer, True)

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

    def probeOpen(self) -> None:
        """A UNIX socket path that exists must be a socket we may connect to (it may also
        not exist yet: QEMU creates it when it starts)."""
        if self.spec.kind != "unix":
            return
        try:
            mode = os.stat(self.spec.path).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise OpenError(errno.ENOTSOCK, "not a socket")
        if not os.access(self.spec.path, os.W_OK):
            raise OpenError(errno.EACCES, "permission denied")

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

    def sendBreak(self, duration: float) -> str:
        """A pty has no line to break: what a tty with BRKINT does on a break, SIGINT to
        the terminal's foreground process group, is done instead."""
        if not self.running:
            raise BreakUnsupported("has no running command")
        try:
            group = os.tcgetpgrp(self.transport.fileno())
        except OSError:
            group = os.getpgid(self.transport.pid)
        os.killpg(group, signal.SIGINT)
        return f"SIGINT to process group {group} (a pty's BREAK)"

    def pauseProducing(self) -> None:
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.transport.resumeProducing()

    def throttleInput(self, producer: IPushProducer) -> None:
        """Pause ``producer`` while the pty's write buffer is full (the child is not
        reading its terminal)."""
        if self.running:
            self.transport.registerProducer(producer, True)

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
        # a paused producer would keep a closing transport open: we stop writing anyway
        self.transport.unregisterProducer()
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


def findCommand(name: str, env: dict[str, str]) -> str:
    """The file ``exec`` would run for ``name`` (looked up on env's PATH unless it holds a
    slash); ``OpenError`` if there is none or it cannot be run.  Checked before forking, so
    a typo is one clear line rather than a Python traceback painted on the console by the
    child that failed to exec."""
    if "/" in name:
        if os.path.isdir(name):
            raise OpenError(errno.EISDIR, f"{name} is a directory, not a command")
        if not os.path.exists(name):
            raise OpenError(errno.ENOENT, f"command not found: {name}")
        if not os.access(name, os.X_OK):
            raise OpenError(errno.EACCES, f"permission denied: {name} is not executable")
        return name
    found = shutil.which(name, path=env.get("PATH", os.defpath))
    if found is None:
        raise OpenError(errno.ENOENT, f"command not found: {name} (not on PATH)")
    return found


class ExecDeviceService(DeviceService):
    """``exec:COMMAND``: a fresh child in a fresh pty of cols×rows at every (re)open."""

    def __init__(
        self, spec: DeviceSpec, hub: Hub, reactor: Any, cols: int, rows: int, **kw: Any
    ) -> None:
        DeviceService.__init__(self, hub, reactor, spec.label, **kw)
        self.spec = spec
        self.cols = cols
        self.rows = rows

    def probe(self) -> None:
        """A command that cannot be found is an error at start, even though it might be
        installed later: that is what ``--wait-device`` is for."""
        try:
            findCommand(self.spec.command[0] if self.spec.command else "", execEnvironment())
        except OpenError as e:
            if not self.wait:
                raise ConfigError(f"cannot run device {self.label}: {e.strerror}") from None

    def openDevice(self) -> OpenDevice:
        argv = list(self.spec.command)
        if not argv:
            raise ValueError("empty command")
        env = execEnvironment()
        findCommand(argv[0], env)
        master, slave = os.openpty()
        try:
            # Sized before the fork, so the child never sees 0x0.
            setWindowSize(slave, self.cols, self.rows)
            device = ExecDevice(self.label, self.reactor, self.hub.deviceOutput, self.gone)
            self.reactor.spawnProcess(
                device,
                argv[0],
                argv,
                env=env,
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
    """The service that keeps ``spec`` open and attached to ``hub`` while it runs.

    Tries the device once now (see the module docstring): ``ConfigError`` when it cannot be
    opened and waiting would not help, unless ``spec.wait`` (``--wait-device``).
    """
    wait = bool(getattr(spec, "wait", False))
    service: DeviceService
    if spec.kind == "tty":
        service = SerialDeviceService(spec, hub, reactor, wait=wait)
    elif spec.kind in ("unix", "tcp"):
        service = StreamDeviceService(spec, hub, reactor, wait=wait)
    elif spec.kind == "exec":
        service = ExecDeviceService(spec, hub, reactor, cols, rows, wait=wait)
    elif spec.kind in ("telnet", "rfc2217"):
        from vncmux.devices_net import Rfc2217DeviceService, TelnetDeviceService

        kind = TelnetDeviceService if spec.kind == "telnet" else Rfc2217DeviceService
        service = kind(spec, hub, reactor, wait=wait)
    else:
        raise ValueError(f"unknown device kind {spec.kind!r}")
    service.probe()
    return cast(IService, service)


__all__ = [
    "Backoff",
    "DeviceService",
    "describeFailure",
    "ExecDevice",
    "ExecDeviceService",
    "SerialDevice",
    "SerialDeviceService",
    "StreamDevice",
    "StreamDeviceService",
    "makeDeviceService",
]
