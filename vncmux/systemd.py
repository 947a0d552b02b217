"""systemd's service notification protocol (``Type=notify``), spoken without libsystemd.

systemd hands a notify-type service the path of a datagram socket in ``$NOTIFY_SOCKET``
(a leading ``@`` means Linux's abstract namespace); the service sends newline-separated
``KEY=VALUE`` assignments to it.  vncmux sends ``READY=1`` once its listeners are bound and
every device has been opened or is being waited for, ``STATUS=`` lines while it runs (how
many consoles, how many devices up), ``WATCHDOG=1`` when the unit asks for a watchdog, and
``STOPPING=1`` when it stops.  Outside systemd (no ``$NOTIFY_SOCKET``) all of this is a
no-op.

``NOTIFY_SOCKET`` is removed from the process's environment when read, as sd_notify's
``unset_environment`` does, so the program an ``exec:`` device runs does not inherit it
and cannot speak for vncmux.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, MutableMapping
from typing import Any

from twisted.application.service import Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

log = Logger()

#: How often the STATUS= line is recomputed (it is sent only when it changes).
STATUS_INTERVAL = 5.0


def socketAddress(value: str) -> str | bytes | None:
    """The address to send to for ``$NOTIFY_SOCKET``'s ``value``: a filesystem path, or
    (``@name``) the abstract-namespace name with its leading NUL; None when it is neither."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None


class Notifier:
    """Sends notification datagrams to one ``$NOTIFY_SOCKET``.

    ``fromEnvironment`` takes the socket (and the watchdog interval) out of ``environ``;
    a ``Notifier`` whose address is None sends nothing.  A failed send is logged once and
    never raises: systemd going away must not take the console server with it."""

    def __init__(self, address: str | bytes | None, watchdog_usec: int = 0) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._warned = False

    @classmethod
    def fromEnvironment(cls, environ: MutableMapping[str, str] | None = None) -> Notifier:
        env: MutableMapping[str, str] = os.environ if environ is None else environ
        raw = env.pop("NOTIFY_SOCKET", "")
        address = socketAddress(raw) if raw else None
        if raw and address is None:
            log.warn("systemd: ignoring NOTIFY_SOCKET={raw!r} (not a path or @name)", raw=raw)
        watchdog = 0
        pid = env.pop("WATCHDOG_PID", "")
        usec = env.pop("WATCHDOG_USEC", "")
        if usec.isdigit() and (not pid or pid == str(os.getpid())):
            watchdog = int(usec)
        return cls(address, watchdog)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines (keyword names are the keys); True if it was sent."""
        if self.address is None:
            return False
        text = "".join(f"{key}={value}\n" for key, value in assignments.items())
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.sendto(text.encode("utf-8", "replace"), self.address)
        except OSError as e:
            if not self._warned:
                self._warned = True
                log.warn(
                    "systemd: cannot notify {address!r}: {error}",
                    address=self.address,
                    error=e.strerror,
                )
            return False
        finally:
            sock.close()
        return True


class NotifyService(Service):
    """READY=1 when the reactor runs (every listener is bound by then: they bind while the
    service tree is built, and devices open or start waiting in ``startService``); STATUS=
    from ``status()`` every few seconds when it changed; WATCHDOG=1 at half the watchdog
    interval; STOPPING=1 first thing on stop."""

    def __init__(
        self,
        reactor: Any,
        status: Callable[[], str],
        notifier: Notifier | None = None,
        interval: float = STATUS_INTERVAL,
    ) -> None:
        self.setName("systemd-notify")
        self.reactor = reactor
        self.status = status
        self.notifier = notifier if notifier is not None else Notifier.fromEnvironment()
        self.interval = interval
        self._lastStatus: str | None = None
        self._loops: list[LoopingCall] = []

    def startService(self) -> None:
        Service.startService(self)
        if self.notifier.enabled:
            self.reactor.callWhenRunning(self._ready)

    def _ready(self) -> None:
        if not self.running:
            return
        status = self._status()
        self._lastStatus = status
        self.notifier.send(READY="1", STATUS=status)
        log.info("systemd: ready ({status})", status=status)
        loop = LoopingCall(self._refresh)
        loop.clock = self.reactor
        loop.start(self.interval, now=False)
        self._loops.append(loop)
        if self.notifier.watchdog_usec:
            dog = LoopingCall(self.notifier.send, WATCHDOG="1")
            dog.clock = self.reactor
            dog.start(self.notifier.watchdog_usec / 2e6, now=True)
            self._loops.append(dog)

    def _status(self) -> str:
        try:
            return self.status()
        except Exception:  # noqa: BLE001 - a status line must never stop the server
            log.failure("systemd: computing the status line")
            return "running"

    def _refresh(self) -> None:
        status = self._status()
        if status != self._lastStatus:
            self._lastStatus = status
            self.notifier.send(STATUS=status)

    def stopService(self) -> None:
        Service.stopService(self)
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops = []
        self.notifier.send(STOPPING="1", STATUS="stopping")


def describeSite(states: list[str]) -> str:
    """The STATUS= line for consoles whose device states are ``states`` ('up',
    'reconnecting', 'down'): e.g. ``3 consoles, 2 devices up, 1 reconnecting``."""
    total = len(states)
    up = states.count("up")
    words = [
        f"{total} console{'s' if total != 1 else ''}",
        f"{up} device{'s' if up != 1 else ''} up",
    ]
    waiting = total - up
    if waiting:
        words.append(f"{waiting} waiting")
    return ", ".join(words)
