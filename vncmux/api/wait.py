"""``/wait``: answer when a pattern shows up on the screen or in the output.

Event-driven, so idle waiters cost nothing: ``ScreenWatch`` listens to the console only
while somebody waits and, on a ``changed`` (at most every ``CHECK_INTERVAL`` while the
screen keeps changing, and always after the last change), reads the screen text once for
all its waiters; ``OutputWatch`` subscribes to the output history only while somebody waits
and searches the new output from a little before where its last search ended, once for all
the waiters that have searched the same output: one pass of an RE2 set of their patterns
(``pattern.PatternSet``) says whose pattern matches, and only those search on their own.
Nothing polls.  Each wait is a ``Deferred`` that fires with the match (a dict), fails with
``WaitTimeout`` after its timeout, and forgets everything when cancelled (the HTTP client
went away).

Patterns are RE2 regular expressions compiled by ``pattern.compile_pattern``, with ``^``
and ``$`` matching at every row or line.  A screen pattern sees the screen's rows joined
with newlines; an output pattern sees the raw bytes (the pattern is taken as UTF-8); a match
of up to ``OUTPUT_SPAN`` bytes is always found, a longer one may not be.

RE2 searches in time linear in the text, but linear is not small: over a backlog of many
MiB, at up to some microseconds a byte for the costliest pattern accepted, one search would
hold the process for seconds.  So no output search covers more than ``OUTPUT_SPAN +
OUTPUT_STEP`` bytes (a large chunk or a backlog read from the history is searched a step at
a time), and output searches stop for the turn after ``SEARCH_SLICE`` seconds and go on at
the next reactor turn, waiters in turn: many waits catching up on a large history share the
process with the consoles, viewers and the device instead of holding it (``OUTPUT_STEP`` says
what one step costs).  A wait left further behind than the history holds goes on from the
oldest output still held.  The screen is searched whole, once per check: its text is no
larger than the screen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from vncmux.api.pattern import Match, Pattern, PatternError, PatternSet, set_cost
from vncmux.api.screen import match_position
from vncmux.console.interfaces import ChangeListener

log = Logger()

#: Longest output match always found, in bytes: new output is searched from this far back.
OUTPUT_SPAN = 4096
#: Most new output one search takes in: a search covers at most ``OUTPUT_SPAN +
#: OUTPUT_STEP`` bytes (8 KiB), however large the chunk that arrived or the backlog to search.
#: What one step costs: for common patterns, one set search of up to 64 waiters' patterns
#: about 15 microseconds; at worst, one pattern alone (RE2's NFA at some microseconds a
#: byte for the costliest accepted) about 40 milliseconds, and a set of ``SET_PROGRAM_SIZE``
#: instructions whose DFA keeps outgrowing its memory about 80 milliseconds (measured),
#: once: then its waiters go on one by one (``SET_SLOW``).  A larger step makes that worst
#: longer; a smaller one makes idle waiters cost more: each byte is searched ``(OUTPUT_SPAN
#: + OUTPUT_STEP) / OUTPUT_STEP`` times (twice; three times at 2 KiB), and the Python
#: around each step counts too.
OUTPUT_STEP = 4096
#: Seconds new output may wait to be searched: output that comes less than this after the
#: last search is held until a step's worth has come or this time is up, so output coming in
#: small pieces is searched a step at a time, not once a piece (each search reads the
#: ``OUTPUT_SPAN`` before it again).  Output after a quiet spell is searched at once.
OUTPUT_INTERVAL = 0.005
#: Most RE2 instructions of patterns in one set (one ``PatternSet``, so one set search):
#: as many as one pattern may have, which bounds a thrashing set's search (above).  Common
#: patterns take 10 to 60, so a few dozen share one set.
SET_PROGRAM_SIZE = 1000
#: Seconds a set search may take (a common one takes microseconds): past that, its DFA is
#: thrashing on this output, and its waiters go on one by one for the rest of their wait.
SET_SLOW = 0.002
#: Seconds of output searching in one reactor turn, at least one step; the rest waits for
#: the next turn.
SEARCH_SLICE = 0.01
#: Seconds between two readings of a screen that keeps changing (see ``ScreenWatch``).
CHECK_INTERVAL = 0.02
#: Longest timeout accepted, in seconds.
MAX_TIMEOUT = 3600.0

Result = dict[str, Any]


class WaitTimeout(Exception):
    """The pattern did not show up in time."""


def _decoded(found: str | bytes | bytearray) -> str:
    return found if isinstance(found, str) else found.decode("utf-8", "replace")


def _groups(match: Match) -> list[str | None]:
    return [None if g is None else _decoded(g) for g in match.groups()]


class _Waiter:
    """One pending wait: its Deferred and its timer."""

    def __init__(self, forget: Callable[[_Waiter], None]) -> None:
        self.deferred: Deferred[Result] = Deferred(lambda _d: forget(self))
        self.timer: IDelayedCall | None = None

    def fire(self, result: Result) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.deferred.callback(result)


class _Watch:
    """What both watches share: the waiter list and the timeouts."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._waiters: list[Any] = []

    @property
    def waiting(self) -> int:
        """How many waits are pending."""
        return len(self._waiters)

    def _add(self, waiter: Any, timeout: float) -> None:
        if not self._waiters:
            self._start()
        self._waiters.append(waiter)
        waiter.timer = self._clock.callLater(timeout, self._timedOut, waiter)

    def _forget(self, waiter: Any) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)
            if waiter.timer is not None and waiter.timer.active():
                waiter.timer.cancel()
            if not self._waiters:
                self._stop()

    def _timedOut(self, waiter: Any) -> None:
        waiter.timer = None
        if waiter in self._waiters:
            self._forget(waiter)
            waiter.deferred.errback(WaitTimeout())

    def _matched(self, waiter: Any, result: Result) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)
            if not self._waiters:
                self._stop()
        waiter.fire(result)

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError


