"""The byte backends: raw socket clients (served or dialled), a log file, a pty.

Each of them is an ``IBackend`` on the hub and carries the device's bytes unchanged.  They
differ in what they do when they cannot keep up:

- a socket connection is *lossless*: a full transport buffer pauses the device through
  ``Hub.blocked`` (the transport calls our producer's ``pauseProducing``), and a client that
  stays blocked past the stall timeout is aborted by the hub via ``stalled()``; in the
  other direction, the hub stops reading it (``IPausableInput``) while the device does not
  take input, so a client writing faster than the device reads is slowed down, not buffered;
- a log file is written synchronously and never blocks (``stallable = False``);
- a pty never blocks the device either: like QEMU's pty chardev it drops output while no
  one has the slave open, and also when the reader falls behind (non-blocking write,
  EAGAIN → dropped and counted in the log).  A pty reader gets what it can read, not a
  guarantee; use a socket for lossless capture.  Its input is paused like a socket's.

Services are built by the ``make*Service`` functions; the server one listens at once so a
port in use is a one-line ``ConfigError`` before the reactor runs.
"""

from __future__ import annotations

import errno
import os
import re
import select
import socket
import struct
import tty
from collections.abc import Callable
from typing import Any, cast

from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import IService, Service
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IProtocolFactory, IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from vncmux.config import ConfigError
from vncmux.events import ATTACH, DETACH, PTY, SOCKET, Client
from vncmux.hub import Hub
from vncmux.interfaces import IBackend, IPausableInput
from vncmux.listening import listenNow

log = Logger()


# -- socket clients ----------------------------------------------------------------------


def peerLabel(transport: Any, fallback: str) -> str:
    """'127.0.0.1:50432', '[::1]:50432', or for UNIX sockets the path plus the peer's
    pid/uid (SO_PEERCRED) since UNIX peers have no address of their own."""
    peer = transport.getPeer()
    if isinstance(peer, IPv6Address):
        return f"[{peer.host}]:{peer.port}"
    if isinstance(peer, IPv4Address):
        return f"{peer.host}:{peer.port}"
    if isinstance(peer, UNIXAddress):
        label = fallback
        try:
            raw = transport.getHandle().getsockopt(
                socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
            )
            pid, uid, _gid = struct.unpack("3i", raw)
            label += f" (pid {pid}, uid {uid})"
        except (AttributeError, OSError):
            pass
        return label
    return f"{fallback} ({peer})"


@implementer(IBackend, IPushProducer, IPausableInput)
class StreamBackend(Protocol):
    """One socket connection as a lossless hub backend.

    It registers itself as the transport's streaming producer: when the transport's send
    buffer fills, Twisted calls ``pauseProducing`` and we tell the hub we are blocked (the
    device pauses); when it drains, ``resumeProducing`` unblocks.  The bytes already in
    flight when the device pauses simply queue in the transport (bounded by one read).
    """

    stallable = True
    transport: Any
    clientKind = SOCKET  # its kind on the event bus (``vncmux.events``)

    def __init__(
        self,
        hub: Hub,
        endpointLabel: str,
        clients: ClientSet | None = None,
        number: int = 0,
        readonly: bool = False,
        replay: Callable[[], bytes] | None = None,
    ) -> None:
        self.readonly = readonly  # --socket-ro: input is dropped (logged once)
        self.replay = replay  # what the client gets before the live stream (replay=)
        self._droppedLogged = False
        self.hub = hub
        self.endpointLabel = endpointLabel
        self.clients = clients
        self.number = number
        self.label = endpointLabel
        self.attached = False
        self.client = Client.of(self.clientKind, endpointLabel, view_only=readonly)

    def connectionMade(self) -> None:
        # UNIX peers have no address: the connection number tells them apart in the log
        self.label = peerLabel(self.transport, f"{self.endpointLabel}#{self.number}")
        if self.clients is not None and not self.clients.admit(self):
            log.warn(
                "Refusing {peer} on {endpoint}: already {count} clients (--max-clients)",
                peer=self.label,
                endpoint=self.endpointLabel,
                count=self.clients.maxClients,
            )
            self.transport.abortConnection()
            return
        log.info(
            "Client {peer} connected to {endpoint}", peer=self.label, endpoint=self.endpointLabel
        )
        self.transport.registerProducer(self, True)
        self.attached = True
        self.client = Client.of(self.clientKind, self.label, view_only=self.readonly)
        self.hub.events.emit(ATTACH, self.client)
        self.hub.attach(cast(IBackend, self))
        if self.replay is not None:
            # same reactor turn as the attach: the live stream follows with no gap; written
            # once attached, so a replay that fills the buffer pauses the device as usual
            self.transport.write(self.replay())

    def connectionLost(self, reason: Failure | None = None) -> None:
        if not self.attached:
            return
        self.attached = False
        self.hub.detach(cast(IBackend, self))
        self.hub.events.emit(DETACH, self.client)
        self.hub.keyboard.release(self.client)  # if it held the keyboard, it is free
        if self.clients is not None:
            self.clients.release(self)
        log.info(
            "Client {peer} disconnected from {endpoint}: {why}",
            peer=self.label,
            endpoint=self.endpointLabel,
            why=reason.getErrorMessage() if reason is not None else "closed",
        )

    def dataReceived(self, data: bytes) -> None:
        if self.readonly:
            if not self._droppedLogged:
                self._droppedLogged = True
                log.info(
                    "Client {peer} on read-only {endpoint}: its input is ignored",
                    peer=self.label,
                    endpoint=self.endpointLabel,
                )
            return
        if self.attached:
            self.hub.input(data, cast(IBackend, self), self.client)

    # IBackend

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def deviceStateChanged(self, up: bool, description: str) -> None:
        """A raw byte stream carries only the device's bytes: nothing to show."""

    def stalled(self) -> None:
        self.transport.abortConnection()

    # IPausableInput (driven by the hub: the device's write buffer)

    def pauseInput(self) -> None:
        """Stop reading the client: its writes block in its own socket buffer."""
        self.transport.pauseProducing()

    def resumeInput(self) -> None:
        self.transport.resumeProducing()

    # IPushProducer (driven by the transport's buffer)

    def pauseProducing(self) -> None:
        self.hub.blocked(cast(IBackend, self))

    def resumeProducing(self) -> None:
        self.hub.unblocked(cast(IBackend, self))

    def stopProducing(self) -> None:
        """The connection is going away; connectionLost detaches us."""


