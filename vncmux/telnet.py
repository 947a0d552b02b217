"""Telnet on a byte socket, both ends: the channel (option negotiation, IAC escaping, the
NVT's CR rules) and the server-side client of the hub (``--telnet``, chardev ``telnet=on``).

``TelnetChannel`` is ``twisted.conch.telnet.TelnetTransport`` with the data path made
fit for a serial console: input is parsed without ever holding a byte back (a CR typed in
binary mode reaches the device at once), any command byte after IAC is accepted (an
unknown one is ignored, not a reason to drop the client), a subnegotiation is bounded,
output has IAC doubled and nothing else changed in binary mode (Twisted's own transport
turns LF into CR LF, which would double the console's line ends).  Without BINARY in a
direction, the NVT rules apply there: from the peer ``CR NUL`` and ``CR LF`` both mean the
Enter key, a CR; to the peer a CR not followed by LF is sent as ``CR NUL``.

``TelnetBackend`` is a ``StreamBackend`` (lossless, flow-controlled, counted like any byte
client) that negotiates like a serial console server: WILL ECHO and WILL SGA (the
``telnet`` command goes to character mode and leaves echoing to the device), BINARY both
ways.  ``IAC BREAK`` from the client is a serial BREAK (``Hub.sendBreak``); RFC 2217
(COM-PORT-OPTION) is accepted only with ``rfc2217=on`` and a tty device, and refused
(DONT/WONT) otherwise; once agreed, the client is sent the modem state and its changes
(``vncmux.rfc2217_notify``), timed by the factory's ``clock``.  Under ``--input-policy
exclusive`` the bytes Ctrl+E ``c`` ``f`` take the keyboard (``vncmux.keyboard``), as
conserver's "force attach" does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from twisted.conch.telnet import (
    BRK,
    DO,
    DONT,
    ECHO,
    IAC,
    SB,
    SE,
    SGA,
    WILL,
    WONT,
    ITelnetProtocol,
    OptionRefused,
    TelnetTransport,
)
from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from vncmux.events import TELNET
from vncmux.hub import Hub
from vncmux.keyboard import TakeoverEscape
from vncmux.rfc2217 import COM_PORT_OPTION, ComPortServer
from vncmux.sockets import BackendFactory, ClientSet, StreamBackend

log = Logger()

#: TRANSMIT-BINARY (RFC 856); twisted.conch.telnet names no constant for it.
BINARY = b"\x00"

#: Longest subnegotiation kept (RFC 2217's longest is a signature): past it, dropped.
MAX_SUBNEGOTIATION = 1024

_NVT_NEWLINE = re.compile(rb"\r[\0\n]")
_BARE_CR = re.compile(rb"\r(?!\n)")


def escape(data: bytes) -> bytes:
    """Data for the wire: every 0xff doubled (IAC IAC)."""
    return data.replace(IAC, IAC + IAC)


class TelnetChannel(TelnetTransport):
    """One telnet connection (either end): negotiation as ``twisted.conch.telnet`` does it
    (the option states, ``will``/``do`` Deferreds, ``enableLocal``/``enableRemote`` asked of
    the protocol), with the data path described in the module docstring.  Also passes a
    producer and an abort through to the TCP transport, so the protocol inside can be a
    flow-controlled hub backend."""

    transport: Any

    def __init__(self, protocolFactory: Callable[..., Any] | None = None, *a: Any, **kw: Any):
        super().__init__(protocolFactory, *a, **kw)
        self._sub = bytearray()
        self._subTooLong = False
        self._pendingCR = False  # NVT: the last data byte was a CR (its partner may follow)

    # -- modes -------------------------------------------------------------------------

    def binaryIn(self) -> bool:
        """The peer sends binary (it said WILL BINARY): no NVT newline rules on input."""
        return bool(self.getOptionState(BINARY).him.state == "yes")

    def binaryOut(self) -> bool:
        """We send binary (the peer said DO BINARY): output is only IAC-escaped."""
        return bool(self.getOptionState(BINARY).us.state == "yes")

    # -- input -------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        out = bytearray()
        state, index, size = self.state, 0, len(data)
        while index < size:
            if state == "data":
                at = data.find(IAC, index)
                end = size if at < 0 else at
                out += self._fromPeer(data[index:end])
                if at < 0:
                    break
                index, state = at + 1, "escaped"
                continue
            byte = data[index : index + 1]
            index += 1
            if state == "escaped":
                state = "data"
                if byte == IAC:
                    out += byte
                    self._pendingCR = False
                elif byte == SB:
                    state, self._sub, self._subTooLong = "sub", bytearray(), False
                elif byte in (WILL, WONT, DO, DONT):
                    state, self.command = "command", byte
                else:  # BRK, IP, AYT, NOP, GA, EOF...: to the protocol, in order with data
                    self._flush(out)
                    self.commandReceived(byte, None)
            elif state == "command":
                state = "data"
                self._flush(out)
                self.commandReceived(self.command, byte)
            elif state == "sub":
                if byte == IAC:
                    state = "sub-escaped"
                else:
                    self._subByte(byte)
            elif state == "sub-escaped":
                if byte == SE:
                    state = "data"
                    self._flush(out)
                    if self._sub and not self._subTooLong:
                        self.negotiate([bytes((b,)) for b in self._sub])
                else:  # IAC IAC is a 0xff in the parameters (anything else: kept too)
                    state = "sub"
                    self._subByte(byte)
        self.state = state
        self._flush(out)

    def _subByte(self, byte: bytes) -> None:
        if len(self._sub) < MAX_SUBNEGOTIATION:
            self._sub += byte
        elif not self._subTooLong:
            self._subTooLong = True
            log.warn(
                "Telnet peer {peer}: subnegotiation longer than {n} bytes ignored",
                peer=self.getPeer(),
                n=MAX_SUBNEGOTIATION,
            )

    def _fromPeer(self, chunk: bytes) -> bytes:
        """Application bytes as the peer meant them (NVT newlines folded unless binary)."""
        if not chunk or self.binaryIn():
            self._pendingCR = False
            return chunk
        if self._pendingCR and chunk[:1] in (b"\0", b"\n"):
            chunk = chunk[1:]
        self._pendingCR = chunk.endswith(b"\r") if chunk else False
        return _NVT_NEWLINE.sub(b"\r", chunk)

    def _flush(self, out: bytearray) -> None:
        if out:
            data = bytes(out)
            del out[:]
            self.applicationDataReceived(data)

    # -- output ------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Application bytes to the peer: IAC doubled; a bare CR as CR NUL unless binary."""
        if not data:
            return
        data = escape(data)
        if not self.binaryOut():
            data = _BARE_CR.sub(b"\r\0", data)
        self.transport.write(data)

    def writeSequence(self, seq: Any) -> None:
        self.write(b"".join(seq))

    def sendCommand(self, command: bytes) -> None:
        """``IAC command`` (e.g. ``BRK``), in order with the data written before it."""
        self.transport.write(IAC + command)

    # -- passed through to the TCP transport -------------------------------------------

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None:
        self.transport.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self.transport.unregisterProducer()

    def pauseProducing(self) -> None:
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.transport.resumeProducing()

    def abortConnection(self) -> None:
        self.transport.abortConnection()

    def getHandle(self) -> Any:
        return self.transport.getHandle()


