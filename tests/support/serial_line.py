"""A serial line that refuses what a pty refuses, and an RFC 2217 server over it on a test
clock, recording what it answers: what the RFC 2217, notification and telnet tests share."""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import Clock
from zope.interface import implementer

from vncmux.interfaces import ISerialLine, LineCounters
from vncmux.rfc2217 import COM_PORT_OPTION, ComPortServer


@implementer(ISerialLine)
class FakeLine:
    """A line that refuses 7 data bits and parity, as a pty does."""

    def __init__(self) -> None:
        self.baud, self.size, self.parity, self.stop, self.flow = 115200, 8, "N", 1.0, "none"
        self.lines = {"dtr": True, "rts": True}
        self.purged: list[tuple[bool, bool]] = []
        self.modem: int | None = None
        self.counts: LineCounters | None = None

    def setBaudrate(self, baud: int) -> int:
        self.baud = baud or self.baud
        return self.baud

    def setDataSize(self, bits: int) -> int:
        if bits == 8:
            self.size = bits
        return self.size

    def setParity(self, parity: str) -> str:
        return self.parity

    def setStopSize(self, stopbits: float) -> float:
        self.stop = stopbits or self.stop
        return self.stop

    def setFlowControl(self, flow: str) -> str:
        self.flow = flow or self.flow
        return self.flow

    def setModemLine(self, name: str, on: bool | None) -> bool:
        if on is not None:
            self.lines[name] = on
        return self.lines[name]

    def modemState(self) -> int | None:
        return self.modem

    def counters(self) -> LineCounters | None:
        return self.counts

    def purge(self, receive: bool, transmit: bool) -> None:
        self.purged.append((receive, transmit))


class FakeDeviceWithLine:
    def __init__(self, line: Any) -> None:
        self.line = line


class FakeHub:
    def __init__(self, line: Any) -> None:
        self.device: Any = FakeDeviceWithLine(line)


class Rig:
    def __init__(self, breakAllowed: bool = True) -> None:
        self.line = FakeLine()
        self.hub = FakeHub(self.line)
        self.answers: list[bytes] = []
        self.breaks: list[str] = []
        self.suspended: list[bool] = []

        def send(option: bytes, data: bytes) -> None:
            assert option == COM_PORT_OPTION
            self.answers.append(data)

        def sendBreak(how: str) -> bool:
            self.breaks.append(how)
            return breakAllowed

        self.clock = Clock()
        self.server = ComPortServer(
            self.hub, send, sendBreak, self.suspended.append, "1.2.3.4:5", self.clock
        )

    def ask(self, data: bytes) -> bytes | None:
        """The one answer to ``data`` (None: no answer)."""
        answers = self.exchange(data)
        assert len(answers) <= 1
        return answers[0] if answers else None

    def exchange(self, data: bytes) -> list[bytes]:
        """Everything sent in answer to ``data``."""
        self.answers.clear()
        self.server.received(data)
        return list(self.answers)


__all__ = ["FakeDeviceWithLine", "FakeHub", "FakeLine", "Rig"]