class ClientSet:
    """The connections of one listening endpoint, capped at ``maxClients``."""

    def __init__(self, maxClients: int) -> None:
        self.maxClients = maxClients
        self.members: set[StreamBackend] = set()

    def admit(self, client: StreamBackend) -> bool:
        if self.maxClients > 0 and len(self.members) >= self.maxClients:
            return False
        self.members.add(client)
        return True

    def release(self, client: StreamBackend) -> None:
        self.members.discard(client)


class BackendFactory(Factory):
    """Builds a StreamBackend per connection, all feeding one hub."""

    noisy = False  # we log connections ourselves, with the peer

    def __init__(
        self,
        hub: Hub,
        endpointLabel: str,
        clients: ClientSet | None = None,
        readonly: bool = False,
        replay: Callable[[], bytes] | None = None,
    ) -> None:
        self.hub = hub
        self.endpointLabel = endpointLabel
        self.clients = clients
        self.readonly = readonly
        self.replay = replay
        self.serial = 0

    def buildProtocol(self, addr: Any) -> StreamBackend:
        self.serial += 1
        proto = StreamBackend(
            self.hub,
            self.endpointLabel,
            self.clients,
            self.serial,
            readonly=self.readonly,
            replay=self.replay,
        )
        proto.factory = self
        return proto


# -- listening endpoints -----------------------------------------------------------------


def withPrivateMode(endpoint: str) -> str:
    """A UNIX server endpoint without ``mode=`` gets ``mode=600``: the console is private
    unless the user says otherwise (Twisted's own default is 0666)."""
    if not endpoint.startswith("unix:"):
        return endpoint
    # split on unescaped colons; the first field after 'unix' is the path
    fields = re.split(r"(?<!\\):", endpoint)
    if any(f.startswith("mode=") for f in fields[2:]):
        return endpoint
    return endpoint + ":mode=600"


class ByteServerService(Service):
    """A listening raw byte endpoint.  Listens in ``__init__`` (synchronously, so errors are
    known before the reactor runs); ``stopService`` closes the port and every client."""

    def __init__(
        self,
        endpoint: str,
        hub: Hub,
        reactor: Any,
        maxClients: int,
        label: str,
        readonly: bool = False,
        replay: Callable[[], bytes] | None = None,
        telnet: bool = False,
        rfc2217: bool = False,
    ) -> None:
        self.endpoint = withPrivateMode(endpoint)
        self.label = label or endpoint
        self.clients = ClientSet(maxClients)
        self.factory: BackendFactory
        if telnet:  # clients speak telnet (and RFC 2217 when allowed): vncmux.telnet
            from vncmux.telnet import TelnetFactory

            self.factory = TelnetFactory(hub, self.label, self.clients, readonly, replay, rfc2217)
        else:
            self.factory = BackendFactory(
                hub, self.label, self.clients, readonly=readonly, replay=replay
            )
        self.port = listenNow(reactor, self.endpoint, self.factory, shown=endpoint)
        log.info("Listening for byte clients on {endpoint}", endpoint=self.endpoint)

    def stopService(self) -> Deferred[Any]:
        Service.stopService(self)
        for client in list(self.clients.members):
            client.transport.abortConnection()
        return cast(Deferred[Any], self.port.stopListening() or succeed(None))