def request(channel: TelnetChannel, *asks: tuple[str, bytes]) -> None:
    """Send ``("will"|"do", option)`` requests.  Twisted negotiates one request per option
    at a time, so those about the same option wait for the peer's answer to the previous
    one; a refusal is a normal outcome, and a connection lost meanwhile ends the chain."""
    byOption: dict[bytes, list[str]] = {}
    for verb, option in asks:
        byOption.setdefault(option, []).append(verb)
    for option, verbs in byOption.items():
        _ask(channel, option, verbs)


def _ask(channel: TelnetChannel, option: bytes, verbs: list[str]) -> None:
    if not verbs:
        return
    d = getattr(channel, verbs[0])(option)

    def answered(result: Any) -> None:
        if isinstance(result, Failure) and not result.check(OptionRefused):
            return  # the connection went away
        _ask(channel, option, verbs[1:])

    d.addBoth(answered)


@implementer(ITelnetProtocol)
class TelnetBackend(StreamBackend):
    """One telnet client of a ``--telnet`` endpoint (see the module docstring)."""

    clientKind = TELNET
    transport: Any

    def __init__(
        self, *args: Any, rfc2217: bool = False, clock: IReactorTime | None = None, **kw: Any
    ) -> None:
        StreamBackend.__init__(self, *args, **kw)
        self.rfc2217 = rfc2217
        self.clock = clock
        self.comPort: ComPortServer | None = None
        self.escape = TakeoverEscape()

    def dataReceived(self, data: bytes) -> None:
        """What the user typed: the keyboard takeover escape (Ctrl+E c f, under
        ``--input-policy exclusive``) is taken out and acted on, the rest goes on."""
        if self.attached and not self.readonly and self.hub.keyboard.exclusive:
            data, wanted = self.escape.feed(data)
            if wanted:
                self.hub.keyboard.takeover(self.client)
        if data:
            StreamBackend.dataReceived(self, data)

    def connectionMade(self) -> None:
        channel = self.transport
        channel.commandMap[BRK] = self._break
        channel.negotiationMap[COM_PORT_OPTION] = self._comPortOption
        # The device echoes and needs no go-ahead: character mode, as on a serial line.
        request(
            channel,
            ("will", ECHO),
            ("will", SGA),
            ("do", SGA),
            ("will", BINARY),
            ("do", BINARY),
        )
        StreamBackend.connectionMade(self)
        if self.rfc2217 and self.attached:
            self.comPort = ComPortServer(
                self.hub,
                channel.requestNegotiation,
                self._sendBreak,
                self._suspend,
                self.label,
                self.clock if self.clock is not None else _reactor(),
            )

    def connectionLost(self, reason: Failure | None = None) -> None:
        if self.comPort is not None:
            self.comPort.closed()
        StreamBackend.connectionLost(self, reason)

    def deviceStateChanged(self, up: bool, description: str) -> None:
        """The bytes do not change; an RFC 2217 client is told of its modem lines."""
        if self.comPort is not None:
            self.comPort.deviceChanged(up)

    # -- ITelnetProtocol ---------------------------------------------------------------

    def enableLocal(self, option: bytes) -> bool:
        return option in (ECHO, SGA, BINARY) or self._comPortAgreed(option)

    def enableRemote(self, option: bytes) -> bool:
        return option in (SGA, BINARY) or self._comPortAgreed(option)

    def _comPortAgreed(self, option: bytes) -> bool:
        """COM-PORT-OPTION, either way, with ``rfc2217``: notifications start."""
        if option != COM_PORT_OPTION or not self.rfc2217:
            return False
        if self.comPort is not None:
            self.comPort.agreed()
        return True

    def disableLocal(self, option: bytes) -> None:
        """The options we take change only how bytes are framed; COM-PORT-OPTION off both
        ways ends the notifications."""
        if option == COM_PORT_OPTION and self.comPort is not None:
            state = self.transport.getOptionState(COM_PORT_OPTION)
            if state.us.state != "yes" and state.him.state != "yes":
                self.comPort.closed()

    def disableRemote(self, option: bytes) -> None:
        """As ``disableLocal``."""
        self.disableLocal(option)

    def unhandledCommand(self, command: bytes, argument: bytes | None) -> None:
        """IP, AYT, NOP, GA...: not a serial console's business."""

    def unhandledSubnegotiation(self, command: bytes, data: Any) -> None:
        """Options we did not agree to: their parameters are ignored."""

    # -- BREAK and RFC 2217 -------------------------------------------------------------

    def _break(self, _argument: object = None) -> None:
        self._sendBreak("IAC BREAK")

    def _sendBreak(self, how: str) -> bool:
        """A BREAK this client asked for (``how``: IAC BREAK, RFC 2217 BREAK-ON); the hub
        refuses it to a read-only client or one the keyboard lock does not let type."""
        if not self.attached:
            return False
        return self.hub.sendBreak(self.client, how=how) is not None

    def _suspend(self, suspended: bool) -> None:
        """RFC 2217 FLOWCONTROL-SUSPEND/RESUME: like a client that stops reading."""
        if suspended:
            self.pauseProducing()
        else:
            self.resumeProducing()

    def _comPortOption(self, data: list[bytes]) -> None:
        if self.comPort is None:
            return  # not agreed: COM-PORT-OPTION was refused
        self.comPort.received(b"".join(data))


def _reactor() -> IReactorTime:
    from twisted.internet import reactor

    return reactor  # type: ignore[return-value]


class TelnetFactory(BackendFactory):
    """Builds a ``TelnetChannel`` around a ``TelnetBackend`` per connection."""

    def __init__(
        self,
        hub: Hub,
        endpointLabel: str,
        clients: ClientSet | None = None,
        readonly: bool = False,
        replay: Callable[[], bytes] | None = None,
        rfc2217: bool = False,
        clock: IReactorTime | None = None,
    ) -> None:
        BackendFactory.__init__(self, hub, endpointLabel, clients, readonly, replay)
        self.rfc2217 = rfc2217
        self.clock = clock  # times RFC 2217's looks at the modem lines (None: the reactor)

    def buildProtocol(self, addr: Any) -> Any:
        self.serial += 1
        channel = TelnetChannel(
            TelnetBackend,
            self.hub,
            self.endpointLabel,
            self.clients,
            self.serial,
            readonly=self.readonly,
            replay=self.replay,
            rfc2217=self.rfc2217,
            clock=self.clock,
        )
        channel.factory = self
        return channel


__all__ = ["BINARY", "TelnetBackend", "TelnetChannel", "TelnetFactory", "escape"]