class _ScreenWaiter(_Waiter):
    def __init__(self, forget: Callable[[_Waiter], None], regex: Pattern) -> None:
        super().__init__(forget)
        self.regex = regex


class ScreenWatch(_Watch, ChangeListener):
    """Waits for patterns on one console's screen (see the module docstring).

    The screen is read again on a change, but at most once per ``CHECK_INTERVAL`` while it
    keeps changing (a flood changes it on every reactor turn), and always after the last
    change: a screen that settles is always checked, one that lasted less than the
    interval in the middle of a flood may not be (no viewer saw it either: frames are
    paced too).  ``offset`` is called for the output offset the screen reflects,
    reported with a match.
    """

    def __init__(
        self, console: Any, clock: IReactorTime, offset: Callable[[], int | None] = lambda: None
    ) -> None:
        super().__init__(clock)
        self._console = console
        self._offset = offset
        self._lastCheck = float("-inf")
        self._later: IDelayedCall | None = None

    def wait(self, regex: Pattern, timeout: float) -> Deferred[Result]:
        """Fires with ``{"match", "groups", "row", "col", "offset"}`` as soon as ``regex``
        matches the screen (at once if it does now)."""
        text = self._text()
        found = self._search(regex, text)
        if found is not None:
            return succeed(found)
        waiter = _ScreenWaiter(self._forget, regex)
        self._add(waiter, timeout)
        return waiter.deferred

    def _text(self) -> str:
        return "\n".join(self._console.text())

    def _search(self, regex: Pattern, text: str) -> Result | None:
        match = regex.search(text)
        if match is None:
            return None
        row, col = match_position(text, match.start())
        return {
            "match": match.group(0),
            "groups": _groups(match),
            "row": row,
            "col": col,
            "offset": self._offset(),
        }

    def _start(self) -> None:
        self._console.subscribe(self)

    def _stop(self) -> None:
        self._console.unsubscribe(self)
        if self._later is not None and self._later.active():
            self._later.cancel()
        self._later = None

    def _check(self) -> None:
        self._later = None
        self._lastCheck = self._clock.seconds()
        text = self._text()
        for waiter in list(self._waiters):
            found = self._search(waiter.regex, text)
            if found is not None:
                self._matched(waiter, found)

    # -- IConsoleListener

    def changed(self) -> None:
        if self._later is not None:
            return  # a check is due soon; it will read the screen as it is then
        wait = self._lastCheck + CHECK_INTERVAL - self._clock.seconds()
        if wait <= 0:
            self._check()
        else:
            self._later = self._clock.callLater(wait, self._check)


