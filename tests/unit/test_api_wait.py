"""``/wait`` underneath: screen and output watches fire on the event that makes the pattern
match, time out on the clock, forget cancelled waits, and listen only while someone waits;
output is searched a bounded step at a time, and a backlog over several reactor turns; waiters
at the same place in the output search it together, one set search telling whose own search
can match;
patterns that backtrack without end in Python's ``re`` run quickly over a large screen
or output."""

from __future__ import annotations

import time
from typing import Any

import pytest
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.testing import Clock
from zope.interface.verify import verifyObject

from tests.support.fakes import FakeDevice
from vncmux.api.pattern import MAX_PATTERN_CHARS, Match, PatternError, compile_pattern
from vncmux.api.wait import (
    CHECK_INTERVAL,
    OUTPUT_INTERVAL,
    OUTPUT_SPAN,
    OUTPUT_STEP,
    SEARCH_SLICE,
    SET_PROGRAM_SIZE,
    OutputWatch,
    ScreenWatch,
    WaitTimeout,
)
from vncmux.console.console import Console
from vncmux.console.interfaces import IConsoleListener
from vncmux.history import HistoryBackend, OutputHistory
from vncmux.hub import Hub


class Setup:
    def __init__(self) -> None:
        self.clock = Clock()
        self.hub = Hub(self.clock)
        self.history = OutputHistory(1 << 16, self.clock.seconds)
        self.hub.attach(HistoryBackend(self.history))
        self.hub.deviceConnected(FakeDevice())
        self.console = Console(self.hub, self.clock, 30, 4)
        self.console.start()
        self.screen = ScreenWatch(self.console, self.clock, lambda: self.history.end)
        self.output = OutputWatch(self.history, self.clock)

    def feed(self, data: bytes) -> None:
        """Output that reaches the screen, and time enough for the screen to be checked."""
        self.hub.deviceOutput(data)
        self.clock.advance(0)
        self.clock.advance(CHECK_INTERVAL)


def result(d: Deferred[Any]) -> list[Any]:
    got: list[Any] = []
    d.addBoth(got.append)
    return got


@pytest.fixture
def s() -> Setup:
    return Setup()


def test_the_screen_watch_is_a_console_listener(s: Setup) -> None:
    verifyObject(IConsoleListener, s.screen)


def test_a_screen_pattern_already_there_matches_at_once(s: Setup) -> None:
    s.feed(b"login: ")
    got = result(s.screen.wait(compile_pattern(r"login: ?$"), 5))
    # rows lose their trailing blanks, so "login: " reads "login:"
    assert got == [{"match": "login:", "groups": [], "row": 0, "col": 0, "offset": 7}]
    assert s.screen.waiting == 0


def test_a_screen_pattern_arriving_in_pieces_and_across_a_redraw(s: Setup) -> None:
    got = result(s.screen.wait(compile_pattern(r"READY (\d\d)$"), 5))
    s.feed(b"REA")
    s.feed(b"DY 4")
    assert got == []
    s.feed(b"\x1b[2J\x1b[H")  # a full redraw wipes the half-written line
    s.feed(b"x\r\nREADY 4")
    assert got == []
    s.feed(b"2")
    assert got[0]["match"] == "READY 42" and got[0]["groups"] == ["42"]
    assert (got[0]["row"], got[0]["col"]) == (1, 0)


def test_the_screen_watch_listens_only_while_someone_waits(s: Setup) -> None:
    d = s.screen.wait(compile_pattern("never"), 5)
    assert s.screen in s.console._listeners
    d.cancel()
    assert s.screen not in s.console._listeners
    got = result(s.screen.wait(compile_pattern("soon"), 5))
    s.feed(b"soon")
    assert got and s.screen not in s.console._listeners


def test_a_screen_wait_times_out_on_the_clock(s: Setup) -> None:
    got = result(s.screen.wait(compile_pattern("never"), 2.5))
    s.clock.advance(2.4)
    assert got == []
    s.clock.advance(0.2)
    assert got[0].check(WaitTimeout)
    assert s.screen.waiting == 0 and s.screen not in s.console._listeners


def test_a_cancelled_wait_is_forgotten_with_its_timer(s: Setup) -> None:
    d = s.screen.wait(compile_pattern("never"), 2)
    got = result(d)
    d.cancel()
    assert got[0].check(CancelledError)
    assert s.clock.getDelayedCalls() == []
    assert s.screen.waiting == 0


