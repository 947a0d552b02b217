"""RFC 2217's notifications: the modem-state byte's deltas and the line-state byte worked out
from two looks (pure), and one client's ``StateWatch`` (through ``ComPortServer``, with a
fake line and a ``Clock``): the first report once the option is agreed, a report after a
new mask, a notification per masked change found by the poll, the poll's life (only while
it can find something), the device going down and coming back."""

from __future__ import annotations

from twisted.logger import LogLevel, capturedLogs, formatEvent

from tests.support.serial_line import FakeDeviceWithLine, Rig
from vncmux.interfaces import LineCounters
from vncmux.rfc2217_notify import (
    CD,
    CTS,
    DCTS,
    DDCD,
    DDSR,
    DSR,
    MODEM_POLL_INTERVAL,
    NO_MODEM_LINES,
    RI,
    TERI,
    lineByte,
    modemByte,
)

# -- the bytes (pure) -----------------------------------------------------------------------


def test_the_first_look_has_no_deltas() -> None:
    assert modemByte(None, CTS | CD) == CTS | CD
    assert modemByte(None, 0xFF) == 0xF0  # only the states come from the line


def test_a_changed_line_sets_its_delta_bit() -> None:
    assert modemByte(CTS | DSR, DSR) == DSR | DCTS
    assert modemByte(0, DSR | CD) == DSR | CD | DDSR | DDCD
    assert modemByte(CTS | DSR | CD, CTS | DSR | CD) == CTS | DSR | CD  # nothing changed


def test_teri_is_the_rings_trailing_edge_only() -> None:
    assert modemByte(0, RI) == RI  # the ring starts: no delta
    assert modemByte(RI, 0) == TERI  # it ends


def test_a_pulse_between_two_looks_is_seen_in_the_kernels_counters() -> None:
    before, after = LineCounters(cts=3, ri=1), LineCounters(cts=5, ri=2)
    assert modemByte(CTS, CTS, before, after) == CTS | DCTS | TERI
    assert modemByte(CTS, CTS, None, after) == CTS  # no counts before: nothing to compare


def test_the_line_state_byte_holds_the_errors_counted_between_two_looks() -> None:
    before = LineCounters(overrun=1, parity=0, framing=7, breaks=2)
    assert lineByte(before, before) == 0
    assert lineByte(before, LineCounters(overrun=2, parity=1, framing=7, breaks=3)) == 0x16
    assert lineByte(before, LineCounters(overrun=1, framing=8, breaks=2)) == 0x08
    assert lineByte(None, before) == 0


# -- one client's watch ----------------------------------------------------------------------


def modemRig(modem: int | None = CTS | DSR, counts: LineCounters | None = None) -> Rig:
    """A client that agreed the option on a line with modem lines (``modem``)."""
    r = Rig()
    r.line.modem = modem
    r.line.counts = counts if counts is not None or modem is None else LineCounters()
    r.server.agreed()
    return r


def sent(r: Rig) -> list[bytes]:
    out = list(r.answers)
    r.answers.clear()
    return out


def test_the_modem_state_follows_the_agreement_in_the_next_turn() -> None:
    r = modemRig()
    assert sent(r) == []  # not before the DO/WILL that agreed it
    r.clock.advance(0)
    assert sent(r) == [bytes((107, CTS | DSR))]
    r.server.agreed()  # agreed the other way too: one report is enough
    r.clock.advance(0)
    assert sent(r) == []


def test_a_tty_without_modem_lines_reports_a_null_modem_cable_and_is_not_polled() -> None:
    r = modemRig(modem=None)
    r.clock.advance(0)
    assert sent(r) == [bytes((107, NO_MODEM_LINES))] and NO_MODEM_LINES == CTS | DSR | CD
    assert not r.server.watch.polling and r.clock.getDelayedCalls() == []


def test_changes_are_notified_at_the_next_poll_and_only_changes() -> None:
    r = modemRig()
    r.clock.advance(0)
    sent(r)
    assert r.server.watch.polling
    r.line.modem = CTS | DSR | CD  # carrier
    r.clock.advance(MODEM_POLL_INTERVAL * 0.9)
    assert sent(r) == []
    r.clock.advance(MODEM_POLL_INTERVAL * 0.1)
    assert sent(r) == [bytes((107, CTS | DSR | CD | DDCD))]
    r.clock.advance(MODEM_POLL_INTERVAL * 4)
    assert sent(r) == []  # nothing changed since
    r.line.modem = CTS | DSR | CD | RI
    r.clock.advance(MODEM_POLL_INTERVAL)
    r.line.modem = CTS | DSR | CD
    r.clock.advance(MODEM_POLL_INTERVAL)
    assert sent(r) == [bytes((107, CTS | DSR | CD | RI)), bytes((107, CTS | DSR | CD | TERI))]