class _OutputWaiter(_Waiter):
    """One output wait: its pattern, and the cursor it searches the output with."""

    def __init__(self, forget: Callable[[_Waiter], None], regex: Pattern, start: int) -> None:
        super().__init__(forget)
        self.regex = regex
        self.cost = set_cost(regex)
        self.cursor = _Cursor(start, solo=self.cost is None)
        self.cursor.waiters.append(self)

    @property
    def end(self) -> int:
        """The offset just after the output searched so far."""
        return self.cursor.end


class _Cursor:
    """Output waiters that have searched the same output, up to ``end``: they search the
    next step over the same window, ``buffer`` (its last bytes, at most ``OUTPUT_SPAN``
    between searches, where a match may yet begin) and the step's data.  With more than
    one waiter, a ``PatternSet`` of their patterns (built when first needed after they
    change) says whose search can match; only those search.  A ``solo`` cursor holds one
    waiter and is never merged: its pattern cannot join a set, or it was in a set that was
    too slow (``SET_SLOW``)."""

    def __init__(self, start: int, solo: bool = False) -> None:
        self.base = start
        self.buffer = b""
        self.waiters: list[_OutputWaiter] = []
        self.solo = solo
        self.slow = False
        self._set: PatternSet | None = None
        self._cost: int | None = None

    @property
    def end(self) -> int:
        """The offset just after the output searched so far."""
        return self.base + len(self.buffer)

    @property
    def cost(self) -> int:
        """Its patterns' RE2 instructions, together."""
        if self._cost is None:
            self._cost = sum(w.cost or 0 for w in self.waiters)
        return self._cost

    def changed(self) -> None:
        """Waiters came or went: the set is rebuilt when next needed."""
        self._set = None
        self._cost = None

    def skip(self, offset: int) -> None:
        """What came before ``offset`` is gone unsearched: go on from there."""
        self.base, self.buffer = offset, b""

    def search(
        self, offset: int, data: bytes, timer: Callable[[], float]
    ) -> list[tuple[_OutputWaiter, Result]]:
        """Take ``data`` (at most ``OUTPUT_STEP`` bytes) at ``offset`` (``end``, or later
        after a gap); the waiters that now match, with their matches (they leave the
        cursor).  ``slow`` says whether the set took longer than ``SET_SLOW``."""
        if offset != self.end:
            self.skip(offset)
        window = self.buffer + data
        found: list[tuple[_OutputWaiter, Result]] = []
        for waiter in self._candidates(window, timer):
            match = waiter.regex.search(window)
            if match is not None:
                found.append((waiter, _outputResult(match, self.base)))
        for waiter, _ in found:
            self.waiters.remove(waiter)
        if found:
            self.changed()
        self.buffer = window[-OUTPUT_SPAN:]
        self.base += len(window) - len(self.buffer)
        return found

    def _candidates(self, window: bytes, timer: Callable[[], float]) -> list[_OutputWaiter]:
        """The waiters whose pattern may match in ``window``: those the set says."""
        if len(self.waiters) < 2:
            return list(self.waiters)
        if self._set is None:
            try:
                self._set = PatternSet([w.regex for w in self.waiters])
            except PatternError as e:
                log.warn("output waits searched one by one: {error}", error=e)
                self.slow = True
                return list(self.waiters)
        began = timer()
        indices = self._set.matching(window)
        self.slow = timer() - began > SET_SLOW
        return [self.waiters[i] for i in indices]


