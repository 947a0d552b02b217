"""RFC 2217 (Telnet COM-PORT-OPTION), the server's side: a client sets the serial line.

``ComPortServer`` reads one subnegotiation's parameters (what follows ``IAC SB 44`` up to
``IAC SE``), applies it to the device's line (``ISerialLine``: the tty's termios and
modem lines) and answers with the command code + 100 and the value *in effect*, as the
RFC asks: a setting the device refuses (a Linux pty refuses 7 data bits and parity with
EINVAL) is answered with the old value, which pyserial's client reports as "remote
rejected value".  Nothing here raises on a client's input: a short or unknown command is
one log line and no answer.

What each command does:

- SIGNATURE: answered with ``vncmux`` when asked (an empty one); a client's is logged;
- SET-BAUDRATE, -DATASIZE, -PARITY, -STOPSIZE: applied (0 only asks);
- SET-CONTROL: outbound and inbound flow control (none, XON/XOFF, RTS/CTS); DTR and RTS
  on/off (a device without modem lines, a pty, remembers them); BREAK-ON sends one BREAK
  of ``--break-duration`` (``Hub.sendBreak``), BREAK-OFF is acknowledged;
- NOTIFY-MODEMSTATE / NOTIFY-LINESTATE (a poll): answered with the whole modem-state
  byte / line-state byte, even while the device is down (every line off then);
- SET-LINESTATE-MASK / SET-MODEMSTATE-MASK: acknowledged, then they filter what the server
  sends unasked; a new modem-state mask is followed by the modem state through it;
- PURGE-DATA: the device's receive and/or transmit buffers dropped;
- FLOWCONTROL-SUSPEND / -RESUME: the client's output is paused / resumed.

The server also speaks first: the modem state once the option is agreed, then its
changes, and line errors (``vncmux.rfc2217_notify``, which also says what a pty reports).

The changes last until the device is reopened, which applies the command line's
settings again.  While the device is down a setting is not answered (the client times out).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from vncmux.interfaces import ISerialLine
from vncmux.rfc2217_notify import StateWatch

log = Logger()

COM_PORT_OPTION = bytes((44,))
SERVER_OFFSET = 100  # a server's answer to command N is N + 100

SIGNATURE = 0
SET_BAUDRATE = 1
SET_DATASIZE = 2
SET_PARITY = 3
SET_STOPSIZE = 4
SET_CONTROL = 5
NOTIFY_LINESTATE = 6
NOTIFY_MODEMSTATE = 7
FLOWCONTROL_SUSPEND = 8
FLOWCONTROL_RESUME = 9
SET_LINESTATE_MASK = 10
SET_MODEMSTATE_MASK = 11
PURGE_DATA = 12

#: RFC 2217 parity codes ↔ pyserial's letters.
PARITY_CODES = {1: "N", 2: "O", 3: "E", 4: "M", 5: "S"}
PARITY_OF = {letter: code for code, letter in PARITY_CODES.items()}
STOP_CODES = {1: 1.0, 2: 2.0, 3: 1.5}
STOP_OF = {bits: code for code, bits in STOP_CODES.items()}

# SET-CONTROL values
FLOW_ASK, FLOW_NONE, FLOW_XONXOFF, FLOW_RTSCTS = 0, 1, 2, 3
BREAK_ASK, BREAK_ON, BREAK_OFF = 4, 5, 6
DTR_ASK, DTR_ON, DTR_OFF = 7, 8, 9
RTS_ASK, RTS_ON, RTS_OFF = 10, 11, 12
INFLOW_ASK, INFLOW_NONE, INFLOW_XONXOFF, INFLOW_RTSCTS = 13, 14, 15, 16
FLOW_NAMES = {FLOW_NONE: "none", FLOW_XONXOFF: "xonxoff", FLOW_RTSCTS: "rtscts"}
FLOW_CODES = {name: code for code, name in FLOW_NAMES.items()}
_MODEM_LINES = (("dtr", DTR_ASK, DTR_ON, DTR_OFF), ("rts", RTS_ASK, RTS_ON, RTS_OFF))

SIGNATURE_TEXT = b"vncmux"


class ComPortServer:
    """One telnet client's COM-PORT-OPTION commands, applied to the hub's device.

    ``send(option, data)`` writes ``IAC SB option data IAC SE`` (escaping done there);
    ``sendBreak(how)`` asks the hub for a BREAK for this client (False: refused);
    ``suspend(on)`` pauses or resumes the client's output; ``peer`` names it in logs;
    ``clock`` times the looks at the modem lines (``watch``, a ``StateWatch``), which start
    with ``agreed()`` and end with ``closed()``; ``deviceChanged(up)`` passes the hub's news.
    """

    def __init__(
        self,
        hub: Any,
        send: Callable[[bytes, bytes], None],
        sendBreak: Callable[[str], bool],
        suspend: Callable[[bool], None],
        peer: str,
        clock: IReactorTime,
    ) -> None:
        self.hub = hub
        self._send = send
        self._sendBreak = sendBreak
        self._suspend = suspend
        self.peer = peer
        self.breakOn = False
        self.watch = StateWatch(
            self.line,
            lambda: self.hub.device is not None,
            lambda payload: self._send(COM_PORT_OPTION, payload),
            clock,
            peer,
        )

    def agreed(self) -> None:
        """COM-PORT-OPTION was agreed (either way): notifications start."""
        self.watch.start()

    def closed(self) -> None:
        """The client left or refused the option: notifications stop."""
        self.watch.stop()

    def deviceChanged(self, up: bool) -> None:
        """The device went down or came back (``IBackend.deviceStateChanged``)."""
        self.watch.deviceChanged(up)

    def line(self) -> Any:
        """The device's ``ISerialLine``, or None (device down, or not a tty)."""
        line = getattr(self.hub.device, "line", None)
        return line if ISerialLine.providedBy(line) else None

    def answer(self, command: int, value: bytes) -> None:
        self._send(COM_PORT_OPTION, bytes((command + SERVER_OFFSET,)) + value)

    def received(self, data: bytes) -> None:
        """The parameters of one ``IAC SB COM-PORT-OPTION ... IAC SE`` (without the 44)."""
        if not data:
            return
        command, value = data[0], data[1:]
        if command == SIGNATURE:
            if value:
                log.info(
                    "RFC 2217 client {peer}: {sig}", peer=self.peer, sig=value.decode("latin-1")
                )
            else:
                self.answer(SIGNATURE, SIGNATURE_TEXT)
            return
        if command in (FLOWCONTROL_SUSPEND, FLOWCONTROL_RESUME):
            self._suspend(command == FLOWCONTROL_SUSPEND)
            return
        if command in (SET_LINESTATE_MASK, SET_MODEMSTATE_MASK):
            if len(value) != 1:
                return self._bad(command, value)
            self.answer(command, value)
            if command == SET_LINESTATE_MASK:
                self.watch.setLinestateMask(value[0])
            else:
                self.watch.setModemstateMask(value[0])
            return
        if command == NOTIFY_LINESTATE:
            self.watch.pollLine()
            return
        if command == NOTIFY_MODEMSTATE:
            self.watch.pollModem()
            return
        handler = _HANDLERS.get(command)
        if handler is None:
            log.info(
                "RFC 2217 client {peer}: unknown command {command} ignored",
                peer=self.peer,
                command=command,
            )
            return
        line = self.line()
        breakCommand = command == SET_CONTROL and value[:1] in (b"\x04", b"\x05", b"\x06")
        if line is None and not breakCommand:
            log.warn(
                "RFC 2217 client {peer}: the device is down, command {command} not answered",
                peer=self.peer,
                command=command,
            )
            return
        reply = handler(self, line, value)
        if reply is None:
            return self._bad(command, value)
        self.answer(command, reply)

    def _bad(self, command: int, value: bytes) -> None:
        log.warn(
            "RFC 2217 client {peer}: malformed command {command} ({value!r}) ignored",
            peer=self.peer,
            command=command,
            value=value,
        )

    # -- one handler per command: the answer's value bytes, or None for a malformed one --

    def _baudrate(self, line: Any, value: bytes) -> bytes | None:
        if len(value) != 4:
            return None
        (baud,) = struct.unpack("!I", value)
        actual = line.setBaudrate(baud)
        self._logChange("baud rate", baud, actual)
        return struct.pack("!I", actual)

    def _datasize(self, line: Any, value: bytes) -> bytes | None:
        if len(value) != 1:
            return None
        asked = value[0]
        actual = line.setDataSize(asked if 5 <= asked <= 8 else 0)
        self._logChange("data bits", asked, actual)
        return bytes((actual,))

    def _parity(self, line: Any, value: bytes) -> bytes | None:
        if len(value) != 1:
            return None
        asked = PARITY_CODES.get(value[0], "")
        actual = line.setParity(asked)
        self._logChange("parity", asked or value[0], actual)
        return bytes((PARITY_OF.get(actual, 1),))

    def _stopsize(self, line: Any, value: bytes) -> bytes | None:
        if len(value) != 1:
            return None
        asked = STOP_CODES.get(value[0], 0.0)
        actual = line.setStopSize(asked)
        self._logChange("stop bits", asked or value[0], actual)
        return bytes((STOP_OF.get(actual, 1),))

    def _control(self, line: Any, value: bytes) -> bytes | None:
        if len(value) != 1:
            return None
        code = value[0]
        if code in (BREAK_ASK, BREAK_ON, BREAK_OFF):
            if code == BREAK_ON:
                self.breakOn = self._sendBreak("RFC 2217 BREAK-ON")
            elif code == BREAK_OFF:
                self.breakOn = False
            return bytes((BREAK_ON if self.breakOn else BREAK_OFF,))
        if code <= FLOW_RTSCTS or INFLOW_ASK <= code <= INFLOW_RTSCTS:
            inbound = code >= INFLOW_ASK
            asked = FLOW_NAMES.get(code - INFLOW_ASK if inbound else code, "")
            actual = line.setFlowControl(asked)
            self._logChange("flow control", asked or "?", actual)
            result = FLOW_CODES.get(actual, FLOW_NONE)
            return bytes((result + INFLOW_ASK if inbound else result,))
        for name, ask, on, off in _MODEM_LINES:
            if code in (ask, on, off):
                state = line.setModemLine(name, None if code == ask else code == on)
                return bytes((on if state else off,))
        # DCD/DTR/DSR flow control (17-19) and anything newer: the inbound setting stands
        actual = line.setFlowControl("")
        return bytes((FLOW_CODES.get(actual, FLOW_NONE) + INFLOW_ASK,))

    def _purge(self, line: Any, value: bytes) -> bytes | None:
        if len(value) != 1 or value[0] not in (1, 2, 3):
            return None
        line.purge(receive=bool(value[0] & 1), transmit=bool(value[0] & 2))
        return value

    def _logChange(self, what: str, asked: object, actual: object) -> None:
        if asked in (0, "", 0.0):
            return  # a query
        if asked == actual:
            log.info(
                "RFC 2217 client {peer} set the {what} to {value}",
                peer=self.peer,
                what=what,
                value=actual,
            )
        else:
            log.warn(
                "RFC 2217 client {peer} asked for {what} {asked}: the device keeps {actual}",
                peer=self.peer,
                what=what,
                asked=asked,
                actual=actual,
            )


_HANDLERS: dict[int, Callable[[ComPortServer, Any, bytes], bytes | None]] = {
    SET_BAUDRATE: ComPortServer._baudrate,
    SET_DATASIZE: ComPortServer._datasize,
    SET_PARITY: ComPortServer._parity,
    SET_STOPSIZE: ComPortServer._stopsize,
    SET_CONTROL: ComPortServer._control,
    PURGE_DATA: ComPortServer._purge,
}

__all__ = ["COM_PORT_OPTION", "ComPortServer"]
