"""The virtual console backend: batching per reactor turn, bounded feeding, flow control
through the hub, replies back to the device, and the device-state banner."""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.support.fakes import FakeDevice
from vncmux.console.interfaces import ITerminalEvents
from vncmux.console.terminal import Terminal
from vncmux.console.vc import VirtualConsole
from vncmux.hub import Hub
from vncmux.interfaces import IBackend


@implementer(ITerminalEvents)
class RepliesToBackend:
    """Terminal events that send replies back through the backend (as the Console does)."""

    def __init__(self) -> None:
        self.vc: VirtualConsole | None = None

    def reply(self, data: bytes) -> None:
        assert self.vc is not None
        self.vc.input(data)

    def bell(self) -> None:
        pass

    def title(self, title: str) -> None:
        pass

    def scrolledOff(self, rows: list[Any]) -> None:
        pass


class RecordingTerminal(Terminal):
    def __init__(self, cols: int = 60, rows: int = 4, events: Any = None) -> None:
        super().__init__(cols, rows, events=events)
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

    def input(self, data: bytes, source: object = None, client: object = None) -> None:
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
    events = RepliesToBackend()
    term, hub, clock = RecordingTerminal(events=events), FakeHub(), TurnClock()
    changes: list[int] = []
    vc = VirtualConsole(hub, term, clock, lambda: changes.append(1), **kw)  # type: ignore[arg-type]
    events.vc = vc
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
    vc, term, hub, clock, changes = make(
        backlog_limit=50, slice_size=10, time_budget=0.03, timer=timer
    )
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


def test_input_goes_to_the_hub_as_input_from_the_console() -> None:
    vc, term, hub, clock, _ = make()
    vc.input(b"ls\r")
    assert hub.events == [("input", (b"ls\r", vc))]


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


def test_with_the_real_hub() -> None:
    clock = TurnClock()
    hub = Hub(clock)
    events = RepliesToBackend()
    term = Terminal(40, 3, events=events)
    vc = events.vc = VirtualConsole(hub, term, clock, backlog_limit=64)
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


class CostlyTerminal(Terminal):
    """A terminal whose feeding takes ``cost`` seconds per byte on a shared fake clock."""

    def __init__(self, timer: StepTimer, cost: float) -> None:
        super().__init__(60, 4)
        self.timer = timer
        self.cost = cost
        self.feeds: list[bytes] = []

    def feed(self, data: bytes) -> None:
        self.feeds.append(data)
        self.timer.now += len(data) * self.cost
        super().feed(data)


def test_slices_shrink_to_the_measured_rate() -> None:
    """Output the terminal digests slowly must not hold the reactor for a whole slice."""
    timer = StepTimer(0.0)
    term = CostlyTerminal(timer, cost=1e-5)  # 100 KB/s: a 16 KiB slice would take 160 ms
    hub, clock = FakeHub(), TurnClock()
    vc = VirtualConsole(
        hub,
        term,
        clock,
        backlog_limit=10**6,
        time_budget=0.02,  # type: ignore[arg-type]
        timer=timer,
    )
    vc.write(b"x" * 200_000)
    turns = []
    while clock.getDelayedCalls():
        before, fed = timer.now, len(term.feeds)
        clock.turn()
        turns.append((timer.now - before, term.feeds[fed:]))
    assert b"".join(term.feeds) == b"x" * 200_000
    assert len(term.feeds[0]) == 4096  # the rate was not known yet: a modest first slice
    for spent, feeds in turns[1:]:
        assert all(len(f) <= 1000 for f in feeds)  # half the budget at 100 KB/s
        assert spent <= 0.02 + 0.01 + 1e-9


def test_a_flood_ends_in_the_screen_of_the_byte_by_byte_slow_path() -> None:
    """Lossless under flow control: the console pauses the device while it is behind, and
    at quiescence its screen is the one a slow terminal fed byte by byte shows."""
    import random

    rng = random.Random(3)
    lines = [
        b"\x1b[3%dmline %d\x1b[0m " % (i % 8, i) + b"word " * rng.randint(0, 20) + b"\r\n"
        for i in range(3000)
    ]
    data = b"".join(lines) + b"\x1b[H\x1b[2Jend\x1b[1;31m!" + bytes(range(256))
    timer = StepTimer(0.004)
    hub = Hub(TurnClock())
    clock = TurnClock()
    term = Terminal(50, 7)
    vc = VirtualConsole(
        hub, term, clock, backlog_limit=4096, slice_size=2048, time_budget=0.01, timer=timer
    )
    hub.attach(vc)
    device = FakeDevice()
    hub.deviceConnected(device, "fake connected")
    pos = turns = 0
    while pos < len(data) or clock.getDelayedCalls():
        if not device.paused and pos < len(data):
            n = rng.randint(1, 3000)
            hub.deviceOutput(data[pos : pos + n])
            pos += n
        assert device.paused == vc.blocked
        assert vc.blocked or vc.backlog <= 4096
        clock.turn()
        turns += 1
        assert turns < 10_000
    assert not device.paused and not vc.blocked and vc.backlog == 0
    slow = Terminal(50, 7, fast=False)
    for i in range(len(data)):
        slow.feed(data[i : i + 1])
    assert [list(term.line(y)) for y in range(7)] == [list(slow.line(y)) for y in range(7)]
    assert term._screen.cursor.x == slow._screen.cursor.x
    assert term.cursor == slow.cursor