def test_many_waiters_each_fire_on_their_own_pattern(s: Setup) -> None:
    waits = [result(s.screen.wait(compile_pattern(f"item{i}\\b"), 5)) for i in range(100)]
    assert s.screen.waiting == 100
    s.feed(b"item7 item42")
    assert [i for i, got in enumerate(waits) if got] == [7, 42]
    assert s.screen.waiting == 98


def test_an_output_pattern_arriving_in_pieces(s: Setup) -> None:
    s.feed(b"old boot-ok\n")
    got = result(s.output.wait(compile_pattern("boot-ok", as_bytes=True), s.history.end, 5))
    s.feed(b"...bo")
    s.feed(b"ot-")
    assert got == []
    s.feed(b"ok!")
    assert got == [{"match": "boot-ok", "groups": [], "offset": 15, "end": 22}]
    assert s.output.waiting == 0


def test_an_output_pattern_from_an_earlier_offset_matches_the_history(s: Setup) -> None:
    s.feed(b"abc\ndone 7\nxyz")
    got = result(s.output.wait(compile_pattern(r"^done (\d)$", as_bytes=True), 0, 5))
    assert got[0]["groups"] == ["7"] and got[0]["offset"] == 4


def test_an_output_match_of_the_span_limit_is_found_a_longer_one_may_not_be(s: Setup) -> None:
    near = result(s.output.wait(compile_pattern("<a*>", as_bytes=True), 0, 5))
    far = result(s.output.wait(compile_pattern("{b*}", as_bytes=True), 0, 5))
    s.feed(b"<" + b"a" * (OUTPUT_SPAN - 2))
    s.feed(b">")
    assert near and near[0]["end"] - near[0]["offset"] == OUTPUT_SPAN
    s.feed(b"{" + b"b" * OUTPUT_SPAN)
    s.feed(b"}")
    assert far == []  # its start left the window before its end came


def test_an_output_wait_from_the_future_is_refused(s: Setup) -> None:
    s.feed(b"abc")
    with pytest.raises(ValueError):
        s.output.wait(compile_pattern("x", as_bytes=True), 4, 5)


def test_the_output_watch_subscribes_only_while_someone_waits(s: Setup) -> None:
    d = s.output.wait(compile_pattern("x", as_bytes=True), s.history.end, 1)
    assert s.history._subscribers
    got = result(d)
    s.clock.advance(1)
    assert got[0].check(WaitTimeout)
    assert not s.history._subscribers


@pytest.mark.parametrize("pattern", ["(", "a{2,1}", "x" * (MAX_PATTERN_CHARS + 1)])
def test_bad_patterns_are_refused_with_a_reason(pattern: str) -> None:
    with pytest.raises(PatternError):
        compile_pattern(pattern)


def test_a_screen_that_keeps_changing_is_read_once_per_interval_and_after_the_last_change(
    s: Setup,
) -> None:
    got = result(s.screen.wait(compile_pattern(r"^line 9$"), 5))
    reads: list[int] = []
    text = s.console.text

    def counted() -> list[str]:
        reads.append(1)
        return text()

    s.console.text = counted  # type: ignore[method-assign]
    for n in range(10):  # ten changes within one interval
        s.hub.deviceOutput(b"\r\nline %d" % n)
        s.clock.advance(0)
    assert len(reads) == 1 and got == []  # the first change was read at once
    s.clock.advance(CHECK_INTERVAL)
    assert len(reads) == 2  # one reading for the other nine, of the screen as it is now
    assert got and got[0]["match"] == "line 9"


# -- what one output search covers, and the reactor turns it takes -----------------------------


class SpyRegex:
    """A compiled bytes pattern that records how much text each search covered."""

    def __init__(self, pattern: str) -> None:
        self.regex = compile_pattern(pattern, as_bytes=True)
        self.sizes: list[int] = []

    def search(self, text: bytes, pos: int = 0) -> Match | None:
        self.sizes.append(len(text) - pos)
        return self.regex.search(text, pos)


