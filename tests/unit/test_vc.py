"""The virtual console backend: batching per reactor turn, bounded feeding, flow control
through the hub, replies back to the device, and the device-state banner."""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from vncmux.console.terminal import Terminal
from vncmux.console.vc import VirtualConsole
from vncmux.hub import Hub
from vncmux.interfaces import IBackend, IDevice


class RecordingTerminal(Terminal):
    def __init__(self, cols: int = 60, rows: int = 4) -> None:
        super().__init__(cols, rows)
        self.feeds: list[bytes] = []

    def feed(self, data: bytes) -> None:
        self.feeds.append(data)
        super().feed(data)


class FakeHub:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def blocked(self, backend: object) -> None:
        self.events.append(("blocked", backend))

    def unblocked(self, backend: object) -> None:
        self.events.append(("unblocked", backend))

    def input(self, data: bytes, source: object = None) -> None:
        self.events.append(("input", (data, source)))


class TurnClock(Clock):
    """A Clock whose ``turn`` runs only what was due when the turn began, like one
    reactor iteration (``Clock.advance`` would also run calls scheduled meanwhile)."""

    def turn(self) -> None:
        due = [c for c in self.calls if c.getTime() <= self.seconds()]
        for c in due:
            self.calls.remove(c)
            c.called = 1
            c.func(*c.args, **c.kw)


class StepTimer:
    """A fake monotonic clock that advances a fixed step each time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def make(**kw: Any) -> tuple[VirtualConsole, RecordingTerminal, FakeHub, TurnClock, list[int]]:
    term, hub, clock = RecordingTerminal(), FakeHub(), TurnClock()
    vc = VirtualConsole(hub, term, clock, **kw)  # type: ignore[arg-type]
    changes: list[int] = []
    vc.on_change = lambda: changes.append(1)
    term.take_damage()
    return vc, term, hub, clock, changes


def text(t: Terminal) -> list[str]:
    return ["".join(c.data for c in t.line(y)).rstrip() for y in range(t.rows)]


def test_provides_ibackend() -> None:
    vc, *_ = make()
    assert verifyObject(IBackend, vc)
    assert vc.label == "console" and vc.stallable is False


def test_writes_in_one_turn_are_fed_once_on_a_later_turn() -> None:
    vc, term, _, clock, changes = make()
    vc.write(b"hel")
    vc.write(b"lo ")
    vc.write(b"world")
    assert term.feeds == []  # never from inside write
    assert len(clock.getDelayedCalls()) == 1
    clock.turn()
    assert term.feeds == [b"hello world"]
    assert changes == [1]
    assert text(term)[0] == "hello world"
    assert clock.getDelayedCalls() == []


def test_no_change_notification_without_damage() -> None:
    vc, term, _, clock, changes = make()
    vc.write(b"\x1b[31m")  # attributes only: nothing on screen changes
    clock.turn()
    assert term.feeds == [b"\x1b[31m"]
    assert changes == []


def test_empty_write_schedules_nothing() -> None:
    vc, _, _, clock, _ = make()
    vc.write(b"")
    assert clock.getDelayedCalls() == []


def test_backlog_over_the_limit_blocks_until_drained() -> None:
    vc, term, hub, clock, _ = make(backlog_limit=100)
    vc.write(b"a" * 60)
    assert hub.events == []
    vc.write(b"b" * 60)
    vc.write(b"c" * 10)
    assert hub.events == [("blocked", vc)]  # once, however many writes follow
    assert vc.blocked and vc.backlog == 130
    clock.turn()
    assert hub.events == [("blocked", vc), ("unblocked", vc)]
    assert not vc.blocked and vc.backlog == 0
    assert b"".join(term.feeds) == b"a" * 60 + b"b" * 60 + b"c" * 10


def test_a_flood_is_fed_in_slices_within_the_time_budget() -> None:
    timer = StepTimer(0.01)
    vc, term, hub, clock, changes = make(backlog_limit=50, slice_size=10, time_budget=0.03,
                                         timer=timer)
    data = bytes(range(48, 58)) * 20  # 200 bytes of digits
    vc.write(data)
    assert hub.events == [("blocked", vc)]
    clock.turn()
    first = len(term.feeds)
    assert 1 <= first < 20  # stopped at the budget, not at the end
    assert all(len(f) <= 10 for f in term.feeds)
    assert vc.backlog == 200 - sum(map(len, term.feeds))
    assert len(clock.getDelayedCalls()) == 1  # and carries on next turn
    turns = 1
    while clock.getDelayedCalls():
        clock.turn()
        turns += 1
        assert turns < 100
    assert b"".join(term.feeds) == data  # in order, each byte once
    assert hub.events == [("blocked", vc), ("unblocked", vc)]
    assert turns > 1
    assert len(changes) == turns  # one notification per batch that changed the screen


def test_writes_during_draining_are_kept_in_order() -> None:
    timer = StepTimer(1.0)  # every slice exhausts the budget
    vc, term, _, clock, _ = make(slice_size=3, timer=timer)
    vc.write(b"abcdef")
    clock.turn()
    vc.write(b"ghi")
    while clock.getDelayedCalls():
        clock.turn()
    assert b"".join(term.feeds) == b"abcdefghi"
    assert text(term)[0] == "abcdefghi"


def test_terminal_replies_go_to_the_hub_as_input_from_the_console() -> None:
    vc, term, hub, clock, _ = make()
    vc.write(b"\x1b[2;7H\x1b[6n")
    clock.turn()
    assert hub.events == [("input", (b"\x1b[2;7R", vc))]
    assert all(row == "" for row in text(term))


def test_device_state_banner() -> None:
    vc, term, _, clock, changes = make()
    vc.write(b"\x1b[4;1Hlast row")
    clock.turn()
    changes.clear()
    term.take_damage()
    vc.deviceStateChanged(False, "device down: unix:/tmp/g.sock")
    assert changes == [1]
    banner = "".join(c.data for c in term.line(3))
    assert "device down: unix:/tmp/g.sock" in banner and "reconnecting" in banner
    assert term.take_damage().rows == {3}
    vc.deviceStateChanged(True, "unix:/tmp/g.sock connected")
    assert changes == [1, 1]
    assert text(term)[3] == "last row"
    assert 3 in term.take_damage().rows


def test_close_cancels_pending_work_and_releases_the_device() -> None:
    vc, term, hub, clock, _ = make(backlog_limit=5)
    vc.write(b"0123456789")
    vc.close()
    assert clock.getDelayedCalls() == []
    assert hub.events == [("blocked", vc), ("unblocked", vc)]
    assert term.feeds == []


@implementer(IDevice)
class FakeDevice:
    label = "fake"

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.paused = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False


def test_with_the_real_hub() -> None:
    clock = TurnClock()
    hub = Hub(clock)
    term = Terminal(40, 3)
    vc = VirtualConsole(hub, term, clock, backlog_limit=64)
    hub.attach(vc)
    assert "reconnecting" in "".join(c.data for c in term.line(2))  # no device yet
    device = FakeDevice()
    hub.deviceConnected(device, "fake connected")
    assert term.status is None
    hub.deviceOutput(b"x" * 100 + b"\x1b[5n")
    assert device.paused  # the console's backlog is over its limit
    clock.turn()
    assert not device.paused
    assert device.written == [b"\x1b[0n"]  # the status report reached the device
    assert clock.getDelayedCalls() == []  # the hub's stall timer does not apply