def makeByteServerService(
    endpoint: str,
    hub: Hub,
    reactor: Any,
    maxClients: int,
    label: str,
    readonly: bool = False,
    replay: Callable[[], bytes] | None = None,
    telnet: bool = False,
    rfc2217: bool = False,
) -> IService:
    """``--socket ENDPOINT``: every connection is a backend; listens now or raises ConfigError.
    ``readonly`` (``--socket-ro``): clients get the output, their input is dropped.
    ``replay``: called as each client connects, its bytes are sent before the live stream
    (``vncmux.history.replayer``).  ``telnet`` (``--telnet``): clients speak telnet,
    ``rfc2217``: and may set the tty's line."""
    service = ByteServerService(
        endpoint, hub, reactor, maxClients, label, readonly, replay, telnet, rfc2217
    )
    return cast(IService, service)


def makeByteClientService(
    endpoint: str,
    hub: Hub,
    reactor: Any,
    label: str,
    replay: Callable[[], bytes] | None = None,
) -> IService:
    """``-chardev socket,server=off``: connect out, be a backend while connected, reconnect
    with backoff (0.5 s doubling to 10 s, as the device does); ``replay`` as for a server,
    on every (re)connection."""
    try:
        client = clientFromString(reactor, endpoint)
    except (ValueError, TypeError, KeyError) as e:
        raise ConfigError(f"bad socket endpoint {endpoint!r}: {e}") from e
    factory = BackendFactory(hub, label or endpoint, replay=replay)
    return cast(
        IService,
        ClientService(
            client,
            cast(IProtocolFactory, factory),
            retryPolicy=backoffPolicy(initialDelay=0.5, maxDelay=10.0, factor=2.0),
            clock=reactor,
        ),
    )


# -- log file ----------------------------------------------------------------------------


@implementer(IBackend)
class LogFileBackend:
    """Appends every device byte to a file, synchronously (a disk that fails raises, and the
    hub detaches us).  Created 0600: console logs hold passwords typed at prompts."""

    stallable = False

    def __init__(self, path: str) -> None:
        self.path = path
        self.label = f"file:{path}"
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def deviceStateChanged(self, up: bool, description: str) -> None:
        """Only the device's own bytes go to the file."""

    def stalled(self) -> None:
        """Never blocked, so never stalled."""

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class LogFileService(Service):
    def __init__(self, path: str, hub: Hub) -> None:
        self.hub = hub
        try:
            self.backend = LogFileBackend(path)
        except OSError as e:
            raise ConfigError(
                f"cannot open log file {path}: {os.strerror(e.errno or 0).lower()}"
            ) from e

    def startService(self) -> None:
        Service.startService(self)
        self.hub.attach(cast(IBackend, self.backend))

    def stopService(self) -> None:
        Service.stopService(self)
        self.hub.detach(cast(IBackend, self.backend))
        self.backend.close()


def makeLogFileService(path: str, hub: Hub) -> IService:
    """``-chardev file,path=``: every device byte appended to ``path`` (opened now)."""
    return cast(IService, LogFileService(path, hub))


# -- pty ---------------------------------------------------------------------------------


def _slaveIsOpen(masterFd: int) -> bool:
    """A pty master polls POLLHUP while no one holds the slave open (Linux)."""
    poller = select.poll()
    poller.register(masterFd, select.POLLIN)
    for _fd, events in poller.poll(0):
        if events & select.POLLHUP:
            return False
    return True