class SlowTimer:
    """A ``timer`` by which every search step uses up a whole slice."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += SEARCH_SLICE
        return self.now


def one_turn(clock: Clock) -> None:
    """Run the calls due now, but not those they schedule for now (``Clock.advance(0)``
    would): what one reactor turn does."""
    due = [call for call in clock.calls if call.getTime() <= clock.seconds()]
    for call in due:
        clock.calls.remove(call)
        call.called = 1
        call.func(*call.args, **call.kw)


def test_a_large_chunk_is_searched_a_step_at_a_time_and_matches_across_steps(s: Setup) -> None:
    spy = SpyRegex("MARK")
    got = result(s.output.wait(spy, s.history.end, 5))
    at = 3 * OUTPUT_STEP - 2  # "MA" ends one step, "RK" begins the next
    s.feed(b"x" * at + b"MARK" + b"y" * (5 * OUTPUT_STEP))
    assert got == [{"match": "MARK", "groups": [], "offset": at, "end": at + 4}]
    assert len(spy.sizes) == 4  # three steps before, the fourth finds it
    assert max(spy.sizes) <= OUTPUT_SPAN + OUTPUT_STEP


def test_a_backlog_is_searched_over_several_turns_when_the_slice_is_used_up(s: Setup) -> None:
    watch = OutputWatch(s.history, s.clock, timer=SlowTimer())
    s.feed(b"z" * (5 * OUTPUT_STEP) + b"MARK")
    spy = SpyRegex("MARK")
    got = result(watch.wait(spy, 0, 5))
    turns = 0
    while not got:
        assert len(spy.sizes) == turns + 1  # one step a turn: the reactor runs in between
        assert watch.waiting == 1
        one_turn(s.clock)
        turns += 1
    assert turns == 5 and got[0]["offset"] == 5 * OUTPUT_STEP
    assert max(spy.sizes) <= OUTPUT_SPAN + OUTPUT_STEP
    assert watch.waiting == 0 and s.clock.getDelayedCalls() == []


def test_waiters_behind_take_turns(s: Setup) -> None:
    watch = OutputWatch(s.history, s.clock, timer=SlowTimer())
    s.feed(b"z" * (8 * OUTPUT_STEP))
    first, second = SpyRegex("never"), SpyRegex("never either")
    watch.wait(first, 0, 5)
    watch.wait(second, 0, 5)
    for _ in range(6):
        one_turn(s.clock)
        assert abs(len(first.sizes) - len(second.sizes)) <= 1
    assert len(first.sizes) + len(second.sizes) == 8  # one step each turn, one each wait


def test_a_wait_cancelled_while_catching_up_leaves_nothing_scheduled(s: Setup) -> None:
    watch = OutputWatch(s.history, s.clock, timer=SlowTimer())
    s.feed(b"z" * (4 * OUTPUT_STEP))
    d = watch.wait(compile_pattern("never", as_bytes=True), 0, 5)
    assert s.clock.getDelayedCalls()  # the timeout and the next turn
    d.cancel()
    assert s.clock.getDelayedCalls() == [] and not s.history._subscribers


def test_a_history_that_holds_nothing_still_serves_waits_from_now_on() -> None:
    clock = Clock()
    history = OutputHistory(0, clock.seconds)
    watch = OutputWatch(history, clock)
    history.append(b"before")
    got = result(watch.wait(compile_pattern("MARK", as_bytes=True), history.end, 5))
    at = 2 * OUTPUT_STEP - 1
    history.append(b"x" * at + b"MARK" + b"y" * OUTPUT_STEP)
    assert got and got[0]["offset"] == 6 + at


def test_a_wait_left_further_behind_than_the_history_goes_on_from_the_oldest_held() -> None:
    clock = Clock()
    history = OutputHistory(4 * OUTPUT_STEP, clock.seconds)
    watch = OutputWatch(history, clock, timer=SlowTimer())
    history.append(b"z" * (3 * OUTPUT_STEP))
    got = result(watch.wait(compile_pattern("MARK", as_bytes=True), 0, 5))
    history.append(b"MARK" + b"z" * (8 * OUTPUT_STEP))  # overwritten before it is searched
    history.append(b"MARK")
    clock.advance(0)
    assert got[0]["offset"] == 11 * OUTPUT_STEP + 4  # the first MARK was gone unsearched


# -- patterns that backtrack without end in Python's re, over a large screen and output -----

#: Each with a line that makes ``re`` backtrack without end (for minutes: ``(a+)+$`` tries
#: 2**30 ways on it), and whether RE2 finds something there (``\s*\s*$`` does: nothing,
#: at the end of a line).  Lines of 32 bytes with their newline: an output step (2 KiB)
#: ends after a newline, so ``$`` at the end of a step finds what it finds at a line's.
HOSTILE = [
    (r"(a+)+$", "a" * 30 + "!", False),
    (r"(a|aa)*b", "a" * 31, False),
    (r"(.*a){20}", "a" * 19 + "b" * 12, False),
    (r"\s*\s*$", " " * 30 + "x", True),
    (r".*x.*y", "x" * 31, False),
]
LINES = 3200  # 100 KiB


@pytest.mark.parametrize(("pattern", "line", "matches"), HOSTILE)
def test_a_hostile_pattern_searches_a_100_KiB_screen_quickly(
    pattern: str, line: str, matches: bool
) -> None:
    clock = Clock()
    hub = Hub(clock)
    hub.deviceConnected(FakeDevice())
    console = Console(hub, clock, len(line), LINES + 1)
    console.start()
    hub.deviceOutput((line + "\r\n").encode() * LINES)
    clock.advance(0)
    assert len("\n".join(console.text())) >= 100 << 10
    watch = ScreenWatch(console, clock)
    began = time.perf_counter()
    got = result(watch.wait(compile_pattern(pattern), 5))
    assert time.perf_counter() - began < 1.0  # a correctness bound, not a benchmark
    assert bool(got) == matches and watch.waiting == (0 if matches else 1)


@pytest.mark.parametrize(("pattern", "line", "matches"), HOSTILE)
def test_a_hostile_pattern_searches_100_KiB_of_output_quickly(
    pattern: str, line: str, matches: bool
) -> None:
    clock = Clock()
    history = OutputHistory(1 << 20, clock.seconds)
    history.append((line + "\n").encode() * LINES)
    watch = OutputWatch(history, clock)
    began = time.perf_counter()
    got = result(watch.wait(compile_pattern(pattern, as_bytes=True), 0, 5))
    while not got and any(call.getTime() <= clock.seconds() for call in clock.getDelayedCalls()):
        one_turn(clock)  # the backlog, over the turns it takes
    assert time.perf_counter() - began < 1.0  # a correctness bound, not a benchmark
    assert bool(got) == matches
    if not matches:  # caught up, searched everything, still waiting
        assert watch.waiting == 1 and watch._waiters[0].end == history.end == 100 << 10


# -- waiters at the same place search together: one set search, then only those it names -----


class SetSpy(SpyRegex):
    """A ``SpyRegex`` that can join a set (it shows its pattern's source and options): its
    ``sizes`` count only its own searches."""

    def __init__(self, pattern: str) -> None:
        super().__init__(pattern)
        self.pattern = self.regex.pattern  # type: ignore[attr-defined]
        self.options = self.regex.options  # type: ignore[attr-defined]
        self.programsize = self.regex.programsize  # type: ignore[attr-defined]


def test_idle_waiters_cost_one_set_search_and_only_a_matching_one_searches(s: Setup) -> None:
    idle = [SetSpy(f"no-such-text-{i}-[0-9]{{12}}") for i in range(40)]
    for spy in idle:
        s.output.wait(spy, s.history.end, 5)
    mark = SetSpy("MA+RK (\\d)")
    got = result(s.output.wait(mark, s.history.end, 5))
    assert len(s.output._cursors) == 2  # more instructions than one set takes
    assert sum(c.cost for c in s.output._cursors) > SET_PROGRAM_SIZE
    at = 3 * OUTPUT_STEP - 3  # "MAA" ends one step, "RK 7" begins the next
    s.feed(b"x" * at + b"MAARK 7" + b"y" * (5 * OUTPUT_STEP))
    assert got == [{"match": "MAARK 7", "groups": ["7"], "offset": at, "end": at + 7}]
    assert len(mark.sizes) == 1  # its own search ran once: when the set said it matches
    assert all(spy.sizes == [] for spy in idle)
    assert s.output.waiting == 40
    assert all(c.end == s.history.end for c in s.output._cursors)


def test_a_waiter_joins_the_others_once_it_has_searched_the_same_window(s: Setup) -> None:
    first = result(s.output.wait(compile_pattern("^one$", as_bytes=True), 0, 5))
    s.feed(b"x" * 10 + b"\n")
    second = result(s.output.wait(compile_pattern("^two$", as_bytes=True), s.history.end, 5))
    late = result(s.output.wait(compile_pattern("^xx", as_bytes=True), 5, 5))
    assert late and late[0]["offset"] == 5  # from= is where the text starts, as before
    assert len(s.output._cursors) == 2  # the second has not searched what the first has
    s.feed(b"z" * OUTPUT_SPAN)
    assert len(s.output._cursors) == 1  # now both look back OUTPUT_SPAN from the same end
    s.feed(b"\ntwo\n")
    assert first == [] and second and second[0]["match"] == "two"
    s.feed(b"one\n")
    assert first and first[0]["offset"] == s.history.end - 4


def test_a_waiter_that_leaves_takes_its_pattern_out_of_the_set(s: Setup) -> None:
    waits = [s.output.wait(compile_pattern(f"item{i}!", as_bytes=True), 0, 5) for i in range(4)]
    got = [result(d) for d in waits]
    s.feed(b"z" * (OUTPUT_SPAN + 1))
    assert len(s.output._cursors) == 1
    waits[1].cancel()
    s.feed(b"item2! item3!")  # the set is rebuilt: its indices are the waiters left
    assert got[0] == [] and got[1][0].check(CancelledError)
    assert got[2][0]["match"] == "item2!" and got[3][0]["match"] == "item3!"
    assert s.output.waiting == 1 and len(s.output._cursors) == 1


def test_waiters_whose_set_search_is_slow_go_on_one_by_one(s: Setup) -> None:
    watch = OutputWatch(s.history, s.clock, setTimer=SlowTimer())  # every set search is slow
    got = [result(watch.wait(compile_pattern(f"item{i}!", as_bytes=True), 0, 5)) for i in range(3)]
    assert len(watch._cursors) == 1  # all at 0, with nothing searched yet
    s.feed(b"z" * 10)
    assert len(watch._cursors) == 3 and all(c.solo for c in watch._cursors)
    s.feed(b"item1!")
    assert not got[0] and got[1][0]["match"] == "item1!" and not got[2]
    assert len(watch._cursors) == 2  # solo: never merged again


def test_64_hostile_waiters_search_100_KiB_of_output_quickly() -> None:
    """Patterns whose set's DFA keeps outgrowing its memory: slow sets split (at most one
    slow set search each) and the waiters go on one by one, as fast as on their own."""
    clock = Clock()
    history = OutputHistory(1 << 20, clock.seconds)
    watch = OutputWatch(history, clock)
    got = [
        result(watch.wait(compile_pattern(f"[ab]*a[ab]{{{n}}}c", as_bytes=True), 0, 5))
        for n in range(10, 74)
    ]
    history.append(b"z" * (OUTPUT_SPAN + 1))
    assert len(watch._cursors) < 64  # in sets, at first
    began = time.perf_counter()
    history.append(bytes(b"ab"[(n * 7 + n // 5) % 2] for n in range(100 << 10)))
    while any(call.getTime() <= clock.seconds() for call in clock.getDelayedCalls()):
        one_turn(clock)
    assert time.perf_counter() - began < 10.0  # a correctness bound, not a benchmark
    assert not any(got) and all(c.end == history.end for c in watch._cursors)


@pytest.mark.parametrize("size", [0, 1 << 16])
def test_output_in_small_pieces_is_searched_a_step_or_an_interval_at_a_time(size: int) -> None:
    clock = Clock()
    history = OutputHistory(size, clock.seconds)
    watch = OutputWatch(history, clock)
    spy = SpyRegex("MARK")
    got = result(watch.wait(spy, history.end, 5))
    piece = OUTPUT_STEP // 4
    history.append(b"x" * piece)
    assert spy.sizes == [piece]  # after a quiet spell: at once
    for _ in range(3):
        history.append(b"y" * piece)
    assert len(spy.sizes) == 1  # held: less than a step, within the interval
    history.append(b"z" * piece)
    assert spy.sizes == [piece, piece + OUTPUT_STEP]  # a step's worth: searched together
    history.append(b"MARK")
    clock.advance(OUTPUT_INTERVAL / 2)
    assert got == []
    clock.advance(OUTPUT_INTERVAL / 2)  # held no longer than the interval, even with no history
    assert got and got[0]["offset"] == piece + OUTPUT_STEP
