"""Serial ports reached over the network: ``telnet:HOST:PORT`` and ``rfc2217://HOST:PORT``.

- ``telnet:`` is a terminal server or QEMU's telnet serial (``-serial
  telnet:HOST:PORT,server=on``): vncmux negotiates as a client (BINARY and SGA both
  ways, the server's ECHO accepted), unescapes IAC, and sends a BREAK as ``IAC BREAK``,
  which QEMU turns into a serial break for the guest (Magic SysRq).
- ``rfc2217://`` is an RFC 2217 server (ser2net, another vncmux with ``--rfc2217``, a
  terminal server) driven by pyserial's own client: the line settings of the command line
  (``--baud``, ``--bytesize``, ``--parity``, ``--stopbits``, flow control, DTR/RTS) are
  passed through, and a BREAK is pyserial's ``send_break``.  pyserial blocks, so the port
  is opened in a worker thread, read by one thread and written by another; the reactor
  only ever queues and hears about bytes.  Input queued for the writer over
  ``HIGH_WATER`` pauses the hub's input sources like a full socket buffer would.

Both are reopened with backoff like every other device (``vncmux.reopen``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import serial
from twisted.conch.telnet import BRK, ECHO, SGA, ITelnetProtocol, TelnetProtocol
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from zope.interface import implementer

from vncmux.devices import StreamDevice, StreamDeviceService, setLine
from vncmux.interfaces import IDevice
from vncmux.reopen import DeviceService, OpenDevice, describeFailure
from vncmux.specs import DeviceSpec
from vncmux.telnet import BINARY, TelnetChannel, request

log = Logger()

READ_SIZE = 65536
#: Bytes of input queued for an RFC 2217 port's writer before the hub's sources pause.
HIGH_WATER = 64 * 1024
LOW_WATER = 16 * 1024


# -- telnet ------------------------------------------------------------------------------


@implementer(ITelnetProtocol)
class TelnetDevice(StreamDevice, TelnetProtocol):
    """A telnet serial port: the protocol inside a ``TelnetChannel`` (which escapes and
    unescapes).  It is a ``StreamDevice`` (what the server sends goes to the hub, input is
    written to it) that negotiates its options and can send a BREAK."""

    def connectionMade(self) -> None:
        request(self.transport, ("do", BINARY), ("will", BINARY), ("do", SGA), ("will", SGA))

    def enableLocal(self, option: bytes) -> bool:
        return option in (BINARY, SGA)

    def enableRemote(self, option: bytes) -> bool:
        return option in (BINARY, SGA, ECHO)

    def disableLocal(self, option: bytes) -> None:
        """Framing only: nothing to undo."""

    def disableRemote(self, option: bytes) -> None:
        """Framing only: nothing to undo."""

    def sendBreak(self, duration: float) -> str:
        self.transport.sendCommand(BRK)
        return "IAC BREAK (the telnet server breaks its line)"


class TelnetDeviceService(StreamDeviceService):
    """``telnet:HOST:PORT``: a TCP connection speaking telnet."""

    def openDevice(self) -> Deferred[OpenDevice]:
        def build() -> TelnetChannel:
            return TelnetChannel(lambda: TelnetDevice(self.label, self.hub.deviceOutput, self.gone))

        factory = Factory.forProtocol(build)
        factory.noisy = False
        d: Deferred[Any] = self.endpoint().connect(factory)
        d.addCallback(lambda channel: channel.protocol)
        return d


# -- RFC 2217 ----------------------------------------------------------------------------


def rfc2217Url(spec: DeviceSpec) -> str:
    host = f"[{spec.host}]" if ":" in spec.host else spec.host
    return f"rfc2217://{host}:{spec.port}"


def openRfc2217(spec: DeviceSpec) -> Any:
    """Open ``spec``'s RFC 2217 port with its line settings (blocking: in a thread)."""
    port = serial.serial_for_url(rfc2217Url(spec), do_not_open=True)
    setLine(port, spec.serial)
    port.timeout = 0.2  # the reader wakes up this often to see whether it should stop
    port.open()
    return port