def test_the_mask_filters_what_is_sent_unasked_and_a_new_mask_gets_the_state() -> None:
    r = modemRig()
    r.clock.advance(0)
    sent(r)
    r.server.received(bytes((11, CTS)))  # SET-MODEMSTATE-MASK: CTS only
    assert sent(r) == [bytes((111, CTS)), bytes((107, CTS))]
    r.line.modem = CTS  # DSR dropped: masked out
    r.clock.advance(MODEM_POLL_INTERVAL)
    assert sent(r) == []
    r.line.modem = 0  # CTS dropped: the client hears CTS is off (its delta is masked out)
    r.clock.advance(MODEM_POLL_INTERVAL)
    assert sent(r) == [bytes((107, 0))]
    r.server.received(b"\x07")  # a poll is answered in full
    assert sent(r) == [bytes((107, 0))]
    r.server.received(bytes((11, DCTS | DDSR | TERI | DDCD)))  # deltas only
    assert sent(r) == [bytes((111, 0x0F)), bytes((107, 0))]
    r.line.modem = DSR
    r.clock.advance(MODEM_POLL_INTERVAL)
    assert sent(r) == [bytes((107, DDSR))]


def test_every_state_and_every_delta_make_a_255_byte() -> None:
    # the byte itself: every state on, every delta (the ring went off and on again)
    r = modemRig(modem=RI, counts=LineCounters())
    r.clock.advance(0)
    sent(r)
    r.line.modem = CTS | DSR | RI | CD
    r.line.counts = LineCounters(ri=1)
    r.clock.advance(MODEM_POLL_INTERVAL)
    assert sent(r) == [b"\x6b\xff"]  # test_telnet checks IAC IAC on the wire


def test_line_errors_are_notified_through_the_line_state_mask() -> None:
    r = modemRig(counts=LineCounters())
    r.clock.advance(0)
    sent(r)
    r.line.counts = LineCounters(overrun=1)
    r.clock.advance(MODEM_POLL_INTERVAL)
    assert sent(r) == []  # the line-state mask is 0 until the client sets one
    r.server.received(bytes((10, 0x1E)))
    assert sent(r) == [bytes((110, 0x1E))]
    r.line.counts = LineCounters(overrun=1, parity=4, breaks=1)
    r.clock.advance(MODEM_POLL_INTERVAL)
    assert sent(r) == [bytes((106, 0x14))]
    r.line.counts = LineCounters(overrun=1, parity=4, breaks=1, framing=1)
    r.server.received(b"\x06")  # a poll: the framing error, in full
    assert sent(r) == [bytes((106, 0x08))]
    r.clock.advance(MODEM_POLL_INTERVAL)
    assert sent(r) == []  # told once


def test_nothing_is_polled_when_both_masks_are_zero() -> None:
    r = modemRig()
    r.clock.advance(0)
    r.server.received(bytes((11, 0)))
    assert not r.server.watch.polling
    r.server.received(bytes((10, 0x02)))
    assert r.server.watch.polling


def test_the_device_going_down_drops_every_line_and_stops_the_poll() -> None:
    r = modemRig()
    r.clock.advance(0)
    sent(r)
    device = r.hub.device
    r.hub.device = None
    r.server.deviceChanged(False)
    assert sent(r) == [bytes((107, DCTS | DDSR))]
    assert not r.server.watch.polling and r.clock.getDelayedCalls() == []
    r.line.modem = CTS | DSR | CD
    r.hub.device = device
    r.server.deviceChanged(True)
    assert sent(r) == [bytes((107, CTS | DSR | CD | DCTS | DDSR | DDCD))]
    assert r.server.watch.polling


def test_a_reopened_pty_is_reported_again_and_still_not_polled() -> None:
    r = modemRig(modem=None)
    r.clock.advance(0)
    sent(r)
    r.hub.device = None
    r.server.deviceChanged(False)
    r.hub.device = FakeDeviceWithLine(r.line)
    r.server.deviceChanged(True)
    assert sent(r) == [bytes((107, DCTS | DDSR | DDCD)), bytes((107, 0xBB))]
    assert not r.server.watch.polling


def test_the_client_leaving_ends_everything_even_a_pending_first_report() -> None:
    r = modemRig()
    r.server.closed()
    r.clock.advance(1)
    assert sent(r) == [] and r.clock.getDelayedCalls() == []
    r = modemRig()
    r.clock.advance(0)
    r.server.closed()
    assert not r.server.watch.polling and r.clock.getDelayedCalls() == []
    r.server.deviceChanged(False)  # told after it left: nothing sent
    assert sent(r) == [bytes((107, CTS | DSR))]


def test_mask_changes_are_logged_at_debug_and_polls_not_at_all() -> None:
    r = modemRig()
    with capturedLogs() as logged:
        r.clock.advance(0)
        r.line.modem = CTS
        r.clock.advance(MODEM_POLL_INTERVAL * 3)
        assert logged == []
        r.server.received(bytes((11, 0x30)))
    assert [e["log_level"] for e in logged] == [LogLevel.debug]
    assert "1.2.3.4:5 set its modem-state mask to 0x30 (was 0xff)" in formatEvent(logged[0])
