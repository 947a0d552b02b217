"""Keeping one device open: the reopen loop, its backoff, and what to say when opening fails.

``DeviceService`` is the life cycle every kind of device shares (``vncmux.devices`` holds
the kinds): an open attempt either yields a device (handed to the hub) or fails (logged,
retried after a growing delay); a device that goes away is reported and reopened.  Failures
come in two sorts: those that waiting may cure (the socket does not listen yet, the USB
adapter is not plugged in) and those it cannot (permission denied, not a tty, a port held
by another program): ``cannotWait`` tells them apart and ``describeFailure``/``failureHint``
put them in words, so a user is told why and what to do, not just "retrying".
"""

from __future__ import annotations

import errno
import os
from typing import Any, cast
from typing import Protocol as TypingProtocol

import serial
from twisted.application.service import Service
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure

from vncmux.errors import ConfigError
from vncmux.hub import Hub
from vncmux.interfaces import IDevice

log = Logger()

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


class OpenError(OSError):
    """An open attempt that failed for a reason put in our own words (``strerror``), e.g.
    ``OpenError(errno.ENOENT, "command not found: foo")``."""

    def __init__(self, errnum: int, why: str) -> None:
        super().__init__(errnum, why)


def _errno(exc: BaseException) -> int | None:
    number = getattr(exc, "errno", None)
    if isinstance(number, int):
        return number
    osError = getattr(exc, "osError", None)  # twisted.internet.error.ConnectError
    return osError if isinstance(osError, int) else None


def _exclusiveLock(exc: BaseException) -> bool:
    return isinstance(exc, serial.SerialException) and "exclusively lock" in str(exc)


def describeFailure(reason: Failure | BaseException) -> str:
    """A short lower-case reason for logs: 'connection refused', 'no such file or directory'."""
    exc = reason.value if isinstance(reason, Failure) else reason
    if isinstance(exc, OpenError):
        return str(exc.strerror)
    number = _errno(exc)
    if number is not None:
        why = os.strerror(number).lower()
        if _exclusiveLock(exc):
            return f"in use by another program (exclusive lock: {why})"
        if number == errno.ENOTTY:
            return f"not a tty ({why})"
        if number == errno.EBUSY:
            return f"busy, in use by another program ({why})"
        return why
    name = type(exc).__name__
    if name == "ConnectionRefusedError":
        return "connection refused"
    if isinstance(exc, ConnectionDone):
        return "closed by the other side"
    text = str(exc).strip().rstrip(".")
    return text or name


# errno values that no amount of waiting for the device will change
_CANNOT_WAIT = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.ENOTTY,
        errno.EBUSY,
        errno.EISDIR,
        errno.ENOTDIR,
        errno.ELOOP,
        errno.ENOEXEC,
        errno.ENOTSOCK,
    }
)


def cannotWait(reason: Failure | BaseException) -> bool:
    """True for failures that waiting cannot cure: permission denied, not a tty, a port
    held by another program (busy or exclusively locked), a directory...  A missing path or
    a refused connection is worth waiting for: the device may appear."""
    exc = reason.value if isinstance(reason, Failure) else reason
    return _exclusiveLock(exc) or _errno(exc) in _CANNOT_WAIT


def failureHint(
    reason: Failure | BaseException, group: str | None = None, waiting: bool = False
) -> str:
    """What the user can do about ``reason`` ('' when there is nothing to say).  ``group``
    is the group owning the device file, for 'permission denied'; ``waiting``: the user
    already asked to wait (``--wait-device``), so that is not suggested."""
    exc = reason.value if isinstance(reason, Failure) else reason
    number = _errno(exc)
    if _exclusiveLock(exc) or number == errno.EBUSY:
        advice = "another program (minicom, screen, ModemManager...) has it open: close it"
        return advice if waiting else advice + ", or start with --wait-device to wait for it"
    if number in (errno.EACCES, errno.EPERM):
        if group:
            return (
                f"add your user to the '{group}' group that owns it "
                f"(sudo usermod -aG {group} $USER, then log in again)"
            )
        return "check the owner and mode of the device file"
    if number == errno.ENOTTY:
        return "--device PATH must be a serial port or a pty; use unix:PATH or tcp:HOST:PORT"
    return ""


# -- the common reopen loop --------------------------------------------------------------


class OpenDevice(TypingProtocol):
    """What an opener yields: an IDevice that can also be closed by us."""

    label: str

    def write(self, data: bytes) -> None: ...

    def pauseProducing(self) -> None: ...

    def resumeProducing(self) -> None: ...

    def throttleInput(self, producer: IPushProducer) -> None: ...

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

    Before the reactor runs, ``probe`` tries the device once, synchronously (subclasses
    implement ``probeOpen``): a failure that waiting cannot cure raises ``ConfigError`` (one
    line, exit status 2, see ``vncmux.tap``) unless ``wait`` (``--wait-device``) is set; any
    other failure is left to the reopen loop, which logs it with ``hint`` and retries.
    """

    def __init__(
        self,
        hub: Hub,
        reactor: Any,
        label: str,
        backoff: Backoff | None = None,
        stableAfter: float = 5.0,
        wait: bool = False,
    ) -> None:
        self.hub = hub
        self.reactor = reactor
        self.label = label
        self.wait = wait
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

    def probeOpen(self) -> None:
        """Build time: raise what opening now would fail with (nothing if unknown)."""

    def hint(self, reason: Failure | BaseException) -> str:
        """What the user can do about a failure to open ('' if nothing)."""
        return failureHint(reason, waiting=self.wait)

    def probe(self) -> None:
        """Called once while the service is built: ``ConfigError`` when the device cannot
        be opened and waiting would not help (and the user did not ask to wait)."""
        try:
            self.probeOpen()
        except Exception as e:
            if self.wait or not cannotWait(e):
                return  # the reopen loop will try again, and say why it waits
            hint = self.hint(e)
            raise ConfigError(
                f"cannot open device {self.label}: {describeFailure(e)}"
                + (f" ({hint})" if hint else "")
            ) from None

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
        # the transport's write buffer pauses the hub's input sources while it is full
        device.throttleInput(self.hub.inputProducer(cast(IDevice, device)))

    def _failed(self, reason: Failure) -> None:
        self._pending = None
        if not self.running:
            return
        self._failures += 1
        delay = self.backoff.next()
        hint = self.hint(reason) if cannotWait(reason) else ""
        log.warn(
            "waiting for {label}: {why}, retrying in {delay:.1f}s{hint}",
            label=self.label,
            why=describeFailure(reason),
            delay=delay,
            hint=f" ({hint})" if hint else "",
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