@implementer(IDevice)
class Rfc2217Device:
    """An open RFC 2217 port read by one thread and written by another (see the module
    docstring).  Every call from the reactor returns at once."""

    def __init__(
        self,
        port: Any,
        reactor: Any,
        label: str,
        output: Callable[[bytes], None],
        gone: Callable[[object, str], None],
    ) -> None:
        self.port = port
        self.reactor = reactor
        self.label = label
        self._output = output
        self._gone = gone
        self._writes: queue.Queue[Any] = queue.Queue()
        self._readable = threading.Event()
        self._readable.set()
        self._stopping = False
        self._closed: Deferred[None] = Deferred()
        self._queued = 0
        self._producer: IPushProducer | None = None
        self._throttled = False
        for target, name in ((self._readLoop, "reader"), (self._writeLoop, "writer")):
            thread = threading.Thread(target=target, name=f"{label} {name}", daemon=True)
            thread.start()

    # -- threads -------------------------------------------------------------------------

    def _readLoop(self) -> None:
        try:
            while not self._stopping:
                if not self._readable.wait(0.5):
                    continue
                data = self.port.read(max(1, min(self.port.in_waiting, READ_SIZE)))
                if data and not self._stopping:
                    self.reactor.callFromThread(self._output, data)
        except Exception as e:  # noqa: BLE001 -- any failure means the port is gone
            self.reactor.callFromThread(self._lost, describeFailure(e))

    def _writeLoop(self) -> None:
        """Writes and breaks in order; on ``None`` (the end) the port is closed here, so
        closing never blocks the reactor either."""
        failed = False
        while True:
            item = self._writes.get()
            if item is None:
                break
            if failed:
                continue  # the port is gone: what is still queued is dropped
            try:
                if isinstance(item, bytes):
                    self.port.write(item)
                    self.reactor.callFromThread(self._written, len(item))
                else:
                    self.port.send_break(item)
            except Exception as e:  # noqa: BLE001
                failed = True
                self.reactor.callFromThread(self._lost, describeFailure(e))
        try:
            self.port.close()
        except Exception as e:  # noqa: BLE001
            log.info("Closing {label}: {why}", label=self.label, why=e)
        self.reactor.callFromThread(self._closedNow)

    # -- IDevice ---------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._stopping or not data:
            return
        self._queued += len(data)
        self._writes.put(bytes(data))
        if self._queued > HIGH_WATER and self._producer is not None and not self._throttled:
            self._throttled = True
            self._producer.pauseProducing()

    def _written(self, count: int) -> None:
        self._queued -= count
        if self._throttled and self._queued < LOW_WATER and self._producer is not None:
            self._throttled = False
            self._producer.resumeProducing()

    def sendBreak(self, duration: float) -> str:
        self._writes.put(float(duration))
        return f"RFC 2217 break of {duration:g} s"

    def pauseProducing(self) -> None:
        self._readable.clear()

    def resumeProducing(self) -> None:
        self._readable.set()

    def throttleInput(self, producer: IPushProducer) -> None:
        self._producer = producer

    # -- going away ----------------------------------------------------------------------

    def _stop(self) -> Deferred[None]:
        self._stopping = True
        self._readable.set()
        self._writes.put(None)  # the writer closes the port, then _closedNow
        if self._producer is not None and self._throttled:
            self._throttled = False
            self._producer.resumeProducing()
        return self._closed

    def _closedNow(self) -> None:
        if not self._closed.called:
            self._closed.callback(None)

    def _lost(self, why: str) -> None:
        if self._stopping:
            return
        self._stop()
        self._gone(self, why)

    def close(self) -> Deferred[None]:
        if self._stopping:
            return succeed(None) if self._closed.called else self._closed
        return self._stop()


class Rfc2217DeviceService(DeviceService):
    """``rfc2217://HOST:PORT``: pyserial's RFC 2217 client, opened in a thread."""

    def __init__(self, spec: DeviceSpec, hub: Any, reactor: Any, **kw: Any) -> None:
        DeviceService.__init__(self, hub, reactor, spec.label, **kw)
        self.spec = spec

    def openDevice(self) -> Deferred[OpenDevice]:
        d: Deferred[Any] = deferToThread(openRfc2217, self.spec)
        d.addCallback(
            lambda port: Rfc2217Device(
                port, self.reactor, self.label, self.hub.deviceOutput, self.gone
            )
        )
        return d


__all__ = [
    "Rfc2217Device",
    "Rfc2217DeviceService",
    "TelnetDevice",
    "TelnetDeviceService",
    "openRfc2217",
]