def _outputResult(match: Match, base: int) -> Result:
    return {
        "match": _decoded(match.group(0)),
        "groups": _groups(match),
        "offset": base + match.start(),
        "end": base + match.end(),
    }


Chunk = tuple[int, bytes]
_NO_CHUNK: Chunk = (0, b"")


class OutputWatch(_Watch):
    """Waits for patterns in one output history (see the module docstring).

    Waiters that have searched the same output share a cursor (``_Cursor``), at most
    ``SET_PROGRAM_SIZE`` instructions of patterns to a cursor.  Each cursor searches the
    output after its ``end`` a step (``OUTPUT_STEP`` bytes) at a time: from the chunk that
    just arrived when it holds that output (a history of size 0 holds nothing), otherwise
    from the history.  One turn takes steps, cursor after cursor, until every cursor has
    caught up or ``SEARCH_SLICE`` seconds (of ``timer``) have gone; then the turn ends and
    the rest goes on at the next reactor turn, the cursors left over first.  Cursors that
    have come to the same window merge after the turn.  A turn comes with new output, or up
    to ``OUTPUT_INTERVAL`` later while less than a step of it has come (held meanwhile: the
    chunk of a turn is all the output held, so a history of size 0 loses none).  Set
    searches are timed against ``SET_SLOW`` by ``setTimer``, the thread's CPU time: a search
    during which the process was only made to wait is not a slow one."""

    def __init__(
        self,
        history: Any,
        clock: IReactorTime,
        timer: Callable[[], float] = time.perf_counter,
        setTimer: Callable[[], float] = time.thread_time,
    ) -> None:
        super().__init__(clock)
        self._history = history
        self._timer = timer
        self._setTimer = setTimer
        self._resume: IDelayedCall | None = None
        self._cursors: list[_Cursor] = []
        #: New output held, not searched yet (at ``_pendingAt``; less than ``OUTPUT_STEP``
        #: bytes between turns), and when the last turn was (see ``OUTPUT_INTERVAL``).
        self._pending = bytearray()
        self._pendingAt = 0
        self._lastTurn = float("-inf")

    def wait(self, regex: Pattern, from_: int, timeout: float) -> Deferred[Result]:
        """Fires with ``{"match", "groups", "offset", "end"}`` (byte offsets of the match)
        once ``regex`` matches the output from ``from_`` on (what is still held of it).
        ``ValueError`` when ``from_`` is in the future."""
        start, _ = self._history.read(from_, 0)
        waiter = _OutputWaiter(self._forget, regex, start)
        queue = [waiter.cursor]
        found = self._catchUp(queue, _NO_CHUNK)
        if found:
            return succeed(found[0][1])
        self._add(waiter, timeout)
        self._cursors.append(waiter.cursor)
        if waiter.end < self._history.end:
            self._later()
        else:
            self._merge()
        return waiter.deferred

    def _forget(self, waiter: Any) -> None:
        self._leave(waiter)
        super()._forget(waiter)

    def _matched(self, waiter: Any, result: Result) -> None:
        self._leave(waiter)
        super()._matched(waiter, result)

    def _leave(self, waiter: _OutputWaiter) -> None:
        cursor = waiter.cursor
        if waiter in cursor.waiters:
            cursor.waiters.remove(waiter)
            cursor.changed()
        if not cursor.waiters and cursor in self._cursors:
            self._cursors.remove(cursor)

    def _start(self) -> None:
        self._history.subscribe(self._append)

    def _stop(self) -> None:
        self._history.unsubscribe(self._append)
        if self._resume is not None and self._resume.active():
            self._resume.cancel()
        self._resume = None
        self._pending = bytearray()

    def _append(self, offset: int, data: bytes) -> None:
        if self._pending and offset != self._pendingAt + len(self._pending):
            self._flush()  # not the output that follows: what was held goes first
        if not self._pending:
            self._pendingAt = offset
        self._pending += data
        wait = self._lastTurn + OUTPUT_INTERVAL - self._clock.seconds()
        if len(self._pending) >= OUTPUT_STEP or wait <= 0:
            self._flush()
        else:
            self._later(wait)

    def _resumed(self) -> None:
        self._resume = None
        self._flush()

    def _flush(self) -> None:
        """A turn over the output held since the last one (and any left behind)."""
        if self._resume is not None and self._resume.active():
            self._resume.cancel()
        self._resume = None
        chunk = (self._pendingAt, bytes(self._pending)) if self._pending else _NO_CHUNK
        self._pending = bytearray()
        self._lastTurn = self._clock.seconds()
        self._turn(chunk)

    def _later(self, delay: float = 0) -> None:
        if self._resume is None:
            self._resume = self._clock.callLater(delay, self._resumed)
        elif delay == 0 and self._resume.getTime() > self._clock.seconds():
            self._resume.reset(0)

    def _turn(self, chunk: Chunk) -> None:
        queue = [c for c in self._cursors if c.end < self._history.end]
        for waiter, result in self._catchUp(queue, chunk):
            self._matched(waiter, result)
        left = [c for c in queue if c in self._cursors]  # in the order they go on
        if left:
            self._cursors = left + [c for c in self._cursors if c not in left]
            self._later()
        self._merge()

    def _catchUp(self, queue: list[_Cursor], chunk: Chunk) -> list[tuple[_OutputWaiter, Result]]:
        """Steps for the cursors in ``queue``, in turn, until each has caught up or lost
        its waiters or the slice is over; the matches found.  ``queue`` is left with the
        cursors still behind, those that waited longest first."""
        deadline = self._timer() + SEARCH_SLICE
        found: list[tuple[_OutputWaiter, Result]] = []
        steps = 0
        while queue and (not steps or self._timer() < deadline):
            cursor = queue.pop(0)
            steps += 1
            found += self._step(cursor, chunk)
            for part in self._split(cursor) if cursor.slow else [cursor]:
                if part.waiters and part.end < self._history.end:
                    queue.append(part)
        return found

    def _split(self, cursor: _Cursor) -> list[_Cursor]:
        """A cursor whose set was too slow: one solo cursor a waiter from now on."""
        parts = []
        for waiter in cursor.waiters:
            part = _Cursor(cursor.base, solo=True)
            part.buffer = cursor.buffer
            part.waiters.append(waiter)
            waiter.cursor = part
            parts.append(part)
        if cursor in self._cursors:
            at = self._cursors.index(cursor)
            self._cursors[at : at + 1] = parts
        cursor.waiters = []
        return parts

    def _merge(self) -> None:
        """Cursors at the same window go on as one, while their patterns fit one set."""
        merged: list[_Cursor] = []
        into: dict[tuple[int, int], _Cursor] = {}
        for cursor in self._cursors:
            if cursor.solo:
                merged.append(cursor)
                continue
            key = (cursor.base, cursor.end)
            other = into.get(key)
            if other is not None and other.cost + cursor.cost <= SET_PROGRAM_SIZE:
                for waiter in cursor.waiters:
                    waiter.cursor = other
                other.waiters += cursor.waiters
                other.changed()
                continue
            into[key] = cursor
            merged.append(cursor)
        self._cursors = merged

    def _step(self, cursor: _Cursor, chunk: Chunk) -> list[tuple[_OutputWaiter, Result]]:
        end = cursor.end
        offset, data = chunk
        if offset <= end < offset + len(data):
            return cursor.search(
                end, data[end - offset : end - offset + OUTPUT_STEP], self._setTimer
            )
        start, piece = self._history.read(end, OUTPUT_STEP)
        if piece:
            return cursor.search(start, piece, self._setTimer)
        if end < offset:  # gone from the history, the chunk goes on later: from there
            return cursor.search(offset, data[:OUTPUT_STEP], self._setTimer)
        cursor.skip(self._history.end)  # a history that holds nothing, between chunks
        return []