@implementer(IBackend, IPausableInput)
class PtyBackend:
    """The master side of a new pty; users attach ``screen``/``tio`` to ``slavePath``.

    States: *waiting* (no one has the slave open: output dropped, the master is polled
    every ``pollInterval`` seconds, as QEMU does) and *connected* (the master is read by
    the reactor; input goes to the hub; output written non-blocking, the part the kernel
    will not take now is dropped).  Never blocks or pauses the device.
    """

    stallable = False

    def __init__(
        self, hub: Hub, reactor: Any, label: str = "pty", pollInterval: float = 0.5
    ) -> None:
        self.hub = hub
        self.reactor = reactor
        self.pollInterval = pollInterval
        master, slave = os.openpty()
        # raw: no echo of device output back to us as input, no CR/LF rewriting
        tty.setraw(slave)
        self.slavePath = os.ttyname(slave)
        os.close(slave)
        os.set_blocking(master, False)
        self.fd = master
        self.name = label
        self.label = f"{label} {self.slavePath}"
        self.connected = False
        self.inputPaused = False
        self.dropped = 0
        self._droppedSinceLog = 0
        self._timer: Any = None

    # reactor descriptor

    def fileno(self) -> int:
        return self.fd

    def logPrefix(self) -> str:
        return f"PtyBackend({self.slavePath})"

    def doRead(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EINTR):
                return
            self._setConnected(False)
            return
        if not data:
            self._setConnected(False)
            return
        self.hub.input(data, cast(IBackend, self), Client(PTY, self.slavePath))

    def connectionLost(self, reason: Failure) -> None:
        """The reactor saw POLLHUP: the last reader closed the slave."""
        self._setConnected(False)

    # state

    def start(self) -> None:
        self.hub.attach(cast(IBackend, self))
        self.poll()

    def stop(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self.connected:
            self.reactor.removeReader(self)
            self.connected = False
        self.hub.detach(cast(IBackend, self))
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def poll(self) -> None:
        """Is someone there now?  Re-arms itself while no one is."""
        self._timer = None
        if self.fd < 0:
            return
        if _slaveIsOpen(self.fd):
            self._setConnected(True)
        else:
            self._timer = self.reactor.callLater(self.pollInterval, self.poll)

    def _setConnected(self, up: bool) -> None:
        if up == self.connected:
            return
        self.connected = up
        self.hub.events.emit(ATTACH if up else DETACH, Client(PTY, self.slavePath))
        if up:
            log.info(
                "{path}: reader attached ({dropped} bytes dropped while no one read)",
                path=self.slavePath,
                dropped=self._droppedSinceLog,
            )
            self._droppedSinceLog = 0
            if not self.inputPaused:
                self.reactor.addReader(self)
        else:
            log.info("{path}: reader gone; dropping output until one attaches", path=self.slavePath)
            self.reactor.removeReader(self)
            self.hub.keyboard.release(Client(PTY, self.slavePath))
            if self._timer is None and self.fd >= 0:
                self._timer = self.reactor.callLater(self.pollInterval, self.poll)

    # IPausableInput: the master is not read while the device's write buffer is full (a
    # hang-up meanwhile is noticed once reading resumes)

    def pauseInput(self) -> None:
        self.inputPaused = True
        if self.connected:
            self.reactor.removeReader(self)

    def resumeInput(self) -> None:
        self.inputPaused = False
        if self.connected and self.fd >= 0:
            self.reactor.addReader(self)

    # IBackend

    def write(self, data: bytes) -> None:
        written = 0
        if self.connected:
            try:
                written = os.write(self.fd, data)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EINTR):
                    self._setConnected(False)
        if written < len(data):
            if self.connected and not self._droppedSinceLog:
                log.info("{path}: reader too slow, dropping output (counted)", path=self.slavePath)
            self.dropped += len(data) - written
            self._droppedSinceLog += len(data) - written

    def deviceStateChanged(self, up: bool, description: str) -> None:
        """Only the device's own bytes go to the pty."""

    def stalled(self) -> None:
        """Never blocked, so never stalled."""


class PtyService(Service):
    def __init__(self, hub: Hub, reactor: Any, label: str = "pty") -> None:
        self.backend = PtyBackend(hub, reactor, label)

    def startService(self) -> None:
        Service.startService(self)
        log.info(
            "char device redirected to {path} (label {label})",
            path=self.backend.slavePath,
            label=self.backend.name,
        )
        self.backend.start()

    def stopService(self) -> None:
        Service.stopService(self)
        self.backend.stop()


def makePtyService(hub: Hub, reactor: Any, label: str = "pty") -> IService:
    """``-chardev pty``: a new pty now (``.backend.slavePath``); logged at start as QEMU does."""
    return cast(IService, PtyService(hub, reactor, label))


__all__ = [
    "ByteServerService",
    "ClientSet",
    "LogFileBackend",
    "PtyBackend",
    "StreamBackend",
    "makeByteClientService",
    "makeByteServerService",
    "makeLogFileService",
    "makePtyService",
    "withPrivateMode",
]
