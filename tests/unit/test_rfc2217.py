"""RFC 2217's server side: each COM-PORT-OPTION command applied to a line and answered
with the value in effect (``ComPortServer`` with a fake line), and ``TtyLine`` on a real
pty, which refuses 7 data bits and parity (EINVAL) and has no modem lines (ENOTTY)."""

from __future__ import annotations

import os
import struct
import termios
from collections.abc import Iterator
from typing import Any

import pytest
from zope.interface.verify import verifyObject

from tests.support.serial_line import FakeLine, Rig
from vncmux.interfaces import ISerialLine
from vncmux.ttyline import TtyLine


def test_the_fake_line_is_a_serial_line() -> None:
    assert verifyObject(ISerialLine, FakeLine())


def test_settings_are_answered_with_code_plus_100_and_the_value_in_effect() -> None:
    r = Rig()
    assert r.ask(b"\x01" + struct.pack("!I", 9600)) == b"\x65" + struct.pack("!I", 9600)
    assert r.line.baud == 9600
    assert r.ask(b"\x01\x00\x00\x00\x00") == b"\x65" + struct.pack("!I", 9600)  # a query
    assert r.ask(b"\x02\x08") == b"\x66\x08"
    assert r.ask(b"\x02\x07") == b"\x66\x08"  # refused: the old size in the answer
    assert r.ask(b"\x03\x03") == b"\x67\x01"  # even parity refused: none stays
    assert r.ask(b"\x04\x02") == b"\x68\x02"  # two stop bits
    assert r.ask(b"\x04\x03") == b"\x68\x03"  # 1.5


def test_set_control_flow_modem_lines_and_break() -> None:
    r = Rig()
    assert r.ask(b"\x05\x03") == b"\x69\x03" and r.line.flow == "rtscts"
    assert r.ask(b"\x05\x00") == b"\x69\x03"  # asking
    assert r.ask(b"\x05\x0e") == b"\x69\x0e" and r.line.flow == "none"  # inbound: none
    assert r.ask(b"\x05\x09") == b"\x69\x09" and not r.line.lines["dtr"]
    assert r.ask(b"\x05\x07") == b"\x69\x09"
    assert r.ask(b"\x05\x0b") == b"\x69\x0b" and r.line.lines["rts"]
    assert r.ask(b"\x05\x05") == b"\x69\x05" and r.breaks == ["RFC 2217 BREAK-ON"]
    assert r.ask(b"\x05\x04") == b"\x69\x05"
    assert r.ask(b"\x05\x06") == b"\x69\x06" and len(r.breaks) == 1


def test_a_refused_break_is_answered_as_off() -> None:
    r = Rig(breakAllowed=False)
    assert r.ask(b"\x05\x05") == b"\x69\x06"


def test_polls_masks_purge_signature_and_flow_suspension() -> None:
    r = Rig()
    assert r.ask(b"\x07") == b"\x6b\xb0"  # no modem lines: a null-modem cable's CTS DSR CD
    r.line.modem = 0x30
    assert r.ask(b"\x07") == b"\x6b\x38"  # CD dropped since the last look: DDCD
    assert r.ask(b"\x07") == b"\x6b\x30"
    assert r.ask(b"\x06") == b"\x6a\x00"
    assert r.ask(b"\x0a\xff") == b"\x6e\xff" and r.server.watch.linestateMask == 0xFF
    # a new modem-state mask: acknowledged, then the state through it
    assert r.exchange(b"\x0b\x30") == [b"\x6f\x30", b"\x6b\x30"]
    assert r.server.watch.modemstateMask == 0x30
    assert r.ask(b"\x0c\x03") == b"\x70\x03" and r.line.purged == [(True, True)]
    assert r.ask(b"\x00") == b"\x64vncmux"
    assert r.ask(b"\x00pyserial") is None
    assert r.ask(b"\x08") is None and r.ask(b"\x09") is None
    assert r.suspended == [True, False]


@pytest.mark.parametrize(
    "data", [b"", b"\x01\x00", b"\x02", b"\x03\x01\x02", b"\x05", b"\x0c\x07", b"\x63\x01"]
)
def test_malformed_or_unknown_commands_get_no_answer(data: bytes) -> None:
    assert Rig().ask(data) is None


def test_while_the_device_is_down_settings_are_not_answered() -> None:
    r = Rig()
    r.hub.device = None
    assert r.ask(b"\x01" + struct.pack("!I", 9600)) is None
    assert r.ask(b"\x05\x08") is None
    assert r.ask(b"\x05\x05") == b"\x69\x05"  # a BREAK is the hub's to refuse
    assert r.ask(b"\x07") == b"\x6b\x00"  # a poll is: no device, no lines


# -- TtyLine on a real pty ------------------------------------------------------------------


@pytest.fixture
def pty() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    yield master, slave
    os.close(master)
    os.close(slave)


def test_a_pty_takes_speed_and_stop_bits_and_refuses_cs7_and_parity(pty: Any) -> None:
    _master, slave = pty
    line = TtyLine(slave, "/dev/pts/test")
    assert verifyObject(ISerialLine, line)
    assert line.setBaudrate(9600) == 9600
    assert line.setDataSize(8) == 8
    assert line.setStopSize(2) == 2.0
    attrs = termios.tcgetattr(slave)
    assert attrs[4] == termios.B9600 and attrs[2] & termios.CSTOPB
    assert line.setDataSize(7) == 8  # EINVAL: the value in effect
    assert line.setParity("E") == "N"
    assert line.setBaudrate(12345) == 9600  # not a rate termios knows
    assert line.setFlowControl("none") == "none"
    assert line.setStopSize(1) == 1.0


def test_a_pty_has_no_modem_lines_and_remembers_dtr_rts(pty: Any) -> None:
    _master, slave = pty
    line = TtyLine(slave, "/dev/pts/test", dtr=False)
    assert line.modemState() is None
    assert line.counters() is None  # no TIOCGICOUNT either
    assert line.setModemLine("dtr", None) is False
    assert line.setModemLine("dtr", True) is True
    assert line.setModemLine("rts", False) is False
    line.purge(receive=True, transmit=True)  # no error
